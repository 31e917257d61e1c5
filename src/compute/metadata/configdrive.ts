// The config drive (Nova's ConfigDriveBuilder): an ISO 9660 volume labelled `config-2` holding
// the instance's metadata as files, for guests that cannot or should not reach the metadata
// service (`--nic none`). cloud-init finds it by its label.
//
// For the driver: a guest gets one when configDriveRequired() says so (the instance asked for
// it, the image says img_config_drive=mandatory, or [DEFAULT] force_config_drive on a guest not
// launched before); buildConfigDrive() writes it (in-process, iso9660.ts), atomically, where the driver attaches it
// (as a cdrom, hw_cdrom_bus); the driver deletes it with the instance.
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Config } from '../../common/config.ts';
import type { GuestSpec } from '../virt/driver.ts';
import { InstanceMetadata, loadVendorData } from './content.ts';
import { IsoError, isoImage } from './iso9660.ts';
import './config.ts';

/** A config drive could not be built (a tree ISO 9660 cannot hold, mkisofs_cmd missing or failing). */
export class ConfigDriveError extends Error {}

/**
 * Nova's configdrive.required_by. `launched`: the guest ran before (a reboot or start rebuilds
 * its drive): force_config_drive then no longer applies, as in Nova, since such a guest may have
 * been set up through the metadata service and expects no new device.
 */
export function configDriveRequired(spec: GuestSpec, config: Config, o: { launched?: boolean } = {}): boolean {
  const props = spec.image?.properties ?? spec.imageProps ?? {};
  return !!spec.configDrive
    || (config.get<boolean>('DEFAULT', 'force_config_drive') && !o.launched)
    || props.img_config_drive === 'mandatory';
}

/**
 * Writes the `config-2` ISO of `spec` at outPath (replaced whole, never left half-written): with
 * the built-in ISO 9660 writer (iso9660.ts), or with `[DEFAULT] mkisofs_cmd` when it is set.
 */
export async function buildConfigDrive(spec: GuestSpec, outPath: string, o: { config: Config }): Promise<void> {
  const md = new InstanceMetadata(spec, { config: o.config, configDrive: true, vendorData: await loadVendorData(o.config) });
  const files = md.configDriveFiles();
  const dir = dirname(outPath);
  await mkdir(dir, { recursive: true });
  const tmp = `${outPath}.${randomBytes(4).toString('hex')}.tmp`;
  const cmd = o.config.get<string | undefined>('DEFAULT', 'mkisofs_cmd');
  try {
    if (cmd) await withMkisofs(cmd, files, dir, tmp);
    else {
      let image: Buffer;
      try { image = isoImage(files, { volumeId: 'config-2', publisher: PUBLISHER }); } catch (e) {
        if (e instanceof IsoError) throw new ConfigDriveError(`Cannot build the config drive: ${e.message}`);
        throw e;
      }
      // One write (about 0.5 MiB): a write per chunk costs a thread-pool round trip each, which
      // under load was most of the build's time.
      await writeFile(tmp, image);
    }
    await rename(tmp, outPath);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}

const PUBLISHER = 'Stratus Compute';

/** Nova's way: the files in a directory tree, then genisoimage with Nova's flags. */
async function withMkisofs(cmd: string, files: { path: string; data: Buffer }[], dir: string, out: string): Promise<void> {
  const tree = await mkdtemp(join(dir, '.configdrive-'));
  try {
    // Tens of small files: their directories first, then all of them at once.
    const all = files.map((f) => ({ path: join(tree, f.path), data: f.data }));
    for (const d of new Set(all.map((f) => dirname(f.path)))) await mkdir(d, { recursive: true });
    await Promise.all(all.map((f) => writeFile(f.path, f.data, { mode: 0o600 })));
    await run(cmd, [
      '-o', out, '-ldots', '-allow-lowercase', '-allow-multidot', '-l', '-publisher', PUBLISHER,
      '-quiet', '-J', '-r', '-V', 'config-2', tree,
    ]);
  } finally {
    await rm(tree, { recursive: true, force: true });
  }
}

function run(cmd: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d: Buffer) => { if (err.length < 4096) err += d.toString(); });
    p.on('error', (e) => reject(new ConfigDriveError(`Cannot build the config drive: ${cmd}: ${e.message} (install it, or leave [DEFAULT] mkisofs_cmd unset for the built-in writer)`)));
    p.on('close', (code) => code === 0 ? resolve() : reject(new ConfigDriveError(`Cannot build the config drive: ${cmd} exited with ${code}: ${err.trim()}`)));
  });
}
