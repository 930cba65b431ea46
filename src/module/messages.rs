//! Message-based encryption and decryption (PKCS#11 3.0 chapter 5.11 and 5.12's message
//! functions): one key, many messages, each with its own parameters.

use cryptoki_sys::*;
use zeroize::Zeroizing;

use super::Module;
use crate::mechanism::aes_gcm::{self, GcmMessageParams};
use crate::mechanism::{self, Mechanism};
use crate::session::CipherKind;
use crate::session::{Output, OutputBuffer};
use crate::{Error, Result};

impl Module {
    /// `C_MessageEncryptInit`/`C_MessageDecryptInit`, recorded as `encrypt`/`decrypt`
    /// naming key and mechanism; the per-message parameters come with each message. The
    /// messages of the operation (`C_EncryptMessage`, `C_DecryptMessage`) are not recorded
    /// one by one, as the steps of `C_EncryptInit`'s operation are not: the key, the
    /// mechanism, the principal and the permission are all settled at the init, and a
    /// record per message would double the cost of each small message for nothing the
    /// init's record does not say.
    pub fn message_init(
        &self,
        h: CK_SESSION_HANDLE,
        kind: CipherKind,
        mechanism: &Mechanism,
        key: CK_OBJECT_HANDLE,
    ) -> Result<()> {
        let message_init = || -> Result<()> {
            let (s, token) = self.session_and_token(h)?;
            let mut ops = s.operations.lock();
            let (slot, usage, encrypt) = match kind {
                CipherKind::Encrypt => (&mut ops.message_encrypt, CKA_ENCRYPT, true),
                CipherKind::Decrypt => (&mut ops.message_decrypt, CKA_DECRYPT, false),
            };
            if slot.is_some() {
                return Err(Error::OperationActive);
            }
            let secret = token.secret_key_for(s.read_write, key, usage, mechanism.kind)?;
            *slot = Some(mechanism::message_init(mechanism, &secret, encrypt)?);
            Ok(())
        };
        self.audited(h, kind.name(), Some(key), Some(mechanism.kind), message_init, || {
            drop(self.message_final(h, kind))
        })
    }

    /// `C_EncryptMessage`: seals one message, generating its IV if asked. The output is the
    /// ciphertext (as long as the plaintext); the IV used and the tag are returned beside it.
    /// A size query or a short buffer consumes no IV. Errors leave the operation active.
    pub fn encrypt_message(
        &self,
        h: CK_SESSION_HANDLE,
        params: &mut GcmMessageParams,
        aad: &[u8],
        plaintext: &[u8],
        buffer: OutputBuffer,
    ) -> Result<(Output, aes_gcm::Tag)> {
        let s = self.session(h)?;
        let mut ops = s.operations.lock();
        let key = ops.message_encrypt.as_mut().ok_or(Error::OperationNotInitialized)?;
        match buffer {
            OutputBuffer::Query => return Ok((Output::Length(plaintext.len()), aes_gcm::Tag::none())),
            OutputBuffer::Capacity(c) if c < plaintext.len() => {
                return Err(Error::BufferTooSmall { needed: plaintext.len() });
            }
            OutputBuffer::Capacity(_) => {}
        }
        let (ciphertext, tag) = key.encrypt(params, aad, plaintext)?;
        Ok((Output::Bytes(Zeroizing::new(ciphertext)), tag))
    }

    /// `C_DecryptMessage`: opens one message with its IV and tag.
    pub fn decrypt_message(
        &self,
        h: CK_SESSION_HANDLE,
        params: &GcmMessageParams,
        tag: &[u8],
        aad: &[u8],
        ciphertext: &[u8],
        buffer: OutputBuffer,
    ) -> Result<Output> {
        let s = self.session(h)?;
        let ops = s.operations.lock();
        let key = ops.message_decrypt.as_ref().ok_or(Error::OperationNotInitialized)?;
        match buffer {
            OutputBuffer::Query => return Ok(Output::Length(ciphertext.len())),
            OutputBuffer::Capacity(c) if c < ciphertext.len() => {
                return Err(Error::BufferTooSmall { needed: ciphertext.len() });
            }
            OutputBuffer::Capacity(_) => {}
        }
        key.decrypt(params, tag, aad, ciphertext).map(Output::Bytes)
    }

    /// `C_MessageEncryptFinal`/`C_MessageDecryptFinal`.
    pub fn message_final(&self, h: CK_SESSION_HANDLE, kind: CipherKind) -> Result<()> {
        let s = self.session(h)?;
        let mut ops = s.operations.lock();
        let slot = match kind {
            CipherKind::Encrypt => &mut ops.message_encrypt,
            CipherKind::Decrypt => &mut ops.message_decrypt,
        };
        slot.take().map(|_| ()).ok_or(Error::OperationNotInitialized)
    }
}
