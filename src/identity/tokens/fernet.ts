// Fernet tokens (the spec Keystone uses): version byte 0x80, 64-bit timestamp, 128-bit IV,
// AES-128-CBC ciphertext, HMAC-SHA256 over all of it; base64url. Keys live in a key repository
// directory as keystone-manage lays it out: file `0` is the staged key, the highest number is
// the primary (used to encrypt), every key decrypts. Rotation promotes the staged key.
import { createCipheriv, createDecipheriv, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { mkdir, readdir, readFile, writeFile, rename, unlink, chmod } from 'node:fs/promises';
import { join } from 'node:path';

interface Key { signing: Buffer; encryption: Buffer }

function parseKey(b64: string): Key {
  const raw = Buffer.from(b64.trim().replace(/-/g, '+').replace(/_/g, '/'), 'base64');
  if (raw.length !== 32) throw new Error('Fernet key must be 32 bytes of url-safe base64');
  return { signing: raw.subarray(0, 16), encryption: raw.subarray(16) };
}

export function newFernetKey(): string {
  return randomBytes(32).toString('base64').replace(/\+/g, '-').replace(/\//g, '_');
}

export class Fernet {
  /** keys[0] is the primary (encrypts); all decrypt. */
  constructor(private readonly keys: Key[]) {
    if (!keys.length) throw new Error('no Fernet keys');
  }

  static fromKeys(b64Keys: string[]): Fernet {
    return new Fernet(b64Keys.map(parseKey));
  }

  encrypt(plain: Buffer, now = Date.now()): string {
    const k = this.keys[0];
    const iv = randomBytes(16);
    const c = createCipheriv('aes-128-cbc', k.encryption, iv);
    const ct = Buffer.concat([c.update(plain), c.final()]);
    const head = Buffer.alloc(9);
    head[0] = 0x80;
    head.writeBigUInt64BE(BigInt(Math.floor(now / 1000)), 1);
    const body = Buffer.concat([head, iv, ct]);
    const mac = createHmac('sha256', k.signing).update(body).digest();
    return Buffer.concat([body, mac]).toString('base64url');
  }

  /** Returns the plaintext, or undefined when no key authenticates the token. */
  decrypt(token: string): Buffer | undefined {
    let raw: Buffer;
    try {
      raw = Buffer.from(token, 'base64url');
    } catch {
      return undefined;
    }
    if (raw.length < 9 + 16 + 16 + 32 || raw[0] !== 0x80 || (raw.length - 57) % 16 !== 0) return undefined;
    const body = raw.subarray(0, raw.length - 32);
    const mac = raw.subarray(raw.length - 32);
    for (const k of this.keys) {
      const expect = createHmac('sha256', k.signing).update(body).digest();
      if (!timingSafeEqual(expect, mac)) continue;
      try {
        const d = createDecipheriv('aes-128-cbc', k.encryption, body.subarray(9, 25));
        return Buffer.concat([d.update(body.subarray(25)), d.final()]);
      } catch {
        return undefined;
      }
    }
    return undefined;
  }
}

/** keystone-manage fernet_setup: creates the repository with a staged and a primary key. */
export async function fernetSetup(dir: string): Promise<{ created: boolean }> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const existing = await keyIndexes(dir);
  if (existing.length) return { created: false };
  await writeKey(dir, 0, newFernetKey());
  await writeKey(dir, 1, newFernetKey());
  return { created: true };
}

/** keystone-manage fernet_rotate: staged → primary, new staged, prune beyond maxActive. */
export async function fernetRotate(dir: string, maxActive = 3): Promise<{ primary: number }> {
  const idx = await keyIndexes(dir);
  if (!idx.length) throw new Error(`key repository ${dir} is empty; run fernet_setup first`);
  const next = Math.max(...idx) + 1;
  await rename(join(dir, '0'), join(dir, String(next)));
  await writeKey(dir, 0, newFernetKey());
  const all = (await keyIndexes(dir)).filter((i) => i !== 0).sort((a, b) => a - b);
  // maxActive counts the staged key too, as keystone's max_active_keys does.
  while (all.length > maxActive - 1) await unlink(join(dir, String(all.shift())));
  return { primary: next };
}

export async function loadFernet(dir: string): Promise<Fernet> {
  const idx = (await keyIndexes(dir)).sort((a, b) => b - a); // primary (highest) first, staged (0) last
  if (!idx.length) throw new Error(`no Fernet keys in ${dir}; run "stratus manage identity fernet_setup"`);
  const keys = await Promise.all(idx.map(async (i) => (await readFile(join(dir, String(i)), 'utf8')).trim()));
  return Fernet.fromKeys(keys);
}

async function keyIndexes(dir: string): Promise<number[]> {
  try {
    return (await readdir(dir)).filter((f) => /^\d+$/.test(f)).map(Number);
  } catch {
    return [];
  }
}

async function writeKey(dir: string, i: number, key: string) {
  const tmp = join(dir, `.${i}.tmp`);
  await writeFile(tmp, key, { mode: 0o600 });
  await chmod(tmp, 0o600);
  await rename(tmp, join(dir, String(i)));
}
