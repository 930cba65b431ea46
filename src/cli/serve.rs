//! `ecm-hsm serve`: the key service in the foreground (for systemd, or a test), serving the
//! tokens of the token directory over a Unix socket.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

use clap::Args;
use ecm_hsm::server::{Limits, Server};

use super::token::config;
use super::{Failure, Global, Outcome};

#[derive(Args)]
pub struct ServeArgs {
    /// Listen on the Unix socket PATH [default: the socket systemd passes (LISTEN_FDS)]
    #[arg(long, value_name = "PATH")]
    socket: Option<PathBuf>,
    /// Permissions of the socket, in octal: who may connect is who may write to it
    #[arg(long, value_name = "OCTAL", default_value = "0660", value_parser = parse_mode)]
    mode: u32,
    /// Largest message in bytes either way (data longer goes in several update steps)
    #[arg(long, value_name = "BYTES", default_value_t = Limits::default().max_frame)]
    max_frame: usize,
    /// Sessions one connection may hold open at once
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_sessions)]
    max_sessions: usize,
    /// Connections served at once
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_connections)]
    max_connections: usize,
}

fn parse_mode(text: &str) -> Result<u32, String> {
    let mode = u32::from_str_radix(text.trim_start_matches("0o"), 8).map_err(|e| e.to_string())?;
    if mode & !0o777 != 0 {
        return Err("only permission bits (at most 0777)".into());
    }
    Ok(mode)
}

pub fn serve(global: &Global, args: &ServeArgs) -> Outcome<()> {
    if let Some(address) = &global.service {
        return Err(Failure(format!(
            "`serve` runs the key service on the token files; --service {address} makes the tool a client"
        )));
    }
    harden()?;
    let mut config = config(global.token_dir.as_deref())?;
    // The service serves the token files; an ECM_HSM_SERVICE meant for its clients is not its.
    config.service = None;
    check_service_key(&config)?;
    let limits = Limits {
        max_frame: args.max_frame,
        max_sessions: args.max_sessions,
        max_connections: args.max_connections,
        ..Limits::default()
    };
    let listener = match &args.socket {
        Some(path) => bind(path, args.mode)?,
        None => activated()?,
    };
    eprintln!("ecm-hsm serve: serving {} on {}", config.token_dir.display(), describe(&listener));
    Server::new(listener, config, limits).run().map_err(|e| Failure(format!("accepting connections: {e}")))
}

/// Says which service key the service opens its tokens with (`ecm_hsm::token::custody`),
/// refusing to start with a configured key file it cannot use (a wrong mode, owner or size)
/// rather than failing every login later. The key is read again by each token as it needs it.
fn check_service_key(config: &ecm_hsm::config::Config) -> Outcome<()> {
    match &config.service_key_file {
        Some(path) => {
            ecm_hsm::token::ServiceKey::load(path).map_err(|e| Failure(super::util::explain(&e)))?;
            eprintln!("ecm-hsm serve: service key {}", path.display());
        }
        None => eprintln!(
            "ecm-hsm serve: no service key (the credential {}, ECM_HSM_SERVICE_KEY_FILE or service_key_file): \
             tokens in service custody refuse every login, and new tokens are made in pins custody",
            ecm_hsm::config::SERVICE_KEY_CREDENTIAL
        ),
    }
    Ok(())
}

/// Keeps the service's key material out of core files and other processes' reach before it
/// holds any (issue 14, item 5), and says so in one line:
///
/// - not dumpable (`PR_SET_DUMPABLE` 0, set by `main` for every command and checked here): no
///   core file, and no process of the same user may `ptrace` it or read its memory;
/// - `RLIMIT_CORE` 0, soft and hard: no core file even if something made it dumpable again
///   (a `setuid` exec, a `prctl` in a library);
/// - the service's warnings (`log`) go to its stderr (the journal under systemd) even without
///   `ECM_HSM_LOG`, so that a refused `mlock` (over `RLIMIT_MEMLOCK`: key pages may be
///   swapped) is logged, once, with the limit in force (`ecm_hsm::sys::memory::lock`). One
///   page is locked now, so that a limit of 0 shows at start rather than at the first key.
fn harden() -> Outcome<()> {
    use rustix::process::{DumpableBehavior, Resource, Rlimit, dumpable_behavior, setrlimit};
    if std::env::var_os("ECM_HSM_LOG").is_none() {
        let _ = env_logger::Builder::new()
            .filter_level(log::LevelFilter::Warn)
            .format_timestamp(None)
            .format_target(false)
            .try_init();
    }
    ecm_hsm::sys::memory::make_process_not_dumpable()
        .map_err(|e| Failure(format!("cannot make the service not dumpable (PR_SET_DUMPABLE): {e}")))?;
    setrlimit(Resource::Core, Rlimit { current: Some(0), maximum: Some(0) })
        .map_err(|e| Failure(format!("cannot turn core files off (RLIMIT_CORE): {e}")))?;
    let dumpable = dumpable_behavior().map_err(|e| Failure(format!("PR_GET_DUMPABLE: {e}")))?;
    if dumpable != DumpableBehavior::NotDumpable {
        return Err(Failure("the service is still dumpable (PR_SET_DUMPABLE was not kept)".into()));
    }
    let locked = memmap2::MmapMut::map_anon(ecm_hsm::sys::page_size())
        .is_ok_and(|page| ecm_hsm::sys::memory::lock(&page));
    eprintln!(
        "ecm-hsm serve: not dumpable, core files off (RLIMIT_CORE 0), key memory {}",
        if locked { "locked (mlock)" } else { "NOT locked: see the warning above" }
    );
    Ok(())
}

/// The socket systemd opened for the service (socket activation), if it passed one.
fn activated() -> Outcome<UnixListener> {
    let mut fds = listenfd::ListenFd::from_env();
    match fds.take_unix_listener(0) {
        Ok(Some(listener)) => Ok(listener),
        Ok(None) => Err(Failure("give --socket PATH (no socket was passed by systemd)".into())),
        Err(e) => Err(Failure(format!("the socket passed by systemd: {e}"))),
    }
}

/// A new socket at `path` with permissions `mode`. It is created with those permissions
/// (under a umask that leaves no more), so it is never open to others for a moment; a socket
/// left by a service that is gone is replaced, one in use is not.
fn bind(path: &Path, mode: u32) -> Outcome<UnixListener> {
    if path.exists() {
        if UnixStream::connect(path).is_ok() {
            return Err(Failure(format!("{} is in use by a running service", path.display())));
        }
        std::fs::remove_file(path).map_err(|e| Failure(format!("cannot replace {}: {e}", path.display())))?;
    }
    let mask = rustix::fs::Mode::from_bits_truncate(!mode & 0o777);
    let previous = rustix::process::umask(mask);
    let bound = UnixListener::bind(path);
    rustix::process::umask(previous);
    let listener = bound.map_err(|e| Failure(format!("cannot listen on {}: {e}", path.display())))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| Failure(format!("cannot set the mode of {}: {e}", path.display())))?;
    Ok(listener)
}

fn describe(listener: &UnixListener) -> String {
    match listener.local_addr().ok().and_then(|a| a.as_pathname().map(Path::to_path_buf)) {
        Some(p) => p.display().to_string(),
        None => "an unnamed socket".into(),
    }
}
