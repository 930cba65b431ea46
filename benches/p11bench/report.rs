//! What children print, and the one table the parent prints from it.
//!
//! A child prints one line per fact, tab-separated:
//! `ROW <id> <figure>` (see [`Figure::encode`]), `NOTE <id> <text>` (a footnote on that cell),
//! `INFO <key> <text>`. Rows a phase reports several times (one per new process) are shown
//! as their median.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::direct::DEFAULT_PIN_KDF_ITERATIONS;
use crate::p11::Engine;
use crate::timing::{Pace, Timing, median};
use crate::workloads::{
    AUDIT_OFF_ID, AUDIT_RATIO_ID, AUDITED, PROCESSES_ID, PROCESSES_RATIO_ID, THREADED, WORKLOADS,
};

/// One measured figure.
#[derive(Clone, Debug)]
pub enum Figure {
    /// Operations per second.
    Rate(f64),
    Millis(f64),
    Mib(f64),
    Ratio(f64),
    /// The module refused the workload: the return code.
    Unsupported(String),
    /// The workload started, then failed.
    Failed(String),
    /// Not run in a `--quick` run.
    Skipped,
}

impl Figure {
    fn encode(&self) -> String {
        match self {
            Figure::Rate(v) => format!("rate {v}"),
            Figure::Millis(v) => format!("ms {v}"),
            Figure::Mib(v) => format!("mib {v}"),
            Figure::Ratio(v) => format!("ratio {v}"),
            Figure::Unsupported(e) => format!("unsupported {e}"),
            Figure::Failed(e) => format!("failed {e}"),
            Figure::Skipped => "skipped".into(),
        }
    }

    fn decode(s: &str) -> Option<Self> {
        let (kind, rest) = s.split_once(' ').unwrap_or((s, ""));
        let num = || rest.parse::<f64>().ok();
        Some(match kind {
            "rate" => Figure::Rate(num()?),
            "ms" => Figure::Millis(num()?),
            "mib" => Figure::Mib(num()?),
            "ratio" => Figure::Ratio(num()?),
            "unsupported" => Figure::Unsupported(rest.into()),
            "failed" => Figure::Failed(rest.into()),
            "skipped" => Figure::Skipped,
            _ => return None,
        })
    }

    fn value(&self) -> Option<f64> {
        match self {
            Figure::Rate(v) | Figure::Millis(v) | Figure::Mib(v) | Figure::Ratio(v) => Some(*v),
            _ => None,
        }
    }

    fn with_value(&self, v: f64) -> Self {
        match self {
            Figure::Rate(_) => Figure::Rate(v),
            Figure::Millis(_) => Figure::Millis(v),
            Figure::Mib(_) => Figure::Mib(v),
            Figure::Ratio(_) => Figure::Ratio(v),
            other => other.clone(),
        }
    }
}

// --- the child's side ---------------------------------------------------------------------

pub fn emit(id: &str, figure: &Figure) {
    println!("ROW\t{id}\t{}", figure.encode());
}

pub fn note(id: &str, text: &str) {
    println!("NOTE\t{id}\t{text}");
}

pub fn info(key: &str, text: &str) {
    println!("INFO\t{key}\t{text}");
}

// --- the parent's side --------------------------------------------------------------------

/// What the children of one column reported.
#[derive(Default)]
pub struct Results {
    rows: HashMap<String, Vec<Figure>>,
    notes: Vec<(String, String)>,
    info: HashMap<String, String>,
    /// Why (part of) the column could not be measured.
    pub fatal: Vec<String>,
}

impl Results {
    pub fn absorb(&mut self, stdout: &str) {
        for line in stdout.lines() {
            let mut parts = line.splitn(3, '\t');
            let (Some(tag), Some(key), Some(text)) = (parts.next(), parts.next(), parts.next()) else {
                continue;
            };
            match tag {
                "ROW" => {
                    if let Some(f) = Figure::decode(text) {
                        self.rows.entry(key.into()).or_default().push(f);
                    }
                }
                // The same note from several processes is shown once.
                "NOTE" if !self.notes.iter().any(|(k, t)| k == key && t == text) => {
                    self.notes.push((key.into(), text.into()));
                }
                "INFO" => {
                    self.info.entry(key.into()).or_insert_with(|| text.into());
                }
                _ => {}
            }
        }
    }

    /// A footnote on a row, from the parent.
    pub fn add_note(&mut self, id: &str, text: &str) {
        self.notes.push((id.into(), text.into()));
    }

    /// The row `id`: row `num` ÷ row `den`, when both are numbers.
    pub fn add_ratio(&mut self, id: &str, num: &str, den: &str) {
        let value = |row| self.figure(row).as_ref().and_then(Figure::value);
        if let (Some(n), Some(d)) = (value(num), value(den)) {
            self.rows.insert(id.into(), vec![Figure::Ratio(n / d)]);
        }
    }

    /// Sets the row `id` from the parent.
    pub fn set(&mut self, id: &str, figure: Figure) {
        self.rows.insert(id.into(), vec![figure]);
    }

    /// The row's figure as a number, if it is one.
    pub fn value(&self, id: &str) -> Option<f64> {
        self.figure(id).as_ref().and_then(Figure::value)
    }

    pub fn nothing_measured(&self) -> bool {
        self.rows.is_empty()
    }

    /// The row's figure: the median if every report of it is a number, else the first
    /// report that is not.
    fn figure(&self, id: &str) -> Option<Figure> {
        let all = self.rows.get(id)?;
        if let Some(bad) = all.iter().find(|f| f.value().is_none()) {
            return Some(bad.clone());
        }
        let values = all.iter().filter_map(Figure::value).collect();
        Some(all[0].with_value(median(values)))
    }
}

/// One module (or the aws-lc-rs ceiling) and what was measured on it.
pub struct Column {
    pub name: String,
    pub engine: Engine,
    /// The file the children load.
    pub load: PathBuf,
    /// The file as shown in the header.
    pub shown: String,
    /// ecm-hsm in client mode: each child runs against an `ecm-hsm serve` on its directory.
    pub service: bool,
    /// p11-kit's client module: each child runs against a `p11-kit server` (this program)
    /// hosting that module (ecm-hsm) on its directory.
    pub p11kit: Option<(PathBuf, PathBuf)>,
    pub results: Results,
}

impl Column {
    pub fn new(name: &str, engine: Engine, load: PathBuf, shown: &Path) -> Self {
        Column {
            name: name.to_string(),
            engine,
            load,
            shown: shown.display().to_string(),
            service: false,
            p11kit: None,
            results: Results::default(),
        }
    }

    /// The column of p11-kit's client module, against `server` hosting `module`.
    pub fn behind_p11kit(mut self, server: PathBuf, module: PathBuf) -> Self {
        self.p11kit = Some((server, module));
        self
    }

    /// The module as shown in the header.
    pub fn shown_as(mut self, text: &str) -> Self {
        self.shown = text.to_string();
        self
    }

    /// The column of `libecm_hsm.so` in client mode.
    pub fn through_service(mut self) -> Self {
        self.service = true;
        self
    }
}

/// How a row's figures read.
#[derive(Clone, Copy)]
enum Kind {
    /// ops/s, and MB/s if `bytes` > 0.
    Rate {
        bytes: usize,
    },
    /// A rate of creating `count` objects: shown as the total time and the rate.
    Created {
        count: usize,
    },
    Millis,
    Mib,
    /// 2 threads ÷ 1 thread, or auditing on ÷ off.
    Ratio,
}

struct Row {
    id: String,
    label: String,
    kind: Kind,
    /// Measured on ecm-hsm alone: "—" in the other modules' columns.
    ecm_only: bool,
}

fn rows(t: &Timing) -> Vec<Row> {
    let row = |id: &str, label: String, kind| Row { id: id.into(), label, kind, ecm_only: false };
    let mut rows: Vec<Row> = WORKLOADS
        .iter()
        .map(|w| {
            let label = match w.pace {
                Pace::Iterations { full, quick } => match if t.quick { quick } else { full } {
                    0 => w.name.to_string(),
                    1 => format!("{} (1 call)", w.name),
                    n => format!("{} (median of {n} calls)", w.name),
                },
                Pace::Windows => w.name.to_string(),
                Pace::Sustained => format!("{}, after {} s of it", w.name, t.sustain().as_secs()),
            };
            row(w.id, label, Kind::Rate { bytes: w.bytes })
        })
        .collect();
    if let Some(i) = rows.iter().position(|r| r.id == AUDITED) {
        let (name, bytes) = WORKLOADS.iter().find(|w| w.id == AUDITED).map_or(("", 0), |w| (w.name, w.bytes));
        let ecm_only = |r: Row| Row { ecm_only: true, ..r };
        rows.splice(
            i + 1..i + 1,
            [
                ecm_only(row(AUDIT_OFF_ID, format!("{name}, auditing off"), Kind::Rate { bytes })),
                ecm_only(row(AUDIT_RATIO_ID, "↳ auditing on ÷ off".into(), Kind::Ratio)),
            ],
        );
    }
    for (id, name, bytes) in THREADED {
        rows.push(row(&format!("{id}-2t"), format!("{name}, 2 threads (sum)"), Kind::Rate { bytes }));
        rows.push(row(&format!("{id}-2t-ratio"), "↳ 2 threads ÷ 1 thread".into(), Kind::Ratio));
        if id == AUDITED {
            let ecm_only = |r: Row| Row { ecm_only: true, ..r };
            let off = format!("{name}, 2 threads (sum), auditing off");
            rows.push(ecm_only(row(&format!("{AUDIT_OFF_ID}-2t"), off, Kind::Rate { bytes })));
            rows.push(ecm_only(row(
                &format!("{AUDIT_OFF_ID}-2t-ratio"),
                "↳ 2 threads ÷ 1 thread".into(),
                Kind::Ratio,
            )));
        }
    }
    rows.push(row(
        PROCESSES_ID,
        "AES-256-GCM encrypt 1 KiB, 2 client processes (sum)".into(),
        Kind::Rate { bytes: 1024 },
    ));
    rows.push(row(PROCESSES_RATIO_ID, "↳ 2 processes ÷ 1 process".into(), Kind::Ratio));
    let n = group(t.objects as f64);
    rows.extend([
        row(
            "objects-create",
            format!("create {n} token objects (AES keygen each)"),
            Kind::Created { count: t.objects },
        ),
        row("objects-find", format!("find by label among {n} token objects"), Kind::Rate { bytes: 0 }),
        row("objects-find-id", format!("find by CKA_ID among {n} token objects"), Kind::Rate { bytes: 0 }),
        row("objects-rss", format!("peak RSS (VmHWM) of the {n}-object run"), Kind::Mib),
        row("reopen-init", format!("new process: C_Initialize, {n}-object store"), Kind::Millis),
        row("reopen-login", "new process: then slots + open + login".into(), Kind::Millis),
        row("reopen-find", "new process: then first find by label".into(), Kind::Millis),
        row("reopen-find-id", "new process: then first find by CKA_ID (another object)".into(), Kind::Millis),
        row("reopen-rss", "new process: peak RSS (VmHWM) after that".into(), Kind::Mib),
    ]);
    rows
}

// --- formatting -----------------------------------------------------------------------------

/// 12345 → "12,345".
fn group(v: f64) -> String {
    let digits = format!("{:.0}", v.abs());
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if v < 0.0 { format!("-{out}") } else { out }
}

/// Three significant figures, with k/M for large values.
fn num(v: f64) -> String {
    let (v, suffix) = if v >= 1e6 {
        (v / 1e6, " M")
    } else if v >= 1e4 {
        (v / 1e3, " k")
    } else {
        (v, "")
    };
    let text = if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    };
    format!("{text}{suffix}")
}

fn throughput(bytes_per_s: f64) -> String {
    if bytes_per_s >= 1e9 {
        format!("{:.2} GB/s", bytes_per_s / 1e9)
    } else {
        format!("{:.0} MB/s", bytes_per_s / 1e6)
    }
}

fn ratio(v: f64) -> String {
    format!("×{}", num(v))
}

fn cell(kind: Kind, figure: Option<&Figure>) -> String {
    let Some(figure) = figure else { return "—".into() };
    match (figure, kind) {
        (Figure::Rate(r), Kind::Rate { bytes: 0 }) => format!("{} ops/s", num(*r)),
        (Figure::Rate(r), Kind::Rate { bytes }) => {
            format!("{} ops/s · {}", num(*r), throughput(r * bytes as f64))
        }
        (Figure::Rate(r), Kind::Created { count }) => format!("{:.1} s ({}/s)", count as f64 / r, num(*r)),
        (Figure::Millis(v), _) => format!("{} ms", num(*v)),
        (Figure::Mib(v), _) => format!("{} MiB", num(*v)),
        (Figure::Ratio(v), _) => ratio(*v),
        (Figure::Rate(r), _) => num(*r),
        (Figure::Unsupported(e), _) => format!("unsupported ({e})"),
        (Figure::Failed(e), _) => format!("failed ({e})"),
        (Figure::Skipped, _) => "skipped (--quick)".into(),
    }
}

/// ecm-hsm's advantage over a peer: > 1 means ecm-hsm is faster (or, for times and memory,
/// quicker and smaller).
fn advantage(kind: Kind, ecm: Option<&Figure>, peer: Option<&Figure>) -> String {
    let (Some(e), Some(p)) = (ecm.and_then(Figure::value), peer.and_then(Figure::value)) else {
        return "—".into();
    };
    match kind {
        Kind::Rate { .. } | Kind::Created { .. } => ratio(e / p),
        Kind::Millis | Kind::Mib => ratio(p / e),
        Kind::Ratio => "—".into(),
    }
}

/// ecm-hsm's share of the aws-lc-rs ceiling.
fn share(kind: Kind, ecm: Option<&Figure>, direct: Option<&Figure>) -> String {
    match (kind, ecm.and_then(Figure::value), direct.and_then(Figure::value)) {
        (Kind::Rate { .. }, Some(e), Some(d)) => format!("{:.0}%", 100.0 * e / d),
        _ => "—".into(),
    }
}

// --- the report -----------------------------------------------------------------------------

/// The 1-, 5- and 15-minute load averages, since this machine is shared and noisy.
pub fn load_average() -> String {
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    load.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
}

fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, m)| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!("{cpus} CPUs (nproc), {model}, Linux {}", kernel.trim())
}

/// The temporary directory and the file system it is on (from /proc/mounts), since the
/// persisted workloads wait for that disk's flushes.
fn temp_filesystem() -> String {
    let tmp = std::env::temp_dir();
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    let fs = mounts
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (device, mount, kind) = (f.next()?, f.next()?, f.next()?);
            tmp.starts_with(mount).then(|| (mount.len(), format!("{kind} on {device}")))
        })
        .max_by_key(|(len, _)| *len)
        .map_or_else(|| "unknown file system".into(), |(_, fs)| fs);
    format!("`{}` ({fs})", tmp.display())
}

/// Now as `YYYY-MM-DD HH:MM UTC` (the civil-from-days algorithm of H. Hinnant).
fn date() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02} {:02}:{:02} UTC", rem / 3600, rem % 3600 / 60)
}

/// The version of a package in this project's Cargo.lock, as built.
fn locked_version(name: &str) -> String {
    let lock = include_str!("../../Cargo.lock");
    let needle = format!("name = \"{name}\"\nversion = \"");
    lock.find(&needle).and_then(|i| lock[i + needle.len()..].split('"').next()).unwrap_or("?").to_string()
}

pub fn print(columns: &[Column], direct: &Column, t: &Timing, load_at_start: &str) {
    let mut out = String::new();
    let run = if t.quick { "quick run (--quick)" } else { "full run" };
    let _ = writeln!(out, "## p11bench — {run}\n");
    let _ = writeln!(out, "- date: {}", date());
    let _ = writeln!(out, "- machine: {}", machine());
    let _ = writeln!(
        out,
        "- load average (1, 5, 15 min): {load_at_start} at the start, {} at the end",
        load_average()
    );
    for col in columns {
        let lib = col.results.info.get("library").map_or("", String::as_str);
        let version = if col.engine == Engine::Ecm {
            format!("crate {}; ", env!("CARGO_PKG_VERSION"))
        } else {
            String::new()
        };
        let _ = writeln!(out, "- {}: {version}C_GetInfo: {lib}; `{}`", col.name, col.shown);
    }
    let _ = writeln!(out, "- token directories: fresh ones under {}", temp_filesystem());
    let _ = writeln!(
        out,
        "- ceiling: aws-lc-rs {} called in-process (the same operation, keys in memory)",
        locked_version("aws-lc-rs")
    );
    let _ = writeln!(
        out,
        "- method: median of {} windows of {} ms (after a {} ms warm-up); key-pair generation \
         timed call by call; client: the `cryptoki` crate {} (length query + call, as it does); \
         keys are session objects made by the module unless the row says otherwise; the page \
         cache is written back (`sync`) before each workload",
        t.windows,
        t.window.as_millis(),
        t.window.as_millis() / 4,
        locked_version("cryptoki"),
    );
    let _ = writeln!(
        out,
        "- PIN KDF: every ecm-hsm token here (the login workload's and all others) has the default \
         `pin_kdf_iterations` = {}; SoftHSMv2 has its own fixed PIN cost",
        group(f64::from(DEFAULT_PIN_KDF_ITERATIONS))
    );
    let _ = writeln!(
        out,
        "- ratios: ecm-hsm ÷ peer in speed, > 1 = ecm-hsm faster (for times and memory: peer ÷ \
         ecm-hsm, > 1 = ecm-hsm quicker / smaller); share = ecm-hsm ÷ aws-lc-rs direct\n"
    );

    // Footnotes: numbered in the order they appear in the table.
    let mut footnotes: Vec<String> = Vec::new();
    let mut mark = |col: &Column, id: &str| -> String {
        let mut marks = String::new();
        for (_, text) in col.results.notes.iter().filter(|(k, _)| k == id) {
            let note = format!("{}: {text}", col.name);
            let n = match footnotes.iter().position(|f| *f == note) {
                Some(i) => i + 1,
                None => {
                    footnotes.push(note);
                    footnotes.len()
                }
            };
            let _ = write!(marks, " [{n}]");
        }
        marks
    };

    let ecm = &columns[0];
    let peers = &columns[1..];
    let mut header = vec!["workload".to_string()];
    header.extend(columns.iter().map(|c| c.name.clone()));
    header.extend(peers.iter().map(|p| format!("ecm-hsm ÷ {}", p.name)));
    header.extend(["aws-lc-rs direct".to_string(), "ecm-hsm share".to_string()]);
    let _ = writeln!(out, "| {} |", header.join(" | "));
    let _ = writeln!(out, "|---|{}", "---:|".repeat(header.len() - 1));
    for row in rows(t) {
        let mut cells = vec![row.label.clone()];
        for col in columns {
            if row.ecm_only && col.engine != Engine::Ecm {
                cells.push("—".into());
                continue;
            }
            let figure = col.results.figure(&row.id);
            let text = if figure.is_none() && !col.results.fatal.is_empty() {
                "not run".to_string()
            } else {
                cell(row.kind, figure.as_ref())
            };
            cells.push(text + &mark(col, &row.id));
        }
        let ecm_figure = ecm.results.figure(&row.id);
        for peer in peers {
            cells.push(advantage(row.kind, ecm_figure.as_ref(), peer.results.figure(&row.id).as_ref()));
        }
        let direct_figure = direct.results.figure(&row.id);
        cells.push(cell(row.kind, direct_figure.as_ref()) + &mark(direct, &row.id));
        cells.push(share(row.kind, ecm_figure.as_ref(), direct_figure.as_ref()));
        let _ = writeln!(out, "| {} |", cells.join(" | "));
    }

    let _ = writeln!(out);
    for (i, text) in footnotes.iter().enumerate() {
        let _ = writeln!(out, "[{}] {text}  ", i + 1);
    }
    let _ = writeln!(
        out,
        "- aws-lc-rs on the login row: PBKDF2-HMAC-SHA256 × {} alone (ecm-hsm's PIN KDF, the floor \
         of its login); on the ECDSA row aws-lc-rs hashes the 32 bytes before signing",
        group(f64::from(DEFAULT_PIN_KDF_ITERATIONS))
    );
    let _ = writeln!(
        out,
        "- auditing: the ecm-hsm column runs with auditing on (the default: an audit record \
         appended to the token's audit file for every operation init, login, key generation…) \
         except on the \"auditing off\" row, measured in a process of its own whose fresh token \
         directory has `{}` in its `ecm-hsm.toml`; \"auditing on ÷ off\" divides the row above \
         it by that row (two processes of this run)",
        crate::workloads::AUDIT_OFF_SETTINGS.trim()
    );
    if let Some(base) = ecm.results.info.get("rss-baseline") {
        let _ = writeln!(out, "- peak RSS of the bench process before it loads a module: {base} MiB");
    }
    for col in columns.iter().chain([direct]) {
        for f in &col.results.fatal {
            let _ = writeln!(out, "- {}: {f}", col.name);
        }
    }
    print!("{out}");
}
