// Images: the lists Glance offers (own, shared, community, public), a streamed upload with real
// progress, web-download import, and per image its properties (with the metadata-definitions
// catalog as suggestions), sharing, protection, deactivation and deletion.
import { useEffect, useState } from 'preact/hooks';
import { call, currentSession, get, getAll, uploadFile } from '../api.ts';
import { act, bytes, confirmAction, ErrorBox, Field, KeyValueEditor, Loading, Modal, Page, StatusBadge, Table, useAsync } from '../ui.tsx';
import { imageProperties } from './launch.tsx';
import { routeTo } from '../routes.tsx';

const DISK_FORMATS = ['raw', 'qcow2', 'vmdk', 'vdi', 'vhd', 'vhdx', 'iso', 'ami', 'ari', 'aki', 'ploop'];
const CONTAINER_FORMATS = ['bare', 'ovf', 'ova', 'ami', 'ari', 'aki', 'docker', 'compressed'];
const PATCH = { 'content-type': 'application/openstack-images-v2.1-json-patch' };

/** The image properties the metadata-definitions catalog describes, as key suggestions. */
function useMetadefProperties() {
  const [props, setProps] = useState<{ name: string; description?: string }[]>([]);
  useEffect(() => {
    (async () => {
      const ns = (await get<any>('image', '/v2/metadefs/namespaces', { resource_types: 'OS::Glance::Image', limit: 100 })).namespaces as any[];
      const all = await Promise.all(ns.map((n) => get<any>('image', `/v2/metadefs/namespaces/${encodeURIComponent(n.namespace)}/properties`).catch(() => ({ properties: {} }))));
      const prefix = (n: any) => (n.resource_type_associations ?? []).find((r: any) => r.name === 'OS::Glance::Image')?.prefix ?? '';
      setProps(all.flatMap((p, i) => Object.entries(p.properties ?? {}).map(([k, v]: [string, any]) => ({ name: `${prefix(ns[i])}${k}`, description: v.title ?? v.description }))));
    })().catch((e) => console.warn('image property names from the metadefs are unavailable; the form takes any name', e));
  }, []);
  return props;
}

function UploadDialog({ onClose, onDone }: { onClose: () => void; onDone: () => void }) {
  const suggest = useMetadefProperties();
  const [f, setF] = useState({ name: '', disk: 'raw', container: 'bare', visibility: 'private', minDisk: '', minRam: '', source: 'file', uri: '' });
  const [file, setFile] = useState<File>();
  const [props, setProps] = useState<[string, string][]>([]);
  const [progress, setProgress] = useState<{ sent: number; total: number; t0: number }>();
  const [error, setError] = useState<unknown>();
  const [busy, setBusy] = useState(false);
  const set = (k: keyof typeof f, v: string) => setF((x) => ({ ...x, [k]: v }));
  const submit = async (e: Event) => {
    e.preventDefault();
    setError(undefined); setBusy(true);
    let id: string | undefined;
    try {
      const body: Record<string, unknown> = { name: f.name, disk_format: f.disk, container_format: f.container, visibility: f.visibility };
      if (f.minDisk) body.min_disk = Number(f.minDisk);
      if (f.minRam) body.min_ram = Number(f.minRam);
      for (const [k, v] of props) if (k.trim()) body[k.trim()] = v;
      id = (await call<any>('image', '/v2/images', { method: 'POST', body })).body.id;
      if (f.source === 'file' && file) {
        const t0 = performance.now();
        setProgress({ sent: 0, total: file.size, t0 });
        // At most one re-render per frame, whatever the rate of progress events.
        let frame = 0, last = { sent: 0, total: file.size };
        const paint = () => { frame = 0; setProgress({ ...last, t0 }); };
        await uploadFile('image', `/v2/images/${id}/file`, file, (sent, total) => {
          last = { sent, total };
          if (sent >= total) { cancelAnimationFrame(frame); paint(); } else if (!frame) frame = requestAnimationFrame(paint);
        });
      } else if (f.source === 'url') {
        await call('image', `/v2/images/${id}/import`, { method: 'POST', body: { method: { name: 'web-download', uri: f.uri } } });
      }
      setBusy(false);
      onDone();
    } catch (err) {
      setBusy(false);
      setError(new Error(`${(err as Error).message}${id ? ' (the image record stays, without data: delete it or upload again)' : ''}`));
    }
  };
  const pct = progress ? Math.floor((progress.sent / Math.max(1, progress.total)) * 100) : 0;
  return (
    <Modal title="Create image" onClose={onClose} wide>
      <form onSubmit={submit}>
        <Field label="Name"><input name="name" required value={f.name} onInput={(e) => set('name', e.currentTarget.value)} /></Field>
        <div class="cols">
          <Field label="Disk format"><select name="disk_format" value={f.disk} onChange={(e) => set('disk', e.currentTarget.value)}>{DISK_FORMATS.map((d) => <option key={d}>{d}</option>)}</select></Field>
          <Field label="Container format"><select name="container_format" value={f.container} onChange={(e) => set('container', e.currentTarget.value)}>{CONTAINER_FORMATS.map((d) => <option key={d}>{d}</option>)}</select></Field>
          <Field label="Visibility"><select name="visibility" value={f.visibility} onChange={(e) => set('visibility', e.currentTarget.value)}>{['private', 'shared', 'community', 'public'].map((d) => <option key={d}>{d}</option>)}</select></Field>
        </div>
        <div class="cols">
          <Field label="Minimum disk (GB)"><input type="number" min={0} value={f.minDisk} onInput={(e) => set('minDisk', e.currentTarget.value)} /></Field>
          <Field label="Minimum RAM (MB)"><input type="number" min={0} value={f.minRam} onInput={(e) => set('minRam', e.currentTarget.value)} /></Field>
        </div>
        <fieldset><legend>Data</legend>
          <label class="check"><input type="radio" name="source" checked={f.source === 'file'} onChange={() => set('source', 'file')} /> Upload a file</label>
          <label class="check"><input type="radio" name="source" checked={f.source === 'url'} onChange={() => set('source', 'url')} /> Import from a URL (web-download)</label>
          <label class="check"><input type="radio" name="source" checked={f.source === 'none'} onChange={() => set('source', 'none')} /> No data yet</label>
          {f.source === 'file' && <Field label="Image file"><input type="file" name="file" required onChange={(e) => setFile(e.currentTarget.files?.[0])} /></Field>}
          {f.source === 'url' && <Field label="URL"><input type="url" required value={f.uri} onInput={(e) => set('uri', e.currentTarget.value)} /></Field>}
        </fieldset>
        <KeyValueEditor label="Properties" value={props} onChange={setProps} suggest={suggest} />
        {progress && (
          <div class="upload-progress">
            <progress max={100} value={pct} aria-label="Upload progress">{pct}%</progress>
            <span aria-live="polite" class="progress-text">{pct}% — {bytes(progress.sent)} of {bytes(progress.total)}</span>
          </div>
        )}
        <ErrorBox error={error} />
        <div class="buttons"><button type="submit" class="primary" disabled={busy}>{busy ? 'Working…' : 'Create'}</button><button type="button" onClick={onClose}>Close</button></div>
      </form>
    </Modal>
  );
}

export function Images() {
  const [vis, setVis] = useState('all');
  const [upload, setUpload] = useState(false);
  const project = currentSession()?.project?.id;
  const r = useAsync(() => getAll<any>('image', '/v2/images', 'images', vis === 'own' ? { owner: project } : vis === 'all' ? {} : { visibility: vis }, 500), [vis]);
  return (
    <Page title="Images" actions={<button type="button" class="primary" onClick={() => setUpload(true)}>Create image</button>}>
      <div class="tabs" role="tablist" aria-label="Image lists">
        {['all', 'own', 'shared', 'community', 'public'].map((v) => <button type="button" role="tab" key={v} aria-selected={vis === v} onClick={() => setVis(v)}>{v}</button>)}
      </div>
      <ErrorBox error={r.error} />
      {r.data ? <Table caption="Images" rows={r.data} rowKey={(i) => i.id} columns={[
        { key: 'name', label: 'Name', render: (i) => <a href={`#/images/${i.id}`}>{i.name || i.id}</a> },
        { key: 'status', label: 'Status', render: (i) => <StatusBadge status={i.status} /> },
        { key: 'visibility', label: 'Visibility' },
        { key: 'disk_format', label: 'Format' },
        { key: 'size', label: 'Size', value: (i) => i.size ?? 0, render: (i) => bytes(i.size) },
        { key: 'protected', label: 'Protected', render: (i) => (i.protected ? 'yes' : 'no') },
        { key: 'owner', label: 'Owner', render: (i) => (i.owner === project ? 'this project' : <code>{String(i.owner ?? '').slice(0, 8)}</code>) },
      ]} /> : !r.error && <Loading what="images" />}
      {upload && <UploadDialog onClose={() => setUpload(false)} onDone={() => { setUpload(false); r.reload(); }} />}
    </Page>
  );
}

function Members({ image }: { image: any }) {
  const project = currentSession()?.project?.id;
  const r = useAsync(() => get<any>('image', `/v2/images/${image.id}/members`).then((b) => b.members as any[]), [image.id]);
  const [member, setMember] = useState('');
  if (image.owner !== project) {
    // The member's side: accept or reject what was shared with this project.
    const setStatus = (status: string) => act(`Image ${status}`, () => call('image', `/v2/images/${image.id}/members/${project}`, { method: 'PUT', body: { status } }), r.reload);
    const mine = r.data?.find((m) => m.member_id === project);
    return (
      <div>
        <p>{mine ? `Shared with this project: ${mine.status}.` : 'This image is not shared with this project by its owner.'}</p>
        {mine && <div class="buttons"><button type="button" onClick={() => setStatus('accepted')}>Accept</button><button type="button" onClick={() => setStatus('rejected')}>Reject</button></div>}
      </div>
    );
  }
  return (
    <div>
      <ErrorBox error={r.error} />
      {r.data && <Table caption="Members" rows={r.data} rowKey={(m) => m.member_id} columns={[
        { key: 'member_id', label: 'Project' }, { key: 'status', label: 'Status' },
        { key: 'x', label: '', sortable: false, render: (m) => <button type="button" onClick={() => act('Member removed', () => call('image', `/v2/images/${image.id}/members/${m.member_id}`, { method: 'DELETE' }), r.reload)}>Remove</button> },
      ]} empty="Not shared with any project." />}
      <form class="inline" onSubmit={(e) => { e.preventDefault(); act('Member added', () => call('image', `/v2/images/${image.id}/members`, { method: 'POST', body: { member } }), () => { setMember(''); r.reload(); }); }}>
        <Field label="Share with project ID"><input value={member} required onInput={(e) => setMember(e.currentTarget.value)} /></Field>
        <button type="submit" disabled={image.visibility !== 'shared'} title={image.visibility !== 'shared' ? 'visibility must be "shared"' : undefined}>Share</button>
      </form>
    </div>
  );
}

function Properties({ image, reload }: { image: any; reload: () => void }) {
  const suggest = useMetadefProperties();
  const [props, setProps] = useState<[string, string][]>(imageProperties(image));
  const save = () => {
    const before = new Map(imageProperties(image));
    const after = new Map(props.filter(([k]) => k.trim()).map(([k, v]) => [k.trim(), v] as [string, string]));
    const ops: unknown[] = [];
    for (const k of before.keys()) if (!after.has(k)) ops.push({ op: 'remove', path: `/${k}` });
    for (const [k, v] of after) if (before.get(k) !== v) ops.push({ op: before.has(k) ? 'replace' : 'add', path: `/${k}`, value: v });
    return act('Properties saved', () => call('image', `/v2/images/${image.id}`, { method: 'PATCH', headers: PATCH, raw: JSON.stringify(ops) }), reload);
  };
  return <form onSubmit={(e) => { e.preventDefault(); save(); }}><KeyValueEditor label="Properties" value={props} onChange={setProps} suggest={suggest} /><button type="submit">Save properties</button></form>;
}

export function ImageDetail({ params }: { params: Record<string, string> }) {
  const r = useAsync(() => get<any>('image', `/v2/images/${params.id}`), [params.id]);
  const i = r.data;
  if (r.error) return <Page title="Image"><ErrorBox error={r.error} /></Page>;
  if (!i) return <Page title="Image"><Loading what="the image" /></Page>;
  const patch = (what: string, ops: unknown[]) => act(what, () => call('image', `/v2/images/${i.id}`, { method: 'PATCH', headers: PATCH, raw: JSON.stringify(ops) }), r.reload);
  return (
    <Page title={i.name || i.id} actions={<StatusBadge status={i.status} />}>
      <div class="actions" role="toolbar" aria-label="Image actions">
        <button type="button" onClick={() => patch(i.protected ? 'Unprotected' : 'Protected', [{ op: 'replace', path: '/protected', value: !i.protected }])}>{i.protected ? 'Unprotect' : 'Protect'}</button>
        {i.status === 'deactivated'
          ? <button type="button" onClick={() => act('Reactivated', () => call('image', `/v2/images/${i.id}/actions/reactivate`, { method: 'POST' }), r.reload)}>Reactivate</button>
          : <button type="button" disabled={i.status !== 'active'} title={i.status !== 'active' ? `not possible while ${i.status}` : undefined} onClick={() => act('Deactivated', () => call('image', `/v2/images/${i.id}/actions/deactivate`, { method: 'POST' }), r.reload)}>Deactivate</button>}
        <button type="button" class="danger" disabled={i.protected} title={i.protected ? 'the image is protected' : undefined} onClick={async () => {
          if (!(await confirmAction(`Delete image ${i.name}?`, 'Delete'))) return;
          if (await act('Image deleted', () => call('image', `/v2/images/${i.id}`, { method: 'DELETE' }))) routeTo('/images');
        }}>Delete</button>
      </div>
      <dl class="props">
        <dt>ID</dt><dd><code>{i.id}</code></dd><dt>Status</dt><dd>{i.status}</dd><dt>Visibility</dt><dd>{i.visibility}</dd>
        <dt>Formats</dt><dd>{i.disk_format} / {i.container_format}</dd><dt>Size</dt><dd>{bytes(i.size)} (virtual {bytes(i.virtual_size)})</dd>
        <dt>min_disk / min_ram</dt><dd>{i.min_disk} GB / {i.min_ram} MB</dd><dt>Checksum</dt><dd><code>{i.checksum ?? '—'}</code></dd>
        <dt>Owner</dt><dd><code>{i.owner}</code></dd><dt>Created</dt><dd>{i.created_at}</dd>
      </dl>
      <h2>Properties</h2>
      <Properties image={i} reload={r.reload} />
      <h2>Sharing</h2>
      <Members image={i} />
      <p><a href="#/images">Back to images</a></p>
    </Page>
  );
}
