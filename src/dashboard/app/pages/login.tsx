// Keystone password login (domain, user, password, optional project) or an application credential.
import { useState } from 'preact/hooks';
import { loginAppCredential, loginPassword, type Session } from '../api.ts';
import { ErrorBox, Field } from '../ui.tsx';

export function Login({ message, onLogin }: { message?: string; onLogin: (s: Session) => void }) {
  const [mode, setMode] = useState<'password' | 'appcred'>('password');
  const [error, setError] = useState<unknown>();
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    const f = new FormData(e.currentTarget as HTMLFormElement);
    const v = (k: string) => String(f.get(k) ?? '').trim();
    setBusy(true); setError(undefined);
    try {
      onLogin(mode === 'password'
        ? await loginPassword(v('domain') || 'Default', v('username'), String(f.get('password') ?? ''), v('project') || undefined)
        : await loginAppCredential(v('appcred_id'), String(f.get('appcred_secret') ?? '')));
    } catch (err) { setError(err); } finally { setBusy(false); }
  };
  return (
    <main class="login">
      <form onSubmit={submit} aria-labelledby="login-title">
        <h1 id="login-title">Log in to Stratus</h1>
        {message && <p class="info" role="status">{message}</p>}
        <div class="tabs" role="tablist" aria-label="Log-in method">
          <button type="button" role="tab" aria-selected={mode === 'password'} onClick={() => setMode('password')}>Password</button>
          <button type="button" role="tab" aria-selected={mode === 'appcred'} onClick={() => setMode('appcred')}>Application credential</button>
        </div>
        {mode === 'password' ? (
          <>
            <Field label="Domain"><input name="domain" defaultValue="Default" autoComplete="organization" /></Field>
            <Field label="User name"><input name="username" required autoComplete="username" autoFocus /></Field>
            <Field label="Password"><input name="password" type="password" required autoComplete="current-password" /></Field>
            <Field label="Project (optional)" hint="Empty: your default project, or the first one you belong to."><input name="project" /></Field>
          </>
        ) : (
          <>
            <Field label="Application credential ID"><input name="appcred_id" required /></Field>
            <Field label="Secret"><input name="appcred_secret" type="password" required autoComplete="off" /></Field>
          </>
        )}
        <ErrorBox error={error} />
        <button type="submit" class="primary" disabled={busy}>{busy ? 'Logging in…' : 'Log in'}</button>
      </form>
    </main>
  );
}
