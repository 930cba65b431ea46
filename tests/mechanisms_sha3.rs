//! SHA-3 digests (FIPS 202) through `C_Digest*` of the built module: the FIPS 202 "abc"
//! examples single- and multi-part, `C_GetMechanismInfo`, SHA3-224 (AWS-LC's own interface,
//! as aws-lc-rs lacks it), and an HMAC refused as a digest. Raw calls: `cryptoki` 0.12 has no
//! SHA-3. The SHA-3 HMACs are in `mechanisms_sha3_hmac.rs`.
#![allow(unsafe_code)]

mod common;
use common::raw;
use common::*;

use std::ptr::null_mut;

use cryptoki_sys::*;

/// `C_DigestInit` with `kind` and no parameter.
fn digest_init(p: &Pkcs11, h: CK_SESSION_HANDLE, kind: CK_MECHANISM_TYPE) -> CK_RV {
    let mut m = CK_MECHANISM { mechanism: kind, pParameter: null_mut(), ulParameterLen: 0 };
    // SAFETY: a live mechanism without parameter.
    unsafe { p.C_DigestInit(h, &mut m) }
}

/// `C_DigestFinal` into a 64-byte buffer.
fn digest_final(p: &Pkcs11, h: CK_SESSION_HANDLE) -> Vec<u8> {
    let mut out = [0u8; 64];
    let mut len = out.len() as CK_ULONG;
    // SAFETY: the buffer holds `len` bytes.
    assert_eq!(unsafe { p.C_DigestFinal(h, out.as_mut_ptr(), &mut len) }, CKR_OK);
    out[..len as usize].to_vec()
}

fn digest_update(p: &Pkcs11, h: CK_SESSION_HANDLE, part: &[u8]) {
    // SAFETY: the part is a live slice of its stated length.
    assert_eq!(unsafe { p.C_DigestUpdate(h, part.as_ptr() as *mut u8, part.len() as CK_ULONG) }, CKR_OK);
}

isolated_test!(
    fn sha3_digests_match_fips202() {
        let (p, slot, h) = raw::user_setup();
        for (kind, expected) in [
            (CKM_SHA3_256, "3a985da74fe225b2045c172d6bd390bd855f086e3e9d525b46bfe24511431532"),
            (
                CKM_SHA3_384,
                "ec01498288516fc926459f58e2c6ad8df9b473cb0fc08c2596da7cf0e49be4b298d88cea927ac7f539f1edf228376d25",
            ),
            (
                CKM_SHA3_512,
                "b751850b1a57168a5693cd924b6b096e08f621827444f70d884f5d0240d2712e\
                 10e116e9192af3c91a7ec57647e3934057340b4cf408d5a56592f8274eec53f0",
            ),
        ] {
            let mut info = CK_MECHANISM_INFO::default();
            // SAFETY: out-pointer to a local.
            assert_eq!(unsafe { p.C_GetMechanismInfo(slot, kind, &mut info) }, CKR_OK);
            assert_eq!(info.flags & CKF_DIGEST, CKF_DIGEST);
            assert_eq!(digest_init(&p, h, kind), CKR_OK);
            digest_update(&p, h, b"a");
            digest_update(&p, h, b"bc");
            assert_eq!(digest_final(&p, h), hex(expected));
        }
        // SHA3-224 (AWS-LC's interface, src/sys/sha3.rs) and its digest of "abc".
        assert_eq!(digest_init(&p, h, CKM_SHA3_224), CKR_OK);
        digest_update(&p, h, b"abc");
        assert_eq!(digest_final(&p, h), hex("e642824c3f8cf24ad09234ee7d3c766fc9a3a5168d0c94ad73b46fdf"));
        // A mechanism of the family that is no digest is refused, and leaves nothing active.
        assert_eq!(digest_init(&p, h, CKM_SHA3_256_HMAC), CKR_MECHANISM_INVALID);
        // Nothing was left active: a SHA-256 digest works.
        assert_eq!(digest_init(&p, h, CKM_SHA256), CKR_OK);
        digest_update(&p, h, b"abc");
        assert_eq!(digest_final(&p, h).len(), 32);
    }
);
