//! The key service against clients that misbehave: garbage, oversized frames, another
//! protocol version, a client that dies mid-call or holds too much; and the peer's
//! credentials as the kernel reports them. Each checks the attack fails and the service
//! keeps serving the others.

mod service_support;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;

use cryptoki_sys::*;
use ecm_hsm::Error;
use ecm_hsm::server::Limits;
use ecm_hsm::service::protocol::*;
use ecm_hsm::service::transport::Framed;
use service_support::*;

fn raw(service: &Service) -> Framed<UnixStream> {
    Framed::new(UnixStream::connect(&service.socket).unwrap(), 1 << 20, None)
}

fn hello(framed: &mut Framed<UnixStream>) {
    framed.send(&Hello { magic: MAGIC, versions: VERSIONS.to_vec() }).unwrap();
    assert!(
        matches!(framed.receive::<HelloReply>().unwrap(), Some(HelloReply::Accepted { version, .. }) if Some(&version) == VERSIONS.last())
    );
}

/// Reads until the server closes the connection; fails the test if it answers anything.
fn closed_by_server(stream: &mut UnixStream) {
    let mut rest = Vec::new();
    let _ = stream.read_to_end(&mut rest);
    assert!(rest.is_empty(), "the server answered {} bytes", rest.len());
}

/// A client that does everything right, to show the service still serves.
fn still_serves(service: &Service) {
    let client = service.client();
    let h = client.open_session(0, CKF_SERIAL_SESSION).unwrap();
    let mut random = [0u8; 16];
    client.generate_random(h, &mut random).unwrap();
    client.close_session(h).unwrap();
}

#[test]
fn the_peer_is_the_kernels_account_of_the_test_process() {
    let service = Service::start(Limits::default());
    let peer = service.client().peer().unwrap();
    assert_eq!(peer.uid, rustix::process::getuid().as_raw());
    assert_eq!(peer.gid, rustix::process::getgid().as_raw());
    assert_eq!(peer.pid, std::process::id() as i32);
}

#[test]
fn another_version_is_refused_cleanly() {
    let service = Service::start(Limits::default());
    token_with_user(&service.client());
    // Version 1, whose ML-DSA parameter had another encoding, and version 2, which lacks the
    // calls of the verification with the signature first, are refused like any other.
    for versions in [vec![99], vec![1], vec![2], vec![1, 2]] {
        let mut framed = raw(&service);
        framed.send(&Hello { magic: MAGIC, versions }).unwrap();
        assert_eq!(framed.receive::<HelloReply>().unwrap(), Some(HelloReply::Refused { supported: vec![3] }));
        assert_eq!(framed.receive::<HelloReply>().unwrap(), None, "closed after the refusal");
    }
    // Another protocol altogether: no answer at all.
    let mut framed = raw(&service);
    framed.send(&Hello { magic: *b"GET / HT", versions: VERSIONS.to_vec() }).unwrap();
    assert_eq!(framed.receive::<HelloReply>().unwrap(), None);
    service.wait_connections(0);
    still_serves(&service);
}

#[test]
fn garbage_closes_only_its_own_connection() {
    let (service, client, h) = serving_a_user(Limits::default());
    service.wait_connections(1);

    // Garbage instead of a hello.
    let mut stream = UnixStream::connect(&service.socket).unwrap();
    stream.write_all(&[0, 0, 0, 5, 0xff, 0xfe, 0xfd, 0xfc, 0xfb]).unwrap();
    closed_by_server(&mut stream);

    // A good hello, then a frame that is no request.
    let mut framed = raw(&service);
    hello(&mut framed);
    framed.send(&vec![0xffu8; 40]).unwrap();
    assert!(framed.receive::<Response>().unwrap().is_none());

    // A request of more calls than allowed.
    let mut framed = raw(&service);
    hello(&mut framed);
    framed.send(&Request { id: 1, calls: vec![Call::SlotList; 1000] }).unwrap();
    assert!(framed.receive::<Response>().unwrap().is_none());

    service.wait_connections(1);
    // The well-behaved client's session is untouched.
    let mut random = [0u8; 8];
    client.generate_random(h, &mut random).unwrap();
    still_serves(&service);
}

#[test]
fn an_oversized_frame_is_refused_from_its_length_alone() {
    let limits = Limits { max_frame: 64 * 1024, ..Limits::default() };
    let service = Service::start(limits);
    token_with_user(&service.client());
    let mut framed = raw(&service);
    hello(&mut framed);
    drop(framed);
    // Announces 2 GiB and sends nothing more: refused without waiting for the body.
    let mut stream = UnixStream::connect(&service.socket).unwrap();
    stream.write_all(&0x7fff_ffffu32.to_be_bytes()).unwrap();
    closed_by_server(&mut stream);

    // A well-behaved client asked for more than a frame holds is refused locally, and
    // keeps its connection and sessions.
    let client = service.client();
    let h = client.open_session(0, CKF_SERIAL_SESSION).unwrap();
    client
        .operation_init(
            h,
            ecm_hsm::module::OperationKind::Digest,
            Some(&ecm_hsm::mechanism::Mechanism {
                kind: CKM_SHA256,
                params: ecm_hsm::mechanism::MechanismParams::None,
            }),
            CK_INVALID_HANDLE,
        )
        .unwrap();
    let big = vec![7u8; 100 * 1024];
    assert_eq!(
        client
            .digest(h, ecm_hsm::module::Step::Update(&big), ecm_hsm::session::OutputBuffer::Query)
            .unwrap_err(),
        Error::DataLenRange
    );
    let mut random = vec![0u8; 100 * 1024];
    assert_eq!(client.generate_random(h, &mut random).unwrap_err(), Error::ArgumentsBad);
    client.generate_random(h, &mut random[..1024]).unwrap();
    client.close_session(h).unwrap();
}

#[test]
fn a_client_that_dies_mid_call_loses_its_sessions_and_no_one_else_waits() {
    let service = Service::start(Limits::default());
    let other = service.client();
    let token = token_with_user(&other);

    // The doomed client logs in and holds a session, then dies in the middle of a frame.
    let mut framed = raw(&service);
    hello(&mut framed);
    framed
        .send(&Request { id: 1, calls: vec![Call::OpenSession { slot: 0, flags: CKF_SERIAL_SESSION }] })
        .unwrap();
    let opened = framed.receive::<Response>().unwrap().unwrap();
    let Ok(Answer::Handle(session)) = opened.replies[0].clone() else { panic!("{opened:?}") };
    let login = Call::Login { session, user_type: CKU_USER, pin: Secret(USER_PIN.to_vec()) };
    framed.send(&Request { id: 2, calls: vec![login] }).unwrap();
    assert_eq!(framed.receive::<Response>().unwrap().unwrap().replies, vec![Ok(Answer::Done)]);
    service.wait_connections(2);
    let mut stream = UnixStream::connect(&service.socket).unwrap();
    // Half a frame, while the other client works on.
    stream.write_all(&[0, 0, 1, 0, 1, 2, 3]).unwrap();
    service.wait_connections(3);
    let mut random = [0u8; 8];
    other.generate_random(token, &mut random).unwrap();
    drop(stream);
    drop(framed);
    // Both connections end, and with them the doomed client's module, session and login.
    service.wait_connections(1);
    other.generate_random(token, &mut random).unwrap();
    // The other client's login was its own: still logged in.
    assert_eq!(other.login(token, CKU_USER, USER_PIN).unwrap_err(), Error::UserAlreadyLoggedIn);
}

#[test]
fn a_lost_connection_invalidates_its_handles_and_the_client_connects_again() {
    let limits = Limits { max_calls: 4, ..Limits::default() };
    let service = Service::start(limits);
    token_with_user(&service.client());
    let client = service.client();
    let h = client.open_session(0, CKF_SERIAL_SESSION).unwrap();
    // More calls than the server takes: it drops the connection mid-request.
    let dropped = client.request(|c| Ok(vec![Call::SessionCancel { session: c.session(h)?, flags: 0 }; 5]));
    assert_eq!(dropped.unwrap_err(), Error::DeviceRemoved);
    assert_eq!(client.close_session(h).unwrap_err(), Error::SessionHandleInvalid);
    // The next call connects again; the new connection's first session has the same number
    // in the service, never the same handle for the application.
    let again = client.open_session(0, CKF_SERIAL_SESSION).unwrap();
    assert_ne!(again, h);
    assert_eq!(again & 0xffff_ffff, h & 0xffff_ffff);
    assert_eq!(client.close_session(h).unwrap_err(), Error::SessionHandleInvalid);
    client.close_session(again).unwrap();
}

#[test]
fn connections_beyond_the_limit_are_closed_at_once() {
    let limits = Limits { max_connections: 1, ..Limits::default() };
    let (service, client, h) = serving_a_user(limits);
    service.wait_connections(1);
    let mut stream = UnixStream::connect(&service.socket).unwrap();
    closed_by_server(&mut stream);
    client.close_session(h).unwrap();
}

#[test]
fn a_silent_or_stalled_client_is_let_go() {
    let limits =
        Limits { mid_frame_timeout: Some(std::time::Duration::from_millis(200)), ..Limits::default() };
    let service = Service::start(limits);
    // Connects and never says hello.
    let mut silent = UnixStream::connect(&service.socket).unwrap();
    closed_by_server(&mut silent);
    // Says hello, then stops inside a frame.
    let mut framed = raw(&service);
    hello(&mut framed);
    let mut stalled = UnixStream::connect(&service.socket).unwrap();
    let mut stalled_framed = Framed::new(stalled.try_clone().unwrap(), 1 << 20, None);
    hello(&mut stalled_framed);
    stalled.write_all(&[0, 0, 0, 9, 1]).unwrap();
    closed_by_server(&mut stalled);
    // Idle between frames is no stall: the first connection is still served.
    framed.send(&Request { id: 1, calls: vec![Call::SlotList] }).unwrap();
    assert!(matches!(framed.receive::<Response>().unwrap().unwrap().replies[0], Ok(Answer::Slots(_))));
}
