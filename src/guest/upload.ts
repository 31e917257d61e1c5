// `stratus image build --upload`: registers a built image with the image service — created with
// its formats, min_disk/min_ram and properties, then its data streamed (Glance v2's two steps,
// as `openstack image create --file` does). A failed upload deletes the queued image.
import { createReadStream } from 'node:fs';
import { ImageClient, type ServiceAccess } from '../compute/clients.ts';
import { ServiceUnavailable } from '../common/errors.ts';
import type { BuiltImage } from './build.ts';

/** The image-create request body for a built image. */
export function imageCreateBody(img: BuiltImage, name: string): Record<string, unknown> {
  return { name, disk_format: img.format, container_format: 'bare', min_disk: img.minDiskGb, min_ram: img.minRamMb, ...img.properties };
}

export async function uploadImage(img: BuiltImage, name: string, access: ServiceAccess): Promise<string> {
  const client = new ImageClient(access.endpoint, access.token);
  const created = await client.request(await access.token(), 'POST', '/v2/images', imageCreateBody(img, name));
  if (created.status !== 201) throw new ServiceUnavailable(`The image service refused to create image ${name} (${created.status}): ${JSON.stringify(created.body)}`);
  const id = created.body.id as string;
  try {
    await client.upload(id, createReadStream(img.path), img.format, 'bare');
  } catch (e) {
    // The upload's own error is what the operator must see; a queued image left behind is named.
    await client.remove(id).catch((r) => { process.stderr.write(`warning: the queued image ${id} could not be deleted: ${(r as Error).message}\n`); });
    throw e;
  }
  return id;
}
