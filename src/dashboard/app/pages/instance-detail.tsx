// One instance: overview with the fault in full, every action the API has (disabled with the
// reason where the state forbids it), the action log, the console log with a live tail, the
// VNC console when the host offers one, metadata and tags.
import { useEffect, useState } from 'preact/hooks';
import { call, get, isAdmin } from '../api.ts';
import { act, age, confirmAction, ErrorBox, Field, KeyValueEditor, Loading, Modal, Page, StatusBadge, useAsync } from '../ui.tsx';
import { power, useImageNames, type Server } from './instances.tsx';
import { routeTo } from '../routes.tsx';

interface ActionDef { id: string; label: string; body: (arg?: any) => unknown; allowed: string[]; confirm?: string; ask?: 'image' | 'flavor' | 'name' }
const ANY = ['ACTIVE', 'SHUTOFF', 'PAUSED', 'SUSPENDED', 'ERROR', 'RESCUE', 'SHELVED', 'SHELVED_OFFLOADED', 'VERIFY_RESIZE', 'BUILD', 'REBOOT', 'HARD_REBOOT'];
const ACTIONS: ActionDef[] = [
  { id: 'start', label: 'Start', body: () => ({ 'os-start': null }), allowed: ['SHUTOFF'] },
  { id: 'stop', label: 'Stop', body: () => ({ 'os-stop': null }), allowed: ['ACTIVE', 'ERROR', 'RESCUE'], confirm: 'Stop this instance? Its guest is shut down.' },
  { id: 'reboot', label: 'Reboot', body: () => ({ reboot: { type: 'SOFT' } }), allowed: ['ACTIVE'] },
  { id: 'hard-reboot', label: 'Hard reboot', body: () => ({ reboot: { type: 'HARD' } }), allowed: ['ACTIVE', 'SHUTOFF', 'ERROR', 'PAUSED', 'SUSPENDED'], confirm: 'Hard reboot cuts the power: unsaved guest data may be lost.' },
  { id: 'pause', label: 'Pause', body: () => ({ pause: null }), allowed: ['ACTIVE'] },
  { id: 'unpause', label: 'Unpause', body: () => ({ unpause: null }), allowed: ['PAUSED'] },
  { id: 'suspend', label: 'Suspend', body: () => ({ suspend: null }), allowed: ['ACTIVE'] },
  { id: 'resume', label: 'Resume', body: () => ({ resume: null }), allowed: ['SUSPENDED'] },
  { id: 'rescue', label: 'Rescue', body: () => ({ rescue: null }), allowed: ['ACTIVE', 'SHUTOFF', 'ERROR'], confirm: 'Rescue reboots the instance from a rescue image.' },
  { id: 'unrescue', label: 'Unrescue', body: () => ({ unrescue: null }), allowed: ['RESCUE'] },
  { id: 'shelve', label: 'Shelve', body: () => ({ shelve: null }), allowed: ['ACTIVE', 'SHUTOFF', 'PAUSED', 'SUSPENDED'], confirm: 'Shelve stops the instance and frees its host resources.' },
  { id: 'unshelve', label: 'Unshelve', body: () => ({ unshelve: null }), allowed: ['SHELVED', 'SHELVED_OFFLOADED'] },
  { id: 'snapshot', label: 'Snapshot', body: (name) => ({ createImage: { name } }), allowed: ['ACTIVE', 'SHUTOFF', 'PAUSED', 'SUSPENDED'], ask: 'name' },
  { id: 'resize', label: 'Resize', body: (flavorRef) => ({ resize: { flavorRef } }), allowed: ['ACTIVE', 'SHUTOFF'], ask: 'flavor' },
  { id: 'confirm-resize', label: 'Confirm resize', body: () => ({ confirmResize: null }), allowed: ['VERIFY_RESIZE'] },
  { id: 'revert-resize', label: 'Revert resize', body: () => ({ revertResize: null }), allowed: ['VERIFY_RESIZE'] },
  { id: 'rebuild', label: 'Rebuild', body: (imageRef) => ({ rebuild: { imageRef } }), allowed: ['ACTIVE', 'SHUTOFF', 'ERROR'], ask: 'image', confirm: 'Rebuild erases the root disk and boots the chosen image.' },
];

/** Why an action is not possible now, or undefined. */
export function actionBlocked(a: { allowed: string[] }, s: Server): string | undefined {
  const task = s['OS-EXT-STS:task_state'];
  if (task) return `busy: ${task}`;
  if (s.locked && !isAdmin()) return 'the instance is locked';
  if (!a.allowed.includes(s.status)) return `not possible while ${s.status}`;
  return undefined;
}

function ActionBar({ server, reload }: { server: Server; reload: () => void }) {
  const [ask, setAsk] = useState<ActionDef>();
  const run = async (a: ActionDef, arg?: unknown) => {
    if (a.confirm && !(await confirmAction(`${a.confirm} (${server.name})`, a.label))) return;
    await act(`${a.label} ${server.name}`, () => call('compute', `/servers/${server.id}/action`, { method: 'POST', body: a.body(arg) }), reload);
  };
  const lock = server.locked ? { label: 'Unlock', body: { unlock: null } } : { label: 'Lock', body: { lock: null } };
  return (
    <div class="actions" role="toolbar" aria-label="Instance actions">
      {ACTIONS.map((a) => {
        const why = actionBlocked(a, server);
        return <button type="button" key={a.id} disabled={!!why} title={why} aria-describedby={why ? `why-${a.id}` : undefined} onClick={() => (a.ask ? setAsk(a) : run(a))}>
          {a.label}{why && <span class="sr-only" id={`why-${a.id}`}>: {why}</span>}
        </button>;
      })}
      <button type="button" onClick={() => act(`${lock.label} ${server.name}`, () => call('compute', `/servers/${server.id}/action`, { method: 'POST', body: lock.body }), reload)}>{lock.label}</button>
      <button type="button" class="danger" onClick={async () => {
        if (!(await confirmAction(`Delete instance ${server.name}? This cannot be undone.`, 'Delete'))) return;
        if (await act(`Delete ${server.name}`, () => call('compute', `/servers/${server.id}`, { method: 'DELETE' }))) routeTo('/instances');
      }}>Delete</button>
      {ask && <AskDialog action={ask} onClose={() => setAsk(undefined)} onRun={(v) => { setAsk(undefined); run(ask, v); }} />}
    </div>
  );
}

function AskDialog({ action, onClose, onRun }: { action: ActionDef; onClose: () => void; onRun: (v: string) => void }) {
  const opts = useAsync(async () => action.ask === 'image' ? (await get<any>('image', '/v2/images', { status: 'active' })).images.map((i: any) => [i.id, i.name ?? i.id])
    : action.ask === 'flavor' ? (await get<any>('compute', '/flavors')).flavors.map((f: any) => [f.id, f.name]) : [], []);
  const [v, setV] = useState('');
  return (
    <Modal title={action.label} onClose={onClose}>
      <form onSubmit={(e) => { e.preventDefault(); onRun(v); }}>
        {action.ask === 'name' ? <Field label="Snapshot name"><input required value={v} onInput={(e) => setV(e.currentTarget.value)} /></Field>
          : <Field label={action.ask === 'image' ? 'Image' : 'Flavor'}>
            <select required value={v} onChange={(e) => setV(e.currentTarget.value)}><option value="">Choose</option>{(opts.data ?? []).map(([id, n]: string[]) => <option key={id} value={id}>{n}</option>)}</select>
          </Field>}
        <ErrorBox error={opts.error} />
        <div class="buttons"><button type="submit" class="primary">{action.label}</button><button type="button" onClick={onClose}>Cancel</button></div>
      </form>
    </Modal>
  );
}

function ConsoleLog({ id }: { id: string }) {
  const [length, setLength] = useState(50);
  const [tail, setTail] = useState(false);
  const [text, setText] = useState<string>();
  const [error, setError] = useState<unknown>();
  useEffect(() => {
    let live = true;
    let t: ReturnType<typeof setTimeout>;
    const load = async () => {
      try {
        const r = await call<{ output: string }>('compute', `/servers/${id}/action`, { method: 'POST', body: { 'os-getConsoleOutput': { length: length > 0 ? length : null } } });
        if (live) { setText(r.body.output); setError(undefined); }
      } catch (e) { if (live) setError(e); }
      if (live && tail) t = setTimeout(load, 2000);
    };
    load();
    return () => { live = false; clearTimeout(t); };
  }, [id, length, tail]);
  return (
    <div>
      <div class="filters">
        <label>Lines <input type="number" min={0} value={length} onChange={(e) => setLength(Number(e.currentTarget.value) || 0)} /></label>
        <span class="hint">0 = whole log</span>
        <label class="check"><input type="checkbox" checked={tail} onChange={(e) => setTail(e.currentTarget.checked)} /> Live tail</label>
      </div>
      <ErrorBox error={error} />
      <pre class="console" aria-label="Console log" tabIndex={0}>{text ?? 'Loading…'}</pre>
    </div>
  );
}

function VncConsole({ id }: { id: string }) {
  const r = useAsync(() => call<any>('compute', `/servers/${id}/remote-consoles`, { method: 'POST', body: { remote_console: { protocol: 'vnc', type: 'novnc' } } }), [id]);
  if (r.loading) return <Loading what="console" />;
  if (r.error) return <p class="info">The console is not available: {r.error.message}</p>;
  const url = r.data?.body?.remote_console?.url;
  return url ? <iframe class="vnc" src={url} title="Instance console (noVNC)" /> : <p class="info">The compute service gave no console URL.</p>;
}

function ActionLog({ id }: { id: string }) {
  const r = useAsync(async () => {
    const actions = (await get<any>('compute', `/servers/${id}/os-instance-actions`)).instanceActions as any[];
    return Promise.all(actions.map(async (a) => ({ ...a, events: (await get<any>('compute', `/servers/${id}/os-instance-actions/${a.request_id}`).catch(() => ({ instanceAction: { events: [] } }))).instanceAction.events ?? [] })));
  }, [id]);
  if (r.error) return <ErrorBox error={r.error} />;
  if (!r.data) return <Loading what="actions" />;
  return (
    <ol class="action-log">
      {r.data.map((a) => (
        <li key={a.request_id}>
          <strong>{a.action}</strong> <span class="muted">{a.start_time} · {a.request_id}</span>{a.message && <span class="why"> — {a.message}</span>}
          <ul>{a.events.map((e: any, i: number) => <li key={i}>{e.event}: {e.result ?? 'running'} <span class="muted">{e.start_time}{e.finish_time ? ` → ${e.finish_time}` : ''}{e.host ? ` on ${e.host}` : ''}</span>{e.traceback && <pre>{e.traceback}</pre>}</li>)}</ul>
        </li>
      ))}
    </ol>
  );
}

function MetadataTags({ server, reload }: { server: Server; reload: () => void }) {
  const [meta, setMeta] = useState<[string, string][]>(Object.entries(server.metadata ?? {}));
  const [tags, setTags] = useState((server.tags ?? []).join(', '));
  return (
    <form onSubmit={async (e) => {
      e.preventDefault();
      await act('Metadata and tags saved', async () => {
        await call('compute', `/servers/${server.id}/metadata`, { method: 'PUT', body: { metadata: Object.fromEntries(meta.filter(([k]) => k.trim())) } });
        await call('compute', `/servers/${server.id}/tags`, { method: 'PUT', body: { tags: tags.split(',').map((t) => t.trim()).filter(Boolean) } });
      }, reload);
    }}>
      <KeyValueEditor label="Metadata" value={meta} onChange={setMeta} />
      <Field label="Tags" hint="comma-separated"><input value={tags} onInput={(e) => setTags(e.currentTarget.value)} /></Field>
      <button type="submit">Save metadata and tags</button>
    </form>
  );
}

export function InstanceDetail({ params }: { params: Record<string, string> }) {
  const [tab, setTab] = useState('overview');
  const r = useAsync(() => get<{ server: Server }>('compute', `/servers/${params.id}`).then((b) => b.server), [params.id]);
  const images = useImageNames();
  const s = r.data;
  // Follow the instance while something is happening to it.
  useEffect(() => {
    if (!s) return;
    const busy = s.status === 'BUILD' || !!s['OS-EXT-STS:task_state'] || ['REBOOT', 'HARD_REBOOT', 'RESIZE', 'REBUILD'].includes(s.status);
    const t = setTimeout(() => get<{ server: Server }>('compute', `/servers/${params.id}`).then((b) => r.set(b.server), () => {}), busy ? 1000 : 4000);
    return () => clearTimeout(t);
  }, [s]);
  if (r.error) return <Page title="Instance"><ErrorBox error={r.error} /><p><a href="#/instances">Back to instances</a></p></Page>;
  if (!s) return <Page title="Instance"><Loading what="the instance" /></Page>;
  const imageId = typeof s.image === 'object' && s.image ? s.image.id : '';
  const tabs = [['overview', 'Overview'], ['log', 'Console log'], ['console', 'Console'], ['actions', 'Action log'], ['meta', 'Metadata and tags']];
  return (
    <Page title={s.name || s.id} actions={<StatusBadge status={s.status} />}>
      <ActionBar server={s} reload={r.reload} />
      {s.fault && (
        <div class="fault" role="alert">
          <h2>Fault ({s.fault.code})</h2>
          <p class="fault-message">{s.fault.message}</p>
          {s.fault.details && <pre>{s.fault.details}</pre>}
          <p class="muted">{s.fault.created}</p>
        </div>
      )}
      <div class="tabs" role="tablist" aria-label="Instance sections">
        {tabs.map(([k, l]) => <button type="button" role="tab" key={k} id={`tab-${k}`} aria-selected={tab === k} aria-controls="tabpanel" onClick={() => setTab(k)}>{l}</button>)}
      </div>
      <div role="tabpanel" id="tabpanel" aria-labelledby={`tab-${tab}`}>
        {tab === 'overview' && (
          <dl class="props">
            <dt>ID</dt><dd><code>{s.id}</code></dd>
            <dt>Status</dt><dd>{s.status}</dd><dt>Power state</dt><dd>{power(s)}</dd><dt>Task state</dt><dd>{s['OS-EXT-STS:task_state'] ?? '—'}</dd>
            <dt>Image</dt><dd>{imageId ? images.get(imageId) ?? imageId : 'volume'}</dd>
            <dt>Flavor</dt><dd>{s.flavor.original_name} ({s.flavor.vcpus} vCPU, {s.flavor.ram} MB, {s.flavor.disk} GB)</dd>
            <dt>Key pair</dt><dd>{s.key_name ?? '—'}</dd>
            <dt>Availability zone</dt><dd>{s['OS-EXT-AZ:availability_zone'] || '—'}</dd>
            {isAdmin() && [<dt key="h">Host</dt>, <dd key="hv">{s['OS-EXT-SRV-ATTR:host'] ?? '—'}</dd>]}
            <dt>Locked</dt><dd>{s.locked ? 'yes' : 'no'}</dd>
            <dt>Created</dt><dd>{s.created} ({age(s.created)} ago)</dd><dt>Updated</dt><dd>{s.updated}</dd>
            <dt>Project</dt><dd><code>{s.tenant_id}</code></dd>
          </dl>
        )}
        {tab === 'log' && <ConsoleLog id={s.id} />}
        {tab === 'console' && <VncConsole id={s.id} />}
        {tab === 'actions' && <ActionLog id={s.id} />}
        {tab === 'meta' && <MetadataTags server={s} reload={r.reload} />}
      </div>
      <p><a href="#/instances">Back to instances</a></p>
    </Page>
  );
}
