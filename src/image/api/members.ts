// /v2/images/{id}/members: sharing an image with other projects. The owner adds and removes
// members; each member accepts or rejects for itself; a member sees only its own membership.
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { ImageRow } from './rows.ts';
import { BadRequest, Conflict, Forbidden, NotFound } from '../../common/errors.ts';
import type { ImageService } from '../service.ts';
import { QuotaExceeded } from '../service.ts';
import type { RequestCtx } from '../policy.ts';
import type { MemberRow } from '../db/schema.ts';
import { isoSeconds, nowIso, type Image } from '../model.ts';
import { ctxOf, imageTarget, jsonBody, loadImage, requireObject } from './common.ts';

const STATUSES = ['pending', 'accepted', 'rejected'];

export function renderMember(m: MemberRow): Record<string, unknown> {
  return {
    created_at: isoSeconds(m.created_at), image_id: m.image_id, member_id: m.member,
    schema: '/v2/schemas/member', status: m.status, updated_at: isoSeconds(m.updated_at),
  };
}

export function memberRows(svc: ImageService, bodyLimit: number): ImageRow[] {
  const rows: ImageRow[] = [];
  const lookup = async (ctx: RequestCtx, id: string) => {
    const img = await loadImage(svc, ctx, id, `Image ${id} not found.`);
    return { img, target: await imageTarget(svc, ctx, img) };
  };
  const sharedOnly = (img: Image) => {
    if (img.visibility !== 'shared') throw new Forbidden(`Error fetching members of image ${img.id}: Only shared images have members.`);
  };

  rows.push({ method: 'POST', path: '/images/:id/members', errors: [409, 413], handler: async (req: FastifyRequest<{ Params: { id: string } }>) => {
    const ctx = ctxOf(svc, req);
    const body = requireObject(await jsonBody(req, bodyLimit));
    if (!('member' in body)) throw new BadRequest('Member to be added not specified');
    const member = body.member;
    if (!member) throw new BadRequest("Member can't be empty");
    if (typeof member !== 'string' || member.length > 255) throw new BadRequest('Member must be a project id of at most 255 characters.');
    const { img, target } = await lookup(ctx, req.params.id);
    sharedOnly(img);
    ctx.enforceOnImage('add_member', target, `Image ${img.id} not found.`);
    if (!ctx.isAdmin && img.owner !== ctx.projectId) throw new Forbidden(`Not allowed to create members for image ${img.id}.`);
    const count = await svc.repo.countMembers(img.id);
    if (count + 1 > svc.limits.members) {
      throw new QuotaExceeded(`Image member limit exceeded for image ${img.id}: The limit has been exceeded on the number of allowed image members for this image. Attempted: ${count + 1}, Maximum: ${svc.limits.members}:`);
    }
    const ts = nowIso();
    const row: MemberRow = { image_id: img.id, member, status: 'pending', created_at: ts, updated_at: ts };
    if (!(await svc.repo.addMember(row))) throw new Conflict(`Member ${member} is duplicated for image ${img.id}`);
    return renderMember(row);
  } });

  rows.push({ method: 'GET', path: '/images/:id/members', errors: [], handler: async (req: FastifyRequest<{ Params: { id: string } }>) => {
    const ctx = ctxOf(svc, req);
    const { img, target } = await lookup(ctx, req.params.id);
    sharedOnly(img);
    ctx.enforceOnImage('get_members', target, `Image ${img.id} not found.`);
    let members = await svc.repo.members(img.id);
    if (!ctx.isAdmin && img.owner !== ctx.projectId) members = members.filter((m) => m.member === ctx.projectId);
    return { members: members.map(renderMember), schema: '/v2/schemas/members' };
  } });

  rows.push({ method: 'GET', path: '/images/:id/members/:member', errors: [], handler: async (req: FastifyRequest<{ Params: { id: string; member: string } }>) => {
    const ctx = ctxOf(svc, req);
    const { img, target } = await lookup(ctx, req.params.id);
    const missing = new NotFound(`${req.params.member} not found in the member list of the image ${img.id}.`);
    // Glance turns refusals here into 404s so memberships are not revealed.
    if (img.visibility !== 'shared' || !ctx.check('get_member', target)) throw missing;
    if (!ctx.isAdmin && img.owner !== ctx.projectId && req.params.member !== ctx.projectId) throw missing;
    const m = await svc.repo.member(img.id, req.params.member);
    if (!m) throw missing;
    return renderMember(m);
  } });

  rows.push({ method: 'PUT', path: '/images/:id/members/:member', errors: [], handler: async (req: FastifyRequest<{ Params: { id: string; member: string } }>) => {
    const ctx = ctxOf(svc, req);
    const body = requireObject(await jsonBody(req, bodyLimit));
    if (!('status' in body)) throw new BadRequest('Status not specified');
    const { img, target } = await lookup(ctx, req.params.id);
    sharedOnly(img);
    const m = await svc.repo.member(img.id, req.params.member);
    if (!m || (!ctx.isAdmin && img.owner !== ctx.projectId && m.member !== ctx.projectId)) {
      throw new NotFound(`${req.params.member} not found in the member list of the image ${img.id}.`);
    }
    // Only the member itself decides (the owner cannot accept on its behalf).
    if (!ctx.check('modify_member', { ...target, member_id: m.member }) || (!ctx.isAdmin && m.member !== ctx.projectId)) {
      throw new Forbidden(`Not allowed to update members for image ${img.id}.`);
    }
    const status = body.status;
    if (typeof status !== 'string' || !STATUSES.includes(status)) throw new BadRequest('Incorrect request: Status must be "pending", "accepted" or "rejected".');
    const ts = nowIso();
    await svc.repo.updateMember(img.id, m.member, status, ts);
    return renderMember({ ...m, status, updated_at: ts });
  } });

  rows.push({ method: 'DELETE', path: '/images/:id/members/:member', errors: [], handler: async (req: FastifyRequest<{ Params: { id: string; member: string } }>, reply: FastifyReply) => {
    const ctx = ctxOf(svc, req);
    const { img, target } = await lookup(ctx, req.params.id);
    sharedOnly(img);
    const m = await svc.repo.member(img.id, req.params.member);
    if (!m || (!ctx.isAdmin && img.owner !== ctx.projectId && m.member !== ctx.projectId)) {
      throw new NotFound(`${req.params.member} not found in the member list of the image ${img.id}.`);
    }
    if (!ctx.check('delete_member', target) || (!ctx.isAdmin && img.owner !== ctx.projectId)) {
      throw new Forbidden(`Not allowed to delete members for image ${img.id}.`);
    }
    await svc.repo.deleteMember(img.id, m.member);
    return reply.code(204).send();
  } });
  return rows;
}
