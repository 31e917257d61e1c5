// `--kind debian`: not built yet (debootstrap + cloud-init + openssh-server + growpart + GRUB).
import type { BuildOptions, BuiltImage } from './build.ts';

export async function buildDebianImage(_o: BuildOptions): Promise<BuiltImage> {
  throw new Error('stratus image build --kind debian is not implemented yet; use --kind minimal');
}
