// The dashboard's only way to the cloud: the public OpenStack APIs, with the user's token, at the
// endpoints of the token's catalog — exactly what the CLI does. The session lives in
// sessionStorage, so it ends with the tab.

export interface ClientConfig { identityUrl: string; region: string }
export interface CatalogEntry { type: string; name?: string; endpoints: { interface: string; region_id?: string | null; region?: string | null; url: string }[] }
export interface Session {
  token: string;
  expiresAt: string;
  user: { id: string; name: string; domain: { id: string; name: string } };
  project?: { id: string; name: string; domain: { id: string; name: string } };
  roles: string[];
  catalog: CatalogEntry[];
  /** How the user logged in: a password session can switch project, an application credential cannot. */
  method: 'password' | 'application_credential';
  /** Tokens this tab held before project switches, revoked at logout. */
  previous?: string[];
}

/** An API refusal, carrying the service's own message. */
export class ApiError extends Error {
  constructor(public status: number, message: string, public service: string) { super(message); }
}
/** The token is no longer valid: the app goes back to the login page with this message. */
export class SessionExpired extends ApiError {}

const KEY = 'stratus.session';
let config: ClientConfig = { identityUrl: '/identity/v3', region: 'RegionOne' };
let session: Session | undefined;
let onExpired: (msg: string) => void = () => {};

export function setConfig(c: ClientConfig) { config = c; }
export function getConfig(): ClientConfig { return config; }
export function currentSession(): Session | undefined { return session; }
export function onSessionExpired(f: (msg: string) => void) { onExpired = f; }
export const isAdmin = () => !!session?.roles.includes('admin');

export function restoreSession(): Session | undefined {
  try {
    const s = JSON.parse(sessionStorage.getItem(KEY) ?? 'null') as Session | null;
    if (s && Date.parse(s.expiresAt) > Date.now()) session = s;
    else sessionStorage.removeItem(KEY);
  } catch { sessionStorage.removeItem(KEY); }
  return session;
}

function save(s: Session | undefined) {
  session = s;
  if (s) sessionStorage.setItem(KEY, JSON.stringify(s));
  else sessionStorage.removeItem(KEY);
}

/** The message an OpenStack service put in its error body, whatever the service's shape. */
export function errorMessage(status: number, text: string): string {
  let body: any;
  try { body = JSON.parse(text); } catch { body = undefined; }
  const clean = (m: string) => m.replace(/<br\s*\/?>/g, '\n').trim();
  if (body && typeof body === 'object') {
    if (typeof body.message === 'string') return clean(body.message); // Glance
    if (body.error?.message) return clean(body.error.message); // Keystone
    if (Array.isArray(body.errors) && body.errors[0]?.detail) return clean(body.errors[0].detail); // Placement
    for (const v of Object.values(body)) if (v && typeof v === 'object' && typeof (v as any).message === 'string') return clean((v as any).message); // Nova
  }
  if (text && text.length < 500 && !/<html/i.test(text)) return clean(text.replace(/<[^>]+>/g, ' '));
  return `HTTP ${status}`;
}

export function endpoint(type: string, s = session): string {
  const e = s?.catalog.find((c) => c.type === type);
  const ep = e?.endpoints.find((x) => x.interface === 'public' && (!(x.region_id ?? x.region) || (x.region_id ?? x.region) === config.region))
    ?? e?.endpoints.find((x) => x.interface === 'public');
  if (!ep) throw new ApiError(0, `The catalog has no public ${type} endpoint in region ${config.region}.`, type);
  return ep.url.replace(/\/+$/, '');
}
export function hasService(type: string): boolean { return !!session?.catalog.some((c) => c.type === type); }

const VERSION_HEADERS: Record<string, Record<string, string>> = {
  // Pinned so response shapes stay what the pages read (2.90: the last with server-generated key pairs is 2.91).
  compute: { 'OpenStack-API-Version': 'compute 2.90' },
  placement: { 'OpenStack-API-Version': 'placement 1.39' },
};

export interface ReqOpts { method?: string; body?: unknown; headers?: Record<string, string>; query?: Record<string, string | number | boolean | undefined>; raw?: BodyInit; microversion?: string }
export interface ApiResponse<T> { status: number; body: T; headers: Headers }

function urlFor(service: string, path: string, query?: ReqOpts['query']): string {
  const base = service === 'identity' ? config.identityUrl.replace(/\/+$/, '') : endpoint(service);
  const u = new URL(base + path, location.href);
  for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined && v !== '') u.searchParams.set(k, String(v));
  return u.href;
}

export async function call<T = any>(service: string, path: string, o: ReqOpts = {}): Promise<ApiResponse<T>> {
  const headers: Record<string, string> = { accept: 'application/json', ...(VERSION_HEADERS[service] ?? {}), ...(o.headers ?? {}) };
  if (o.microversion) headers['OpenStack-API-Version'] = `${service} ${o.microversion}`;
  const used = session?.token;
  if (used) headers['x-auth-token'] = used;
  let body: BodyInit | undefined = o.raw;
  if (o.body !== undefined) { body = JSON.stringify(o.body); headers['content-type'] ??= 'application/json'; }
  let res: Response;
  try {
    res = await fetch(urlFor(service, path, o.query), { method: o.method ?? 'GET', headers, body });
  } catch (e) {
    throw new ApiError(0, `Could not reach the ${service} service: ${(e as Error).message}`, service);
  }
  const text = await res.text();
  if (!res.ok) {
    const msg = errorMessage(res.status, text);
    // Only the current token expiring ends the session: a request still in flight with the
    // token a project switch just revoked must not log the user out.
    if (res.status === 401 && used && session?.token === used && !path.startsWith('/auth/tokens')) {
      save(undefined);
      onExpired('Your session has expired or was revoked; please log in again.');
      throw new SessionExpired(401, msg, service);
    }
    if (res.status === 401 && used && session && session.token !== used) throw new SessionExpired(401, 'The project changed while this request ran.', service);
    throw new ApiError(res.status, msg, service);
  }
  let parsed: any = undefined;
  if (text) { try { parsed = JSON.parse(text); } catch { parsed = text; } }
  return { status: res.status, body: parsed as T, headers: res.headers };
}
export const get = async <T = any>(service: string, path: string, query?: ReqOpts['query']) => (await call<T>(service, path, { query })).body;

/** Follows `next` links (Nova's servers_links, Glance's next, Keystone's links.next) to the end. */
export async function getAll<T>(service: string, path: string, key: string, query: ReqOpts['query'] = {}, pageSize = 1000): Promise<T[]> {
  const out: T[] = [];
  let marker: string | undefined;
  for (;;) {
    const body = await get<any>(service, path, { ...query, limit: pageSize, marker });
    const items = body[key] as T[];
    out.push(...items);
    const more = body.next || (body[`${key}_links`] ?? []).some((l: any) => l.rel === 'next');
    if (!more || items.length === 0) return out;
    marker = (items[items.length - 1] as any).id;
  }
}

function sessionFrom(token: string, t: any, method: Session['method']): Session {
  return {
    token, method, expiresAt: t.expires_at, user: t.user, project: t.project,
    roles: (t.roles ?? []).map((r: any) => r.name), catalog: t.catalog ?? [],
  };
}

async function issue(auth: unknown, method: Session['method']): Promise<Session> {
  const r = await call('identity', '/auth/tokens', { method: 'POST', body: { auth } });
  const token = r.headers.get('x-subject-token');
  if (!token) throw new ApiError(r.status, 'Identity answered without a token (X-Subject-Token).', 'identity');
  return sessionFrom(token, r.body.token, method);
}

export async function loginPassword(domain: string, user: string, password: string, project?: string): Promise<Session> {
  const identity = { methods: ['password'], password: { user: { name: user, domain: { name: domain }, password } } };
  const s = await issue(project ? { identity, scope: { project: { name: project, domain: { name: domain } } } } : { identity }, 'password');
  save(s);
  // An unscoped token (no default project) is scoped to the first project the user has.
  if (!s.project) {
    const projects = await listMyProjects();
    if (projects[0]) await switchProject(projects[0].id);
  }
  return session!;
}

export async function loginAppCredential(id: string, secret: string): Promise<Session> {
  const s = await issue({ identity: { methods: ['application_credential'], application_credential: { id, secret } } }, 'application_credential');
  save(s);
  return s;
}

export async function listMyProjects(): Promise<{ id: string; name: string; domain_id: string }[]> {
  return (await get<any>('identity', '/auth/projects')).projects;
}

/**
 * Rescopes with the current token (Keystone's token method). The old token is kept for logout
 * rather than revoked now: Stratus's identity revokes a token's descendants with it (audit
 * chain), which would revoke the new token too.
 */
export async function switchProject(projectId: string): Promise<Session> {
  const old = session!;
  const s = await issue({ identity: { methods: ['token'], token: { id: old.token } }, scope: { project: { id: projectId } } }, old.method);
  save({ ...s, previous: [old.token, ...(old.previous ?? [])] });
  return session!;
}

export async function logout(): Promise<void> {
  const s = session;
  save(undefined);
  if (!s) return;
  // Each token revokes itself, newest first (revoking an older one may take the newer with it).
  for (const t of [s.token, ...(s.previous ?? [])]) {
    await fetch(urlFor('identity', '/auth/tokens'), { method: 'DELETE', headers: { 'x-auth-token': t, 'x-subject-token': t } })
      .catch((e) => console.warn('logout: a token could not be revoked (it expires on its own)', e));
  }
}

/** PUT of a File straight from disk with upload progress (XHR streams a Blob; fetch cannot report progress). */
export function uploadFile(service: string, path: string, file: Blob, onProgress: (sent: number, total: number) => void, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('PUT', urlFor(service, path));
    xhr.setRequestHeader('content-type', 'application/octet-stream');
    if (session) xhr.setRequestHeader('x-auth-token', session.token);
    xhr.upload.onprogress = (e) => onProgress(e.loaded, e.lengthComputable ? e.total : file.size);
    xhr.onload = () => {
      if (xhr.status >= 200 && xhr.status < 300) { onProgress(file.size, file.size); resolve(); }
      else reject(new ApiError(xhr.status, errorMessage(xhr.status, xhr.responseText), service));
    };
    xhr.onerror = () => reject(new ApiError(0, 'The upload was interrupted (network error).', service));
    xhr.onabort = () => reject(new ApiError(0, 'The upload was cancelled.', service));
    signal?.addEventListener('abort', () => xhr.abort());
    xhr.send(file);
  });
}
