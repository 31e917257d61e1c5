// A small Prometheus exporter: request counts and latency histograms per service, route and
// status. Written by hand because the text format is simple and the hot path must stay cheap
// (one Map lookup and a few array increments per request).
import { getHeapSpaceStatistics } from 'node:v8';

const BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

interface Series { labels: string; count: number; sum: number; buckets: number[] }

export class Metrics {
  private series = new Map<string, Series>();
  private gauges = new Map<string, () => number>();

  observe(service: string, method: string, route: string, status: number, seconds: number): void {
    const labels = `service="${esc(service)}",method="${method}",route="${esc(route)}",status="${status}"`;
    let s = this.series.get(labels);
    if (!s) {
      s = { labels, count: 0, sum: 0, buckets: new Array(BUCKETS.length).fill(0) };
      this.series.set(labels, s);
    }
    s.count++;
    s.sum += seconds;
    for (let i = 0; i < BUCKETS.length; i++) if (seconds <= BUCKETS[i]) s.buckets[i]++;
  }

  gauge(name: string, read: () => number): void {
    this.gauges.set(name, read);
  }

  render(): string {
    const out: string[] = [
      '# HELP stratus_http_requests_total HTTP requests served.',
      '# TYPE stratus_http_requests_total counter',
    ];
    for (const s of this.series.values()) out.push(`stratus_http_requests_total{${s.labels}} ${s.count}`);
    out.push('# HELP stratus_http_request_duration_seconds HTTP request latency.', '# TYPE stratus_http_request_duration_seconds histogram');
    for (const s of this.series.values()) {
      BUCKETS.forEach((b, i) => out.push(`stratus_http_request_duration_seconds_bucket{${s.labels},le="${b}"} ${s.buckets[i]}`));
      out.push(`stratus_http_request_duration_seconds_bucket{${s.labels},le="+Inf"} ${s.count}`);
      out.push(`stratus_http_request_duration_seconds_sum{${s.labels}} ${s.sum}`);
      out.push(`stratus_http_request_duration_seconds_count{${s.labels}} ${s.count}`);
    }
    const mem = process.memoryUsage();
    out.push('# TYPE process_resident_memory_bytes gauge', `process_resident_memory_bytes ${mem.rss}`);
    // Where the resident memory goes (issue 14): V8's heap by space, and memory outside it.
    out.push('# TYPE nodejs_heap_space_size_used_bytes gauge');
    for (const sp of getHeapSpaceStatistics()) out.push(`nodejs_heap_space_size_used_bytes{space="${sp.space_name}"} ${sp.space_used_size}`);
    out.push('# TYPE nodejs_external_memory_bytes gauge', `nodejs_external_memory_bytes ${mem.external}`);
    out.push('# TYPE nodejs_array_buffers_bytes gauge', `nodejs_array_buffers_bytes ${mem.arrayBuffers}`);
    for (const [name, read] of this.gauges) out.push(`# TYPE ${name} gauge`, `${name} ${read()}`);
    return out.join('\n') + '\n';
  }
}

function esc(s: string): string {
  return s.replace(/\\/g, '\\\\').replace(/"/g, '\\"');
}
