//! Objects: typed attribute sets, and the per-class attribute rules written as data tables.
//!
//! - [`attribute`]: encodings of attribute values and the caller's template entries.
//! - [`rules`]: the specification's attribute tables and footnotes as one table of rows.
//! - [`instance`]: an object's attributes, with typed accessors; [`values`]: how they are
//!   kept (compact, zeroized).
//! - [`template`]: how a template becomes an object (create, generate, copy, set) by the rules;
//!   [`check_value`]: a new object's `CKA_CHECK_VALUE`, checked or recorded; `consistency`:
//!   the checks across a created object's attributes and of its key material.

pub mod attribute;
pub mod check_value;
mod consistency;
pub mod instance;
pub mod rules;
pub mod template;
#[cfg(test)]
mod test_templates;
pub mod values;

pub use attribute::{Attribute, AttributeRead};
pub use instance::Object;
pub use rules::Profile;
pub use values::Values;
