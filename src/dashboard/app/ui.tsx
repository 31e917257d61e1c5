// Shared building blocks: data loading, error display, bars, tables, dialogs, notices.
// Everything renders through Preact's text nodes and attributes, so names and properties that
// contain HTML or script show as text.
import type { ComponentChildren } from 'preact';
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { signalNotice } from './notices.ts';

export function useAsync<T>(fn: () => Promise<T>, deps: unknown[]): { data?: T; error?: Error; loading: boolean; reload: () => void; set: (t: T) => void } {
  const [state, setState] = useState<{ data?: T; error?: Error; loading: boolean }>({ loading: true });
  const [n, setN] = useState(0);
  useEffect(() => {
    let live = true;
    setState((s) => ({ ...s, loading: true }));
    fn().then((data) => live && setState({ data, loading: false }), (error) => live && setState({ error, loading: false }));
    return () => { live = false; };
  }, [...deps, n]);
  return { ...state, reload: useCallback(() => setN((x) => x + 1), []), set: (data: T) => setState({ data, loading: false }) };
}

export function ErrorBox({ error }: { error?: unknown }) {
  if (!error) return null;
  return <div class="error" role="alert">{(error as Error).message ?? String(error)}</div>;
}

export function Loading({ what }: { what: string }) {
  return <p class="muted" aria-busy="true">Loading {what}…</p>;
}

/** Runs an action, reporting success or the service's message as a notice. */
export async function act(what: string, f: () => Promise<unknown>, after?: () => void): Promise<boolean> {
  try {
    await f();
    signalNotice({ kind: 'ok', text: `✓ ${what}` });
    after?.();
    return true;
  } catch (e) {
    signalNotice({ kind: 'error', text: `${what} failed: ${(e as Error).message}` });
    return false;
  }
}

export function Bar({ label, used, total, unit = '' }: { label: string; used: number; total: number; unit?: string }) {
  const unlimited = total < 0;
  const pct = unlimited || total === 0 ? 0 : Math.min(100, (used / total) * 100);
  const text = `${fmt(used)}${unit} of ${unlimited ? 'unlimited' : `${fmt(total)}${unit}`}`;
  return (
    <div class="bar">
      <div class="bar-label"><span>{label}</span><span>{text}</span></div>
      <div class="bar-track" role="meter" aria-label={label} aria-valuenow={used} aria-valuemin={0} aria-valuemax={unlimited ? undefined : total} aria-valuetext={text}>
        <div class={`bar-fill${pct >= 90 ? ' high' : pct >= 70 ? ' mid' : ''}`} style={{ width: `${pct}%` }} />
      </div>
    </div>
  );
}

const fmt = (n: number) => (Number.isInteger(n) ? n.toLocaleString('en') : n.toFixed(1));
export const bytes = (n?: number | null) => {
  if (n == null) return '—';
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return `${i ? n.toFixed(1) : n} ${u[i]}`;
};
export function age(iso?: string): string {
  if (!iso) return '—';
  const s = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
  if (s < 60) return `${Math.floor(s)} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  if (s < 86400) return `${Math.floor(s / 3600)} h`;
  return `${Math.floor(s / 86400)} d`;
}

export interface Column<T> { key: string; label: string; render?: (row: T) => ComponentChildren; value?: (row: T) => string | number; sortable?: boolean }

/** A sortable table with client-side paging; rows beyond the page are never rendered. */
export function Table<T>({ rows, columns, rowKey, pageSize = 50, empty = 'Nothing here yet.', caption, initialSort }: {
  rows: T[]; columns: Column<T>[]; rowKey: (r: T) => string; pageSize?: number; empty?: string; caption: string; initialSort?: { key: string; dir: 1 | -1 };
}) {
  const [sort, setSort] = useState<{ key: string; dir: 1 | -1 } | undefined>(initialSort);
  const [page, setPage] = useState(0);
  let sorted = rows;
  if (sort) {
    const col = columns.find((c) => c.key === sort.key);
    const v = col?.value ?? ((r: T) => String((r as any)[sort.key] ?? ''));
    sorted = [...rows].sort((a, b) => {
      const x = v(a), y = v(b);
      return (x < y ? -1 : x > y ? 1 : 0) * sort.dir;
    });
  }
  const pages = Math.max(1, Math.ceil(sorted.length / pageSize));
  const p = Math.min(page, pages - 1);
  const shown = sorted.slice(p * pageSize, (p + 1) * pageSize);
  const toggle = (key: string) => setSort((s) => (s?.key === key ? { key, dir: s.dir === 1 ? -1 : 1 } : { key, dir: 1 }));
  return (
    <div class="table-wrap">
      <table>
        <caption class="sr-only">{caption}</caption>
        <thead>
          <tr>
            {columns.map((c) => (
              <th scope="col" key={c.key} aria-sort={sort?.key === c.key ? (sort.dir === 1 ? 'ascending' : 'descending') : undefined}>
                {c.sortable === false ? c.label : <button type="button" class="th-sort" onClick={() => toggle(c.key)}>{c.label}{sort?.key === c.key ? (sort.dir === 1 ? ' ▲' : ' ▼') : ''}</button>}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {shown.length === 0 && <tr><td colSpan={columns.length} class="muted">{empty}</td></tr>}
          {shown.map((r) => (
            <tr key={rowKey(r)}>
              {columns.map((c) => <td key={c.key} data-label={c.label}>{c.render ? c.render(r) : String((r as any)[c.key] ?? '')}</td>)}
            </tr>
          ))}
        </tbody>
      </table>
      {pages > 1 && (
        <nav class="pager" aria-label={`${caption} pages`}>
          <button type="button" disabled={p === 0} onClick={() => setPage(p - 1)}>Previous</button>
          <span>Page {p + 1} of {pages} ({sorted.length} rows)</span>
          <button type="button" disabled={p >= pages - 1} onClick={() => setPage(p + 1)}>Next</button>
        </nav>
      )}
    </div>
  );
}

/** A modal <dialog>: the browser traps focus and Escape closes it. */
export function Modal({ title, onClose, children, wide }: { title: string; onClose: () => void; children: ComponentChildren; wide?: boolean }) {
  const ref = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    const d = ref.current!;
    if (!d.open) d.showModal();
    const close = () => onClose();
    d.addEventListener('close', close);
    return () => d.removeEventListener('close', close);
  }, []);
  return (
    <dialog ref={ref} class={wide ? 'wide' : ''} aria-label={title}>
      <header class="dialog-head"><h2>{title}</h2><button type="button" class="icon" aria-label="Close" onClick={() => ref.current?.close()}>✕</button></header>
      {children}
    </dialog>
  );
}

let confirmHost: ((c: { text: string; action: string; resolve: (ok: boolean) => void }) => void) | undefined;
/** Asks before a destructive action; resolves true when the user confirms. */
export function confirmAction(text: string, action = 'Confirm'): Promise<boolean> {
  return new Promise((resolve) => confirmHost ? confirmHost({ text, action, resolve }) : resolve(false));
}
export function ConfirmHost() {
  const [c, setC] = useState<{ text: string; action: string; resolve: (ok: boolean) => void }>();
  useEffect(() => { confirmHost = setC; return () => { confirmHost = undefined; }; }, []);
  if (!c) return null;
  const done = (ok: boolean) => { c.resolve(ok); setC(undefined); };
  return (
    <Modal title="Please confirm" onClose={() => done(false)}>
      <p>{c.text}</p>
      <div class="buttons">
        <button type="button" class="danger" onClick={() => done(true)}>{c.action}</button>
        <button type="button" onClick={() => done(false)} autoFocus>Cancel</button>
      </div>
    </Modal>
  );
}

export function Field({ label, children, hint }: { label: string; children: ComponentChildren; hint?: ComponentChildren }) {
  return <label class="field"><span class="field-label">{label}</span>{children}{hint && <span class="hint">{hint}</span>}</label>;
}

/** Key/value rows (metadata, image properties); `suggest` offers known keys in a datalist. */
export function KeyValueEditor({ value, onChange, suggest, label }: { value: [string, string][]; onChange: (v: [string, string][]) => void; suggest?: { name: string; description?: string }[]; label: string }) {
  const listId = useRef(`kv-${Math.random().toString(36).slice(2)}`).current;
  const set = (i: number, k: 0 | 1, v: string) => onChange(value.map((row, j) => (j === i ? (k === 0 ? [v, row[1]] : [row[0], v]) : row)));
  return (
    <fieldset class="kv">
      <legend>{label}</legend>
      {suggest && <datalist id={listId}>{suggest.map((s) => <option key={s.name} value={s.name}>{s.description}</option>)}</datalist>}
      {value.map(([k, v], i) => (
        <div class="kv-row" key={i}>
          <input aria-label={`${label} key ${i + 1}`} value={k} list={suggest ? listId : undefined} onInput={(e) => set(i, 0, e.currentTarget.value)} placeholder="key" />
          <input aria-label={`${label} value ${i + 1}`} value={v} onInput={(e) => set(i, 1, e.currentTarget.value)} placeholder="value" />
          <button type="button" class="icon" aria-label={`Remove ${k || 'row'}`} onClick={() => onChange(value.filter((_, j) => j !== i))}>✕</button>
        </div>
      ))}
      <button type="button" onClick={() => onChange([...value, ['', '']])}>Add</button>
    </fieldset>
  );
}

export function StatusBadge({ status }: { status?: string }) {
  const s = (status ?? '').toUpperCase();
  const kind = s === 'ACTIVE' ? 'ok' : s === 'ERROR' ? 'bad' : ['SHUTOFF', 'PAUSED', 'SUSPENDED', 'SHELVED_OFFLOADED', 'DEACTIVATED'].includes(s) ? 'idle' : 'busy';
  return <span class={`badge ${kind}`}>{status ?? '—'}</span>;
}

export function download(name: string, text: string, type = 'text/plain') {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = document.createElement('a');
  a.href = url; a.download = name;
  document.body.appendChild(a); a.click(); a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

export function Page({ title, actions, children }: { title: string; actions?: ComponentChildren; children: ComponentChildren }) {
  useEffect(() => { document.title = `${title} · Stratus`; }, [title]);
  return (
    <section class="page" aria-labelledby="page-title">
      <header class="page-head"><h1 id="page-title" tabIndex={-1}>{title}</h1><div class="page-actions">{actions}</div></header>
      {children}
    </section>
  );
}

