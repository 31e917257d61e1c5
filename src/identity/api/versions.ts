// Version discovery, shaped exactly as Keystone's (clients parse these to find /v3).
import { R } from './responses.ts';
import type { IdentityRow, RowModule } from './rows.ts';

export const versionRoutes: RowModule = (api) => {
  const rows: IdentityRow[] = [];
  const v3 = () => ({
    id: 'v3.14', status: 'stable', updated: '2020-04-07T00:00:00Z',
    links: [{ rel: 'self', href: `${api.publicUrl}/v3/` }],
    'media-types': [{ base: 'application/json', type: 'application/vnd.openstack.identity-v3+json' }],
  });
  rows.push({ method: 'GET', path: '/', response: { 300: R.versions }, errors: [], handler: async (_req, reply) => {
    reply.code(300).header('location', `${api.publicUrl}/v3/`).header('vary', 'X-Auth-Token');
    return { versions: { values: [v3()] } };
  } });
  rows.push({ method: 'GET', path: '/v3', response: { 200: R.v3 }, errors: [], handler: async (_req, reply) => {
    reply.header('vary', 'X-Auth-Token');
    return { version: v3() };
  } });
  return rows;
};
