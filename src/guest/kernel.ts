// The Debian cloud kernel (linux-image-cloud-amd64's current target), extracted into the cache
// with its modules.dep generated (Debian generates it at install time; busybox depmod does it
// here, as the host may have no kmod).
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { debianPackage, metapackageTarget } from './debian.ts';
import { run } from './run.ts';

export interface Kernel {
  /** Kernel release (uname -r), e.g. 6.1.0-57-cloud-amd64. */
  release: string;
  vmlinuz: string;
  /** lib/modules/<release> of the extracted package. */
  modulesDir: string;
  /** Package version, e.g. 6.1.192-3. */
  version: string;
}

export const KERNEL_METAPACKAGE = 'linux-image-cloud-amd64';

async function releaseOf(root: string): Promise<string> {
  const rel = (await readdir(join(root, 'lib', 'modules')))[0];
  if (!rel) throw new Error('kernel package has no lib/modules/<release>');
  return rel;
}

export async function debianCloudKernel(cacheDir: string): Promise<Kernel> {
  const pkg = await debianPackage(await metapackageTarget(KERNEL_METAPACKAGE, 'linux-image-'), cacheDir, async (root) => {
    await run('busybox', ['depmod', '-b', root, await releaseOf(root)]);
  });
  const release = await releaseOf(pkg.root);
  return { release, version: pkg.version, vmlinuz: join(pkg.root, 'boot', `vmlinuz-${release}`), modulesDir: join(pkg.root, 'lib', 'modules', release) };
}
