//! A key service for one test: its own token directory and socket, served by a thread of the
//! test process; and small helpers for its clients.
#![allow(dead_code)]

use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use cryptoki_sys::*;
use ecm_hsm::config::Config;
use ecm_hsm::object::Attribute;
use ecm_hsm::object::attribute::{encode_bool, encode_ulong};
use ecm_hsm::server::{Limits, Server};
use ecm_hsm::service::{Address, Client};

pub const SO_PIN: &[u8] = b"so-secret-1";
pub const USER_PIN: &[u8] = b"user-secret-1";

pub struct Service {
    pub dir: PathBuf,
    pub socket: PathBuf,
    pub server: Arc<Server<UnixListener>>,
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

impl Service {
    pub fn start(limits: Limits) -> Service {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("ecm-svc-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let tokens = dir.join("tokens");
        let config =
            Config::from_toml(tokens, "test_settings = true\npin_kdf_iterations = 1000", Path::new("test"))
                .unwrap();
        let socket = dir.join("s.sock");
        let listener = UnixListener::bind(&socket).unwrap();
        let server = Arc::new(Server::new(listener, config, limits).quiet());
        let running = server.clone();
        std::thread::spawn(move || running.run());
        Service { dir, socket, server }
    }

    pub fn client(&self) -> Client {
        Client::new(Address::Unix(self.socket.clone()))
    }

    /// Waits, up to a generous deadline, until the server serves `n` connections.
    pub fn wait_connections(&self, n: usize) {
        wait_until(|| self.server.connections() == n, "connection count");
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Polls `done` until it holds; fails the test after 60 s (a deadline, not a timing).
pub fn wait_until(mut done: impl FnMut() -> bool, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

pub fn label(text: &str) -> [u8; 32] {
    let mut label = [b' '; 32];
    label[..text.len()].copy_from_slice(text.as_bytes());
    label
}

/// A service with `limits`, a client of it, and that client's session logged in as the
/// user of a token it has just initialized ([`token_with_user`]).
pub fn serving_a_user(limits: Limits) -> (Service, Client, CK_SESSION_HANDLE) {
    let service = Service::start(limits);
    let client = service.client();
    let h = token_with_user(&client);
    (service, client, h)
}

/// Initializes the token of slot 0 with the SO PIN and the user PIN; returns a read-write
/// session in which the user is logged in.
pub fn token_with_user(client: &Client) -> CK_SESSION_HANDLE {
    client.init_token(0, SO_PIN, label("svc")).unwrap();
    let rw = CKF_SERIAL_SESSION | CKF_RW_SESSION;
    let so = client.open_session(0, rw).unwrap();
    client.login(so, CKU_SO, SO_PIN).unwrap();
    client.init_pin(so, USER_PIN).unwrap();
    client.logout(so).unwrap();
    client.close_session(so).unwrap();
    let h = client.open_session(0, rw).unwrap();
    client.login(h, CKU_USER, USER_PIN).unwrap();
    h
}

pub fn attr_bool(kind: CK_ATTRIBUTE_TYPE, v: bool) -> Attribute {
    Attribute::new(kind, encode_bool(v))
}

pub fn attr_ulong(kind: CK_ATTRIBUTE_TYPE, v: CK_ULONG) -> Attribute {
    Attribute::new(kind, encode_ulong(v))
}
