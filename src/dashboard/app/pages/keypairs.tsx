// Key pairs: generate (the private key is offered for download once) or import a public key.
import { useState } from 'preact/hooks';
import { call, get } from '../api.ts';
import { act, confirmAction, download, ErrorBox, Field, Loading, Page, Table, useAsync } from '../ui.tsx';

/** Create or import a key pair; used on its page and inline in the launch wizard. */
export function KeyPairInline({ onCreated }: { onCreated: (name: string) => void }) {
  const [name, setName] = useState('');
  const [pub, setPub] = useState('');
  const [type, setType] = useState('ssh');
  const [error, setError] = useState<unknown>();
  const [priv, setPriv] = useState<{ name: string; key: string }>();
  const submit = async (e: Event) => {
    e.preventDefault();
    setError(undefined);
    try {
      const keypair: Record<string, string> = { name, type };
      if (pub.trim()) keypair.public_key = pub.trim();
      const r = await call<any>('compute', '/os-keypairs', { method: 'POST', body: { keypair } });
      if (r.body.keypair.private_key) setPriv({ name, key: r.body.keypair.private_key });
      onCreated(name);
      setName(''); setPub('');
    } catch (err) { setError(err); }
  };
  return (
    <form class="keypair-form" onSubmit={submit} aria-label="New key pair">
      <div class="cols">
        <Field label="Key pair name"><input name="keypair_name" required value={name} onInput={(e) => setName(e.currentTarget.value)} /></Field>
        <Field label="Type"><select value={type} onChange={(e) => setType(e.currentTarget.value)}><option>ssh</option><option>x509</option></select></Field>
      </div>
      <Field label="Public key (to import; empty to generate one)"><textarea name="public_key" rows={3} value={pub} onInput={(e) => setPub(e.currentTarget.value)} /></Field>
      <ErrorBox error={error} />
      <button type="submit">{pub.trim() ? 'Import key pair' : 'Create key pair'}</button>
      {priv && (
        <p class="info" role="status">Private key of <strong>{priv.name}</strong> — it is shown only now.{' '}
          <button type="button" onClick={() => download(`${priv.name}.pem`, priv.key, 'application/x-pem-file')}>Download {priv.name}.pem</button></p>
      )}
    </form>
  );
}

export function KeyPairs() {
  const r = useAsync(() => get<any>('compute', '/os-keypairs').then((b) => b.keypairs.map((k: any) => k.keypair)), []);
  return (
    <Page title="Key pairs">
      <KeyPairInline onCreated={() => r.reload()} />
      <ErrorBox error={r.error} />
      {r.data ? <Table caption="Key pairs" rows={r.data as any[]} rowKey={(k) => k.name} columns={[
        { key: 'name', label: 'Name' }, { key: 'type', label: 'Type' },
        { key: 'fingerprint', label: 'Fingerprint', render: (k) => <code>{k.fingerprint}</code> },
        { key: 'x', label: '', sortable: false, render: (k) => <button type="button" class="danger" aria-label={`Delete key pair ${k.name}`} onClick={async () => {
          if (await confirmAction(`Delete key pair ${k.name}?`, 'Delete')) act(`Key pair ${k.name} deleted`, () => call('compute', `/os-keypairs/${encodeURIComponent(k.name)}`, { method: 'DELETE' }), r.reload);
        }}>Delete</button> },
      ]} empty="No key pairs." /> : !r.error && <Loading what="key pairs" />}
    </Page>
  );
}
