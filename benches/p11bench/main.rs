//! p11bench: ecm-hsm side by side with SoftHSMv2 (and any `--module PATH`) through PKCS#11,
//! with aws-lc-rs called directly as the in-process ceiling (issue 6).
//!
//! ```sh
//! cargo bench --bench p11bench                        # full run (several minutes)
//! cargo bench --bench p11bench -- --quick             # seconds; what .ci/run runs
//! cargo bench --bench p11bench -- --module /path/to/other-pkcs11.so
//! cargo bench --bench p11bench -- --quick --only ecm-hsm --rows gcm-enc-1k,rsa2048-sign
//! ```
//!
//! `--only TEXT` (repeatable) measures only the columns whose name contains one of the texts;
//! `--rows ID,ID` only the rows of those ids (the row ids of `workloads.rs` and `report.rs`:
//! `login`, `gcm-enc-1k`, `kwp-wrap`, `rsa2048-sign`, `ecdsa-sign`, `objects-find`,
//! `gcm-enc-1k-2t`, `gcm-enc-1k-2p`, ...).
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
//!   and its peak RSS;
//! - `token` then `gcm-proc` (ecm-hsm only): a token made once, then AES-256-GCM 1 KiB from
//!   one process alone and from two processes at once against the same service (or, in-process,
//!   the same token directory); the parent sums the two and divides by the one.
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
    only: Vec<String>,
    rows: Option<Vec<String>>,
    child: Option<Child>,
}

/// What a child process is to do.
struct Child {
    phase: String,
    engine: Engine,
    module: PathBuf,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args { quick: false, modules: Vec::new(), only: Vec::new(), rows: None, child: None };
    let (mut phase, mut engine, mut module) = (None, None, None);
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = || it.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--quick" => args.quick = true,
            "--module" => args.modules.push(PathBuf::from(value()?)),
            "--only" => args.only.push(value()?),
            "--rows" => args.rows = Some(value()?.split(',').map(str::to_owned).collect()),
            // `cargo bench` appends `--bench` to the arguments of every bench target.
            "--bench" => {}
            "--child" => phase = Some(value()?),
            "--engine" => engine = Some(Engine::parse(&value()?)?),
            "--load" => module = Some(PathBuf::from(value()?)),
            "-h" | "--help" => {
                println!(
                    "usage: cargo bench --bench p11bench [-- [--quick] [--module PATH]... \
                     [--only COLUMN]... [--rows ID,ID...]]"
                );
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
    let _ = workloads::ROWS.set(args.rows.clone());
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
        Column::new("ecm-hsm svc", Engine::Ecm, ecm_copy.clone(), &ecm).through_service(),
    ];
    let softhsm = Path::new(SOFTHSM);
    let mut softhsm_column = Column::new("SoftHSMv2", Engine::SoftHsm, softhsm.to_path_buf(), softhsm);
    if !softhsm.exists() {
        softhsm_column.results.fatal.push(format!("not installed ({SOFTHSM})"));
    }
    columns.push(softhsm_column);
    // p11-kit 0.25 is built from source on first use (network, meson): a full run brings it,
    // a quick run (what CI runs) only when named with --only.
    let p11kit_named = args.only.iter().any(|o| P11KIT_COLUMN.contains(o.as_str()));
    if p11kit_named || (args.only.is_empty() && !args.quick) {
        columns.push(p11kit_column(&ecm_copy, &ecm));
    }
    for m in &args.modules {
        let name = m.file_stem().map_or_else(|| m.display().to_string(), |s| s.to_string_lossy().into());
        columns.push(Column::new(&name, Engine::Other, m.clone(), m));
    }
    let mut direct = Column::new("aws-lc-rs direct", Engine::Direct, PathBuf::new(), Path::new("-"));
    let chosen = |name: &str| args.only.is_empty() || args.only.iter().any(|o| name.contains(o.as_str()));
    columns.retain(|c| chosen(&c.name));

    let load_at_start = report::load_average();
    let start = std::time::Instant::now();
    for (i, col) in columns.iter_mut().enumerate() {
        if !col.results.fatal.is_empty() {
            continue;
        }
        let crypto = tmp.0.join(format!("{i}-crypto"));
        let objects = tmp.0.join(format!("{i}-objects"));
        let crypto_rows = workloads::WORKLOADS.iter().any(|w| workloads::wanted(w.id))
            || workloads::THREADED.iter().any(|(id, _, _)| workloads::wanted(&format!("{id}-2t")));
        if crypto_rows {
            run_child(col, "crypto", &crypto, timing);
            if col.results.nothing_measured() {
                continue; // it could not even be loaded or given a token
            }
        }
        if col.engine == Engine::Ecm && !col.service && workloads::wanted_prefix(workloads::AUDIT_OFF_ID) {
            audit_off(col, &tmp.0.join(format!("{i}-audit-off")), &crypto, timing);
        }
        if col.engine == Engine::Ecm && workloads::wanted_prefix(workloads::PROCESSES_ID) {
            processes(col, &tmp.0.join(format!("{i}-processes")), timing);
        }
        if workloads::wanted_prefix("objects-") || workloads::wanted_prefix("reopen-") {
            run_child(col, "objects", &objects, timing);
        }
        if workloads::wanted_prefix("reopen-") {
            for _ in 0..timing.reopen_runs {
                run_child(col, "reopen", &objects, timing);
            }
        }
    }
    if chosen(&direct.name) {
        run_child(&mut direct, "crypto", &tmp.0.join("direct"), timing);
    }
    eprintln!("p11bench: measured in {:.0} s", start.elapsed().as_secs_f64());

    report::print(&columns, &direct, timing, &load_at_start);
    // The figures are never judged; only a run that could not measure ecm-hsm at all fails.
    i32::from(!columns[0].results.fatal.is_empty())
}

/// The command of a child running `phase` of `col` with `dir` as its token directory (and
/// the service, for the client-mode column).
fn child_command(
    col: &Column,
    phase: &str,
    dir: &Path,
    timing: &Timing,
    service: Option<&Service>,
) -> Command {
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
    if let Some(Some(rows)) = workloads::ROWS.get() {
        cmd.args(["--rows", &rows.join(",")]);
    }
    if let Some(service) = service {
        cmd.env(service.variable, &service.address);
    }
    cmd
}

/// The service of a client-mode or p11-kit column's phase, started on `dir`; `Err` when it
/// would not start.
/// Prepares the token directory `dir` and starts the column's service (if it has one) on it;
/// `None`, with the reason recorded as fatal for `phase`, when either fails.
fn start_on(col: &mut Column, phase: &str, dir: &Path) -> Option<Option<Service>> {
    if let Err(e) = prepare_token_dir(dir) {
        col.results.fatal.push(format!("{phase}: cannot prepare {}: {e}", dir.display()));
        return None;
    }
    match service_for(col, dir) {
        Ok(service) => Some(service),
        Err(e) => {
            col.results.fatal.push(format!("{phase}: the service did not start: {e}"));
            None
        }
    }
}

fn service_for(col: &Column, dir: &Path) -> Result<Option<Service>, String> {
    match &col.p11kit {
        Some((server, module)) => Service::start_p11kit(dir, server, module).map(Some),
        None if col.service => Service::start(dir).map(Some),
        None => Ok(None),
    }
}

const P11KIT_COLUMN: &str = "p11-kit 0.25 server";

/// ecm-hsm behind `p11-kit server` 0.25 (issue 14 item 10), built by `p11kit-setup.sh` into
/// `target/`; a column that says why when it cannot be built here.
fn p11kit_column(ecm_copy: &Path, ecm: &Path) -> Column {
    let setup = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/p11kit-setup.sh");
    eprintln!("p11bench: {} (builds p11-kit once, then reuses it)", setup.display());
    let prefix = match Command::new("bash").arg(&setup).stderr(std::process::Stdio::piped()).output() {
        Ok(out) if out.status.success() => {
            PathBuf::from(String::from_utf8_lossy(&out.stdout).lines().last().unwrap_or_default())
        }
        Ok(out) => {
            let why = String::from_utf8_lossy(&out.stderr).trim().to_string();
            let mut col = Column::new(P11KIT_COLUMN, Engine::Other, PathBuf::new(), Path::new("-"));
            col.results.fatal.push(format!("skipped: {why}"));
            return col;
        }
        Err(e) => {
            let mut col = Column::new(P11KIT_COLUMN, Engine::Other, PathBuf::new(), Path::new("-"));
            col.results.fatal.push(format!("skipped: cannot run {}: {e}", setup.display()));
            return col;
        }
    };
    let client = prefix.join("lib/x86_64-linux-gnu/pkcs11/p11-kit-client.so");
    let server = prefix.join("libexec/p11-kit/p11-kit-server");
    Column::new(P11KIT_COLUMN, Engine::Other, client.clone(), &client)
        .behind_p11kit(server, ecm_copy.to_path_buf())
        .shown_as(&format!("{} → {}", client.display(), ecm.display()))
}

/// Runs one phase of one column in a child process with `dir` as its token directory, and
/// gathers what it printed.
fn run_child(col: &mut Column, phase: &str, dir: &Path, timing: &Timing) {
    let start = std::time::Instant::now();
    let Some(service) = start_on(col, phase, dir) else {
        return;
    };
    let output = child_command(col, phase, dir, timing, service.as_ref()).output();
    drop(service);
    gather(col, phase, output);
    eprintln!("p11bench: {} — {phase}: {:.1} s", col.name, start.elapsed().as_secs_f64());
}

/// Takes in what a child printed, and its failure.
fn gather(col: &mut Column, phase: &str, output: std::io::Result<std::process::Output>) {
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
}

/// ecm-hsm only: AES-256-GCM 1 KiB from one process, then from two at once, against one
/// service (or one token directory in-process); the rows [`workloads::PROCESSES_ID`] (the
/// two processes' summed rate) and its ratio to the one.
fn processes(col: &mut Column, dir: &Path, timing: &Timing) {
    let start = std::time::Instant::now();
    let Some(service) = start_on(col, "processes", dir) else {
        return;
    };
    let token = child_command(col, "token", dir, timing, service.as_ref()).output();
    gather(col, "token", token);
    let mut rates = Vec::new();
    for parties in [1usize, 2] {
        let barrier = dir.join(format!("barrier-{parties}"));
        if let Err(e) = std::fs::create_dir_all(&barrier) {
            col.results.fatal.push(format!("processes: {e}"));
            return;
        }
        let children: Vec<_> = (0..parties)
            .map(|_| {
                child_command(col, workloads::PROCESS_PHASE, dir, timing, service.as_ref())
                    .env("P11BENCH_BARRIER", &barrier)
                    .env("P11BENCH_PARTIES", parties.to_string())
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
            })
            .collect();
        let mut results = report::Results::default();
        for child in children {
            let output = child.and_then(std::process::Child::wait_with_output);
            if let Ok(out) = &output {
                results.absorb(&String::from_utf8_lossy(&out.stdout));
            }
            gather(
                col,
                workloads::PROCESS_PHASE,
                output.map(|mut o| {
                    o.stdout.clear();
                    o
                }),
            );
        }
        // The median of the processes' rates times their number: their sum, robust to one
        // process that started late.
        rates.push(results.value(workloads::PROCESS_ROW).map(|median| median * parties as f64));
    }
    drop(service);
    if let [Some(one), Some(two)] = rates[..] {
        col.results.set(workloads::PROCESSES_ID, report::Figure::Rate(two));
        col.results.set(workloads::PROCESSES_RATIO_ID, report::Figure::Ratio(two / one));
    }
    eprintln!("p11bench: {} — processes: {:.1} s", col.name, start.elapsed().as_secs_f64());
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

/// `ecm-hsm serve` on a token directory, for the client-mode column, or `p11-kit server`
/// hosting ecm-hsm on it; stopped on drop.
struct Service {
    child: std::process::Child,
    /// The environment variable that points a client at it, and its value.
    variable: &'static str,
    address: String,
}

impl Service {
    fn start(dir: &Path) -> Result<Service, String> {
        let socket = dir.join("service.sock");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ecm-hsm"));
        cmd.args(["serve", "--mode", "0600", "--socket"]).arg(&socket);
        let address = format!("unix:{}", socket.display());
        Service::spawn(cmd, dir, &socket, "ECM_HSM_SERVICE", address)
    }

    /// `p11-kit server` in the foreground with `module` as its provider (which reads its
    /// token directory from `ECM_HSM_DIR`), exporting every token.
    fn start_p11kit(dir: &Path, server: &Path, module: &Path) -> Result<Service, String> {
        let socket = dir.join("p11kit.sock");
        let mut cmd = Command::new(server);
        cmd.args(["-f", "-n"]).arg(&socket).arg("--provider").arg(module).arg("pkcs11:");
        // The server's RPC code is in libp11-kit.so.0, which the built server (no rpath)
        // would otherwise take from the system: Debian 12's 0.24, which knows no
        // CK_GCM_PARAMS and hands the module the 0.25 client's serialized parameter as
        // opaque bytes (CKR_MECHANISM_PARAM_INVALID). The prefix's own library, then.
        if let Some(prefix) = server.parent().and_then(Path::parent).and_then(Path::parent) {
            cmd.env("LD_LIBRARY_PATH", prefix.join("lib/x86_64-linux-gnu"));
        }
        let address = format!("unix:path={}", socket.display());
        Service::spawn(cmd, dir, &socket, "P11_KIT_SERVER_ADDRESS", address)
    }

    fn spawn(
        mut cmd: Command,
        dir: &Path,
        socket: &Path,
        variable: &'static str,
        address: String,
    ) -> Result<Service, String> {
        let mut child = cmd
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
        while std::os::unix::net::UnixStream::connect(socket).is_err() {
            if std::time::Instant::now() > deadline || child.try_wait().ok().flatten().is_some() {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("no service on {}", socket.display()));
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        Ok(Service { child, variable, address })
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
