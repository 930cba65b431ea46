//! Random call arguments: byte buffers and their lengths, output buffers, templates and
//! mechanisms, each sometimes valid, sometimes NULL, empty, short or claiming a huge length.
//!
//! Everything a call points to lives in an [`Arena`] that outlives the call. A length larger
//! than the memory behind its pointer is only ever stated for a [`Guarded`] buffer, so that a
//! module that trusts it faults instead of reading the driver's other memory.

use std::any::Any;
use std::ffi::c_void;
use std::mem::size_of;
use std::ptr::null_mut;

use cryptoki_sys::*;
use rand::rngs::StdRng;
use rand::{Rng, RngExt};

use super::guard::Guarded;

/// A length no operation can hold: the example, and the largest `CK_ULONG`.
pub const HUGE: [CK_ULONG; 2] = [0xffff_ffff, CK_ULONG::MAX];

#[derive(Default)]
pub struct Arena {
    keep: Vec<Box<dyn Any>>,
    guards: Vec<Guarded>,
    /// Tags naming the unusual shapes in this call ("huge", "null-len", ...), for the report
    /// and for the allow-list.
    pub tags: Vec<&'static str>,
}

impl Arena {
    /// Keeps `value` alive until the arena is dropped; its address is stable.
    pub fn keep<T: 'static>(&mut self, value: T) -> *mut T {
        let mut boxed = Box::new(value);
        let ptr: *mut T = &mut *boxed;
        self.keep.push(boxed);
        ptr
    }

    pub fn bytes(&mut self, data: Vec<u8>) -> *mut u8 {
        // A boxed slice never reallocates; an empty one still gets a real, dangling-free pointer.
        let mut data = data.into_boxed_slice();
        let ptr = if data.is_empty() { self.keep(0u8) } else { data.as_mut_ptr() };
        self.keep.push(Box::new(data));
        ptr
    }

    fn guarded(&mut self, len: usize) -> *mut u8 {
        let g = Guarded::new(len, 0x5a);
        let ptr = g.ptr();
        self.guards.push(g);
        ptr
    }

    /// `len` bytes (at most a page) right before a page that faults: for buffers the module
    /// writes into, so that writing past their stated length is caught.
    pub fn exact(&mut self, len: usize) -> *mut u8 {
        self.guarded(len)
    }

    pub fn tag(&mut self, tag: &'static str) {
        if !self.tags.contains(&tag) {
            self.tags.push(tag);
        }
    }
}

fn random_bytes(rng: &mut StdRng, len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len];
    rng.fill_bytes(&mut v);
    v
}

/// An input buffer and its length.
pub fn input(rng: &mut StdRng, a: &mut Arena) -> (*mut u8, CK_ULONG) {
    match rng.random_range(0..20) {
        0 => (null_mut(), 0),
        1 => {
            a.tag("null-len");
            (null_mut(), rng.random_range(1..64))
        }
        2 => (a.bytes(Vec::new()), 0),
        3 => (a.bytes(random_bytes(rng, 1)), 1),
        4 => {
            a.tag("huge");
            (a.guarded(16), HUGE[rng.random_range(0..2)])
        }
        5..=11 => {
            let len = [16, 32, 48, 64, 256][rng.random_range(0..5)];
            (a.bytes(random_bytes(rng, len)), len as CK_ULONG)
        }
        _ => {
            let len = rng.random_range(0..100);
            (a.bytes(random_bytes(rng, len)), len as CK_ULONG)
        }
    }
}

/// The list and count of a call that lists with the size-query protocol (C_GetSlotList,
/// C_GetMechanismList): a NULL list with a count, NULL for both, a one-entry list with the
/// count `one_count` (which may be too small), or a list of `N` entries with the count `N`.
pub fn list_out<const N: usize>(
    rng: &mut StdRng,
    a: &mut Arena,
    one_count: CK_ULONG,
) -> (*mut CK_ULONG, *mut CK_ULONG) {
    match rng.random_range(0..4) {
        0 => (null_mut(), a.keep(0 as CK_ULONG)),
        1 => (null_mut(), null_mut()),
        2 => (a.keep([0 as CK_ULONG; 1]).cast(), a.keep(one_count)),
        _ => (a.keep([0 as CK_ULONG; N]).cast(), a.keep(N as CK_ULONG)),
    }
}

/// The structure an info call fills (`CK_INFO`, `CK_SLOT_INFO`, ...), or NULL one time in
/// four.
pub fn info_out<T: Default + 'static>(rng: &mut StdRng, a: &mut Arena) -> *mut T {
    if rng.random_range(0..4) == 0 { null_mut() } else { a.keep(T::default()) }
}

/// An output buffer and a pointer to its length (in and out).
pub fn output(rng: &mut StdRng, a: &mut Arena) -> (*mut u8, *mut CK_ULONG) {
    match rng.random_range(0..12) {
        0 => (null_mut(), a.keep(rng.random_range(0..4096))),
        1 => (a.bytes(vec![0; 1]), a.keep(1)),
        2 => (a.bytes(vec![0; 1]), a.keep(0)),
        3 => {
            a.tag("null-len-ptr");
            (a.bytes(vec![0; 4096]), null_mut())
        }
        4 => {
            a.tag("null-len-ptr");
            (null_mut(), null_mut())
        }
        5 => (a.bytes(vec![0; 16]), a.keep(16)),
        _ => (a.bytes(vec![0; 4096]), a.keep(4096)),
    }
}

const ULONG_TYPES: &[CK_ATTRIBUTE_TYPE] =
    &[CKA_CLASS, CKA_KEY_TYPE, CKA_VALUE_LEN, CKA_MODULUS_BITS, CKA_KEY_GEN_MECHANISM, CKA_CERTIFICATE_TYPE];
const BOOL_TYPES: &[CK_ATTRIBUTE_TYPE] = &[
    CKA_TOKEN,
    CKA_PRIVATE,
    CKA_SENSITIVE,
    CKA_EXTRACTABLE,
    CKA_ENCRYPT,
    CKA_DECRYPT,
    CKA_SIGN,
    CKA_VERIFY,
    CKA_WRAP,
    CKA_UNWRAP,
    CKA_DERIVE,
    CKA_MODIFIABLE,
    CKA_COPYABLE,
    CKA_DESTROYABLE,
    CKA_ALWAYS_AUTHENTICATE,
    CKA_TRUSTED,
    CKA_WRAP_WITH_TRUSTED,
    CKA_LOCAL,
];
const BYTE_TYPES: &[CK_ATTRIBUTE_TYPE] = &[
    CKA_VALUE,
    CKA_LABEL,
    CKA_ID,
    CKA_EC_PARAMS,
    CKA_PUBLIC_EXPONENT,
    CKA_MODULUS,
    CKA_EC_POINT,
    CKA_APPLICATION,
];
const ARRAY_TYPES: &[CK_ATTRIBUTE_TYPE] = &[CKA_WRAP_TEMPLATE, CKA_UNWRAP_TEMPLATE, CKA_DERIVE_TEMPLATE];
/// The vendor attributes of the key hierarchy (`CKA_ECM_BASE + 1..=9`).
const ECM_BASE: CK_ATTRIBUTE_TYPE = CKA_VENDOR_DEFINED | 0x4543_4D00;

/// The DER of prime256v1's OID, and of one no module knows.
pub const P256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const BAD_CURVE: &[u8] = &[0x06, 0x03, 0x2a, 0x03, 0x04];

fn ulong_value(rng: &mut StdRng, kind: CK_ATTRIBUTE_TYPE) -> CK_ULONG {
    if rng.random_bool(0.1) {
        return rng.random();
    }
    match kind {
        CKA_CLASS => [CKO_DATA, CKO_SECRET_KEY, CKO_PUBLIC_KEY, CKO_PRIVATE_KEY, CKO_CERTIFICATE]
            [rng.random_range(0..5)],
        CKA_KEY_TYPE => [CKK_AES, CKK_GENERIC_SECRET, CKK_RSA, CKK_EC, CKK_DES3][rng.random_range(0..5)],
        CKA_VALUE_LEN => [0, 1, 16, 24, 32, 64, 1 << 20][rng.random_range(0..7)],
        CKA_MODULUS_BITS => [0, 1, 512, 1024, 2048, 1 << 20][rng.random_range(0..6)],
        _ => rng.random_range(0..8),
    }
}

/// One template entry; `depth` > 0 allows nested attribute arrays.
fn attribute(rng: &mut StdRng, a: &mut Arena, depth: u32) -> CK_ATTRIBUTE {
    let group = rng.random_range(0..20);
    let kind = match group {
        0..=5 => ULONG_TYPES[rng.random_range(0..ULONG_TYPES.len())],
        6..=12 => BOOL_TYPES[rng.random_range(0..BOOL_TYPES.len())],
        13..=16 => BYTE_TYPES[rng.random_range(0..BYTE_TYPES.len())],
        17 => ARRAY_TYPES[rng.random_range(0..ARRAY_TYPES.len())],
        18 => CKA_ALLOWED_MECHANISMS,
        _ if rng.random_bool(0.5) => ECM_BASE + rng.random_range(1..10),
        _ => rng.random(),
    };
    // The value's shape: mostly right, sometimes NULL, short, or a huge length.
    match rng.random_range(0..16) {
        0 => return CK_ATTRIBUTE { type_: kind, pValue: null_mut(), ulValueLen: 0 },
        1 => {
            a.tag("null-attribute");
            return CK_ATTRIBUTE { type_: kind, pValue: null_mut(), ulValueLen: rng.random_range(1..64) };
        }
        2 => {
            a.tag("huge-attribute");
            return CK_ATTRIBUTE {
                type_: kind,
                pValue: a.guarded(8).cast(),
                ulValueLen: HUGE[rng.random_range(0..2)],
            };
        }
        3 => {
            let len = rng.random_range(1..4);
            return CK_ATTRIBUTE {
                type_: kind,
                pValue: a.bytes(random_bytes(rng, len)).cast(),
                ulValueLen: len as CK_ULONG,
            };
        }
        _ => {}
    }
    if ULONG_TYPES.contains(&kind) {
        let v = ulong_value(rng, kind);
        return CK_ATTRIBUTE {
            type_: kind,
            pValue: a.keep(v).cast(),
            ulValueLen: size_of::<CK_ULONG>() as CK_ULONG,
        };
    }
    if BOOL_TYPES.contains(&kind) {
        let v: CK_BBOOL = if rng.random_bool(0.5) { CK_TRUE } else { CK_FALSE };
        return CK_ATTRIBUTE { type_: kind, pValue: a.keep(v).cast(), ulValueLen: 1 };
    }
    if ARRAY_TYPES.contains(&kind) && depth > 0 {
        let n = rng.random_range(0..4);
        let nested: Vec<CK_ATTRIBUTE> = (0..n).map(|_| attribute(rng, a, depth - 1)).collect();
        let len = (nested.len() * size_of::<CK_ATTRIBUTE>()) as CK_ULONG;
        let ptr = a.keep(nested);
        // SAFETY: `ptr` points to the Vec kept alive by the arena.
        let data = unsafe { (*ptr).as_mut_ptr() };
        return CK_ATTRIBUTE { type_: kind, pValue: data.cast(), ulValueLen: len };
    }
    if kind == CKA_ALLOWED_MECHANISMS {
        let n = rng.random_range(0..4);
        let list: Vec<CK_ULONG> = (0..n).map(|_| mechanism_type(rng)).collect();
        let bytes: Vec<u8> = list.iter().flat_map(|m| m.to_ne_bytes()).collect();
        let len = bytes.len() as CK_ULONG;
        return CK_ATTRIBUTE { type_: kind, pValue: a.bytes(bytes).cast(), ulValueLen: len };
    }
    let data = match kind {
        CKA_EC_PARAMS if rng.random_bool(0.7) => if rng.random_bool(0.8) { P256 } else { BAD_CURVE }.to_vec(),
        CKA_PUBLIC_EXPONENT if rng.random_bool(0.7) => vec![1, 0, 1],
        CKA_VALUE => {
            let len = [0, 1, 15, 16, 24, 32, 33, 64][rng.random_range(0..8)];
            random_bytes(rng, len)
        }
        _ => {
            let len = rng.random_range(0..40);
            random_bytes(rng, len)
        }
    };
    let len = data.len() as CK_ULONG;
    CK_ATTRIBUTE { type_: kind, pValue: a.bytes(data).cast(), ulValueLen: len }
}

/// A well-formed template for one of the objects the driver likes to make.
fn preset(rng: &mut StdRng, a: &mut Arena) -> Vec<CK_ATTRIBUTE> {
    let ulong = |a: &mut Arena, kind, v: CK_ULONG| CK_ATTRIBUTE {
        type_: kind,
        pValue: a.keep(v).cast(),
        ulValueLen: size_of::<CK_ULONG>() as CK_ULONG,
    };
    let flag = |a: &mut Arena, kind, v: bool| CK_ATTRIBUTE {
        type_: kind,
        pValue: a.keep(if v { CK_TRUE } else { CK_FALSE }).cast(),
        ulValueLen: 1,
    };
    let token = rng.random_bool(0.3);
    let sensitive = rng.random_bool(0.5);
    let mut t = vec![flag(a, CKA_TOKEN, token)];
    match rng.random_range(0..4) {
        0 => {
            // An AES key (with its value, for C_CreateObject; C_GenerateKey refuses the value).
            t.push(ulong(a, CKA_CLASS, CKO_SECRET_KEY));
            t.push(ulong(a, CKA_KEY_TYPE, CKK_AES));
            if rng.random_bool(0.5) {
                let v = random_bytes(rng, 32);
                t.push(CK_ATTRIBUTE { type_: CKA_VALUE, pValue: a.bytes(v).cast(), ulValueLen: 32 });
            } else {
                t.push(ulong(a, CKA_VALUE_LEN, 32));
            }
            for kind in [CKA_ENCRYPT, CKA_DECRYPT, CKA_WRAP, CKA_UNWRAP, CKA_SIGN, CKA_VERIFY] {
                t.push(flag(a, kind, true));
            }
            t.push(flag(a, CKA_SENSITIVE, sensitive));
            t.push(flag(a, CKA_EXTRACTABLE, !sensitive || rng.random_bool(0.5)));
        }
        1 => {
            t.push(ulong(a, CKA_CLASS, CKO_DATA));
            let v = random_bytes(rng, 20);
            t.push(CK_ATTRIBUTE { type_: CKA_VALUE, pValue: a.bytes(v).cast(), ulValueLen: 20 });
        }
        2 => {
            // A generic secret, for HMAC and key digests.
            t.push(ulong(a, CKA_CLASS, CKO_SECRET_KEY));
            t.push(ulong(a, CKA_KEY_TYPE, CKK_GENERIC_SECRET));
            t.push(ulong(a, CKA_VALUE_LEN, 32));
            t.push(flag(a, CKA_SIGN, true));
            t.push(flag(a, CKA_DERIVE, true));
        }
        _ => {
            // An EC key pair's halves share this (generation takes it as both templates).
            t.push(CK_ATTRIBUTE {
                type_: CKA_EC_PARAMS,
                pValue: a.bytes(P256.to_vec()).cast(),
                ulValueLen: P256.len() as CK_ULONG,
            });
            t.push(flag(a, CKA_SIGN, true));
            t.push(flag(a, CKA_DERIVE, true));
        }
    }
    let label = format!("fuzz-{}", rng.random_range(0..4));
    t.push(CK_ATTRIBUTE { type_: CKA_LABEL, pValue: a.bytes(label.into_bytes()).cast(), ulValueLen: 6 });
    t
}

/// A template: a preset, a preset with random entries added, or random entries alone; at
/// times NULL, or a count far beyond the array.
pub fn template(rng: &mut StdRng, a: &mut Arena) -> (*mut CK_ATTRIBUTE, CK_ULONG) {
    let mut t = match rng.random_range(0..20) {
        0 => return (null_mut(), 0),
        1 => {
            a.tag("null-template");
            return (null_mut(), rng.random_range(1..8));
        }
        2 => {
            a.tag("huge-count");
            // Two valid entries at the end of a page, and a count far beyond them.
            let g = a.guarded(2 * size_of::<CK_ATTRIBUTE>()).cast::<CK_ATTRIBUTE>();
            let first = attribute(rng, a, 0);
            let second = attribute(rng, a, 0);
            // SAFETY: the guarded buffer holds two attributes, at an 8-aligned address.
            unsafe {
                g.write_unaligned(first);
                g.add(1).write_unaligned(second);
            }
            return (g, HUGE[rng.random_range(0..2)]);
        }
        3..=9 => preset(rng, a),
        10..=15 => {
            let mut t = preset(rng, a);
            for _ in 0..rng.random_range(1..3) {
                t.push(attribute(rng, a, 1));
            }
            t
        }
        _ => (0..rng.random_range(0..7)).map(|_| attribute(rng, a, 1)).collect(),
    };
    let n = t.len() as CK_ULONG;
    let ptr = t.as_mut_ptr();
    a.keep(t);
    (ptr, n)
}

/// A template to read into: NULL values (length queries), short and large buffers.
pub fn read_template(rng: &mut StdRng, a: &mut Arena) -> (*mut CK_ATTRIBUTE, CK_ULONG) {
    if rng.random_range(0..15) == 0 {
        return (null_mut(), 0);
    }
    let mut t: Vec<CK_ATTRIBUTE> = (0..rng.random_range(1..5))
        .map(|_| {
            let kind = attribute(rng, a, 0).type_;
            match rng.random_range(0..4) {
                0 => CK_ATTRIBUTE { type_: kind, pValue: null_mut(), ulValueLen: 0 },
                1 => CK_ATTRIBUTE { type_: kind, pValue: a.bytes(vec![0; 1]).cast(), ulValueLen: 1 },
                _ => CK_ATTRIBUTE { type_: kind, pValue: a.bytes(vec![0; 1024]).cast(), ulValueLen: 1024 },
            }
        })
        .collect();
    let n = t.len() as CK_ULONG;
    let ptr = t.as_mut_ptr();
    a.keep(t);
    (ptr, n)
}

const MECHANISMS: &[CK_MECHANISM_TYPE] = &[
    CKM_AES_ECB,
    CKM_AES_CBC,
    CKM_AES_CBC_PAD,
    CKM_AES_CTR,
    CKM_AES_GCM,
    CKM_AES_KEY_GEN,
    CKM_AES_KEY_WRAP,
    CKM_AES_KEY_WRAP_KWP,
    CKM_AES_CMAC,
    CKM_SHA256,
    CKM_SHA512,
    CKM_SHA256_HMAC,
    CKM_GENERIC_SECRET_KEY_GEN,
    CKM_RSA_PKCS,
    CKM_RSA_PKCS_OAEP,
    CKM_RSA_PKCS_PSS,
    CKM_SHA256_RSA_PKCS,
    CKM_RSA_PKCS_KEY_PAIR_GEN,
    CKM_EC_KEY_PAIR_GEN,
    CKM_ECDSA,
    CKM_ECDSA_SHA256,
    CKM_ECDH1_DERIVE,
    CKM_SHA256_KEY_DERIVATION,
    CKM_EDDSA,
    CKM_ML_DSA,
    CKM_HASH_ML_DSA,
    CKM_HASH_ML_DSA_SHA256,
];

pub fn mechanism_type(rng: &mut StdRng) -> CK_MECHANISM_TYPE {
    if rng.random_range(0..20) == 0 {
        rng.random()
    } else {
        MECHANISMS[rng.random_range(0..MECHANISMS.len())]
    }
}

/// A parameter block for `kind`: well formed, or random bytes, or NULL with a length.
fn parameter(rng: &mut StdRng, a: &mut Arena, kind: CK_MECHANISM_TYPE) -> (*mut c_void, CK_ULONG) {
    match rng.random_range(0..10) {
        0 => return (null_mut(), 0),
        1 => {
            a.tag("null-parameter");
            return (null_mut(), rng.random_range(1..64));
        }
        2 => {
            // Random bytes, never of the size of a structure that holds pointers (24 bytes:
            // EdDSA's and ML-DSA's contexts; 32: HashML-DSA's; 40 and 48: GCM, OAEP, ECDH),
            // which the module would rightly follow.
            let len = [1, 7, 16, 17, 25, 33, 64][rng.random_range(0..7)];
            return (a.bytes(random_bytes(rng, len)).cast(), len as CK_ULONG);
        }
        3 => {
            a.tag("huge");
            return (a.guarded(16).cast(), HUGE[rng.random_range(0..2)]);
        }
        _ => {}
    }
    let sized = |_: &mut Arena, p: *mut c_void, n: usize| (p, n as CK_ULONG);
    match kind {
        CKM_AES_CBC | CKM_AES_CBC_PAD => {
            let iv = random_bytes(rng, 16);
            (a.bytes(iv).cast(), 16)
        }
        CKM_AES_CTR => {
            let p = a.keep(CK_AES_CTR_PARAMS { ulCounterBits: rng.random_range(0..140), cb: [0; 16] });
            sized(a, p.cast(), size_of::<CK_AES_CTR_PARAMS>())
        }
        CKM_AES_GCM => {
            let (iv, iv_len) = if rng.random_bool(0.8) {
                let n = [0usize, 1, 12, 16, 256][rng.random_range(0..5)];
                (a.bytes(random_bytes(rng, n)), n as CK_ULONG)
            } else {
                input(rng, a)
            };
            let (aad, aad_len) = if rng.random_bool(0.7) { (null_mut(), 0) } else { input(rng, a) };
            let tag_bits = [0, 1, 64, 96, 128, 129, 1024][rng.random_range(0..7)];
            let p = a.keep(CK_GCM_PARAMS {
                pIv: iv,
                ulIvLen: iv_len,
                ulIvBits: iv_len.wrapping_mul(8),
                pAAD: aad,
                ulAADLen: aad_len,
                ulTagBits: tag_bits,
            });
            sized(a, p.cast(), size_of::<CK_GCM_PARAMS>())
        }
        CKM_RSA_PKCS_OAEP => {
            let (src, src_len) = if rng.random_bool(0.7) { (null_mut(), 0) } else { input(rng, a) };
            let p = a.keep(CK_RSA_PKCS_OAEP_PARAMS {
                hashAlg: [CKM_SHA_1, CKM_SHA256, rng.random()][rng.random_range(0..3)],
                mgf: [CKG_MGF1_SHA1, CKG_MGF1_SHA256, rng.random()][rng.random_range(0..3)],
                source: CKZ_DATA_SPECIFIED,
                pSourceData: src.cast(),
                ulSourceDataLen: src_len,
            });
            sized(a, p.cast(), size_of::<CK_RSA_PKCS_OAEP_PARAMS>())
        }
        CKM_RSA_PKCS_PSS => {
            let p = a.keep(CK_RSA_PKCS_PSS_PARAMS {
                hashAlg: [CKM_SHA256, rng.random()][rng.random_range(0..2)],
                mgf: [CKG_MGF1_SHA256, rng.random()][rng.random_range(0..2)],
                sLen: [0, 32, 1 << 20, rng.random()][rng.random_range(0..4)],
            });
            sized(a, p.cast(), size_of::<CK_RSA_PKCS_PSS_PARAMS>())
        }
        CKM_ECDH1_DERIVE => {
            let (public, public_len) = if rng.random_bool(0.5) {
                let mut point = vec![0x04];
                point.extend(random_bytes(rng, 64));
                (a.bytes(point), 65)
            } else {
                input(rng, a)
            };
            let p = a.keep(CK_ECDH1_DERIVE_PARAMS {
                kdf: [CKD_NULL, CKD_SHA256_KDF, rng.random()][rng.random_range(0..3)],
                ulSharedDataLen: 0,
                pSharedData: null_mut(),
                ulPublicDataLen: public_len,
                pPublicData: public,
            });
            sized(a, p.cast(), size_of::<CK_ECDH1_DERIVE_PARAMS>())
        }
        CKM_EDDSA => {
            let (context, context_len) = context(rng, a);
            let p = a.keep(CK_EDDSA_PARAMS {
                phFlag: [CK_FALSE, CK_TRUE, 2][rng.random_range(0..3)],
                ulContextDataLen: context_len,
                pContextData: context,
            });
            sized(a, p.cast(), size_of::<CK_EDDSA_PARAMS>())
        }
        CKM_ML_DSA | CKM_HASH_ML_DSA_SHA256 => {
            let (context, context_len) = context(rng, a);
            let p = a.keep(CK_SIGN_ADDITIONAL_CONTEXT {
                hedgeVariant: hedge(rng),
                pContext: context,
                ulContextLen: context_len,
            });
            sized(a, p.cast(), size_of::<CK_SIGN_ADDITIONAL_CONTEXT>())
        }
        CKM_HASH_ML_DSA => {
            let (context, context_len) = context(rng, a);
            let p = a.keep(CK_HASH_SIGN_ADDITIONAL_CONTEXT {
                hedgeVariant: hedge(rng),
                pContext: context,
                ulContextLen: context_len,
                hash: [CKM_SHA256, CKM_SHA3_512, CKM_SHA_1, rng.random()][rng.random_range(0..4)],
            });
            sized(a, p.cast(), size_of::<CK_HASH_SIGN_ADDITIONAL_CONTEXT>())
        }
        _ => (null_mut(), 0),
    }
}

/// A signature context: of a valid length (up to 255 bytes), one too long, or any input.
fn context(rng: &mut StdRng, a: &mut Arena) -> (*mut u8, CK_ULONG) {
    match rng.random_range(0..4) {
        0 => (a.bytes(random_bytes(rng, 255)), 255),
        1 => (a.bytes(random_bytes(rng, 256)), 256),
        _ => input(rng, a),
    }
}

fn hedge(rng: &mut StdRng) -> CK_HEDGE_TYPE {
    [CKH_HEDGE_PREFERRED, CKH_HEDGE_REQUIRED, CKH_DETERMINISTIC_REQUIRED, rng.random()]
        [rng.random_range(0..4)]
}

/// A mechanism (or, rarely, NULL).
pub fn mechanism(rng: &mut StdRng, a: &mut Arena) -> *mut CK_MECHANISM {
    if rng.random_range(0..25) == 0 {
        a.tag("null-mechanism");
        return null_mut();
    }
    let kind = mechanism_type(rng);
    let (p, n) = parameter(rng, a, kind);
    a.keep(CK_MECHANISM { mechanism: kind, pParameter: p, ulParameterLen: n })
}

/// A PIN: the right one mostly, else wrong, empty, NULL or huge.
pub fn pin(rng: &mut StdRng, a: &mut Arena, right: &str) -> (*mut u8, CK_ULONG) {
    match rng.random_range(0..10) {
        0..=5 => (a.bytes(right.as_bytes().to_vec()), right.len() as CK_ULONG),
        6 => (a.bytes(b"wrong-pin".to_vec()), 9),
        _ => input(rng, a),
    }
}

/// A `CK_GCM_MESSAGE_PARAMS` for `C_EncryptMessage`/`C_DecryptMessage`: the IV and tag
/// buffers hold exactly the lengths stated (the module writes both back), sometimes NULL.
pub fn message_parameter(rng: &mut StdRng, a: &mut Arena) -> (*mut c_void, CK_ULONG) {
    if rng.random_range(0..6) == 0 {
        return parameter(rng, a, CKM_AES_GCM);
    }
    let iv_len = [0usize, 1, 8, 12, 16, 64][rng.random_range(0..6)];
    let iv = if rng.random_range(0..10) == 0 { null_mut() } else { a.exact(iv_len) };
    let tag_bits: CK_ULONG = [0, 8, 64, 96, 128, 129, 1024][rng.random_range(0..7)];
    let tag =
        if rng.random_range(0..10) == 0 { null_mut() } else { a.exact((tag_bits as usize).div_ceil(8)) };
    let generator = [CKG_NO_GENERATE, CKG_GENERATE, CKG_GENERATE_COUNTER, CKG_GENERATE_RANDOM, rng.random()]
        [rng.random_range(0..5)];
    let fixed_bits: CK_ULONG = [0, 1, 32, 64, 96, 1 << 20][rng.random_range(0..6)];
    let p = a.keep(CK_GCM_MESSAGE_PARAMS {
        pIv: iv,
        ulIvLen: iv_len as CK_ULONG,
        ulIvFixedBits: fixed_bits,
        ivGenerator: generator,
        pTag: tag,
        ulTagBits: tag_bits,
    });
    (p.cast(), size_of::<CK_GCM_MESSAGE_PARAMS>() as CK_ULONG)
}
