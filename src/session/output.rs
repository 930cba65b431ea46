//! The output-buffer protocol of every call that returns bytes, written once.
//!
//! A NULL output pointer asks for the length (the operation continues); a buffer that is too
//! small gets `CKR_BUFFER_TOO_SMALL` with the needed length (the operation continues); any
//! other error ends the operation, and so does success of a call that finishes it.

use zeroize::Zeroizing;

use crate::{Error, Result};

/// What the caller offered for the output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputBuffer {
    /// A NULL pointer: only the length is wanted.
    Query,
    Capacity(usize),
}

#[derive(Debug, PartialEq, Eq)]
pub enum Output {
    /// The answer to a length query.
    Length(usize),
    Bytes(Zeroizing<Vec<u8>>),
}

/// The length the next step of the operation in `slot` needs for its output, from `needed`
/// (which does not change the operation); failing to tell ends the operation.
fn needed_len<T: ?Sized>(
    slot: &mut Option<Box<T>>,
    needed: impl FnOnce(&T) -> Result<usize>,
) -> Result<usize> {
    let result = needed(slot.as_deref().ok_or(Error::OperationNotInitialized)?);
    if result.is_err() {
        *slot = None;
    }
    result
}

/// Runs one step of the operation in `slot`. `needed` computes the output size without
/// changing the operation; `run` does the work; `finishes` says whether success ends it.
pub fn output_step<T: ?Sized>(
    slot: &mut Option<Box<T>>,
    buffer: OutputBuffer,
    finishes: bool,
    needed: impl FnOnce(&T) -> Result<usize>,
    run: impl FnOnce(&mut T) -> Result<Zeroizing<Vec<u8>>>,
) -> Result<Output> {
    let needed = needed_len(slot, needed)?;
    match buffer {
        OutputBuffer::Query => return Ok(Output::Length(needed)),
        OutputBuffer::Capacity(c) if c < needed => return Err(Error::BufferTooSmall { needed }),
        OutputBuffer::Capacity(_) => {}
    }
    let result = run(slot.as_deref_mut().ok_or(Error::OperationNotInitialized)?);
    if finishes || result.is_err() {
        *slot = None;
    }
    result.map(Output::Bytes)
}

/// Where a step that writes into the caller's memory puts its output.
#[derive(Debug)]
pub enum Dest<'a> {
    /// A NULL pointer: only the length is wanted.
    Query,
    /// The caller's buffer, as long as the capacity it stated.
    Buffer(&'a mut [u8]),
}

/// What such a step delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivered {
    /// The answer to a length query.
    Length(usize),
    /// This many bytes written at the start of the caller's buffer.
    Written(usize),
}

/// As [`output_step`], for a step that writes straight into the caller's buffer: `run` gets
/// the whole buffer (at least `needed` bytes) and returns the length it wrote.
pub fn output_step_into<T: ?Sized>(
    slot: &mut Option<Box<T>>,
    dest: Dest<'_>,
    finishes: bool,
    needed: impl FnOnce(&T) -> Result<usize>,
    run: impl FnOnce(&mut T, &mut [u8]) -> Result<usize>,
) -> Result<Delivered> {
    let needed = needed_len(slot, needed)?;
    let buffer = match dest {
        Dest::Query => return Ok(Delivered::Length(needed)),
        Dest::Buffer(b) if b.len() < needed => return Err(Error::BufferTooSmall { needed }),
        Dest::Buffer(b) => b,
    };
    let result = run(slot.as_deref_mut().ok_or(Error::OperationNotInitialized)?, buffer);
    if finishes || result.is_err() {
        *slot = None;
    }
    result.map(Delivered::Written)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Echo(u32);

    fn step(slot: &mut Option<Box<Echo>>, buffer: OutputBuffer, fail: bool) -> Result<Output> {
        output_step(
            slot,
            buffer,
            true,
            |_| Ok(4),
            |e| {
                e.0 += 1;
                if fail { Err(Error::DataLenRange) } else { Ok(Zeroizing::new(vec![1; 4])) }
            },
        )
    }

    #[test]
    fn query_and_short_buffer_keep_the_operation_and_do_no_work() {
        let mut slot = Some(Box::new(Echo(0)));
        assert_eq!(step(&mut slot, OutputBuffer::Query, false), Ok(Output::Length(4)));
        assert_eq!(
            step(&mut slot, OutputBuffer::Capacity(3), false),
            Err(Error::BufferTooSmall { needed: 4 })
        );
        assert_eq!(slot.as_ref().unwrap().0, 0);
        assert!(matches!(step(&mut slot, OutputBuffer::Capacity(4), false), Ok(Output::Bytes(_))));
        assert!(slot.is_none(), "a finishing step ends the operation");
        assert_eq!(step(&mut slot, OutputBuffer::Query, false), Err(Error::OperationNotInitialized));
    }

    #[test]
    fn errors_end_the_operation() {
        let mut slot = Some(Box::new(Echo(0)));
        assert_eq!(step(&mut slot, OutputBuffer::Capacity(8), true), Err(Error::DataLenRange));
        assert!(slot.is_none());
    }
}
