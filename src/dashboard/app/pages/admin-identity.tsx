// Identity administration (projects, users, roles, assignments) and per-project quotas.
import { useState } from 'preact/hooks';
import { call, get } from '../api.ts';
import { act, confirmAction, ErrorBox, Field, Loading, Page, Table, useAsync } from '../ui.tsx';

export function Identity() {
  const r = useAsync(async () => {
    const [projects, users, roles, assignments] = await Promise.all([
      get<any>('identity', '/projects').then((b) => b.projects as any[]),
      get<any>('identity', '/users').then((b) => b.users as any[]),
      get<any>('identity', '/roles').then((b) => b.roles as any[]),
      get<any>('identity', '/role_assignments', { include_names: 'true' }).then((b) => b.role_assignments as any[]),
    ]);
    return { projects, users, roles, assignments };
  }, []);
  const [p, setP] = useState('');
  const [u, setU] = useState({ name: '', password: '', project: '' });
  const [g, setG] = useState({ user: '', project: '', role: '' });
  if (r.error) return <Page title="Projects, users, roles"><ErrorBox error={r.error} /></Page>;
  if (!r.data) return <Page title="Projects, users, roles"><Loading what="identity" /></Page>;
  const d = r.data;
  return (
    <Page title="Projects, users, roles">
      <h2>Projects</h2>
      <form class="inline" onSubmit={(e) => { e.preventDefault(); act(`Project ${p} created`, () => call('identity', '/projects', { method: 'POST', body: { project: { name: p, domain_id: 'default' } } }), () => { setP(''); r.reload(); }); }}>
        <Field label="New project"><input required value={p} onInput={(e) => setP(e.currentTarget.value)} /></Field><button type="submit">Create project</button>
      </form>
      <Table caption="Projects" rows={d.projects} rowKey={(x) => x.id} columns={[
        { key: 'name', label: 'Name' }, { key: 'id', label: 'ID', render: (x) => <code>{x.id}</code> }, { key: 'enabled', label: 'Enabled', render: (x) => (x.enabled ? 'yes' : 'no') },
        { key: 'x', label: '', sortable: false, render: (x) => <button type="button" class="danger" onClick={async () => { if (await confirmAction(`Delete project ${x.name}?`, 'Delete')) act('Project deleted', () => call('identity', `/projects/${x.id}`, { method: 'DELETE' }), r.reload); }}>Delete</button> },
      ]} />
      <h2>Users</h2>
      <form class="inline" onSubmit={(e) => { e.preventDefault(); act(`User ${u.name} created`, () => call('identity', '/users', { method: 'POST', body: { user: { name: u.name, password: u.password, domain_id: 'default', default_project_id: u.project || undefined } } }), () => { setU({ name: '', password: '', project: '' }); r.reload(); }); }}>
        <Field label="User name"><input required value={u.name} onInput={(e) => setU({ ...u, name: e.currentTarget.value })} /></Field>
        <Field label="Password"><input type="password" required autoComplete="new-password" value={u.password} onInput={(e) => setU({ ...u, password: e.currentTarget.value })} /></Field>
        <Field label="Default project"><select value={u.project} onChange={(e) => setU({ ...u, project: e.currentTarget.value })}><option value="">none</option>{d.projects.map((x) => <option key={x.id} value={x.id}>{x.name}</option>)}</select></Field>
        <button type="submit">Create user</button>
      </form>
      <Table caption="Users" rows={d.users} rowKey={(x) => x.id} columns={[
        { key: 'name', label: 'Name' }, { key: 'id', label: 'ID', render: (x) => <code>{x.id}</code> }, { key: 'enabled', label: 'Enabled', render: (x) => (x.enabled ? 'yes' : 'no') },
        { key: 'x', label: '', sortable: false, render: (x) => <button type="button" class="danger" onClick={async () => { if (await confirmAction(`Delete user ${x.name}?`, 'Delete')) act('User deleted', () => call('identity', `/users/${x.id}`, { method: 'DELETE' }), r.reload); }}>Delete</button> },
      ]} />
      <h2>Role assignments</h2>
      <form class="inline" onSubmit={(e) => { e.preventDefault(); act('Role granted', () => call('identity', `/projects/${g.project}/users/${g.user}/roles/${g.role}`, { method: 'PUT' }), r.reload); }}>
        <Field label="User"><select required value={g.user} onChange={(e) => setG({ ...g, user: e.currentTarget.value })}><option value="">choose</option>{d.users.map((x) => <option key={x.id} value={x.id}>{x.name}</option>)}</select></Field>
        <Field label="Project"><select required value={g.project} onChange={(e) => setG({ ...g, project: e.currentTarget.value })}><option value="">choose</option>{d.projects.map((x) => <option key={x.id} value={x.id}>{x.name}</option>)}</select></Field>
        <Field label="Role"><select required value={g.role} onChange={(e) => setG({ ...g, role: e.currentTarget.value })}><option value="">choose</option>{d.roles.map((x) => <option key={x.id} value={x.id}>{x.name}</option>)}</select></Field>
        <button type="submit">Grant</button>
      </form>
      <Table caption="Role assignments" rows={d.assignments} rowKey={(a) => `${a.user?.id ?? a.group?.id}-${a.role.id}-${a.scope.project?.id ?? a.scope.domain?.id ?? 'system'}`} columns={[
        { key: 'who', label: 'User or group', value: (a) => a.user?.name ?? a.group?.name ?? '', render: (a) => a.user?.name ?? a.group?.name ?? '—' },
        { key: 'role', label: 'Role', value: (a) => a.role.name, render: (a) => a.role.name },
        { key: 'scope', label: 'Scope', value: (a) => a.scope.project?.name ?? '', render: (a) => a.scope.project ? `project ${a.scope.project.name}` : a.scope.domain ? `domain ${a.scope.domain.name}` : 'system' },
        { key: 'x', label: '', sortable: false, render: (a) => a.user && a.scope.project ? <button type="button" onClick={async () => { if (await confirmAction(`Revoke ${a.role.name} of ${a.user.name} on ${a.scope.project.name}?`, 'Revoke')) act('Role revoked', () => call('identity', `/projects/${a.scope.project.id}/users/${a.user.id}/roles/${a.role.id}`, { method: 'DELETE' }), r.reload); }}>Revoke</button> : null },
      ]} />
    </Page>
  );
}

const QUOTA_KEYS = ['instances', 'cores', 'ram', 'key_pairs', 'server_groups', 'server_group_members', 'metadata_items'];

export function Quotas() {
  const projects = useAsync(() => get<any>('identity', '/projects').then((b) => b.projects as any[]), []);
  const [pid, setPid] = useState('');
  const q = useAsync(() => (pid ? get<any>('compute', `/os-quota-sets/${pid}/detail`).then((b) => b.quota_set) : Promise.resolve(undefined)), [pid]);
  const [edits, setEdits] = useState<Record<string, string>>({});
  return (
    <Page title="Quotas">
      <ErrorBox error={projects.error} />
      <Field label="Project"><select value={pid} onChange={(e) => { setPid(e.currentTarget.value); setEdits({}); }}><option value="">choose a project</option>{(projects.data ?? []).map((p) => <option key={p.id} value={p.id}>{p.name}</option>)}</select></Field>
      <ErrorBox error={q.error} />
      {q.data && <form onSubmit={(e) => { e.preventDefault(); act('Quotas saved', () => call('compute', `/os-quota-sets/${pid}`, { method: 'PUT', body: { quota_set: Object.fromEntries(Object.entries(edits).map(([k, v]) => [k, Number(v)])) } }), q.reload); }}>
        <Table caption="Quotas" rows={QUOTA_KEYS.filter((k) => q.data[k])} rowKey={(k) => k} pageSize={100} columns={[
          { key: 'k', label: 'Resource', render: (k) => k },
          { key: 'used', label: 'In use', render: (k) => q.data[k].in_use },
          { key: 'limit', label: 'Limit (-1: unlimited)', render: (k) => <input type="number" min={-1} aria-label={`${k} limit`} value={edits[k] ?? String(q.data[k].limit)} onInput={(e) => setEdits({ ...edits, [k]: e.currentTarget.value })} /> },
        ]} />
        <button type="submit" disabled={!Object.keys(edits).length}>Save quotas</button>
      </form>}
    </Page>
  );
}
