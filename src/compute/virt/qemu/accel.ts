// The accelerator, chosen once at agent start. A /dev/kvm that exists may still not run a stock
// guest kernel (a software shim hangs in the boot), so the choice is made by booting a tiny
// guest (the Debian cloud kernel + an initramfs that prints a line) that must print its line:
// KVM first with a short timeout, then TCG. `[libvirt] virt_type = kvm|qemu` skips the probe.
// The verdict is kept for the host's boot (boot_id) and QEMU version, so agent restarts are quick.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Config } from '../../../common/config.ts';
import type { Logger } from '../../../common/logging.ts';
import { debianCloudKernel } from '../../../guest/kernel.ts';
import { makeInitramfs } from '../../../guest/initramfs.ts';
import { probeGuestFiles } from '../../../guest/minimal-init.ts';
import { run } from '../../../guest/run.ts';

export interface Accelerator {
  /** QEMU's -accel value. */
  accel: 'kvm' | 'tcg';
  /** Nova's [libvirt] virt_type naming: kvm, or qemu for TCG. */
  virtType: 'kvm' | 'qemu';
  how: 'configured' | 'probed' | 'cached probe';
  detail: string;
}

export interface QemuVersion { text: string; major: number; minor: number; micro: number; /** libvirt's encoding: major*1e6 + minor*1e3 + micro. */ number: number }

export async function qemuVersion(binary: string): Promise<QemuVersion> {
  const { stdout } = await run(binary, ['--version']);
  const m = /version (\d+)\.(\d+)\.(\d+)/.exec(stdout);
  if (!m) throw new Error(`cannot read the version of ${binary}: ${stdout.split('\n')[0]}`);
  const [major, minor, micro] = [Number(m[1]), Number(m[2]), Number(m[3])];
  return { text: stdout.split('\n')[0]!.trim(), major, minor, micro, number: major * 1_000_000 + minor * 1000 + micro };
}

const MARKER = 'stratus-probe: guest ran';

/** Boots the probe guest; resolves with the time it took, or rejects with what went wrong. */
export function bootProbe(binary: string, accel: 'kvm' | 'tcg', kernel: string, initrd: string, timeoutMs: number): Promise<number> {
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    const p = spawn(binary, ['-accel', accel, '-m', '128', '-nodefaults', '-no-user-config', '-display', 'none', '-no-reboot',
      '-serial', 'stdio', '-kernel', kernel, '-initrd', initrd, '-append', 'console=ttyS0 panic=-1 quiet'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    let settled = false;
    const finish = (e?: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      p.kill('SIGKILL');
      if (e) reject(e); else resolve(Date.now() - t0);
    };
    const timer = setTimeout(() => finish(new Error(`no output from the probe guest within ${timeoutMs} ms`)), timeoutMs);
    p.stdout.setEncoding('utf8').on('data', (d: string) => { out += d; if (out.includes(MARKER)) finish(); });
    p.stderr.setEncoding('utf8').on('data', (d: string) => { err += d; });
    p.on('error', (e) => finish(e));
    p.on('close', (code) => finish(new Error(`qemu exited (${code}) before the probe guest printed: ${err.trim().split('\n').pop() ?? ''}`)));
  });
}

export async function chooseAccelerator(o: { config: Config; logger: Logger; binary: string; cacheDir: string; stateFile: string }): Promise<Accelerator> {
  const configured = o.config.get<string | undefined>('libvirt', 'virt_type');
  if (configured) {
    const accel = configured === 'kvm' ? 'kvm' : 'tcg';
    return { accel, virtType: configured as 'kvm' | 'qemu', how: 'configured', detail: `[libvirt] virt_type = ${configured}` };
  }
  const version = (await qemuVersion(o.binary)).text;
  const bootId = (await readFile('/proc/sys/kernel/random/boot_id', 'utf8').catch(() => '')).trim();
  const key = { bootId, version, kvm: existsSync('/dev/kvm') };
  try {
    const saved = JSON.parse(await readFile(o.stateFile, 'utf8')) as { key: typeof key; result: Accelerator };
    if (JSON.stringify(saved.key) === JSON.stringify(key)) return { ...saved.result, how: 'cached probe' };
  } catch { /* no verdict yet */ }

  const kernel = await debianCloudKernel(o.cacheDir);
  const initrd = join(o.cacheDir, `probe-initrd-${kernel.release}.img`);
  if (!existsSync(initrd)) {
    await mkdir(o.cacheDir, { recursive: true });
    await makeInitramfs({ kernel, modules: [], files: probeGuestFiles(MARKER) }, `${initrd}.tmp`);
    await rename(`${initrd}.tmp`, initrd);
  }
  const timeout = o.config.get<number>('qemu', 'probe_timeout') * 1000;
  let result: Accelerator | undefined;
  let kvmWhy = '/dev/kvm does not exist';
  if (key.kvm) {
    try {
      const ms = await bootProbe(o.binary, 'kvm', kernel.vmlinuz, initrd, Math.max(5000, timeout / 5));
      result = { accel: 'kvm', virtType: 'kvm', how: 'probed', detail: `a KVM probe guest ran in ${ms} ms` };
    } catch (e) {
      kvmWhy = `KVM probe failed: ${(e as Error).message}`;
      o.logger.warn(kvmWhy);
    }
  }
  if (!result) {
    const ms = await bootProbe(o.binary, 'tcg', kernel.vmlinuz, initrd, timeout);
    result = { accel: 'tcg', virtType: 'qemu', how: 'probed', detail: `${kvmWhy}; a TCG probe guest ran in ${ms} ms` };
  }
  await writeFile(o.stateFile, JSON.stringify({ key, result }));
  return result;
}
