//! `C_GetTokenInfo` and `C_GetSlotInfo` say where a token is and who can open its key
//! (issue 14): the model ends in `svc` for a token in service custody (its token key opens
//! with the service key alone), and the slot description names the key service when the
//! library is its client. An application can so tell a token its PIN guards from one its PIN
//! only logs in to.

#[macro_use]
mod common;
mod service_support;

use std::os::unix::net::UnixListener;
use std::path::Path;
use std::sync::Arc;

use common::*;
use ecm_hsm::config::Config;
use ecm_hsm::server::{Limits, Server};

/// A key service on a directory of its own, holding a service key when `with_key`; the
/// application's settings point at it.
fn service(with_key: bool) -> std::path::PathBuf {
    let root = fresh_dir("info-custody");
    let settings = "test_settings = true\npin_kdf_iterations = 1000\n";
    let mut config = Config::from_toml(root.join("tokens"), settings, Path::new("test")).unwrap();
    if with_key {
        let key = root.join("token-key");
        ecm_hsm::token::ServiceKey::create(&key).unwrap();
        config.service_key_file = Some(key);
    }
    let socket = root.join("s.sock");
    let server =
        Arc::new(Server::new(UnixListener::bind(&socket).unwrap(), config, Limits::default()).quiet());
    std::thread::spawn(move || server.run());
    write_test_config(&token_dir(), &format!("service = \"unix:{}\"\n", socket.display()));
    root
}

fn describe(p: &cryptoki::context::Pkcs11, slot: cryptoki::slot::Slot) -> (String, String) {
    let model = p.get_token_info(slot).unwrap().model().to_owned();
    let description = p.get_slot_info(slot).unwrap().slot_description().to_owned();
    (model, description)
}

isolated_test!(
    fn through_a_service_with_its_key_the_token_says_service_custody() {
        let _root = service(true);
        let p = load();
        let slot = first_slot(&p);
        // Not initialized yet: no custody to name.
        assert_eq!(describe(&p, slot), ("ecm-hsm TEST".into(), "ecm-hsm slot 0 via the key service".into()));
        p.init_token(slot, &cryptoki::types::AuthPin::new(SO_PIN.into()), LABEL).unwrap();
        assert_eq!(
            describe(&p, slot),
            ("ecm-hsm TEST svc".into(), "ecm-hsm slot 0 via the key service".into())
        );
    }
);

isolated_test!(
    fn through_a_service_without_a_key_the_token_is_in_pins_custody_and_says_so() {
        let _root = service(false);
        let (p, slot) = load_with_token();
        assert_eq!(describe(&p, slot), ("ecm-hsm TEST".into(), "ecm-hsm slot 0 via the key service".into()));
    }
);

isolated_test!(
    fn in_process_a_token_in_pins_custody_names_neither() {
        let (p, slot) = load_with_token();
        assert_eq!(describe(&p, slot), ("ecm-hsm TEST".into(), "ecm-hsm slot 0".into()));
    }
);
