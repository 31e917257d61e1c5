// Server groups: affinity rules the scheduler applies to the members.
import { useState } from 'preact/hooks';
import { call, get } from '../api.ts';
import { act, confirmAction, ErrorBox, Field, Loading, Page, Table, useAsync } from '../ui.tsx';

export function ServerGroups() {
  const r = useAsync(() => get<any>('compute', '/os-server-groups').then((b) => b.server_groups as any[]), []);
  const [name, setName] = useState('');
  const [policy, setPolicy] = useState('anti-affinity');
  return (
    <Page title="Server groups">
      <form class="inline" onSubmit={(e) => { e.preventDefault(); act(`Server group ${name} created`, () => call('compute', '/os-server-groups', { method: 'POST', body: { server_group: { name, policy } } }), () => { setName(''); r.reload(); }); }}>
        <Field label="Name"><input required value={name} onInput={(e) => setName(e.currentTarget.value)} /></Field>
        <Field label="Policy"><select value={policy} onChange={(e) => setPolicy(e.currentTarget.value)}>{['anti-affinity', 'affinity', 'soft-anti-affinity', 'soft-affinity'].map((p) => <option key={p}>{p}</option>)}</select></Field>
        <button type="submit">Create</button>
      </form>
      <ErrorBox error={r.error} />
      {r.data ? <Table caption="Server groups" rows={r.data} rowKey={(g) => g.id} columns={[
        { key: 'name', label: 'Name' }, { key: 'policy', label: 'Policy' },
        { key: 'members', label: 'Members', value: (g) => g.members.length, render: (g) => g.members.length },
        { key: 'x', label: '', sortable: false, render: (g) => <button type="button" class="danger" onClick={async () => {
          if (await confirmAction(`Delete server group ${g.name}?`, 'Delete')) act('Server group deleted', () => call('compute', `/os-server-groups/${g.id}`, { method: 'DELETE' }), r.reload);
        }}>Delete</button> },
      ]} empty="No server groups." /> : !r.error && <Loading what="server groups" />}
    </Page>
  );
}
