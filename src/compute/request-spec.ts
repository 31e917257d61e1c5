// The RequestSpec (Nova's objects.RequestSpec): what the scheduler needs to place an instance,
// written by the API at create into request_specs, updated by the conductor on reschedule and
// unshelve, sent to the scheduler. Versioned as Nova's objects are: a reader accepts every older
// version (upgrading it here) and refuses a newer major one.
import { BadRequest } from '../common/errors.ts';
import type { EmbeddedFlavor } from './objects.ts';

export const REQUEST_SPEC_VERSION = '1.1';

export interface RequestSpecImage {
  id: string; name?: string | null; min_ram: number; min_disk: number; size: number;
  disk_format?: string; container_format?: string;
  /** The image properties the scheduler interprets (image-props.ts imageProps). */
  properties: Record<string, string>;
}

/** rules: Nova's group rules (max_server_per_host). */
export interface RequestSpecGroup { uuid: string; policy: string; rules: Record<string, number> }

export interface RequestSpec {
  /** 1.0: the fields below without `version`; 1.1: `version` itself. */
  version: string;
  instance_uuid: string;
  project_id: string;
  user_id: string;
  flavor: EmbeddedFlavor;
  image: RequestSpecImage;
  availability_zone: string | null;
  scheduler_hints: Record<string, unknown>;
  num_instances: number;
  instance_group: RequestSpecGroup | null;
  force_hosts: string[];
  force_nodes: string[];
  ignore_hosts: string[];
  num_attempts: number;
  /** Set by the conductor when a move must stay in the instance's cell (reschedule, unshelve). */
  cell_uuid?: string;
}

/** Reads a stored or received spec: unversioned (1.0) specs are upgraded; a newer major version is refused. */
export function loadRequestSpec(raw: unknown): RequestSpec {
  const o = (typeof raw === 'string' ? JSON.parse(raw) : raw) as Partial<RequestSpec> | null;
  if (!o || typeof o !== 'object') throw new BadRequest('RequestSpec: not an object');
  const version = typeof o.version === 'string' ? o.version : '1.0';
  if (version.split('.')[0] !== REQUEST_SPEC_VERSION.split('.')[0]) throw new BadRequest(`RequestSpec version ${version} is not supported (this service reads ${REQUEST_SPEC_VERSION})`);
  if (typeof o.instance_uuid !== 'string' || !o.flavor || !o.image) throw new BadRequest('RequestSpec: instance_uuid, flavor and image are required');
  return {
    version: REQUEST_SPEC_VERSION,
    instance_uuid: o.instance_uuid, project_id: String(o.project_id ?? ''), user_id: String(o.user_id ?? ''),
    flavor: o.flavor, image: { ...o.image, properties: o.image.properties ?? {} },
    availability_zone: o.availability_zone ?? null, scheduler_hints: o.scheduler_hints ?? {},
    num_instances: o.num_instances ?? 1, instance_group: o.instance_group ?? null,
    force_hosts: o.force_hosts ?? [], force_nodes: o.force_nodes ?? [], ignore_hosts: o.ignore_hosts ?? [],
    num_attempts: o.num_attempts ?? 0, ...(o.cell_uuid ? { cell_uuid: o.cell_uuid } : {}),
  };
}
