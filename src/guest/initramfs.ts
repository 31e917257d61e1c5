// A busybox initramfs: busybox-static, the kernel modules asked for (with their dependencies, as
// modules.dep lists them), host binaries with the shared libraries ldd names, and the files
// given (the init). Written as a gzip'd newc cpio archive, streamed.
import { createWriteStream } from 'node:fs';
import { chmod, copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import type { Kernel } from './kernel.ts';
import { run, ToolError } from './run.ts';

export interface InitramfsFile { path: string; content: string; mode?: number }

export interface InitramfsInput {
  kernel: Kernel;
  /** Module names (virtio_blk, isofs …); unknown names are an error. */
  modules: string[];
  /** Host executables to include, with their libraries. */
  binaries?: string[];
  files: InitramfsFile[];
}

/** Each module's file and the files it depends on, from modules.dep ("kernel/x/y.ko: dep.ko …"). */
export function resolveModules(modulesDep: string, names: string[]): string[] {
  const byName = new Map<string, string[]>();
  for (const line of modulesDep.split('\n')) {
    const [file, deps = ''] = line.split(':');
    if (!file) continue;
    const name = file.slice(file.lastIndexOf('/') + 1).replace(/\.ko(\.xz|\.zst|\.gz)?$/, '').replace(/-/g, '_');
    byName.set(name, [file, ...deps.trim().split(/\s+/).filter(Boolean)]);
  }
  const out = new Set<string>();
  for (const n of names) {
    const files = byName.get(n.replace(/-/g, '_'));
    if (!files) throw new Error(`kernel module ${n} not in modules.dep`);
    for (const f of files) out.add(f);
  }
  return [...out];
}

async function libsOf(binary: string): Promise<string[]> {
  const { stdout } = await run('ldd', [binary]).catch((e) => {
    if (e instanceof ToolError && /not a dynamic executable/.test(e.stderr)) return { stdout: '' };
    throw e;
  });
  return [...stdout.matchAll(/(\/\S+) \(0x/g)].map((m) => m[1]!);
}

export async function makeInitramfs(i: InitramfsInput, outPath: string): Promise<void> {
  const stage = await mkdtemp(join(tmpdir(), 'stratus-initramfs-'));
  try {
    for (const d of ['bin', 'sbin', 'usr/bin', 'usr/sbin', 'dev', 'proc', 'sys', 'run', 'tmp', 'etc', 'mnt', 'root']) await mkdir(join(stage, d), { recursive: true });
    await copyFile('/usr/bin/busybox', join(stage, 'bin', 'busybox'));
    await chmod(join(stage, 'bin', 'busybox'), 0o755);
    // Modules, then busybox's own depmod over the subset so modprobe resolves dependencies.
    const rel = join('lib', 'modules', i.kernel.release);
    await mkdir(join(stage, rel), { recursive: true });
    for (const f of resolveModules(await readFile(join(i.kernel.modulesDir, 'modules.dep'), 'utf8'), i.modules)) {
      await mkdir(dirname(join(stage, rel, f)), { recursive: true });
      await copyFile(join(i.kernel.modulesDir, f), join(stage, rel, f));
    }
    await run('busybox', ['depmod', '-b', stage, i.kernel.release]);
    for (const b of i.binaries ?? []) {
      for (const f of [b, ...(await libsOf(b))]) {
        await mkdir(dirname(join(stage, f)), { recursive: true });
        await copyFile(f, join(stage, f));
      }
    }
    for (const f of i.files) {
      await mkdir(dirname(join(stage, f.path)), { recursive: true });
      await writeFile(join(stage, f.path), f.content, { mode: f.mode ?? 0o644 });
    }
    await cpioGzip(stage, outPath);
  } finally {
    await rm(stage, { recursive: true, force: true });
  }
}

/** find | cpio -o -H newc (owner root) | gzip, without a shell. */
async function cpioGzip(dir: string, outPath: string): Promise<void> {
  const { stdout: list } = await run('find', ['.', '-print0'], { cwd: dir });
  const cpio = spawn('cpio', ['--null', '-o', '-H', 'newc', '-R', '0:0', '--quiet'], { cwd: dir, stdio: ['pipe', 'pipe', 'pipe'] });
  let err = '';
  cpio.stderr.on('data', (d) => { err += String(d); });
  const exited = new Promise<void>((res, rej) => cpio.on('close', (c) => (c === 0 ? res() : rej(new ToolError('cpio', c, err)))));
  cpio.stdin.end(list);
  await Promise.all([pipeline(cpio.stdout, createGzip({ level: 6 }), createWriteStream(outPath)), exited]);
}
