// The Image API on the route kit: every route is a row (common/http/route-kit.ts) in one table,
// assembled in ../index.ts from the per-resource modules. Policies whose target is the caller's
// project (the tasks API, list and create rules of metadefs, store details) are row policies,
// checked before the body is read; Glance's image rules need the image itself as their target
// (owner, visibility, membership) and are checked by the handlers once it is loaded.
import type { FastifyReply, FastifyRequest } from 'fastify';
import { BadRequest } from '../../common/errors.ts';
import { registerRows, type RouteRow, type ServiceBinding } from '../../common/http/route-kit.ts';
import type { ImageService } from '../service.ts';
import { ctxOf } from './common.ts';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- each handler narrows its own params
export type ImageHandler = (req: FastifyRequest<any>, reply: FastifyReply) => Promise<unknown>;
export type ImageRow = RouteRow<ImageHandler>;

export function registerImageRows(scope: Parameters<typeof registerRows>[0], svc: ImageService, rows: ImageRow[]): void {
  const binding: ServiceBinding<ImageHandler> = {
    authorize: (req, rule) => {
      const ctx = ctxOf(svc, req);
      ctx.enforce(rule, { project_id: ctx.projectId });
    },
    // No image row declares a schema yet: Glance's own validator (api/schemas.ts) words its
    // messages as Python's jsonschema, which ajv cannot.
    schemaError: (errors) => new BadRequest(errors[0]?.message ?? 'Invalid input'),
    methodNotAllowed: (req) => `The method ${req.method} is not allowed for this resource.`,
    run: (row, req, reply) => row.handler(req, reply),
  };
  registerRows(scope, rows, binding);
}
