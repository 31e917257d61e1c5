// The audit against a deployment's config, as the operator commands run it: the compute API
// database (and through it every cell), placement with the service credentials, and the image
// database when `[image_database] connection` is set.
import type { Config } from '../../common/config.ts';
import { ConfigError } from '../../common/config.ts';
import { openDatabase, type Database } from '../../common/db/database.ts';
import { Cells } from '../cells.ts';
import { PlacementClient } from '../clients.ts';
import { serviceAccess } from '../workers.ts';
import { auditDeployment, type AuditOptions, type Finding } from './invariants.ts';

export interface AuditTarget {
  cells: Cells;
  placement: PlacementClient;
  options: AuditOptions;
  close(): Promise<void>;
}

function optional(config: Config, section: string, name: string): string | undefined {
  try { return config.get<string | undefined>(section, name); } catch { return undefined; }
}

/** Default timeouts: `[DEFAULT] instance_build_timeout` (600 s when 0) for builds, task states and images. */
export async function openAuditTarget(config: Config, over: { buildTimeoutS?: number; taskTimeoutS?: number } = {}): Promise<AuditTarget> {
  const apiUrl = config.get<string | undefined>('api_database', 'connection');
  if (!apiUrl) throw new ConfigError('[api_database] connection is not set.');
  const cells = await Cells.open(apiUrl, { apiPoolSize: 2, cellPoolSize: 2 });
  const placement = new PlacementClient(serviceAccess(config, config.get<string | undefined>('keystone_authtoken', 'auth_url') ?? process.env.OS_AUTH_URL, 'placement'));
  const imageUrl = optional(config, 'image_database', 'connection');
  let images: Database | undefined;
  const build = (over.buildTimeoutS ?? (config.get<number>('DEFAULT', 'instance_build_timeout') || 600)) * 1000;
  const options: AuditOptions = {
    buildTimeoutMs: build,
    taskTimeoutMs: (over.taskTimeoutS ?? build / 1000) * 1000,
    images: imageUrl ? async () => {
      images ??= await openDatabase(imageUrl, { poolSize: 1 });
      return (images.db as any).selectFrom('images').select(['id', 'status', 'updated_at']).where('deleted', '=', 0).where('status', 'in', ['saving', 'importing', 'uploading']).execute();
    } : undefined,
  };
  return { cells, placement, options, close: async () => { await images?.close(); await cells.close(); } };
}

export async function runAudit(t: AuditTarget): Promise<Finding[]> {
  return auditDeployment(t.cells, t.placement, t.options);
}
