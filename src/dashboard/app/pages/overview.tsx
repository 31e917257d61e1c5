// Overview: quota usage as bars with numbers, and vCPUs / RAM in use over time computed from
// os-simple-tenant-usage's per-server start and end times.
import { useEffect, useRef, useState } from 'preact/hooks';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { currentSession, get, hasService } from '../api.ts';
import { Bar, ErrorBox, Loading, Page, useAsync } from '../ui.tsx';

const utc = (s?: string | null) => (s ? Date.parse(/[Zz]|[+-]\d\d:?\d\d$/.test(s) ? s : `${s}Z`) : NaN);
const novaTime = (ms: number) => new Date(ms).toISOString().replace('Z', '');

/** vCPUs and RAM in use per bucket: each server counts for the part of the bucket it ran. */
export function usageSeries(servers: { started_at: string; ended_at?: string | null; vcpus: number; memory_mb: number }[], start: number, end: number, buckets: number) {
  const step = (end - start) / buckets;
  const xs: number[] = [], cpu: number[] = [], ram: number[] = [];
  for (let i = 0; i < buckets; i++) {
    const a = start + i * step, b = a + step;
    let c = 0, r = 0;
    for (const s of servers) {
      const from = Math.max(a, utc(s.started_at)), to = Math.min(b, s.ended_at ? utc(s.ended_at) : end);
      if (to > from) { const f = (to - from) / step; c += s.vcpus * f; r += s.memory_mb * f; }
    }
    xs.push(Math.round(b / 1000)); cpu.push(+c.toFixed(2)); ram.push(Math.round(r));
  }
  return [xs, cpu, ram] as [number[], number[], number[]];
}

function UsageChart() {
  const [range, setRange] = useState<'24h' | '14d'>('24h');
  const ref = useRef<HTMLDivElement>(null);
  const project = currentSession()!.project!.id;
  const r = useAsync(async () => {
    const end = Date.now(), span = range === '24h' ? 86400e3 : 14 * 86400e3;
    const u = (await get<any>('compute', `/os-simple-tenant-usage/${project}`, { start: novaTime(end - span), end: novaTime(end) })).tenant_usage;
    return { series: usageSeries(u?.server_usages ?? [], end - span, end, range === '24h' ? 48 : 56), totals: u };
  }, [range]);
  useEffect(() => {
    if (!r.data || !ref.current) return;
    const el = ref.current;
    const plot = new uPlot({
      width: Math.max(280, el.clientWidth), height: 220, title: 'In use',
      series: [{}, { label: 'vCPUs', stroke: '#2563eb', fill: 'rgba(37,99,235,0.12)' }, { label: 'RAM (MB)', stroke: '#16a34a', scale: 'mb' }],
      axes: [{}, { label: 'vCPUs' }, { side: 1, scale: 'mb', label: 'MB', grid: { show: false } }],
    }, r.data.series, el);
    const resize = () => plot.setSize({ width: Math.max(280, el.clientWidth), height: 220 });
    addEventListener('resize', resize);
    return () => { removeEventListener('resize', resize); plot.destroy(); };
  }, [r.data]);
  return (
    <section aria-labelledby="usage-title">
      <h2 id="usage-title">Usage over time</h2>
      <div class="tabs" role="tablist" aria-label="Period">
        {(['24h', '14d'] as const).map((x) => <button type="button" role="tab" key={x} aria-selected={range === x} onClick={() => setRange(x)}>{x === '24h' ? 'Last 24 hours' : 'Last 14 days'}</button>)}
      </div>
      <ErrorBox error={r.error} />
      <div ref={ref} class="chart" role="img" aria-label="vCPUs and RAM in use over the period" />
      {r.data?.totals?.total_hours != null && <p class="muted">Total over the period: {r.data.totals.total_vcpus_usage.toFixed(1)} vCPU-hours, {(r.data.totals.total_memory_mb_usage / 1024).toFixed(1)} GiB-hours of RAM, {r.data.totals.total_hours.toFixed(1)} instance-hours.</p>}
    </section>
  );
}

export function Overview() {
  const r = useAsync(async () => {
    const [limits, keypairs, images] = await Promise.all([
      get<any>('compute', '/limits').then((b) => b.limits.absolute),
      get<any>('compute', '/os-keypairs').then((b) => b.keypairs.length),
      hasService('image') ? get<any>('image', '/v2/info/usage').then((b) => b.usage).catch((e) => { console.warn('image usage unavailable', e); return undefined; }) : undefined,
    ]);
    return { limits, keypairs, images };
  }, []);
  const l = r.data?.limits;
  return (
    <Page title="Overview">
      <ErrorBox error={r.error} />
      {l ? (
        <section class="quota" aria-label="Quota usage">
          <Bar label="Instances" used={l.totalInstancesUsed} total={l.maxTotalInstances} />
          <Bar label="vCPUs" used={l.totalCoresUsed} total={l.maxTotalCores} />
          <Bar label="RAM" used={l.totalRAMUsed} total={l.maxTotalRAMSize} unit=" MB" />
          <Bar label="Key pairs" used={r.data!.keypairs} total={l.maxTotalKeypairs} />
          <Bar label="Server groups" used={l.totalServerGroupsUsed} total={l.maxServerGroups} />
          {r.data!.images && <Bar label="Image storage" used={r.data!.images.image_size_total.usage} total={r.data!.images.image_size_total.limit} unit=" MiB" />}
          {r.data!.images && <Bar label="Images" used={r.data!.images.image_count_total.usage} total={r.data!.images.image_count_total.limit} />}
        </section>
      ) : !r.error && <Loading what="quotas" />}
      <UsageChart />
    </Page>
  );
}
