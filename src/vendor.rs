//! ecm-hsm's vendor-defined constants, mirrored in `include/ecm_hsm.h` for C users (a test
//! below keeps the two in sync). Every value is `<kind>_VENDOR_DEFINED | 0x45434D00 | n`,
//! 0x45434D being "ECM".

use cryptoki_sys::{CK_ULONG, CKA_VENDOR_DEFINED, CKM_VENDOR_DEFINED, CKR_VENDOR_DEFINED};

pub const ECM_VENDOR_PREFIX: CK_ULONG = 0x4543_4D00;
pub const CKA_ECM_BASE: CK_ULONG = CKA_VENDOR_DEFINED | ECM_VENDOR_PREFIX;
pub const CKM_ECM_BASE: CK_ULONG = CKM_VENDOR_DEFINED | ECM_VENDOR_PREFIX;
pub const CKR_ECM_BASE: CK_ULONG = CKR_VENDOR_DEFINED | ECM_VENDOR_PREFIX;

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `#define NAME value` of the header whose value is a plain or prefixed number
    /// must equal the Rust constant of the same name.
    #[test]
    fn header_and_rust_agree() {
        let header = include_str!("../include/ecm_hsm.h");
        let rust = [
            ("ECM_VENDOR_PREFIX", ECM_VENDOR_PREFIX),
            ("CKA_ECM_BASE", CKA_ECM_BASE),
            ("CKM_ECM_BASE", CKM_ECM_BASE),
            ("CKR_ECM_BASE", CKR_ECM_BASE),
        ];
        let mut seen = 0;
        for line in header.lines() {
            let Some(rest) = line.strip_prefix("#define ") else { continue };
            let Some((name, value)) = rest.trim().split_once(char::is_whitespace) else { continue };
            let Some((_, expected)) = rust.iter().find(|(n, _)| *n == name) else {
                panic!("{name} is in the header but not in src/vendor.rs");
            };
            let value = value.trim().trim_start_matches('(').trim_end_matches(')');
            let parsed = match value.split_once('|') {
                Some((hi, _)) => parse(hi) | ECM_VENDOR_PREFIX,
                None => parse(value),
            };
            assert_eq!(parsed, *expected, "{name}");
            seen += 1;
        }
        assert_eq!(seen, rust.len(), "every Rust constant is in the header");
    }

    fn parse(text: &str) -> CK_ULONG {
        let t = text.trim().trim_end_matches("UL");
        CK_ULONG::from_str_radix(t.trim_start_matches("0x"), 16).expect("hex constant")
    }
}
