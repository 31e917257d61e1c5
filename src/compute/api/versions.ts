// Version discovery: GET / (every version) and GET /v2.1 (this one), shaped as Nova's.
import type { FastifyInstance } from 'fastify';
import { MAX_VERSION, MIN_VERSION } from '../microversions.ts';
import { negotiateVersion } from './context.ts';

export function versionDoc(base: string) {
  return {
    id: 'v2.1', status: 'CURRENT', version: MAX_VERSION, min_version: MIN_VERSION, updated: '2013-07-23T11:33:21Z',
    links: [{ rel: 'self', href: `${base}/v2.1/` }, { rel: 'describedby', type: 'text/html', href: 'http://docs.openstack.org/' }],
    'media-types': [{ base: 'application/json', type: 'application/vnd.openstack.compute+json;version=2.1' }],
  };
}

export function versionRoutes(scope: FastifyInstance, base: string): void {
  scope.get('/', async () => ({
    versions: [
      { id: 'v2.0', status: 'SUPPORTED', version: '', min_version: '', updated: '2011-01-21T11:33:21Z', links: [{ rel: 'self', href: `${base}/v2/` }] },
      { id: 'v2.1', status: 'CURRENT', version: MAX_VERSION, min_version: MIN_VERSION, updated: '2013-07-23T11:33:21Z', links: [{ rel: 'self', href: `${base}/v2.1/` }] },
    ],
  }));
  scope.get('/v2', async () => ({
    version: {
      id: 'v2.0', status: 'SUPPORTED', version: '', min_version: '', updated: '2011-01-21T11:33:21Z',
      links: [{ rel: 'self', href: `${base}/v2/` }, { rel: 'describedby', type: 'text/html', href: 'http://docs.openstack.org/' }],
      'media-types': [{ base: 'application/json', type: 'application/vnd.openstack.compute+json;version=2' }],
    },
  }));
  scope.get('/v2.1', async (req, reply) => {
    negotiateVersion(req, reply);
    return { version: versionDoc(base) };
  });
}
