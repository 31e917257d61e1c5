// Entry point: loads config.json, restores the tab's session, and renders the shell (navigation,
// project switcher, notices) around the page the URL hash names.
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import './style.css';
import { currentSession, isAdmin, listMyProjects, logout, onSessionExpired, restoreSession, setConfig, switchProject, type Session } from './api.ts';
import { ConfirmHost } from './ui.tsx';
import { onNotice, type Notice } from './notices.ts';
import { Login } from './pages/login.tsx';
import { routeTo, useRoute, matchPage, NAV } from './routes.tsx';

function Notices() {
  const [list, setList] = useState<Notice[]>([]);
  useEffect(() => onNotice((n) => {
    setList((l) => [...l.slice(-3), n]);
    setTimeout(() => setList((l) => l.filter((x) => x.id !== n.id)), n.kind === 'error' ? 12000 : 4000);
  }), []);
  return (
    <div class="notices" role="status" aria-live="polite">
      {list.map((n) => <div key={n.id} class={`notice ${n.kind}`}>{n.text}</div>)}
    </div>
  );
}

function ProjectSwitcher({ session, onSwitch }: { session: Session; onSwitch: () => void }) {
  const [projects, setProjects] = useState<{ id: string; name: string }[]>([]);
  const [error, setError] = useState('');
  useEffect(() => { if (session.method === 'password') listMyProjects().then(setProjects, (e) => setError(e.message)); }, [session.user.id]);
  if (session.method !== 'password') return <span class="project">Project: {session.project?.name ?? '—'}</span>;
  return (
    <label class="project">
      <span>Project</span>
      <select aria-label="Project" value={session.project?.id} title={error || undefined}
        onChange={async (e) => { await switchProject(e.currentTarget.value).then(onSwitch, (err) => setError(err.message)); }}>
        {!session.project && <option value="">—</option>}
        {projects.map((p) => <option key={p.id} value={p.id}>{p.name}</option>)}
      </select>
    </label>
  );
}

function Shell() {
  const [session, setSession] = useState<Session | undefined>(currentSession());
  const [message, setMessage] = useState('');
  const [menu, setMenu] = useState(false);
  const [gen, setGen] = useState(0);
  const route = useRoute();
  useEffect(() => onSessionExpired((m) => { setMessage(m); setSession(undefined); }), []);
  useEffect(() => { setMenu(false); document.getElementById('page-title')?.focus(); }, [route.path]);

  if (!session) return <Login message={message} onLogin={(s) => { setMessage(''); setSession(s); if (!location.hash || location.hash === '#/') routeTo('/overview'); }} />;
  const admin = isAdmin();
  const { Component, params } = matchPage(route.path, admin);
  return (
    <div class="shell">
      <a class="skip" href="#main" onClick={(e) => { e.preventDefault(); document.getElementById('page-title')?.focus(); }}>Skip to content</a>
      <header class="top">
        <button type="button" class="menu-toggle" aria-expanded={menu} aria-controls="nav" onClick={() => setMenu(!menu)}>Menu</button>
        <a class="brand" href="#/overview">Stratus</a>
        <ProjectSwitcher session={session} onSwitch={() => { setSession(currentSession()); setGen((g) => g + 1); }} />
        <span class="user">{session.user.name}{admin ? ' (admin)' : ''}</span>
        <button type="button" onClick={async () => { await logout(); setMessage('You are logged out.'); setSession(undefined); }}>Log out</button>
      </header>
      <nav id="nav" class={menu ? 'open' : ''} aria-label="Main">
        {NAV.filter((g) => !g.admin || admin).map((g) => (
          <div key={g.title} class="nav-group">
            <h2>{g.title}</h2>
            <ul>{g.items.map((i) => <li key={i.path}><a href={`#${i.path}`} aria-current={route.path.startsWith(i.path) ? 'page' : undefined}>{i.label}</a></li>)}</ul>
          </div>
        ))}
      </nav>
      <main id="main" key={`${session.project?.id}-${gen}`}>
        <Component params={params} query={route.query} />
      </main>
      <Notices />
      <ConfirmHost />
    </div>
  );
}

async function boot() {
  try {
    const r = await fetch('config.json');
    if (r.ok) setConfig(await r.json());
  } catch { /* defaults: the all-in-one's layout */ }
  restoreSession();
  render(<Shell />, document.getElementById('app')!);
  performance.mark('stratus-ready');
}
boot();
