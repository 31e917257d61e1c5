// Domain-specific configuration (/v3/domains/{id}/config): per-domain settings of the identity
// backend, limited as in Keystone to the [identity] driver options and the [ldap] options, with
// the LDAP password write-only. The defaults (/v3/domains/config/default) are what a domain
// without its own configuration uses. Stratus stores users in SQL only, so these settings are
// kept and served for clients and tools, not acted upon.
import type { FastifyRequest } from 'fastify';
import { Forbidden, NotFound } from '../../common/errors.ts';
import type { DomainConfigRow } from '../store/schema.ts';
import { authorize } from './context.ts';
import { type IdentityRow, type RowModule } from './rows.ts';

type Config = Record<string, Record<string, unknown>>;

/** Option → default value, per group: every option a domain may set (Keystone's whitelist). */
const DEFAULTS: Config = {
  identity: { driver: 'sql', list_limit: null },
  ldap: {
    url: 'ldap://localhost', user: null, suffix: 'cn=example,cn=com', query_scope: 'one', page_size: 0,
    alias_dereferencing: 'default', debug_level: null, chase_referrals: null,
    user_tree_dn: null, user_filter: null, user_objectclass: 'inetOrgPerson', user_id_attribute: 'cn',
    user_name_attribute: 'sn', user_mail_attribute: 'mail', user_description_attribute: 'description',
    user_pass_attribute: 'userPassword', user_enabled_attribute: 'enabled', user_enabled_invert: false,
    user_enabled_mask: 0, user_enabled_default: 'True', user_attribute_ignore: ['default_project_id'],
    user_default_project_id_attribute: null, user_enabled_emulation: false, user_enabled_emulation_dn: null,
    user_enabled_emulation_use_group_config: false, user_additional_attribute_mapping: [],
    group_tree_dn: null, group_filter: null, group_objectclass: 'groupOfNames', group_id_attribute: 'cn',
    group_name_attribute: 'ou', group_members_are_ids: false, group_member_attribute: 'member',
    group_desc_attribute: 'description', group_attribute_ignore: [], group_additional_attribute_mapping: [],
    tls_cacertfile: null, tls_cacertdir: null, use_tls: false, tls_req_cert: 'demand',
    use_pool: true, pool_size: 10, pool_retry_max: 3, pool_retry_delay: 0.1, pool_connection_timeout: -1,
    pool_connection_lifetime: 600, use_auth_pool: true, auth_pool_size: 100, auth_pool_connection_lifetime: 60,
  },
};
/** Options that may be written but are never returned. */
const SENSITIVE: Record<string, string[]> = { identity: [], ldap: ['password'] };
/** Readable by anyone, for the default domain only: what password changes must satisfy. */
const SECURITY_COMPLIANCE = 'security_compliance';
const COMPLIANCE_OPTIONS: Record<string, null> = { password_regex: null, password_regex_description: null };

const invalid = (reason: string) => new Forbidden(`Invalid domain specific configuration: ${reason}.`);

function checkGroupOption(group?: string, option?: string): void {
  if (group === undefined) return;
  if (!(group in DEFAULTS)) throw invalid(`Group ${group} is not supported for domain specific configurations`);
  if (option !== undefined && !(option in DEFAULTS[group]) && !SENSITIVE[group].includes(option)) {
    throw invalid(`Option ${option} in group ${group} is not supported for domain specific configurations`);
  }
}

function checkConfig(config: unknown): Config {
  if (!config || typeof config !== 'object' || Array.isArray(config) || Object.keys(config).length === 0) throw invalid('No options specified');
  for (const [group, opts] of Object.entries(config)) {
    if (!opts || typeof opts !== 'object' || Array.isArray(opts) || Object.keys(opts).length === 0) {
      throw invalid(`The value of group ${group} specified in the config should be a dictionary of options`);
    }
    for (const option of Object.keys(opts)) checkGroupOption(group, option);
  }
  return config as Config;
}

const notFound = (domainId: string, what: string) => new NotFound(`Could not find ${what} in domain configuration for domain ${domainId}.`);
const what = (group?: string, option?: string) => (option ? `option ${option} in group ${group}` : group ? `group ${group}` : 'any options');

export const domainConfigRoutes: RowModule = (api) => {
  const rows: IdentityRow[] = [];
  const db = () => api.store.db;

  async function requireDomain(id: string) {
    if (!(await db().selectFrom('domains').select('id').where('id', '=', id).executeTakeFirst())) throw new NotFound(`Could not find domain: ${id}.`);
  }
  async function configRows(domainId: string, group?: string, option?: string): Promise<DomainConfigRow[]> {
    let qb = db().selectFrom('domain_configs').selectAll().where('domain_id', '=', domainId);
    if (group !== undefined) qb = qb.where('group_name', '=', group);
    if (option !== undefined) qb = qb.where('option_name', '=', option);
    return qb.orderBy('group_name').orderBy('option_name').execute();
  }
  /** The stored configuration without its sensitive options. */
  async function readable(domainId: string, group?: string, option?: string): Promise<Config> {
    const out: Config = {};
    for (const r of await configRows(domainId, group, option)) {
      if (r.sensitive) continue;
      (out[r.group_name] ??= {})[r.option_name] = JSON.parse(r.value);
    }
    return out;
  }
  function toRows(domainId: string, config: Config): DomainConfigRow[] {
    return Object.entries(config).flatMap(([group, opts]) => Object.entries(opts).map(([option, value]) => ({
      domain_id: domainId, group_name: group, option_name: option, value: JSON.stringify(value ?? null),
      sensitive: SENSITIVE[group].includes(option) ? 1 : 0,
    })));
  }
  async function upsert(domainId: string, config: Config) {
    await db().transaction().execute(async (trx) => {
      for (const r of toRows(domainId, config)) {
        await trx.deleteFrom('domain_configs').where('domain_id', '=', domainId).where('group_name', '=', r.group_name).where('option_name', '=', r.option_name).execute();
        await trx.insertInto('domain_configs').values(r).execute();
      }
    });
  }
  const configOf = (req: FastifyRequest): unknown => {
    const b = req.body as Record<string, unknown> | undefined;
    return b && typeof b === 'object' && !Array.isArray(b) ? b.config : undefined;
  };

  // ---- defaults (registered before /v3/domains/:id/config/... could shadow them) ----
  rows.push({ method: 'GET', path: '/v3/domains/config/default', policy: 'identity:get_domain_config_default', errors: [], handler: async (req) => {
    return { config: DEFAULTS };
  } });
  rows.push({ method: 'GET', path: '/v3/domains/config/:group/default', policy: 'identity:get_domain_config_default', errors: [], handler: async (req) => {
    const { group } = req.params as { group: string };
    checkGroupOption(group);
    return { config: { [group]: DEFAULTS[group] } };
  } });
  rows.push({ method: 'GET', path: '/v3/domains/config/:group/:option/default', policy: 'identity:get_domain_config_default', errors: [], handler: async (req) => {
    const { group, option } = req.params as { group: string; option: string };
    checkGroupOption(group, option);
    if (SENSITIVE[group].includes(option)) throw invalid(`Reading the default for option ${option} in group ${group} is not supported`);
    return { config: { [option]: DEFAULTS[group][option] } };
  } });

  // ---- a domain's configuration ----
  rows.push({ method: 'PUT', path: '/v3/domains/:id/config', policy: 'identity:create_domain_config', errors: [], handler: async (req, reply) => {
    const { id } = req.params as { id: string };
    await requireDomain(id);
    const config = checkConfig(configOf(req));
    const existed = (await configRows(id)).length > 0;
    // Creating replaces whatever was there (Keystone's semantics); 200 says it replaced.
    await db().transaction().execute(async (trx) => {
      await trx.deleteFrom('domain_configs').where('domain_id', '=', id).execute();
      const r = toRows(id, config);
      if (r.length) await trx.insertInto('domain_configs').values(r).execute();
    });
    reply.code(existed ? 200 : 201);
    return { config: await readable(id) };
  } });

  for (const path of ['/v3/domains/:id/config', '/v3/domains/:id/config/:group', '/v3/domains/:id/config/:group/:option']) {
    // The rule depends on the group (security_compliance is readable by anyone with a token).
    rows.push({ method: 'GET', path, targetPolicy: 'identity:get_domain_config', errors: [], handler: async (req) => {
      const { id, group, option } = req.params as { id: string; group?: string; option?: string };
      if (group === SECURITY_COMPLIANCE) {
        await authorize(api, req, 'identity:get_security_compliance_domain_config');
        await requireDomain(id);
        if (id !== 'default') throw invalid('Reading security compliance information for any domain other than the default domain is not allowed or supported');
        if (option === undefined) return { config: { [SECURITY_COMPLIANCE]: COMPLIANCE_OPTIONS } };
        if (!(option in COMPLIANCE_OPTIONS)) throw invalid('Reading security compliance values other than password_regex and password_regex_description is not allowed');
        return { config: { [option]: COMPLIANCE_OPTIONS[option] } };
      }
      await authorize(api, req, 'identity:get_domain_config');
      await requireDomain(id);
      checkGroupOption(group, option);
      const cfg = await readable(id, group, option);
      if (!Object.keys(cfg).length) throw notFound(id, what(group, option));
      return { config: option !== undefined ? { [option]: cfg[group!][option] } : cfg };
    } });

    rows.push({ method: 'PATCH', path, policy: 'identity:update_domain_config', errors: [], handler: async (req) => {
      const { id, group, option } = req.params as { id: string; group?: string; option?: string };
      await requireDomain(id);
      checkGroupOption(group, option);
      const body = configOf(req);
      // For one option the body is {"config": {option: value}}: read it as that option's group.
      const config = checkConfig(option !== undefined && body && typeof body === 'object' && !Array.isArray(body) ? { [group!]: body } : body);
      if (group !== undefined) {
        // A group (or option) update touches only that group (option), which must already exist.
        if (Object.keys(config).length !== 1 || (option !== undefined && Object.keys(config[group] ?? {}).length !== 1)) {
          throw invalid(option !== undefined
            ? `Trying to update option ${option} in group ${group}, so that, and only that, option must be specified in the config`
            : `Trying to update group ${group}, so that, and only that, group must be specified in the config`);
        }
        if (!config[group]) throw invalid(`request to update group ${group}, but config provided contains group ${Object.keys(config)[0]} instead`);
        if (option !== undefined && !(option in config[group])) throw invalid(`Trying to update option ${option} in group ${group}, but config provided contains option ${Object.keys(config[group])[0]} instead`);
        if (!(await configRows(id, group, option)).length) throw notFound(id, what(group, option));
      }
      await upsert(id, config);
      return { config: await readable(id) };
    } });

    rows.push({ method: 'DELETE', path, policy: 'identity:delete_domain_config', errors: [], handler: async (req, reply) => {
      const { id, group, option } = req.params as { id: string; group?: string; option?: string };
      await requireDomain(id);
      checkGroupOption(group, option);
      if (group !== undefined && !(await configRows(id, group, option)).length) throw notFound(id, what(group, option));
      let qb = db().deleteFrom('domain_configs').where('domain_id', '=', id);
      if (group !== undefined) qb = qb.where('group_name', '=', group);
      if (option !== undefined) qb = qb.where('option_name', '=', option);
      await qb.execute();
      reply.code(204).send();
    } });
  }
  return rows;
};
