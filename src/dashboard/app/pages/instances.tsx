// The instance list: every server of the project (or of all projects, for admins) loaded page by
// page, then kept current by polling with changes-since — no reload, no full re-fetch.
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { call, getAll, isAdmin } from '../api.ts';
import { age, ErrorBox, Loading, Page, StatusBadge, Table, type Column } from '../ui.tsx';
import { LaunchWizard } from './launch.tsx';

export interface Server {
  id: string; name: string; status: string; created: string; updated: string; tenant_id: string;
  image: { id: string } | string; flavor: { original_name?: string; id?: string; vcpus?: number; ram?: number; disk?: number };
  'OS-EXT-STS:power_state'?: number; 'OS-EXT-STS:task_state'?: string | null; 'OS-EXT-STS:vm_state'?: string;
  'OS-EXT-SRV-ATTR:host'?: string | null; 'OS-EXT-AZ:availability_zone'?: string; locked?: boolean;
  fault?: { code: number; message: string; details?: string; created: string };
  metadata?: Record<string, string>; tags?: string[]; key_name?: string | null; user_id?: string;
}

export const POWER = ['NOSTATE', 'RUNNING', '', 'PAUSED', 'SHUTDOWN', '', 'CRASHED', 'SUSPENDED'];
export const power = (s: Server) => POWER[s['OS-EXT-STS:power_state'] ?? 0] || String(s['OS-EXT-STS:power_state']);

/** Polls /servers/detail?changes-since and merges the changes; DELETED ones leave the list. */
export function useLiveServers(allTenants: boolean) {
  const [servers, setServers] = useState<Map<string, Server>>();
  const [error, setError] = useState<Error>();
  const [renderedAt, setRenderedAt] = useState<number>();
  const since = useRef<string | undefined>(undefined);
  useEffect(() => {
    let live = true;
    let timer: ReturnType<typeof setTimeout>;
    const q = allTenants ? { all_tenants: 'True' } : {};
    // Changes are asked from a little before the previous answer's Date, the server's clock.
    const mark = (h?: Headers) => { const d = h?.get('date'); since.current = new Date((d ? Date.parse(d) : Date.now()) - 2000).toISOString().replace(/\.\d+Z$/, 'Z'); };
    const poll = async () => {
      try {
        const r = await call<{ servers: Server[] }>('compute', '/servers/detail', { query: { ...q, 'changes-since': since.current } });
        mark(r.headers);
        if (!live) return;
        if (r.body.servers.length) setServers((m) => {
          const next = new Map(m);
          for (const s of r.body.servers) if (s.status === 'DELETED') next.delete(s.id); else next.set(s.id, s);
          return next;
        });
        setError(undefined);
      } catch (e) { if (live) setError(e as Error); }
      if (live) timer = setTimeout(poll, 2000);
    };
    (async () => {
      try {
        const first = await call('compute', '/servers', { query: { limit: 1 } }); // for the Date header
        mark(first.headers);
        const all = await getAll<Server>('compute', '/servers/detail', 'servers', q);
        if (!live) return;
        performance.mark('servers-answered');
        setServers(new Map(all.map((s) => [s.id, s])));
        // The frame after the one that painted the rows: what the benchmark reads as "rendered".
        requestAnimationFrame(() => setTimeout(() => { performance.mark('servers-rendered'); setRenderedAt(performance.now()); }));
      } catch (e) { if (live) setError(e as Error); }
      if (live) timer = setTimeout(poll, 2000);
    })();
    return () => { live = false; clearTimeout(timer); };
  }, [allTenants]);
  return { servers, error, renderedAt, update: (s: Server) => setServers((m) => new Map(m).set(s.id, s)) };
}

export function ServerTable({ servers, admin, images, flavorsById }: { servers: Server[]; admin: boolean; images: Map<string, string>; flavorsById?: Map<string, string> }) {
  const imageName = (s: Server) => (typeof s.image === 'object' && s.image ? images.get(s.image.id) ?? s.image.id : 'volume');
  const columns: Column<Server>[] = [
    { key: 'name', label: 'Name', render: (s) => <a href={`#/instances/${s.id}`}>{s.name || s.id}</a>, value: (s) => s.name.toLowerCase() },
    { key: 'status', label: 'Status', render: (s) => <StatusBadge status={s.status} /> },
    { key: 'power', label: 'Power', value: power, render: power },
    { key: 'task', label: 'Task', value: (s) => s['OS-EXT-STS:task_state'] ?? '', render: (s) => s['OS-EXT-STS:task_state'] ?? '—' },
    { key: 'image', label: 'Image', value: imageName, render: imageName },
    { key: 'flavor', label: 'Flavor', value: (s) => s.flavor.original_name ?? flavorsById?.get(s.flavor.id ?? '') ?? '', render: (s) => s.flavor.original_name ?? flavorsById?.get(s.flavor.id ?? '') ?? s.flavor.id },
    ...(admin ? [{ key: 'host', label: 'Host', value: (s: Server) => s['OS-EXT-SRV-ATTR:host'] ?? '', render: (s: Server) => s['OS-EXT-SRV-ATTR:host'] ?? '—' }, { key: 'project', label: 'Project', render: (s: Server) => <code>{s.tenant_id.slice(0, 8)}</code>, value: (s: Server) => s.tenant_id }] : []),
    { key: 'az', label: 'Zone', value: (s) => s['OS-EXT-AZ:availability_zone'] ?? '', render: (s) => s['OS-EXT-AZ:availability_zone'] || '—' },
    { key: 'age', label: 'Age', value: (s) => s.created, render: (s) => age(s.created) },
  ];
  return <Table caption="Instances" rows={servers} columns={columns} rowKey={(s) => s.id} initialSort={{ key: 'age', dir: -1 }} empty="No instances." />;
}

export function useImageNames() {
  const [m, setM] = useState(new Map<string, string>());
  useEffect(() => { getAll<any>('image', '/v2/images', 'images', {}, 500).then((l) => setM(new Map(l.map((i) => [i.id, i.name ?? i.id]))))
    .catch((e) => console.warn('image names unavailable; instances show image ids', e)); }, []);
  return m;
}

export function InstanceList({ allTenants, title }: { allTenants: boolean; title: string }) {
  const { servers, error } = useLiveServers(allTenants);
  const images = useImageNames();
  const [filter, setFilter] = useState({ text: '', status: '' });
  const [launch, setLaunch] = useState(false);
  const list = useMemo(() => {
    const all = servers ? [...servers.values()] : [];
    const t = filter.text.toLowerCase();
    return all.filter((s) => (!t || s.name.toLowerCase().includes(t) || s.id.startsWith(t) || (s['OS-EXT-SRV-ATTR:host'] ?? '').includes(t))
      && (!filter.status || s.status === filter.status));
  }, [servers, filter]);
  const statuses = useMemo(() => [...new Set(servers ? [...servers.values()].map((s) => s.status) : [])].sort(), [servers]);
  return (
    <Page title={title} actions={!allTenants && <button type="button" class="primary" onClick={() => setLaunch(true)}>Launch instance</button>}>
      <div class="filters" role="search">
        <label>Filter <input type="search" value={filter.text} placeholder="name, ID or host" onInput={(e) => setFilter({ ...filter, text: e.currentTarget.value })} /></label>
        <label>Status <select value={filter.status} onChange={(e) => setFilter({ ...filter, status: e.currentTarget.value })}>
          <option value="">any</option>{statuses.map((s) => <option key={s}>{s}</option>)}
        </select></label>
        <span class="muted" aria-live="polite">{servers ? `${list.length} of ${servers.size}` : ''}</span>
      </div>
      <ErrorBox error={error} />
      {servers ? <ServerTable servers={list} admin={isAdmin()} images={images} /> : !error && <Loading what="instances" />}
      {launch && <LaunchWizard onClose={() => setLaunch(false)} />}
    </Page>
  );
}

export const Instances = () => <InstanceList allTenants={false} title="Instances" />;
