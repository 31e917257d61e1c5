// EC2 API benchmark (issue 16), fake driver, all-in-one on the selected backend:
//   - DescribeInstances of 1,000 instances against GET /servers/detail?limit=1000 on the same
//     servers with the same token and microversion (target: p50 within 1.5x)
//   - signature verification: SignatureVerifier.verify() of new requests (checked with the
//     signing key Identity handed over), of the first request of a key pair's day (the
//     /v3/ec2tokens round trip), of every request through Identity (no service token), and of
//     a request already verified; plus whole DescribeRegions requests (target: p50 under 2 ms)
//
//   npm run bench -- ec2 [--db=sqlite|mysql|postgresql] [--servers=1000]
import { summary, timeMany, writeResult, round } from './lib.ts';

const parse = (argv: string[]) => {
  const get = (k: string) => argv.find((a) => a.startsWith(`--${k}=`))?.split('=')[1];
  return { db: get('db') ?? process.env.STRATUS_TEST_DB ?? 'sqlite', servers: Number(get('servers') ?? 1000) };
};

export default async function run(argv: string[]): Promise<void> {
  const args = parse(argv);
  process.env.STRATUS_TEST_DB = args.db;
  Object.assign(process.env, { OS_DEFAULT__REPORT_INTERVAL: '60', OS_DEFAULT__UPDATE_RESOURCES_INTERVAL: '600', OS_DEFAULT__MAX_CONCURRENT_BUILDS: '50' });
  const { startCloud } = await import('../test/helpers/cloud.ts');
  const { ec2Call, form, signV4 } = await import('../test/helpers/ec2.ts');
  const { SignatureVerifier } = await import('../src/ec2/auth.ts');
  const { COMPUTE_MICROVERSION } = await import('../src/ec2/downstream.ts');
  const cloud = await startCloud();
  const result: Record<string, unknown> = { db: args.db, servers: args.servers };
  try {
    const admin = await cloud.login('admin', cloud.adminPassword, 'admin');
    const token = admin.token;
    const project = admin.body.token.project.id;
    const C = `${cloud.url}/compute/v2.1`;
    const H = { 'x-auth-token': token, 'content-type': 'application/json', 'openstack-api-version': `compute ${COMPUTE_MICROVERSION}` };
    const j = async (method: string, path: string, body?: unknown) => {
      const r = await fetch(`${C}${path}`, { method, headers: H, body: body === undefined ? undefined : JSON.stringify(body) });
      const t = await r.text();
      return { status: r.status, body: t ? JSON.parse(t) : undefined };
    };
    const cred = await cloud.req('POST', `/identity/v3/users/${admin.body.token.user.id}/credentials/OS-EC2`, { token, body: { tenant_id: project } });
    const keys = { access: cred.body.credential.access, secret: cred.body.credential.secret };
    const EP = `${cloud.url}/ec2/`;

    const img = await cloud.req('POST', '/image/v2/images', { token, body: { name: 'bench', disk_format: 'raw', container_format: 'bare', visibility: 'public', architecture: 'x86_64' } });
    await fetch(`${cloud.url}/image/v2/images/${img.body.id}/file`, { method: 'PUT', headers: { 'x-auth-token': token, 'content-type': 'application/octet-stream' }, body: Buffer.alloc(4096) });
    await j('PUT', `/os-quota-sets/${project}`, { quota_set: { instances: -1, cores: -1, ram: -1 } });
    const t0 = Date.now();
    for (let have = 0; have < args.servers; have += 100) {
      const n = Math.min(100, args.servers - have);
      const r = await j('POST', '/servers', { server: { name: `e${have}`, imageRef: img.body.id, flavorRef: '1', networks: 'none', min_count: n, max_count: n, metadata: { Name: `e${have}` } } });
      if (r.status !== 202) throw new Error(`batch create ${r.status}: ${JSON.stringify(r.body)}`);
    }
    while ((await j('GET', '/servers?status=ACTIVE&limit=1000')).body.servers.length < Math.min(args.servers, 1000)) await new Promise((r) => setTimeout(r, 200));
    console.log(`${args.servers} servers ACTIVE in ${((Date.now() - t0) / 1000).toFixed(1)} s`);

    // The first DescribeInstances records the 1,000 EC2 ids; the figures are the steady state.
    const first = await ec2Call(EP, keys, 'DescribeInstances', { MaxResults: '1000' });
    const count = (first.xml.match(/<instanceId>/g) ?? []).length;
    if (first.status !== 200 || count !== Math.min(args.servers, 1000)) throw new Error(`DescribeInstances: ${first.status}, ${count} instances: ${first.xml.slice(0, 300)}`);
    const rounds = 30;
    const detail: number[] = [];
    const describe: number[] = [];
    for (let i = 0; i < rounds; i++) {
      let t = process.hrtime.bigint();
      const r = await fetch(`${C}/servers/detail?limit=1000`, { headers: H });
      await r.text();
      detail.push(Number(process.hrtime.bigint() - t) / 1e6);
      t = process.hrtime.bigint();
      const d = await ec2Call(EP, keys, 'DescribeInstances', { MaxResults: '1000' });
      describe.push(Number(process.hrtime.bigint() - t) / 1e6);
      if (d.status !== 200) throw new Error(d.xml);
    }
    detail.sort((a, b) => a - b);
    describe.sort((a, b) => a - b);
    const ratio = round(summary(describe).p50 / summary(detail).p50, 2);
    result.describeInstances1000 = { ec2: summary(describe), novaDetail: summary(detail), ratioP50: ratio, xmlBytes: first.xml.length };
    console.log(`DescribeInstances of ${count}: p50 ${summary(describe).p50} ms (p99 ${summary(describe).p99}); GET /servers/detail?limit=1000 p50 ${summary(detail).p50} ms (p99 ${summary(detail).p99}); ratio ${ratio}`);

    // Signature verification, in process against this cloud's Identity.
    // As the EC2 service runs it: with its service token, so Identity hands it each key pair's
    // signing key of the day; and without (every new request a round trip).
    const svc = (await cloud.login('stratus', 'service-pass', 'service')).token;
    const verifier = new SignatureVerifier({ identityUrl: async () => `${cloud.url}/identity/v3`, maxSkewMs: 900_000, serviceToken: async () => svc });
    const roundTrips = new SignatureVerifier({ identityUrl: async () => `${cloud.url}/identity/v3`, maxSkewMs: 900_000 });
    const host = new URL(EP).host;
    const signed = (i: number) => {
      const body = form({ Action: 'DescribeRegions', Version: '2016-11-15', Nonce: String(i) });
      const headers = signV4(EP, body, keys);
      return { method: 'POST', host, path: '/ec2/', query: {}, params: Object.fromEntries(new URLSearchParams(body)), body, headers };
    };
    for (let i = 0; i < 20; i++) { await verifier.verify(signed(-1 - i)); await roundTrips.verify(signed(-100 - i)); } // warm connections and Identity's caches
    const requests = Array.from({ length: 400 }, (_, i) => signed(i));
    const cold = await timeMany(200, (i) => roundTrips.verify(requests[i]));
    const local = await timeMany(200, (i) => verifier.verify(requests[200 + i]));
    const warm = await timeMany(200, () => verifier.verify(requests[0]));
    // The first request of a key pair's day: the round trip that brings the signing key.
    const firstOfDay: number[] = [];
    for (let i = 0; i < 50; i++) {
      const v = new SignatureVerifier({ identityUrl: async () => `${cloud.url}/identity/v3`, maxSkewMs: 900_000, serviceToken: async () => svc });
      const t = process.hrtime.bigint();
      await v.verify(signed(1000 + i));
      firstOfDay.push(Number(process.hrtime.bigint() - t) / 1e6);
    }
    firstOfDay.sort((a, b) => a - b);
    // And whole requests: DescribeRegions needs no compute or image call.
    const freshReq = await timeMany(100, (i) => ec2Call(EP, keys, 'DescribeRegions', { 'Filter.1.Name': 'region-name', 'Filter.1.Value.1': `RegionOne${i % 2 ? '' : '*'}`, Nonce: String(i) } as Record<string, string>));
    const body = form({ Action: 'DescribeRegions', Version: '2016-11-15' });
    const headers = signV4(EP, body, keys);
    const sameReq = await timeMany(100, async () => { const r = await fetch(EP, { method: 'POST', headers, body }); await r.text(); });
    result.signature = {
      verifyNewRequestMs: summary(local), verifyFirstOfScopeMs: summary(firstOfDay), verifyEveryRequestThroughIdentityMs: summary(cold), verifySameRequestAgainMs: summary(warm),
      describeRegionsNewRequestMs: summary(freshReq), describeRegionsSameRequestMs: summary(sameReq),
      note: 'newRequest: a distinct signed request of a key pair whose signing key (one day/region/service) Identity already handed over, checked locally; firstOfScope: the POST /v3/ec2tokens?nocatalog round trip that brings it; everyRequestThroughIdentity: the same without the service token; sameRequestAgain: the verified-request cache',
    };
    console.log(`signature verification of a new request: p50 ${summary(local).p50} ms (p99 ${summary(local).p99}); first of a key's day (Identity round trip) p50 ${summary(firstOfDay).p50} ms; every request through Identity p50 ${summary(cold).p50} ms; same request again p50 ${summary(warm).p50} ms`);
    console.log(`DescribeRegions end to end: new request p50 ${summary(freshReq).p50} ms, same request again p50 ${summary(sameReq).p50} ms`);
  } finally {
    await cloud.stop();
  }
  writeResult(args.db === 'sqlite' ? 'ec2' : `ec2-${args.db}`, result);
}
