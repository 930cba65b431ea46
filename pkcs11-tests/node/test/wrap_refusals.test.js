'use strict';
// C_WrapKey refusals as a Node application meets them: each refused call returns its CKR_*
// code and changes nothing (the key keeps its attributes, no object appears), and the
// allowed wrap still works afterwards, byte-for-byte what node:crypto computes (RFC 5649).

const { test } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const h = require('./helpers');

const { pkcs11js } = h;
const t = h.tokenForFile('ecm-node-wrap');

const kwp = { mechanism: h.CKM_AES_KEY_WRAP_KWP };

function aes(value, extra) {
  return t.p11.C_CreateObject(t.session, h.secretTemplate(pkcs11js.CKK_AES, [
    { type: pkcs11js.CKA_VALUE, value },
    ...extra,
  ]));
}

const flagTypes = () => [
  pkcs11js.CKA_EXTRACTABLE,
  pkcs11js.CKA_SENSITIVE,
  pkcs11js.CKA_WRAP,
  pkcs11js.CKA_ALWAYS_SENSITIVE,
  pkcs11js.CKA_NEVER_EXTRACTABLE,
];

/** Runs a refused call and checks that its code is `code` and nothing changed. */
function refused(code, call, watched) {
  const { p11, session } = t;
  const objects = h.find(p11, session, []).length;
  const before = watched.map((o) => h.attrs(p11, session, o, flagTypes()));
  assert.equal(h.ckr(call), code);
  assert.equal(h.find(p11, session, []).length, objects, 'no object was made');
  assert.deepEqual(
    watched.map((o) => h.attrs(p11, session, o, flagTypes())),
    before,
    'the keys kept their attributes',
  );
}

test('C_WrapKey refusals change nothing; the allowed wrap equals RFC 5649', () => {
  const { p11, session } = t;
  const kekValue = crypto.randomBytes(32);
  const kek = aes(kekValue, [
    { type: pkcs11js.CKA_WRAP, value: true },
    { type: pkcs11js.CKA_UNWRAP, value: true },
  ]);
  const noWrap = aes(crypto.randomBytes(32), [
    { type: pkcs11js.CKA_WRAP, value: false },
    { type: pkcs11js.CKA_ENCRYPT, value: true },
  ]);
  const secretValue = crypto.randomBytes(24);
  const movable = aes(secretValue, [{ type: pkcs11js.CKA_EXTRACTABLE, value: true }]);
  const kept = aes(crypto.randomBytes(32), [{ type: pkcs11js.CKA_EXTRACTABLE, value: false }]);
  const out = () => Buffer.alloc(64);

  // An unextractable key never leaves, under any wrapping key.
  refused(
    'CKR_KEY_UNEXTRACTABLE',
    () => p11.C_WrapKey(session, kwp, kek, kept, out()),
    [kek, kept],
  );
  // ...and cannot be made extractable afterwards.
  refused(
    'CKR_ATTRIBUTE_READ_ONLY',
    () => p11.C_SetAttributeValue(session, kept, [{ type: pkcs11js.CKA_EXTRACTABLE, value: true }]),
    [kept],
  );
  // A key without CKA_WRAP wraps nothing, not even an extractable key.
  refused(
    'CKR_KEY_FUNCTION_NOT_PERMITTED',
    () => p11.C_WrapKey(session, kwp, noWrap, movable, out()),
    [noWrap, movable],
  );
  // A generated private key is not extractable by default.
  const pair = p11.C_GenerateKeyPair(
    session,
    { mechanism: pkcs11js.CKM_EC_KEY_PAIR_GEN },
    [
      { type: pkcs11js.CKA_TOKEN, value: false },
      { type: pkcs11js.CKA_EC_PARAMS, value: h.P256_PARAMS },
    ],
    [
      { type: pkcs11js.CKA_TOKEN, value: false },
      { type: pkcs11js.CKA_SIGN, value: true },
    ],
  );
  assert.equal(h.bool(h.attr(p11, session, pair.privateKey, pkcs11js.CKA_EXTRACTABLE)), false);
  refused(
    'CKR_KEY_UNEXTRACTABLE',
    () => p11.C_WrapKey(session, kwp, kek, pair.privateKey, out()),
    [kek],
  );
  // An EC public key is no AES wrapping key.
  assert.match(
    h.ckr(() => p11.C_WrapKey(session, kwp, pair.publicKey, movable, out())),
    /^CKR_(WRAPPING_KEY_TYPE_INCONSISTENT|KEY_FUNCTION_NOT_PERMITTED)$/,
  );
  // Handles that name nothing.
  const gone = aes(crypto.randomBytes(32), [{ type: pkcs11js.CKA_WRAP, value: true }]);
  p11.C_DestroyObject(session, gone);
  refused(
    'CKR_WRAPPING_KEY_HANDLE_INVALID',
    () => p11.C_WrapKey(session, kwp, gone, movable, out()),
    [movable],
  );
  refused('CKR_KEY_HANDLE_INVALID', () => p11.C_WrapKey(session, kwp, kek, gone, out()), [kek]);

  // The allowed wrap works and equals node:crypto's AES key wrap with padding (RFC 5649).
  const wrapped = p11.C_WrapKey(session, kwp, kek, movable, out());
  const rfc5649Iv = Buffer.from('a65959a6', 'hex');
  const cipher = crypto.createCipheriv('id-aes256-wrap-pad', kekValue, rfc5649Iv);
  const expected = Buffer.concat([cipher.update(secretValue), cipher.final()]);
  assert.deepEqual(wrapped, expected);
});
