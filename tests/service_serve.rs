//! `ecm-hsm serve`: the service as its own process, on a socket of the mode asked for, that a
//! second service cannot take over.

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ecm_hsm::service::{Address, Client};

struct Served {
    dir: PathBuf,
    child: Child,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn serve(dir: &Path, socket: &Path, extra: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_ecm-hsm"))
        .env("ECM_HSM_DIR", dir.join("tokens"))
        .env_remove("LISTEN_FDS")
        .arg("serve")
        .arg("--socket")
        .arg(socket)
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits (with a deadline) until something accepts connections at `socket`.
fn wait_for(socket: &Path) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while UnixStream::connect(socket).is_err() {
        assert!(Instant::now() < deadline, "the service never listened");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn serve_listens_with_its_mode_answers_clients_and_keeps_its_socket() {
    let dir = std::env::temp_dir().join(format!("ecm-serve-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let socket = dir.join("hsm.sock");
    // A stale socket file, as a crashed service leaves it, is replaced.
    drop(std::os::unix::net::UnixListener::bind(&socket).unwrap());
    let served = Served { child: serve(&dir, &socket, &["--mode", "0600"]), dir: dir.clone() };
    wait_for(&socket);
    let meta = std::fs::metadata(&socket).unwrap();
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);

    let client = Client::new(Address::parse(&format!("unix:{}", socket.display())).unwrap());
    assert_eq!(client.slot_list().unwrap(), vec![0]);
    let peer = client.peer().unwrap();
    assert_eq!(peer.pid, std::process::id() as i32);

    // A second service on the same socket is refused, and the first keeps it.
    let second = serve(&dir, &socket, &[]).wait_with_output().unwrap();
    assert!(!second.status.success());
    assert!(String::from_utf8_lossy(&second.stderr).contains("in use"));
    assert_eq!(client.slot_list().unwrap(), vec![0]);
    drop(served);
}

#[test]
fn addresses_are_unix_paths() {
    assert_eq!(
        Address::parse("unix:/run/ecm-hsm/ecm-hsm.sock").unwrap(),
        Address::Unix("/run/ecm-hsm/ecm-hsm.sock".into())
    );
    assert!(Address::parse("unix:relative.sock").is_err());
    assert!(Address::parse("").is_err());
}
