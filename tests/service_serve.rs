//! `ecm-hsm serve`: the service as its own process, on a socket of the mode asked for, that a
//! second service cannot take over.

mod common;

use std::os::unix::fs::{FileTypeExt, PermissionsExt};

use common::served::{Served, serve_command};
use ecm_hsm::service::{Address, Client};

#[test]
fn serve_listens_with_its_mode_answers_clients_and_keeps_its_socket() {
    let dir = std::env::temp_dir().join(format!("ecm-serve-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let socket = dir.join("hsm.sock");
    // A stale socket file, as a crashed service leaves it, is replaced.
    drop(std::os::unix::net::UnixListener::bind(&socket).unwrap());
    let served = Served::start(dir.clone(), socket.clone(), &["--mode", "0600"]);
    let meta = std::fs::metadata(&socket).unwrap();
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);

    let client = Client::new(Address::parse(&served.address()).unwrap());
    assert_eq!(client.slot_list().unwrap(), vec![0]);
    let peer = client.peer().unwrap();
    assert_eq!(peer.pid, std::process::id() as i32);

    // A second service on the same socket is refused, and the first keeps it.
    let second = serve_command(&dir, &socket, &[]).output().unwrap();
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
