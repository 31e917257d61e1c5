// Version discovery, shaped exactly as Keystone's (clients parse these to find /v3).
import type { RouteModule } from './context.ts';

export const versionRoutes: RouteModule = (app, api) => {
  const v3 = () => ({
    id: 'v3.14', status: 'stable', updated: '2020-04-07T00:00:00Z',
    links: [{ rel: 'self', href: `${api.publicUrl}/v3/` }],
    'media-types': [{ base: 'application/json', type: 'application/vnd.openstack.identity-v3+json' }],
  });
  app.get('/', async (_req, reply) => {
    reply.code(300).header('location', `${api.publicUrl}/v3/`).header('vary', 'X-Auth-Token');
    return { versions: { values: [v3()] } };
  });
  app.get('/v3', async (_req, reply) => {
    reply.header('vary', 'X-Auth-Token');
    return { version: v3() };
  });
};
