// API access: the catalog of this token, and clouds.yaml / openrc for the CLI and SDKs.
import { currentSession, getConfig } from '../api.ts';
import { download, Page, Table } from '../ui.tsx';

export function ApiAccess() {
  const s = currentSession()!;
  const { identityUrl, region } = getConfig();
  const auth = new URL(identityUrl, location.href).href;
  const rows = s.catalog.flatMap((c) => c.endpoints.filter((e) => e.interface === 'public').map((e) => ({ type: c.type, name: c.name ?? '', region: e.region_id ?? e.region ?? '', url: e.url })));
  const project = s.project;
  const clouds = [
    'clouds:', '  stratus:', '    auth:', `      auth_url: ${auth}`, `      username: ${JSON.stringify(s.user.name)}`,
    `      project_id: ${project?.id ?? ''}`, `      project_name: ${JSON.stringify(project?.name ?? '')}`,
    `      user_domain_name: ${JSON.stringify(s.user.domain.name)}`, `      project_domain_name: ${JSON.stringify(project?.domain.name ?? 'Default')}`,
    `    region_name: ${JSON.stringify(region)}`, '    interface: public', '    identity_api_version: 3', '',
  ].join('\n');
  const q = (v: string) => `'${v.replace(/'/g, `'\\''`)}'`;
  const openrc = [
    '#!/usr/bin/env bash', `# openrc for ${s.user.name} in project ${project?.name ?? ''}: source it, it asks for the password.`,
    `export OS_AUTH_URL=${q(auth)}`, 'export OS_IDENTITY_API_VERSION=3', `export OS_USERNAME=${q(s.user.name)}`,
    `export OS_USER_DOMAIN_NAME=${q(s.user.domain.name)}`, `export OS_PROJECT_ID=${q(project?.id ?? '')}`, `export OS_PROJECT_NAME=${q(project?.name ?? '')}`,
    `export OS_PROJECT_DOMAIN_NAME=${q(project?.domain.name ?? 'Default')}`, `export OS_REGION_NAME=${q(region)}`, 'export OS_INTERFACE=public',
    'read -srp "Password for $OS_USERNAME: " OS_PASSWORD && echo && export OS_PASSWORD', '',
  ].join('\n');
  return (
    <Page title="API access" actions={<>
      <button type="button" onClick={() => download('clouds.yaml', clouds, 'application/yaml')}>Download clouds.yaml</button>
      <button type="button" onClick={() => download(`${project?.name ?? 'stratus'}-openrc.sh`, openrc)}>Download openrc</button>
    </>}>
      <Table caption="Service catalog" rows={rows} rowKey={(r) => `${r.type}-${r.region}-${r.url}`} columns={[
        { key: 'type', label: 'Service' }, { key: 'name', label: 'Name' }, { key: 'region', label: 'Region' }, { key: 'url', label: 'URL', render: (r) => <code>{r.url}</code> },
      ]} />
      <h2>clouds.yaml</h2>
      <pre class="snippet" tabIndex={0}>{clouds}</pre>
    </Page>
  );
}
