// Running the host tools the guest builder and the QEMU driver rely on (apt-get, dpkg-deb,
// mkfs.ext4, qemu-img, cpio …): argv arrays only (no shell), stderr kept for the error message.
import { spawn, type SpawnOptions } from 'node:child_process';

export class ToolError extends Error {
  constructor(readonly tool: string, readonly code: number | null, readonly stderr: string) {
    super(`${tool} failed (exit ${code}): ${stderr.trim().split('\n').slice(-3).join(' | ') || 'no output'}`);
  }
}

export interface RunResult { stdout: string; stderr: string }

/** Runs a tool to completion; rejects with ToolError on a non-zero exit or a missing binary. */
export function run(cmd: string, args: string[], o: SpawnOptions & { input?: string; timeoutMs?: number } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { ...o, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout!.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
    p.stderr!.setEncoding('utf8').on('data', (d: string) => { if (stderr.length < 64 * 1024) stderr += d; });
    const timer = o.timeoutMs ? setTimeout(() => p.kill('SIGKILL'), o.timeoutMs) : undefined;
    p.on('error', (e) => { clearTimeout(timer); reject(new ToolError(cmd, null, e.message)); });
    p.on('close', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve({ stdout, stderr });
      else reject(new ToolError(cmd, code, stderr || stdout));
    });
    p.stdin!.on('error', () => undefined); // a tool that exits without reading its input
    p.stdin!.end(o.input ?? '');
  });
}
