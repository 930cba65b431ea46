//! CKM_AES_CTR for C_Encrypt*/C_Decrypt* (started by `aes_modes::cipher`).
//!
//! CTR is built here from AES itself (the keystream is AES-ECB over the counter blocks): the
//! counter is the low `ulCounterBits` bits of the counter block and wraps within them, leaving
//! the other bits alone, as the specification defines it (aws-lc-rs's CTR mode increments
//! the whole 128-bit block, which is right only for 128 counter bits). Once all
//! `2^ulCounterBits` counter values are used, more data is refused (`CKR_DATA_LEN_RANGE`, or
//! `CKR_ENCRYPTED_DATA_LEN_RANGE` decrypting) rather than reusing keystream. Its tests are with
//! the other modes' in `aes_modes.rs`, through `cipher`.

use aws_lc_rs::cipher::{Algorithm, EncryptingKey, EncryptionContext};
use zeroize::Zeroizing;

use super::aes_modes::{BLOCK_LEN, ENGINE_FAILED, unbound};
use super::{CipherOperation, CtrParams, SecretKey};
use crate::{Error, Result};

/// CTR with a counter of `counter_bits` bits at the end of the counter block.
pub(super) struct CtrOperation {
    aes: EncryptingKey,
    encrypt: bool,
    /// The next counter block.
    counter: u128,
    /// The bits of the block that count.
    mask: u128,
    /// Counter values not used yet; `None` when they cannot run out (128 counter bits).
    blocks_left: Option<u128>,
    /// The unused end of the last keystream block.
    keystream: Zeroizing<[u8; BLOCK_LEN]>,
    used: usize,
}

impl CtrOperation {
    pub(super) fn new(
        algorithm: &'static Algorithm,
        key: &SecretKey,
        p: &CtrParams,
        encrypt: bool,
    ) -> Result<CtrOperation> {
        if p.counter_bits == 0 || p.counter_bits > 128 {
            return Err(Error::MechanismParamInvalid);
        }
        let (mask, blocks_left) = if p.counter_bits == 128 {
            (u128::MAX, None)
        } else {
            let values = 1u128 << p.counter_bits;
            (values - 1, Some(values))
        };
        Ok(CtrOperation {
            aes: EncryptingKey::ecb(unbound(algorithm, key)?).map_err(|_| ENGINE_FAILED)?,
            encrypt,
            counter: u128::from_be_bytes(p.counter_block),
            mask,
            blocks_left,
            keystream: Zeroizing::new([0; BLOCK_LEN]),
            used: BLOCK_LEN,
        })
    }

    fn next_counter(&mut self) -> [u8; BLOCK_LEN] {
        let current = self.counter;
        self.counter = (current & !self.mask) | (current.wrapping_add(1) & self.mask);
        current.to_be_bytes()
    }
}

impl CipherOperation for CtrOperation {
    fn single_len(&self, input_len: usize) -> Result<usize> {
        Ok(input_len)
    }

    fn update_len(&self, input_len: usize) -> usize {
        input_len
    }

    fn final_len(&self) -> usize {
        0
    }

    fn single(&mut self, input: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        self.update(input)
    }

    fn update(&mut self, input: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        let buffered = BLOCK_LEN - self.used;
        let fresh = input.len().saturating_sub(buffered);
        let blocks = fresh.div_ceil(BLOCK_LEN);
        if let Some(left) = self.blocks_left {
            if blocks as u128 > left {
                return Err(if self.encrypt { Error::DataLenRange } else { Error::EncryptedDataLenRange });
            }
            self.blocks_left = Some(left - blocks as u128);
        }
        let mut out = Zeroizing::new(input.to_vec());
        let (head, tail) = out.split_at_mut(input.len() - fresh);
        for (byte, k) in head.iter_mut().zip(&self.keystream[self.used..]) {
            *byte ^= k;
        }
        self.used += head.len();
        if blocks == 0 {
            return Ok(out);
        }
        let mut stream = Zeroizing::new(Vec::with_capacity(blocks * BLOCK_LEN));
        for _ in 0..blocks {
            let counter = self.next_counter();
            stream.extend_from_slice(&counter);
        }
        self.aes.less_safe_encrypt(&mut stream, EncryptionContext::None).map_err(|_| ENGINE_FAILED)?;
        for (byte, k) in tail.iter_mut().zip(stream.iter()) {
            *byte ^= k;
        }
        self.keystream.copy_from_slice(&stream[stream.len() - BLOCK_LEN..]);
        self.used = BLOCK_LEN - (blocks * BLOCK_LEN - fresh);
        Ok(out)
    }

    fn finish(&mut self) -> Result<Zeroizing<Vec<u8>>> {
        Ok(Zeroizing::new(Vec::new()))
    }
}
