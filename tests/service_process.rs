//! Issue 14 item 5: the service process keeps key material out of core files and other
//! processes' reach, and a client holding all the sessions it may does not stop the others.

mod service_support;

use std::io::{BufRead, BufReader};
use std::os::unix::net::UnixStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cryptoki_sys::*;
use ecm_hsm::Error;
use ecm_hsm::server::Limits;
use service_support::*;

/// A field of `/proc/<pid>/limits`: the soft and hard values of the line starting `name`.
fn limit(pid: u32, name: &str) -> (String, String) {
    let text = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = text.lines().find(|l| l.starts_with(name)).unwrap_or_else(|| panic!("no {name} in {text}"));
    let mut values = line[name.len()..].split_whitespace();
    (values.next().unwrap().to_owned(), values.next().unwrap().to_owned())
}

#[test]
fn serve_is_not_dumpable_and_writes_no_core_file() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("hsm.sock");
    let mut child = Command::new(env!("CARGO_BIN_EXE_ecm-hsm"))
        .env("ECM_HSM_DIR", dir.path().join("tokens"))
        .env_remove("LISTEN_FDS")
        .env_remove("ECM_HSM_LOG")
        .args(["serve", "--socket"])
        .arg(&socket)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    // Its first lines say what it set, read back from the kernel (PR_GET_DUMPABLE).
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut said = String::new();
    while !said.contains("serving") {
        let mut line = String::new();
        if stderr.read_line(&mut line).unwrap() == 0 {
            break;
        }
        said.push_str(&line);
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while UnixStream::connect(&socket).is_err() {
        assert!(Instant::now() < deadline, "the service never listened: {said}");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(said.contains("not dumpable, core files off (RLIMIT_CORE 0)"), "{said}");
    // The kernel's account of the running service: no core file, soft and hard.
    assert_eq!(limit(pid, "Max core file size"), ("0".to_owned(), "0".to_owned()));
    // The service serves as before.
    let client = ecm_hsm::service::Client::new(ecm_hsm::service::Address::Unix(socket.clone()));
    assert_eq!(client.slot_list().unwrap(), vec![0]);
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn a_client_holding_all_its_sessions_stops_no_other_client() {
    let service = Service::start(Limits { max_sessions: 4, ..Limits::default() });
    let greedy = service.client();
    let h = token_with_user(&greedy);
    let mut held = vec![h];
    while held.len() < 4 {
        held.push(greedy.open_session(0, CKF_SERIAL_SESSION).unwrap());
    }
    // Over its limit: refused, and what it holds still works.
    assert_eq!(greedy.open_session(0, CKF_SERIAL_SESSION).unwrap_err(), Error::SessionCount);
    let mut random = [0u8; 8];
    greedy.generate_random(held[3], &mut random).unwrap();

    // Another client (another connection) has its own sessions and its own login.
    let other = service.client();
    let mut others = vec![];
    for _ in 0..4 {
        others.push(other.open_session(0, CKF_SERIAL_SESSION | CKF_RW_SESSION).unwrap());
    }
    other.login(others[0], CKU_USER, USER_PIN).unwrap();
    other.generate_random(others[3], &mut random).unwrap();
    assert_eq!(other.open_session(0, CKF_SERIAL_SESSION).unwrap_err(), Error::SessionCount);

    // The greedy client goes: its sessions go with its connection, not the other's.
    greedy.disconnect();
    service.wait_connections(1);
    other.generate_random(others[0], &mut random).unwrap();
    let again = service.client();
    let fresh = again.open_session(0, CKF_SERIAL_SESSION).unwrap();
    again.generate_random(fresh, &mut random).unwrap();
}
