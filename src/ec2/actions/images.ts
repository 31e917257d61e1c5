// Images: Glance v2 images as AMIs (kernels and ramdisks as AKIs and ARIs, by container
// format), DeregisterImage as a delete, CreateImage as Nova's server snapshot.
import { Ec2Error, invalidParameter } from '../errors.ts';
import { imageKind, type Ec2Kind } from '../ids.ts';
import { bool, filters, list, required } from '../params.ts';
import { el, set } from '../xml.ts';
import { messageOf } from '../downstream.ts';
import { type ActionContext, type ActionDef, checkId, isoTime, matchAny, notFoundError, resolveIds } from './context.ts';

const STATE: Record<string, string> = {
  active: 'available', queued: 'pending', saving: 'pending', importing: 'pending', uploading: 'pending',
  killed: 'failed', deleted: 'deregistered', pending_delete: 'deregistered', deactivated: 'disabled',
};
const TYPE: Record<Ec2Kind, string> = { ami: 'machine', aki: 'kernel', ari: 'ramdisk', i: 'machine', r: 'machine' };

interface Img { g: any; id: string; kind: Ec2Kind; kernel?: string; ramdisk?: string }

async function allImages(c: ActionContext): Promise<any[]> {
  const out: any[] = [];
  let path = '/v2/images?limit=1000';
  for (let i = 0; i < 100; i++) {
    const body = await c.image.ok(c.caller.token, 'GET', path);
    out.push(...body.images);
    if (!body.next) break;
    path = body.next;
  }
  return out;
}

export async function discoverImages(c: ActionContext): Promise<void> {
  for (const g of await allImages(c)) await c.ids.one(imageKind(g.container_format), g.id);
}

async function describeImages(c: ActionContext): Promise<string> {
  const ids = list(c.p, 'ImageId');
  const owners = list(c.p, 'Owner');
  const execBy = list(c.p, 'ExecutableBy');
  const fs = filters(c.p);
  bool(c.p, 'IncludeDeprecated');
  const wanted = ids.length ? new Set(await resolveIds(c, ids, ['ami', 'aki', 'ari'])) : undefined;
  const glance = (await allImages(c)).filter((g) => !wanted || wanted.has(g.id));
  if (wanted) {
    const seen = new Set(glance.map((g) => g.id));
    const uuids = [...wanted];
    const missing = ids.filter((_, i) => !seen.has(uuids[i]));
    if (missing.length) throw notFoundError('ami', missing);
  }
  const imgs: Img[] = [];
  for (const g of glance) {
    const kind = imageKind(g.container_format);
    imgs.push({
      g, kind, id: await c.ids.one(kind, g.id),
      kernel: g.kernel_id ? await c.ids.one('aki', g.kernel_id) : undefined,
      ramdisk: g.ramdisk_id ? await c.ids.one('ari', g.ramdisk_id) : undefined,
    });
  }
  const me = c.caller.projectId;
  const isPublic = (g: any) => g.visibility === 'public' || g.visibility === 'community';
  const ownerOk = (g: any) => !owners.length || owners.some((o) => (o === 'self' ? g.owner === me : o === 'amazon' || o === 'aws-marketplace' ? false : g.owner === o));
  const execOk = (g: any) => !execBy.length || execBy.some((e) => (e === 'all' ? isPublic(g) : e === 'self' ? g.owner === me || isPublic(g) || g.visibility === 'shared' : isPublic(g) || g.owner === e));
  const tests: Record<string, (i: Img) => unknown> = {
    architecture: (i) => i.g.architecture, 'image-id': (i) => i.id, 'image-type': (i) => TYPE[i.kind], 'is-public': (i) => String(isPublic(i.g)),
    name: (i) => i.g.name, 'owner-id': (i) => i.g.owner, state: (i) => STATE[i.g.status] ?? 'error', 'kernel-id': (i) => i.kernel, 'ramdisk-id': (i) => i.ramdisk,
    description: (i) => i.g.description, 'root-device-type': () => 'instance-store', 'root-device-name': () => '/dev/vda', 'virtualization-type': () => 'hvm', hypervisor: () => 'xen',
  };
  for (const f of fs) if (!tests[f.name] && !f.name.startsWith('tag:') && f.name !== 'tag-key') throw invalidParameter(`The filter '${f.name}' is invalid`);
  const keep = imgs.filter((i) => ownerOk(i.g) && execOk(i.g) && fs.every((f) => {
    if (f.name === 'tag-key') return (i.g.tags ?? []).some((t: string) => matchAny(f.values, t));
    if (f.name.startsWith('tag:')) return (i.g.tags ?? []).includes(f.name.slice(4)) && matchAny(f.values, '');
    const v = tests[f.name](i);
    return v !== undefined && v !== null && matchAny(f.values, String(v));
  }));
  return set('imagesSet', keep, (i) => {
    const g = i.g;
    return el('imageId', i.id) + el('imageLocation', `${g.owner ?? ''}/${g.name ?? g.id}`) + el('imageState', STATE[g.status] ?? 'error')
      + el('imageOwnerId', g.owner ?? '') + el('creationDate', isoTime(g.created_at)) + el('isPublic', String(isPublic(g)))
      + el('architecture', g.architecture) + el('imageType', TYPE[i.kind]) + el('kernelId', i.kernel) + el('ramdiskId', i.ramdisk)
      + el('name', g.name ?? '') + el('description', g.description) + '<rootDeviceType>instance-store</rootDeviceType><rootDeviceName>/dev/vda</rootDeviceName>'
      + '<blockDeviceMapping/><virtualizationType>hvm</virtualizationType><hypervisor>xen</hypervisor>'
      + ((g.tags ?? []).length ? set('tagSet', g.tags as string[], (t) => el('key', t) + '<value></value>') : '');
  });
}

async function deregisterImage(c: ActionContext): Promise<string> {
  const id = required(c.p, 'ImageId');
  const [uuid] = await resolveIds(c, [id], ['ami', 'aki', 'ari']);
  await c.image.ok(c.caller.token, 'DELETE', `/v2/images/${uuid}`, undefined, {
    onError: (r) => {
      if (r.status === 404) return notFoundError('ami', id);
      if (r.status === 403) return new Ec2Error('AuthFailure', `Not authorized for image:${id}`, 403);
      if (r.status === 409) return new Ec2Error('InvalidAMIID.Unavailable', `The image '${id}' cannot be deregistered now (${messageOf(r)})`);
      return undefined;
    },
  });
  return '<return>true</return>';
}

const AMI_NAME = /^[A-Za-z0-9()[\] ./\-'@_]{3,128}$/;

async function createImage(c: ActionContext): Promise<string> {
  const id = required(c.p, 'InstanceId');
  checkId(id, ['i']);
  const name = required(c.p, 'Name');
  if (!AMI_NAME.test(name)) throw invalidParameter(`AMI names must be between 3 and 128 characters long, and may contain letters, numbers, '(', ')', '.', '-', '/', '_', '[', ']', ' ', '@' and "'"`);
  bool(c.p, 'NoReboot');
  const [uuid] = await resolveIds(c, [id], ['i']);
  const dup = await c.image.ok(c.caller.token, 'GET', `/v2/images?name=${encodeURIComponent(name)}&owner=${c.caller.projectId}`);
  if ((dup.images as any[]).length) throw new Ec2Error('InvalidAMIName.Duplicate', `AMI name ${name} is already in use by AMI ${await c.ids.one('ami', dup.images[0].id)}`);
  const metadata: Record<string, string> = {};
  if (c.p.Description !== undefined) metadata.description = c.p.Description.slice(0, 255);
  const body = await c.compute.ok(c.caller.token, 'POST', `/servers/${uuid}/action`, { createImage: { name, metadata } }, {
    onError: (r) => {
      if (r.status === 404) return notFoundError('i', id);
      if (r.status === 409) return new Ec2Error('IncorrectInstanceState', `The instance '${id}' is not in a state from which an image can be created (${messageOf(r)})`);
      return undefined;
    },
  });
  return el('imageId', await c.ids.one('ami', body.image_id));
}

export const imageActions: Record<string, ActionDef> = {
  DescribeImages: { handler: describeImages },
  DeregisterImage: { handler: deregisterImage },
  CreateImage: { handler: createImage },
};
