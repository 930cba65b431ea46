"""ecm-hsm driven by python-pkcs11, a PKCS#11 client written independently of the module.

Each test asserts behaviour that a broken module would fail: round trips, agreement between
two keys, refusal of tampered data, and (where the `cryptography` package is installed)
agreement with an independent implementation of the same algorithm.
"""

import hashlib

import pkcs11
import pytest
from pkcs11 import (
    KDF,
    MGF,
    Attribute,
    KeyType,
    Mechanism,
    MechanismFlag,
    ObjectClass,
)
from pkcs11.exceptions import (
    AttributeSensitive,
    EncryptedDataInvalid,
    KeyUnextractable,
    NoSuchKey,
    PKCS11Error,
    WrappedKeyInvalid,
)
from pkcs11.mechanisms import GCMParams
from pkcs11.util.ec import (
    decode_ecdsa_signature,
    encode_ec_public_key,
    encode_ecdsa_signature,
    encode_named_curve_parameters,
)
from pkcs11.util.rsa import encode_rsa_public_key

MESSAGE = b"envelope: master key -> KEK -> per-tenant DEK" * 3

# CKR_ENCRYPTED_DATA_INVALID (2.40) or CKR_AEAD_DECRYPT_FAILED (3.0, 0x35) for a bad tag.
GCM_TAG_ERRORS = (EncryptedDataInvalid,)


def _flip(data: bytes, index: int) -> bytes:
    b = bytearray(data)
    b[index] ^= 0x01
    return bytes(b)


def _ec_keypair(session, label, store=False):
    params = session.create_domain_parameters(
        KeyType.EC,
        {Attribute.EC_PARAMS: encode_named_curve_parameters("secp256r1")},
        local=True,
    )
    return params.generate_keypair(label=label, store=store)


def _gcm_tag_failure(exc: PKCS11Error) -> bool:
    """True for the errors a failed GCM tag check may map to."""
    if isinstance(exc, GCM_TAG_ERRORS):
        return True
    # python-pkcs11 has no class for CKR_AEAD_DECRYPT_FAILED (0x35): it raises a plain
    # PKCS11Error("Unmapped error code 0x35").
    return type(exc) is PKCS11Error and str(exc).endswith(" 0x35")


# ------------------------------------------------------------------ token and mechanisms


def test_token_is_initialized_and_lists_mechanisms(token):
    assert token.label == "ecm-pytest"
    flags = token.flags
    assert flags & pkcs11.TokenFlag.TOKEN_INITIALIZED
    assert flags & pkcs11.TokenFlag.USER_PIN_INITIALIZED
    assert flags & pkcs11.TokenFlag.LOGIN_REQUIRED
    mechanisms = token.slot.get_mechanisms()
    for m in (
        Mechanism.AES_GCM,
        Mechanism.AES_KEY_WRAP_KWP,
        Mechanism.SHA256_RSA_PKCS,
        Mechanism.SHA256_RSA_PKCS_PSS,
        Mechanism.RSA_PKCS_OAEP,
        Mechanism.ECDSA_SHA256,
        Mechanism.ECDH1_DERIVE,
        Mechanism.EC_KEY_PAIR_GEN,
    ):
        assert m in mechanisms, m


def test_digest_and_random(session):
    assert session.digest(MESSAGE, mechanism=Mechanism.SHA256) == hashlib.sha256(MESSAGE).digest()
    a = session.generate_random(256)
    b = session.generate_random(256)
    assert len(a) == 32 and len(b) == 32 and a != b


# ------------------------------------------------------------------ AES-GCM


def test_aes_gcm_round_trip_and_tamper(session, unique):
    key = session.generate_key(KeyType.AES, 256, label=unique("gcm"))
    assert key.key_length == 256
    iv = session.generate_random(96)
    aad = b"tenant-42"
    params = GCMParams(iv, aad, 128)

    ct = key.encrypt(MESSAGE, mechanism=Mechanism.AES_GCM, mechanism_param=params)
    assert len(ct) == len(MESSAGE) + 16  # ciphertext || 128-bit tag
    assert MESSAGE not in ct
    assert key.decrypt(ct, mechanism=Mechanism.AES_GCM, mechanism_param=params) == MESSAGE

    # A flipped bit in the ciphertext, in the tag, or other AAD must all be refused.
    for bad_ct, bad_params in (
        (_flip(ct, 0), params),
        (_flip(ct, len(ct) - 1), params),
        (ct, GCMParams(iv, b"tenant-43", 128)),
        (ct, GCMParams(_flip(iv, 0), aad, 128)),
    ):
        with pytest.raises(PKCS11Error) as info:
            key.decrypt(bad_ct, mechanism=Mechanism.AES_GCM, mechanism_param=bad_params)
        assert _gcm_tag_failure(info.value), repr(info.value)

    # The session is usable after a failed decryption.
    assert key.decrypt(ct, mechanism=Mechanism.AES_GCM, mechanism_param=params) == MESSAGE


# ------------------------------------------------------------------ AES key wrap (KWP)


def test_aes_kwp_wrap_unwrap(session, unique):
    assert Mechanism.AES_KEY_WRAP_KWP == 0x210B
    kek = session.generate_key(KeyType.AES, 256, label=unique("kek"))
    dek = session.generate_key(
        KeyType.AES, 256, label=unique("dek"), template={Attribute.EXTRACTABLE: True}
    )

    wrapped = kek.wrap_key(dek, mechanism=Mechanism.AES_KEY_WRAP_KWP)
    assert len(wrapped) == 40  # RFC 5649: 32-byte key + 8-byte integrity block

    copy = kek.unwrap_key(
        ObjectClass.SECRET_KEY,
        KeyType.AES,
        wrapped,
        label=unique("dek-copy"),
        mechanism=Mechanism.AES_KEY_WRAP_KWP,
    )
    assert copy[Attribute.VALUE_LEN] == 32
    assert copy[Attribute.CLASS] == ObjectClass.SECRET_KEY
    assert copy[Attribute.KEY_TYPE] == KeyType.AES

    block = bytes(range(32))
    iv = bytes(16)
    for mech, param in ((Mechanism.AES_ECB, None), (Mechanism.AES_CBC, iv)):
        a = dek.encrypt(block, mechanism=mech, mechanism_param=param)
        b = copy.encrypt(block, mechanism=mech, mechanism_param=param)
        assert a == b and a != block

    # A different key encrypts differently (so the equality above means something).
    other = session.generate_key(KeyType.AES, 256, label=unique("other"))
    assert other.encrypt(block, mechanism=Mechanism.AES_ECB) != dek.encrypt(
        block, mechanism=Mechanism.AES_ECB
    )

    # A tampered blob does not unwrap.
    with pytest.raises((WrappedKeyInvalid, EncryptedDataInvalid)):
        kek.unwrap_key(
            ObjectClass.SECRET_KEY,
            KeyType.AES,
            _flip(wrapped, 5),
            label=unique("bad"),
            mechanism=Mechanism.AES_KEY_WRAP_KWP,
        )


def test_wrap_refuses_unextractable_key(session, unique):
    kek = session.generate_key(KeyType.AES, 256, label=unique("kek"))
    locked = session.generate_key(KeyType.AES, 128, label=unique("locked"))  # EXTRACTABLE false
    assert locked[Attribute.EXTRACTABLE] is False
    with pytest.raises(KeyUnextractable):
        kek.wrap_key(locked, mechanism=Mechanism.AES_KEY_WRAP_KWP)


# ------------------------------------------------------------------ RSA


@pytest.fixture
def rsa_pair(session, unique):
    return session.generate_keypair(KeyType.RSA, 2048, label=unique("rsa"))


def test_rsa_generate_2048(rsa_pair):
    public, private = rsa_pair
    assert public.key_length == 2048
    assert len(public[Attribute.MODULUS]) == 256
    assert private[Attribute.SENSITIVE] is True
    with pytest.raises(AttributeSensitive):
        private[Attribute.PRIVATE_EXPONENT]


def test_rsa_pkcs1_sign_verify(rsa_pair):
    public, private = rsa_pair
    sig = private.sign(MESSAGE, mechanism=Mechanism.SHA256_RSA_PKCS)
    assert len(sig) == 256
    assert sig == private.sign(MESSAGE, mechanism=Mechanism.SHA256_RSA_PKCS)  # deterministic
    assert public.verify(MESSAGE, sig, mechanism=Mechanism.SHA256_RSA_PKCS)
    assert not public.verify(MESSAGE + b"!", sig, mechanism=Mechanism.SHA256_RSA_PKCS)
    assert not public.verify(MESSAGE, _flip(sig, 100), mechanism=Mechanism.SHA256_RSA_PKCS)


def test_rsa_pss_sign_verify(rsa_pair):
    public, private = rsa_pair
    pss = (Mechanism.SHA256, MGF.SHA256, 32)
    sig = private.sign(MESSAGE, mechanism=Mechanism.SHA256_RSA_PKCS_PSS, mechanism_param=pss)
    assert len(sig) == 256
    sig2 = private.sign(MESSAGE, mechanism=Mechanism.SHA256_RSA_PKCS_PSS, mechanism_param=pss)
    assert sig != sig2  # random salt
    for s in (sig, sig2):
        assert public.verify(
            MESSAGE, s, mechanism=Mechanism.SHA256_RSA_PKCS_PSS, mechanism_param=pss
        )
    assert not public.verify(
        MESSAGE[:-1], sig, mechanism=Mechanism.SHA256_RSA_PKCS_PSS, mechanism_param=pss
    )
    # A PSS signature is not a PKCS#1 v1.5 signature.
    assert not public.verify(MESSAGE, sig, mechanism=Mechanism.SHA256_RSA_PKCS)


def test_rsa_oaep_sha256(rsa_pair):
    public, private = rsa_pair
    oaep = (Mechanism.SHA256, MGF.SHA256, None)
    secret = b"a 32-byte data encryption key!!!"
    ct = public.encrypt(secret, mechanism=Mechanism.RSA_PKCS_OAEP, mechanism_param=oaep)
    assert len(ct) == 256
    ct2 = public.encrypt(secret, mechanism=Mechanism.RSA_PKCS_OAEP, mechanism_param=oaep)
    assert ct != ct2  # randomized padding
    assert private.decrypt(ct, mechanism=Mechanism.RSA_PKCS_OAEP, mechanism_param=oaep) == secret
    assert private.decrypt(ct2, mechanism=Mechanism.RSA_PKCS_OAEP, mechanism_param=oaep) == secret
    with pytest.raises(PKCS11Error):
        private.decrypt(_flip(ct, 17), mechanism=Mechanism.RSA_PKCS_OAEP, mechanism_param=oaep)
    # Decrypting with the wrong hash must not give the plaintext back.
    sha1 = (Mechanism.SHA_1, MGF.SHA1, None)
    with pytest.raises(PKCS11Error):
        private.decrypt(ct, mechanism=Mechanism.RSA_PKCS_OAEP, mechanism_param=sha1)


# ------------------------------------------------------------------ EC


def test_ec_p256_ecdsa(session, unique):
    public, private = _ec_keypair(session, unique("ec"))
    assert public[Attribute.KEY_TYPE] == KeyType.EC
    assert public[Attribute.EC_PARAMS] == encode_named_curve_parameters("secp256r1")
    point = public[Attribute.EC_POINT]
    # DER OCTET STRING around an uncompressed point: 04 41 04 X(32) Y(32)
    assert len(point) == 67 and point[:3] == b"\x04\x41\x04"

    sig = private.sign(MESSAGE, mechanism=Mechanism.ECDSA_SHA256)
    assert len(sig) == 64  # r || s
    assert public.verify(MESSAGE, sig, mechanism=Mechanism.ECDSA_SHA256)
    assert not public.verify(MESSAGE + b"x", sig, mechanism=Mechanism.ECDSA_SHA256)
    assert not public.verify(MESSAGE, _flip(sig, 40), mechanism=Mechanism.ECDSA_SHA256)

    # Raw ECDSA over a digest made on the host matches ECDSA_SHA256.
    digest = hashlib.sha256(MESSAGE).digest()
    raw = private.sign(digest, mechanism=Mechanism.ECDSA)
    assert public.verify(MESSAGE, raw, mechanism=Mechanism.ECDSA_SHA256)
    assert public.verify(digest, sig, mechanism=Mechanism.ECDSA)


def test_ecdh_p256_both_sides_agree(session, unique):
    alice_pub, alice_priv = _ec_keypair(session, unique("alice"))
    bob_pub, bob_priv = _ec_keypair(session, unique("bob"))
    assert alice_priv[Attribute.DERIVE] is True

    def derive(private, peer_public, label):
        return private.derive_key(
            KeyType.GENERIC_SECRET,
            256,
            label=label,
            capabilities=MechanismFlag.SIGN | MechanismFlag.VERIFY,
            mechanism=Mechanism.ECDH1_DERIVE,
            mechanism_param=(KDF.NULL, None, peer_public[Attribute.EC_POINT]),
        )

    k_alice = derive(alice_priv, bob_pub, unique("ab"))
    k_bob = derive(bob_priv, alice_pub, unique("ba"))
    assert k_alice[Attribute.VALUE_LEN] == 32 and k_bob[Attribute.VALUE_LEN] == 32

    mac_a = k_alice.sign(MESSAGE, mechanism=Mechanism.SHA256_HMAC)
    mac_b = k_bob.sign(MESSAGE, mechanism=Mechanism.SHA256_HMAC)
    assert len(mac_a) == 32 and mac_a == mac_b
    assert k_bob.verify(MESSAGE, mac_a, mechanism=Mechanism.SHA256_HMAC)

    # A third party's key gives another secret.
    carol_pub, _ = _ec_keypair(session, unique("carol"))
    k_other = derive(alice_priv, carol_pub, unique("ac"))
    assert k_other.sign(MESSAGE, mechanism=Mechanism.SHA256_HMAC) != mac_a

    # The same agreement can also yield an AES key on each side.
    aes_a = alice_priv.derive_key(
        KeyType.AES, 128, mechanism=Mechanism.ECDH1_DERIVE,
        mechanism_param=(KDF.NULL, None, bob_pub[Attribute.EC_POINT]),
    )
    aes_b = bob_priv.derive_key(
        KeyType.AES, 128, mechanism=Mechanism.ECDH1_DERIVE,
        mechanism_param=(KDF.NULL, None, alice_pub[Attribute.EC_POINT]),
    )
    block = b"sixteen byte blk"
    assert aes_a.encrypt(block, mechanism=Mechanism.AES_ECB) == aes_b.encrypt(
        block, mechanism=Mechanism.AES_ECB
    )


# ------------------------------------------------------------------ finding objects


def test_find_by_label_and_id(session, unique):
    label = unique("findme")
    key_id = bytes.fromhex("c0ffee") + unique("id").encode()
    key = session.generate_key(KeyType.AES, 128, label=label, id=key_id, store=True)
    pair_id = unique("pair").encode()
    pub, priv = _ec_keypair(session, unique("ecfind"), store=False)
    pub[Attribute.ID] = pair_id
    priv[Attribute.ID] = pair_id
    try:
        found = session.get_key(label=label)
        assert found[Attribute.ID] == key_id
        assert found[Attribute.TOKEN] is True
        assert session.get_key(id=key_id)[Attribute.LABEL] == label
        assert session.get_key(object_class=ObjectClass.SECRET_KEY, label=label).handle == key.handle

        by_id = list(session.get_objects({Attribute.ID: key_id}))
        assert len(by_id) == 1 and by_id[0][Attribute.LABEL] == label

        pair = list(session.get_objects({Attribute.ID: pair_id}))
        classes = sorted(o[Attribute.CLASS] for o in pair)
        assert classes == sorted([ObjectClass.PUBLIC_KEY, ObjectClass.PRIVATE_KEY])
        assert session.get_key(object_class=ObjectClass.PRIVATE_KEY, id=pair_id).handle == priv.handle

        with pytest.raises(NoSuchKey):
            session.get_key(label=unique("absent"))
        assert list(session.get_objects({Attribute.ID: b"\x00no-such-id"})) == []
    finally:
        key.destroy()
    with pytest.raises(NoSuchKey):
        session.get_key(label=label)


def test_token_key_persists_across_sessions(token, user_pin, unique):
    label = unique("persist")
    with token.open(rw=True, user_pin=user_pin) as s:
        key = s.generate_key(KeyType.AES, 256, label=label, store=True)
        iv = bytes(12)
        ct = key.encrypt(MESSAGE, mechanism=Mechanism.AES_GCM, mechanism_param=GCMParams(iv))
        session_key = s.generate_key(KeyType.AES, 128, label=label + "-volatile")
    with token.open(rw=True, user_pin=user_pin) as s:
        key = s.get_key(label=label)
        assert key.decrypt(ct, mechanism=Mechanism.AES_GCM, mechanism_param=GCMParams(iv)) == MESSAGE
        with pytest.raises(NoSuchKey):  # session objects die with their session
            s.get_key(label=label + "-volatile")
        key.destroy()
    del session_key


# ------------------------------------------------------------------ sensitive values


def test_sensitive_value_is_refused(session, unique):
    key = session.generate_key(KeyType.AES, 256, label=unique("sensitive"))
    assert key[Attribute.SENSITIVE] is True
    with pytest.raises(AttributeSensitive):
        key[Attribute.VALUE]

    _, ec_priv = _ec_keypair(session, unique("ecsens"))
    with pytest.raises(AttributeSensitive):
        ec_priv[Attribute.VALUE]

    # SENSITIVE cannot be turned off again.
    with pytest.raises(PKCS11Error):
        key[Attribute.SENSITIVE] = False

    # Contrast: a non-sensitive, extractable key's value is readable, and it is the key.
    plain = session.generate_key(
        KeyType.AES,
        256,
        label=unique("plain"),
        template={Attribute.SENSITIVE: False, Attribute.EXTRACTABLE: True},
    )
    value = plain[Attribute.VALUE]
    assert len(value) == 32
    imported = session.create_object(
        {
            Attribute.CLASS: ObjectClass.SECRET_KEY,
            Attribute.KEY_TYPE: KeyType.AES,
            Attribute.VALUE: value,
            Attribute.ENCRYPT: True,
            Attribute.TOKEN: False,
        }
    )
    block = bytes(16)
    assert imported.encrypt(block, mechanism=Mechanism.AES_ECB) == plain.encrypt(
        block, mechanism=Mechanism.AES_ECB
    )


# ------------------------------------------------------------------ cross-checks with `cryptography`


@pytest.fixture
def crypto():
    return pytest.importorskip("cryptography.hazmat.primitives.serialization").__name__


def test_ecdsa_signature_verifies_with_cryptography(session, unique, crypto):
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import load_der_public_key

    public, private = _ec_keypair(session, unique("ec-x"))
    host_key = load_der_public_key(encode_ec_public_key(public))
    assert isinstance(host_key, ec.EllipticCurvePublicKey)
    assert host_key.curve.name == "secp256r1"

    sig = private.sign(MESSAGE, mechanism=Mechanism.ECDSA_SHA256)
    host_key.verify(encode_ecdsa_signature(sig), MESSAGE, ec.ECDSA(hashes.SHA256()))
    with pytest.raises(InvalidSignature):
        host_key.verify(encode_ecdsa_signature(sig), MESSAGE + b"x", ec.ECDSA(hashes.SHA256()))

    # And the other way: a host signature verifies on the token (public key imported by value).
    host_priv = ec.generate_private_key(ec.SECP256R1())
    host_sig = decode_ecdsa_signature(host_priv.sign(MESSAGE, ec.ECDSA(hashes.SHA256())))
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    point = host_priv.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    imported = session.create_object(
        {
            Attribute.CLASS: ObjectClass.PUBLIC_KEY,
            Attribute.KEY_TYPE: KeyType.EC,
            Attribute.EC_PARAMS: encode_named_curve_parameters("secp256r1"),
            Attribute.EC_POINT: b"\x04\x41" + point,
            Attribute.VERIFY: True,
            Attribute.TOKEN: False,
        }
    )
    assert imported.verify(MESSAGE, host_sig, mechanism=Mechanism.ECDSA_SHA256)
    assert not imported.verify(MESSAGE + b"x", host_sig, mechanism=Mechanism.ECDSA_SHA256)


def test_ecdh_matches_cryptography(session, unique, crypto):
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import (
        Encoding,
        PublicFormat,
        load_der_public_key,
    )

    public, private = _ec_keypair(session, unique("ecdh-x"))
    host_priv = ec.generate_private_key(ec.SECP256R1())
    host_point = host_priv.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)

    derived = private.derive_key(
        KeyType.GENERIC_SECRET,
        256,
        label=unique("z"),
        mechanism=Mechanism.ECDH1_DERIVE,
        mechanism_param=(KDF.NULL, None, host_point),  # raw point, as the spec allows
        template={Attribute.SENSITIVE: False, Attribute.EXTRACTABLE: True},
    )
    expected = host_priv.exchange(ec.ECDH(), load_der_public_key(encode_ec_public_key(public)))
    assert derived[Attribute.VALUE] == expected


def test_rsa_interop_with_cryptography(rsa_pair, crypto):
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding
    from cryptography.hazmat.primitives.serialization import load_der_public_key

    public, private = rsa_pair
    host_key = load_der_public_key(encode_rsa_public_key(public))
    assert host_key.key_size == 2048

    sig = private.sign(MESSAGE, mechanism=Mechanism.SHA256_RSA_PKCS)
    host_key.verify(sig, MESSAGE, padding.PKCS1v15(), hashes.SHA256())

    pss = (Mechanism.SHA256, MGF.SHA256, 32)
    sig = private.sign(MESSAGE, mechanism=Mechanism.SHA256_RSA_PKCS_PSS, mechanism_param=pss)
    host_key.verify(
        sig, MESSAGE, padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32), hashes.SHA256()
    )

    oaep = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
    ct = host_key.encrypt(b"wrapped by the host", oaep)
    assert (
        private.decrypt(
            ct, mechanism=Mechanism.RSA_PKCS_OAEP, mechanism_param=(Mechanism.SHA256, MGF.SHA256, None)
        )
        == b"wrapped by the host"
    )


def test_aes_gcm_and_kwp_match_cryptography(session, unique, crypto):
    import os

    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from cryptography.hazmat.primitives.keywrap import (
        aes_key_unwrap_with_padding,
        aes_key_wrap_with_padding,
    )

    kek_value = os.urandom(32)
    kek = session.create_object(
        {
            Attribute.CLASS: ObjectClass.SECRET_KEY,
            Attribute.KEY_TYPE: KeyType.AES,
            Attribute.VALUE: kek_value,
            Attribute.LABEL: unique("known"),
            Attribute.ENCRYPT: True,
            Attribute.DECRYPT: True,
            Attribute.WRAP: True,
            Attribute.UNWRAP: True,
            Attribute.TOKEN: False,
        }
    )

    # GCM: token ciphertext opens on the host and the other way round.
    iv, aad = os.urandom(12), b"hdr"
    params = GCMParams(iv, aad, 128)
    ct = kek.encrypt(MESSAGE, mechanism=Mechanism.AES_GCM, mechanism_param=params)
    assert ct == AESGCM(kek_value).encrypt(iv, MESSAGE, aad)
    host_ct = AESGCM(kek_value).encrypt(iv, b"from the host", aad)
    assert kek.decrypt(host_ct, mechanism=Mechanism.AES_GCM, mechanism_param=params) == b"from the host"

    # KWP (RFC 5649): the token's wrapping unwraps on the host and vice versa.
    dek = session.generate_key(
        KeyType.AES,
        192,
        label=unique("dek"),
        template={Attribute.SENSITIVE: False, Attribute.EXTRACTABLE: True},
    )
    wrapped = kek.wrap_key(dek, mechanism=Mechanism.AES_KEY_WRAP_KWP)
    assert aes_key_unwrap_with_padding(kek_value, wrapped) == dek[Attribute.VALUE]

    host_dek = os.urandom(32)
    unwrapped = kek.unwrap_key(
        ObjectClass.SECRET_KEY,
        KeyType.AES,
        aes_key_wrap_with_padding(kek_value, host_dek),
        label=unique("host-dek"),
        mechanism=Mechanism.AES_KEY_WRAP_KWP,
        template={Attribute.SENSITIVE: False, Attribute.EXTRACTABLE: True},
    )
    assert unwrapped[Attribute.VALUE] == host_dek
