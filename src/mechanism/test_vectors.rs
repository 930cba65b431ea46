//! What the known-answer tests of the mechanisms share: vectors written as hex text.

/// The bytes of a hex vector as the standards print them (spaces and line breaks between
/// groups of digits are ignored).
pub fn unhex(text: &str) -> Vec<u8> {
    hex::decode(text.split_whitespace().collect::<String>()).expect("a hex test vector")
}
