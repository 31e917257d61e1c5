import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NonceGuard, OAuthRequestInvalid, checkRequest, parseAuthorizationHeader, percentEncode, sign, signatureBaseString, signatureMatches } from './oauth1-signature.ts';

// The OAuth 1.0 specification's worked example (Appendix A.5), which every implementation reproduces.
const example = {
  method: 'GET',
  url: 'http://photos.example.net/photos?file=vacation.jpg&size=original',
  params: {
    oauth_consumer_key: 'dpf43f3p2l4k3l03', oauth_token: 'nnch734d00sl2jdk', oauth_signature_method: 'HMAC-SHA1',
    oauth_timestamp: '1191242096', oauth_nonce: 'kllo9940pd9333jh', oauth_version: '1.0',
  } as Record<string, string>,
};

test('signature base string and HMAC-SHA1 as the specification computes them', () => {
  assert.equal(signatureBaseString(example),
    'GET&http%3A%2F%2Fphotos.example.net%2Fphotos&file%3Dvacation.jpg%26oauth_consumer_key%3Ddpf43f3p2l4k3l03%26oauth_nonce%3Dkllo9940pd9333jh%26oauth_signature_method%3DHMAC-SHA1%26oauth_timestamp%3D1191242096%26oauth_token%3Dnnch734d00sl2jdk%26oauth_version%3D1.0%26size%3Doriginal');
  assert.equal(sign(example, 'kd94hf93k423kf44', 'pfkkdhi9sl3r4s00'), 'tR3+Ty81lMeYAr/Fid0kMTYa/WM=');
  const signed = { ...example, params: { ...example.params, oauth_signature: 'tR3+Ty81lMeYAr/Fid0kMTYa/WM=' } };
  assert.ok(signatureMatches(signed, 'kd94hf93k423kf44', 'pfkkdhi9sl3r4s00'));
  assert.ok(!signatureMatches(signed, 'kd94hf93k423kf44', 'wrong'));
  assert.ok(!signatureMatches({ ...signed, method: 'POST' }, 'kd94hf93k423kf44', 'pfkkdhi9sl3r4s00'));
  assert.ok(!signatureMatches({ ...signed, url: 'http://photos.example.net:8080/photos?file=vacation.jpg&size=original' }, 'kd94hf93k423kf44', 'pfkkdhi9sl3r4s00'));
  // the default port is not part of the base string
  assert.equal(sign({ ...example, url: 'http://PHOTOS.example.net:80/photos?size=original&file=vacation.jpg' }, 'kd94hf93k423kf44', 'pfkkdhi9sl3r4s00'), 'tR3+Ty81lMeYAr/Fid0kMTYa/WM=');
  assert.equal(percentEncode("a b!*'()~"), "a%20b%21%2A%27%28%29~");
});

test('Authorization header parsing and the checks made before the signature', () => {
  assert.deepEqual(parseAuthorizationHeader('OAuth realm="x", oauth_consumer_key="abc", oauth_signature="a%2Bb%3D"'), { oauth_consumer_key: 'abc', oauth_signature: 'a+b=' });
  assert.equal(parseAuthorizationHeader('Bearer xyz'), undefined);
  const now = 1_700_000_000_000;
  const ok = { oauth_signature: 's', oauth_consumer_key: 'a'.repeat(32), oauth_nonce: 'abc123', oauth_timestamp: String(now / 1000), oauth_signature_method: 'HMAC-SHA1', oauth_callback: 'oob' };
  checkRequest(ok, ['oauth_callback'], now);
  const bad: [Record<string, string>, RegExp][] = [
    [{ ...ok, oauth_callback: '' }, /oauth_callback/],
    [{ ...ok, oauth_signature_method: 'RSA-SHA1' }, /not supported/],
    [{ ...ok, oauth_version: '2.0' }, /version/],
    [{ ...ok, oauth_timestamp: String(now / 1000 - 601) }, /600 seconds/],
    [{ ...ok, oauth_timestamp: 'abc' }, /timestamp/],
    [{ ...ok, oauth_nonce: 'zz' }, /nonce/],
    [{ ...ok, oauth_consumer_key: 'short' }, /client key/],
  ];
  for (const [p, why] of bad) assert.throws(() => checkRequest(p, ['oauth_callback'], now), (e: Error) => e instanceof OAuthRequestInvalid && why.test(e.message));
  assert.throws(() => checkRequest({ ...ok, oauth_token: 'a'.repeat(32), oauth_verifier: 'abc' }, ['oauth_token', 'oauth_verifier'], now), /verifier/);
  const g = new NonceGuard();
  assert.ok(g.use('c', 'n1', '1', now));
  assert.ok(!g.use('c', 'n1', '1', now));
  assert.ok(g.use('other', 'n1', '1', now));
});
