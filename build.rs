//! Provenance, at build time: the git commit the build comes from, for `C_GetInfo` and
//! `ecm-hsm --version` (`src/version.rs`). It is `$ECM_HSM_GIT_COMMIT` if set (a packager
//! building from a tarball can name it), else `git rev-parse HEAD` of this source tree, else
//! empty: a build from a tarball without `.git` (or without git installed) still works and
//! says it does not know its commit.
//!
//! The cdylib is no longer linked `-z nodelete`: a host may unload it (`dlclose()`, with or
//! without `C_Finalize`) and load it again, and gets a fresh copy that starts clean. What
//! made unloading unsafe — AWS-LC's and the module's per-thread destructors left pointing
//! into unmapped code, the module's own threads, `thread_local!` destructors that pin the
//! library — is handled by the library's destructor (`src/abi/unload.rs`). Except in test
//! builds with the `deadlock-detection` feature: its watcher thread (`src/sys/deadlock.rs`)
//! runs for the process's life, so that build keeps `-z nodelete`.
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    if std::env::var_os("CARGO_FEATURE_DEADLOCK_DETECTION").is_some() {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-z,nodelete");
    }
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=ECM_HSM_GIT_COMMIT");

    let commit = match std::env::var("ECM_HSM_GIT_COMMIT") {
        Ok(commit) => commit.trim().to_owned(),
        Err(_) => git_commit().unwrap_or_default(),
    };
    println!("cargo:rustc-env=ECM_HSM_GIT_COMMIT={commit}");
}

/// HEAD's commit, if this source tree is the top of a git work tree (a tarball unpacked inside
/// some other repository must not take that repository's commit). Asks cargo to run this again
/// when HEAD moves: HEAD itself (a checkout), the branch it names (a commit), packed refs.
fn git_commit() -> Option<String> {
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR")?);
    let toplevel = git(&manifest_dir, &["rev-parse", "--show-toplevel"])?;
    if Path::new(&toplevel).canonicalize().ok()? != manifest_dir.canonicalize().ok()? {
        return None;
    }
    let mut watched = vec!["HEAD".to_owned(), "packed-refs".to_owned()];
    if let Some(branch) = git(&manifest_dir, &["symbolic-ref", "-q", "HEAD"]) {
        watched.push(branch);
    }
    for name in watched {
        if let Some(path) = git(&manifest_dir, &["rev-parse", "--git-path", &name]) {
            println!("cargo:rerun-if-changed={}", manifest_dir.join(path).display());
        }
    }
    git(&manifest_dir, &["rev-parse", "HEAD"])
}

/// One line of git's output, or None if git is missing or fails.
fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let output = Command::new("git").arg("-C").arg(dir).args(args).output().ok()?;
    if !output.status.success() {
        return None;
    }
    let line = String::from_utf8(output.stdout).ok()?.trim().to_owned();
    (!line.is_empty()).then_some(line)
}
