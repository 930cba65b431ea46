'use strict';
// RSA-4096 and ECDSA P-256 keys generated on the token sign; node:crypto verifies each
// signature with a KeyObject built from the exported public values only (CKA_MODULUS and
// CKA_PUBLIC_EXPONENT, CKA_EC_POINT), and rejects it for another message.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const h = require('./helpers');

const { pkcs11js } = h;
const t = h.tokenForFile('ecm-node-signatures');

const message = Buffer.from('signed by ecm-hsm, checked by node:crypto');
const other = Buffer.from('signed by ecm-hsm, checked by node:crypto!');

function sign(mechanism, key, data, size) {
  t.p11.C_SignInit(t.session, mechanism, key);
  return t.p11.C_Sign(t.session, data, Buffer.alloc(size));
}

/**
 * A session key pair that signs and verifies, made by `mechanism`; `publicExtra` are the
 * public template's own attributes (key size, curve), `label` names the private key.
 */
function signingPair(mechanism, publicExtra, label) {
  return t.p11.C_GenerateKeyPair(
    t.session,
    { mechanism },
    [
      { type: pkcs11js.CKA_TOKEN, value: false },
      { type: pkcs11js.CKA_VERIFY, value: true },
      ...publicExtra,
    ],
    [
      { type: pkcs11js.CKA_LABEL, value: label },
      { type: pkcs11js.CKA_TOKEN, value: false },
      { type: pkcs11js.CKA_PRIVATE, value: true },
      { type: pkcs11js.CKA_SENSITIVE, value: true },
      { type: pkcs11js.CKA_SIGN, value: true },
    ],
  );
}

test('RSA-4096: PKCS#1 v1.5 and PSS signatures verify in node:crypto', () => {
  const { p11, session } = t;
  const pair = signingPair(
    pkcs11js.CKM_RSA_PKCS_KEY_PAIR_GEN,
    [
      { type: pkcs11js.CKA_MODULUS_BITS, value: 4096 },
      { type: pkcs11js.CKA_PUBLIC_EXPONENT, value: Buffer.from([1, 0, 1]) },
    ],
    'rsa-4096',
  );
  const [n, e] = h.attrs(p11, session, pair.publicKey, [
    pkcs11js.CKA_MODULUS,
    pkcs11js.CKA_PUBLIC_EXPONENT,
  ]);
  assert.equal(n.length, 512);
  const pub = crypto.createPublicKey({
    key: { kty: 'RSA', n: n.toString('base64url'), e: e.toString('base64url') },
    format: 'jwk',
  });
  assert.equal(pub.asymmetricKeyDetails.modulusLength, 4096);
  // The private key's secret parts stay inside.
  assert.equal(
    h.ckr(() => h.attr(p11, session, pair.privateKey, pkcs11js.CKA_PRIVATE_EXPONENT)),
    'CKR_ATTRIBUTE_SENSITIVE',
  );

  const v15 = sign({ mechanism: pkcs11js.CKM_SHA256_RSA_PKCS }, pair.privateKey, message, 512);
  assert.equal(v15.length, 512);
  assert.ok(crypto.verify('sha256', message, pub, v15));
  assert.ok(!crypto.verify('sha256', other, pub, v15));
  // PKCS#1 v1.5 is deterministic: the same message gives the same signature.
  const again = sign({ mechanism: pkcs11js.CKM_SHA256_RSA_PKCS }, pair.privateKey, message, 512);
  assert.deepEqual(again, v15);

  const pss = {
    mechanism: pkcs11js.CKM_SHA256_RSA_PKCS_PSS,
    parameter: {
      type: pkcs11js.CK_PARAMS_RSA_PSS,
      hashAlg: pkcs11js.CKM_SHA256,
      mgf: pkcs11js.CKG_MGF1_SHA256,
      saltLen: 32,
    },
  };
  const sig = sign(pss, pair.privateKey, message, 512);
  const pssKey = { key: pub, padding: crypto.constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 };
  assert.ok(crypto.verify('sha256', message, pssKey, sig));
  assert.ok(!crypto.verify('sha256', other, pssKey, sig));
  assert.notDeepEqual(sign(pss, pair.privateKey, message, 512), sig, 'PSS salts are random');

  // The token's C_Verify agrees: the signature passes, a changed one is refused.
  p11.C_VerifyInit(session, { mechanism: pkcs11js.CKM_SHA256_RSA_PKCS }, pair.publicKey);
  assert.equal(p11.C_Verify(session, message, v15), true);
  const bad = Buffer.from(v15);
  bad[100] ^= 0x40;
  p11.C_VerifyInit(session, { mechanism: pkcs11js.CKM_SHA256_RSA_PKCS }, pair.publicKey);
  assert.equal(h.ckr(() => p11.C_Verify(session, message, bad)), 'CKR_SIGNATURE_INVALID');
});

test('ECDSA P-256: raw r||s signatures verify in node:crypto', () => {
  const { p11, session } = t;
  const pair = signingPair(
    pkcs11js.CKM_EC_KEY_PAIR_GEN,
    [{ type: pkcs11js.CKA_EC_PARAMS, value: h.P256_PARAMS }],
    'p-256',
  );
  const point = h.ecPointRaw(h.attr(p11, session, pair.publicKey, pkcs11js.CKA_EC_POINT));
  const pub = h.p256PublicKey(point);
  assert.equal(pub.asymmetricKeyDetails.namedCurve, 'prime256v1');

  // CKM_ECDSA_SHA256 hashes on the token; CKM_ECDSA signs a digest made here.
  const sig = sign({ mechanism: pkcs11js.CKM_ECDSA_SHA256 }, pair.privateKey, message, 64);
  assert.equal(sig.length, 64, 'PKCS#11 ECDSA signatures are r||s');
  const p1363 = { key: pub, dsaEncoding: 'ieee-p1363' };
  assert.ok(crypto.verify('sha256', message, p1363, sig));
  assert.ok(!crypto.verify('sha256', other, p1363, sig));

  const digest = crypto.createHash('sha256').update(message).digest();
  const raw = sign({ mechanism: pkcs11js.CKM_ECDSA }, pair.privateKey, digest, 64);
  assert.ok(crypto.verify('sha256', message, p1363, raw));
  assert.notDeepEqual(raw, sig, 'ECDSA nonces are fresh');
});
