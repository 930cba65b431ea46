//! Ciphers that can only work on their whole input (AES-GCM, which cannot release plaintext
//! before the tag is checked; the AES key wraps used as C_Encrypt/C_Decrypt): as multi-part
//! operations, the updates collect the input (up to `MAX_HELD_INPUT`) and give nothing, and
//! the final call does the work.

use zeroize::Zeroizing;

use super::secret_buffer::SecretBuffer;
use super::{CipherOperation, copy_into};
use crate::{Error, Result};

/// A cipher over its whole input, made a multi-part operation by [`Collected`].
pub trait WholeInputCipher: Send {
    fn encrypting(&self) -> bool;

    /// Output size over `input_len` bytes; an error where no input of that length is valid.
    fn out_len(&self, input_len: usize) -> Result<usize>;

    fn run(&self, input: &[u8]) -> Result<Zeroizing<Vec<u8>>>;

    /// As `run`, written into `out` (at least `out_len` bytes); returns the length written.
    fn run_into(&self, input: &[u8], out: &mut [u8]) -> Result<usize> {
        copy_into(self.run(input)?, out)
    }
}

/// `cipher` as a [`CipherOperation`]: updates collect the input, the final call runs it.
pub struct Collected<C> {
    cipher: C,
    buffered: SecretBuffer,
}

impl<C: WholeInputCipher> Collected<C> {
    pub(super) fn around(cipher: C) -> Collected<C> {
        Collected { cipher, buffered: SecretBuffer::new() }
    }

    fn collect(&mut self, input: &[u8]) -> Result<()> {
        let too_long =
            if self.cipher.encrypting() { Error::DataLenRange } else { Error::EncryptedDataLenRange };
        self.buffered.append(input, too_long)
    }
}

impl<C: WholeInputCipher> CipherOperation for Collected<C> {
    fn single_len(&self, input_len: usize) -> Result<usize> {
        self.cipher.out_len(input_len)
    }

    fn update_len(&self, _input_len: usize) -> usize {
        0
    }

    fn final_len(&self) -> usize {
        // A length no input may have is reported by `finish`, not by the size query.
        self.cipher.out_len(self.buffered.len()).unwrap_or(0)
    }

    fn single(&mut self, input: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        self.cipher.run(input)
    }

    fn update(&mut self, input: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        self.collect(input)?;
        Ok(Zeroizing::new(Vec::new()))
    }

    fn update_room(&self) -> usize {
        self.buffered.room()
    }

    fn finish(&mut self) -> Result<Zeroizing<Vec<u8>>> {
        let input = self.buffered.take();
        self.cipher.run(&input)
    }

    fn single_into(&mut self, input: &[u8], out: &mut [u8]) -> Result<usize> {
        self.cipher.run_into(input, out)
    }

    fn update_into(&mut self, input: &[u8], _out: &mut [u8]) -> Result<usize> {
        self.collect(input)?;
        Ok(0)
    }

    fn finish_into(&mut self, out: &mut [u8]) -> Result<usize> {
        let input = self.buffered.take();
        self.cipher.run_into(&input, out)
    }
}
