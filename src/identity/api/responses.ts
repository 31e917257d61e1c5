// Response schemas of the identity rows, checked in tests (test/identity-routekit.test.ts) against
// the captured Zed responses and Stratus's own. Entities are open (Keystone returns the extra
// attributes a client stored), their core attributes required and typed; collections carry
// Keystone's `links`.
type Schema = Record<string, unknown>;

const str = { type: 'string' };
const nstr = { type: ['string', 'null'] };
const bool = { type: 'boolean' };
const obj = (properties: Schema, required = Object.keys(properties), extra = true): Schema =>
  ({ type: 'object', properties, required, additionalProperties: extra });
const list = (items: Schema): Schema => ({ type: 'array', items });
const selfLink = obj({ self: str }, ['self'], false);
const listLinks = obj({ self: str, previous: nstr, next: nstr }, ['self']);
/** `{ <key>: entity }` */
const member = (key: string, entity: Schema) => obj({ [key]: entity }, [key], false);
/** `{ <key>: [entity], links }` */
const collection = (key: string, entity: Schema) => obj({ [key]: list(entity), links: listLinks }, [key, 'links'], false);

const version = obj({
  id: str, status: str, updated: str,
  links: list(obj({ rel: str, href: str })),
  'media-types': list(obj({ base: str, type: str })),
}, undefined, false);

const idName = obj({ id: str, name: str });
const domainRef = obj({ id: str, name: str });
const endpointRef = obj({ id: str, interface: { enum: ['public', 'internal', 'admin'] }, region_id: nstr, url: str, region: nstr }, ['id', 'interface', 'url']);
const catalog = list(obj({ id: str, type: str, name: str, endpoints: list(endpointRef) }, ['id', 'type', 'endpoints']));

const token = obj({
  methods: list(str),
  user: obj({ id: str, name: str, domain: domainRef, password_expires_at: nstr }, ['id', 'name', 'domain']),
  audit_ids: { type: 'array', items: str, minItems: 1 },
  expires_at: str,
  issued_at: str,
  project: obj({ id: str, name: str, domain: domainRef }),
  domain: domainRef,
  system: obj({ all: bool }),
  is_domain: bool,
  roles: list(idName),
  catalog,
  application_credential: obj({ id: str, name: str, restricted: bool }, ['id', 'restricted']),
  'OS-TRUST:trust': obj({ id: str }, ['id']),
}, ['methods', 'user', 'audit_ids', 'expires_at', 'issued_at']);

const user = obj({ id: str, name: str, domain_id: str, enabled: bool, password_expires_at: nstr, links: selfLink }, ['id', 'name', 'domain_id', 'enabled', 'links']);
const group = obj({ id: str, name: str, domain_id: str, description: nstr, links: selfLink });
const project = obj({
  id: str, name: str, domain_id: nstr, description: nstr, enabled: bool, parent_id: nstr, is_domain: bool,
  tags: list(str), options: { type: 'object' }, links: selfLink,
}, ['id', 'name', 'domain_id', 'enabled', 'parent_id', 'is_domain', 'links']);
const domain = obj({ id: str, name: str, description: nstr, enabled: bool, tags: list(str), options: { type: 'object' }, links: selfLink }, ['id', 'name', 'enabled', 'links']);
const role = obj({ id: str, name: str, domain_id: nstr, description: nstr, options: { type: 'object' }, links: selfLink }, ['id', 'name', 'domain_id', 'links']);
const roleAssignment = obj({
  role: obj({ id: str, name: str, domain: domainRef }, ['id']),
  user: obj({ id: str, name: str, domain: domainRef }, ['id']),
  group: obj({ id: str, name: str, domain: domainRef }, ['id']),
  scope: {
    type: 'object',
    properties: {
      project: obj({ id: str, name: str, domain: domainRef }, ['id']),
      domain: obj({ id: str, name: str }, ['id']),
      system: obj({ all: bool }),
      'OS-INHERIT:inherited_to': { enum: ['projects'] },
    },
    minProperties: 1,
    additionalProperties: false,
  },
  links: obj({ assignment: str, membership: str, prior_role: str }, ['assignment'], false),
}, ['role', 'scope', 'links'], false);
const service = obj({ id: str, type: str, name: str, enabled: bool, links: selfLink }, ['id', 'type', 'enabled', 'links']);
const endpoint = obj({ id: str, interface: { enum: ['public', 'internal', 'admin'] }, region_id: nstr, region: nstr, url: str, service_id: str, enabled: bool, links: selfLink }, ['id', 'interface', 'url', 'service_id', 'enabled', 'links']);
const region = obj({ id: str, description: nstr, parent_region_id: nstr, links: selfLink }, ['id', 'parent_region_id', 'links']);
const credential = obj({ id: str, user_id: str, project_id: nstr, type: str, blob: str, links: selfLink }, ['id', 'user_id', 'type', 'blob', 'links']);
const accessRule = obj({ id: str, service: str, path: str, method: str });
const appCredential = obj({
  id: str, name: str, description: nstr, expires_at: nstr, project_id: str, user_id: str,
  roles: list(obj({ id: str, name: str, domain_id: nstr }, ['id', 'name'])), unrestricted: bool, access_rules: list(accessRule), links: selfLink,
}, ['id', 'name', 'project_id', 'user_id', 'roles', 'unrestricted', 'links']);
const trust = obj({
  id: str, trustor_user_id: str, trustee_user_id: str, project_id: nstr, impersonation: bool,
  expires_at: nstr, remaining_uses: { type: ['integer', 'null'] }, links: selfLink,
}, ['id', 'trustor_user_id', 'trustee_user_id', 'impersonation', 'links']);
const scopeProject = obj({ id: str, name: str, domain_id: str, enabled: bool, links: selfLink }, ['id', 'name', 'domain_id', 'links']);
const scopeDomain = obj({ id: str, name: str, enabled: bool, links: selfLink }, ['id', 'name', 'links']);

/** The response schemas, by what they answer. */
export const R = {
  versions: obj({ versions: obj({ values: { type: 'array', items: version, minItems: 1 } }, ['values'], false) }, ['versions'], false),
  v3: member('version', version),
  token: member('token', token),
  user: member('user', user),
  users: collection('users', user),
  group: member('group', group),
  groups: collection('groups', group),
  project: member('project', project),
  projects: collection('projects', project),
  domain: member('domain', domain),
  domains: collection('domains', domain),
  role: member('role', role),
  roles: collection('roles', role),
  roleAssignments: collection('role_assignments', roleAssignment),
  catalog: collection('catalog', obj({ id: str, type: str, name: str, endpoints: list(endpointRef) }, ['id', 'type', 'endpoints'])),
  service: member('service', service),
  services: collection('services', service),
  endpoint: member('endpoint', endpoint),
  endpoints: collection('endpoints', endpoint),
  region: member('region', region),
  regions: collection('regions', region),
  credential: member('credential', credential),
  credentials: collection('credentials', credential),
  applicationCredential: member('application_credential', appCredential),
  /** Created: the only time the secret is shown. */
  applicationCredentialCreated: member('application_credential', { ...appCredential, required: [...(appCredential.required as string[]), 'secret'] }),
  applicationCredentials: collection('application_credentials', appCredential),
  trust: member('trust', trust),
  authProjects: collection('projects', scopeProject),
  authDomains: collection('domains', scopeDomain),
};
