// Generic microversion negotiation (OpenStack-API-Version: <service> X.Y), used by compute and
// placement. Versions are compared as (major, minor) pairs, never as floats: 2.10 > 2.9.
import { BadRequest, NotAcceptable } from '../errors.ts';

export class Version {
  constructor(readonly major: number, readonly minor: number) {}
  static parse(s: string): Version | undefined {
    const m = /^(\d+)\.(\d+)$/.exec(s.trim());
    return m ? new Version(Number(m[1]), Number(m[2])) : undefined;
  }
  cmp(o: Version | string): number {
    const v = typeof o === 'string' ? literal(o) : o;
    return this.major - v.major || this.minor - v.minor;
  }
  /** True when this >= v */
  atLeast(v: string): boolean { return this.cmp(v) >= 0; }
  /** True when this <= v */
  atMost(v: string): boolean { return this.cmp(v) <= 0; }
  toString(): string { return `${this.major}.${this.minor}`; }
}

// Handlers compare against a few dozen literal versions ('2.61') on every request: each is
// parsed once.
const literals = new Map<string, Version>();
function literal(s: string): Version {
  let v = literals.get(s);
  if (!v) {
    v = Version.parse(s);
    if (!v) throw new Error(`not a version: ${s}`);
    if (literals.size < 1000) literals.set(s, v);
  }
  return v;
}

export interface MicroversionSpec {
  /** e.g. 'compute', 'placement' */
  service: string;
  min: string;
  max: string;
  /** Legacy header name, e.g. X-OpenStack-Nova-API-Version. */
  legacyHeader?: string;
  /** The body key for errors is up to the service; this only decides the version. */
}

/**
 * Reads the requested version from the headers. No header means the minimum; `latest` the
 * maximum. A malformed value is 400, an unsupported one 406 (Nova's and Placement's messages).
 */
export function negotiate(headers: Record<string, string | string[] | undefined>, spec: MicroversionSpec): Version {
  const min = Version.parse(spec.min)!;
  const max = Version.parse(spec.max)!;
  let requested: string | undefined;
  const generic = headers['openstack-api-version'];
  if (generic) {
    for (const part of (Array.isArray(generic) ? generic.join(',') : generic).split(',')) {
      const [svc, ver] = part.trim().split(/\s+/);
      if (svc?.toLowerCase() === spec.service && ver) requested = ver;
    }
  }
  if (requested === undefined && spec.legacyHeader) {
    const legacy = headers[spec.legacyHeader.toLowerCase()];
    if (legacy) requested = (Array.isArray(legacy) ? legacy[0] : legacy).trim();
  }
  if (requested === undefined) return min;
  if (requested.toLowerCase() === 'latest') return max;
  const v = Version.parse(requested);
  if (!v) throw new BadRequest(`API Version String ${requested} is of invalid format. Must be of format MajorNum.MinorNum.`);
  if (v.cmp(min) < 0 || v.cmp(max) > 0) {
    throw new NotAcceptable(`Version ${requested} is not supported by the API. Minimum is ${spec.min} and maximum is ${spec.max}.`);
  }
  return v;
}
