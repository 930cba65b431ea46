//! The C ABI: with `sys`, the only module allowed `unsafe`.
//!
//! - [`guard`]: the panic guard and the `Result` → `CK_RV` step every export goes through.
//! - [`marshal`]: NULL checks, length conversions, slices from caller memory, templates and
//!   mechanisms in, the output-buffer protocol out.
//! - [`exports`]: the `C_*` functions, one file per chapter of the standard, each a thin
//!   shell over a [`crate::module::Module`] call.
//! - [`function_list`]: the 2.40 and 3.0 function lists and the interface table.
//! - `unload`: the library's destructor, which lets a host unload it (`dlclose()`) with or
//!   without `C_Finalize` and load it again clean.
//!
//! No business logic lives here: a function validates and copies its arguments in, calls
//! the core, and copies results out.
#![allow(unsafe_code)]

mod derive_params;
mod exports;
mod fork;
mod function_list;
mod guard;
mod marshal;
mod unload;

pub use exports::*;
pub use function_list::{C_GetFunctionList, C_GetInterface, C_GetInterfaceList};
