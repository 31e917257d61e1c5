// The launch wizard: one form, with every flavor that cannot take the chosen image or that the
// quota leaves no room for greyed out and the reason beside it.
import { useMemo, useState } from 'preact/hooks';
import { call, get, getAll } from '../api.ts';
import { act, bytes, ErrorBox, Field, KeyValueEditor, Loading, Modal, useAsync } from '../ui.tsx';
import { KeyPairInline } from './keypairs.tsx';

interface Flavor { id: string; name: string; vcpus: number; ram: number; disk: number; 'OS-FLV-EXT-DATA:ephemeral'?: number }
interface Image { id: string; name?: string; min_disk?: number; min_ram?: number; virtual_size?: number | null; size?: number | null; [k: string]: unknown }
const GiB = 1024 ** 3;

const CORE_KEYS = new Set(['id', 'name', 'status', 'visibility', 'protected', 'tags', 'created_at', 'updated_at', 'file', 'schema', 'self', 'owner', 'checksum', 'os_hash_algo', 'os_hash_value', 'size', 'virtual_size', 'min_disk', 'min_ram', 'disk_format', 'container_format', 'direct_url', 'locations', 'os_hidden', 'stores']);
export const imageProperties = (i: Image) => Object.entries(i).filter(([k]) => !CORE_KEYS.has(k)).map(([k, v]) => [k, String(v)] as [string, string]);

/** Why this flavor cannot boot this image within this quota, or undefined when it can. */
export function flavorProblem(f: Flavor, img: Image | undefined, room: { cores: number; ram: number; instances: number }, count: number): string | undefined {
  if (img) {
    if (img.min_ram && f.ram < img.min_ram) return `needs ${img.min_ram} MB RAM (image min_ram)`;
    if (f.disk > 0 && img.min_disk && f.disk < img.min_disk) return `disk ${f.disk} GB < image min_disk ${img.min_disk} GB`;
    if (f.disk > 0 && img.virtual_size && img.virtual_size > f.disk * GiB) return `disk ${f.disk} GB < image virtual size ${bytes(img.virtual_size)}`;
  }
  if (room.instances >= 0 && count > room.instances) return `quota: ${room.instances} more instance(s) allowed`;
  if (room.cores >= 0 && f.vcpus * count > room.cores) return `quota: ${room.cores} vCPUs left`;
  if (room.ram >= 0 && f.ram * count > room.ram) return `quota: ${room.ram} MB RAM left`;
  return undefined;
}

const b64 = (s: string) => btoa(String.fromCharCode(...new TextEncoder().encode(s)));

export function LaunchWizard({ onClose }: { onClose: () => void }) {
  const data = useAsync(async () => {
    const [images, flavors, keypairs, zones, groups, limits] = await Promise.all([
      getAll<Image>('image', '/v2/images', 'images', { status: 'active' }, 500),
      get<{ flavors: Flavor[] }>('compute', '/flavors/detail').then((b) => b.flavors.sort((a, b) => a.vcpus - b.vcpus || a.ram - b.ram)),
      get<any>('compute', '/os-keypairs').then((b) => b.keypairs.map((k: any) => k.keypair.name as string)),
      get<any>('compute', '/os-availability-zone').then((b) => b.availabilityZoneInfo.filter((z: any) => z.zoneState.available).map((z: any) => z.zoneName as string)).catch(() => [] as string[]),
      get<any>('compute', '/os-server-groups').then((b) => b.server_groups as { id: string; name: string; policy: string }[]),
      get<any>('compute', '/limits').then((b) => b.limits.absolute),
    ]);
    return { images, flavors, keypairs, zones, groups, limits };
  }, []);
  const [f, setF] = useState({ name: '', count: 1, image: '', flavor: '', key: '', userData: '', configDrive: false, az: '', group: '' });
  const [meta, setMeta] = useState<[string, string][]>([]);
  const [error, setError] = useState<unknown>();
  const [busy, setBusy] = useState(false);
  const [newKey, setNewKey] = useState(false);
  const set = (k: keyof typeof f, v: unknown) => setF((x) => ({ ...x, [k]: v }));

  const room = useMemo(() => {
    const l = data.data?.limits ?? {};
    const left = (max: number, used: number) => (max < 0 ? -1 : Math.max(0, max - used));
    return { instances: left(l.maxTotalInstances ?? -1, l.totalInstancesUsed ?? 0), cores: left(l.maxTotalCores ?? -1, l.totalCoresUsed ?? 0), ram: left(l.maxTotalRAMSize ?? -1, l.totalRAMUsed ?? 0) };
  }, [data.data]);

  if (!data.data) return <Modal title="Launch instance" onClose={onClose}>{data.error ? <ErrorBox error={data.error} /> : <Loading what="images and flavors" />}</Modal>;
  const d = data.data;
  const img = d.images.find((i) => i.id === f.image);
  const flavorBad = (fl: Flavor) => flavorProblem(fl, img, room, f.count);
  const chosen = d.flavors.find((x) => x.id === f.flavor);

  const submit = async (e: Event) => {
    e.preventDefault();
    setError(undefined);
    if (chosen && flavorBad(chosen)) return setError(new Error(`Flavor ${chosen.name}: ${flavorBad(chosen)}`));
    const server: Record<string, unknown> = {
      name: f.name, imageRef: f.image, flavorRef: f.flavor, min_count: f.count, max_count: f.count, networks: 'none',
    };
    if (f.key) server.key_name = f.key;
    if (f.userData) server.user_data = b64(f.userData);
    if (f.configDrive) server.config_drive = true;
    if (f.az) server.availability_zone = f.az;
    const md = meta.filter(([k]) => k.trim());
    if (md.length) server.metadata = Object.fromEntries(md);
    const body: Record<string, unknown> = { server };
    if (f.group) body['os:scheduler_hints'] = { group: f.group };
    setBusy(true);
    const ok = await act(`Launch of ${f.count} × ${f.name}`, () => call('compute', '/servers', { method: 'POST', body }).catch((err) => { setError(err); throw err; }));
    setBusy(false);
    if (ok) onClose();
  };

  return (
    <Modal title="Launch instance" onClose={onClose} wide>
      <form class="launch" onSubmit={submit}>
        <div class="cols">
          <Field label="Name"><input name="name" required value={f.name} onInput={(e) => set('name', e.currentTarget.value)} /></Field>
          <Field label="Count"><input name="count" type="number" min={1} max={100} value={f.count} onInput={(e) => set('count', Math.max(1, Number(e.currentTarget.value) || 1))} /></Field>
        </div>
        <Field label="Image">
          <select name="image" required value={f.image} onChange={(e) => set('image', e.currentTarget.value)}>
            <option value="">Choose an image</option>
            {d.images.map((i) => <option key={i.id} value={i.id}>{i.name || i.id} ({bytes(i.size)})</option>)}
          </select>
        </Field>
        {img && (
          <dl class="props" aria-label="Image properties">
            <dt>min_disk</dt><dd>{img.min_disk ?? 0} GB</dd><dt>min_ram</dt><dd>{img.min_ram ?? 0} MB</dd><dt>virtual size</dt><dd>{bytes(img.virtual_size)}</dd>
            {imageProperties(img).map(([k, v]) => [<dt key={`k${k}`}>{k}</dt>, <dd key={`v${k}`}>{v}</dd>])}
          </dl>
        )}
        <fieldset class="flavors">
          <legend>Flavor</legend>
          {d.flavors.map((fl) => {
            const bad = flavorBad(fl);
            return (
              <label key={fl.id} class={`flavor${bad ? ' disabled' : ''}`}>
                <input type="radio" name="flavor" value={fl.id} required disabled={!!bad} checked={f.flavor === fl.id} onChange={() => set('flavor', fl.id)} aria-describedby={bad ? `why-${fl.id}` : undefined} />
                <span class="flavor-name">{fl.name}</span> <span class="muted">{fl.vcpus} vCPU · {fl.ram} MB · {fl.disk} GB</span>
                {bad && <span class="why" id={`why-${fl.id}`}> — {bad}</span>}
              </label>
            );
          })}
        </fieldset>
        <div class="cols">
          <Field label="Key pair">
            <select name="key" value={f.key} onChange={(e) => set('key', e.currentTarget.value)}>
              <option value="">none</option>{d.keypairs.map((k: string) => <option key={k}>{k}</option>)}
            </select>
          </Field>
          <div class="field"><span class="field-label">&nbsp;</span><button type="button" onClick={() => setNewKey(!newKey)} aria-expanded={newKey}>New key pair…</button></div>
        </div>
        {newKey && <KeyPairInline onCreated={(name) => { d.keypairs.push(name); set('key', name); setNewKey(false); }} />}
        <div class="cols">
          <Field label="Availability zone"><select value={f.az} onChange={(e) => set('az', e.currentTarget.value)}><option value="">any</option>{d.zones.map((z: string) => <option key={z}>{z}</option>)}</select></Field>
          <Field label="Server group"><select value={f.group} onChange={(e) => set('group', e.currentTarget.value)}><option value="">none</option>{d.groups.map((g) => <option key={g.id} value={g.id}>{g.name} ({g.policy})</option>)}</select></Field>
        </div>
        <Field label="User data" hint="cloud-init user data: type it or load a file.">
          <textarea rows={4} value={f.userData} onInput={(e) => set('userData', e.currentTarget.value)} />
        </Field>
        <input type="file" aria-label="User data file" onChange={async (e) => { const file = e.currentTarget.files?.[0]; if (file) set('userData', await file.text()); }} />
        <label class="check"><input type="checkbox" checked={f.configDrive} onChange={(e) => set('configDrive', e.currentTarget.checked)} /> Config drive</label>
        <KeyValueEditor label="Metadata" value={meta} onChange={setMeta} />
        <ErrorBox error={error} />
        <div class="buttons"><button type="submit" class="primary" disabled={busy}>Launch</button><button type="button" onClick={onClose}>Cancel</button></div>
      </form>
    </Modal>
  );
}
