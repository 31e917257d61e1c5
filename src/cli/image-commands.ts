// `stratus image build --kind minimal|debian --output FILE [--format qcow2|raw] [--size 2G]
// [--upload [--name NAME] [--os-cloud CLOUD]]`: the guest image builder (src/guest/). Without
// --upload it prints the `openstack image create` to upload the image with; with it, registers
// the image itself with the credentials an openstack client would use, and prints its id.
import type { Command } from 'commander';
import { Option } from 'commander';
import { ConfigError } from '../common/config.ts';
import { buildImage, defaultCacheDir, type ImageFormat, type ImageKind } from '../guest/build.ts';
import { uploadImage } from '../guest/upload.ts';
import { parseSize } from '../guest/debian-image.ts';
import { passwordAccess } from '../compute/workers.ts';

interface BuildFlags { kind: ImageKind; output: string; format: ImageFormat; cacheDir?: string; size: string; upload?: boolean; name?: string; osCloud?: string }

export function registerImageCommands(program: Command): void {
  const image = program.command('image').description('Guest images');
  image.command('build')
    .description('Build an OpenStack-ready guest image from Debian packages (apt\'s archive is the only source)')
    .addOption(new Option('--kind <kind>', 'minimal: cloud kernel + busybox init (boots in seconds under TCG); debian: debootstrap + cloud-init + openssh-server').choices(['minimal', 'debian']).default('minimal'))
    .requiredOption('--output <file>', 'image file to write')
    .addOption(new Option('--format <format>', 'disk format').choices(['qcow2', 'raw']).default('qcow2'))
    .option('--size <size>', 'virtual disk size of the debian kind (the root is grown to the flavor at boot)', '2G')
    .option('--cache-dir <dir>', `downloaded packages and the debootstrapped tree (default ${defaultCacheDir()})`)
    .option('--upload', 'register the image with the image service (OS_* environment or --os-cloud) and print its id')
    .option('--name <name>', 'image name for --upload (default stratus-minimal / debian-12)')
    .option('--os-cloud <cloud>', 'cloud in clouds.yaml for --upload (default OS_CLOUD, else the OS_* variables)')
    .action(async (o: BuildFlags) => {
      if (!o.output) throw new ConfigError('--output is required');
      // Credentials are checked before a build that can take minutes.
      // (clouds.yaml's parser is loaded only by the command that reads one.)
      const creds = o.upload ? (await import('./os-credentials.ts')).clientCredentials(o.osCloud) : undefined;
      if (o.kind === 'debian') parseSize(o.size);
      const t0 = Date.now();
      const r = await buildImage({ kind: o.kind, output: o.output, format: o.format, cacheDir: o.cacheDir, size: o.size, log: (m) => console.error(`stratus image build: ${m}`) });
      console.error(`Built ${r.kind} image ${r.path} (${r.format}, kernel ${r.kernel}) in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
      if (creds) {
        const name = o.name ?? (r.kind === 'debian' ? 'debian-12' : 'stratus-minimal');
        const id = await uploadImage(r, name, passwordAccess(creds, 'image', { interface: creds.interface, region: creds.region }));
        console.error(`Uploaded as image ${name}:`);
        console.log(id);
        return;
      }
      const props = Object.entries(r.properties).map(([k, v]) => `--property ${shellWord(`${k}=${v}`)}`).join(' ');
      console.log(`Upload: openstack image create --disk-format ${r.format} --container-format bare --min-disk ${r.minDiskGb} --min-ram ${r.minRamMb} --file ${r.path} ${props} <name>`);
    });
}

/** A word the shell reads back as itself. */
function shellWord(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, "'\\''")}'`;
}
