//! The token directory and its files are private to the user that owns the tokens.
//!
//! A token file holds PIN-sealed secrets: anyone who can copy it can try PINs offline, as
//! fast as their hardware runs the KDF. So the directory is created 0700 and every file in it
//! 0600 whatever the process's umask (the umask only ever removes bits; it is never changed,
//! being process-wide and not ours to touch in a library). SQLite gives its `-wal` and `-shm`
//! files the mode of the database file, so a database created 0600 keeps them 0600 too.

use std::fs::{DirBuilder, File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::Path;

/// The mode of every directory ecm-hsm creates for tokens.
pub const DIR_MODE: u32 = 0o700;
/// The mode of every file ecm-hsm creates in a token directory.
pub const FILE_MODE: u32 = 0o600;

/// Creates `dir` (and missing parents) readable by this user alone; an existing directory is
/// left as it is (see [`exposure`]).
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    DirBuilder::new().recursive(true).mode(DIR_MODE).create(dir)
}

/// Creates `path`, which must not exist yet, readable and writable by this user alone.
pub fn create_private_file(path: &Path) -> io::Result<File> {
    OpenOptions::new().read(true).write(true).create_new(true).mode(FILE_MODE).open(path)
}

/// Why the existing directory `dir` lets other users at its tokens, if it does: a warning for
/// the log and `ecm-hsm status`. `None` for a private directory or one that does not exist.
pub fn exposure(dir: &Path) -> Option<String> {
    let meta = std::fs::metadata(dir).ok()?;
    let mode = meta.mode() & 0o7777;
    let others = mode & 0o077;
    if others == 0 {
        return None;
    }
    let what = match (others & 0o044 != 0, others & 0o022 != 0) {
        (_, true) => "write to it (replace or delete tokens and settings)",
        (true, false) => {
            "list it and read its token files if they are readable (copy tokens to guess PINs offline)"
        }
        (false, false) => "enter it",
    };
    Some(format!(
        "token directory {} has mode {mode:04o}: other users may {what}; run chmod 700 on it",
        dir.display()
    ))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().mode() & 0o7777
    }

    #[test]
    fn created_directories_and_files_are_private_whatever_the_umask_allows() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("a/b");
        create_private_dir(&dir).unwrap();
        assert_eq!(mode(&dir), DIR_MODE);
        assert_eq!(mode(&root.path().join("a")), DIR_MODE);
        let file = dir.join("token-0.sqlite");
        create_private_file(&file).unwrap();
        assert_eq!(mode(&file), FILE_MODE);
        assert_eq!(create_private_file(&file).unwrap_err().kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(exposure(&dir), None);
    }

    #[test]
    fn an_existing_directory_others_can_reach_is_reported() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path();
        for (m, word) in [(0o755, "read"), (0o775, "write"), (0o701, "enter"), (0o707, "write")] {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(m)).unwrap();
            let warning = exposure(dir).unwrap_or_else(|| panic!("{m:o} not reported"));
            assert!(warning.contains(word) && warning.contains(&format!("{m:04o}")), "{m:o}: {warning}");
        }
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        assert_eq!(exposure(dir), None);
        assert_eq!(exposure(&dir.join("missing")), None);
    }
}
