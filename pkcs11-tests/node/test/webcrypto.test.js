'use strict';
// What a WebCrypto-over-PKCS#11 application (the seed's TypeScript services) does with the
// module: generate, import, export, wrap/unwrap (AES-KWP), sign and derive (ECDH P-256),
// each result checked against node:crypto doing the same work in software.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const h = require('./helpers');

const { pkcs11js } = h;
const t = h.tokenForFile('ecm-node-webcrypto');

const session = () => t.session;
const F = false;
const T = true;

/**
 * A session P-256 key pair; `publicUse` (or null) and `privateUse` are the CKA_* usage flags
 * each half gets.
 */
function p256Pair(publicUse, privateUse) {
  const publicExtra = publicUse === null ? [] : [{ type: publicUse, value: T }];
  return t.p11.C_GenerateKeyPair(
    session(),
    { mechanism: pkcs11js.CKM_EC_KEY_PAIR_GEN },
    [
      { type: pkcs11js.CKA_TOKEN, value: F },
      { type: pkcs11js.CKA_EC_PARAMS, value: h.P256_PARAMS },
      ...publicExtra,
    ],
    [
      { type: pkcs11js.CKA_TOKEN, value: F },
      { type: privateUse, value: T },
    ],
  );
}

function gcm(iv, aad) {
  return {
    mechanism: pkcs11js.CKM_AES_GCM,
    parameter: { type: pkcs11js.CK_PARAMS_AES_GCM, iv, ivBits: 96, aad, tagBits: 128 },
  };
}

function tokenSeal(key, iv, aad, data) {
  t.p11.C_EncryptInit(session(), gcm(iv, aad), key);
  return t.p11.C_Encrypt(session(), data, Buffer.alloc(data.length + 16));
}

function tokenOpen(key, iv, aad, data) {
  t.p11.C_DecryptInit(session(), gcm(iv, aad), key);
  return t.p11.C_Decrypt(session(), data, Buffer.alloc(data.length));
}

/** WebCrypto's AES-GCM layout: ciphertext || 16-byte tag. */
function nodeSeal(value, iv, aad, data) {
  const c = crypto.createCipheriv(`aes-${value.length * 8}-gcm`, value, iv);
  c.setAAD(aad);
  return Buffer.concat([c.update(data), c.final(), c.getAuthTag()]);
}

function nodeOpen(value, iv, aad, data) {
  const d = crypto.createDecipheriv(`aes-${value.length * 8}-gcm`, value, iv);
  d.setAAD(aad);
  d.setAuthTag(data.subarray(data.length - 16));
  return Buffer.concat([d.update(data.subarray(0, data.length - 16)), d.final()]);
}

function generateAes(extra) {
  return t.p11.C_GenerateKey(session(), { mechanism: pkcs11js.CKM_AES_KEY_GEN }, [
    { type: pkcs11js.CKA_TOKEN, value: F },
    { type: pkcs11js.CKA_VALUE_LEN, value: 32 },
    { type: pkcs11js.CKA_ENCRYPT, value: T },
    { type: pkcs11js.CKA_DECRYPT, value: T },
    ...extra,
  ]);
}

const value = (o) => h.attr(t.p11, session(), o, pkcs11js.CKA_VALUE);
const aad = Buffer.from('webcrypto');

test('generate and export: an extractable AES key is read out and matches node', () => {
  const { p11 } = t;
  // subtle.generateKey(..., extractable = false): PKCS#11 3.0 makes a secret key not
  // sensitive by default, but not extractable either, and the value stays inside.
  const kept = generateAes([]);
  assert.deepEqual(
    h.attrs(p11, session(), kept, [pkcs11js.CKA_SENSITIVE, pkcs11js.CKA_EXTRACTABLE]).map(h.bool),
    [false, false],
  );
  assert.equal(h.ckr(() => value(kept)), 'CKR_ATTRIBUTE_SENSITIVE');

  // extractable = true: subtle.exportKey('raw') is a read of CKA_VALUE.
  const key = generateAes([{ type: pkcs11js.CKA_EXTRACTABLE, value: T }]);
  const raw = value(key);
  assert.equal(raw.length, 32);
  const iv = crypto.randomBytes(12);
  const data = Buffer.from('generated on the token, opened by node');
  const sealed = tokenSeal(key, iv, aad, data);
  assert.deepEqual(sealed, nodeSeal(raw, iv, aad, data));
  assert.deepEqual(nodeOpen(raw, iv, aad, sealed), data);
});

test('import: an AES key and an EC public key made by node work on the token', () => {
  const { p11 } = t;
  const raw = crypto.randomBytes(32);
  const key = p11.C_CreateObject(session(), h.secretTemplate(pkcs11js.CKK_AES, [
    { type: pkcs11js.CKA_ENCRYPT, value: T },
    { type: pkcs11js.CKA_DECRYPT, value: T },
    { type: pkcs11js.CKA_VALUE, value: raw },
  ]));
  assert.equal(h.ulong(h.attr(p11, session(), key, pkcs11js.CKA_VALUE_LEN)), 32);
  const iv = crypto.randomBytes(12);
  const data = Buffer.from('sealed by node, opened on the token');
  assert.deepEqual(tokenOpen(key, iv, aad, nodeSeal(raw, iv, aad, data)), data);
  const forged = nodeSeal(raw, iv, aad, data);
  forged[forged.length - 1] ^= 1;
  assert.equal(h.ckr(() => tokenOpen(key, iv, aad, forged)), 'CKR_ENCRYPTED_DATA_INVALID');

  // subtle.importKey('raw', point, {name: 'ECDSA', namedCurve: 'P-256'}) then verify.
  const { publicKey, privateKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk = publicKey.export({ format: 'jwk' });
  const point = Buffer.concat([
    Buffer.from([4]),
    Buffer.from(jwk.x, 'base64url'),
    Buffer.from(jwk.y, 'base64url'),
  ]);
  const pub = p11.C_CreateObject(session(), [
    { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_PUBLIC_KEY },
    { type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_EC },
    { type: pkcs11js.CKA_TOKEN, value: F },
    { type: pkcs11js.CKA_VERIFY, value: T },
    { type: pkcs11js.CKA_EC_PARAMS, value: h.P256_PARAMS },
    { type: pkcs11js.CKA_EC_POINT, value: Buffer.concat([Buffer.from([4, 65]), point]) },
  ]);
  const message = Buffer.from('signed by node, verified on the token');
  const sig = crypto.sign('sha256', message, { key: privateKey, dsaEncoding: 'ieee-p1363' });
  p11.C_VerifyInit(session(), { mechanism: pkcs11js.CKM_ECDSA_SHA256 }, pub);
  assert.equal(p11.C_Verify(session(), message, sig), true);
  p11.C_VerifyInit(session(), { mechanism: pkcs11js.CKM_ECDSA_SHA256 }, pub);
  assert.equal(
    h.ckr(() => p11.C_Verify(session(), Buffer.from('another message'), sig)),
    'CKR_SIGNATURE_INVALID',
  );
});

test('wrap and unwrap with AES-KWP agree with node (RFC 5649)', () => {
  const { p11 } = t;
  const kwp = { mechanism: h.CKM_AES_KEY_WRAP_KWP };
  const kek = generateAes([
    { type: pkcs11js.CKA_EXTRACTABLE, value: T },
    { type: pkcs11js.CKA_WRAP, value: T },
    { type: pkcs11js.CKA_UNWRAP, value: T },
  ]);
  const kekValue = value(kek);
  const key = generateAes([{ type: pkcs11js.CKA_EXTRACTABLE, value: T }]);

  // subtle.wrapKey('raw', key, kek, 'AES-KW'): node unwraps it to the same value.
  const wrapped = p11.C_WrapKey(session(), kwp, kek, key, Buffer.alloc(64));
  const kwIv = Buffer.from('a65959a6', 'hex');
  const d = crypto.createDecipheriv('id-aes256-wrap-pad', kekValue, kwIv);
  assert.deepEqual(Buffer.concat([d.update(wrapped), d.final()]), value(key));

  // subtle.unwrapKey: a key wrapped by node comes in with the template's attributes.
  const inner = crypto.randomBytes(32);
  const c = crypto.createCipheriv('id-aes256-wrap-pad', kekValue, kwIv);
  const fromNode = Buffer.concat([c.update(inner), c.final()]);
  const template = h.secretTemplate(pkcs11js.CKK_AES, [
    { type: pkcs11js.CKA_ENCRYPT, value: T },
    { type: pkcs11js.CKA_DECRYPT, value: T },
    { type: pkcs11js.CKA_EXTRACTABLE, value: T },
  ]);
  const unwrapped = p11.C_UnwrapKey(session(), kwp, kek, fromNode, template);
  assert.deepEqual(value(unwrapped), inner);
  const iv = crypto.randomBytes(12);
  const data = Buffer.from('under the unwrapped key');
  assert.deepEqual(nodeOpen(inner, iv, aad, tokenSeal(unwrapped, iv, aad, data)), data);
  // A changed wrapped blob is refused and makes no key.
  const objects = h.find(p11, session(), []).length;
  const bad = Buffer.from(fromNode);
  bad[5] ^= 1;
  assert.match(
    h.ckr(() => p11.C_UnwrapKey(session(), kwp, kek, bad, template)),
    /^CKR_(WRAPPED_KEY_INVALID|ENCRYPTED_DATA_INVALID)$/,
  );
  assert.equal(h.find(p11, session(), []).length, objects);
});

test('sign: ECDSA P-256 and HMAC-SHA256 agree with node', () => {
  const { p11 } = t;
  const pair = p256Pair(pkcs11js.CKA_VERIFY, pkcs11js.CKA_SIGN);
  // subtle.exportKey('spki', publicKey): from CKA_EC_POINT.
  const point = h.attr(p11, session(), pair.publicKey, pkcs11js.CKA_EC_POINT);
  const pub = { key: h.p256PublicKey(h.ecPointRaw(point)), dsaEncoding: 'ieee-p1363' };
  const message = Buffer.from('webcrypto sign');
  p11.C_SignInit(session(), { mechanism: pkcs11js.CKM_ECDSA_SHA256 }, pair.privateKey);
  const sig = p11.C_Sign(session(), message, Buffer.alloc(64));
  assert.ok(crypto.verify('sha256', message, pub, sig));
  assert.ok(!crypto.verify('sha256', Buffer.from('x'), pub, sig));

  const secret = crypto.randomBytes(32);
  const hmacKey = p11.C_CreateObject(session(), h.secretTemplate(pkcs11js.CKK_GENERIC_SECRET, [
    { type: pkcs11js.CKA_SIGN, value: T },
    { type: pkcs11js.CKA_VALUE, value: secret },
  ]));
  p11.C_SignInit(session(), { mechanism: pkcs11js.CKM_SHA256_HMAC }, hmacKey);
  const mac = p11.C_Sign(session(), message, Buffer.alloc(32));
  assert.deepEqual(mac, crypto.createHmac('sha256', secret).update(message).digest());
});

test('derive: ECDH P-256 on the token equals node ECDH from the other side', () => {
  const { p11 } = t;
  const pair = p256Pair(null, pkcs11js.CKA_DERIVE);
  const tokenPoint = h.ecPointRaw(h.attr(p11, session(), pair.publicKey, pkcs11js.CKA_EC_POINT));
  const peer = crypto.createECDH('prime256v1');
  const peerPoint = peer.generateKeys();
  const derive = (publicData) =>
    p11.C_DeriveKey(
      session(),
      {
        mechanism: pkcs11js.CKM_ECDH1_DERIVE,
        parameter: { type: pkcs11js.CK_PARAMS_EC_DH, kdf: pkcs11js.CKD_NULL, publicData },
      },
      pair.privateKey,
      h.secretTemplate(pkcs11js.CKK_GENERIC_SECRET, [
        { type: pkcs11js.CKA_VALUE_LEN, value: 32 },
        { type: pkcs11js.CKA_SENSITIVE, value: F },
        { type: pkcs11js.CKA_EXTRACTABLE, value: T },
      ]),
    );
  const shared = value(derive(peerPoint));
  assert.equal(shared.length, 32);
  assert.deepEqual(shared, peer.computeSecret(tokenPoint));
  // A point that is not on the curve is refused and derives nothing.
  const objects = h.find(p11, session(), []).length;
  const offCurve = Buffer.from(peerPoint);
  offCurve[64] ^= 1;
  assert.match(
    h.ckr(() => derive(offCurve)),
    /^CKR_(DOMAIN_PARAMS_INVALID|MECHANISM_PARAM_INVALID|ARGUMENTS_BAD)$/,
  );
  assert.equal(h.find(p11, session(), []).length, objects);
});
