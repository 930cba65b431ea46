//! ecm-hsm's vendor-defined constants, mirrored in `include/ecm_hsm.h` for C users (a test
//! below keeps the two in sync). Every value is `<kind>_VENDOR_DEFINED | 0x45434D00 | n`,
//! 0x45434D being "ECM".

use cryptoki_sys::{CK_ULONG, CKA_VENDOR_DEFINED, CKM_VENDOR_DEFINED, CKR_VENDOR_DEFINED};

pub const ECM_VENDOR_PREFIX: CK_ULONG = 0x4543_4D00;
pub const CKA_ECM_BASE: CK_ULONG = CKA_VENDOR_DEFINED | ECM_VENDOR_PREFIX;
pub const CKM_ECM_BASE: CK_ULONG = CKM_VENDOR_DEFINED | ECM_VENDOR_PREFIX;
pub const CKR_ECM_BASE: CK_ULONG = CKR_VENDOR_DEFINED | ECM_VENDOR_PREFIX;

// The envelope key hierarchy (see the header for what each means).
pub const CKA_ECM_TIER: CK_ULONG = CKA_ECM_BASE + 0x01;
pub const CKA_ECM_TENANT: CK_ULONG = CKA_ECM_BASE + 0x02;
pub const CKA_ECM_KEY_VERSION: CK_ULONG = CKA_ECM_BASE + 0x03;
pub const CKA_ECM_KEY_STATE: CK_ULONG = CKA_ECM_BASE + 0x04;
pub const CKA_ECM_ROTATION_PERIOD: CK_ULONG = CKA_ECM_BASE + 0x05;
pub const CKA_ECM_PARENT_ID: CK_ULONG = CKA_ECM_BASE + 0x06;
pub const CKA_ECM_CREATED_AT: CK_ULONG = CKA_ECM_BASE + 0x07;
pub const CKA_ECM_ROTATED_AT: CK_ULONG = CKA_ECM_BASE + 0x08;
pub const CKA_ECM_NEXT_ROTATION: CK_ULONG = CKA_ECM_BASE + 0x09;

pub const CKT_ECM_MASTER: CK_ULONG = 0x1;
pub const CKT_ECM_KEK: CK_ULONG = 0x2;
pub const CKT_ECM_DEK: CK_ULONG = 0x3;

pub const CKS_ECM_ACTIVE: CK_ULONG = 0x1;
pub const CKS_ECM_DECRYPT_ONLY: CK_ULONG = 0x2;

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `#define NAME value` of the header must equal the Rust constant of the same
    /// name: a number, `(BASE | n)` or `(BASE + n)` where BASE is defined before.
    #[test]
    fn header_and_rust_agree() {
        let header = include_str!("../include/ecm_hsm.h");
        let rust = [
            ("ECM_VENDOR_PREFIX", ECM_VENDOR_PREFIX),
            ("CKA_ECM_BASE", CKA_ECM_BASE),
            ("CKM_ECM_BASE", CKM_ECM_BASE),
            ("CKR_ECM_BASE", CKR_ECM_BASE),
            ("CKA_ECM_TIER", CKA_ECM_TIER),
            ("CKA_ECM_TENANT", CKA_ECM_TENANT),
            ("CKA_ECM_KEY_VERSION", CKA_ECM_KEY_VERSION),
            ("CKA_ECM_KEY_STATE", CKA_ECM_KEY_STATE),
            ("CKA_ECM_ROTATION_PERIOD", CKA_ECM_ROTATION_PERIOD),
            ("CKA_ECM_PARENT_ID", CKA_ECM_PARENT_ID),
            ("CKA_ECM_CREATED_AT", CKA_ECM_CREATED_AT),
            ("CKA_ECM_ROTATED_AT", CKA_ECM_ROTATED_AT),
            ("CKA_ECM_NEXT_ROTATION", CKA_ECM_NEXT_ROTATION),
            ("CKT_ECM_MASTER", CKT_ECM_MASTER),
            ("CKT_ECM_KEK", CKT_ECM_KEK),
            ("CKT_ECM_DEK", CKT_ECM_DEK),
            ("CKS_ECM_ACTIVE", CKS_ECM_ACTIVE),
            ("CKS_ECM_DECRYPT_ONLY", CKS_ECM_DECRYPT_ONLY),
        ];
        let mut defined: Vec<(&str, CK_ULONG)> = Vec::new();
        for line in header.lines() {
            let Some(rest) = line.strip_prefix("#define ") else { continue };
            let Some((name, value)) = rest.trim().split_once(char::is_whitespace) else { continue };
            let value = value.split("/*").next().unwrap_or_default().trim();
            let value = value.trim_start_matches('(').trim_end_matches(')');
            let term = |t: &str| -> CK_ULONG {
                let t = t.trim();
                defined.iter().find(|(n, _)| *n == t).map(|(_, v)| *v).unwrap_or_else(|| parse(t))
            };
            let parsed = if let Some((a, b)) = value.split_once('|') {
                term(a) | term(b)
            } else if let Some((a, b)) = value.split_once('+') {
                term(a) + term(b)
            } else {
                term(value)
            };
            let Some((_, expected)) = rust.iter().find(|(n, _)| *n == name) else {
                panic!("{name} is in the header but not in src/vendor.rs");
            };
            assert_eq!(parsed, *expected, "{name}");
            defined.push((name, parsed));
        }
        assert_eq!(defined.len(), rust.len(), "every Rust constant is in the header");
    }

    fn parse(text: &str) -> CK_ULONG {
        let t = text.trim().trim_end_matches("UL");
        CK_ULONG::from_str_radix(t.trim_start_matches("0x"), 16).expect("hex constant")
    }
}
