// Debian packages as build inputs: fetched with apt-get download (apt checks the file against
// the signed archive index), its SHA256 checked again against that index, its structure checked
// by dpkg-deb, and extracted into a cache directory keyed by package and version. A cache entry
// only exists once complete (extracted in a temporary directory, then renamed).
import { createHash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { run } from './run.ts';

export interface DebianPackage { name: string; version: string; /** Extracted file tree. */ root: string }

interface AptRecord { version: string; sha256: string; depends: string }

async function aptRecord(name: string): Promise<AptRecord> {
  const { stdout } = await run('apt-cache', ['show', '--no-all-versions', name]);
  const field = (f: string) => new RegExp(`^${f}: (.*)$`, 'm').exec(stdout)?.[1]?.trim() ?? '';
  const version = field('Version');
  if (!version) throw new Error(`apt-cache knows no package ${name}`);
  return { version, sha256: field('SHA256'), depends: field('Depends') };
}

/** The first dependency of a metapackage whose name starts with prefix (linux-image-cloud-amd64 → linux-image-6.1.0-NN-cloud-amd64). */
export async function metapackageTarget(name: string, prefix: string): Promise<string> {
  const dep = (await aptRecord(name)).depends.split(',').map((d) => d.trim().split(/[\s(|]/)[0]).find((d) => d.startsWith(prefix));
  if (!dep) throw new Error(`${name} depends on no ${prefix}* package`);
  return dep;
}

async function sha256(file: string): Promise<string> {
  const h = createHash('sha256');
  await pipeline(createReadStream(file), h);
  return h.digest('hex');
}

/**
 * The extracted tree of a Debian package (its candidate version), from the cache or fetched.
 * `prepare` runs on the extracted tree before it enters the cache (e.g. depmod).
 */
export async function debianPackage(name: string, cacheDir: string, prepare?: (root: string, version: string) => Promise<void>): Promise<DebianPackage> {
  const rec = await aptRecord(name);
  const dir = join(cacheDir, 'debs', `${name}_${rec.version.replace(/[^A-Za-z0-9.+~-]/g, '_')}`);
  if (existsSync(dir)) return { name, version: rec.version, root: dir };
  await mkdir(join(cacheDir, 'debs'), { recursive: true });
  const tmp = await mkdtemp(join(cacheDir, 'debs', `.${name}-`));
  try {
    // Sandbox user root: the download directory is ours, not _apt's.
    await run('apt-get', ['download', '-q', '-o', 'APT::Sandbox::User=root', `${name}=${rec.version}`], { cwd: tmp, timeoutMs: 600_000 });
    const deb = (await readdir(tmp)).find((f) => f.endsWith('.deb'));
    if (!deb) throw new Error(`apt-get download ${name} wrote no .deb`);
    const file = join(tmp, deb);
    if (rec.sha256 && (await sha256(file)) !== rec.sha256) throw new Error(`${deb}: SHA256 does not match the archive index`);
    await run('dpkg-deb', ['--info', file]);
    const root = join(tmp, 'root');
    await run('dpkg-deb', ['-x', file, root]);
    await prepare?.(root, rec.version);
    await rm(file);
    await rename(root, dir).catch(async (e) => { if (!existsSync(dir)) throw e; }); // another build won the race
    return { name, version: rec.version, root: dir };
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}
