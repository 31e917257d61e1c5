// The credentials an openstack client would use: `--os-cloud NAME` / OS_CLOUD in clouds.yaml
// (OS_CLIENT_CONFIG_FILE, ./clouds.yaml, ~/.config/openstack/clouds.yaml,
// /etc/openstack/clouds.yaml — the first that names the cloud, as os-client-config looks), else
// the OS_* environment variables (admin-openrc).
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { ConfigError } from '../common/config.ts';
import type { PasswordCredentials } from '../compute/workers.ts';

export interface ClientCredentials extends PasswordCredentials { authUrl: string; region?: string; interface?: string }

export function cloudsYamlPaths(env: NodeJS.ProcessEnv = process.env): string[] {
  return [env.OS_CLIENT_CONFIG_FILE, join(process.cwd(), 'clouds.yaml'), join(homedir(), '.config', 'openstack', 'clouds.yaml'), '/etc/openstack/clouds.yaml']
    .filter((p): p is string => !!p);
}

export function clientCredentials(cloud: string | undefined, env: NodeJS.ProcessEnv = process.env): ClientCredentials {
  const name = cloud ?? env.OS_CLOUD;
  if (name) {
    for (const path of cloudsYamlPaths(env)) {
      if (!existsSync(path)) continue;
      const c = (parse(readFileSync(path, 'utf8')) as { clouds?: Record<string, any> } | null)?.clouds?.[name];
      if (!c) continue;
      const a = c.auth ?? {};
      return required({
        authUrl: a.auth_url, username: a.username, password: a.password, projectName: a.project_name,
        userDomainName: a.user_domain_name ?? a.domain_name, projectDomainName: a.project_domain_name ?? a.domain_name,
        region: c.region_name, interface: c.interface,
      }, `cloud ${name} in ${path}`);
    }
    throw new ConfigError(`No cloud named ${name} in ${cloudsYamlPaths(env).join(', ')}`);
  }
  return required({
    authUrl: env.OS_AUTH_URL!, username: env.OS_USERNAME!, password: env.OS_PASSWORD!, projectName: env.OS_PROJECT_NAME ?? env.OS_TENANT_NAME!,
    userDomainName: env.OS_USER_DOMAIN_NAME ?? env.OS_DOMAIN_NAME, projectDomainName: env.OS_PROJECT_DOMAIN_NAME ?? env.OS_DOMAIN_NAME,
    region: env.OS_REGION_NAME, interface: env.OS_INTERFACE,
  }, 'the OS_* environment (source admin-openrc, or give --os-cloud)');
}

function required(c: ClientCredentials, where: string): ClientCredentials {
  const missing = (['authUrl', 'username', 'password', 'projectName'] as const).filter((k) => !c[k]);
  if (missing.length) throw new ConfigError(`No ${missing.map((k) => ({ authUrl: 'auth_url', username: 'username', password: 'password', projectName: 'project_name' })[k]).join(', ')} in ${where}`);
  return c;
}
