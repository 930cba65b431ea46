'use strict';
// Shared set-up of the Node.js client suite. `node --test` runs every test file in its own
// process, so each file loads the module once, with its own fresh ECM_HSM_DIR (the module
// reads it at C_Initialize): the files never see each other's keys.
//
// The module is $ECM_HSM_MODULE, else target/debug/libecm_hsm.so of this repository.

const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const pkcs11js = require('pkcs11js');

const ROOT = path.resolve(__dirname, '..', '..', '..');
const SO_PIN = 'so-pin-1234';
const USER_PIN = 'user-pin-1';

// Vendor values of include/ecm_hsm.h (CKA_VENDOR_DEFINED | 0x45434D00 | n).
const CKA_ECM_BASE = 0x80000000 + 0x45434d00;
const ECM = {
  CKA_ECM_TIER: CKA_ECM_BASE + 0x01,
  CKA_ECM_TENANT: CKA_ECM_BASE + 0x02,
  CKA_ECM_KEY_VERSION: CKA_ECM_BASE + 0x03,
  CKA_ECM_KEY_STATE: CKA_ECM_BASE + 0x04,
  CKA_ECM_PARENT_ID: CKA_ECM_BASE + 0x06,
  CKT_ECM_MASTER: 1,
  CKT_ECM_KEK: 2,
  CKT_ECM_DEK: 3,
  CKS_ECM_ACTIVE: 1,
  CKS_ECM_DECRYPT_ONLY: 2,
};

// PKCS#11 3.0 values pkcs11js may not name.
const CKM_AES_KEY_WRAP_KWP = 0x210b;
const CKU_CONTEXT_SPECIFIC = 2;

// DER of the P-256 curve's OID (1.2.840.10045.3.1.7), the CKA_EC_PARAMS of a P-256 key.
const P256_PARAMS = Buffer.from('06082a8648ce3d030107', 'hex');

function modulePath() {
  return path.resolve(process.env.ECM_HSM_MODULE || path.join(ROOT, 'target/debug/libecm_hsm.so'));
}

/**
 * Loads the module on a fresh token directory, initializes the token of slot 0 and its user
 * PIN through PKCS#11, and returns { p11, slot, session, close } with `session` a R/W session
 * logged in as the user. `close()` finalizes and removes the directory.
 */
function openToken(label) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ecm-hsm-node-'));
  const settings = path.join(dir, 'ecm-hsm.toml');
  fs.writeFileSync(settings, 'test_settings = true\npin_kdf_iterations = 1000\n', { mode: 0o600 });
  fs.chmodSync(settings, 0o600); // a settings file others may write is refused
  process.env.ECM_HSM_DIR = dir;
  delete process.env.ECM_HSM_CONF; // the settings must come from the directory

  const p11 = new pkcs11js.PKCS11();
  p11.load(modulePath());
  p11.C_Initialize();
  const slot = p11.C_GetSlotList(false)[0];
  p11.C_InitToken(slot, SO_PIN, label.padEnd(32, ' '));
  const flags = pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION;
  const so = p11.C_OpenSession(slot, flags);
  p11.C_Login(so, pkcs11js.CKU_SO, SO_PIN);
  p11.C_InitPIN(so, USER_PIN);
  p11.C_Logout(so);
  p11.C_CloseSession(so);
  const session = p11.C_OpenSession(slot, flags);
  p11.C_Login(session, pkcs11js.CKU_USER, USER_PIN);
  return {
    p11,
    slot,
    session,
    close() {
      try {
        p11.C_Finalize();
      } finally {
        p11.close();
        fs.rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}

/**
 * The token of one test file: opened with openToken before the file's first test and closed
 * after its last. The object returned gains { p11, slot, session, close } when the `before`
 * hook runs, so the file's functions read `t.p11` and `t.session` when they are called.
 */
function tokenForFile(label) {
  const { before, after } = require('node:test');
  const t = {};
  before(() => Object.assign(t, openToken(label)));
  after(() => t.close && t.close());
  return t;
}

/** The template of a session (not token) secret key of `keyType`, then the `extra` attributes. */
function secretTemplate(keyType, extra) {
  return [
    { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY },
    { type: pkcs11js.CKA_KEY_TYPE, value: keyType },
    { type: pkcs11js.CKA_TOKEN, value: false },
    ...extra,
  ];
}

/** The CKR_* name a PKCS#11 call failed with (pkcs11js puts it first in the message). */
function ckr(fn) {
  try {
    fn();
  } catch (e) {
    const m = /CKR_[A-Z_]+/.exec(String(e && e.message));
    assert.ok(m, `not a PKCS#11 error: ${e}`);
    return m[0];
  }
  assert.fail('the call succeeded, a PKCS#11 error was expected');
}

function attrs(p11, session, handle, types) {
  const got = p11.C_GetAttributeValue(
    session,
    handle,
    types.map((type) => ({ type })),
  );
  return got.map((a) => a.value);
}

function attr(p11, session, handle, type) {
  return attrs(p11, session, handle, [type])[0];
}

/** A CK_ULONG attribute value (native byte order, 8 bytes on 64-bit Linux). */
function ulong(buf) {
  assert.equal(buf.length, 8, 'CK_ULONG is 8 bytes here');
  return Number(buf.readBigUInt64LE(0));
}

function ulongBytes(v) {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(v));
  return b;
}

function bool(buf) {
  return buf.length === 1 && buf[0] !== 0;
}

function find(p11, session, template) {
  p11.C_FindObjectsInit(session, template);
  try {
    const out = [];
    for (;;) {
      const batch = p11.C_FindObjects(session, 16);
      if (batch.length === 0) return out;
      out.push(...batch);
    }
  } finally {
    p11.C_FindObjectsFinal(session);
  }
}

/** The raw uncompressed point inside a CKA_EC_POINT (a DER OCTET STRING of 65 bytes). */
function ecPointRaw(der) {
  assert.equal(der[0], 0x04, 'CKA_EC_POINT is an OCTET STRING');
  assert.equal(der[1], 65);
  assert.equal(der.length, 67);
  assert.equal(der[2], 0x04, 'an uncompressed point');
  return der.subarray(2);
}

/** A node:crypto public KeyObject for a P-256 point (raw 0x04||X||Y). */
function p256PublicKey(raw) {
  const crypto = require('node:crypto');
  return crypto.createPublicKey({
    key: {
      kty: 'EC',
      crv: 'P-256',
      x: raw.subarray(1, 33).toString('base64url'),
      y: raw.subarray(33, 65).toString('base64url'),
    },
    format: 'jwk',
  });
}

module.exports = {
  pkcs11js,
  ECM,
  CKM_AES_KEY_WRAP_KWP,
  CKU_CONTEXT_SPECIFIC,
  P256_PARAMS,
  USER_PIN,
  openToken,
  tokenForFile,
  secretTemplate,
  ckr,
  attr,
  attrs,
  ulong,
  ulongBytes,
  bool,
  find,
  ecPointRaw,
  p256PublicKey,
};
