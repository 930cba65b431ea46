//! `ecm-hsm serve` as a process of its own, for the tests of the service binary and of the
//! admin tool as its client: started on a socket, waited for with a deadline, killed and its
//! directory removed on drop.

use std::io::{BufRead, BufReader};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::cli::BIN;

/// `ecm-hsm serve --socket SOCKET EXTRA…` on the token directory `dir/tokens`, with no
/// settings, service address or socket activation inherited from the test's environment.
pub fn serve_command(dir: &Path, socket: &Path, extra: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.env("ECM_HSM_DIR", dir.join("tokens"))
        .env_remove("ECM_HSM_CONF")
        .env_remove("ECM_HSM_SERVICE")
        .env_remove("LISTEN_FDS")
        .arg("serve")
        .arg("--socket")
        .arg(socket)
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    c
}

/// Waits (with a deadline, not a fixed sleep) until something accepts connections at `socket`.
pub fn wait_for_listener(socket: &Path) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while UnixStream::connect(socket).is_err() {
        assert!(Instant::now() < deadline, "the service never listened");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A running `ecm-hsm serve` whose files live in `dir`.
pub struct Served {
    pub dir: PathBuf,
    pub socket: PathBuf,
    child: Child,
}

impl Served {
    /// Starts [`serve_command`] and returns once the service listens. Its log is drained so
    /// that it never blocks on a full pipe.
    pub fn start(dir: PathBuf, socket: PathBuf, extra: &[&str]) -> Served {
        let mut child = serve_command(&dir, &socket, extra).spawn().expect("spawn ecm-hsm serve");
        let stderr = BufReader::new(child.stderr.take().unwrap());
        std::thread::spawn(move || stderr.lines().map_while(Result::ok).for_each(drop));
        let served = Served { dir, socket, child };
        wait_for_listener(&served.socket);
        served
    }

    /// The service's address as clients name it.
    pub fn address(&self) -> String {
        format!("unix:{}", self.socket.display())
    }

    /// The service's token directory.
    pub fn tokens(&self) -> PathBuf {
        self.dir.join("tokens")
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
