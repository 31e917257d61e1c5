// `stratus image build --kind minimal|debian --output FILE [--format qcow2|raw]`: the guest image
// builder (src/guest/). Prints the Glance properties to upload the image with.
import type { Command } from 'commander';
import { Option } from 'commander';
import { ConfigError } from '../common/config.ts';
import { buildImage, defaultCacheDir, type ImageFormat, type ImageKind } from '../guest/build.ts';

export function registerImageCommands(program: Command): void {
  const image = program.command('image').description('Guest images');
  image.command('build')
    .description('Build an OpenStack-ready guest image from Debian packages (apt\'s archive is the only source)')
    .addOption(new Option('--kind <kind>', 'minimal: cloud kernel + busybox init (boots in seconds under TCG); debian: debootstrap + cloud-init').choices(['minimal', 'debian']).default('minimal'))
    .requiredOption('--output <file>', 'image file to write')
    .addOption(new Option('--format <format>', 'disk format').choices(['qcow2', 'raw']).default('qcow2'))
    .option('--cache-dir <dir>', `downloaded packages (default ${defaultCacheDir()})`)
    .action(async (o: { kind: ImageKind; output: string; format: ImageFormat; cacheDir?: string }) => {
      if (!o.output) throw new ConfigError('--output is required');
      const t0 = Date.now();
      const r = await buildImage({ kind: o.kind, output: o.output, format: o.format, cacheDir: o.cacheDir, log: (m) => console.error(`stratus image build: ${m}`) });
      console.log(`Built ${r.kind} image ${r.path} (${r.format}, kernel ${r.kernel}) in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
      const props = Object.entries(r.properties).map(([k, v]) => `--property ${k}=${v}`).join(' ');
      console.log(`Upload: openstack image create --disk-format ${r.format} --container-format bare --file ${r.path} ${props} <name>`);
    });
}
