//! NIST GCM test case 16 (AES-256, 96-bit IV, 60-byte plaintext, 20-byte AAD), from the GCM
//! specification's appendix B: the known answer the AES-GCM tests of several files run.
#![allow(dead_code)]

pub const KEY: &str = "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308";
pub const IV: &str = "cafebabefacedbaddecaf888";
pub const AAD: &str = "feedfacedeadbeeffeedfacedeadbeefabaddad2";
pub const PT: &str = "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72
                      1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39";
pub const CT: &str = "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa
                      8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662";
pub const TAG: &str = "76fc6ece0f4e1768cddf8853bb2d551b";

/// The ciphertext followed by the tag: what single-part `C_Encrypt` with `CKM_AES_GCM` returns.
pub fn ct_and_tag() -> Vec<u8> {
    [super::hex(CT), super::hex(TAG)].concat()
}
