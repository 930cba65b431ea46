//! CKM_AES_ECB, CKM_AES_CBC, CKM_AES_CBC_PAD and CKM_AES_CTR for C_Encrypt*/C_Decrypt*.
//!
//! ECB and CBC process whole blocks as they arrive and keep a partial block for the next call;
//! without padding, data that does not end on a block boundary is refused at the end
//! (`CKR_DATA_LEN_RANGE` encrypting, `CKR_ENCRYPTED_DATA_LEN_RANGE` decrypting). CBC_PAD adds
//! PKCS #7 padding (always at least one byte) and, decrypting, holds the last block back until
//! the final call, where a bad padding is one `CKR_ENCRYPTED_DATA_INVALID` checked in constant
//! shape (no padding oracle). Decrypting CBC_PAD, the announced output sizes are upper bounds.
//!
//! CTR is in `aes_ctr.rs`; this file starts it.

use aws_lc_rs::cipher::{
    AES_128, AES_192, AES_256, Algorithm, DecryptingKey, DecryptionContext, EncryptingKey, EncryptionContext,
    UnboundCipherKey,
};
use aws_lc_rs::iv::FixedLength;
use cryptoki_sys::{CK_MECHANISM_TYPE, CKK_AES, CKM_AES_CBC, CKM_AES_CBC_PAD, CKM_AES_CTR, CKM_AES_ECB};
use zeroize::Zeroizing;

use super::aes_ctr::CtrOperation;
use super::secret_buffer::SecretBuffer;
use super::{CipherOperation, MechanismParams, SecretKey};
use crate::{Error, Result};

/// The AES block size in bytes.
pub const BLOCK_LEN: usize = 16;

/// Starts an AES-ECB, -CBC, -CBC_PAD or -CTR encryption (`encrypt`) or decryption.
pub fn cipher(
    mechanism: CK_MECHANISM_TYPE,
    params: &MechanismParams,
    key: &SecretKey,
    encrypt: bool,
) -> Result<Box<dyn CipherOperation>> {
    let mode = match mechanism {
        CKM_AES_ECB => Mode::Ecb,
        CKM_AES_CBC => Mode::Cbc,
        CKM_AES_CBC_PAD => Mode::CbcPad,
        CKM_AES_CTR => {
            let algorithm = aes_algorithm(key)?;
            let MechanismParams::Ctr(p) = params else {
                return Err(Error::MechanismParamInvalid);
            };
            return Ok(Box::new(CtrOperation::new(algorithm, key, p, encrypt)?));
        }
        _ => return Err(Error::MechanismInvalid),
    };
    let algorithm = aes_algorithm(key)?;
    let iv = match (mode, params) {
        (Mode::Ecb, MechanismParams::None) => [0; BLOCK_LEN],
        (Mode::Cbc | Mode::CbcPad, MechanismParams::Iv(iv)) => {
            iv.as_slice().try_into().map_err(|_| Error::MechanismParamInvalid)?
        }
        _ => return Err(Error::MechanismParamInvalid),
    };
    Ok(Box::new(BlockOperation::new(algorithm, key, mode, iv, encrypt)?))
}

/// The aws-lc-rs algorithm of an AES key; refuses other key types and sizes.
pub(crate) fn aes_algorithm(key: &SecretKey) -> Result<&'static Algorithm> {
    if key.key_type != CKK_AES {
        return Err(Error::KeyTypeInconsistent);
    }
    match key.value.len() {
        16 => Ok(&AES_128),
        24 => Ok(&AES_192),
        32 => Ok(&AES_256),
        _ => Err(Error::KeySizeRange),
    }
}

pub(super) fn unbound(algorithm: &'static Algorithm, key: &SecretKey) -> Result<UnboundCipherKey> {
    UnboundCipherKey::new(algorithm, &key.value).map_err(|_| Error::KeySizeRange)
}

pub(super) const ENGINE_FAILED: Error = Error::Internal("AES operation failed");

/// AES as a bare block cipher over whole blocks (ECB): the primitive under the key wraps and
/// CTR.
pub(crate) struct AesBlocks {
    enc: EncryptingKey,
    dec: DecryptingKey,
}

impl AesBlocks {
    pub(crate) fn new(key: &SecretKey) -> Result<AesBlocks> {
        let algorithm = aes_algorithm(key)?;
        Ok(AesBlocks {
            enc: EncryptingKey::ecb(unbound(algorithm, key)?).map_err(|_| ENGINE_FAILED)?,
            dec: DecryptingKey::ecb(unbound(algorithm, key)?).map_err(|_| ENGINE_FAILED)?,
        })
    }

    /// Encrypts `data` in place; its length must be a multiple of the block size.
    pub(crate) fn encrypt(&self, data: &mut [u8]) -> Result<()> {
        self.enc.less_safe_encrypt(data, EncryptionContext::None).map(|_| ()).map_err(|_| ENGINE_FAILED)
    }

    /// Decrypts `data` in place; its length must be a multiple of the block size.
    pub(crate) fn decrypt(&self, data: &mut [u8]) -> Result<()> {
        self.dec.decrypt(data, DecryptionContext::None).map(|_| ()).map_err(|_| ENGINE_FAILED)
    }
}

/// Constant-shape helpers: each returns 1 or 0 without branching on its (secret) inputs.
/// Arguments must be below 2^63.
pub(crate) mod ct {
    /// 1 if `a < b`.
    pub(crate) fn lt(a: u64, b: u64) -> u64 {
        (a.wrapping_sub(b) >> 63) & 1
    }

    /// 1 if `a <= b`.
    pub(crate) fn le(a: u64, b: u64) -> u64 {
        1 ^ lt(b, a)
    }

    /// 1 if `a != 0`.
    pub(crate) fn nonzero(a: u64) -> u64 {
        ((a | a.wrapping_neg()) >> 63) & 1
    }

    /// 1 if the slices are equal (lengths are public).
    pub(crate) fn eq(a: &[u8], b: &[u8]) -> u64 {
        u64::from(aws_lc_rs::constant_time::verify_slices_are_equal(a, b).is_ok())
    }
}

/// Checks the PKCS #7 padding at the end of `last_block` (one block of the padding's block
/// size) in constant shape: returns (1 if valid else 0, the padding length). The length is
/// meaningful only when valid.
pub(crate) fn pkcs7_check(last_block: &[u8]) -> (u64, usize) {
    let len = last_block.len() as u64;
    let pad = u64::from(last_block[last_block.len() - 1]);
    let mut bad = 1 ^ ct::nonzero(pad);
    bad |= ct::lt(len, pad);
    for (i, byte) in last_block.iter().enumerate() {
        let from_end = len - i as u64;
        bad |= ct::le(from_end, pad) & ct::nonzero(u64::from(*byte) ^ pad);
    }
    (1 ^ bad, pad as usize)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Ecb,
    Cbc,
    CbcPad,
}

enum Engine {
    Encrypt(EncryptingKey),
    Decrypt(DecryptingKey),
}

/// ECB, CBC and CBC_PAD.
struct BlockOperation {
    mode: Mode,
    engine: Engine,
    /// The chaining value: the IV, then the last ciphertext block (CBC only).
    chain: [u8; BLOCK_LEN],
    /// Input not processed yet: a partial block, or (decrypting CBC_PAD) the held-back block.
    pending: SecretBuffer,
}

impl BlockOperation {
    fn new(
        algorithm: &'static Algorithm,
        key: &SecretKey,
        mode: Mode,
        iv: [u8; BLOCK_LEN],
        encrypt: bool,
    ) -> Result<BlockOperation> {
        let unbound = unbound(algorithm, key)?;
        let engine = match (mode, encrypt) {
            (Mode::Ecb, true) => Engine::Encrypt(EncryptingKey::ecb(unbound).map_err(|_| ENGINE_FAILED)?),
            (Mode::Ecb, false) => Engine::Decrypt(DecryptingKey::ecb(unbound).map_err(|_| ENGINE_FAILED)?),
            (_, true) => Engine::Encrypt(EncryptingKey::cbc(unbound).map_err(|_| ENGINE_FAILED)?),
            (_, false) => Engine::Decrypt(DecryptingKey::cbc(unbound).map_err(|_| ENGINE_FAILED)?),
        };
        Ok(BlockOperation { mode, engine, chain: iv, pending: SecretBuffer::new() })
    }

    fn encrypting(&self) -> bool {
        matches!(self.engine, Engine::Encrypt(_))
    }

    fn len_error(&self) -> Error {
        if self.encrypting() { Error::DataLenRange } else { Error::EncryptedDataLenRange }
    }

    /// How many of `total` available bytes stay pending after an update.
    fn held_back(&self, total: usize) -> usize {
        let partial = total % BLOCK_LEN;
        if self.mode == Mode::CbcPad && !self.encrypting() && partial == 0 {
            // The last whole block may be the padding: keep it for the final call.
            total.min(BLOCK_LEN)
        } else {
            partial
        }
    }

    /// Encrypts or decrypts whole blocks in place, carrying the CBC chain.
    fn process(&mut self, data: &mut [u8]) -> Result<()> {
        if data.is_empty() {
            return Ok(());
        }
        let last: [u8; BLOCK_LEN] =
            data[data.len() - BLOCK_LEN..].try_into().map_err(|_| Error::Internal("partial AES block"))?;
        match (&self.engine, self.mode) {
            (Engine::Encrypt(k), Mode::Ecb) => {
                k.less_safe_encrypt(data, EncryptionContext::None).map_err(|_| ENGINE_FAILED)?;
            }
            (Engine::Decrypt(k), Mode::Ecb) => {
                k.decrypt(data, DecryptionContext::None).map_err(|_| ENGINE_FAILED)?;
            }
            (Engine::Encrypt(k), _) => {
                let iv = EncryptionContext::Iv128(FixedLength::from(self.chain));
                k.less_safe_encrypt(data, iv).map_err(|_| ENGINE_FAILED)?;
                self.chain.copy_from_slice(&data[data.len() - BLOCK_LEN..]);
            }
            (Engine::Decrypt(k), _) => {
                let iv = DecryptionContext::Iv128(FixedLength::from(self.chain));
                k.decrypt(data, iv).map_err(|_| ENGINE_FAILED)?;
                self.chain = last;
            }
        }
        Ok(())
    }
}

impl CipherOperation for BlockOperation {
    fn single_len(&self, input_len: usize) -> Result<usize> {
        match (self.mode, self.encrypting()) {
            (Mode::CbcPad, true) => (input_len / BLOCK_LEN)
                .checked_add(1)
                .and_then(|b| b.checked_mul(BLOCK_LEN))
                .ok_or(Error::DataLenRange),
            // An upper bound: the padding removes 1 to 16 bytes.
            (Mode::CbcPad, false) if input_len > 0 && input_len.is_multiple_of(BLOCK_LEN) => {
                Ok(input_len - 1)
            }
            (_, true) | (Mode::Ecb | Mode::Cbc, false) if input_len.is_multiple_of(BLOCK_LEN) => {
                Ok(input_len)
            }
            _ => Err(self.len_error()),
        }
    }

    fn update_len(&self, input_len: usize) -> usize {
        let total = self.pending.len().saturating_add(input_len);
        total - self.held_back(total)
    }

    fn final_len(&self) -> usize {
        match (self.mode, self.encrypting()) {
            (Mode::CbcPad, true) => BLOCK_LEN,
            // An upper bound: at most 15 bytes of the held-back block are data.
            (Mode::CbcPad, false) => self.pending.len().saturating_sub(1),
            _ => 0,
        }
    }

    fn single(&mut self, input: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        self.single_len(input.len())?;
        let mut out = self.update(input)?;
        out.extend_from_slice(&self.finish()?);
        Ok(out)
    }

    fn update_room(&self) -> usize {
        self.pending.room()
    }

    fn update(&mut self, input: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        if input.len() > self.pending.room() {
            return Err(self.len_error());
        }
        let mut data = self.pending.take();
        data.extend_from_slice(input);
        let ready = data.len() - self.held_back(data.len());
        self.pending.extend_from_slice(&data[ready..]);
        data.truncate(ready);
        self.process(&mut data)?;
        Ok(data)
    }

    fn finish(&mut self) -> Result<Zeroizing<Vec<u8>>> {
        let mut data = self.pending.take();
        match (self.mode, self.encrypting()) {
            (Mode::CbcPad, true) => {
                let pad = BLOCK_LEN - data.len();
                data.resize(BLOCK_LEN, pad as u8);
                self.process(&mut data)?;
                Ok(data)
            }
            (Mode::CbcPad, false) => {
                if data.len() != BLOCK_LEN {
                    return Err(Error::EncryptedDataLenRange);
                }
                self.process(&mut data)?;
                let (valid, pad) = pkcs7_check(&data);
                if valid != 1 {
                    return Err(Error::EncryptedDataInvalid);
                }
                data.truncate(BLOCK_LEN - pad);
                Ok(data)
            }
            _ if data.is_empty() => Ok(data),
            _ => Err(self.len_error()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mechanism::CtrParams;

    fn key(bytes: &[u8]) -> SecretKey {
        SecretKey { key_type: CKK_AES, value: Zeroizing::new(bytes.to_vec()) }
    }

    use crate::mechanism::test_vectors::unhex as hex;

    const K128: &str = "2b7e151628aed2a6abf7158809cf4f3c";
    const K256: &str = "603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4";
    /// The four plaintext blocks of NIST SP 800-38A appendix F.
    const PLAIN: &str = "6bc1bee22e409f96e93d7e117393172a ae2d8a571e03ac9c9eb76fac45af8e51
                         30c81c46a35ce411e5fbc1191a0a52ef f69f2445df4f9b17ad2b417be66c3710";
    const IV: &str = "000102030405060708090a0b0c0d0e0f";
    const CTR_BLOCK: &str = "f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff";

    fn ctr(bits: u64, block: &[u8]) -> MechanismParams {
        MechanismParams::Ctr(CtrParams { counter_bits: bits, counter_block: block.try_into().unwrap() })
    }

    fn run(
        m: CK_MECHANISM_TYPE,
        p: &MechanismParams,
        k: &str,
        encrypt: bool,
        input: &[u8],
    ) -> Result<Vec<u8>> {
        cipher(m, p, &key(&hex(k)), encrypt)?.single(input).map(|o| o.to_vec())
    }

    /// Encrypts and decrypts a published vector, single-part.
    fn known_answer(m: CK_MECHANISM_TYPE, p: &MechanismParams, k: &str, ct: &str) {
        assert_eq!(run(m, p, k, true, &hex(PLAIN)).unwrap(), hex(ct), "encrypt {m:#x} key {k}");
        assert_eq!(run(m, p, k, false, &hex(ct)).unwrap(), hex(PLAIN), "decrypt {m:#x} key {k}");
    }

    /// Feeds `input` in chunks of `chunk` bytes, checking each update against `update_len`
    /// and the final call against `final_len` (an upper bound).
    fn multipart(op: &mut dyn CipherOperation, input: &[u8], chunk: usize) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        for part in input.chunks(chunk) {
            let announced = op.update_len(part.len());
            let got = op.update(part)?;
            assert_eq!(got.len(), announced, "update_len must be exact");
            out.extend_from_slice(&got);
        }
        let announced = op.final_len();
        let got = op.finish()?;
        assert!(got.len() <= announced, "final_len must be an upper bound");
        out.extend_from_slice(&got);
        Ok(out)
    }

    /// NIST SP 800-38A F.1.1/F.1.2 (ECB-AES128) and F.1.5/F.1.6 (ECB-AES256).
    #[test]
    fn ecb_known_answers() {
        known_answer(
            CKM_AES_ECB,
            &MechanismParams::None,
            K128,
            "3ad77bb40d7a3660a89ecaf32466ef97 f5d3d58503b9699de785895a96fdbaaf
             43b1cd7f598ece23881b00e3ed030688 7b0c785e27e8ad3f8223207104725dd4",
        );
        known_answer(
            CKM_AES_ECB,
            &MechanismParams::None,
            K256,
            "f3eed1bdb5d2a03c064b5a7e3db181f8 591ccb10d410ed26dc5ba74a31362870
             b6ed21b99ca6f4f9f153e7b1beafed1d 23304b7a39f9f3ff067d8d8f9e24ecc7",
        );
    }

    /// NIST SP 800-38A F.2.1/F.2.2 (CBC-AES128) and F.2.5/F.2.6 (CBC-AES256).
    #[test]
    fn cbc_known_answers() {
        let iv = MechanismParams::Iv(hex(IV));
        known_answer(
            CKM_AES_CBC,
            &iv,
            K128,
            "7649abac8119b246cee98e9b12e9197d 5086cb9b507219ee95db113a917678b2
             73bed6b8e3c1743b7116e69e22229516 3ff1caa1681fac09120eca307586e1a7",
        );
        known_answer(
            CKM_AES_CBC,
            &iv,
            K256,
            "f58c4c04d6e5f1ba779eabfb5f7bfbd6 9cfc4e967edb808d679f777bc6702c7d
             39f23369a9d9bacfa530e26304231461 b2eb05e2c39be9fcda6c19078c6a9d1b",
        );
    }

    /// NIST SP 800-38A F.5.1/F.5.2 (CTR-AES128) and F.5.5/F.5.6 (CTR-AES256).
    #[test]
    fn ctr_known_answers() {
        let p = ctr(128, &hex(CTR_BLOCK));
        known_answer(
            CKM_AES_CTR,
            &p,
            K128,
            "874d6191b620e3261bef6864990db6ce 9806f66b7970fdff8617187bb9fffdff
             5ae4df3edbd5d35e5b4f09020db03eab 1e031dda2fbe03d1792170a0f3009cee",
        );
        known_answer(
            CKM_AES_CTR,
            &p,
            K256,
            "601ec313775789a5b7a7f504bbf3d228 f443e3ca4d62b59aca84e990cacaf5c5
             2b0930daa23de94ce87017ba2d84988d dfc9c58db67aada613c2dd08457941a6",
        );
        // The vector's counter (...feff to ...ff02) never carries past its low 16 bits, so it
        // holds for any counter of 16 bits or more; a stream may also end mid-block.
        let p = ctr(16, &hex(CTR_BLOCK));
        let ct = run(CKM_AES_CTR, &p, K128, true, &hex(PLAIN)[..37]).unwrap();
        assert_eq!(ct, hex("874d6191b620e3261bef6864990db6ce 9806f66b7970fdff8617187bb9fffdff 5ae4df3edb"));
    }

    /// With n counter bits the counter wraps within them: the bits above are left alone.
    #[test]
    fn ctr_counter_wraps_within_its_bits() {
        let k = key(&hex(K128));
        let aes = AesBlocks::new(&k).unwrap();
        let start = hex("00112233445566778899aabbccddeeff");
        for bits in [1u64, 4, 8, 32, 64, 127] {
            let mut expected = Vec::new();
            let mut block = u128::from_be_bytes(start.as_slice().try_into().unwrap());
            let mask = (1u128 << bits) - 1;
            for _ in 0..2 {
                expected.extend_from_slice(&block.to_be_bytes());
                block = (block & !mask) | (block.wrapping_add(1) & mask);
            }
            aes.encrypt(&mut expected).unwrap();
            let zeros = [0u8; 32];
            let stream = run(CKM_AES_CTR, &ctr(bits, &start), K128, true, &zeros).unwrap();
            assert_eq!(stream, expected, "{bits} counter bits");
        }
        // Counter ...ff with 128 bits carries into the byte above, with 8 bits it does not.
        let all_ff = [0xff; 16];
        let full = run(CKM_AES_CTR, &ctr(128, &all_ff), K128, true, &[0; 32]).unwrap();
        let eight = run(CKM_AES_CTR, &ctr(8, &all_ff), K128, true, &[0; 32]).unwrap();
        assert_eq!(full[..16], eight[..16]);
        let mut wrapped = [0xff; 16];
        wrapped[15] = 0;
        aes.encrypt(&mut wrapped).unwrap();
        assert_eq!(eight[16..], wrapped);
        let mut carried = [0u8; 16];
        aes.encrypt(&mut carried).unwrap();
        assert_eq!(full[16..], carried);
    }

    /// Once every counter value is used, more data is refused rather than reusing keystream.
    #[test]
    fn ctr_refuses_to_reuse_the_keystream() {
        let p = ctr(1, &[0; 16]);
        assert_eq!(run(CKM_AES_CTR, &p, K128, true, &[0; 32]).unwrap().len(), 32);
        assert_eq!(run(CKM_AES_CTR, &p, K128, true, &[0; 33]), Err(Error::DataLenRange));
        assert_eq!(run(CKM_AES_CTR, &p, K128, false, &[0; 33]), Err(Error::EncryptedDataLenRange));
        let mut op = cipher(CKM_AES_CTR, &p, &key(&hex(K128)), true).unwrap();
        assert_eq!(op.update(&[0; 20]).unwrap().len(), 20);
        assert_eq!(op.update(&[0; 12]).unwrap().len(), 12);
        assert_eq!(op.update(&[0; 1]).unwrap_err(), Error::DataLenRange);
    }

    #[test]
    fn cbc_pad_round_trips_every_length() {
        let k = key(&hex(K256));
        let iv = MechanismParams::Iv(hex(IV));
        let data: Vec<u8> = (0..=33u8).collect();
        for len in 0..=33 {
            let mut enc = cipher(CKM_AES_CBC_PAD, &iv, &k, true).unwrap();
            let expected_len = (len / 16 + 1) * 16;
            assert_eq!(enc.single_len(len).unwrap(), expected_len);
            let ct = enc.single(&data[..len]).unwrap();
            assert_eq!(ct.len(), expected_len, "length {len}");
            // Without the padding, the ciphertext is plain CBC over the padded data.
            let mut padded = data[..len].to_vec();
            padded.resize(expected_len, (expected_len - len) as u8);
            assert_eq!(cipher(CKM_AES_CBC, &iv, &k, true).unwrap().single(&padded).unwrap(), ct);
            let mut dec = cipher(CKM_AES_CBC_PAD, &iv, &k, false).unwrap();
            assert!(dec.single_len(ct.len()).unwrap() >= len);
            assert_eq!(dec.single(&ct).unwrap().as_slice(), &data[..len], "length {len}");
        }
    }

    /// Any bad padding is the same single error.
    #[test]
    fn cbc_pad_refuses_tampered_padding() {
        let k = key(&hex(K128));
        let iv = MechanismParams::Iv(hex(IV));
        let ecb = |data: &[u8]| cipher(CKM_AES_CBC, &iv, &k, true).unwrap().single(data).unwrap().to_vec();
        let mut blocks = Vec::new();
        // A last byte of 0 or above 16, and mismatched padding bytes at either end.
        let mut b = [7u8; 16];
        b[15] = 0;
        blocks.push(b);
        b[15] = 17;
        blocks.push(b);
        let mut b = [4u8; 16];
        b[12] = 5;
        blocks.push(b);
        let mut b = [16u8; 16];
        b[0] = 15;
        blocks.push(b);
        for block in blocks {
            let ct = ecb(&block);
            let err = cipher(CKM_AES_CBC_PAD, &iv, &k, false).unwrap().single(&ct).unwrap_err();
            assert_eq!(err, Error::EncryptedDataInvalid, "{block:?}");
        }
        // A flipped bit in the ciphertext's second-to-last block corrupts the padding.
        let mut ct =
            cipher(CKM_AES_CBC_PAD, &iv, &k, true).unwrap().single(b"sixteen bytes!!!x").unwrap().to_vec();
        ct[15] ^= 0x40;
        let err = cipher(CKM_AES_CBC_PAD, &iv, &k, false).unwrap().single(&ct).unwrap_err();
        assert_eq!(err, Error::EncryptedDataInvalid);
        // Valid edge cases: a full block of padding, and one byte.
        assert_eq!(
            cipher(CKM_AES_CBC_PAD, &iv, &k, false).unwrap().single(&ecb(&[16; 16])).unwrap().len(),
            0
        );
        let mut one = [9u8; 16];
        one[15] = 1;
        assert_eq!(
            cipher(CKM_AES_CBC_PAD, &iv, &k, false).unwrap().single(&ecb(&one)).unwrap().as_slice(),
            &[9; 15]
        );
    }

    #[test]
    fn multipart_in_odd_chunks_equals_single_part() {
        let k = key(&hex(K256));
        let data: Vec<u8> = (0..100u8).collect();
        let cases: [(CK_MECHANISM_TYPE, MechanismParams, usize); 4] = [
            (CKM_AES_ECB, MechanismParams::None, 96),
            (CKM_AES_CBC, MechanismParams::Iv(hex(IV)), 96),
            (CKM_AES_CBC_PAD, MechanismParams::Iv(hex(IV)), 100),
            (CKM_AES_CTR, ctr(16, &hex(CTR_BLOCK)), 100),
        ];
        for (m, p, len) in &cases {
            let input = &data[..*len];
            let single = cipher(*m, p, &k, true).unwrap().single(input).unwrap();
            for chunk in [1, 7, 15, 16, 17, 100] {
                let mut op = cipher(*m, p, &k, true).unwrap();
                assert_eq!(
                    multipart(op.as_mut(), input, chunk).unwrap(),
                    single.as_slice(),
                    "{m:#x} by {chunk}"
                );
                let mut op = cipher(*m, p, &k, false).unwrap();
                assert_eq!(multipart(op.as_mut(), &single, chunk).unwrap(), input, "{m:#x} back by {chunk}");
            }
        }
    }

    #[test]
    fn cbc_pad_decrypt_holds_back_the_last_block() {
        let k = key(&hex(K128));
        let iv = MechanismParams::Iv(hex(IV));
        let ct = cipher(CKM_AES_CBC_PAD, &iv, &k, true).unwrap().single(&[5; 20]).unwrap();
        let mut op = cipher(CKM_AES_CBC_PAD, &iv, &k, false).unwrap();
        assert_eq!(op.update_len(16), 0);
        assert!(op.update(&ct[..16]).unwrap().is_empty());
        assert_eq!(op.update_len(16), 16);
        assert_eq!(op.update(&ct[16..]).unwrap().as_slice(), &[5; 16]);
        assert_eq!(op.final_len(), 15);
        assert_eq!(op.finish().unwrap().as_slice(), &[5; 4]);
    }

    #[test]
    fn lengths_are_checked() {
        let k = key(&hex(K128));
        let iv = MechanismParams::Iv(hex(IV));
        for (m, p) in [(CKM_AES_ECB, MechanismParams::None), (CKM_AES_CBC, iv.clone())] {
            assert_eq!(cipher(m, &p, &k, true).unwrap().single(&[0; 17]).unwrap_err(), Error::DataLenRange);
            assert_eq!(
                cipher(m, &p, &k, false).unwrap().single(&[0; 15]).unwrap_err(),
                Error::EncryptedDataLenRange
            );
            assert_eq!(cipher(m, &p, &k, true).unwrap().single_len(17).unwrap_err(), Error::DataLenRange);
            assert_eq!(cipher(m, &p, &k, true).unwrap().single(&[]).unwrap().len(), 0);
            let mut op = cipher(m, &p, &k, true).unwrap();
            assert_eq!(op.update(&[0; 20]).unwrap().len(), 16);
            assert_eq!(op.finish().unwrap_err(), Error::DataLenRange);
            let mut op = cipher(m, &p, &k, false).unwrap();
            assert_eq!(op.update(&[0; 3]).unwrap().len(), 0);
            assert_eq!(op.finish().unwrap_err(), Error::EncryptedDataLenRange);
        }
        let mut dec = cipher(CKM_AES_CBC_PAD, &iv, &k, false).unwrap();
        assert_eq!(dec.single_len(0).unwrap_err(), Error::EncryptedDataLenRange);
        assert_eq!(dec.single(&[0; 17]).unwrap_err(), Error::EncryptedDataLenRange);
        assert_eq!(
            cipher(CKM_AES_CBC_PAD, &iv, &k, false).unwrap().single(&[]).unwrap_err(),
            Error::EncryptedDataLenRange
        );
        let mut op = cipher(CKM_AES_CBC_PAD, &iv, &k, false).unwrap();
        op.update(&[0; 20]).unwrap();
        assert_eq!(op.finish().unwrap_err(), Error::EncryptedDataLenRange);
    }

    #[test]
    fn parameters_and_keys_are_checked() {
        let k = key(&[1; 16]);
        let bad = Some(Error::MechanismParamInvalid);
        let iv = |n: usize| MechanismParams::Iv(vec![0; n]);
        assert_eq!(cipher(CKM_AES_ECB, &iv(16), &k, true).err(), bad.clone());
        assert_eq!(cipher(CKM_AES_CBC, &MechanismParams::None, &k, true).err(), bad.clone());
        assert_eq!(cipher(CKM_AES_CBC, &iv(15), &k, true).err(), bad.clone());
        assert_eq!(cipher(CKM_AES_CBC_PAD, &iv(17), &k, true).err(), bad.clone());
        assert_eq!(cipher(CKM_AES_CTR, &iv(16), &k, true).err(), bad.clone());
        assert_eq!(cipher(CKM_AES_CTR, &ctr(0, &[0; 16]), &k, true).err(), bad.clone());
        assert_eq!(cipher(CKM_AES_CTR, &ctr(129, &[0; 16]), &k, true).err(), bad);
        assert!(cipher(CKM_AES_CTR, &ctr(128, &[0; 16]), &k, true).is_ok());
        assert_eq!(
            cipher(CKM_AES_ECB, &MechanismParams::None, &key(&[1; 20]), true).err(),
            Some(Error::KeySizeRange)
        );
        assert_eq!(cipher(CKM_AES_CTR, &ctr(64, &[0; 16]), &key(&[]), true).err(), Some(Error::KeySizeRange));
        assert!(cipher(CKM_AES_ECB, &MechanismParams::None, &key(&[1; 24]), true).is_ok());
        let generic =
            SecretKey { key_type: cryptoki_sys::CKK_GENERIC_SECRET, value: Zeroizing::new(vec![1; 16]) };
        assert_eq!(cipher(CKM_AES_CBC, &iv(16), &generic, true).err(), Some(Error::KeyTypeInconsistent));
        assert_eq!(cipher(cryptoki_sys::CKM_AES_GCM, &iv(16), &k, true).err(), Some(Error::MechanismInvalid));
    }

    #[test]
    fn pkcs7_check_accepts_only_valid_padding() {
        for pad in 1..=8u8 {
            let mut block = [0xeeu8; 8];
            block[8 - pad as usize..].fill(pad);
            assert_eq!(pkcs7_check(&block), (1, pad as usize));
            if pad > 1 {
                block[8 - pad as usize] ^= 1;
                assert_eq!(pkcs7_check(&block).0, 0);
            }
        }
        assert_eq!(pkcs7_check(&[0; 8]).0, 0);
        assert_eq!(pkcs7_check(&[9; 8]).0, 0);
        assert_eq!(pkcs7_check(&[8; 8]).0, 1);
    }
}
