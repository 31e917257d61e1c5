// Metadata service benchmark, all-in-one (fake driver) on the selected backend:
//   - a signed GET of meta_data.json straight to the service (cached instance, and with
//     [api] metadata_cache_expiration = 0: every request reads the instance from its cell)
//   - one relay process per request (what cloud-init's fresh connections cost), and the same
//     requests on one keep-alive relay
//   - building a config drive (genisoimage)
//
//   npm run bench -- metadata [--db=sqlite|mysql|postgresql] [--n=300]
import { loadavg } from 'node:os';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { summary, timeMany, writeResult, round } from './lib.ts';

const CLOUD_INIT_PATHS = ['/openstack', '/openstack/2018-08-27/meta_data.json', '/openstack/2018-08-27/user_data', '/openstack/2018-08-27/vendor_data.json',
  '/openstack/2018-08-27/vendor_data2.json', '/openstack/2018-08-27/network_data.json', '/latest/meta-data/', '/latest/meta-data/placement/availability-zone',
  '/latest/meta-data/public-keys/', '/latest/meta-data/ami-id', '/latest/meta-data/instance-id', '/latest/meta-data/local-hostname', '/latest/meta-data/local-ipv4'];

export default async function run(argv: string[]): Promise<void> {
  const get = (k: string) => argv.find((a) => a.startsWith(`--${k}=`))?.split('=')[1];
  const db = get('db') ?? process.env.STRATUS_TEST_DB ?? 'sqlite';
  const n = Number(get('n') ?? 300);
  process.env.STRATUS_TEST_DB = db;
  const { startCloud } = await import('../test/helpers/cloud.ts');
  const { computeApi, mv, uploadImage } = await import('../test/helpers/compute.ts');
  const { instanceSignature, metadataRelayArgv } = await import('../src/compute/metadata/relay.ts');
  const { runRelay } = await import('../src/compute/metadata/testing.ts');
  const { buildConfigDrive } = await import('../src/compute/metadata/configdrive.ts');
  const { loadInstance } = await import('../src/compute/metadata/instance-source.ts');
  const { Cells } = await import('../src/compute/cells.ts');
  const cloud = await startCloud();
  const result: Record<string, unknown> = { db, loadavgBefore: loadavg().map((x) => round(x, 2)) };
  try {
    const token = await cloud.adminToken();
    const { api, waitFor } = computeApi(() => cloud, () => token, { settled: true });
    const imageRef = await uploadImage(cloud, token, { name: 'g', bytes: 1024 });
    const r = await api('POST', '/servers', { server: { name: 'vm', imageRef, flavorRef: '1', networks: 'auto', user_data: Buffer.from('#!/bin/sh\necho hi\n').toString('base64') } }, mv('2.93'));
    await waitFor(r.body.server.id, ['ACTIVE']);
    const id: string = r.body.server.id;
    const headers = { 'x-instance-id': id, 'x-instance-id-signature': instanceSignature(cloud.config.get('neutron', 'metadata_proxy_shared_secret'), id) };
    const direct = () => fetch(`${cloud.url}/metadata/openstack/latest/meta_data.json`, { headers }).then((x) => x.text());
    await timeMany(50, direct);
    result.directCached = summary(await timeMany(n, direct));
    console.log('direct GET meta_data.json (cached instance):', result.directCached);

    const fresh = cloud.config.with({ api: { metadata_cache_expiration: 0 } });
    const { launch } = await import('../src/cli/launcher.ts');
    const { metadataService } = await import('../src/compute/metadata/service.ts');
    const { createLogger } = await import('../src/common/logging.ts');
    const { freePort } = await import('../test/helpers/service.ts');
    const port = await freePort();
    const standalone = await launch({ config: fresh, logger: createLogger({ level: 'silent' }), services: [metadataService], bind: '127.0.0.1', port, allInOne: false });
    try {
      const uncached = () => fetch(`http://127.0.0.1:${port}/openstack/latest/meta_data.json`, { headers }).then((x) => x.text());
      await timeMany(20, uncached);
      result.directUncached = summary(await timeMany(n, uncached));
      console.log('direct GET meta_data.json (instance read every time, standalone service):', result.directUncached);
    } finally { await standalone.stop(); }

    const argv = metadataRelayArgv(cloud.config, id);
    const one = (p: string) => runRelay(argv, `GET ${p} HTTP/1.1\r\nHost: 169.254.169.254\r\nConnection: close\r\n\r\n`);
    const perRelay = await timeMany(3 * CLOUD_INIT_PATHS.length, (i) => one(CLOUD_INIT_PATHS[i % CLOUD_INIT_PATHS.length]));
    result.relayPerConnection = summary(perRelay);
    console.log('one relay process per request (spawn → answer → exit):', result.relayPerConnection);
    const t0 = process.hrtime.bigint();
    await runRelay(argv, CLOUD_INIT_PATHS.map((p, i) => `GET ${p} HTTP/1.1\r\nHost: 169.254.169.254\r\n${i === CLOUD_INIT_PATHS.length - 1 ? 'Connection: close\r\n' : ''}\r\n`).join(''));
    result.keepAliveRelayMsFor13 = round(Number(process.hrtime.bigint() - t0) / 1e6, 1);
    console.log(`${CLOUD_INIT_PATHS.length} cloud-init paths on one keep-alive relay: ${result.keepAliveRelayMsFor13} ms`);

    const cells = await Cells.open(cloud.config.get('api_database', 'connection'));
    const dir = mkdtempSync(join(tmpdir(), 'bench-cd-'));
    try {
      const spec = (await loadInstance(cells, id, cloud.config))!.spec;
      result.configDrive = summary(await timeMany(10, (i) => buildConfigDrive(spec, join(dir, `cd${i}.iso`), { config: cloud.config })));
      console.log('buildConfigDrive:', result.configDrive);
    } finally {
      rmSync(dir, { recursive: true, force: true });
      await cells.close();
    }
  } finally {
    result.loadavgAfter = loadavg().map((x) => round(x, 2));
    await cloud.stop();
  }
  writeResult(`metadata-${db}`, result);
}
