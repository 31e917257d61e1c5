// A hand-written AWS signer (Signature Version 4 and 2) and a small EC2 Query client for tests
// and the EC2 benchmark, so bad signatures, skewed clocks and replays can be made on purpose.
import { createHash, createHmac } from 'node:crypto';

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');
const hmac = (k: Buffer | string, m: string) => createHmac('sha256', k).update(m).digest();
const quote = (s: string) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
const canonicalQuery = (p: Record<string, string>) => Object.keys(p).sort().map((k) => `${quote(k)}=${quote(p[k])}`).join('&');
export const form = (p: Record<string, string>) => Object.entries(p).map(([k, v]) => `${quote(k)}=${quote(v)}`).join('&');

export interface Keys { access: string; secret: string }

/** 20261201T101500Z */
export const amzDate = (d: Date) => d.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');

/** Headers of a SigV4-signed form POST (as botocore sends it). */
export function signV4(url: string, body: string, keys: Keys, o: { date?: Date; region?: string; service?: string; method?: string } = {}): Record<string, string> {
  const u = new URL(url);
  const method = o.method ?? 'POST';
  const date = amzDate(o.date ?? new Date());
  const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8', host: u.host, 'x-amz-date': date };
  const signed = Object.keys(headers).sort();
  const query = Object.fromEntries(u.searchParams);
  const creq = [method, u.pathname, canonicalQuery(query), signed.map((h) => `${h}:${headers[h]}\n`).join(''), signed.join(';'), sha256(body)].join('\n');
  const scope = `${date.slice(0, 8)}/${o.region ?? 'RegionOne'}/${o.service ?? 'ec2'}/aws4_request`;
  const sts = ['AWS4-HMAC-SHA256', date, scope, sha256(creq)].join('\n');
  let k = hmac(`AWS4${keys.secret}`, date.slice(0, 8));
  for (const part of [o.region ?? 'RegionOne', o.service ?? 'ec2', 'aws4_request']) k = hmac(k, part);
  const signature = createHmac('sha256', k).update(sts).digest('hex');
  return { ...headers, authorization: `AWS4-HMAC-SHA256 Credential=${keys.access}/${scope}, SignedHeaders=${signed.join(';')}, Signature=${signature}` };
}

/** A SigV2-signed GET URL (what pre-2014 EC2 clients send). */
export function signV2Url(url: string, params: Record<string, string>, keys: Keys, o: { date?: Date } = {}): string {
  const u = new URL(url);
  const p: Record<string, string> = { ...params, AWSAccessKeyId: keys.access, SignatureVersion: '2', SignatureMethod: 'HmacSHA256', Timestamp: (o.date ?? new Date()).toISOString().replace(/\.\d{3}Z$/, 'Z') };
  const sts = `GET\n${u.host}\n${u.pathname}\n${canonicalQuery(p)}`;
  p.Signature = createHmac('sha256', keys.secret).update(sts).digest('base64');
  return `${u.origin}${u.pathname}?${form(p)}`;
}

export interface Ec2Reply { status: number; xml: string; code?: string; message?: string }

/** One EC2 action, signed with SigV4. */
export async function ec2Call(endpoint: string, keys: Keys, action: string, params: Record<string, string> = {}, o: { date?: Date } = {}): Promise<Ec2Reply> {
  const body = form({ Action: action, Version: '2016-11-15', ...params });
  const res = await fetch(endpoint, { method: 'POST', headers: signV4(endpoint, body, keys, o), body });
  return parseReply(res.status, await res.text());
}

export function parseReply(status: number, xml: string): Ec2Reply {
  return { status, xml, code: /<Code>([^<]*)<\/Code>/.exec(xml)?.[1], message: /<Message>([^<]*)<\/Message>/.exec(xml)?.[1] };
}

/** Every text value of <tag>…</tag> in document order. */
export const all = (xml: string, tag: string) => [...xml.matchAll(new RegExp(`<${tag}>([^<]*)</${tag}>`, 'g'))].map((m) => m[1]);
export const first = (xml: string, tag: string) => all(xml, tag)[0];
