// Identity's tables. Booleans are stored as 0/1 integers and timestamps as ISO-8601 text so the
// same queries run on SQLite, MariaDB and PostgreSQL. `extra` columns hold the free-form
// attributes Keystone keeps beside the known ones (e.g. a user's email), as JSON text.
import { sql, type Kysely, type Migration } from 'kysely';
import type { MigrationSet } from '../../common/db/migrate.ts';

export interface DomainRow { id: string; name: string; description: string; enabled: number; extra: string; created_at: string }
export interface ProjectRow { id: string; name: string; domain_id: string; parent_id: string | null; description: string; enabled: number; extra: string; created_at: string }
export interface ProjectTagRow { project_id: string; name: string }
export interface UserRow { id: string; name: string; domain_id: string; enabled: number; default_project_id: string | null; password_hash: string | null; password_created_at: string | null; extra: string; created_at: string }
export interface GroupRow { id: string; name: string; domain_id: string; description: string; extra: string }
export interface MembershipRow { user_id: string; group_id: string }
/** domain_id '' = a global role (a NULL would defeat the unique index on most databases). */
export interface RoleRow { id: string; name: string; domain_id: string; description: string; extra: string }
export interface ImpliedRoleRow { prior_role_id: string; implied_role_id: string }
/** type: UserProject | GroupProject | UserDomain | GroupDomain | UserSystem | GroupSystem */
export interface AssignmentRow { type: string; actor_id: string; target_id: string; role_id: string; inherited: number }
export interface ServiceRow { id: string; type: string; name: string; description: string; enabled: number; extra: string }
export interface EndpointRow { id: string; service_id: string; interface: string; url: string; region_id: string | null; enabled: number; extra: string }
export interface RegionRow { id: string; description: string; parent_region_id: string | null; extra: string }
export interface AppCredRow { id: string; name: string; user_id: string; project_id: string; secret_hash: string; description: string; expires_at: string | null; unrestricted: number; roles: string; access_rules: string; created_at: string }
/** A revocation: tokens matching every non-null field and issued at or before `issued_before` are invalid. */
export interface RevocationRow { id: string; user_id: string | null; project_id: string | null; audit_id: string | null; domain_id: string | null; issued_before: string; expires_at: string | null; revoked_at: string }

/** Access rules are the user's, shared by every application credential that names them. */
export interface AccessRuleRow { id: string; user_id: string; service: string; path: string; method: string }

/**
 * A credential; for type 'ec2' the id is sha256(access) so access keys are unique. Stored, `blob`
 * is a Fernet token of the plaintext sealed with the credential key whose sha1 is `key_hash`
 * (credential-keys.ts); a NULL key_hash marks a plain row from before encryption.
 */
export interface CredentialRecord { id: string; user_id: string; project_id: string | null; type: string; blob: string; key_hash: string | null; extra: string }
/** A credential as the API handles it: the blob in plain text. */
export type CredentialRow = Omit<CredentialRecord, 'key_hash'>;
/** A delegation of roles on a project from trustor to trustee; roles live in trust_roles. */
export interface TrustRow {
  id: string; trustor_user_id: string; trustee_user_id: string; project_id: string | null; impersonation: number;
  expires_at: string | null; remaining_uses: number | null; extra: string; created_at: string;
}
export interface TrustRoleRow { trust_id: string; role_id: string }
/** OAuth1 consumer; the secret stays retrievable because OAuth1 signatures are HMACs keyed with it. */
export interface ConsumerRow { id: string; description: string; secret: string; extra: string }
/** OAuth1 request token: a consumer asks for a project; an authorizing user fills in verifier, user and roles. */
export interface OAuthRequestTokenRow {
  id: string; request_secret: string; consumer_id: string; requested_project_id: string; expires_at: string | null;
  verifier: string | null; authorizing_user_id: string | null; role_ids: string | null;
}
/** OAuth1 access token: what a consumer authenticates with (method oauth1) for the user on the project. */
export interface OAuthAccessTokenRow {
  id: string; access_secret: string; consumer_id: string; authorizing_user_id: string; project_id: string; role_ids: string; expires_at: string | null;
}
export interface PolicyRow { id: string; type: string; blob: string; extra: string }
/** filters: JSON object of endpoint attributes (service_id, region_id, interface). */
export interface EndpointGroupRow { id: string; name: string; description: string; filters: string }
export interface ProjectEndpointGroupRow { endpoint_group_id: string; project_id: string }
export interface ProjectEndpointRow { endpoint_id: string; project_id: string }
/** One option of a domain's identity-driver configuration; value is JSON text. */
export interface DomainConfigRow { domain_id: string; group_name: string; option_name: string; value: string; sensitive: number }

export interface IdentityDB {
  access_rules: AccessRuleRow;
  domains: DomainRow;
  projects: ProjectRow;
  project_tags: ProjectTagRow;
  users: UserRow;
  groups: GroupRow;
  user_group_membership: MembershipRow;
  roles: RoleRow;
  implied_roles: ImpliedRoleRow;
  assignments: AssignmentRow;
  services: ServiceRow;
  endpoints: EndpointRow;
  regions: RegionRow;
  application_credentials: AppCredRow;
  revocation_events: RevocationRow;
  credentials: CredentialRecord;
  trusts: TrustRow;
  trust_roles: TrustRoleRow;
  oauth1_consumers: ConsumerRow;
  oauth1_request_tokens: OAuthRequestTokenRow;
  oauth1_access_tokens: OAuthAccessTokenRow;
  policies: PolicyRow;
  endpoint_groups: EndpointGroupRow;
  project_endpoint_groups: ProjectEndpointGroupRow;
  project_endpoints: ProjectEndpointRow;
  domain_configs: DomainConfigRow;
}

const id = 'varchar(64)';
const name = 'varchar(255)';
const ts = 'varchar(32)';

const m001: Migration = {
  async up(db: Kysely<any>) {
    await db.schema.createTable('domains')
      .addColumn('id', id, (c) => c.primaryKey()).addColumn('name', name, (c) => c.notNull().unique())
      .addColumn('description', 'text', (c) => c.notNull()).addColumn('enabled', 'integer', (c) => c.notNull())
      .addColumn('extra', 'text', (c) => c.notNull()).addColumn('created_at', ts, (c) => c.notNull()).execute();
    await db.schema.createTable('projects')
      .addColumn('id', id, (c) => c.primaryKey()).addColumn('name', 'varchar(64)', (c) => c.notNull())
      .addColumn('domain_id', id, (c) => c.notNull()).addColumn('parent_id', id)
      .addColumn('description', 'text', (c) => c.notNull()).addColumn('enabled', 'integer', (c) => c.notNull())
      .addColumn('extra', 'text', (c) => c.notNull()).addColumn('created_at', ts, (c) => c.notNull())
      .addUniqueConstraint('projects_domain_name', ['domain_id', 'name']).execute();
    await db.schema.createIndex('projects_parent').on('projects').column('parent_id').execute();
    await db.schema.createTable('project_tags')
      .addColumn('project_id', id, (c) => c.notNull()).addColumn('name', name, (c) => c.notNull())
      .addPrimaryKeyConstraint('project_tags_pk', ['project_id', 'name']).execute();
    await db.schema.createTable('users')
      .addColumn('id', id, (c) => c.primaryKey()).addColumn('name', name, (c) => c.notNull())
      .addColumn('domain_id', id, (c) => c.notNull()).addColumn('enabled', 'integer', (c) => c.notNull())
      .addColumn('default_project_id', id).addColumn('password_hash', 'varchar(512)').addColumn('password_created_at', ts)
      .addColumn('extra', 'text', (c) => c.notNull()).addColumn('created_at', ts, (c) => c.notNull())
      .addUniqueConstraint('users_domain_name', ['domain_id', 'name']).execute();
    await db.schema.createTable('groups')
      .addColumn('id', id, (c) => c.primaryKey()).addColumn('name', name, (c) => c.notNull())
      .addColumn('domain_id', id, (c) => c.notNull()).addColumn('description', 'text', (c) => c.notNull())
      .addColumn('extra', 'text', (c) => c.notNull())
      .addUniqueConstraint('groups_domain_name', ['domain_id', 'name']).execute();
    await db.schema.createTable('user_group_membership')
      .addColumn('user_id', id, (c) => c.notNull()).addColumn('group_id', id, (c) => c.notNull())
      .addPrimaryKeyConstraint('membership_pk', ['user_id', 'group_id']).execute();
    await db.schema.createIndex('membership_group').on('user_group_membership').column('group_id').execute();
    await db.schema.createTable('roles')
      .addColumn('id', id, (c) => c.primaryKey()).addColumn('name', name, (c) => c.notNull())
      .addColumn('domain_id', id, (c) => c.notNull()).addColumn('description', 'text', (c) => c.notNull())
      .addColumn('extra', 'text', (c) => c.notNull())
      .addUniqueConstraint('roles_name_domain', ['name', 'domain_id']).execute();
    await db.schema.createTable('implied_roles')
      .addColumn('prior_role_id', id, (c) => c.notNull()).addColumn('implied_role_id', id, (c) => c.notNull())
      .addPrimaryKeyConstraint('implied_roles_pk', ['prior_role_id', 'implied_role_id']).execute();
    await db.schema.createTable('assignments')
      .addColumn('type', 'varchar(16)', (c) => c.notNull()).addColumn('actor_id', id, (c) => c.notNull())
      .addColumn('target_id', id, (c) => c.notNull()).addColumn('role_id', id, (c) => c.notNull())
      .addColumn('inherited', 'integer', (c) => c.notNull())
      .addPrimaryKeyConstraint('assignments_pk', ['type', 'actor_id', 'target_id', 'role_id', 'inherited']).execute();
    await db.schema.createIndex('assignments_actor').on('assignments').column('actor_id').execute();
    await db.schema.createIndex('assignments_target').on('assignments').column('target_id').execute();
    await db.schema.createIndex('assignments_role').on('assignments').column('role_id').execute();
    await db.schema.createTable('services')
      .addColumn('id', id, (c) => c.primaryKey()).addColumn('type', name, (c) => c.notNull())
      .addColumn('name', name, (c) => c.notNull()).addColumn('description', 'text', (c) => c.notNull())
      .addColumn('enabled', 'integer', (c) => c.notNull()).addColumn('extra', 'text', (c) => c.notNull()).execute();
    await db.schema.createTable('regions')
      .addColumn('id', 'varchar(255)', (c) => c.primaryKey()).addColumn('description', 'text', (c) => c.notNull())
      .addColumn('parent_region_id', 'varchar(255)').addColumn('extra', 'text', (c) => c.notNull()).execute();
    await db.schema.createTable('endpoints')
      .addColumn('id', id, (c) => c.primaryKey()).addColumn('service_id', id, (c) => c.notNull())
      .addColumn('interface', 'varchar(8)', (c) => c.notNull()).addColumn('url', 'text', (c) => c.notNull())
      .addColumn('region_id', 'varchar(255)').addColumn('enabled', 'integer', (c) => c.notNull())
      .addColumn('extra', 'text', (c) => c.notNull()).execute();
    await db.schema.createTable('application_credentials')
      .addColumn('id', id, (c) => c.primaryKey()).addColumn('name', name, (c) => c.notNull())
      .addColumn('user_id', id, (c) => c.notNull()).addColumn('project_id', id, (c) => c.notNull())
      .addColumn('secret_hash', 'varchar(512)', (c) => c.notNull()).addColumn('description', 'text', (c) => c.notNull())
      .addColumn('expires_at', ts).addColumn('unrestricted', 'integer', (c) => c.notNull())
      .addColumn('roles', 'text', (c) => c.notNull()).addColumn('access_rules', 'text', (c) => c.notNull())
      .addColumn('created_at', ts, (c) => c.notNull())
      .addUniqueConstraint('app_creds_user_name', ['user_id', 'name']).execute();
    await db.schema.createTable('revocation_events')
      .addColumn('id', id, (c) => c.primaryKey())
      .addColumn('user_id', id).addColumn('project_id', id).addColumn('audit_id', id).addColumn('domain_id', id)
      .addColumn('issued_before', ts, (c) => c.notNull()).addColumn('expires_at', ts)
      .addColumn('revoked_at', ts, (c) => c.notNull()).execute();
    await db.schema.createIndex('revocation_revoked_at').on('revocation_events').column('revoked_at').execute();
  },
};

const m002: Migration = {
  async up(db: Kysely<any>) {
    await db.schema.createTable('access_rules')
      .addColumn('id', id, (c) => c.primaryKey()).addColumn('user_id', id, (c) => c.notNull())
      .addColumn('service', name, (c) => c.notNull()).addColumn('path', 'varchar(255)', (c) => c.notNull())
      .addColumn('method', 'varchar(16)', (c) => c.notNull())
      .addUniqueConstraint('access_rules_unique', ['user_id', 'service', 'path', 'method']).execute();
  },
};

const m003: Migration = {
  async up(db: Kysely<any>) {
    await db.schema.createTable('credentials')
      .addColumn('id', id, (c) => c.primaryKey()).addColumn('user_id', id, (c) => c.notNull())
      .addColumn('project_id', id).addColumn('type', name, (c) => c.notNull())
      .addColumn('blob', 'text', (c) => c.notNull()).addColumn('extra', 'text', (c) => c.notNull()).execute();
    await db.schema.createIndex('credentials_user').on('credentials').column('user_id').execute();
    await db.schema.createTable('trusts')
      .addColumn('id', id, (c) => c.primaryKey()).addColumn('trustor_user_id', id, (c) => c.notNull())
      .addColumn('trustee_user_id', id, (c) => c.notNull()).addColumn('project_id', id)
      .addColumn('impersonation', 'integer', (c) => c.notNull()).addColumn('expires_at', ts)
      .addColumn('remaining_uses', 'integer').addColumn('extra', 'text', (c) => c.notNull())
      .addColumn('created_at', ts, (c) => c.notNull()).execute();
    await db.schema.createIndex('trusts_trustor').on('trusts').column('trustor_user_id').execute();
    await db.schema.createIndex('trusts_trustee').on('trusts').column('trustee_user_id').execute();
    await db.schema.createTable('trust_roles')
      .addColumn('trust_id', id, (c) => c.notNull()).addColumn('role_id', id, (c) => c.notNull())
      .addPrimaryKeyConstraint('trust_roles_pk', ['trust_id', 'role_id']).execute();
    await db.schema.createTable('oauth1_consumers')
      .addColumn('id', id, (c) => c.primaryKey()).addColumn('description', 'text', (c) => c.notNull())
      .addColumn('secret', 'varchar(128)', (c) => c.notNull()).addColumn('extra', 'text', (c) => c.notNull()).execute();
    await db.schema.createTable('policies')
      .addColumn('id', id, (c) => c.primaryKey()).addColumn('type', name, (c) => c.notNull())
      .addColumn('blob', 'text', (c) => c.notNull()).addColumn('extra', 'text', (c) => c.notNull()).execute();
    await db.schema.createTable('endpoint_groups')
      .addColumn('id', id, (c) => c.primaryKey()).addColumn('name', name, (c) => c.notNull())
      .addColumn('description', 'text', (c) => c.notNull()).addColumn('filters', 'text', (c) => c.notNull()).execute();
    await db.schema.createTable('project_endpoint_groups')
      .addColumn('endpoint_group_id', id, (c) => c.notNull()).addColumn('project_id', id, (c) => c.notNull())
      .addPrimaryKeyConstraint('project_endpoint_groups_pk', ['endpoint_group_id', 'project_id']).execute();
    await db.schema.createIndex('project_endpoint_groups_project').on('project_endpoint_groups').column('project_id').execute();
    await db.schema.createTable('project_endpoints')
      .addColumn('endpoint_id', id, (c) => c.notNull()).addColumn('project_id', id, (c) => c.notNull())
      .addPrimaryKeyConstraint('project_endpoints_pk', ['endpoint_id', 'project_id']).execute();
    await db.schema.createIndex('project_endpoints_project').on('project_endpoints').column('project_id').execute();
    await db.schema.createTable('domain_configs')
      .addColumn('domain_id', id, (c) => c.notNull()).addColumn('group_name', 'varchar(64)', (c) => c.notNull())
      .addColumn('option_name', 'varchar(64)', (c) => c.notNull()).addColumn('value', 'text', (c) => c.notNull())
      .addColumn('sensitive', 'integer', (c) => c.notNull())
      .addPrimaryKeyConstraint('domain_configs_pk', ['domain_id', 'group_name', 'option_name']).execute();
  },
};

const m004: Migration = {
  async up(db: Kysely<any>) {
    // Rows already there keep a NULL key_hash (plain) until credential_migrate seals them.
    await db.schema.alterTable('credentials').addColumn('key_hash', 'varchar(64)').execute();
  },
};

const m005: Migration = {
  async up(db: Kysely<any>) {
    await db.schema.createTable('oauth1_request_tokens')
      .addColumn('id', id, (c) => c.primaryKey()).addColumn('request_secret', id, (c) => c.notNull())
      .addColumn('consumer_id', id, (c) => c.notNull()).addColumn('requested_project_id', id, (c) => c.notNull())
      .addColumn('expires_at', ts).addColumn('verifier', 'varchar(16)').addColumn('authorizing_user_id', id)
      .addColumn('role_ids', 'text').execute();
    await db.schema.createTable('oauth1_access_tokens')
      .addColumn('id', id, (c) => c.primaryKey()).addColumn('access_secret', id, (c) => c.notNull())
      .addColumn('consumer_id', id, (c) => c.notNull()).addColumn('authorizing_user_id', id, (c) => c.notNull())
      .addColumn('project_id', id, (c) => c.notNull()).addColumn('role_ids', 'text', (c) => c.notNull())
      .addColumn('expires_at', ts).execute();
    await db.schema.createIndex('oauth1_access_tokens_user').on('oauth1_access_tokens').column('authorizing_user_id').execute();
  },
};

export const identityMigrations: MigrationSet = {
  name: 'identity',
  migrations: { '001_initial': m001, '002_access_rules': m002, '003_delegation_and_extensions': m003, '004_credential_encryption': m004, '005_oauth1_tokens': m005 },
};
export { sql };
