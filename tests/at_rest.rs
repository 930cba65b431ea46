//! What the token files hold: no secret readable without a PIN, and damaged or foreign files
//! are refused without being changed.
mod common;

use common::*;
use cryptoki::error::RvError;
use cryptoki::object::{Attribute, KeyType, ObjectClass};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;

isolated_test!(
    fn no_key_value_private_data_or_pin_is_stored_in_clear() {
        let key_value: Vec<u8> = (0..32u8).map(|i| i.wrapping_mul(37).wrapping_add(11)).collect();
        let secret_data = b"private data value 0123456789".to_vec();
        let public_data = b"public data value 9876543210".to_vec();
        let (p, slot) = load_with_token();
        {
            let s = user_session(&p, slot);
            s.create_object(&[
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::KeyType(KeyType::AES),
                Attribute::Token(true),
                Attribute::Extractable(true),
                Attribute::Sensitive(false),
                Attribute::Value(key_value.clone()),
            ])
            .unwrap();
            for (private, value) in [(true, &secret_data), (false, &public_data)] {
                s.create_object(&[
                    Attribute::Class(ObjectClass::DATA),
                    Attribute::Token(true),
                    Attribute::Private(private),
                    Attribute::Value(value.clone()),
                ])
                .unwrap();
            }
        }
        let check = |stage: &str| {
            let bytes = all_file_bytes();
            assert!(!contains(&bytes, &key_value), "{stage}: key value in clear");
            assert!(!contains(&bytes, &secret_data), "{stage}: private data in clear");
            assert!(!contains(&bytes, USER_PIN.as_bytes()), "{stage}: user PIN in clear");
            assert!(!contains(&bytes, SO_PIN.as_bytes()), "{stage}: SO PIN in clear");
            // Public data is not secret: it is stored as is, which proves the search above
            // looks in the right place.
            assert!(contains(&bytes, &public_data), "{stage}: public data not found");
        };
        // While the module still runs (WAL not yet checkpointed) and after it finalizes.
        check("running");
        p.finalize().unwrap();
        check("finalized");
    }
);

isolated_test!(
    fn a_file_that_is_not_a_token_is_shown_but_refused_and_left_untouched() {
        let garbage = b"this is not an SQLite database, just some bytes that happen to be here".repeat(20);
        let path = token_dir().join("token-1.sqlite");
        std::fs::write(&path, &garbage).unwrap();

        let (p, slot0) = load_with_token();
        let slots = p.get_all_slots().unwrap();
        assert_eq!(slots.len(), 3, "token 0, the unreadable token 1 and the free slot 2");
        let slot1 = Slot::try_from(1u64).unwrap();
        assert_eq!(rv(p.get_token_info(slot1).unwrap_err()), RvError::TokenNotRecognized);
        assert_eq!(rv(p.open_ro_session(slot1).unwrap_err()), RvError::TokenNotRecognized);
        assert_eq!(
            rv(p.init_token(slot1, &AuthPin::new(SO_PIN.into()), "overwrite").unwrap_err()),
            RvError::TokenNotRecognized
        );
        // The good token is unaffected.
        let s = user_session(&p, slot0);
        s.generate_random_vec(8).unwrap();
        drop(s);
        p.finalize().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), garbage, "the file is never changed");
    }
);

isolated_test!(
    fn a_token_from_a_newer_schema_is_refused_and_left_untouched() {
        let (p, slot) = load_with_token();
        drop(user_session(&p, slot));
        p.finalize().unwrap();
        let path = token_dir().join("token-0.sqlite");
        {
            let conn = rusqlite::Connection::open(&path).unwrap();
            conn.pragma_update(None, "user_version", 1000).unwrap();
        }
        let before = std::fs::read(&path).unwrap();
        let p = load();
        let slot = first_slot(&p);
        assert_eq!(rv(p.get_token_info(slot).unwrap_err()), RvError::TokenNotRecognized);
        assert_eq!(rv(p.open_rw_session(slot).unwrap_err()), RvError::TokenNotRecognized);
        p.finalize().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), before);
    }
);

isolated_test!(
    fn a_tampered_sealed_value_makes_its_object_unusable_not_wrong() {
        let (p, slot) = load_with_token();
        let label = "tampered";
        {
            let s = user_session(&p, slot);
            for l in [label, "intact"] {
                s.create_object(&[
                    Attribute::Class(ObjectClass::SECRET_KEY),
                    Attribute::KeyType(KeyType::AES),
                    Attribute::Token(true),
                    Attribute::Label(l.into()),
                    Attribute::Value(vec![5; 32]),
                ])
                .unwrap();
            }
        }
        p.finalize().unwrap();
        {
            let conn = rusqlite::Connection::open(token_dir().join("token-0.sqlite")).unwrap();
            let changed = conn
                .execute(
                    "UPDATE attributes SET value = zeroblob(length(value)) WHERE sealed = 1 AND object_id =
                   (SELECT object_id FROM attributes WHERE kind = ?1 AND value = ?2)",
                    rusqlite::params![cryptoki_sys::CKA_LABEL as i64, label.as_bytes()],
                )
                .unwrap();
            assert_eq!(changed, 1);
        }
        let p = load();
        let s = user_session(&p, first_slot(&p));
        assert!(s.find_objects(&[Attribute::Label(label.into())]).unwrap().is_empty());
        assert_eq!(s.find_objects(&[Attribute::Label("intact".into())]).unwrap().len(), 1);
    }
);
