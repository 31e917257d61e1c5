// EC2-style ids of OpenStack UUIDs, shared by the EC2 API and the metadata service so a guest
// and an EC2 client name an instance or image the same way: the kind's prefix and the first 68
// bits of the UUID's SHA-256 in AWS's 17-hex-digit long form (i-0f3a…). Anyone who knows the
// UUID computes the same id without a lookup; the EC2 API records each id it hands out for the
// way back (src/ec2/ids.ts).
import { createHash } from 'node:crypto';

export type Ec2Kind = 'i' | 'ami' | 'aki' | 'ari' | 'r';

export function ec2IdFor(kind: Ec2Kind, uuid: string): string {
  return `${kind}-${createHash('sha256').update(uuid.toLowerCase()).digest('hex').slice(0, 17)}`;
}
