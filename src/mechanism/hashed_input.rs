//! The input of a signature or verification in parts: a hash-and-sign mechanism
//! (`CKM_ECDSA_SHA256`, `CKM_SHA256_RSA_PKCS`, ...) hashes the parts as they come; a mechanism
//! that takes the hash or the message whole (`CKM_ECDSA`, `CKM_RSA_PKCS`) has no hash here and
//! refuses parts with `CKR_MECHANISM_INVALID`.

use aws_lc_rs::digest::{Algorithm, Context, Digest};

use crate::Result;

pub(crate) struct HashedInput {
    context: Option<Context>,
}

impl HashedInput {
    /// Hashes parts with `digest`; with `None`, refuses them.
    pub(crate) fn new(digest: Option<&'static Algorithm>) -> HashedInput {
        HashedInput { context: digest.map(Context::new) }
    }

    /// Whether parts are accepted (the mechanism hashes its input).
    pub(crate) fn hashes(&self) -> bool {
        self.context.is_some()
    }

    pub(crate) fn update(&mut self, part: &[u8]) -> Result<()> {
        self.context.as_mut().ok_or(super::SINGLE_PART_ONLY)?.update(part);
        Ok(())
    }

    /// The hash of the parts so far; the hash starts again empty for the next operation.
    pub(crate) fn finish(&mut self) -> Result<Digest> {
        let context = self.context.as_mut().ok_or(super::SINGLE_PART_ONLY)?;
        let algorithm = context.algorithm();
        Ok(std::mem::replace(context, Context::new(algorithm)).finish())
    }
}
