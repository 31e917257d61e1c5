// Operator pages for compute: hypervisors (usage from placement, as Nova ≥ 2.88 reports it),
// compute services, aggregates and zones, resource providers, every project's instances.
import { useState } from 'preact/hooks';
import { call, get } from '../api.ts';
import { act, Bar, confirmAction, ErrorBox, Field, Loading, Page, Table, useAsync } from '../ui.tsx';
import { InstanceList } from './instances.tsx';

async function providerUsage(uuid: string) {
  const [inv, use] = await Promise.all([
    get<any>('placement', `/resource_providers/${uuid}/inventories`).then((b) => b.inventories).catch(() => ({})),
    get<any>('placement', `/resource_providers/${uuid}/usages`).then((b) => b.usages).catch(() => ({})),
  ]);
  return Object.entries(inv as Record<string, any>).map(([rc, i]) => ({ rc, used: use[rc] ?? 0, total: Math.floor((i.total - i.reserved) * i.allocation_ratio) }));
}
const UNITS: Record<string, string> = { MEMORY_MB: ' MB', DISK_GB: ' GB' };
const Usage = ({ rows }: { rows: { rc: string; used: number; total: number }[] }) => <div class="bars">{rows.map((u) => <Bar key={u.rc} label={u.rc} used={u.used} total={u.total} unit={UNITS[u.rc] ?? ''} />)}</div>;

export function Hypervisors() {
  const r = useAsync(async () => {
    const hs = (await get<any>('compute', '/os-hypervisors/detail')).hypervisors as any[];
    return Promise.all(hs.map(async (h) => ({ ...h, usage: await providerUsage(h.id) })));
  }, []);
  return (
    <Page title="Hypervisors">
      <ErrorBox error={r.error} />
      {r.data ? <div class="cards">{r.data.map((h) => (
        <article class="card" key={h.id} aria-label={h.hypervisor_hostname}>
          <h2>{h.hypervisor_hostname}</h2>
          <p class="muted">{h.hypervisor_type} · {h.state} · {h.status} · {h.host_ip}</p>
          <Usage rows={h.usage} />
        </article>
      ))}</div> : !r.error && <Loading what="hypervisors" />}
    </Page>
  );
}

export function ComputeServices() {
  const r = useAsync(() => get<any>('compute', '/os-services').then((b) => b.services as any[]), []);
  const put = (what: string, id: string, body: unknown) => act(what, () => call('compute', `/os-services/${id}`, { method: 'PUT', body }), r.reload);
  return (
    <Page title="Compute services">
      <ErrorBox error={r.error} />
      {r.data ? <Table caption="Compute services" rows={r.data} rowKey={(s) => String(s.id)} columns={[
        { key: 'binary', label: 'Binary' }, { key: 'host', label: 'Host' }, { key: 'zone', label: 'Zone' },
        { key: 'status', label: 'Status', render: (s) => `${s.status}${s.disabled_reason ? ` (${s.disabled_reason})` : ''}` },
        { key: 'state', label: 'State' }, { key: 'forced_down', label: 'Forced down', render: (s) => (s.forced_down ? 'yes' : 'no') },
        { key: 'updated_at', label: 'Last heartbeat' },
        { key: 'x', label: 'Actions', sortable: false, render: (s) => s.binary !== 'nova-compute' ? '—' : <span class="buttons">
          {s.status === 'enabled'
            ? <button type="button" onClick={() => { const reason = prompt(`Why disable ${s.host}?`) ?? ''; put(`${s.host} disabled`, s.id, { status: 'disabled', disabled_reason: reason || undefined }); }}>Disable</button>
            : <button type="button" onClick={() => put(`${s.host} enabled`, s.id, { status: 'enabled' })}>Enable</button>}
          <button type="button" onClick={async () => { if (s.forced_down || await confirmAction(`Force ${s.host} down? Its instances can then be evacuated.`, 'Force down')) put(`${s.host} forced_down=${!s.forced_down}`, s.id, { forced_down: !s.forced_down }); }}>{s.forced_down ? 'Unset force-down' : 'Force down'}</button>
        </span> },
      ]} /> : !r.error && <Loading what="services" />}
    </Page>
  );
}

export function Aggregates() {
  const r = useAsync(async () => ({
    aggregates: (await get<any>('compute', '/os-aggregates')).aggregates as any[],
    zones: (await get<any>('compute', '/os-availability-zone/detail')).availabilityZoneInfo as any[],
  }), []);
  const [f, setF] = useState({ name: '', az: '' });
  const action = (id: number, body: unknown, what: string) => act(what, () => call('compute', `/os-aggregates/${id}/action`, { method: 'POST', body }), r.reload);
  return (
    <Page title="Aggregates and zones">
      <form class="inline" onSubmit={(e) => { e.preventDefault(); act(`Aggregate ${f.name} created`, () => call('compute', '/os-aggregates', { method: 'POST', body: { aggregate: { name: f.name, availability_zone: f.az || null } } }), () => { setF({ name: '', az: '' }); r.reload(); }); }}>
        <Field label="Aggregate name"><input required value={f.name} onInput={(e) => setF({ ...f, name: e.currentTarget.value })} /></Field>
        <Field label="Availability zone (optional)"><input value={f.az} onInput={(e) => setF({ ...f, az: e.currentTarget.value })} /></Field>
        <button type="submit">Create aggregate</button>
      </form>
      <ErrorBox error={r.error} />
      {r.data && <>
        <Table caption="Host aggregates" rows={r.data.aggregates} rowKey={(a) => String(a.id)} columns={[
          { key: 'name', label: 'Name' }, { key: 'availability_zone', label: 'Zone', render: (a) => a.availability_zone ?? '—' },
          { key: 'hosts', label: 'Hosts', render: (a) => a.hosts.join(', ') || '—' },
          { key: 'metadata', label: 'Metadata', render: (a) => Object.entries(a.metadata).map(([k, v]) => `${k}=${v}`).join(', ') },
          { key: 'x', label: 'Actions', sortable: false, render: (a) => <span class="buttons">
            <button type="button" onClick={() => { const host = prompt('Host to add'); if (host) action(a.id, { add_host: { host } }, `${host} added to ${a.name}`); }}>Add host</button>
            <button type="button" disabled={!a.hosts.length} onClick={() => { const host = prompt(`Host to remove (${a.hosts.join(', ')})`); if (host) action(a.id, { remove_host: { host } }, `${host} removed from ${a.name}`); }}>Remove host</button>
            <button type="button" class="danger" onClick={async () => { if (await confirmAction(`Delete aggregate ${a.name}?`, 'Delete')) act('Aggregate deleted', () => call('compute', `/os-aggregates/${a.id}`, { method: 'DELETE' }), r.reload); }}>Delete</button>
          </span> },
        ]} empty="No aggregates." />
        <h2>Availability zones</h2>
        <Table caption="Availability zones" rows={r.data.zones} rowKey={(z) => z.zoneName} columns={[
          { key: 'zoneName', label: 'Zone' }, { key: 'state', label: 'Available', render: (z) => (z.zoneState.available ? 'yes' : 'no') },
          { key: 'hosts', label: 'Hosts', render: (z) => Object.keys(z.hosts ?? {}).join(', ') || '—' },
        ]} />
      </>}
    </Page>
  );
}

export function ResourceProviders() {
  const r = useAsync(async () => {
    const rps = (await get<any>('placement', '/resource_providers')).resource_providers as any[];
    return Promise.all(rps.map(async (p) => ({ ...p, usage: await providerUsage(p.uuid) })));
  }, []);
  return (
    <Page title="Resource providers">
      <ErrorBox error={r.error} />
      {r.data ? <div class="cards">{r.data.map((p) => (
        <article class="card" key={p.uuid} aria-label={p.name}>
          <h2>{p.name}</h2>
          <p class="muted"><code>{p.uuid}</code> · generation {p.generation}</p>
          {p.usage.length ? <Usage rows={p.usage} /> : <p class="muted">No inventory.</p>}
        </article>
      ))}</div> : !r.error && <Loading what="resource providers" />}
    </Page>
  );
}

export const AdminInstances = () => <InstanceList allTenants title="All instances" />;
