//! Issue 14 item 4: the audit names the client. Every record a connection's core writes in
//! the key service carries the uid, gid and pid the kernel reported for the client process
//! (`SO_PEERCRED`), beside the principal; the trail still verifies under the token's audit
//! key, and a record claiming another client breaks it.

mod service_support;

use cryptoki_sys::*;
use ecm_hsm::audit;
use ecm_hsm::config::Config;
use ecm_hsm::mechanism::{Mechanism, MechanismParams};
use ecm_hsm::module::Module;
use ecm_hsm::server::Limits;
use serde_json::Value;
use service_support::*;

fn records(register: &std::path::Path) -> Vec<Value> {
    audit::trail_text(register).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[test]
fn every_record_made_through_the_service_names_the_client_process() {
    let (service, client, h) = serving_a_user(Limits::default());
    let keygen = Mechanism { kind: CKM_AES_KEY_GEN, params: MechanismParams::None };
    let template = [attr_ulong(CKA_VALUE_LEN, 32), attr_bool(CKA_ENCRYPT, true)];
    client.generate_key(h, &keygen, &template).unwrap();
    // A refused call is recorded too, and names the client as well.
    assert!(client.login(h, CKU_SO, b"wrong-pin").is_err());
    // The connection ends: its core closes its segment (recorded in the register).
    client.disconnect();
    service.wait_connections(0);

    let tokens = service.dir.join("tokens");
    let register = audit::path_for(&tokens, 0);
    let all = records(&register);
    let (uid, gid) = (rustix::process::getuid().as_raw(), rustix::process::getgid().as_raw());
    let pid = std::process::id();
    for op in ["init_token", "login", "generate", "login_so", "segment_open", "segment_close"] {
        assert!(all.iter().any(|r| r["operation"] == op), "no {op} record in {all:#?}");
    }
    for r in &all {
        // The register's own `audit_on` says a process began recording, for no client.
        if r["operation"] == "audit_on" {
            continue;
        }
        assert_eq!(r["client_uid"].as_u64(), Some(uid.into()), "{r}");
        assert_eq!(r["client_gid"].as_u64(), Some(gid.into()), "{r}");
        assert_eq!(r["client_pid"].as_u64(), Some(pid.into()), "{r}");
    }
    let generated = all.iter().find(|r| r["operation"] == "generate").unwrap();
    assert_eq!(generated["principal"], "user");

    // The CSV export has the columns.
    let mut csv = Vec::new();
    audit::export_trail(&register, &audit::Filter::default(), audit::Format::Csv, &mut csv).unwrap();
    let csv = String::from_utf8(csv).unwrap();
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let row = csv.lines().find(|l| l.contains(",generate,")).unwrap();
    let column = |name: &str| row.split(',').nth(header.iter().position(|h| *h == name).unwrap()).unwrap();
    assert_eq!(column("client_uid"), uid.to_string());
    assert_eq!(column("client_pid"), pid.to_string());

    // The trail verifies under the token's audit key (the fields are covered by the links).
    let config = Config::from_toml(
        tokens.clone(),
        "test_settings = true\npin_kdf_iterations = 1000\naudit = false",
        std::path::Path::new("test"),
    )
    .unwrap();
    let module = Module::new(config).unwrap();
    let s = module.open_session(0, CKF_SERIAL_SESSION).unwrap();
    module.login(s, CKU_USER, USER_PIN).unwrap();
    let key = module.audit_key(s).unwrap();
    let report = audit::verify_trail(&register, Some(&key), None).unwrap();
    assert!(report.problem.is_none(), "{:?}", report.problem);
    assert!(report.authenticated > 0);

    // Attack: a record rewritten to name another client (a uid that was not there) fails
    // verification, and the file otherwise stays as it was.
    let segments = audit::segment_dir(&register);
    let segment = std::fs::read_dir(&segments).unwrap().next().unwrap().unwrap().path();
    let text = std::fs::read_to_string(&segment).unwrap();
    let forged = text.replacen(&format!("\"client_uid\":{uid}"), &format!("\"client_uid\":{}", uid + 1), 1);
    assert_ne!(forged, text, "no client in {}", segment.display());
    std::fs::write(&segment, &forged).unwrap();
    let report = audit::verify_trail(&register, Some(&key), None).unwrap();
    assert!(report.problem.is_some(), "a forged client verified");
}
