//! Auditing turned off and on (`audit = false` in the settings): a process that runs with
//! auditing off records nothing of its calls, but says so in the register — an `audit_off`
//! record when it first uses the token (hash-linked: it has no key yet) and again,
//! authenticated, at its first login — and the first process with auditing on that holds
//! the key afterwards appends an authenticated `audit_on` ([`super::Register::
//! record_audit_on_if_off`]). `verify` reports each gap ([`super::verify::AuditGap`]), so a
//! trail with calls missing never reads as simply "intact".
//!
//! The module calls [`note_audit_off`] where it finds auditing off; nothing else is needed.

use std::path::{Path, PathBuf};

use cryptoki_sys::CK_SLOT_ID;
use parking_lot::Mutex;

use super::register::Register;
use super::trail::AUDIT_OFF;
use super::{AuditKey, Record};
use crate::Result;

/// The tokens (directory, slot) whose register this process has told that auditing is off,
/// and whether with the key. Looked up on every call of a process with auditing off: a
/// short list compared in place, nothing allocated.
static NOTED: Mutex<Vec<(PathBuf, CK_SLOT_ID, bool)>> = Mutex::new(Vec::new());

/// Records in the register of the token of `slot` in `token_dir` that this process runs
/// with auditing off: once per process with the key (authenticated), and, if a call comes
/// before the process has the key, once before without it (hash-linked). Cheap when already done: the module calls it on every call it does not
/// record.
pub fn note_audit_off(token_dir: &Path, slot: CK_SLOT_ID, key: Option<&AuditKey>) -> Result<()> {
    let keyed = key.is_some();
    // Said with the key, it need not be said again without.
    let noted = |list: &Vec<(PathBuf, CK_SLOT_ID, bool)>| {
        list.iter().any(|(dir, s, k)| *s == slot && (*k == keyed || *k) && dir == token_dir)
    };
    if noted(&NOTED.lock()) {
        return Ok(());
    }
    let log = Register::open(&super::path_for(token_dir, slot))?;
    log.set_key(key.cloned());
    log.append(&Record::new(AUDIT_OFF, 0))?;
    let mut list = NOTED.lock();
    if !noted(&list) {
        list.push((token_dir.to_path_buf(), slot, keyed));
    }
    Ok(())
}
