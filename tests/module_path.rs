//! One copy of the library per test process, whatever a build does meanwhile.
//!
//! The flake: `mechanisms_asymmetric::rsa_4096_key_pair` once got
//! `CKR_CRYPTOKI_NOT_INITIALIZED` inside its own child process, after `C_Initialize` had
//! succeeded. That test, like many, calls the module through `cryptoki` and through
//! `cryptoki_sys` (`common::raw`), so it loads the library twice; the dynamic loader returns
//! the library already loaded only when the second load names the same file. The harness
//! chose the file anew at each load — `deps/libecm_hsm.so` if it exists, else
//! `target/<profile>/libecm_hsm.so` — and a build in the same target directory (a commit
//! moves HEAD, which build.rs watches, so the next `cargo test --test …` relinks) takes
//! `deps/libecm_hsm.so` away while the linker writes the new one (LLD unlinks its output
//! first and renames the new file in at the end). A load in that window took the other file:
//! a second copy of the library, with a module of its own that nobody initialized. Its
//! calls answered `CKR_CRYPTOKI_NOT_INITIALIZED`.
//!
//! Here a worker runs from a private layout (this test executable and the library linked
//! into a directory of their own under the target directory, so that nothing another test
//! uses is touched): it loads and initializes the module, takes the library's file away as
//! the linker does, and loads the library again, which must be the initialized one.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::raw::{get_info, load_raw, slot_list};
use common::*;
use cryptoki_sys::CKR_OK;

const NAME: &str = "a_second_load_finds_the_first_after_the_library_file_is_gone";
const ROLE: &str = "ECM_HSM_MODULE_PATH_WORKER";

#[test]
fn a_second_load_finds_the_first_after_the_library_file_is_gone() {
    if std::env::var_os(ROLE).is_some() {
        worker();
        return;
    }
    let layout = Layout::new();
    let dir = fresh_dir("module-path");
    write_test_config(&dir, "");
    let out = Command::new(&layout.exe)
        .args([NAME, "--exact", "--nocapture", "--test-threads=1"])
        .env(ROLE, "1")
        .env("ECM_HSM_DIR", &dir)
        .env_remove("ECM_HSM_CONF")
        // The library beside the private executable, whatever module this run tests.
        .env_remove("TEST_PKCS11_MODULE")
        .output()
        .expect("spawn the worker");
    let _ = std::fs::remove_dir_all(&dir);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "the worker failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// In the worker process, run from the private layout.
fn worker() {
    let p = load();
    let path = module_path();
    let exe = std::env::current_exe().unwrap();
    assert_eq!(path.parent(), exe.parent(), "the worker runs beside its own copy of the library");
    // What the linker does first when it relinks the library.
    std::fs::remove_file(&path).unwrap();
    let raw = load_raw();
    assert_eq!(get_info(&raw), CKR_OK, "the second load is the library initialized by the first");
    assert_eq!(slot_list(&raw).len(), p.get_all_slots().unwrap().len());
}

/// This test executable and the library under test, hard-linked (copied across file
/// systems) into `target/<profile>/module-path-<pid>/deps/`; removed when dropped.
struct Layout {
    root: PathBuf,
    exe: PathBuf,
}

impl Layout {
    fn new() -> Layout {
        let exe = std::env::current_exe().unwrap();
        let target = exe.parent().and_then(Path::parent).expect("target/<profile>");
        let root = target.join(format!("module-path-{}", std::process::id()));
        let deps = root.join("deps");
        std::fs::create_dir_all(&deps).unwrap();
        let layout = Layout { exe: deps.join(exe.file_name().unwrap()), root };
        link_or_copy(&exe, &layout.exe);
        link_or_copy(&module_path(), &deps.join("libecm_hsm.so"));
        layout
    }
}

impl Drop for Layout {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

fn link_or_copy(from: &Path, to: &Path) {
    if std::fs::hard_link(from, to).is_err() {
        std::fs::copy(from, to).unwrap_or_else(|e| panic!("{} to {}: {e}", from.display(), to.display()));
    }
}
