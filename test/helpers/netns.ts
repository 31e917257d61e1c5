// A network namespace joined to the host's by a veth pair on a private /30 (10.231.x.y), for
// tests where two "hosts" must really talk across a network boundary on one machine: processes
// started with exec() live in the namespace (their sockets, and those of their children such as
// qemu, are bound there), the host side is reachable at hostIp from inside and nsIp from outside.
// Traffic stays between the two ends of the pair. remove() takes everything down (processes
// first) and also runs at process exit, so a failed test leaves no namespace behind.
import { execFileSync, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { run, type RunResult } from '../../src/guest/run.ts';

export class Netns {
  private children: ChildProcess[] = [];
  private removed = false;
  private readonly onExit = () => this.removeSync();

  private constructor(
    readonly name: string,
    /** The host side of the veth pair (its interface name is also `hostIf`). */
    readonly hostIf: string,
    readonly hostIp: string,
    readonly nsIp: string,
  ) {}

  /** Whether this machine lets us make namespaces (root and iproute2). */
  static async available(): Promise<boolean> {
    const probe = `stratus-probe-${process.pid}`;
    try {
      await run('ip', ['netns', 'add', probe]);
      await run('ip', ['netns', 'del', probe]);
      return true;
    } catch { return false; }
  }

  static async create(): Promise<Netns> {
    const used = (await run('ip', ['-4', '-o', 'addr', 'show'])).stdout + (await run('ip', ['-4', 'route', 'show'])).stdout;
    let third: number;
    do third = randomInt(0, 256); while (used.includes(`10.231.${third}.`));
    const tag = `${process.pid.toString(36)}${randomInt(0, 1296).toString(36)}`.slice(-8);
    const n = new Netns(`stratus-${tag}`, `st${tag}h`, `10.231.${third}.1`, `10.231.${third}.2`);
    process.once('exit', n.onExit);
    try {
      const peer = `st${tag}n`;
      await run('ip', ['netns', 'add', n.name]);
      await run('ip', ['link', 'add', n.hostIf, 'type', 'veth', 'peer', 'name', peer]);
      await run('ip', ['link', 'set', peer, 'netns', n.name]);
      await run('ip', ['addr', 'add', `${n.hostIp}/30`, 'dev', n.hostIf]);
      await run('ip', ['link', 'set', n.hostIf, 'up']);
      await n.run('ip', ['addr', 'add', `${n.nsIp}/30`, 'dev', peer]);
      await n.run('ip', ['link', 'set', peer, 'up']);
      await n.run('ip', ['link', 'set', 'lo', 'up']);
    } catch (e) {
      await n.remove();
      throw e;
    }
    return n;
  }

  /** Runs a command inside the namespace to completion. */
  run(cmd: string, args: string[]): Promise<RunResult> { return run('ip', ['netns', 'exec', this.name, cmd, ...args]); }

  /** Starts a process inside the namespace; remove() stops it (and its process group). */
  exec(cmd: string, args: string[], o: SpawnOptions = {}): ChildProcess {
    const p = spawn('ip', ['netns', 'exec', this.name, cmd, ...args], { ...o, detached: true });
    this.children.push(p);
    return p;
  }

  /** Bytes the host side of the veth has received and sent (proof that traffic crossed it). */
  async traffic(): Promise<{ rx: number; tx: number }> {
    const read = async (w: string) => Number((await run('cat', [`/sys/class/net/${this.hostIf}/statistics/${w}_bytes`])).stdout.trim());
    return { rx: await read('rx'), tx: await read('tx') };
  }

  async remove(): Promise<void> {
    await this.stopChildren();
    this.removeSync();
  }

  private async stopChildren(): Promise<void> {
    for (const p of this.children) {
      if (p.exitCode !== null || p.signalCode !== null || !p.pid) continue;
      const gone = new Promise((r) => p.once('exit', r));
      try { process.kill(-p.pid, 'SIGTERM'); } catch { /* gone */ }
      const t = setTimeout(() => { try { process.kill(-p.pid!, 'SIGKILL'); } catch { /* gone */ } }, 5000);
      await gone;
      clearTimeout(t);
    }
    this.children = [];
  }

  private removeSync(): void {
    if (this.removed) return;
    this.removed = true;
    process.off('exit', this.onExit);
    for (const p of this.children) { try { if (p.pid) process.kill(-p.pid, 'SIGKILL'); } catch { /* gone */ } }
    // Deleting the namespace deletes its end of the pair, and with it the host's end.
    try { execFileSync('ip', ['netns', 'del', this.name], { stdio: 'ignore' }); } catch { /* not made */ }
    try { execFileSync('ip', ['link', 'del', this.hostIf], { stdio: 'ignore' }); } catch { /* already gone */ }
  }
}
