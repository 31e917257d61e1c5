// The dashboard: a static single-page app served under /dashboard (all-in-one) or alone
// (`stratus serve dashboard`). It has no backend of its own: the browser talks to the public
// OpenStack APIs with the user's token, as the CLI does. The server only hands out the built
// files, under a strict Content-Security-Policy, and a config.json naming the identity URL and
// region the app logs in to.
import type { FastifyInstance } from 'fastify';
import { registerOpts } from '../common/config.ts';
import type { ServiceDefinition } from '../common/service.ts';
import { loadAssets, registerAssetRoutes, contentSecurityPolicy } from './assets.ts';

registerOpts([
  { section: 'dashboard', name: 'enabled', type: 'bool', default: true, help: 'Serve the dashboard at /dashboard in the all-in-one.' },
  { section: 'dashboard', name: 'identity_url', type: 'url', help: 'Keystone v3 URL the dashboard logs users in to (default: [keystone_authtoken] www_authenticate_uri or auth_url; in the all-in-one its own /identity/v3).' },
  { section: 'dashboard', name: 'region', type: 'string', default: 'RegionOne', help: 'Region whose endpoints the dashboard uses from the token catalog.' },
  { section: 'dashboard', name: 'connect_src', type: 'list', default: [], help: 'Extra origins the browser may call (Content-Security-Policy connect-src), for APIs on other hosts than the dashboard and identity.' },
  { section: 'dashboard', name: 'static_dir', type: 'string', help: 'Directory of the built app (default: dist/dashboard of this installation).' },
]);

export const dashboardService: ServiceDefinition = {
  name: 'dashboard',
  type: 'dashboard',
  defaultPort: 9999,
  prefix: '/dashboard',
  databases: [],
  async start(ctx) {
    const { config } = ctx;
    const base = new URL(ctx.publicUrl);
    const identityUrl = config.get<string | undefined>('dashboard', 'identity_url')
      ?? config.get<string | undefined>('keystone_authtoken', 'www_authenticate_uri')
      ?? config.get<string | undefined>('keystone_authtoken', 'auth_url')
      ?? new URL('/identity/v3', base).href;
    // keystonemiddleware-style URLs often omit the version; the app speaks v3.
    const trimmed = identityUrl.replace(/\/+$/, '');
    const clientConfig = { identityUrl: trimmed.endsWith('/v3') ? trimmed : `${trimmed}/v3`, region: config.get<string>('dashboard', 'region') };
    const extra = config.get<string[]>('dashboard', 'connect_src');
    const csp = contentSecurityPolicy([new URL(clientConfig.identityUrl).origin, ...extra]);
    const assets = await loadAssets(config.get<string | undefined>('dashboard', 'static_dir'));
    if (!assets.ok) ctx.logger.warn(assets.reason);
    return {
      mount: {
        name: 'dashboard', prefix: '/dashboard', errorShape: 'keystone',
        register: async (scope) => registerAssetRoutes(scope, assets, { csp, clientConfig }),
      },
      registerRoot: (app: FastifyInstance, prefix: string) => redirectBrowsers(app, prefix),
      stop: async () => {},
    };
  },
};

/**
 * `/` sends a browser (one that asks for HTML) to the dashboard; API clients that probe `/` keep
 * the JSON 404 they got before the dashboard existed.
 */
function redirectBrowsers(app: FastifyInstance, prefix: string): void {
  const target = `${prefix.replace(/\/+$/, '')}/`;
  app.get('/', async (req, reply) => {
    const accept = String(req.headers.accept ?? '');
    if (/\btext\/html\b/.test(accept)) return reply.redirect(target, 302);
    return reply.code(404).send({ error: { code: 404, title: 'Not Found', message: 'The resource could not be found: GET /' } });
  });
}
