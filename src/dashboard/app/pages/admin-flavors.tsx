// Flavor management: create, delete, extra specs, project access for private flavors.
import { useState } from 'preact/hooks';
import { call, get } from '../api.ts';
import { act, confirmAction, ErrorBox, Field, KeyValueEditor, Loading, Modal, Page, Table, useAsync } from '../ui.tsx';
import { flavorColumns } from './flavors.tsx';

function FlavorEdit({ flavor, onClose }: { flavor: any; onClose: () => void }) {
  const specs = useAsync(() => get<any>('compute', `/flavors/${flavor.id}/os-extra_specs`).then((b) => Object.entries(b.extra_specs as Record<string, string>)), [flavor.id]);
  const access = useAsync(() => flavor['os-flavor-access:is_public'] ? Promise.resolve([]) : get<any>('compute', `/flavors/${flavor.id}/os-flavor-access`).then((b) => b.flavor_access as any[]), [flavor.id]);
  const [rows, setRows] = useState<[string, string][] | undefined>();
  const [tenant, setTenant] = useState('');
  const current = rows ?? specs.data ?? [];
  const save = async () => {
    const before = new Map(specs.data ?? []);
    const after = new Map(current.filter(([k]) => k.trim()));
    for (const k of before.keys()) if (!after.has(k)) await call('compute', `/flavors/${flavor.id}/os-extra_specs/${encodeURIComponent(k)}`, { method: 'DELETE' });
    if (after.size) await call('compute', `/flavors/${flavor.id}/os-extra_specs`, { method: 'POST', body: { extra_specs: Object.fromEntries(after) } });
  };
  const flavorAction = (body: unknown, what: string) => act(what, () => call('compute', `/flavors/${flavor.id}/action`, { method: 'POST', body }), access.reload);
  return (
    <Modal title={`Flavor ${flavor.name}`} onClose={onClose} wide>
      <ErrorBox error={specs.error} />
      {specs.data ? <form onSubmit={(e) => { e.preventDefault(); act('Extra specs saved', save, specs.reload); }}>
        <KeyValueEditor label="Extra specs" value={current} onChange={setRows} />
        <button type="submit">Save extra specs</button>
      </form> : <Loading what="extra specs" />}
      {!flavor['os-flavor-access:is_public'] && <section>
        <h3>Project access</h3>
        <ErrorBox error={access.error} />
        <ul>{(access.data ?? []).map((a: any) => <li key={a.tenant_id}><code>{a.tenant_id}</code> <button type="button" onClick={() => flavorAction({ removeTenantAccess: { tenant: a.tenant_id } }, 'Access removed')}>Remove</button></li>)}</ul>
        <form class="inline" onSubmit={(e) => { e.preventDefault(); flavorAction({ addTenantAccess: { tenant } }, 'Access added'); }}>
          <Field label="Project ID"><input required value={tenant} onInput={(e) => setTenant(e.currentTarget.value)} /></Field><button type="submit">Grant access</button>
        </form>
      </section>}
    </Modal>
  );
}

export function AdminFlavors() {
  const r = useAsync(() => get<any>('compute', '/flavors/detail', { is_public: 'None' }).then((b) => b.flavors as any[]), []);
  const [f, setF] = useState({ name: '', vcpus: '1', ram: '512', disk: '1', isPublic: true });
  const [edit, setEdit] = useState<any>();
  const create = (e: Event) => {
    e.preventDefault();
    act(`Flavor ${f.name} created`, () => call('compute', '/flavors', { method: 'POST', body: { flavor: { name: f.name, vcpus: Number(f.vcpus), ram: Number(f.ram), disk: Number(f.disk), 'os-flavor-access:is_public': f.isPublic } } }), r.reload);
  };
  return (
    <Page title="Flavors (admin)">
      <form class="inline" onSubmit={create}>
        <Field label="Name"><input required value={f.name} onInput={(e) => setF({ ...f, name: e.currentTarget.value })} /></Field>
        <Field label="vCPUs"><input type="number" min={1} required value={f.vcpus} onInput={(e) => setF({ ...f, vcpus: e.currentTarget.value })} /></Field>
        <Field label="RAM (MB)"><input type="number" min={1} required value={f.ram} onInput={(e) => setF({ ...f, ram: e.currentTarget.value })} /></Field>
        <Field label="Disk (GB)"><input type="number" min={0} required value={f.disk} onInput={(e) => setF({ ...f, disk: e.currentTarget.value })} /></Field>
        <label class="check"><input type="checkbox" checked={f.isPublic} onChange={(e) => setF({ ...f, isPublic: e.currentTarget.checked })} /> Public</label>
        <button type="submit">Create flavor</button>
      </form>
      <ErrorBox error={r.error} />
      {r.data ? <Table caption="Flavors" rows={r.data} rowKey={(x) => x.id} initialSort={{ key: 'vcpus', dir: 1 }} columns={[...flavorColumns, {
        key: 'x', label: 'Actions', sortable: false, render: (x: any) => <span class="buttons">
          <button type="button" onClick={() => setEdit(x)}>Extra specs / access</button>
          <button type="button" class="danger" onClick={async () => { if (await confirmAction(`Delete flavor ${x.name}?`, 'Delete')) act('Flavor deleted', () => call('compute', `/flavors/${x.id}`, { method: 'DELETE' }), r.reload); }}>Delete</button>
        </span>,
      }]} /> : !r.error && <Loading what="flavors" />}
      {edit && <FlavorEdit flavor={edit} onClose={() => setEdit(undefined)} />}
    </Page>
  );
}
