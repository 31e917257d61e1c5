// Nova's operator reports against a real all-in-one: os-simple-tenant-usage (numbers from booted
// and deleted servers, paging), os-hosts, os-instance_usage_audit_log, os-migrations,
// os-server-external-events — and each class of bad input, policy and microversion limit.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startCloud, type TestCloud } from './helpers/cloud.ts';
import { computeApi, mv } from './helpers/compute.ts';
import { openDatabase } from '../src/common/db/database.ts';

let cloud: TestCloud;
let token: string;
const { api, waitFor } = computeApi(() => cloud, () => token);
let memberToken: string;
let memberProject: string;
let adminProject: string;
let imageId: string;
let host: string;
const servers: string[] = [];

const I = '/identity/v3';



const fault = (r: { body: any }) => (Object.values(r.body ?? {})[0] as any)?.message;
/** Nova's strftime('%Y-%m-%dT%H:%M:%S.%f') */
const pyTime = (d: Date) => `${d.toISOString().slice(0, 23)}000`;

before(async () => {
  cloud = await startCloud();
  token = await cloud.adminToken();
  const p = await cloud.req('POST', `${I}/projects`, { token, body: { project: { name: 'rep-proj', domain_id: 'default' } } });
  assert.equal(p.status, 201, p.text);
  memberProject = p.body.project.id;
  const u = await cloud.req('POST', `${I}/users`, { token, body: { user: { name: 'rep-user', password: 'rep-pass', domain_id: 'default' } } });
  assert.equal(u.status, 201, u.text);
  const role = (await cloud.req('GET', `${I}/roles?name=member`, { token })).body.roles[0];
  assert.equal((await cloud.req('PUT', `${I}/projects/${memberProject}/users/${u.body.user.id}/roles/${role.id}`, { token })).status, 204);
  memberToken = (await cloud.login('rep-user', 'rep-pass', 'rep-proj')).token;
  assert.ok(memberToken);
  const tok = await cloud.req('GET', `${I}/auth/tokens`, { token, headers: { 'x-subject-token': token } });
  adminProject = tok.body.token.project.id;
  const img = await cloud.req('POST', '/image/v2/images', { token, body: { name: 'cirros', disk_format: 'raw', container_format: 'bare', visibility: 'public' } });
  assert.equal(img.status, 201, img.text);
  imageId = img.body.id;
  const up = await fetch(`${cloud.url}/image/v2/images/${imageId}/file`, { method: 'PUT', headers: { 'x-auth-token': token, 'content-type': 'application/octet-stream' }, body: Buffer.alloc(65536) });
  assert.equal(up.status, 204);
  const svcs = await api('GET', '/os-services?binary=nova-compute');
  host = svcs.body.services[0].host;
  // Two servers of the admin's project (m1.tiny and m1.small), one of the member's (m1.tiny).
  for (const [flavor, tk] of [['1', token], ['2', token], ['1', memberToken]] as const) {
    const r = await api('POST', '/servers', { server: { name: `usage-${servers.length}`, imageRef: imageId, flavorRef: flavor, networks: 'none' } }, mv('2.37'), tk);
    assert.equal(r.status, 202, r.text);
    servers.push(r.body.server.id);
  }
  for (const id of servers) await waitFor(id, ['ACTIVE']);
});
after(async () => { await cloud?.stop(); });

test('os-simple-tenant-usage: totals and server usages from flavors and launch times, deleted servers included', async () => {
  const start = pyTime(new Date(Date.now() - 3600_000));
  const end = pyTime(new Date(Date.now() + 3600_000));
  // The second admin server ends: it stays in the report as terminated.
  await api('DELETE', `/servers/${servers[1]}`);
  await waitFor(servers[1], ['DELETED']);
  const list = await api('GET', `/os-simple-tenant-usage?start=${start}&end=${end}&detailed=1`);
  assert.equal(list.status, 200, list.text);
  assert.equal(list.body.tenant_usages.length, 2);
  const mine = list.body.tenant_usages.find((u: any) => u.tenant_id === adminProject);
  assert.deepEqual(Object.keys(mine).sort(), ['server_usages', 'start', 'stop', 'tenant_id', 'total_hours', 'total_local_gb_usage', 'total_memory_mb_usage', 'total_vcpus_usage']);
  assert.equal(mine.start, start);
  assert.match(mine.stop, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}$/);
  assert.equal(mine.server_usages.length, 2);
  const [tiny, small] = [servers[0], servers[1]].map((id) => mine.server_usages.find((s: any) => s.instance_id === id));
  assert.deepEqual(Object.keys(tiny).sort(), ['ended_at', 'flavor', 'hours', 'instance_id', 'local_gb', 'memory_mb', 'name', 'started_at', 'state', 'tenant_id', 'uptime', 'vcpus']);
  assert.equal(tiny.flavor, 'm1.tiny');
  assert.equal(tiny.memory_mb, 512);
  assert.equal(tiny.vcpus, 1);
  assert.equal(tiny.local_gb, 1);
  assert.equal(tiny.state, 'active');
  assert.equal(tiny.ended_at, null);
  assert.ok(tiny.hours > 0 && tiny.hours < 0.1, String(tiny.hours));
  assert.equal(small.flavor, 'm1.small');
  assert.equal(small.state, 'terminated');
  assert.match(small.ended_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}$/);
  assert.deepEqual([small.memory_mb, small.vcpus, small.local_gb], [2048, 1, 20]);
  const eps = 1e-9;
  assert.ok(Math.abs(mine.total_hours - (tiny.hours + small.hours)) < eps);
  assert.ok(Math.abs(mine.total_memory_mb_usage - (512 * tiny.hours + 2048 * small.hours)) < eps);
  assert.ok(Math.abs(mine.total_vcpus_usage - (tiny.hours + small.hours)) < eps);
  assert.ok(Math.abs(mine.total_local_gb_usage - (tiny.hours + 20 * small.hours)) < eps);
  // Without detailed=1: totals only.
  const brief = await api('GET', `/os-simple-tenant-usage?start=${start}&end=${end}`);
  assert.ok(brief.body.tenant_usages.every((u: any) => !('server_usages' in u)));
  // A period that ended before the servers launched has nothing.
  const old = await api('GET', '/os-simple-tenant-usage?start=2020-01-01T00:00:00&end=2020-01-02T00:00:00');
  assert.deepEqual(old.body, { tenant_usages: [] });
  // One tenant: always detailed; an unknown tenant has an empty usage.
  const one = await api('GET', `/os-simple-tenant-usage/${memberProject}?start=${start}&end=${end}`);
  assert.equal(one.body.tenant_usage.tenant_id, memberProject);
  assert.deepEqual(one.body.tenant_usage.server_usages.map((s: any) => s.instance_id), [servers[2]]);
  assert.deepEqual((await api('GET', `/os-simple-tenant-usage/nobody?start=${start}&end=${end}`)).body, { tenant_usage: {} });
  // A member reads their own project's usage, not another's nor the list.
  const own = await api('GET', `/os-simple-tenant-usage/${memberProject}?start=${start}&end=${end}`, undefined, {}, memberToken);
  assert.equal(own.status, 200, own.text);
  assert.equal((await api('GET', `/os-simple-tenant-usage/${adminProject}?start=${start}&end=${end}`, undefined, {}, memberToken)).status, 403);
  assert.equal((await api('GET', `/os-simple-tenant-usage?start=${start}&end=${end}`, undefined, {}, memberToken)).status, 403);
});

test('os-simple-tenant-usage: paging by instance from 2.40', async () => {
  const start = pyTime(new Date(Date.now() - 3600_000));
  const end = pyTime(new Date(Date.now() + 3600_000));
  const p1 = await api('GET', `/os-simple-tenant-usage?start=${start}&end=${end}&detailed=1&limit=2`, undefined, mv('2.40'));
  assert.equal(p1.status, 200, p1.text);
  const first = p1.body.tenant_usages.flatMap((u: any) => u.server_usages.map((s: any) => s.instance_id));
  assert.equal(first.length, 2);
  const next = p1.body.tenant_usages_links[0];
  assert.equal(next.rel, 'next');
  assert.match(next.href, new RegExp(`/v2\\.1/os-simple-tenant-usage\\?.*marker=${first[1]}`));
  const p2 = await api('GET', `/os-simple-tenant-usage?start=${start}&end=${end}&detailed=1&limit=2&marker=${first[1]}`, undefined, mv('2.40'));
  const second = p2.body.tenant_usages.flatMap((u: any) => u.server_usages.map((s: any) => s.instance_id));
  assert.equal(second.length, 1);
  assert.deepEqual([...first, ...second].sort(), [...servers].sort());
  assert.equal(p2.body.tenant_usages_links, undefined);
  // Before 2.40 limit is ignored.
  const old = await api('GET', `/os-simple-tenant-usage?start=${start}&end=${end}&detailed=1&limit=1`, undefined, mv('2.39'));
  assert.equal(old.body.tenant_usages.flatMap((u: any) => u.server_usages).length, 3);
  assert.equal(old.body.tenant_usages_links, undefined);
  const badMarker = await api('GET', `/os-simple-tenant-usage?start=${start}&end=${end}&marker=00000000-0000-0000-0000-00000000dead`, undefined, mv('2.40'));
  assert.equal(badMarker.status, 400);
  assert.equal(fault(badMarker), 'Marker 00000000-0000-0000-0000-00000000dead could not be found.');
  const badLimit = await api('GET', '/os-simple-tenant-usage?limit=-1', undefined, mv('2.40'));
  assert.equal(badLimit.status, 400);
});

test('os-simple-tenant-usage: bad dates', async () => {
  const cases: [string, string][] = [
    ['start=2026-01-02T00:00:00&end=2026-01-01T00:00:00', 'Invalid start time. The start time cannot occur after the end time.'],
    ['start=2026-01-01T00:00:00&end=2026-01-01T00:00:00', 'Invalid start time. The start time cannot occur after the end time.'],
    ['start=yesterday&end=2026-01-01T00:00:00', 'Invalid datetime string: Datetime is in invalid format'],
    ['start=2026-01-01T00:00:00Z', 'Invalid datetime string: Datetime is in invalid format'],
    ['end=2026-02-30T00:00:00', 'Invalid datetime string: Datetime is in invalid format'],
  ];
  for (const [q, msg] of cases) {
    const r = await api('GET', `/os-simple-tenant-usage?${q}`);
    assert.equal(r.status, 400, q);
    assert.deepEqual(r.body, { badRequest: { code: 400, message: msg } }, q);
    assert.equal((await api('GET', `/os-simple-tenant-usage/${adminProject}?${q}`)).status, 400, q);
  }
  // The formats Python's strptime takes in Nova.
  for (const q of ['start=2026-01-01T00:00:00.5&end=2026-01-02T00:00:00', 'start=2026-01-01+00:00:00.000001&end=2026-01-02T00:00:00']) {
    assert.equal((await api('GET', `/os-simple-tenant-usage?${q}`)).status, 200, q);
  }
  assert.equal((await api('GET', '/os-simple-tenant-usage/')).status, 404);
  // Unknown query parameters: ignored up to 2.74, refused from 2.75 (detailed is not one of show's).
  assert.equal((await api('GET', '/os-simple-tenant-usage?foo=1', undefined, mv('2.74'))).status, 200);
  for (const path of ['/os-simple-tenant-usage?foo=1', `/os-simple-tenant-usage/${adminProject}?detailed=1`]) {
    const r = await api('GET', path, undefined, mv('2.75'));
    assert.equal(r.status, 400, path);
    assert.match(fault(r), /^Additional properties are not allowed \('(foo|detailed)' was unexpected\)$/);
  }
});

test('os-hosts: list, zone filter, resources per project, enable/disable, 501 actions, 404 after 2.42', async () => {
  const l = await api('GET', '/os-hosts');
  assert.equal(l.status, 200, l.text);
  assert.deepEqual(l.body.hosts.map((h: any) => h.service).sort(), ['compute', 'conductor', 'scheduler']);
  assert.deepEqual(l.body.hosts.find((h: any) => h.service === 'compute'), { host_name: host, service: 'compute', zone: 'nova' });
  assert.equal(l.body.hosts.find((h: any) => h.service === 'conductor').zone, 'internal');
  assert.deepEqual((await api('GET', '/os-hosts?zone=nova')).body.hosts.map((h: any) => h.service), ['compute']);
  assert.deepEqual((await api('GET', '/os-hosts?zone=nowhere')).body, { hosts: [] });
  assert.equal((await api('GET', '/os-hosts?zone=')).body.hosts.length, 3);

  const s = await api('GET', `/os-hosts/${host}`);
  assert.equal(s.status, 200, s.text);
  const res = s.body.host.map((x: any) => x.resource);
  assert.deepEqual(res.slice(0, 3).map((r: any) => r.project), ['(total)', '(used_now)', '(used_max)']);
  assert.ok(res.every((r: any) => r.host === host));
  assert.ok(res[0].cpu > 0 && res[0].memory_mb > 0);
  // Live servers now: the admin's m1.tiny (the m1.small was deleted above or is still there) and the member's m1.tiny.
  const perProject = new Map(res.slice(3).map((r: any) => [r.project, r]));
  assert.deepEqual(perProject.get(memberProject), { host, project: memberProject, cpu: 1, memory_mb: 512, disk_gb: 1 });
  const max = res[2];
  assert.equal(max.cpu, [...perProject.values()].reduce((a: number, r: any) => a + r.cpu, 0));
  assert.equal(max.memory_mb, [...perProject.values()].reduce((a: number, r: any) => a + r.memory_mb, 0));

  const dis = await api('PUT', `/os-hosts/${host}`, { status: 'disable' });
  assert.deepEqual(dis.body, { host, status: 'disabled' });
  const svc = (await api('GET', '/os-services?binary=nova-compute')).body.services[0];
  assert.equal(svc.status, 'disabled');
  assert.deepEqual((await api('GET', '/os-hosts?zone=nova')).body.hosts, []);
  const en = await api('PUT', `/os-hosts/${host}`, { status: 'Enable' });
  assert.deepEqual(en.body, { host, status: 'enabled' });
  assert.equal((await api('GET', '/os-services?binary=nova-compute')).body.services[0].status, 'enabled');

  const notSupported = { notImplemented: { code: 501, message: 'The requested functionality is not supported.' } };
  const mm = await api('PUT', `/os-hosts/${host}`, { maintenance_mode: 'enable' });
  assert.equal(mm.status, 501);
  assert.deepEqual(mm.body, notSupported);
  for (const a of ['startup', 'shutdown', 'reboot']) {
    const r = await api('GET', `/os-hosts/${host}/${a}`);
    assert.equal(r.status, 501, a);
    assert.deepEqual(r.body, notSupported);
    const nf = await api('GET', `/os-hosts/nohost/${a}`);
    assert.equal(nf.status, 404, a);
    assert.equal((await api('GET', `/os-hosts/${host}/${a}`, undefined, {}, memberToken)).status, 403, a);
  }

  // Bad input, unknown hosts, policy, microversions.
  const cases: [string, Promise<{ status: number; body: any }>, number, string | RegExp][] = [
    ['show unknown', api('GET', '/os-hosts/nohost'), 404, "Host 'nohost' is not mapped to any cell"],
    ['update unknown', api('PUT', '/os-hosts/nohost', { status: 'enable' }), 404, "Host 'nohost' is not mapped to any cell"],
    ['bad status', api('PUT', `/os-hosts/${host}`, { status: 'bogus' }), 400, /Invalid input for field\/attribute status\. Value: bogus\./],
    ['bad maintenance', api('PUT', `/os-hosts/${host}`, { maintenance_mode: 'bogus' }), 400, /field\/attribute maintenance_mode/],
    ['no param', api('PUT', `/os-hosts/${host}`, {}), 400, '{} is not valid under any of the given schemas'],
    ['extra param', api('PUT', `/os-hosts/${host}`, { status: 'enable', foo: 1 }), 400, "Additional properties are not allowed ('foo' was unexpected)"],
    ['list non-admin', api('GET', '/os-hosts', undefined, {}, memberToken), 403, /os_compute_api:os-hosts:list/],
    ['show non-admin', api('GET', `/os-hosts/${host}`, undefined, {}, memberToken), 403, /os-hosts:show/],
    ['update non-admin', api('PUT', `/os-hosts/${host}`, { status: 'enable' }, {}, memberToken), 403, /os-hosts:update/],
    ['list at 2.43', api('GET', '/os-hosts', undefined, mv('2.43')), 404, 'The resource could not be found.'],
    ['show at 2.43', api('GET', `/os-hosts/${host}`, undefined, mv('2.43')), 404, 'The resource could not be found.'],
  ];
  for (const [what, p, status, msg] of cases) {
    const r = await p;
    assert.equal(r.status, status, `${what}: ${JSON.stringify(r.body)}`);
    if (typeof msg === 'string') assert.equal(fault(r), msg, what); else assert.match(fault(r), msg, what);
  }
  assert.equal((await api('GET', '/os-hosts', undefined, mv('2.42'))).status, 200);
});

test('os-instance_usage_audit_log: last month, no task logs: 0 of N hosts', async () => {
  const l = await api('GET', '/os-instance_usage_audit_log');
  assert.equal(l.status, 200, l.text);
  const log = l.body.instance_usage_audit_logs;
  const now = new Date();
  const end = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1));
  const begin = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - 1, 1));
  const py = (d: Date) => d.toISOString().slice(0, 19).replace('T', ' ');
  assert.deepEqual(log, {
    period_beginning: py(begin), period_ending: py(end), num_hosts: 1, num_hosts_done: 0, num_hosts_running: 0,
    num_hosts_not_run: 1, hosts_not_run: [host], total_instances: 0, total_errors: 0, overall_status: '0 of 1 hosts done. 0 errors.', log: {},
  });
  const s = await api('GET', `/os-instance_usage_audit_log/${encodeURIComponent('2026-03-15 10:00:00')}`);
  assert.equal(s.status, 200, s.text);
  assert.equal(s.body.instance_usage_audit_log.period_beginning, '2026-02-01 00:00:00');
  assert.equal(s.body.instance_usage_audit_log.period_ending, '2026-03-01 00:00:00');
  // On the first of a month at midnight the period is the one before; January wraps to December.
  const jan = await api('GET', `/os-instance_usage_audit_log/${encodeURIComponent('2026-01-01 00:00:00.000000')}`);
  assert.equal(jan.body.instance_usage_audit_log.period_beginning, '2025-11-01 00:00:00');
  assert.equal(jan.body.instance_usage_audit_log.period_ending, '2025-12-01 00:00:00');
  for (const bad of ['invalid_time', '2026-01-01T00:00:00', '2026-13-01 00:00:00']) {
    const r = await api('GET', `/os-instance_usage_audit_log/${encodeURIComponent(bad)}`);
    assert.equal(r.status, 400, bad);
    assert.equal(fault(r), `Invalid timestamp for date ${bad}`);
  }
  assert.equal((await api('GET', '/os-instance_usage_audit_log', undefined, {}, memberToken)).status, 403);
  assert.equal((await api('GET', `/os-instance_usage_audit_log/${encodeURIComponent('2026-03-15 10:00:00')}`, undefined, {}, memberToken)).status, 403);
});

test('os-migrations: an empty list in every microversion, filters validated as Nova', async () => {
  for (const v of ['2.1', '2.23', '2.59', '2.80', '2.93']) {
    const r = await api('GET', '/os-migrations', undefined, mv(v));
    assert.equal(r.status, 200, `${v}: ${r.text}`);
    assert.deepEqual(r.body, { migrations: [] });
  }
  assert.equal((await api('GET', '/os-migrations?host=x&status=finished&instance_uuid=y&migration_type=resize', undefined, mv('2.23'))).status, 200);
  assert.equal((await api('GET', '/os-migrations?foo=1', undefined, mv('2.58'))).status, 200);
  const cases: [string, string, number, string | RegExp][] = [
    ['2.59', 'foo=1', 400, "Additional properties are not allowed ('foo' was unexpected)"],
    ['2.59', 'changes-since=yesterday', 400, "Invalid input for query parameters changes-since. Value: yesterday. 'yesterday' is not a 'date-time'"],
    ['2.66', 'changes-since=2026-01-02T00:00:00Z&changes-before=2026-01-01T00:00:00Z', 400, 'The value of changes-since must be less than or equal to changes-before.'],
    ['2.59', 'changes-before=2026-01-01T00:00:00Z', 400, "Additional properties are not allowed ('changes-before' was unexpected)"],
    ['2.66', 'user_id=u', 400, "Additional properties are not allowed ('user_id' was unexpected)"],
    ['2.59', 'limit=x', 400, /Invalid input for query parameters limit/],
    ['2.59', 'marker=00000000-0000-0000-0000-000000000000', 400, 'Marker 00000000-0000-0000-0000-000000000000 could not be found.'],
  ];
  for (const [v, q, status, msg] of cases) {
    const r = await api('GET', `/os-migrations?${q}`, undefined, mv(v));
    assert.equal(r.status, status, `${v} ${q}: ${r.text}`);
    if (typeof msg === 'string') assert.equal(fault(r), msg, q); else assert.match(fault(r), msg, q);
  }
  for (const [v, q] of [['2.59', 'limit=5&changes-since=2026-01-01T00:00:00Z'], ['2.80', 'user_id=u&project_id=p&changes-before=2026-01-01T00:00:00Z']]) {
    assert.equal((await api('GET', `/os-migrations?${q}`, undefined, mv(v))).status, 200, q);
  }
  assert.equal((await api('GET', '/os-migrations', undefined, {}, memberToken)).status, 403);
});

test('os-migrations: rows of the cell database in Nova shapes per microversion, filters, newest first, paging', async () => {
  const d = await openDatabase(cloud.config.get<string>('database', 'connection'));
  const row = (i: number, o: Record<string, unknown>) => ({
    uuid: `00000000-0000-0000-0000-00000000000${i}`, instance_uuid: servers[0], source_compute: host, dest_compute: 'other', source_node: host, dest_node: 'other',
    dest_host: '192.0.2.1', old_instance_type_id: 1, new_instance_type_id: 2, status: 'finished', migration_type: 'resize', hidden: 0, cross_cell_move: 0,
    user_id: 'u1', project_id: adminProject, created_at: `2026-01-0${i}T00:00:00.000Z`, updated_at: `2026-01-0${i}T01:00:00.000Z`, deleted: 0, ...o,
  });
  try {
    await d.db.insertInto('migrations').values([
      row(1, {}),
      row(2, { status: 'running', migration_type: 'live-migration', dest_compute: 'third', user_id: 'u2', project_id: memberProject }),
      row(3, { status: 'error', migration_type: 'migration', source_compute: 'third', dest_compute: 'fourth' }),
      row(4, { hidden: 1 }),
    ]).execute();
    const v21 = await api('GET', '/os-migrations');
    assert.equal(v21.body.migrations.length, 3);
    const m1 = v21.body.migrations.find((m: any) => m.status === 'finished');
    assert.deepEqual(Object.keys(m1).sort(), ['created_at', 'dest_compute', 'dest_host', 'dest_node', 'id', 'instance_uuid', 'new_instance_type_id', 'old_instance_type_id', 'source_compute', 'source_node', 'status', 'updated_at']);
    assert.equal(m1.created_at, '2026-01-01T00:00:00.000000');
    const v223 = await api('GET', '/os-migrations', undefined, mv('2.23'));
    const live = v223.body.migrations.find((m: any) => m.migration_type === 'live-migration');
    assert.match(live.links[0].href, new RegExp(`/v2\\.1/servers/${servers[0]}/migrations/${live.id}$`));
    assert.ok(v223.body.migrations.filter((m: any) => m !== live).every((m: any) => !('links' in m)));
    const filters: [string, string, string[]][] = [
      ['2.1', `host=${host}`, ['finished', 'running']],
      ['2.1', 'host=fourth', ['error']],
      ['2.1', 'status=running,error', ['running', 'error']],
      ['2.1', 'migration_type=resize', ['finished']],
      ['2.1', `instance_uuid=${servers[1]}`, []],
      ['2.1', 'hidden=1', []],
      ['2.59', 'changes-since=2026-01-02T00:00:00Z', ['error', 'running']],
      ['2.66', 'changes-before=2026-01-02T12:00:00Z', ['running', 'finished']],
      ['2.80', 'user_id=u2', ['running']],
      ['2.80', `project_id=${adminProject}`, ['error', 'finished']],
    ];
    for (const [v, q, want] of filters) {
      const r = await api('GET', `/os-migrations?${q}`, undefined, mv(v));
      assert.equal(r.status, 200, `${q}: ${r.text}`);
      const got = r.body.migrations.map((m: any) => m.status);
      assert.deepEqual(v === '2.1' ? got.sort() : got, v === '2.1' ? [...want].sort() : want, q);
    }
    const p1 = await api('GET', '/os-migrations?limit=2', undefined, mv('2.80'));
    assert.deepEqual(p1.body.migrations.map((m: any) => m.uuid), [row(3, {}).uuid, row(2, {}).uuid]);
    assert.deepEqual([p1.body.migrations[1].user_id, p1.body.migrations[1].project_id], ['u2', memberProject]);
    assert.match(p1.body.migrations_links[0].href, new RegExp(`/v2\\.1/os-migrations\\?limit=2&marker=${row(2, {}).uuid}$`));
    const p2 = await api('GET', `/os-migrations?limit=2&marker=${row(2, {}).uuid}`, undefined, mv('2.80'));
    assert.deepEqual(p2.body.migrations.map((m: any) => m.uuid), [row(1, {}).uuid]);
    assert.equal(p2.body.migrations_links, undefined);
  } finally {
    await d.db.deleteFrom('migrations').execute();
    await d.close();
  }
});

test('os-server-external-events: per-event codes, 207, 404, names per microversion, admin only', async () => {
  const live = servers[0];
  const gone = '00000000-0000-0000-0000-0000000000ff';
  const ok = await api('POST', '/os-server-external-events', { events: [{ name: 'network-changed', server_uuid: live }] });
  assert.equal(ok.status, 200, ok.text);
  assert.deepEqual(ok.body, { events: [{ name: 'network-changed', server_uuid: live, status: 'completed', code: 200 }] });
  const tagged = await api('POST', '/os-server-external-events', { events: [{ name: 'network-vif-plugged', server_uuid: live, tag: 'port-1', status: 'failed' }] });
  assert.deepEqual(tagged.body.events[0], { name: 'network-vif-plugged', server_uuid: live, tag: 'port-1', status: 'completed', code: 200 });
  const mixed = await api('POST', '/os-server-external-events', { events: [{ name: 'network-vif-unplugged', server_uuid: live }, { name: 'network-vif-deleted', server_uuid: gone }] });
  assert.equal(mixed.status, 207);
  assert.deepEqual(mixed.body.events.map((e: any) => [e.code, e.status]), [[200, 'completed'], [404, 'failed']]);
  const none = await api('POST', '/os-server-external-events', { events: [{ name: 'network-changed', server_uuid: gone }] });
  assert.equal(none.status, 404);
  assert.equal(fault(none), 'No instances found for any event');
  // volume-extended needs its tag (the volume id).
  const noTag = await api('POST', '/os-server-external-events', { events: [{ name: 'volume-extended', server_uuid: live }, { name: 'network-changed', server_uuid: live }] }, mv('2.51'));
  assert.equal(noTag.status, 207);
  assert.deepEqual(noTag.body.events.map((e: any) => e.code), [400, 200]);

  const perVersion: [string, string, string][] = [['volume-extended', '2.50', '2.51'], ['power-update', '2.75', '2.76'], ['accelerator-request-bound', '2.81', '2.82'], ['volume-reimaged', '2.92', '2.93']];
  for (const [name, below, since] of perVersion) {
    const r = await api('POST', '/os-server-external-events', { events: [{ name, server_uuid: live, tag: 't' }] }, mv(below));
    assert.equal(r.status, 400, `${name} at ${below}`);
    assert.match(fault(r), new RegExp(`Invalid input for field/attribute name\\. Value: ${name}\\. '${name}' is not one of`));
    assert.equal((await api('POST', '/os-server-external-events', { events: [{ name, server_uuid: live, tag: 't' }] }, mv(since))).status, 200, `${name} at ${since}`);
  }
  const bad: [unknown, string | RegExp][] = [
    [{}, "'events' is a required property"],
    [{ events: [] }, /Invalid input for field\/attribute events\. Value: \[\]\. \[\] is too short/],
    [{ events: [{ name: 'network-changed' }] }, /'server_uuid' is a required property/],
    [{ events: [{ name: 'network-changed', server_uuid: 'not-a-uuid' }] }, /'not-a-uuid' is not a 'uuid'/],
    [{ events: [{ name: 'network-changed', server_uuid: live, status: 'done' }] }, /field\/attribute status\. Value: done\./],
    [{ events: [{ name: 'network-changed', server_uuid: live, extra: 1 }] }, /Additional properties are not allowed \('extra' was unexpected\)/],
    [{ events: [{ name: 'network-changed', server_uuid: live, tag: 'x'.repeat(256) }] }, /is too long/],
    [{ events: {} }, /is not of type 'array'/],
  ];
  for (const [body, msg] of bad) {
    const r = await api('POST', '/os-server-external-events', body);
    assert.equal(r.status, 400, JSON.stringify(body));
    if (typeof msg === 'string') assert.equal(fault(r), msg); else assert.match(fault(r), msg);
  }
  const member = await api('POST', '/os-server-external-events', { events: [{ name: 'network-changed', server_uuid: servers[2] }] }, {}, memberToken);
  assert.equal(member.status, 403);
});
