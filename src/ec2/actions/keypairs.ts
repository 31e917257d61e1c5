// Key pairs: Nova's os-keypairs, which belong to the user (as EC2's belong to the account).
import { createHash } from 'node:crypto';
import { Ec2Error, invalidParameter } from '../errors.ts';
import { filters, list, required } from '../params.ts';
import { el, set } from '../xml.ts';
import { messageOf, type Reply } from '../downstream.ts';
import { type ActionContext, type ActionDef, matchAny } from './context.ts';

const keyPairId = (userId: string, name: string) => `key-${createHash('sha256').update(`${userId}:${name}`).digest('hex').slice(0, 17)}`;

function checkName(name: string): void {
  if (name.length > 255) throw invalidParameter('Length of KeyName must be 1 to 255 characters');
}

const createError = (name: string) => (r: Reply) => {
  if (r.status === 409) return new Ec2Error('InvalidKeyPair.Duplicate', `The keypair '${name}' already exists.`);
  if (r.status === 400) return new Ec2Error(/public key|keypair data/i.test(messageOf(r)) ? 'InvalidKey.Format' : 'InvalidParameterValue', messageOf(r));
  if (r.status === 403 && /quota/i.test(messageOf(r))) return new Ec2Error('ResourceLimitExceeded', `Maximum number of key pairs reached (${messageOf(r)})`);
  return undefined;
};

function checkType(c: ActionContext): void {
  const t = c.p.KeyType;
  if (t !== undefined && t !== 'rsa') throw new Ec2Error('UnsupportedOperation', `Key type '${t}' is not supported by this cloud: only rsa`);
  const f = c.p.KeyFormat;
  if (f !== undefined && f !== 'pem') throw new Ec2Error('UnsupportedOperation', `Key format '${f}' is not supported by this cloud: only pem`);
}

async function createKeyPair(c: ActionContext): Promise<string> {
  const name = required(c.p, 'KeyName');
  checkName(name);
  checkType(c);
  const body = await c.compute.ok(c.caller.token, 'POST', '/os-keypairs', { keypair: { name, type: 'ssh' } }, { onError: createError(name) });
  const kp = body.keypair;
  return el('keyName', kp.name) + el('keyFingerprint', kp.fingerprint) + el('keyMaterial', kp.private_key) + el('keyPairId', keyPairId(c.caller.userId, kp.name));
}

async function importKeyPair(c: ActionContext): Promise<string> {
  const name = required(c.p, 'KeyName');
  checkName(name);
  const material = required(c.p, 'PublicKeyMaterial');
  // The Query API carries the key base64-encoded (awscli and boto3 encode blobs); an older
  // client may send the OpenSSH line itself.
  let publicKey = material.trim();
  if (!/^(ssh-|ecdsa-)/.test(publicKey)) {
    if (!/^[A-Za-z0-9+/=\s]+$/.test(material)) throw new Ec2Error('InvalidKey.Format', 'Key is not in valid OpenSSH public key format');
    publicKey = Buffer.from(material, 'base64').toString('utf8').trim();
  }
  if (!publicKey) throw new Ec2Error('InvalidKey.Format', 'Key is not in valid OpenSSH public key format');
  const body = await c.compute.ok(c.caller.token, 'POST', '/os-keypairs', { keypair: { name, type: 'ssh', public_key: publicKey } }, { onError: createError(name) });
  const kp = body.keypair;
  return el('keyName', kp.name) + el('keyFingerprint', kp.fingerprint) + el('keyPairId', keyPairId(c.caller.userId, kp.name));
}

async function describeKeyPairs(c: ActionContext): Promise<string> {
  const names = list(c.p, 'KeyName');
  const ids = list(c.p, 'KeyPairId');
  const fs = filters(c.p);
  for (const f of fs) if (!['key-name', 'fingerprint', 'key-pair-id'].includes(f.name)) throw invalidParameter(`The filter '${f.name}' is invalid`);
  const body = await c.compute.ok(c.caller.token, 'GET', '/os-keypairs');
  const all = (body.keypairs as { keypair: any }[]).map((k) => ({ ...k.keypair, ec2Id: keyPairId(c.caller.userId, k.keypair.name) }));
  const missingName = names.find((n) => !all.some((k) => k.name === n));
  if (missingName !== undefined) throw new Ec2Error('InvalidKeyPair.NotFound', `The key pair '${missingName}' does not exist`);
  const missingId = ids.find((n) => !all.some((k) => k.ec2Id === n));
  if (missingId !== undefined) throw new Ec2Error('InvalidKeyPair.NotFound', `The key pair ID '${missingId}' does not exist`);
  const keep = all.filter((k) => (!names.length || names.includes(k.name)) && (!ids.length || ids.includes(k.ec2Id)) && fs.every((f) =>
    matchAny(f.values, f.name === 'key-name' ? k.name : f.name === 'fingerprint' ? k.fingerprint : k.ec2Id)));
  return set('keySet', keep, (k) => el('keyPairId', k.ec2Id) + el('keyName', k.name) + el('keyFingerprint', k.fingerprint) + '<keyType>rsa</keyType>');
}

async function deleteKeyPair(c: ActionContext): Promise<string> {
  let name: string | undefined = c.p.KeyName;
  if (name === undefined) {
    const id = required(c.p, 'KeyPairId');
    const body = await c.compute.ok(c.caller.token, 'GET', '/os-keypairs');
    name = (body.keypairs as { keypair: any }[]).map((k) => k.keypair.name as string).find((n) => keyPairId(c.caller.userId, n) === id);
    if (name === undefined) throw new Ec2Error('InvalidKeyPair.NotFound', `The key pair ID '${id}' does not exist`);
  }
  // EC2 answers true for a key pair that is already gone.
  await c.compute.ok(c.caller.token, 'DELETE', `/os-keypairs/${encodeURIComponent(name)}`, undefined, { ok: [202, 204, 404] });
  return '<return>true</return>';
}

export const keyPairActions: Record<string, ActionDef> = {
  CreateKeyPair: { handler: createKeyPair },
  ImportKeyPair: { handler: importKeyPair },
  DescribeKeyPairs: { handler: describeKeyPairs },
  DeleteKeyPair: { handler: deleteKeyPair },
};
