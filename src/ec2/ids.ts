// EC2 ids ↔ UUIDs. The id is derived from the UUID (src/common/ec2-ids.ts), so every service
// that knows the UUID — the metadata service included — names the instance or image the same
// way without a lookup. The EC2 database records each id the first time it is shown, which
// gives the reverse mapping (EC2 id → UUID) a client's later request needs; its primary key
// turns a (vanishingly unlikely, ~2^-34 at a million ids) collision into a refused insert
// instead of a silent alias.
import type { Kysely } from 'kysely';
import { ec2IdFor, type Ec2Kind } from '../common/ec2-ids.ts';
import { isUniqueViolation } from '../common/db/database.ts';
import type { Ec2DB } from './db.ts';

export { ec2IdFor, type Ec2Kind };

const ID_RE = /^(i|ami|aki|ari|r)-([0-9a-f]{8}|[0-9a-f]{17})$/;

/** The kind of a well-formed EC2 id, or undefined. */
export function kindOf(id: string): Ec2Kind | undefined {
  return ID_RE.exec(id)?.[1] as Ec2Kind | undefined;
}

/** Image kind from its Glance container format (kernels and ramdisks have their own prefixes). */
export function imageKind(containerFormat: string | null | undefined): Ec2Kind {
  return containerFormat === 'aki' ? 'aki' : containerFormat === 'ari' ? 'ari' : 'ami';
}

export class IdMapper {
  /** Ids already recorded by this process: a list of 1,000 instances costs no query after the first. */
  private readonly known = new Set<string>();
  private static readonly MAX_KNOWN = 200_000;

  constructor(private readonly db: Kysely<Ec2DB>) {}

  /** Returns the EC2 ids of these UUIDs, recording the ones not yet in the database. */
  async toEc2(kind: Ec2Kind, uuids: string[]): Promise<string[]> {
    const ids = uuids.map((u) => ec2IdFor(kind, u));
    const missing = ids.map((id, i) => ({ id, uuid: uuids[i] })).filter((x) => !this.known.has(x.id));
    if (missing.length) await this.record(kind, missing);
    return ids;
  }

  async one(kind: Ec2Kind, uuid: string): Promise<string> {
    return (await this.toEc2(kind, [uuid]))[0];
  }

  /** UUID behind an EC2 id, or undefined when this cloud never issued it. */
  async toUuid(ec2Id: string): Promise<string | undefined> {
    const row = await this.db.selectFrom('ec2_ids').select(['uuid']).where('ec2_id', '=', ec2Id).executeTakeFirst();
    return row?.uuid;
  }

  async toUuids(ec2Ids: string[]): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    for (let i = 0; i < ec2Ids.length; i += 500) {
      const rows = await this.db.selectFrom('ec2_ids').select(['ec2_id', 'uuid']).where('ec2_id', 'in', ec2Ids.slice(i, i + 500)).execute();
      for (const r of rows) out.set(r.ec2_id, r.uuid);
    }
    return out;
  }

  private async record(kind: Ec2Kind, items: { id: string; uuid: string }[]): Promise<void> {
    const now = new Date().toISOString();
    for (let i = 0; i < items.length; i += 500) {
      const chunk = items.slice(i, i + 500);
      const present = await this.db.selectFrom('ec2_ids').select(['ec2_id', 'uuid']).where('ec2_id', 'in', chunk.map((c) => c.id)).execute();
      const have = new Map(present.map((r) => [r.ec2_id, r.uuid]));
      const fresh = chunk.filter((c) => !have.has(c.id));
      for (const c of chunk) {
        const u = have.get(c.id);
        if (u !== undefined && u !== c.uuid) throw new Error(`EC2 id ${c.id} already names ${u}, not ${c.uuid}`);
      }
      if (fresh.length) {
        try {
          await this.db.insertInto('ec2_ids').values(fresh.map((c) => ({ ec2_id: c.id, uuid: c.uuid, kind, created_at: now }))).execute();
        } catch (e) {
          if (!isUniqueViolation(e)) throw e;
          // Another request recorded some of them at the same moment: insert one by one.
          for (const c of fresh) {
            try { await this.db.insertInto('ec2_ids').values({ ec2_id: c.id, uuid: c.uuid, kind, created_at: now }).execute(); } catch (e2) { if (!isUniqueViolation(e2)) throw e2; }
          }
        }
      }
      if (this.known.size > IdMapper.MAX_KNOWN) this.known.clear();
      for (const c of chunk) this.known.add(c.id);
    }
  }
}
