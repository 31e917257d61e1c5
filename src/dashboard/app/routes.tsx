// Hash routes (#/instances/ID): they work under any prefix the dashboard is served at, with no
// server-side fallback.
import type { FunctionComponent } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { Overview } from './pages/overview.tsx';
import { Instances } from './pages/instances.tsx';
import { InstanceDetail } from './pages/instance-detail.tsx';
import { Images, ImageDetail } from './pages/images.tsx';
import { KeyPairs } from './pages/keypairs.tsx';
import { ServerGroups } from './pages/server-groups.tsx';
import { Flavors } from './pages/flavors.tsx';
import { ApiAccess } from './pages/api-access.tsx';
import { Hypervisors, ComputeServices, Aggregates, ResourceProviders, AdminInstances } from './pages/admin-compute.tsx';
import { AdminFlavors } from './pages/admin-flavors.tsx';
import { Identity, Quotas } from './pages/admin-identity.tsx';

export interface PageProps { params: Record<string, string>; query: URLSearchParams }
type Page = FunctionComponent<PageProps>;

export const NAV: { title: string; admin?: boolean; items: { path: string; label: string }[] }[] = [
  { title: 'Project', items: [
    { path: '/overview', label: 'Overview' }, { path: '/instances', label: 'Instances' }, { path: '/images', label: 'Images' },
    { path: '/keypairs', label: 'Key pairs' }, { path: '/server-groups', label: 'Server groups' }, { path: '/flavors', label: 'Flavors' },
    { path: '/api-access', label: 'API access' },
  ] },
  { title: 'Admin', admin: true, items: [
    { path: '/admin/hypervisors', label: 'Hypervisors' }, { path: '/admin/services', label: 'Compute services' },
    { path: '/admin/aggregates', label: 'Aggregates and zones' }, { path: '/admin/instances', label: 'All instances' },
    { path: '/admin/flavors', label: 'Flavors' }, { path: '/admin/identity', label: 'Projects, users, roles' },
    { path: '/admin/providers', label: 'Resource providers' }, { path: '/admin/quotas', label: 'Quotas' },
  ] },
];

const TABLE: { re: RegExp; names: string[]; page: Page; admin?: boolean }[] = [
  { re: /^\/overview$/, names: [], page: Overview },
  { re: /^\/instances$/, names: [], page: Instances },
  { re: /^\/instances\/([^/]+)$/, names: ['id'], page: InstanceDetail },
  { re: /^\/images$/, names: [], page: Images },
  { re: /^\/images\/([^/]+)$/, names: ['id'], page: ImageDetail },
  { re: /^\/keypairs$/, names: [], page: KeyPairs },
  { re: /^\/server-groups$/, names: [], page: ServerGroups },
  { re: /^\/flavors$/, names: [], page: Flavors },
  { re: /^\/api-access$/, names: [], page: ApiAccess },
  { re: /^\/admin\/hypervisors$/, names: [], page: Hypervisors, admin: true },
  { re: /^\/admin\/services$/, names: [], page: ComputeServices, admin: true },
  { re: /^\/admin\/aggregates$/, names: [], page: Aggregates, admin: true },
  { re: /^\/admin\/instances$/, names: [], page: AdminInstances, admin: true },
  { re: /^\/admin\/flavors$/, names: [], page: AdminFlavors, admin: true },
  { re: /^\/admin\/identity$/, names: [], page: Identity, admin: true },
  { re: /^\/admin\/providers$/, names: [], page: ResourceProviders, admin: true },
  { re: /^\/admin\/quotas$/, names: [], page: Quotas, admin: true },
];

function parse() {
  const h = location.hash.replace(/^#/, '') || '/overview';
  const [path, q] = h.split('?');
  return { path, query: new URLSearchParams(q ?? '') };
}
export function useRoute() {
  const [r, setR] = useState(parse());
  useEffect(() => {
    const f = () => setR(parse());
    addEventListener('hashchange', f);
    return () => removeEventListener('hashchange', f);
  }, []);
  return r;
}
export function routeTo(path: string) { location.hash = `#${path}`; }

const NotFound: Page = () => <section class="page"><h1 id="page-title" tabIndex={-1}>Not found</h1><p>There is no page here. <a href="#/overview">Go to the overview</a>.</p></section>;
const Forbidden: Page = () => <section class="page"><h1 id="page-title" tabIndex={-1}>Not allowed</h1><p>This page needs the admin role.</p></section>;

export function matchPage(path: string, admin: boolean): { Component: Page; params: Record<string, string> } {
  for (const t of TABLE) {
    const m = t.re.exec(path);
    if (!m) continue;
    if (t.admin && !admin) return { Component: Forbidden, params: {} };
    return { Component: t.page, params: Object.fromEntries(t.names.map((n, i) => [n, decodeURIComponent(m[i + 1])])) };
  }
  return { Component: NotFound, params: {} };
}
