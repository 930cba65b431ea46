//! Links the cdylib with `-z nodelete`, so that `dlclose()` never unmaps it.
//!
//! AWS-LC registers thread-local destructors (for its per-thread random generator state)
//! with pthreads. If a host program unloads the module and a thread that used it exits
//! afterwards, pthreads would call a destructor in unmapped code and crash the host. Keeping
//! the module mapped for the life of the process is what PKCS#11 hosts expect anyway: a
//! later `dlopen()` simply gets the same copy back.
fn main() {
    let target_os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if target_os == "linux" || target_os == "android" || target_os.ends_with("bsd") {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-z,nodelete");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
