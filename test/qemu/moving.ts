// Shared by the tests that move real guests: a minimal guest whose user data (on its config
// drive) leaves a marker on its root disk at first boot, reports it on later boots, and prints
// its uptime and the marker every second — so a test can tell a guest that kept running (uptime
// goes on, no new boot) from one that rebooted, and (booting it again) see that its disk came
// along. The loop does no disk I/O of its own; ioGuestSpec's guest is the one that hammers its disk.
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { GuestSpec } from '../../src/compute/virt/driver.ts';

export const MOVING_GUEST = 'img-minimal';

const userData = `#!/bin/sh
if [ -f /root/marker ]; then echo "stratus-test: found $(cat /root/marker)"
else echo "m-$(cut -d' ' -f1 /proc/uptime)-$$" > /root/marker; sync; echo "stratus-test: wrote $(cat /root/marker)"; fi
(while true; do echo "stratus-test: tick $(cut -d' ' -f1 /proc/uptime) $(cat /root/marker)"; sleep 1; done) &
`;

export function guestSpec(over: Partial<GuestSpec> = {}): GuestSpec {
  const uuid = randomUUID();
  return {
    uuid, name: `instance-${uuid.slice(0, 8)}`, vcpus: 1, memoryMb: 256, rootGb: 2, imageId: MOVING_GUEST, imageProps: {},
    userData: Buffer.from(userData).toString('base64'), keyData: null, hostname: 'mover', configDrive: true,
    network: { mode: 'none', vifs: [] },
    flavor: { id: '1', name: 'test', vcpus: 1, memoryMb: 256, rootGb: 2, ephemeralGb: 0, swapMb: 0, extraSpecs: {} }, ...over,
  };
}

// Writes 2 MiB of random data to one of 8 files, records its SHA-256, syncs, drops the page cache
// and reads every file back from the disk: "io <n> <uptime> bad=<files whose data changed>". A
// disk that loses or mixes up writes (or a guest whose memory was corrupted) shows as bad>0 or a
// kernel complaint on the console.
const ioUserData = `#!/bin/sh
echo "stratus-test: io start"
(i=0; while true; do
  i=$((i+1)); f=/root/io.$((i % 8))
  dd if=/dev/urandom of=$f bs=64k count=32 2>/dev/null; sha256sum $f | cut -d' ' -f1 > $f.sum; sync
  echo 3 > /proc/sys/vm/drop_caches
  bad=0; for g in /root/io.?; do [ -f $g.sum ] && [ "$(sha256sum $g | cut -d' ' -f1)" != "$(cat $g.sum)" ] && bad=$((bad+1)); done
  echo "stratus-test: io $i $(cut -d' ' -f1 /proc/uptime) bad=$bad"
done) &
`;

/** A guest that writes to its disk and reads it back without pause (see ioUserData). */
export function ioGuestSpec(over: Partial<GuestSpec> = {}): GuestSpec {
  return guestSpec({ userData: Buffer.from(ioUserData).toString('base64'), ...over });
}

/** What a guest kernel prints when its memory or its disk went wrong. */
export const KERNEL_TROUBLE = /list_add corruption|list_del corruption|BUG:|Oops|Kernel panic|general protection|I\/O error|EXT4-fs error|blk_update_request|Buffer I\/O error/;

/** The whole console log of a guest directory ('' while there is none). */
export const consoleLog = (guestDir: string) => readFile(join(guestDir, 'console.log'), 'utf8').catch(() => '');

/** Polls fn until its text matches re; the text. */
export async function waitFor(fn: () => Promise<string>, re: RegExp, ms = 90_000): Promise<string> {
  const t0 = Date.now();
  for (;;) {
    const out = await fn();
    if (re.test(out)) return out;
    if (Date.now() - t0 > ms) throw new Error(`never matched ${re} within ${ms} ms:\n${out.slice(-2000)}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}
