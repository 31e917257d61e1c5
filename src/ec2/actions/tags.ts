// Tags: on instances they are the server's metadata (key=value) and its Nova tags (a tag
// without a value). CreateTags writes metadata; DeleteTags removes from both.
import { Ec2Error, invalidParameter, missingParameter } from '../errors.ts';
import { kindOf } from '../ids.ts';
import { filters, int, list, tags as tagParams, type Tag } from '../params.ts';
import { el, set } from '../xml.ts';
import { messageOf } from '../downstream.ts';
import { type ActionContext, type ActionDef, decodeToken, encodeToken, matchAny, notFoundError, resolveIds } from './context.ts';
import { tagsOf } from './instance-view.ts';
import { listServers, rowsFor } from './instances.ts';

export function checkTag(t: Tag): void {
  if (t.key.length < 1 || t.key.length > 128) throw invalidParameter(`Tag key '${t.key.slice(0, 140)}' must be 1 to 128 characters`);
  if (t.value.length > 255) throw invalidParameter(`Tag value for key '${t.key}' must be at most 255 characters`);
  if (/^aws:/i.test(t.key)) throw invalidParameter(`Tag keys starting with 'aws:' are reserved for internal use`);
}

/** Instance UUIDs of ResourceId.N (only instances carry tags here). */
async function resources(c: ActionContext): Promise<{ ids: string[]; uuids: string[] }> {
  const ids = list(c.p, 'ResourceId');
  if (!ids.length) throw missingParameter('ResourceId');
  for (const id of ids) {
    const k = kindOf(id);
    if (!k) throw new Ec2Error('InvalidID', `The ID '${id}' is not valid`);
    if (k !== 'i') throw new Ec2Error('UnsupportedOperation', `Tagging ${id}: only instances carry tags in this cloud`);
  }
  return { ids, uuids: await resolveIds(c, ids, ['i']) };
}

const notFound = (id: string) => (r: { status: number }) => (r.status === 404 ? notFoundError('i', id) : undefined);

async function createTags(c: ActionContext): Promise<string> {
  const { ids, uuids } = await resources(c);
  const tags = tagParams(c.p);
  if (!tags.length) throw missingParameter('Tag');
  tags.forEach(checkTag);
  const metadata = Object.fromEntries(tags.map((t) => [t.key, t.value]));
  await Promise.all(uuids.map((u, i) => c.compute.ok(c.caller.token, 'POST', `/servers/${u}/metadata`, { metadata }, {
    onError: (r) => notFound(ids[i])(r) ?? (r.status === 403 && /quota|exceed/i.test(messageOf(r)) ? new Ec2Error('TagLimitExceeded', messageOf(r)) : undefined),
  })));
  return '<return>true</return>';
}

async function deleteTags(c: ActionContext): Promise<string> {
  const { ids, uuids } = await resources(c);
  const wanted = tagParams(c.p).map((t) => ({ key: t.key, value: c.p[`Tag.${tagIndex(c, t.key)}.Value`] }));
  await Promise.all(uuids.map(async (u, i) => {
    const s = (await c.compute.ok(c.caller.token, 'GET', `/servers/${u}`, undefined, { onError: notFound(ids[i]) })).server;
    const meta = (s.metadata ?? {}) as Record<string, string>;
    const novaTags = (s.tags ?? []) as string[];
    // No Tag.N: every tag goes. A Tag.N with a Value: only when the value matches.
    const doomed = wanted.length ? wanted : tagsOf(s).map((t) => ({ key: t.key, value: undefined }));
    for (const w of doomed) {
      if (w.key in meta && (w.value === undefined || meta[w.key] === w.value)) {
        await c.compute.ok(c.caller.token, 'DELETE', `/servers/${u}/metadata/${encodeURIComponent(w.key)}`, undefined, { ok: [204, 404] });
      }
      if (novaTags.includes(w.key) && (w.value === undefined || w.value === '')) {
        await c.compute.ok(c.caller.token, 'DELETE', `/servers/${u}/tags/${encodeURIComponent(w.key)}`, undefined, { ok: [204, 404] });
      }
    }
  }));
  return '<return>true</return>';
}

function tagIndex(c: ActionContext, key: string): string {
  for (const k of Object.keys(c.p)) if (/^Tag\.\d+\.Key$/.test(k) && c.p[k] === key) return k.split('.')[1];
  return '0';
}

async function describeTags(c: ActionContext): Promise<string> {
  const fs = filters(c.p);
  const max = int(c.p, 'MaxResults', { min: 5, max: 1000 });
  for (const f of fs) {
    if (!['resource-id', 'resource-type', 'key', 'value'].includes(f.name) && !f.name.startsWith('tag:')) throw invalidParameter(`The filter '${f.name}' is invalid`);
    if (f.name === 'resource-type' && !f.values.every((v) => ['instance', 'image', 'key-pair', 'volume', 'snapshot', 'reservation'].includes(v))) {
      throw invalidParameter(`Invalid resource-type filter value: ${f.values.join(', ')}`);
    }
  }
  const only = fs.find((f) => f.name === 'resource-type');
  const { servers, next } = only && !only.values.includes('instance') ? { servers: [], next: undefined } : await listServers(c, { limit: max, marker: c.p.NextToken !== undefined ? decodeToken(c.p.NextToken) : undefined });
  const rows = await rowsFor(c, servers);
  const out: { id: string; key: string; value: string }[] = [];
  for (const r of rows) for (const t of tagsOf(r.s)) out.push({ id: r.instanceId, ...t });
  const keep = out.filter((t) => fs.every((f) => {
    if (f.name === 'resource-id') return matchAny(f.values, t.id);
    if (f.name === 'key') return matchAny(f.values, t.key);
    if (f.name === 'value') return matchAny(f.values, t.value);
    if (f.name.startsWith('tag:')) return t.key === f.name.slice(4) && matchAny(f.values, t.value);
    return true;
  }));
  return set('tagSet', keep, (t) => el('resourceId', t.id) + '<resourceType>instance</resourceType>' + el('key', t.key) + el('value', t.value))
    + (next ? el('nextToken', encodeToken(next)) : '');
}

export const tagActions: Record<string, ActionDef> = {
  CreateTags: { handler: createTags },
  DeleteTags: { handler: deleteTags },
  DescribeTags: { handler: describeTags },
};
