//! Issue 14 items 6 and 9: the admin tool works against the key service (`--service ADDR` or
//! `ECM_HSM_SERVICE`), `status` says which mode it is in, and the commands that read the
//! token's files themselves run in-process on the token directory, saying so.
mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::cli::{BIN, with_pins};
use common::served::Served;
use common::{USER_PIN, fresh_dir, write_test_config};
use ecm_hsm::audit;

/// `ecm-hsm serve` on a token directory of its own (test settings), and a client directory
/// that holds no token: what the client does can only have happened in the service.
fn start_service() -> Served {
    let dir = fresh_dir("cli-svc");
    let tokens = dir.join("tokens");
    std::fs::create_dir_all(&tokens).unwrap();
    std::fs::set_permissions(&tokens, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    write_test_config(&tokens, "");
    std::fs::create_dir_all(dir.join("client")).unwrap();
    let socket = dir.join("s.sock");
    Served::start(dir, socket, &[])
}

/// The tool as a client of `served`: its own (empty) token directory, every PIN in the
/// environment.
fn client(served: &Served, args: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.arg("--service")
        .arg(served.address())
        .args(args)
        .env("ECM_HSM_DIR", served.dir.join("client"))
        .env_remove("ECM_HSM_CONF")
        .env_remove("ECM_HSM_SERVICE");
    with_pins(&mut c, USER_PIN, USER_PIN);
    c
}

fn run(mut command: Command, input: &[u8]) -> Output {
    let mut child =
        command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

fn ok(command: Command, input: &[u8]) -> String {
    let shown = format!("{command:?}");
    let out = run(command, input);
    assert!(out.status.success(), "{shown} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn no_token_in(dir: &Path) {
    let files: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(files.is_empty(), "the client made files of its own: {files:?}");
}

#[test]
fn the_admin_tool_works_through_the_service() {
    let served = start_service();
    ok(client(&served, &["init", "--label", "svc-cli"]), b"");
    ok(client(&served, &["hierarchy", "init"]), b"");
    ok(client(&served, &["tenant", "add", "acme"]), b"");

    let status = ok(client(&served, &["status"]), b"");
    assert!(status.contains(&format!("mode: through service {}", served.address())), "{status}");
    assert!(status.contains("dek-acme-v1"), "{status}");
    let json: serde_json::Value =
        serde_json::from_str(&ok(client(&served, &["status", "--json"]), b"")).unwrap();
    assert_eq!(json["mode"], format!("through service {}", served.address()));

    // ECM_HSM_SERVICE does what --service does.
    let env_client = |args: &[&str]| {
        let mut c = client(&served, args);
        // Drop `--service ADDR` and name the service in the environment instead.
        let mut plain = Command::new(BIN);
        plain.args(c.get_args().skip(2));
        for (k, v) in c.get_envs() {
            match v {
                Some(v) => plain.env(k, v),
                None => plain.env_remove(k),
            };
        }
        plain.env("ECM_HSM_SERVICE", served.address());
        c = plain;
        c
    };
    let sealed = run(env_client(&["envelope", "encrypt", "--tenant", "acme"]), b"tenant data");
    assert!(sealed.status.success(), "{}", String::from_utf8_lossy(&sealed.stderr));
    let opened = ok(env_client(&["envelope", "decrypt", "--tenant", "acme"]), &sealed.stdout);
    assert_eq!(opened, "tenant data");
    ok(client(&served, &["rotate", "dek", "--tenant", "acme"]), b"");
    let status = ok(client(&served, &["status"]), b"");
    assert!(status.contains("dek-acme-v2"), "{status}");

    // A wrong PIN is refused by the service, as in-process.
    let mut wrong = client(&served, &["status"]);
    wrong.env("ECM_HSM_PIN", "not-the-pin");
    let refused = run(wrong, b"");
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("refused the user PIN"));

    // Everything happened in the service: the client's directory holds nothing.
    no_token_in(&served.dir.join("client"));

    // The commands that read the token's files run in-process on the token directory, and
    // say so: here the client's own, which holds no token.
    for args in [&["audit", "verify"][..], &["audit", "export"][..]] {
        let out = run(client(&served, args), b"");
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("runs in-process on") && stderr.contains("not through the key service"),
            "{stderr}"
        );
        assert!(stderr.contains("no initialized token"), "{args:?}: {stderr}");
    }
    no_token_in(&served.dir.join("client"));
    // On the service's host and directory (as pkcs11-tests/service.sh runs them), they work.
    for args in [&["audit", "verify"][..], &["audit", "export", "--format", "csv"][..]] {
        let mut c = client(&served, args);
        c.env("ECM_HSM_DIR", served.tokens());
        let out = run(c, b"");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{args:?}: {stderr}");
        assert!(stderr.contains("runs in-process on"), "{stderr}");
        if args[1] == "export" {
            assert!(String::from_utf8_lossy(&out.stdout).contains(",rotate,"));
        }
    }

    // The service's trail names the tool's processes (not this test process) as clients.
    let register = audit::path_for(&served.tokens(), 0);
    let text = audit::trail_text(&register).unwrap();
    let rotated: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|r| r["operation"] == "rotate" && r["key_label"] == "dek-acme-v2")
        .collect();
    assert_eq!(rotated.len(), 1, "{text}");
    let uid = rustix::process::getuid().as_raw();
    assert_eq!(rotated[0]["client_uid"].as_u64(), Some(uid.into()));
    let pid = rotated[0]["client_pid"].as_u64().unwrap();
    assert!(pid != 0 && pid != u64::from(std::process::id()), "{}", rotated[0]);

    // In-process on the service's own directory, the tool says so.
    let mut local = Command::new(BIN);
    local
        .arg("status")
        .env("ECM_HSM_DIR", served.tokens())
        .env_remove("ECM_HSM_CONF")
        .env_remove("ECM_HSM_SERVICE")
        .env("ECM_HSM_PIN", USER_PIN);
    let status = ok(local, b"");
    assert!(status.contains("mode: in-process"), "{status}");
}

#[test]
fn serve_refuses_to_be_a_client() {
    let mut serve = Command::new(BIN);
    serve.args(["--service", "unix:/nonexistent.sock", "serve"]);
    let out = run(serve, b"");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("makes the tool a client"));
}
