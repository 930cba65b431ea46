//! The `ecm-hsm` admin tool: what PKCS#11 has no verb for (initializing a token with both
//! PINs, the key hierarchy, rotation, retirement, status, envelopes), on the same safe core
//! as the PKCS#11 module (`ecm_hsm::module::Module`), so the same rules apply.
//!
//! PINs never come from argv: a `--*-pin-file`, else the environment (`ECM_HSM_PIN`,
//! `ECM_HSM_SO_PIN`, `ECM_HSM_NEW_PIN`), else a prompt on the terminal (`/dev/tty`, without
//! echo); with no terminal the prompt fails at once. Errors are one line on stderr and exit
//! code 1; usage errors exit 2.

/// `println!` that cannot panic: what is written to a closed pipe (`ecm-hsm status | head -1`)
/// is dropped and the command carries on with its work, rather than stopping half-way.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

mod admin;
mod approvals;
mod audit;
mod envelopes;
mod pins;
mod policy;
mod principals;
mod serve;
mod token;
mod util;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "ecm-hsm",
    version = ecm_hsm::version::long_version(),
    about = "Administer ecm-hsm tokens: the master key / KEK / DEK hierarchy, rotation, envelopes",
    long_about = "Administer ecm-hsm tokens: the master key / KEK / DEK hierarchy, rotation and \
                  envelopes, on the same store and under the same rules as the PKCS#11 module.\n\n\
                  PINs are never taken from the command line: the user PIN comes from --pin-file, \
                  else ECM_HSM_PIN, else a prompt on the terminal (likewise ECM_HSM_SO_PIN and \
                  ECM_HSM_NEW_PIN for `init`, `principal` and `policy`). With those variables \
                  set, no command prompts."
)]
pub struct Cli {
    /// Token slot to use [default: the first initialized token; for `init`, the free slot]
    #[arg(long, global = true, value_name = "N")]
    slot: Option<u64>,
    /// Directory of the token files [default: $ECM_HSM_DIR, else ${XDG_DATA_HOME:-~/.local/share}/ecm-hsm]
    #[arg(long, global = true, value_name = "DIR")]
    token_dir: Option<PathBuf>,
    /// Read the user PIN from the first line of FILE [default: $ECM_HSM_PIN, else a prompt]
    #[arg(long, global = true, value_name = "FILE")]
    pin_file: Option<PathBuf>,
    /// Log in as the principal NAME (C_LoginUser) with its PIN from --pin-file / ECM_HSM_PIN;
    /// `user` is the token's own user
    #[arg(long, global = true, value_name = "NAME")]
    user: Option<String>,
    /// Work through the key service at ADDR (unix:/path/to/socket) rather than on the token
    /// files in-process [default: $ECM_HSM_SERVICE, else in-process]
    #[arg(long, global = true, value_name = "ADDR")]
    service: Option<String>,
    #[command(subcommand)]
    command: Command,
}

/// The options every command shares.
pub struct Global {
    pub slot: Option<u64>,
    pub token_dir: Option<PathBuf>,
    pub pin_file: Option<PathBuf>,
    pub user: Option<String>,
    /// `--service ADDR`, in place of `ECM_HSM_SERVICE`.
    pub service: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Initialize a token on the free slot, with its SO PIN and user PIN
    Init(InitArgs),
    /// The key hierarchy of a token
    #[command(subcommand)]
    Hierarchy(HierarchyCommand),
    /// Tenants: each has its own family of DEKs
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// Make the next version of a key family (the previous one becomes decrypt-only)
    Rotate(RotateArgs),
    /// Destroy a superseded key version (refused for the current one or one with dependents)
    Retire(RetireArgs),
    /// Show every key of the hierarchy: tier, tenant, version, state, age, next rotation
    Status(StatusArgs),
    /// Custody of the token key: seal a token for the key service
    #[command(subcommand)]
    Token(token::TokenCommand),
    /// Seal and open data in the ecm-hsm envelope format
    #[command(subcommand)]
    Envelope(EnvelopeCommand),
    /// Principals: named users with PINs of their own, managed by the SO
    #[command(subcommand)]
    Principal(principals::PrincipalCommand),
    /// The key-access policy: what each principal may do with which keys
    #[command(subcommand)]
    Policy(policy::PolicyCommand),
    /// The tamper-evident audit record: verify its chain, export its records
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// Approve ahead, as an approver with its own PIN, one management operation (destroy,
    /// modify, rotate) of a principal on one key, or the SO's change to one policy document
    #[command(long_about = "Approve ahead, as an approver with its own PIN (--pin-file, \
                            ECM_HSM_PIN or a prompt), one management operation of a principal \
                            whose policy rule requires approval: destroy, modify or rotate one \
                            key (--key LABEL, bound to the key's unique id; a rotation names the \
                            current version), or the SO's change to one policy document \
                            (--operation policy --policy FILE, bound to the SHA-256 of its \
                            canonical form) when the policy in force sets \
                            policy_change_approvals.\n\n\
                            The approval is used once, by the operation it names, within \
                            --expires-in (default 1h, at most 24h); the operation needs as many \
                            approvals by distinct approvers as the principal's rule asks \
                            (\"approvals\", default 1). An approver may not approve its own \
                            operation and needs a rule granting `approve` on the key.")]
    Approve(approvals::ApproveArgs),
    /// Approvals recorded ahead: list them, revoke one
    #[command(subcommand)]
    Approval(approvals::ApprovalCommand),
    /// Run the key service in the foreground: serve the tokens to clients on a Unix socket
    Serve(serve::ServeArgs),
    /// For tests: prints this process's memory-hygiene state (`dumpable: 0|1`)
    #[command(hide = true)]
    DebugProcess,
}

#[derive(Args)]
pub struct InitArgs {
    /// Token label (at most 32 bytes)
    #[arg(long, value_name = "L")]
    label: String,
    /// Read the new token's SO PIN from FILE [default: $ECM_HSM_SO_PIN, else a prompt]
    #[arg(long, value_name = "FILE")]
    so_pin_file: Option<PathBuf>,
    /// Read the user PIN to set from FILE [default: $ECM_HSM_NEW_PIN, else a prompt]
    #[arg(long, value_name = "FILE")]
    new_pin_file: Option<PathBuf>,
    /// Make the token in service custody: its token key sealed under the service key in
    /// PATH (made, 32 random bytes readable by this user alone, if it does not exist), its
    /// PINs verifiers (see the README's "Key service")
    #[arg(long, value_name = "PATH")]
    service_key: Option<PathBuf>,
}

#[derive(Subcommand)]
enum HierarchyCommand {
    /// Create the master key and the first KEK (whichever of them is missing)
    Init,
}

#[derive(Subcommand)]
enum TenantCommand {
    /// Add tenants: the first DEK of each (dek-<tenant>-v1)
    Add {
        /// Tenant names (letters, digits, '.', '_' and '-'; at most 64 bytes)
        #[arg(required = true, value_name = "TENANT")]
        tenants: Vec<String>,
    },
}

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true, arg_required_else_help = true)]
pub struct RotateArgs {
    #[command(subcommand)]
    what: Option<RotateWhat>,
    /// Rotate every current key whose next rotation is due (for a timer or cron job)
    #[arg(long)]
    due: bool,
    /// With --due: only list what is due
    #[arg(long, requires = "due")]
    dry_run: bool,
}

#[derive(Subcommand, Clone)]
pub enum RotateWhat {
    /// Rotate the master key (every KEK is rewrapped under the new one)
    Master,
    /// Rotate the KEK (every DEK is rewrapped under the new one)
    Kek,
    /// Rotate a tenant's DEK (new data is sealed under the new version)
    Dek {
        /// The tenant whose DEK rotates
        #[arg(long, value_name = "T")]
        tenant: String,
    },
}

#[derive(Args)]
pub struct RetireArgs {
    /// Label of the version to retire, e.g. dek-acme-v1, kek-v1, master-v1
    #[arg(long, value_name = "LABEL")]
    label: String,
}

#[derive(Args)]
pub struct StatusArgs {
    /// Print JSON instead of a table
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
enum EnvelopeCommand {
    /// Seal data for a tenant under its current DEK (stdin to stdout by default)
    Encrypt(EncryptArgs),
    /// Open an envelope with the DEK version that sealed it (stdin to stdout by default)
    Decrypt(DecryptArgs),
    /// Seal envelopes again under their tenant's current DEK
    Reencrypt(ReencryptArgs),
    /// Show an envelope's header without opening it (needs no PIN)
    Inspect(InspectArgs),
}

#[derive(Args)]
pub struct EncryptArgs {
    /// The tenant whose current DEK seals the data
    #[arg(long, value_name = "T")]
    tenant: String,
    /// Associated data: kept in clear in the envelope and authenticated with it
    #[arg(long, value_name = "TEXT")]
    aad: Option<String>,
    #[command(flatten)]
    io: Io,
}

#[derive(Args)]
pub struct DecryptArgs {
    /// Refuse the envelope unless it belongs to tenant T
    #[arg(long, value_name = "T")]
    tenant: Option<String>,
    /// Refuse the envelope unless its associated data is TEXT
    #[arg(long, value_name = "TEXT")]
    aad: Option<String>,
    #[command(flatten)]
    io: Io,
}

#[derive(Args)]
pub struct ReencryptArgs {
    #[command(flatten)]
    io: Io,
    /// Rewrite each FILE in place (atomically); envelopes already under the current DEK are
    /// left alone. Progress is shown when stderr is a terminal.
    #[arg(long, requires = "files", conflicts_with_all = ["input", "output"])]
    in_place: bool,
    /// Envelope files, with --in-place
    #[arg(value_name = "FILE", requires = "in_place")]
    files: Vec<PathBuf>,
}

#[derive(Args)]
pub struct InspectArgs {
    /// Print JSON
    #[arg(long)]
    json: bool,
    /// Read the envelope from FILE [default: stdin]
    #[arg(short = 'i', long = "in", value_name = "FILE")]
    input: Option<PathBuf>,
}

#[derive(Args)]
pub struct Io {
    /// Read from FILE [default: stdin]
    #[arg(short = 'i', long = "in", value_name = "FILE")]
    input: Option<PathBuf>,
    /// Write to FILE [default: stdout]
    #[arg(short = 'o', long = "out", value_name = "FILE")]
    output: Option<PathBuf>,
}

/// A failure to report: one line on stderr, exit code 1.
#[derive(Debug)]
pub struct Failure(pub String);

pub type Outcome<T> = Result<T, Failure>;

impl From<ecm_hsm::envelope::EnvelopeError> for Failure {
    fn from(e: ecm_hsm::envelope::EnvelopeError) -> Self {
        match e {
            ecm_hsm::envelope::EnvelopeError::Module(e) => Failure(util::explain(&e)),
            other => Failure(other.to_string()),
        }
    }
}

pub fn main() -> ExitCode {
    // Before anything holds a PIN or a key: no core file of this process, and no other
    // process of the same user may read its memory (ptrace, /proc/<pid>/mem).
    let not_dumpable = ecm_hsm::sys::memory::make_process_not_dumpable();
    let cli = Cli::parse();
    ecm_hsm::error::install_env_logger();
    if let Err(e) = not_dumpable {
        log::warn!("could not make the process not dumpable (PR_SET_DUMPABLE): {e}");
    }
    let global = Global {
        slot: cli.slot,
        token_dir: cli.token_dir,
        pin_file: cli.pin_file,
        user: cli.user,
        service: cli.service,
    };
    let result = match cli.command {
        Command::Init(a) => admin::init(&global, &a),
        Command::Hierarchy(HierarchyCommand::Init) => admin::hierarchy_init(&global),
        Command::Tenant(TenantCommand::Add { tenants }) => admin::tenant_add(&global, &tenants),
        Command::Rotate(a) => match (&a.what, a.due) {
            (Some(what), false) => admin::rotate(&global, what),
            (None, true) => admin::rotate_due(&global, a.dry_run),
            // clap enforces one or the other.
            _ => Err(Failure("name what to rotate (master, kek, dek --tenant T) or --due".into())),
        },
        Command::Retire(a) => admin::retire(&global, &a.label),
        Command::Status(a) => admin::status(&global, a.json),
        Command::Token(c) => token::run(&global, &c),
        Command::Envelope(EnvelopeCommand::Encrypt(a)) => envelopes::encrypt(&global, &a),
        Command::Envelope(EnvelopeCommand::Decrypt(a)) => envelopes::decrypt(&global, &a),
        Command::Envelope(EnvelopeCommand::Reencrypt(a)) => envelopes::reencrypt(&global, &a),
        Command::Envelope(EnvelopeCommand::Inspect(a)) => envelopes::inspect(&a),
        Command::Principal(c) => principals::run(&global, &c),
        Command::Policy(c) => policy::run(&global, &c),
        Command::Audit(c) => audit::run(&global, &c),
        Command::Approve(a) => approvals::approve(&global, &a),
        Command::Approval(c) => approvals::run(&global, &c),
        Command::Serve(a) => serve::serve(&global, &a),
        Command::DebugProcess => rustix::process::dumpable_behavior()
            .map(|dumpable| say!("dumpable: {}", dumpable as i32))
            .map_err(|e| Failure(e.to_string())),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure(message)) => {
            eprintln!("ecm-hsm: {message}");
            ExitCode::FAILURE
        }
    }
}
