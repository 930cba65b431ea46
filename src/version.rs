//! What this build is: the version from `Cargo.toml` and the git commit it was built from
//! (set by `build.rs`; empty for a build from a tarball without `.git`). `C_GetInfo` and
//! `ecm-hsm --version` both answer from here, so the module, the tool and the package
//! (whose version is also `Cargo.toml`'s) always agree.

use std::sync::OnceLock;

/// The crate's version, e.g. `0.1.0`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The full git commit id, or "" when the build did not know it.
pub const COMMIT: &str = env!("ECM_HSM_GIT_COMMIT");

/// How many hex digits of the commit to show where space is short (`CK_INFO` has 32 bytes).
const SHORT_COMMIT: usize = 12;

/// `CK_INFO.libraryVersion`: the major and minor numbers (a `CK_VERSION` has no patch field).
pub fn library_version() -> (u8, u8) {
    let mut parts = VERSION.split('.').map(|n| n.parse().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0))
}

/// `CK_INFO.libraryDescription` (at most 32 bytes): `ecm-hsm 0.1.0 89f5db9ab1c2`, without
/// the commit when it is not known.
pub fn library_description() -> String {
    description_of(COMMIT)
}

fn description_of(commit: &str) -> String {
    match commit.get(..SHORT_COMMIT) {
        Some(short) => format!("ecm-hsm {VERSION} {short}"),
        None => format!("ecm-hsm {VERSION}"),
    }
}

/// The line `ecm-hsm --version` prints after the program name: `0.1.0 (commit <full id>)`.
/// Made once and kept for the process, as clap takes a `&'static str`.
pub fn long_version() -> &'static str {
    static LINE: OnceLock<String> = OnceLock::new();
    LINE.get_or_init(|| version_line_of(COMMIT))
}

fn version_line_of(commit: &str) -> String {
    if commit.is_empty() {
        format!("{VERSION} (commit unknown: built without git)")
    } else {
        format!("{VERSION} (commit {commit})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn library_version_is_cargo_major_and_minor() {
        let (major, minor) = library_version();
        assert_eq!(major.to_string(), env!("CARGO_PKG_VERSION_MAJOR"));
        assert_eq!(minor.to_string(), env!("CARGO_PKG_VERSION_MINOR"));
    }

    #[test]
    fn a_build_without_git_says_so_and_fits() {
        assert_eq!(description_of(""), format!("ecm-hsm {VERSION}"));
        assert_eq!(version_line_of(""), format!("{VERSION} (commit unknown: built without git)"));
        let commit = "0123456789abcdef0123456789abcdef01234567";
        assert_eq!(description_of(commit), format!("ecm-hsm {VERSION} 0123456789ab"));
        assert!(description_of(commit).len() <= 32);
        assert_eq!(version_line_of(commit), format!("{VERSION} (commit {commit})"));
    }

    #[test]
    fn description_fits_ck_info_and_names_version_and_commit() {
        let description = library_description();
        assert!(description.len() <= 32, "{description}");
        assert!(description.starts_with(&format!("ecm-hsm {VERSION}")));
        if !COMMIT.is_empty() {
            assert!(COMMIT.starts_with(description.rsplit(' ').next().unwrap()));
            assert!(long_version().contains(COMMIT));
        }
    }
}
