// Password hashing with scrypt (node:crypto, runs on libuv's thread pool so the event loop keeps
// serving while a hash is computed). Stored as `scrypt$N$r$p$salt$hash` so the cost can be
// raised later without invalidating existing hashes.
import { scrypt, randomBytes, timingSafeEqual } from 'node:crypto';

/** N=2^15, r=8, p=1: ~32 MiB and roughly 60–100 ms per hash on this class of machine. */
export const SCRYPT = { N: 32768, r: 8, p: 1, keylen: 32 };

function scryptAsync(pw: string, salt: Buffer, N: number, r: number, p: number, keylen: number): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    scrypt(pw, salt, keylen, { N, r, p, maxmem: 256 * N * r }, (err, key) => (err ? reject(err) : resolve(key))));
}

export async function hashPassword(password: string, cost = SCRYPT): Promise<string> {
  const salt = randomBytes(16);
  const key = await scryptAsync(password, salt, cost.N, cost.r, cost.p, cost.keylen);
  return `scrypt$${cost.N}$${cost.r}$${cost.p}$${salt.toString('base64')}$${key.toString('base64')}`;
}

export async function verifyPassword(password: string, stored: string | null | undefined): Promise<boolean> {
  if (!stored) {
    // Spend the same time as a real check so a missing user is not distinguishable by timing.
    await scryptAsync(password, Buffer.alloc(16), SCRYPT.N, SCRYPT.r, SCRYPT.p, SCRYPT.keylen);
    return false;
  }
  const [alg, N, r, p, salt, hash] = stored.split('$');
  if (alg !== 'scrypt') return false;
  const expected = Buffer.from(hash, 'base64');
  const key = await scryptAsync(password, Buffer.from(salt, 'base64'), Number(N), Number(r), Number(p), expected.length);
  return timingSafeEqual(key, expected);
}
