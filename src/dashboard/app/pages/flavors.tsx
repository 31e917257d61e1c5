// Flavors the project may use (read only; admins manage them under Admin → Flavors).
import { get } from '../api.ts';
import { ErrorBox, Loading, Page, Table, useAsync } from '../ui.tsx';

export const flavorColumns = [
  { key: 'name', label: 'Name' },
  { key: 'vcpus', label: 'vCPUs', value: (f: any) => f.vcpus },
  { key: 'ram', label: 'RAM (MB)', value: (f: any) => f.ram },
  { key: 'disk', label: 'Disk (GB)', value: (f: any) => f.disk },
  { key: 'eph', label: 'Ephemeral (GB)', value: (f: any) => f['OS-FLV-EXT-DATA:ephemeral'] ?? 0, render: (f: any) => f['OS-FLV-EXT-DATA:ephemeral'] ?? 0 },
  { key: 'public', label: 'Public', render: (f: any) => (f['os-flavor-access:is_public'] ? 'yes' : 'no') },
];

export function Flavors() {
  const r = useAsync(() => get<any>('compute', '/flavors/detail').then((b) => b.flavors as any[]), []);
  return (
    <Page title="Flavors">
      <ErrorBox error={r.error} />
      {r.data ? <Table caption="Flavors" rows={r.data} rowKey={(f) => f.id} columns={flavorColumns} initialSort={{ key: 'vcpus', dir: 1 }} /> : !r.error && <Loading what="flavors" />}
    </Page>
  );
}
