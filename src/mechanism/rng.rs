//! Randomness: AWS-LC's DRBG, seeded from the operating system.

use crate::{Error, Result};

pub fn fill(buf: &mut [u8]) -> Result<()> {
    aws_lc_rs::rand::fill(buf).map_err(|_| Error::Device("random generator failed".into()))
}

pub fn bytes<const N: usize>() -> Result<[u8; N]> {
    let mut out = [0u8; N];
    fill(&mut out)?;
    Ok(out)
}
