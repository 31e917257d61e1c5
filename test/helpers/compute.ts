// The compute API as the compute tests call it: requests under /compute/v2.1 with a default token,
// and a wait for a server to reach a status. The cloud and the token are set in before(), so the
// helpers take getters.
import assert from 'node:assert/strict';
import type { TestCloud } from './cloud.ts';

export const COMPUTE = '/compute/v2.1';
export const mv = (v: string) => ({ 'OpenStack-API-Version': `compute ${v}` });

export function computeApi(cloud: () => TestCloud, token: () => string, opts: { settled?: boolean } = {}) {
  const api = (method: string, path: string, body?: unknown, headers: Record<string, string> = {}, tok = token()) =>
    cloud().req(method, `${COMPUTE}${path}`, { token: tok, body, headers });
  /** Polls until the server's status is one of `statuses` ('DELETED': gone); `settled`: and no task is running. */
  const waitFor = async (id: string, statuses: string[], ms = 20_000): Promise<any> => {
    const end = Date.now() + ms;
    for (;;) {
      const r = await api('GET', `/servers/${id}`, undefined, mv('2.93'));
      if (r.status === 404 && statuses.includes('DELETED')) return undefined;
      if (r.status === 200 && statuses.includes(r.body.server.status) && (!opts.settled || r.body.server['OS-EXT-STS:task_state'] === null)) return r.body.server;
      if (Date.now() > end) assert.fail(`server ${id} did not reach ${statuses} (now ${r.status} ${r.body?.server?.status})`);
      await new Promise((res) => setTimeout(res, 100));
    }
  };
  return { api, waitFor };
}

/** A user with `roleName` on `project` (created when missing); returns its project-scoped token. */
export async function projectUser(cloud: TestCloud, token: string, project: string, user: string, roleName: string): Promise<string> {
  const I = '/identity/v3';
  let p = (await cloud.req('GET', `${I}/projects?name=${project}`, { token })).body.projects[0];
  if (!p) p = (await cloud.req('POST', `${I}/projects`, { token, body: { project: { name: project, domain_id: 'default' } } })).body.project;
  const u = await cloud.req('POST', `${I}/users`, { token, body: { user: { name: user, password: `pw-${user}`, domain_id: 'default', default_project_id: p.id } } });
  const role = (await cloud.req('GET', `${I}/roles?name=${roleName}`, { token })).body.roles[0];
  assert.equal((await cloud.req('PUT', `${I}/projects/${p.id}/users/${u.body.user.id}/roles/${role.id}`, { token })).status, 204);
  return (await cloud.login(user, `pw-${user}`, project)).token;
}

/** A raw image with `bytes` zero bytes of data, uploaded and active; returns its id. */
export async function uploadImage(cloud: TestCloud, token: string, o: { name?: string; bytes?: number; visibility?: string } = {}): Promise<string> {
  const img = await cloud.req('POST', '/image/v2/images', { token, body: { name: o.name ?? 'cirros', disk_format: 'raw', container_format: 'bare', ...(o.visibility ? { visibility: o.visibility } : {}) } });
  assert.equal(img.status, 201, img.text);
  const up = await fetch(`${cloud.url}/image/v2/images/${img.body.id}/file`, { method: 'PUT', headers: { 'x-auth-token': token, 'content-type': 'application/octet-stream' }, body: Buffer.alloc(o.bytes ?? 65536) });
  assert.equal(up.status, 204);
  return img.body.id;
}
