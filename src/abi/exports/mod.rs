//! The exported `C_*` functions, one file per chapter of the standard as in `crate::module`.
//! Each validates and copies its arguments in (through `marshal`), calls the module, and
//! copies the results out; nothing else.

mod general;
mod keys;
mod messages;
mod objects;
mod operations;
mod sessions;
mod v3_2;

pub use general::*;
pub use keys::*;
pub use messages::*;
pub use objects::*;
pub use operations::*;
pub use sessions::*;
pub use v3_2::*;
