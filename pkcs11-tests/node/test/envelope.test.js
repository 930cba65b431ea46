'use strict';
// The envelope flow of the product's seed, through plain PKCS#11 from Node: a master key, a
// KEK and per-tenant DEKs made by C_GenerateKey with the vendor attributes, each DEK leaving
// the token only wrapped (RFC 5649, CKM_AES_KEY_WRAP_KWP) by the KEK, AES-GCM records under a
// tenant's DEK, then rotation of the DEK and of the KEK with the old records still opening.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const h = require('./helpers');

const { pkcs11js, ECM } = h;
const t = h.tokenForFile('ecm-node-envelope');

const tierAttr = (tier) => ({ type: ECM.CKA_ECM_TIER, value: h.ulongBytes(tier) });
const tenantAttr = (name) => ({ type: ECM.CKA_ECM_TENANT, value: Buffer.from(name) });

function generate(template) {
  return t.p11.C_GenerateKey(t.session, { mechanism: pkcs11js.CKM_AES_KEY_GEN }, template);
}

function gcm(iv, aad) {
  return {
    mechanism: pkcs11js.CKM_AES_GCM,
    parameter: { type: pkcs11js.CK_PARAMS_AES_GCM, iv, ivBits: 96, aad, tagBits: 128 },
  };
}

/** A record as the seed stores it: IV, ciphertext||tag, bound to its tenant by the AAD. */
function seal(key, tenant, plaintext) {
  const iv = crypto.randomBytes(12);
  const { p11, session } = t;
  p11.C_EncryptInit(session, gcm(iv, Buffer.from(tenant)), key);
  const body = p11.C_Encrypt(session, plaintext, Buffer.alloc(plaintext.length + 16));
  return { iv, body };
}

function open(key, tenant, record) {
  const { p11, session } = t;
  p11.C_DecryptInit(session, gcm(record.iv, Buffer.from(tenant)), key);
  return p11.C_Decrypt(session, record.body, Buffer.alloc(record.body.length));
}

function label(o) {
  return h.attr(t.p11, t.session, o, pkcs11js.CKA_LABEL).toString();
}

function version(o) {
  return h.ulong(h.attr(t.p11, t.session, o, ECM.CKA_ECM_KEY_VERSION));
}

function state(o) {
  return h.ulong(h.attr(t.p11, t.session, o, ECM.CKA_ECM_KEY_STATE));
}

function currentDek(tenant) {
  return h.find(t.p11, t.session, [
    tierAttr(ECM.CKT_ECM_DEK),
    tenantAttr(tenant),
    { type: ECM.CKA_ECM_KEY_STATE, value: h.ulongBytes(ECM.CKS_ECM_ACTIVE) },
  ]);
}

const kwp = { mechanism: h.CKM_AES_KEY_WRAP_KWP };

test('envelope: hierarchy, records, wrapped DEKs and rotation', () => {
  const { p11, session } = t;
  const master = generate([tierAttr(ECM.CKT_ECM_MASTER)]);
  const kek = generate([tierAttr(ECM.CKT_ECM_KEK)]);
  const acme = generate([tierAttr(ECM.CKT_ECM_DEK), tenantAttr('acme')]);
  const globex = generate([tierAttr(ECM.CKT_ECM_DEK), tenantAttr('globex')]);
  assert.deepEqual(
    [master, kek, acme, globex].map(label),
    ['master-v1', 'kek-v1', 'dek-acme-v1', 'dek-globex-v1'],
  );
  for (const o of [master, kek, acme, globex]) {
    assert.equal(version(o), 1);
    assert.equal(state(o), ECM.CKS_ECM_ACTIVE);
  }
  const uid = (o) => h.attr(p11, session, o, pkcs11js.CKA_UNIQUE_ID || 0x4);
  assert.deepEqual(h.attr(p11, session, acme, ECM.CKA_ECM_PARENT_ID), uid(kek));
  assert.deepEqual(currentDek('acme'), [acme]);

  // The master key is never extractable; no key value of the hierarchy can be read.
  assert.equal(h.bool(h.attr(p11, session, master, pkcs11js.CKA_EXTRACTABLE)), false);
  for (const o of [master, kek, acme]) {
    const read = () => h.attr(p11, session, o, pkcs11js.CKA_VALUE);
    assert.equal(h.ckr(read), 'CKR_ATTRIBUTE_SENSITIVE');
  }

  // A DEK leaves the token only wrapped by the KEK (KWP: 32-byte key + 8 = 40 bytes).
  const wrapped = p11.C_WrapKey(session, kwp, kek, acme, Buffer.alloc(64));
  assert.equal(wrapped.length, 40);
  assert.equal(
    h.ckr(() => p11.C_WrapKey(session, kwp, master, acme, Buffer.alloc(64))),
    'CKR_KEY_FUNCTION_NOT_PERMITTED',
  );
  // ...and it never comes back in by C_UnwrapKey under a key of the hierarchy.
  const before = h.find(p11, session, []).length;
  const back = () =>
    p11.C_UnwrapKey(session, kwp, kek, wrapped, [
      { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY },
      { type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_AES },
    ]);
  assert.equal(h.ckr(back), 'CKR_KEY_FUNCTION_NOT_PERMITTED');
  assert.equal(h.find(p11, session, []).length, before, 'the refused unwrap made no object');

  // Records under each tenant's DEK; a record does not open under another tenant's DEK,
  // nor with a changed byte.
  const text = Buffer.from('tenant acme: invoice 4711, 1200 EUR');
  const r1 = seal(acme, 'acme', text);
  assert.equal(r1.body.length, text.length + 16);
  assert.notDeepEqual(r1.body.subarray(0, text.length), text);
  assert.deepEqual(open(acme, 'acme', r1), text);
  const rg = seal(globex, 'globex', Buffer.from('globex record'));
  assert.deepEqual(open(globex, 'globex', rg), Buffer.from('globex record'));
  assert.equal(h.ckr(() => open(globex, 'acme', r1)), 'CKR_ENCRYPTED_DATA_INVALID');
  const forged = { iv: r1.iv, body: Buffer.from(r1.body) };
  forged.body[0] ^= 1;
  assert.equal(h.ckr(() => open(acme, 'acme', forged)), 'CKR_ENCRYPTED_DATA_INVALID');
  // Only the DEK encrypts data.
  assert.equal(h.ckr(() => seal(kek, 'acme', text)), 'CKR_KEY_FUNCTION_NOT_PERMITTED');

  // DEK rotation: generating again gives version 2; version 1 only decrypts.
  const acme2 = generate([tierAttr(ECM.CKT_ECM_DEK), tenantAttr('acme')]);
  assert.notEqual(acme2, acme);
  assert.equal(label(acme2), 'dek-acme-v2');
  assert.equal(version(acme2), 2);
  assert.equal(state(acme2), ECM.CKS_ECM_ACTIVE);
  assert.equal(state(acme), ECM.CKS_ECM_DECRYPT_ONLY);
  assert.notDeepEqual(
    h.attr(p11, session, acme2, pkcs11js.CKA_ID),
    h.attr(p11, session, acme, pkcs11js.CKA_ID),
  );
  assert.deepEqual(currentDek('acme'), [acme2]);
  assert.deepEqual(open(acme, 'acme', r1), text, 'old records still open');
  assert.equal(h.ckr(() => seal(acme, 'acme', text)), 'CKR_KEY_FUNCTION_NOT_PERMITTED');
  const r2 = seal(acme2, 'acme', Buffer.from('after rotation'));
  assert.deepEqual(open(acme2, 'acme', r2), Buffer.from('after rotation'));
  assert.equal(h.ckr(() => open(acme, 'acme', r2)), 'CKR_ENCRYPTED_DATA_INVALID');
  assert.equal(state(globex), ECM.CKS_ECM_ACTIVE, 'another tenant is not rotated');

  // KEK rotation rewraps the DEKs under the new KEK; every record still opens.
  const kek2 = generate([tierAttr(ECM.CKT_ECM_KEK)]);
  assert.equal(label(kek2), 'kek-v2');
  assert.equal(state(kek), ECM.CKS_ECM_DECRYPT_ONLY);
  for (const dek of [acme, acme2, globex]) {
    assert.deepEqual(h.attr(p11, session, dek, ECM.CKA_ECM_PARENT_ID), uid(kek2));
  }
  assert.deepEqual(open(acme, 'acme', r1), text);
  assert.deepEqual(open(acme2, 'acme', r2), Buffer.from('after rotation'));
  assert.deepEqual(open(globex, 'globex', rg), Buffer.from('globex record'));
  assert.equal(p11.C_WrapKey(session, kwp, kek2, acme2, Buffer.alloc(64)).length, 40);
  assert.equal(
    h.ckr(() => p11.C_WrapKey(session, kwp, kek, acme2, Buffer.alloc(64))),
    'CKR_KEY_FUNCTION_NOT_PERMITTED',
    'a decrypt-only KEK unwraps but never wraps',
  );
});
