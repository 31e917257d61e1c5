// The dashboard in a real browser (Debian's chromium through playwright-core) against a fresh
// all-in-one: the "what must work" list, with a screenshot of each page in
// test-artifacts/dashboard/. Not a *.test.ts (npm test runs those once per database): run it
// with `npm run test:dashboard`; .ci/run does once.
import { after, afterEach, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { startCloud, type TestCloud } from '../helpers/cloud.ts';
import { freePort } from '../helpers/service.ts';
import { launch, type Launched } from '../../src/cli/launcher.ts';
import { dashboardService } from '../../src/dashboard/index.ts';
import { createLogger } from '../../src/common/logging.ts';
import { CHROMIUM_ARGS } from './browser-args.ts';

const ART = 'test-artifacts/dashboard';
const XSS = '<img src=x onerror="window.__xss=1"><script>window.__xss=1</script>';
let cloud: TestCloud;
let browser: Browser;
let profile: string;
let ctx: BrowserContext;
let page: Page;
let imageFile: string;
let dashPort: number;
let standalone: Launched | undefined;
const memberPassword = 'member-pass-1';
/** Uncaught errors in the page: each test must leave none. */
const pageErrors: string[] = [];


async function shot(name: string) {
  await page.screenshot({ path: join(ART, `${name}.png`), fullPage: true });
}
async function noErrorBox() {
  const errs = await page.locator('.error').allTextContents();
  assert.deepEqual(errs, [], `the page shows errors: ${errs.join(' | ')}`);
}
async function login(user: string, password: string) {
  await page.goto(`${cloud.url}/`);
  await page.getByLabel('User name').fill(user);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.getByRole('heading', { name: 'Overview', level: 1 }).waitFor();
}
async function go(hash: string, heading: string) {
  await page.evaluate((h) => { location.hash = h; }, hash);
  await page.getByRole('heading', { name: heading, level: 1 }).waitFor();
}
async function selectByText(select: ReturnType<Page['locator']>, text: RegExp) {
  const value = await select.locator('option', { hasText: text }).first().getAttribute('value');
  await select.selectOption(value!);
}
async function waitStatus(name: string, status: string, timeout = 30_000) {
  await page.locator('tr', { has: page.getByRole('link', { name, exact: true }) }).locator('.badge', { hasText: new RegExp(`^${status}$`) }).waitFor({ timeout });
}

before(async () => {
  mkdirSync(ART, { recursive: true });
  // The test serves what `npm run build` makes; build it so the run never sees a stale app.
  const b = spawnSync(process.execPath, ['scripts/build-dashboard.mjs'], { stdio: 'inherit' });
  assert.equal(b.status, 0, 'dashboard build failed');
  // The distributed shape's dashboard (`stratus serve dashboard`) runs on its own port: the
  // APIs must allow its origin ([cors] allowed_origin).
  dashPort = await freePort();
  process.env.OS_CORS__ALLOWED_ORIGIN = `http://127.0.0.1:${dashPort}`;
  cloud = await startCloud();
  delete process.env.OS_CORS__ALLOWED_ORIGIN;
  const admin = await cloud.adminToken();
  // A member in a project of its own, to check isolation.
  const proj = await cloud.req('POST', '/identity/v3/projects', { token: admin, body: { project: { name: 'demo', domain_id: 'default' } } });
  const user = await cloud.req('POST', '/identity/v3/users', { token: admin, body: { user: { name: 'member1', password: memberPassword, domain_id: 'default', default_project_id: proj.body.project.id } } });
  const roles = await cloud.req('GET', '/identity/v3/roles?name=member', { token: admin });
  const grant = await cloud.req('PUT', `/identity/v3/projects/${proj.body.project.id}/users/${user.body.user.id}/roles/${roles.body.roles[0].id}`, { token: admin });
  assert.equal(grant.status, 204);
  profile = mkdtempSync(join(tmpdir(), 'stratus-chromium-'));
  imageFile = join(profile, 'disk.raw');
  writeFileSync(imageFile, Buffer.alloc(4 * 1024 * 1024, 7));
  browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium', args: CHROMIUM_ARGS }); // playwright gives each launch a fresh temporary profile
  ctx = await browser.newContext({ viewport: { width: 1366, height: 820 } });
  page = await ctx.newPage();
  page.on('pageerror', (e) => { pageErrors.push(e.message); });
  page.on('console', (m) => { if (m.type() === 'error' && !/Failed to load resource/.test(m.text())) console.error(`browser console: ${m.text()}`); });
});

afterEach(() => {
  assert.deepEqual(pageErrors.splice(0), [], 'uncaught errors in the page');
});

after(async () => {
  await browser?.close();
  await standalone?.stop();
  await cloud?.stop();
  if (profile) rmSync(profile, { recursive: true, force: true });
});

test('/ sends a browser to the dashboard and keeps the JSON 404 for API clients; the CSP is strict', async () => {
  const api = await fetch(`${cloud.url}/`);
  assert.equal(api.status, 404);
  assert.equal((await api.json()).error.code, 404);
  const html = await fetch(`${cloud.url}/`, { headers: { accept: 'text/html' }, redirect: 'manual' });
  assert.equal(html.status, 302);
  assert.equal(html.headers.get('location'), '/dashboard/');
  const index = await fetch(`${cloud.url}/dashboard/`);
  const csp = index.headers.get('content-security-policy') ?? '';
  assert.match(csp, /script-src 'self'(;|$)/);
  assert.match(csp, /default-src 'none'/);
  assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
});

test('admin logs in with a password and sees the overview with quota bars and the usage chart', async () => {
  await login('admin', cloud.adminPassword);
  await page.getByRole('meter', { name: 'Instances' }).waitFor();
  await page.locator('.chart canvas').waitFor();
  await noErrorBox();
  await shot('01-overview');
  const token = await page.evaluate(() => JSON.parse(sessionStorage.getItem('stratus.session')!).token);
  assert.ok(token, 'the token lives in sessionStorage');
  assert.equal(await page.evaluate(() => localStorage.length), 0, 'nothing in localStorage');
});

test('create a key pair', async () => {
  await go('#/keypairs', 'Key pairs');
  await page.getByLabel('Key pair name').fill('k1');
  await page.getByRole('button', { name: 'Create key pair' }).click();
  await page.getByRole('button', { name: 'Download k1.pem' }).waitFor();
  await page.getByRole('cell', { name: 'k1', exact: true }).waitFor();
  await shot('02-keypairs');
});

test('upload an image of 4 MiB from the browser and watch the progress reach 100 %', async () => {
  await go('#/images', 'Images');
  await page.getByRole('button', { name: 'Create image' }).click();
  const dialog = page.getByRole('dialog', { name: 'Create image' });
  await dialog.getByLabel('Name').fill('tiny-raw');
  await dialog.getByLabel('Disk format').selectOption('raw');
  await dialog.getByLabel('Image file').setInputFiles(imageFile);
  // A property with HTML in its value, to check it renders as text later.
  await dialog.getByRole('button', { name: 'Add' }).click();
  await dialog.getByLabel('Properties key 1').fill('os_distro');
  await dialog.getByLabel('Properties value 1').fill(XSS);
  // Record every value the progress bar takes.
  await page.evaluate(() => {
    (window as any).__progress = [];
    new MutationObserver(() => {
      const p = document.querySelector('progress');
      if (p) (window as any).__progress.push(Number(p.getAttribute('value') ?? p.value));
    }).observe(document.body, { subtree: true, childList: true, attributes: true, attributeFilter: ['value'] });
  });
  await dialog.getByRole('button', { name: 'Create' }).click();
  await page.getByRole('link', { name: 'tiny-raw' }).waitFor({ timeout: 30_000 });
  const seen: number[] = await page.evaluate(() => (window as any).__progress);
  assert.ok(seen.includes(100), `progress reached 100 (saw ${seen.join(',')})`);
  await waitStatus('tiny-raw', 'active');
  await shot('03-images');
  await page.getByRole('link', { name: 'tiny-raw' }).click();
  await page.getByRole('heading', { name: 'tiny-raw', level: 1 }).waitFor();
  await page.getByLabel('Properties value 1').waitFor();
  assert.equal(await page.evaluate(() => (window as any).__xss), undefined, 'no script ran from a property value');
  await shot('04-image-detail');
});

test('a refused upload shows the service\'s reason', async () => {
  await go('#/images', 'Images');
  await page.getByRole('button', { name: 'Create image' }).click();
  const dialog = page.getByRole('dialog', { name: 'Create image' });
  await dialog.getByLabel('Name').fill('not-a-qcow2');
  await dialog.getByLabel('Disk format').selectOption('qcow2');
  await dialog.getByLabel('Image file').setInputFiles(imageFile);
  await dialog.getByRole('button', { name: 'Create' }).click();
  const err = dialog.locator('.error');
  await err.waitFor();
  const text = await err.textContent();
  assert.ok(text && !/^HTTP \d+$/.test(text.trim()), `a message from the service: ${text}`);
  await shot('05-upload-refused');
  await dialog.getByRole('button', { name: 'Close' }).first().click();
});

test('launch 3 instances and see them reach ACTIVE without reloading', async () => {
  await go('#/instances', 'Instances');
  await page.evaluate(() => { (window as any).__sameDocument = true; });
  await page.getByRole('button', { name: 'Launch instance' }).click();
  const dialog = page.getByRole('dialog', { name: 'Launch instance' });
  await dialog.getByLabel('Name').fill('web');
  await dialog.getByLabel('Count').fill('3');
  await selectByText(dialog.getByLabel('Image'), /tiny-raw/);
  // m1.tiny's 1 GB disk fits the 4 MiB image; every flavor is offered.
  await dialog.getByRole('radio', { name: /m1\.tiny/ }).check();
  await dialog.getByLabel('Key pair').selectOption('k1');
  await shot('06-launch');
  await dialog.getByRole('button', { name: 'Launch' }).click();
  await dialog.waitFor({ state: 'detached' });
  for (const n of ['web-1', 'web-2', 'web-3']) await waitStatus(n, 'ACTIVE');
  assert.equal(await page.evaluate(() => (window as any).__sameDocument), true, 'the page was not reloaded');
  await shot('07-instances');
});

test('a flavor that cannot fit the image is greyed out with the reason', async () => {
  const token = await cloud.adminToken();
  const img = await cloud.req('POST', '/image/v2/images', { token, body: { name: 'big-min-disk', disk_format: 'raw', container_format: 'bare', min_disk: 30 } });
  await cloud.req('PUT', `/image/v2/images/${img.body.id}/file`, { token, raw: 'x'.repeat(1024), headers: { 'content-type': 'application/octet-stream' } });
  await page.getByRole('button', { name: 'Launch instance' }).click();
  const dialog = page.getByRole('dialog', { name: 'Launch instance' });
  await selectByText(dialog.getByLabel('Image'), /big-min-disk/);
  assert.equal(await dialog.getByRole('radio', { name: /m1\.tiny/ }).isDisabled(), true);
  assert.match(await dialog.locator('.flavor', { hasText: 'm1.tiny' }).textContent() ?? '', /min_disk 30/);
  assert.equal(await dialog.getByRole('radio', { name: /m1\.medium/ }).isDisabled(), false);
  await dialog.getByRole('button', { name: 'Cancel' }).click();
  await cloud.req('DELETE', `/image/v2/images/${img.body.id}`, { token });
});

test('open an instance\'s console log; stop and start it', async () => {
  await page.getByRole('link', { name: 'web-1', exact: true }).click();
  await page.getByRole('heading', { name: 'web-1', level: 1 }).waitFor();
  await page.getByRole('tab', { name: 'Console log' }).click();
  const log = page.locator('pre.console');
  await page.waitForFunction(() => { const t = document.querySelector('pre.console')?.textContent ?? ''; return t.length > 0 && t !== 'Loading…'; });
  assert.ok(((await log.textContent()) ?? '').length > 0);
  await shot('08-console-log');
  await page.getByRole('tab', { name: 'Action log' }).click();
  await page.locator('.action-log').getByText('create', { exact: true }).waitFor();
  await page.getByRole('tab', { name: 'Console', exact: true }).click();
  // The fake driver has a VNC console now: the tab embeds noVNC with the console URL the API gave.
  await page.locator('[role=tabpanel] iframe.vnc').waitFor();
  await shot('09-console');
  // Stop asks for confirmation; Start is disabled until the instance is SHUTOFF.
  assert.equal(await page.getByRole('button', { name: /^Start/ }).isDisabled(), true);
  await page.getByRole('button', { name: /^Stop/ }).click();
  await page.getByRole('dialog', { name: 'Please confirm' }).getByRole('button', { name: 'Stop' }).click();
  await page.locator('.page-head .badge', { hasText: 'SHUTOFF' }).waitFor({ timeout: 30_000 });
  await page.getByRole('button', { name: /^Start/ }).click();
  await page.locator('.page-head .badge', { hasText: 'ACTIVE' }).waitFor({ timeout: 30_000 });
  await shot('10-instance-detail');
});

test('an instance of an impossible image (hypervisor_type=xen) ends in ERROR with the explained fault on its page', async () => {
  const token = await cloud.adminToken();
  const img = await cloud.req('POST', '/image/v2/images', { token, body: { name: 'xen-only', disk_format: 'raw', container_format: 'bare', hypervisor_type: 'xen' } });
  await cloud.req('PUT', `/image/v2/images/${img.body.id}/file`, { token, raw: 'x'.repeat(1024), headers: { 'content-type': 'application/octet-stream' } });
  await go('#/instances', 'Instances');
  await page.getByRole('button', { name: 'Launch instance' }).click();
  const dialog = page.getByRole('dialog', { name: 'Launch instance' });
  await dialog.getByLabel('Name').fill('on-xen');
  await selectByText(dialog.getByLabel('Image'), /xen-only/);
  await dialog.getByRole('radio', { name: /m1\.tiny/ }).check();
  await dialog.getByRole('button', { name: 'Launch' }).click();
  await waitStatus('on-xen', 'ERROR');
  await page.getByRole('link', { name: 'on-xen', exact: true }).click();
  const fault = page.locator('.fault-message');
  await fault.waitFor();
  const text = (await fault.textContent()) ?? '';
  assert.match(text, /No valid host/);
  assert.match(text, /hypervisor_type=xen/);
  await shot('11-fault');
});

test('names containing HTML or script render as text', async () => {
  const token = await cloud.adminToken();
  const r = await cloud.req('POST', '/compute/v2.1/servers', { token, body: { server: { name: XSS, imageRef: (await cloud.req('GET', '/image/v2/images?name=tiny-raw', { token })).body.images[0].id, flavorRef: '1', networks: 'none' } }, headers: { 'OpenStack-API-Version': 'compute 2.90' } });
  assert.equal(r.status, 202, r.text);
  await go('#/instances', 'Instances');
  await page.getByRole('link', { name: XSS, exact: true }).waitFor();
  assert.equal(await page.evaluate(() => (window as any).__xss), undefined);
  assert.equal(await page.locator('table img').count(), 0);
});

test('admin pages', async () => {
  for (const [hash, title, file] of [
    ['#/admin/hypervisors', 'Hypervisors', '20-hypervisors'], ['#/admin/services', 'Compute services', '21-services'],
    ['#/admin/aggregates', 'Aggregates and zones', '22-aggregates'], ['#/admin/instances', 'All instances', '23-all-instances'],
    ['#/admin/flavors', 'Flavors (admin)', '24-flavors-admin'], ['#/admin/identity', 'Projects, users, roles', '25-identity'],
    ['#/admin/providers', 'Resource providers', '26-providers'], ['#/admin/quotas', 'Quotas', '27-quotas'],
    ['#/server-groups', 'Server groups', '12-server-groups'], ['#/flavors', 'Flavors', '13-flavors'], ['#/api-access', 'API access', '14-api-access'],
  ]) {
    await go(hash, title);
    await page.waitForFunction(() => !document.querySelector('[aria-busy="true"]'));
    await noErrorBox();
    if (file === '26-providers' || file === '20-hypervisors') await page.locator('.card .bar-track').first().waitFor(); // usage bars from placement
    await shot(file);
  }
});

test('delete the instances', async () => {
  await go('#/instances', 'Instances');
  for (const name of ['web-1', 'web-2', 'web-3', 'on-xen', XSS]) {
    await page.getByRole('link', { name, exact: true }).click();
    await page.getByRole('heading', { name, level: 1 }).waitFor();
    await page.getByRole('button', { name: 'Delete', exact: true }).click();
    await page.getByRole('dialog', { name: 'Please confirm' }).getByRole('button', { name: 'Delete' }).click();
    await page.getByRole('heading', { name: 'Instances', level: 1 }).waitFor();
    await page.getByRole('link', { name, exact: true }).waitFor({ state: 'detached', timeout: 30_000 });
  }
  await shot('15-instances-deleted');
});

test('logout revokes the token', async () => {
  const token = await page.evaluate(() => JSON.parse(sessionStorage.getItem('stratus.session')!).token);
  await page.getByRole('button', { name: 'Log out' }).click();
  await page.getByRole('heading', { name: 'Log in to Stratus' }).waitFor();
  const admin = await cloud.adminToken();
  const check = await cloud.req('GET', '/identity/v3/auth/tokens', { token: admin, headers: { 'x-subject-token': token } });
  assert.equal(check.status, 404, 'the logged-out token no longer validates');
});

test('a member sees none of another project\'s instances and no admin pages', async () => {
  const token = await cloud.adminToken();
  const image = (await cloud.req('GET', '/image/v2/images?name=tiny-raw', { token })).body.images[0].id;
  const r = await cloud.req('POST', '/compute/v2.1/servers', { token, body: { server: { name: 'admins-own', imageRef: image, flavorRef: '1', networks: 'none' } }, headers: { 'OpenStack-API-Version': 'compute 2.90' } });
  assert.equal(r.status, 202);
  await login('member1', memberPassword);
  assert.equal(await page.getByRole('navigation', { name: 'Main' }).getByText('Admin').count(), 0);
  await go('#/instances', 'Instances');
  await page.getByText('No instances.').waitFor();
  assert.equal(await page.getByRole('link', { name: 'admins-own' }).count(), 0);
  await shot('30-member-instances');
  await go('#/admin/hypervisors', 'Not allowed');
  await shot('31-member-admin-refused');
});

test('an expired or revoked token sends the user back to login with a message', async () => {
  await go('#/overview', 'Overview');
  const token = await page.evaluate(() => JSON.parse(sessionStorage.getItem('stratus.session')!).token);
  const admin = await cloud.adminToken();
  assert.equal((await cloud.req('DELETE', '/identity/v3/auth/tokens', { token: admin, headers: { 'x-subject-token': token } })).status, 204);
  await go('#/keypairs', 'Key pairs').catch(() => {});
  await page.getByRole('heading', { name: 'Log in to Stratus' }).waitFor();
  await page.getByText(/session has expired or was revoked/).waitFor();
  await shot('32-session-expired');
});

test('an application credential logs in too (no project switcher: its project is fixed)', async () => {
  const admin = await cloud.login('admin', cloud.adminPassword, 'admin');
  const userId = admin.body.token.user.id;
  const cred = await cloud.req('POST', `/identity/v3/users/${userId}/application_credentials`, { token: admin.token, body: { application_credential: { name: 'dash-test' } } });
  assert.equal(cred.status, 201, cred.text);
  await page.goto(`${cloud.url}/dashboard/`);
  await page.getByRole('tab', { name: 'Application credential' }).click();
  await page.getByLabel('Application credential ID').fill(cred.body.application_credential.id);
  await page.getByLabel('Secret').fill(cred.body.application_credential.secret);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.getByRole('heading', { name: 'Overview', level: 1 }).waitFor();
  await page.getByText('Project: admin').waitFor();
  await page.getByRole('button', { name: 'Log out' }).click();
  await page.getByRole('heading', { name: 'Log in to Stratus' }).waitFor();
});

test('the project switcher rescopes the tab to another project; logout then revokes the token chain', async () => {
  const admin = await cloud.adminToken();
  const demo = (await cloud.req('GET', '/identity/v3/projects?name=demo', { token: admin })).body.projects[0];
  const me = (await cloud.login('admin', cloud.adminPassword, 'admin')).body.token.user.id;
  const role = (await cloud.req('GET', '/identity/v3/roles?name=member', { token: admin })).body.roles[0].id;
  await cloud.req('PUT', `/identity/v3/projects/${demo.id}/users/${me}/roles/${role}`, { token: admin });
  await login('admin', cloud.adminPassword);
  const before = await page.evaluate(() => JSON.parse(sessionStorage.getItem('stratus.session')!).token);
  await page.getByRole('combobox', { name: 'Project' }).selectOption({ label: 'demo' });
  await page.waitForFunction(() => JSON.parse(sessionStorage.getItem('stratus.session')!).project.name === 'demo');
  await go('#/instances', 'Instances');
  await page.getByText('No instances.').waitFor();
  await page.getByRole('button', { name: 'Log out' }).click();
  await page.getByRole('heading', { name: 'Log in to Stratus' }).waitFor();
  const check = await cloud.req('GET', '/identity/v3/auth/tokens', { token: admin, headers: { 'x-subject-token': before } });
  assert.equal(check.status, 404, 'the first token of the tab no longer validates');
});

test('on a phone-sized screen the menu folds and pages stay usable', async () => {
  const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  const p = await phone.newPage();
  p.on('pageerror', (e) => { pageErrors.push(e.message); });
  await p.goto(`${cloud.url}/dashboard/`);
  await p.getByLabel('User name').fill('admin');
  await p.getByLabel('Password').fill(cloud.adminPassword);
  await p.getByRole('button', { name: 'Log in' }).click();
  await p.getByRole('heading', { name: 'Overview', level: 1 }).waitFor();
  assert.equal(await p.getByRole('link', { name: 'Instances', exact: true }).isVisible(), false);
  await p.getByRole('button', { name: 'Menu' }).click();
  await p.getByRole('link', { name: 'Instances', exact: true }).click();
  await p.getByRole('heading', { name: 'Instances', level: 1 }).waitFor();
  await p.screenshot({ path: join(ART, '40-phone-instances.png'), fullPage: true });
  await phone.close();
});

test('stratus serve dashboard: the app on its own port logs in to the cloud\'s identity and calls its APIs (CORS)', async () => {
  standalone = await launch({
    config: cloud.config.with({ dashboard: { identity_url: cloud.identityUrl } }), logger: createLogger({ level: 'silent' }),
    services: [dashboardService], bind: '127.0.0.1', port: dashPort, allInOne: false,
  });
  const p = await ctx.newPage();
  p.on('pageerror', (e) => { pageErrors.push(e.message); });
  await p.goto(`http://127.0.0.1:${dashPort}/`);
  await p.getByLabel('User name').fill('admin');
  await p.getByLabel('Password').fill(cloud.adminPassword);
  await p.getByRole('button', { name: 'Log in' }).click();
  await p.getByRole('meter', { name: 'Instances' }).waitFor();
  await p.evaluate(() => { location.hash = '#/images'; });
  await p.getByRole('link', { name: 'tiny-raw' }).waitFor();
  await p.screenshot({ path: join(ART, '41-standalone-images.png'), fullPage: true });
  await p.close();
});
