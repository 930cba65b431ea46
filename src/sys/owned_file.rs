//! Opening a file that must be its owner's alone: the settings file (no other user may have
//! written it) and the service key file (no other user may read it either).

use std::fs::File;
use std::io::{Error, ErrorKind};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Opens `path` and checks, through the open file (so that the file checked is the file read
/// even if the path is swapped in between), that it is a regular file with none of the mode
/// bits `forbidden` set, owned by this process's user or root. A refusal is
/// `ErrorKind::PermissionDenied` saying why; `what` ends the mode's refusal ("lets other
/// users {what}", with the fix); an error opening the file is returned as it is.
pub fn open_owned(path: &Path, forbidden: u32, what: &str) -> std::io::Result<File> {
    let file = File::open(path)?;
    let meta = file.metadata()?;
    let refused = |reason: String| Error::new(ErrorKind::PermissionDenied, reason);
    if !meta.is_file() {
        return Err(refused("not a regular file".into()));
    }
    if meta.mode() & forbidden != 0 {
        return Err(refused(format!(
            "refused: its mode {:04o} lets other users {what}",
            meta.mode() & 0o7777
        )));
    }
    let me = rustix::process::geteuid().as_raw();
    if meta.uid() != me && meta.uid() != 0 {
        return Err(refused(format!(
            "refused: owned by uid {}, neither this process's user (uid {me}) nor root",
            meta.uid()
        )));
    }
    Ok(file)
}
