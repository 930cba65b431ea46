//! The envelope key hierarchy through PKCS#11: keys made by `C_GenerateKey` with the vendor
//! attributes, the rules of each tier tried from every side, rotation, retirement, and the
//! values on disk wrapped by their parents.
mod common;
use common::objects::{count, imported_secret, tier, vendor};
use common::workers::{read_until_marked, worker_token};

use common::*;
use cryptoki::error::RvError;
use cryptoki::mechanism::Mechanism;
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;
use ecm_hsm::vendor::*;

fn ulong(v: cryptoki_sys::CK_ULONG) -> Vec<u8> {
    v.to_ne_bytes().to_vec()
}

fn tenant(name: &str) -> Attribute {
    vendor(CKA_ECM_TENANT, name.as_bytes().to_vec())
}

fn generate(s: &Session, template: &[Attribute]) -> cryptoki::error::Result<ObjectHandle> {
    s.generate_key(&Mechanism::AesKeyGen, template)
}

fn read(s: &Session, o: ObjectHandle, kind: cryptoki_sys::CK_ATTRIBUTE_TYPE) -> Vec<u8> {
    match &s.get_attributes(o, &[AttributeType::VendorDefined(kind)]).unwrap()[..] {
        [Attribute::VendorDefined((_, v))] => v.clone(),
        other => panic!("attribute {kind:#x}: {other:?}"),
    }
}

fn label(s: &Session, o: ObjectHandle) -> String {
    match &s.get_attributes(o, &[AttributeType::Label]).unwrap()[..] {
        [Attribute::Label(l)] => String::from_utf8(l.clone()).unwrap(),
        other => panic!("{other:?}"),
    }
}

/// The tenant's active DEKs: its current DEK is one plain search away.
fn active_deks(s: &Session, name: &str) -> Vec<ObjectHandle> {
    s.find_objects(&[tier(CKT_ECM_DEK), tenant(name), vendor(CKA_ECM_KEY_STATE, ulong(CKS_ECM_ACTIVE))])
        .unwrap()
}

fn gcm_seal(s: &Session, key: ObjectHandle, data: &[u8]) -> cryptoki::error::Result<Vec<u8>> {
    let mut iv = [3u8; 12];
    s.encrypt(&Mechanism::AesGcm(GcmParams::new(&mut iv, b"ctx", 128.into()).unwrap()), key, data)
}

fn gcm_open(s: &Session, key: ObjectHandle, data: &[u8]) -> cryptoki::error::Result<Vec<u8>> {
    let mut iv = [3u8; 12];
    s.decrypt(&Mechanism::AesGcm(GcmParams::new(&mut iv, b"ctx", 128.into()).unwrap()), key, data)
}

/// master-v1, kek-v1 and dek-acme-v1.
fn hierarchy(s: &Session) -> (ObjectHandle, ObjectHandle, ObjectHandle) {
    let master = generate(s, &[tier(CKT_ECM_MASTER)]).expect("master key");
    let kek = generate(s, &[tier(CKT_ECM_KEK)]).expect("KEK");
    let dek = generate(s, &[tier(CKT_ECM_DEK), tenant("acme")]).expect("DEK");
    (master, kek, dek)
}

isolated_test!(
    fn the_three_tiers_are_generated_with_their_names_versions_and_parents() {
        let (_p, _slot, s) = logged_in();
        let (master, kek, dek) = hierarchy(&s);
        assert_eq!(
            (label(&s, master), label(&s, kek), label(&s, dek)),
            ("master-v1".into(), "kek-v1".into(), "dek-acme-v1".into())
        );
        for o in [master, kek, dek] {
            assert_eq!(read(&s, o, CKA_ECM_KEY_VERSION), ulong(1));
            assert_eq!(read(&s, o, CKA_ECM_KEY_STATE), ulong(CKS_ECM_ACTIVE));
        }
        let uid = |o| match &s.get_attributes(o, &[AttributeType::UniqueId]).unwrap()[..] {
            [Attribute::UniqueId(u)] => u.clone(),
            other => panic!("{other:?}"),
        };
        assert_eq!(read(&s, kek, CKA_ECM_PARENT_ID), uid(master));
        assert_eq!(read(&s, dek, CKA_ECM_PARENT_ID), uid(kek));
        let created = u64::from_ne_bytes(read(&s, dek, CKA_ECM_CREATED_AT).try_into().unwrap());
        let due = u64::from_ne_bytes(read(&s, dek, CKA_ECM_NEXT_ROTATION).try_into().unwrap());
        assert_eq!(due - created, 30 * 86_400, "DEKs rotate monthly by default");
        // The current DEK of a tenant is one plain search away.
        let current = active_deks(&s, "acme");
        assert_eq!(current, vec![dek]);
        // The master key is sensitive and never extractable.
        let flags =
            s.get_attributes(master, &[AttributeType::Extractable, AttributeType::Sensitive]).unwrap();
        assert_eq!(flags, vec![Attribute::Extractable(false), Attribute::Sensitive(true)]);
    }
);

isolated_test!(
    fn each_tier_does_only_its_own_work() {
        let (_p, _slot, s) = logged_in();
        let (master, kek, dek) = hierarchy(&s);
        // Data: only the DEK, and only with AES-GCM.
        let sealed = gcm_seal(&s, dek, b"tenant record").unwrap();
        assert_eq!(gcm_open(&s, dek, &sealed).unwrap(), b"tenant record");
        assert_eq!(rv(gcm_seal(&s, master, b"x").unwrap_err()), RvError::KeyFunctionNotPermitted);
        assert_eq!(rv(gcm_seal(&s, kek, b"x").unwrap_err()), RvError::KeyFunctionNotPermitted);
        let cbc = s.encrypt(&Mechanism::AesCbcPad([0; 16]), dek, b"x");
        assert_eq!(rv(cbc.unwrap_err()), RvError::MechanismInvalid);
        // Wrapping: the master wraps KEKs, a KEK wraps DEKs, nothing else.
        let kw = Mechanism::AesKeyWrap;
        assert!(s.wrap_key(&kw, master, kek).is_ok());
        assert!(s.wrap_key(&kw, kek, dek).is_ok());
        assert_eq!(rv(s.wrap_key(&kw, master, dek).unwrap_err()), RvError::KeyFunctionNotPermitted);
        assert_eq!(rv(s.wrap_key(&kw, dek, kek).unwrap_err()), RvError::KeyFunctionNotPermitted);
        let outsider = imported_secret(&s, KeyType::AES, vec![9; 32]);
        // A DEK leaves only under a KEK, a KEK only under the master, the master never.
        assert_eq!(rv(s.wrap_key(&kw, outsider, dek).unwrap_err()), RvError::KeyUnextractable);
        assert_eq!(rv(s.wrap_key(&kw, outsider, kek).unwrap_err()), RvError::KeyUnextractable);
        assert_eq!(rv(s.wrap_key(&kw, kek, master).unwrap_err()), RvError::KeyFunctionNotPermitted);
        assert_eq!(rv(s.wrap_key(&kw, kek, outsider).unwrap_err()), RvError::KeyFunctionNotPermitted);
        // Nothing is unwrapped into the token by a key of the hierarchy.
        let blob = s.wrap_key(&kw, kek, dek).unwrap();
        let template = [Attribute::Class(ObjectClass::SECRET_KEY), Attribute::KeyType(KeyType::AES)];
        let before = count(&s);
        assert_eq!(
            rv(s.unwrap_key(&kw, kek, &blob, &template).unwrap_err()),
            RvError::KeyFunctionNotPermitted
        );
        assert_eq!(count(&s), before);
    }
);

isolated_test!(
    fn no_path_around_the_rules_changes_anything() {
        let (_p, _slot, s) = logged_in();
        let before = count(&s);
        // No KEK without a master, no DEK without a KEK or without a tenant.
        assert_eq!(rv(generate(&s, &[tier(CKT_ECM_KEK)]).unwrap_err()), RvError::TemplateInconsistent);
        let master = generate(&s, &[tier(CKT_ECM_MASTER)]).unwrap();
        assert_eq!(
            rv(generate(&s, &[tier(CKT_ECM_DEK), tenant("a")]).unwrap_err()),
            RvError::TemplateInconsistent
        );
        let kek = generate(&s, &[tier(CKT_ECM_KEK)]).unwrap();
        assert_eq!(rv(generate(&s, &[tier(CKT_ECM_DEK)]).unwrap_err()), RvError::TemplateIncomplete);
        let dek = generate(&s, &[tier(CKT_ECM_DEK), tenant("a")]).unwrap();
        let made = count(&s);
        assert_eq!(made, before + 3);
        // Templates that contradict a tier.
        for bad in [
            Attribute::Extractable(true),
            Attribute::Encrypt(true),
            Attribute::Sensitive(false),
            Attribute::Token(false),
            Attribute::Label(b"my-master".to_vec()),
        ] {
            let e = generate(&s, &[tier(CKT_ECM_MASTER), bad.clone()]).unwrap_err();
            assert_eq!(rv(e), RvError::TemplateInconsistent, "{bad:?}");
        }
        assert_eq!(
            rv(generate(&s, &[tier(CKT_ECM_DEK), tenant("a"), vendor(CKA_ECM_KEY_VERSION, ulong(7))])
                .unwrap_err()),
            RvError::AttributeReadOnly
        );
        // Keys of the hierarchy are only generated: not created, copied or unwrapped.
        let create = s.create_object(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::Value(vec![1; 32]),
            tier(CKT_ECM_DEK),
            tenant("a"),
        ]);
        assert_eq!(rv(create.unwrap_err()), RvError::TemplateInconsistent);
        assert_eq!(rv(s.copy_object(dek, &[]).unwrap_err()), RvError::ActionProhibited);
        // Nothing about them may be changed.
        for change in
            [Attribute::Label(b"x".to_vec()), Attribute::Extractable(false), Attribute::Encrypt(false)]
        {
            let e = s.update_attributes(dek, std::slice::from_ref(&change)).unwrap_err();
            assert_eq!(rv(e), RvError::AttributeReadOnly, "{change:?}");
        }
        assert_eq!(
            rv(s.update_attributes(master, &[Attribute::Extractable(true)]).unwrap_err()),
            RvError::AttributeReadOnly
        );
        assert_eq!(
            rv(s.update_attributes(kek, &[vendor(CKA_ECM_KEY_STATE, ulong(CKS_ECM_DECRYPT_ONLY))])
                .unwrap_err()),
            RvError::AttributeReadOnly
        );
        // The current versions cannot be destroyed.
        for o in [master, kek, dek] {
            assert_eq!(rv(s.destroy_object(o).unwrap_err()), RvError::ActionProhibited);
        }
        assert_eq!(count(&s), made, "no refusal changed anything");
        assert_eq!(label(&s, dek), "dek-a-v1");
        assert!(gcm_seal(&s, dek, b"still works").is_ok());
    }
);

isolated_test!(
    fn rotation_makes_new_versions_and_old_ones_decrypt_only_until_retired() {
        let (_p, _slot, s) = logged_in();
        let (master, kek1, dek1) = hierarchy(&s);
        let other_tenant = generate(&s, &[tier(CKT_ECM_DEK), tenant("globex")]).unwrap();
        let old_record = gcm_seal(&s, dek1, b"sealed in month one").unwrap();

        // A DEK rotation: a new version, the old one decrypt-only.
        let dek2 = generate(&s, &[tier(CKT_ECM_DEK), tenant("acme")]).unwrap();
        assert_eq!((label(&s, dek2), read(&s, dek2, CKA_ECM_KEY_VERSION)), ("dek-acme-v2".into(), ulong(2)));
        assert_eq!(read(&s, dek1, CKA_ECM_KEY_STATE), ulong(CKS_ECM_DECRYPT_ONLY));
        assert_ne!(read(&s, dek1, CKA_ECM_ROTATED_AT), ulong(0));
        assert_eq!(rv(gcm_seal(&s, dek1, b"x").unwrap_err()), RvError::KeyFunctionNotPermitted);
        assert_eq!(gcm_open(&s, dek1, &old_record).unwrap(), b"sealed in month one");
        assert_eq!(
            read(&s, other_tenant, CKA_ECM_KEY_STATE),
            ulong(CKS_ECM_ACTIVE),
            "other tenants untouched"
        );
        let current = active_deks(&s, "acme");
        assert_eq!(current, vec![dek2]);

        // A KEK rotation rewraps every DEK under the new KEK, so the old one can be retired.
        assert_eq!(rv(s.destroy_object(kek1).unwrap_err()), RvError::ActionProhibited);
        let kek2 = generate(&s, &[tier(CKT_ECM_KEK)]).unwrap();
        let kek2_uid = match &s.get_attributes(kek2, &[AttributeType::UniqueId]).unwrap()[..] {
            [Attribute::UniqueId(u)] => u.clone(),
            other => panic!("{other:?}"),
        };
        for d in [dek1, dek2, other_tenant] {
            assert_eq!(read(&s, d, CKA_ECM_PARENT_ID), kek2_uid);
        }
        assert_eq!(read(&s, kek1, CKA_ECM_KEY_STATE), ulong(CKS_ECM_DECRYPT_ONLY));
        s.destroy_object(kek1).expect("a superseded KEK without dependents retires");
        // The old DEK version retires too once nothing needs it; the current one does not.
        s.destroy_object(dek1).unwrap();
        assert_eq!(rv(s.destroy_object(dek2).unwrap_err()), RvError::ActionProhibited);
        // A master rotation takes the KEKs along; the old master retires.
        let master2 = generate(&s, &[tier(CKT_ECM_MASTER)]).unwrap();
        assert_eq!(label(&s, master2), "master-v2");
        s.destroy_object(master).unwrap();
        assert_eq!(
            gcm_open(&s, dek2, &gcm_seal(&s, dek2, b"after everything").unwrap()).unwrap(),
            b"after everything"
        );
    }
);

isolated_test!(
    fn the_hierarchy_survives_a_restart_and_a_dek_is_nothing_without_its_kek() {
        let (p, slot) = load_with_token();
        let record = {
            let s = user_session(&p, slot);
            let (_, _, dek) = hierarchy(&s);
            gcm_seal(&s, dek, b"kept across processes").unwrap()
        };
        p.finalize().unwrap();
        let p = load();
        let slot = first_slot(&p);
        {
            let s = user_session(&p, slot);
            let dek = s.find_objects(&[tier(CKT_ECM_DEK)]).unwrap()[0];
            assert_eq!(gcm_open(&s, dek, &record).unwrap(), b"kept across processes");
        }
        p.finalize().unwrap();
        // Point the DEK at a parent that does not exist: its stored value cannot be opened,
        // so the key is gone from view rather than wrong.
        {
            let conn = rusqlite::Connection::open(token_dir().join("token-0.sqlite")).unwrap();
            let n = conn
                .execute(
                    "UPDATE attributes SET value = X'00' WHERE kind = ?1 AND object_id IN
                       (SELECT object_id FROM attributes WHERE kind = ?2 AND value = ?3)",
                    rusqlite::params![CKA_ECM_PARENT_ID as i64, CKA_ECM_TIER as i64, ulong(CKT_ECM_DEK)],
                )
                .unwrap();
            assert_eq!(n, 1);
        }
        let p = load();
        let s = user_session(&p, first_slot(&p));
        assert!(s.find_objects(&[tier(CKT_ECM_DEK)]).unwrap().is_empty());
        assert_eq!(s.find_objects(&[tier(CKT_ECM_KEK)]).unwrap().len(), 1);
        let _ = s.login(UserType::User, Some(&AuthPin::new(USER_PIN.into())));
    }
);

// ---------------------------------------------------------------------------------------------
// A process killed in the middle of KEK rotations leaves a whole, consistent hierarchy.
// ---------------------------------------------------------------------------------------------

const KILL_TEST: &str = "a_kill_during_kek_rotation_leaves_the_old_or_the_new_hierarchy_whole";
const ROLE_ENV: &str = "ECM_HIERARCHY_ROLE";
const TENANTS: usize = 300;

fn record_for(t: usize) -> Vec<u8> {
    format!("record of tenant {t}").into_bytes()
}

/// Setup worker: a hierarchy with `TENANTS` tenants, one sealed record each (kept in the
/// token directory, as an application would keep its data).
fn setup_worker() {
    let (_p, _slot, s) = logged_in();
    generate(&s, &[tier(CKT_ECM_MASTER)]).unwrap();
    generate(&s, &[tier(CKT_ECM_KEK)]).unwrap();
    let mut records = Vec::new();
    for t in 0..TENANTS {
        let dek = generate(&s, &[tier(CKT_ECM_DEK), tenant(&format!("t{t}"))]).unwrap();
        let sealed = gcm_seal(&s, dek, &record_for(t)).unwrap();
        records.push(format!("t{t} {}", sealed.iter().map(|b| format!("{b:02x}")).collect::<String>()));
    }
    std::fs::write(token_dir().join("records.txt"), records.join("\n")).unwrap();
}

/// Rotator worker: rotates the KEK again and again, announcing each committed rotation.
fn rotator_worker() {
    use std::io::Write;
    let p = load();
    let s = user_session(&p, first_slot(&p));
    for n in 1.. {
        generate(&s, &[tier(CKT_ECM_KEK)]).unwrap();
        println!("> ROTATED {n}");
        std::io::stdout().flush().unwrap();
    }
}

/// Verify worker: one active KEK, every DEK under it, every record still opens.
fn verify_worker() {
    let p = load();
    let s = user_session(&p, first_slot(&p));
    let keks = s.find_objects(&[tier(CKT_ECM_KEK)]).unwrap();
    let active: Vec<_> =
        keks.iter().copied().filter(|k| read(&s, *k, CKA_ECM_KEY_STATE) == ulong(CKS_ECM_ACTIVE)).collect();
    assert_eq!(active.len(), 1, "exactly one current KEK among {} versions", keks.len());
    let active_uid = match &s.get_attributes(active[0], &[AttributeType::UniqueId]).unwrap()[..] {
        [Attribute::UniqueId(u)] => u.clone(),
        other => panic!("{other:?}"),
    };
    let mut versions: Vec<u64> = keks
        .iter()
        .map(|k| u64::from_ne_bytes(read(&s, *k, CKA_ECM_KEY_VERSION).try_into().unwrap()))
        .collect();
    versions.sort_unstable();
    assert_eq!(versions, (1..=keks.len() as u64).collect::<Vec<_>>(), "versions without gaps");
    let records = std::fs::read_to_string(token_dir().join("records.txt")).unwrap();
    for line in records.lines() {
        let (name, hex) = line.split_once(' ').unwrap();
        let sealed: Vec<u8> =
            (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect();
        let dek = s.find_objects(&[tier(CKT_ECM_DEK), tenant(name)]).unwrap();
        assert_eq!(dek.len(), 1, "tenant {name}");
        assert_eq!(
            read(&s, dek[0], CKA_ECM_PARENT_ID),
            active_uid,
            "tenant {name}'s DEK is under the current KEK"
        );
        let t: usize = name[1..].parse().unwrap();
        assert_eq!(gcm_open(&s, dek[0], &sealed).unwrap(), record_for(t), "tenant {name}'s record opens");
    }
    println!("> KEK VERSIONS {}", keks.len());
}

#[test]
fn a_kill_during_kek_rotation_leaves_the_old_or_the_new_hierarchy_whole() {
    use std::os::unix::process::ExitStatusExt;
    if let Ok(role) = std::env::var(ROLE_ENV) {
        match role.as_str() {
            "setup" => setup_worker(),
            "rotator" => rotator_worker(),
            "verify" => verify_worker(),
            other => panic!("unknown role {other}"),
        }
        return;
    }
    let (dir, worker) = worker_token(KILL_TEST, "kill-rotation", ROLE_ENV);
    let mut committed = 0;
    for round in 0..3 {
        let mut child = worker("rotator").spawn().unwrap();
        let seen = read_until_marked(&mut child, "> ROTATED", 2 + round);
        // Let the next rotation get under way, then kill the process in the middle of it.
        std::thread::sleep(std::time::Duration::from_millis(3 + 7 * round as u64));
        child.kill().unwrap();
        let status = child.wait().unwrap();
        assert_eq!(status.signal(), Some(9), "the rotator dies by SIGKILL");
        committed += seen;
    }
    let verify = worker("verify").output().unwrap();
    let out = String::from_utf8_lossy(&verify.stdout);
    assert!(verify.status.success(), "verify:\n{out}\n{}", String::from_utf8_lossy(&verify.stderr));
    let versions: usize = out
        .lines()
        .find_map(|l| l.split("> KEK VERSIONS ").nth(1))
        .unwrap_or_else(|| {
            panic!(
                "the verifier reports the KEK versions:\n{out}\n{}",
                String::from_utf8_lossy(&verify.stderr)
            )
        })
        .trim()
        .parse()
        .unwrap();
    // Every acknowledged rotation is there; a rotation in flight at a kill is all or nothing.
    assert!(
        versions > committed && versions <= committed + 1 + 3,
        "{versions} versions after {committed} rotations"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

isolated_test!(
    /// Issue 13, item 8: a tenant named `acme-eu` would have DEKs `dek-acme-eu-vN`, covered by
    /// a policy rule on `dek-acme-*` meant for tenant acme. The tenant grammar has no `-`: such
    /// a tenant is refused, through the C ABI as through the admin tool, and nothing is made.
    fn a_tenant_name_that_would_fall_under_another_tenants_patterns_is_refused() {
        let (_p, _slot, s) = logged_in();
        let (_, _, dek) = hierarchy(&s);
        let before = count(&s);
        for bad in ["acme-eu", "acme-", "-acme", "", "acme eu", "acme*", "a.b", &"x".repeat(65)] {
            let refused = generate(&s, &[tier(CKT_ECM_DEK), tenant(bad)]).unwrap_err();
            assert_eq!(rv(refused), RvError::AttributeValueInvalid, "{bad:?}");
        }
        assert_eq!(count(&s), before);
        // The grammar's own names still work, and each tenant's DEKs are told apart by label.
        let eu = generate(&s, &[tier(CKT_ECM_DEK), tenant("acme_eu")]).expect("acme_eu");
        assert_eq!(label(&s, eu), "dek-acme_eu-v1");
        let rule = ecm_hsm::policy::document::glob(b"dek-acme-*", label(&s, eu).as_bytes());
        assert!(!rule && ecm_hsm::policy::document::glob(b"dek-acme-*", label(&s, dek).as_bytes()));
        generate(&s, &[tier(CKT_ECM_DEK), tenant(&"x".repeat(64))]).expect("64 characters");
    }
);
