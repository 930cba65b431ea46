//! p11bench: ecm-hsm side by side with SoftHSMv2 (and any `--module PATH`) through PKCS#11,
//! with aws-lc-rs called directly as the in-process ceiling (issue 6).
//!
//! ```sh
//! cargo bench --bench p11bench                        # full run (several minutes)
//! cargo bench --bench p11bench -- --quick             # seconds; what .ci/run runs
//! cargo bench --bench p11bench -- --module /path/to/other-pkcs11.so
//! ```
//!
//! The parent process only orchestrates. Every module is measured in child processes of this
//! same executable (re-run with `--child PHASE`), each child with a fresh token directory in
//! its environment, because a module reads its settings at `C_Initialize`:
//!
//! - `crypto`: the per-operation workloads of [`workloads::WORKLOADS`], then the thread runs;
//! - `audit-off` (ecm-hsm only): the AES-256-GCM 1 KiB workload again, in a fresh token
//!   directory whose `ecm-hsm.toml` turns auditing off; the parent divides the `crypto`
//!   figure (auditing on, the default) by it;
//! - `objects`: create N token objects, find by label and by `CKA_ID` among them, peak RSS of
//!   that process;
//! - `reopen` (several processes): a new process against that N-object store, timing
//!   `C_Initialize`, then slots + open + login, then the first find by label and by `CKA_ID`,
//!   and its peak RSS.
//!
//! The aws-lc-rs ceiling runs the same workloads in a child of its own (engine `direct`).
//! Children print `ROW`/`NOTE`/`INFO` lines (see `report.rs`); the parent gathers them into
//! one table. Figures are printed, never asserted: the exit status is non-zero only when
//! ecm-hsm itself could not be measured (a child crashed or its token could not be set up).

mod direct;
mod p11;
mod report;
mod timing;
mod workloads;

use std::path::{Path, PathBuf};
use std::process::Command;

use p11::Engine;
use report::Column;
use timing::Timing;

const SOFTHSM: &str = "/usr/lib/softhsm/libsofthsm2.so";

/// The command line, for the parent and for its children.
struct Args {
    quick: bool,
    modules: Vec<PathBuf>,
    child: Option<Child>,
}

/// What a child process is to do.
struct Child {
    phase: String,
    engine: Engine,
    module: PathBuf,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args { quick: false, modules: Vec::new(), child: None };
    let (mut phase, mut engine, mut module) = (None, None, None);
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = || it.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--quick" => args.quick = true,
            "--module" => args.modules.push(PathBuf::from(value()?)),
            // `cargo bench` appends `--bench` to the arguments of every bench target.
            "--bench" => {}
            "--child" => phase = Some(value()?),
            "--engine" => engine = Some(Engine::parse(&value()?)?),
            "--load" => module = Some(PathBuf::from(value()?)),
            "-h" | "--help" => {
                println!("usage: cargo bench --bench p11bench [-- [--quick] [--module PATH]...]");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?} (try --help)")),
        }
    }
    if let Some(phase) = phase {
        let engine = engine.ok_or("--child needs --engine")?;
        args.child = Some(Child { phase, engine, module: module.unwrap_or_default() });
    }
    Ok(args)
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("p11bench: {e}");
            std::process::exit(2);
        }
    };
    let timing = Timing::new(args.quick);
    if let Some(child) = &args.child {
        workloads::run_child(&child.phase, child.engine, &child.module, &timing);
        return;
    }
    std::process::exit(parent(&args, &timing));
}

/// The `libecm_hsm.so` of this build: `cargo bench` builds the cdylib beside the bench
/// executable in `target/release/deps/` (only `cargo build` copies it up a level).
fn ecm_module() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let deps = exe.parent()?;
    [deps.join("libecm_hsm.so"), deps.parent()?.join("libecm_hsm.so")].into_iter().find(|p| p.exists())
}

/// A temporary directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> std::io::Result<Self> {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        let dir =
            std::env::temp_dir().join(format!("p11bench-{}-{}", std::process::id(), nanos.subsec_nanos()));
        std::fs::create_dir_all(&dir)?;
        Ok(TempDir(dir))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn parent(args: &Args, timing: &Timing) -> i32 {
    let Some(ecm) = ecm_module() else {
        eprintln!("p11bench: libecm_hsm.so not found beside the bench executable; run `cargo bench`");
        return 1;
    };
    let tmp = match TempDir::new() {
        Ok(t) => t,
        Err(e) => {
            eprintln!("p11bench: cannot create a temporary directory: {e}");
            return 1;
        }
    };
    // Children load a private copy, so a concurrent build replacing the file cannot change the
    // module in the middle of the run.
    let ecm_copy = tmp.0.join("libecm_hsm.so");
    if let Err(e) = std::fs::copy(&ecm, &ecm_copy) {
        eprintln!("p11bench: cannot copy {}: {e}", ecm.display());
        return 1;
    }

    let mut columns = vec![
        Column::new("ecm-hsm", Engine::Ecm, ecm_copy.clone(), &ecm),
        Column::new("ecm-hsm svc", Engine::Ecm, ecm_copy, &ecm).through_service(),
    ];
    let softhsm = Path::new(SOFTHSM);
    let mut softhsm_column = Column::new("SoftHSMv2", Engine::SoftHsm, softhsm.to_path_buf(), softhsm);
    if !softhsm.exists() {
        softhsm_column.results.fatal.push(format!("not installed ({SOFTHSM})"));
    }
    columns.push(softhsm_column);
    for m in &args.modules {
        let name = m.file_stem().map_or_else(|| m.display().to_string(), |s| s.to_string_lossy().into());
        columns.push(Column::new(&name, Engine::Other, m.clone(), m));
    }
    let mut direct = Column::new("aws-lc-rs direct", Engine::Direct, PathBuf::new(), Path::new("-"));

    let load_at_start = report::load_average();
    let start = std::time::Instant::now();
    for (i, col) in columns.iter_mut().enumerate() {
        if !col.results.fatal.is_empty() {
            continue;
        }
        let crypto = tmp.0.join(format!("{i}-crypto"));
        let objects = tmp.0.join(format!("{i}-objects"));
        run_child(col, "crypto", &crypto, timing);
        if col.results.nothing_measured() {
            continue; // it could not even be loaded or given a token
        }
        if col.engine == Engine::Ecm && !col.service {
            audit_off(col, &tmp.0.join(format!("{i}-audit-off")), &crypto, timing);
        }
        run_child(col, "objects", &objects, timing);
        for _ in 0..timing.reopen_runs {
            run_child(col, "reopen", &objects, timing);
        }
    }
    run_child(&mut direct, "crypto", &tmp.0.join("direct"), timing);
    eprintln!("p11bench: measured in {:.0} s", start.elapsed().as_secs_f64());

    report::print(&columns, &direct, timing, &load_at_start);
    // The figures are never judged; only a run that could not measure ecm-hsm at all fails.
    i32::from(!columns[0].results.fatal.is_empty())
}

/// Runs one phase of one column in a child process with `dir` as its token directory, and
/// gathers what it printed.
fn run_child(col: &mut Column, phase: &str, dir: &Path, timing: &Timing) {
    let start = std::time::Instant::now();
    if let Err(e) = prepare_token_dir(dir) {
        col.results.fatal.push(format!("{phase}: cannot prepare {}: {e}", dir.display()));
        return;
    }
    let mut cmd = Command::new(std::env::current_exe().expect("bench executable path"));
    cmd.args(["--child", phase, "--engine", col.engine.as_str(), "--load"])
        .arg(&col.load)
        // ecm-hsm: a fresh token directory with the default settings (no settings file, so
        // the default PIN KDF cost). SoftHSMv2: its configuration file pointing into `dir`.
        // Other modules get both, in case they are either.
        .env("ECM_HSM_DIR", dir)
        .env_remove("ECM_HSM_CONF")
        .env("SOFTHSM2_CONF", dir.join("softhsm2.conf"));
    if timing.quick {
        cmd.arg("--quick");
    }
    let service = if col.service {
        match Service::start(dir) {
            Ok(service) => {
                cmd.env("ECM_HSM_SERVICE", format!("unix:{}", service.socket.display()));
                Some(service)
            }
            Err(e) => {
                col.results.fatal.push(format!("{phase}: the service did not start: {e}"));
                return;
            }
        }
    } else {
        None
    };
    let output = cmd.output();
    drop(service);
    match output {
        Ok(out) => {
            col.results.absorb(&String::from_utf8_lossy(&out.stdout));
            if !out.status.success() {
                let stderr = String::from_utf8_lossy(&out.stderr);
                let tail: Vec<&str> = stderr.lines().rev().take(6).collect();
                let tail: Vec<&str> = tail.into_iter().rev().collect();
                col.results.fatal.push(format!(
                    "{phase} child failed ({}): {}",
                    out.status,
                    tail.join(" | ")
                ));
            }
        }
        Err(e) => col.results.fatal.push(format!("{phase}: cannot start the child: {e}")),
    }
    eprintln!("p11bench: {} — {phase}: {:.1} s", col.name, start.elapsed().as_secs_f64());
}

/// ecm-hsm only: the `audit-off` phase in `dir`, a fresh token directory whose settings file
/// turns auditing off, then the row "auditing on ÷ off" from the `crypto` phase's figure of
/// the same workload, whose token directory was `audited_dir`.
fn audit_off(col: &mut Column, dir: &Path, audited_dir: &Path, timing: &Timing) {
    let settings = std::fs::create_dir_all(dir)
        .and_then(|()| std::fs::write(dir.join("ecm-hsm.toml"), workloads::AUDIT_OFF_SETTINGS));
    if let Err(e) = settings {
        col.results.fatal.push(format!("audit-off: cannot write the settings in {}: {e}", dir.display()));
        return;
    }
    run_child(col, "audit-off", dir, timing);
    if workloads::audit_records(audited_dir) == 0 {
        col.results.add_note(
            workloads::AUDIT_RATIO_ID,
            "the auditing-on run left no audit records in its token directory",
        );
    }
    col.results.add_ratio(workloads::AUDIT_RATIO_ID, workloads::AUDITED, workloads::AUDIT_OFF_ID);
}

/// A token directory for every kind of module: ecm-hsm uses it as is; SoftHSMv2 gets a
/// configuration file whose token directory is inside it.
fn prepare_token_dir(dir: &Path) -> std::io::Result<()> {
    let tokens = dir.join("softhsm-tokens");
    std::fs::create_dir_all(&tokens)?;
    let conf = format!(
        "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n",
        tokens.display()
    );
    std::fs::write(dir.join("softhsm2.conf"), conf)
}

/// `ecm-hsm serve` on a token directory, for the client-mode column; stopped on drop.
struct Service {
    child: std::process::Child,
    socket: PathBuf,
}

impl Service {
    fn start(dir: &Path) -> Result<Service, String> {
        let socket = dir.join("service.sock");
        let mut child = Command::new(env!("CARGO_BIN_EXE_ecm-hsm"))
            .args(["serve", "--mode", "0600", "--socket"])
            .arg(&socket)
            .env("ECM_HSM_DIR", dir)
            .env_remove("ECM_HSM_CONF")
            .env_remove("ECM_HSM_SERVICE")
            .env_remove("LISTEN_FDS")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .map_err(|e| e.to_string())?;
        // Until it accepts connections, with a deadline.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while std::os::unix::net::UnixStream::connect(&socket).is_err() {
            if std::time::Instant::now() > deadline || child.try_wait().ok().flatten().is_some() {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("no service on {}", socket.display()));
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        Ok(Service { child, socket })
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
