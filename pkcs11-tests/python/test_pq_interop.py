"""ML-DSA through python-pkcs11, checked by an implementation that is not AWS-LC's.

`cryptography` (its own OpenSSL build) verifies what the token signs with a context string,
and the token verifies what `cryptography` signs. HashML-DSA (FIPS 204 section 5.4) is
checked through `verify_mu`: mu is computed here, from the standard, with hashlib, so a
wrong domain byte, hash OID or pre-hash in the module fails the test.

python-pkcs11 0.10 knows `CKM_ML_DSA` but has no structure for its parameter nor the
HashML-DSA mechanisms, so the parameter goes in its raw form (python-pkcs11 passes bytes
through as the parameter) and the mechanism is named by its number.
"""

import ctypes
import hashlib

import pytest
from pkcs11 import Attribute, KeyType, Mechanism, MLDSAParameterSet, ObjectClass

MESSAGE = b"ecm-hsm: a message for ML-DSA"
CONTEXT = b"ecm-hsm context"

CKH_HEDGE_PREFERRED = 0
CKM_HASH_ML_DSA_SHA256 = 0x24
# DER of 2.16.840.1.101.3.4.2.1 (SHA-256), OID(PH) in HashML-DSA's M'.
SHA256_OID = bytes.fromhex("0609608648016503040201")


class SignAdditionalContext(ctypes.Structure):
    """CK_SIGN_ADDITIONAL_CONTEXT (PKCS#11 3.2)."""

    _fields_ = [
        ("hedgeVariant", ctypes.c_ulong),
        ("pContext", ctypes.c_void_p),
        ("ulContextLen", ctypes.c_ulong),
    ]


class ContextParameter:
    """The raw parameter and the buffer its pointer refers to (alive as long as this is)."""

    def __init__(self, context: bytes):
        self.buffer = ctypes.create_string_buffer(context, len(context))
        address = ctypes.cast(self.buffer, ctypes.c_void_p).value if context else None
        self.raw = bytes(SignAdditionalContext(CKH_HEDGE_PREFERRED, address, len(context)))


def numbered_mechanism(name: str, value: int) -> Mechanism:
    """A mechanism python-pkcs11's enumeration lacks (it refuses plain numbers)."""
    member = int.__new__(Mechanism, value)
    member._name_ = name
    member._value_ = value
    return member


@pytest.fixture
def mldsa():
    module = pytest.importorskip("cryptography.hazmat.primitives.asymmetric.mldsa")
    return module


def _ml_dsa_65_pair(session, label):
    return session.generate_keypair(
        KeyType.ML_DSA,
        label=label,
        public_template={Attribute.PARAMETER_SET: MLDSAParameterSet.ML_DSA_65},
    )


def test_ml_dsa_context_signatures_verify_both_ways(session, unique, mldsa):
    from cryptography.exceptions import InvalidSignature

    public, private = _ml_dsa_65_pair(session, unique("mldsa-ctx"))
    host_key = mldsa.MLDSA65PublicKey.from_public_bytes(public[Attribute.VALUE])

    param = ContextParameter(CONTEXT)
    signature = private.sign(MESSAGE, mechanism=Mechanism.ML_DSA, mechanism_param=param.raw)
    host_key.verify(signature, MESSAGE, CONTEXT)
    for context in (None, b"another context"):
        with pytest.raises(InvalidSignature):
            host_key.verify(signature, MESSAGE, context)

    # The other way: the host signs with the context, the token verifies (public key by value).
    host_private = mldsa.MLDSA65PrivateKey.generate()
    host_signature = host_private.sign(MESSAGE, CONTEXT)
    imported = session.create_object(
        {
            Attribute.CLASS: ObjectClass.PUBLIC_KEY,
            Attribute.KEY_TYPE: KeyType.ML_DSA,
            Attribute.PARAMETER_SET: MLDSAParameterSet.ML_DSA_65,
            Attribute.VALUE: host_private.public_key().public_bytes_raw(),
            Attribute.VERIFY: True,
            Attribute.TOKEN: False,
        }
    )
    assert imported.verify(
        MESSAGE, host_signature, mechanism=Mechanism.ML_DSA, mechanism_param=param.raw
    )
    other = ContextParameter(b"another context")
    assert not imported.verify(
        MESSAGE, host_signature, mechanism=Mechanism.ML_DSA, mechanism_param=other.raw
    )


def test_hash_ml_dsa_sha256_matches_fips_204s_mu(session, unique, mldsa):
    from cryptography.exceptions import InvalidSignature

    if not hasattr(mldsa.MLDSA65PublicKey, "verify_mu"):
        pytest.skip("this cryptography has no verify_mu (49 and later have)")
    public, private = _ml_dsa_65_pair(session, unique("hash-mldsa"))
    pk = public[Attribute.VALUE]
    host_key = mldsa.MLDSA65PublicKey.from_public_bytes(pk)

    param = ContextParameter(CONTEXT)
    mechanism = numbered_mechanism("HASH_ML_DSA_SHA256", CKM_HASH_ML_DSA_SHA256)
    signature = private.sign(MESSAGE, mechanism=mechanism, mechanism_param=param.raw)

    def mu(domain: int, tail: bytes) -> bytes:
        # FIPS 204, Algorithms 4/5 and 7: tr = H(pk, 64); mu = H(tr || M', 64), H = SHAKE256.
        tr = hashlib.shake_256(pk).digest(64)
        m_prime = bytes([domain, len(CONTEXT)]) + CONTEXT + tail
        return hashlib.shake_256(tr + m_prime).digest(64)

    host_key.verify_mu(signature, mu(1, SHA256_OID + hashlib.sha256(MESSAGE).digest()))
    # Not the pure mode's mu of the same message, nor another message's pre-hash.
    with pytest.raises(InvalidSignature):
        host_key.verify_mu(signature, mu(0, MESSAGE))
    with pytest.raises(InvalidSignature):
        host_key.verify_mu(signature, mu(1, SHA256_OID + hashlib.sha256(MESSAGE + b"x").digest()))


@pytest.fixture
def mlkem():
    module = pytest.importorskip("cryptography.hazmat.primitives.asymmetric.mlkem")
    if not hasattr(module.MLKEM768PrivateKey, "from_seed_bytes"):
        pytest.skip("this cryptography cannot make an ML-KEM key from its seed")
    return module


# ML-KEM-768 (FIPS 203): dk = dk_pke (384 * k bytes, k = 3) || ek || H(ek) || z.
ML_KEM_768_DK_PKE_LEN = 384 * 3
ML_KEM_768_EK_LEN = 1184


def test_ml_kem_seeds_expand_as_an_independent_implementation_expands_them(session, unique, mlkem):
    from pkcs11 import MLKEMParameterSet

    # A key the token generated keeps its seed d || z: the host expands it to the same ek.
    public, private = session.generate_keypair(
        KeyType.ML_KEM,
        label=unique("mlkem-seed"),
        public_template={Attribute.PARAMETER_SET: MLKEMParameterSet.ML_KEM_768},
        private_template={Attribute.SENSITIVE: False, Attribute.EXTRACTABLE: True},
    )
    seed = private[Attribute.SEED]
    assert len(seed) == 64
    host = mlkem.MLKEM768PrivateKey.from_seed_bytes(seed)
    assert host.public_key().public_bytes_raw() == public[Attribute.VALUE]

    # A seed the host drew, given to the token alone: the token's expansion holds the host's ek.
    host = mlkem.MLKEM768PrivateKey.generate()
    imported = session.create_object(
        {
            Attribute.CLASS: ObjectClass.PRIVATE_KEY,
            Attribute.KEY_TYPE: KeyType.ML_KEM,
            Attribute.PARAMETER_SET: MLKEMParameterSet.ML_KEM_768,
            Attribute.SEED: host.private_bytes_raw(),
            Attribute.SENSITIVE: False,
            Attribute.EXTRACTABLE: True,  # this token withholds a non-extractable value
            Attribute.TOKEN: False,
        }
    )
    dk = imported[Attribute.VALUE]
    ek = dk[ML_KEM_768_DK_PKE_LEN : ML_KEM_768_DK_PKE_LEN + ML_KEM_768_EK_LEN]
    assert ek == host.public_key().public_bytes_raw()
    assert dk[-32:] == host.private_bytes_raw()[32:], "z, the seed's second half, ends dk"
