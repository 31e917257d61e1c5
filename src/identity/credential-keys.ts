// Credential blobs (/v3/credentials, EC2 secrets) are encrypted at rest as Keystone's `fernet`
// credential provider does: a key repository laid out like the token one (`0` staged, the
// highest number primary, at most 3 keys), each blob a Fernet token of the plaintext, and beside
// it `key_hash`, the sha1 of the primary key that sealed it. A row without a key_hash is a plain
// one from before encryption; `credential_migrate` seals those and the ones sealed with an older
// key, and `credential_rotate` refuses to run until every row is sealed with the primary key, so
// no rotation can drop a key that a row still needs.
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Kysely } from 'kysely';
import { ConfigError } from '../common/config.ts';
import { Fernet, fernetRotate, fernetSetup } from './tokens/fernet.ts';
import type { IdentityDB } from './store/schema.ts';

/** Keystone's credential repository holds 3 keys: staged, primary, one secondary. */
export const CREDENTIAL_MAX_ACTIVE_KEYS = 3;

export class CredentialDecryptError extends Error {}

export class CredentialCipher {
  private constructor(private readonly fernet: Fernet, readonly primaryKeyHash: string) {}

  /** Loads the repository; throws naming the setup command when it is empty. */
  static async load(dir: string): Promise<CredentialCipher> {
    let names: string[] = [];
    try { names = (await readdir(dir)).filter((f) => /^\d+$/.test(f)); } catch { /* reported below */ }
    const idx = names.map(Number).sort((a, b) => b - a); // primary first, staged (0) last
    // Start-up stops here, naming the fix, rather than storing secrets unencrypted.
    if (!idx.length) throw new ConfigError(`no credential keys in ${dir} ([credential] key_repository); run "stratus manage identity credential_setup"`);
    const keys = await Promise.all(idx.map(async (i) => (await readFile(join(dir, String(i)), 'utf8')).trim()));
    return new CredentialCipher(Fernet.fromKeys(keys), createHash('sha1').update(keys[0], 'utf8').digest('hex'));
  }

  seal(plain: string): { blob: string; key_hash: string } {
    return { blob: this.fernet.encrypt(Buffer.from(plain, 'utf8')), key_hash: this.primaryKeyHash };
  }

  /** The plaintext of a stored row: sealed rows are decrypted, legacy plain rows read as they are. */
  open(row: { blob: string; key_hash: string | null }): string {
    if (row.key_hash === null) return row.blob;
    const plain = this.fernet.decrypt(row.blob);
    if (!plain) throw new CredentialDecryptError('Credential could not be decrypted. Please contact the administrator');
    return plain.toString('utf8');
  }
}

/** keystone-manage credential_setup: a repository with a staged and a primary key (idempotent). */
export async function credentialSetup(dir: string): Promise<{ created: boolean }> {
  return fernetSetup(dir);
}

/** keystone-manage credential_migrate: every row sealed with the primary key. Returns how many changed. */
export async function credentialMigrate(dir: string, db: Kysely<IdentityDB>): Promise<{ migrated: number }> {
  const cipher = await CredentialCipher.load(dir);
  const rows = await db.selectFrom('credentials').select(['id', 'blob', 'key_hash']).execute();
  let migrated = 0;
  for (const r of rows) {
    if (r.key_hash === cipher.primaryKeyHash) continue;
    const sealed = cipher.seal(cipher.open(r));
    // Only if nobody changed the row meanwhile; a row changed meanwhile is sealed already.
    let q = db.updateTable('credentials').set(sealed).where('id', '=', r.id).where('blob', '=', r.blob);
    q = r.key_hash === null ? q.where('key_hash', 'is', null) : q.where('key_hash', '=', r.key_hash);
    const res = await q.executeTakeFirst();
    migrated += Number(res.numUpdatedRows);
  }
  return { migrated };
}

export class CredentialRotateRefused extends Error {}

/** keystone-manage credential_rotate: only when every row is sealed with the primary key. */
export async function credentialRotate(dir: string, db: Kysely<IdentityDB>): Promise<{ primary: number }> {
  const cipher = await CredentialCipher.load(dir);
  const stale = await db.selectFrom('credentials').select('id')
    .where((eb) => eb.or([eb('key_hash', 'is', null), eb('key_hash', '!=', cipher.primaryKeyHash)])).limit(1).execute();
  if (stale.length) {
    throw new CredentialRotateRefused('Unable to rotate credential keys because not all credentials are encrypted with the primary key. Please make sure all credentials have been encrypted with the primary key using `stratus manage identity credential_migrate`.');
  }
  return fernetRotate(dir, CREDENTIAL_MAX_ACTIVE_KEYS);
}
