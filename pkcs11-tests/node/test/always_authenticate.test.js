'use strict';
// Keys with CKA_ALWAYS_AUTHENTICATE (PKCS#11 3.0, private key attributes): the user, though
// logged in, gives the PIN again for each use — C_Login(CKU_CONTEXT_SPECIFIC) right after
// C_SignInit — and that authorization covers the one operation only. Without it C_Sign is
// CKR_USER_NOT_LOGGED_IN and no signature comes out.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const h = require('./helpers');

const { pkcs11js } = h;
const t = h.tokenForFile('ecm-node-always-auth');

const message = Buffer.from('needs the PIN every time');
const ecdsa = { mechanism: pkcs11js.CKM_ECDSA_SHA256 };

function pair(alwaysAuthenticate) {
  return t.p11.C_GenerateKeyPair(
    t.session,
    { mechanism: pkcs11js.CKM_EC_KEY_PAIR_GEN },
    [
      { type: pkcs11js.CKA_TOKEN, value: false },
      { type: pkcs11js.CKA_EC_PARAMS, value: h.P256_PARAMS },
    ],
    [
      { type: pkcs11js.CKA_TOKEN, value: false },
      { type: pkcs11js.CKA_PRIVATE, value: true },
      { type: pkcs11js.CKA_SIGN, value: true },
      { type: pkcs11js.CKA_ALWAYS_AUTHENTICATE, value: alwaysAuthenticate },
    ],
  );
}

function verifier(keys) {
  const point = h.ecPointRaw(h.attr(t.p11, t.session, keys.publicKey, pkcs11js.CKA_EC_POINT));
  return { key: h.p256PublicKey(point), dsaEncoding: 'ieee-p1363' };
}

const contextLogin = (pin) => t.p11.C_Login(t.session, h.CKU_CONTEXT_SPECIFIC, pin);
const sign = () => t.p11.C_Sign(t.session, message, Buffer.alloc(64));

test('a key without CKA_ALWAYS_AUTHENTICATE signs on the session login alone', () => {
  const keys = pair(false);
  t.p11.C_SignInit(t.session, ecdsa, keys.privateKey);
  assert.ok(crypto.verify('sha256', message, verifier(keys), sign()));
});

test('CKA_ALWAYS_AUTHENTICATE: each signature needs C_Login(CKU_CONTEXT_SPECIFIC)', () => {
  const { p11, session } = t;
  const keys = pair(true);
  const flag = h.attr(p11, session, keys.privateKey, pkcs11js.CKA_ALWAYS_AUTHENTICATE);
  assert.equal(h.bool(flag), true);
  const pub = verifier(keys);

  // No context-specific login: no signature (the operation keeps waiting for the PIN, as it
  // waits for in-band approvers: the token's choice, README "CKA_ALWAYS_AUTHENTICATE").
  p11.C_SignInit(session, ecdsa, keys.privateKey);
  assert.equal(h.ckr(sign), 'CKR_USER_NOT_LOGGED_IN');

  // A wrong PIN is refused and does not authorize the operation.
  assert.equal(h.ckr(() => contextLogin('wrong-pin')), 'CKR_PIN_INCORRECT');
  assert.equal(h.ckr(sign), 'CKR_USER_NOT_LOGGED_IN');

  // The right PIN: one signature, valid for node:crypto.
  contextLogin(h.USER_PIN);
  const sig = sign();
  assert.ok(crypto.verify('sha256', message, pub, sig));

  // That authorization was for that operation only.
  p11.C_SignInit(session, ecdsa, keys.privateKey);
  assert.equal(h.ckr(sign), 'CKR_USER_NOT_LOGGED_IN');
  contextLogin(h.USER_PIN);
  assert.ok(crypto.verify('sha256', message, pub, sign()));

  // A context-specific login with no operation to authorize is refused.
  assert.equal(h.ckr(() => contextLogin(h.USER_PIN)), 'CKR_OPERATION_NOT_INITIALIZED');

  // The session is still the user's: the key without the attribute still signs.
  const plain = pair(false);
  p11.C_SignInit(session, ecdsa, plain.privateKey);
  assert.ok(crypto.verify('sha256', message, verifier(plain), sign()));
});
