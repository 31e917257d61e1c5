// Hosts and their availability zones: a host is in the zone named by the `availability_zone`
// metadata of an aggregate it belongs to (Nova's aggregate-based zones), else in
// [DEFAULT] default_availability_zone. The one query for it, used by the API, the conductor and
// the aggregate checks.
import type { ApiDb } from './db/tables.ts';

/** Host → zone, for the hosts named (all hosts in a zone aggregate when omitted); with the aggregate id. */
export async function hostZones(db: ApiDb, hosts?: string[]): Promise<{ host: string; zone: string; aggregateId: number }[]> {
  if (hosts && !hosts.length) return [];
  let q = db.selectFrom('aggregate_metadata').innerJoin('aggregate_hosts', 'aggregate_hosts.aggregate_id', 'aggregate_metadata.aggregate_id')
    .select(['aggregate_hosts.host', 'aggregate_metadata.value', 'aggregate_metadata.aggregate_id']).where('aggregate_metadata.key', '=', 'availability_zone');
  if (hosts) q = q.where('aggregate_hosts.host', 'in', hosts);
  return (await q.execute()).map((r) => ({ host: r.host, zone: r.value, aggregateId: Number(r.aggregate_id) }));
}

/** Host → zone for every host an aggregate puts in a zone. */
export async function hostAzMap(db: ApiDb): Promise<Map<string, string>> {
  return new Map((await hostZones(db)).map((r) => [r.host, r.zone]));
}
