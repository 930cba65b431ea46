//! Memory hygiene (issue 13 item 14): the admin tool makes itself not dumpable
//! (`PR_SET_DUMPABLE` 0) before it reads a PIN or opens a key, and a principal's login opens
//! only the keys its policy lets it use — the attack, reading the process's memory after
//! such a login, finds no other key's value; and the values a login opens, with the token key,
//! live only in locked memory excluded from core dumps (`sys::secret_pool`), checked from
//! `/proc/self/smaps` without a core dump.
#![allow(unsafe_code)]

mod common;

use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::process::{Command, Stdio};

use common::raw::*;
use common::*;
use cryptoki_sys::*;

const BIN: &str = env!("CARGO_BIN_EXE_ecm-hsm");
const ROLE: &str = "ECM_HSM_MEMORY_TEST_ROLE";
const PRINCIPAL: &str = "ctx";
const PRINCIPAL_PIN: &str = "ctx-pin-1";
const POLICY: &str = r#"{"key_permissions": {"ctx": {"keys": ["dek-*"], "operations": ["decrypt"]}}}"#;

/// Byte `i` of the 32-byte key value of `seed`, computed where it is compared, so that the
/// test process itself never holds the value whole.
fn key_byte(seed: u32, i: usize) -> u8 {
    let x = (seed as u64 ^ 0x9e37_79b9)
        .wrapping_mul(6364136223846793005)
        .wrapping_add((i as u64).wrapping_mul(1442695040888963407));
    (x >> 29) as u8 ^ (x >> 51) as u8
}

const VISIBLE: u32 = 0x51;
const HIDDEN: u32 = 0xa7;

/// Where the value of `seed` occurs in this process's readable memory: each address, with
/// the `VmFlags` of the mapping that holds it.
fn occurrences_at(seed: u32) -> Vec<(u64, Vec<String>)> {
    let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
    let mem = std::fs::File::open("/proc/self/mem").unwrap();
    let first = key_byte(seed, 0);
    let mut found = Vec::new();
    let mut mappings: Vec<(u64, u64, bool)> = Vec::new();
    let mut flags_of: Vec<Vec<String>> = Vec::new();
    for line in smaps.lines() {
        if let Some(flags) = line.strip_prefix("VmFlags:") {
            flags_of.push(flags.split_whitespace().map(str::to_owned).collect());
            continue;
        }
        let mut fields = line.split_whitespace();
        let (Some(range), Some(perms)) = (fields.next(), fields.next()) else { continue };
        let Some((start, end)) = range.split_once('-') else { continue };
        let (Ok(start), Ok(end)) = (u64::from_str_radix(start, 16), u64::from_str_radix(end, 16)) else {
            continue;
        };
        let readable = perms.starts_with('r') && !line.ends_with("[vvar]") && !line.ends_with("[vsyscall]");
        mappings.push((start, end, readable));
    }
    assert_eq!(mappings.len(), flags_of.len(), "one VmFlags line per mapping");
    for ((start, end, readable), flags) in mappings.into_iter().zip(flags_of) {
        if !readable {
            continue;
        }
        let mut region = vec![0u8; (end - start) as usize];
        if mem.read_exact_at(&mut region, start).is_err() {
            continue;
        }
        let candidates = region.iter().enumerate().filter(|(_, b)| **b == first).map(|(at, _)| at);
        for at in candidates {
            if region.len() - at >= 32 && (1..32).all(|i| region[at + i] == key_byte(seed, i)) {
                found.push((start + at as u64, flags.clone()));
            }
        }
    }
    found
}

/// How many times the value of `seed` occurs in this process's readable memory.
fn occurrences(seed: u32) -> usize {
    occurrences_at(seed).len()
}

/// A number field of `/proc/self/status` or `/proc/self/limits` (`None`: unlimited).
fn field(text: &str, name: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with(name))?;
    line[name.len()..].split_whitespace().next()?.parse().ok()
}

/// Whether `RLIMIT_MEMLOCK` lets this process lock a page (else locking is only attempted).
fn may_lock() -> bool {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap();
    field(&limits, "Max locked memory").is_none_or(|bytes| bytes >= 64 * 1024)
}

fn locked_kb() -> u64 {
    field(&std::fs::read_to_string("/proc/self/status").unwrap(), "VmLck:").unwrap()
}

fn cli(args: &[&str], env: &[(&str, &str)]) {
    let mut c = Command::new(BIN);
    c.args(args).env("ECM_HSM_SO_PIN", SO_PIN).env("ECM_HSM_PIN", USER_PIN).stdin(Stdio::null());
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.output().unwrap();
    assert!(out.status.success(), "ecm-hsm {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// The token of a memory test, made by the admin tool: initialized, `setup`'s commands run,
/// then the principal added with its PIN and POLICY applied.
fn token_with_principal(setup: &[&[&str]]) {
    cli(&["init", "--label", "memory"], &[("ECM_HSM_NEW_PIN", USER_PIN)]);
    for args in setup {
        cli(args, &[]);
    }
    cli(&["principal", "add", PRINCIPAL], &[("ECM_HSM_NEW_PIN", PRINCIPAL_PIN)]);
    let policy = token_dir().join("policy.json");
    write_private(&policy, POLICY.as_bytes());
    cli(&["policy", "apply", policy.to_str().unwrap()], &[]);
}

fn initialized_slot(p: &Pkcs11) -> CK_SLOT_ID {
    *slot_list(p).iter().find(|s| token_info(p, **s).flags & CKF_TOKEN_INITIALIZED != 0).unwrap()
}

/// The worker: imports the two keys as the token's user, in a process of its own.
fn import_keys() {
    let p = load_raw();
    initialize(&p);
    let h = open(&p, initialized_slot(&p));
    assert_eq!(login(&p, h, CKU_USER, USER_PIN), CKR_OK);
    for (label, seed) in [(&b"dek-visible"[..], VISIBLE), (&b"app-hidden"[..], HIDDEN)] {
        let value: Vec<u8> = (0..32).map(|i| key_byte(seed, i)).collect();
        let (class, key_type) = (CKO_SECRET_KEY, CKK_AES);
        let mut t = [
            attr(CKA_CLASS, &class),
            attr(CKA_KEY_TYPE, &key_type),
            attr(CKA_TOKEN, &TRUE),
            attr(CKA_DECRYPT, &TRUE),
            attr(CKA_SENSITIVE, &TRUE),
            attr_bytes(CKA_LABEL, label),
            attr_bytes(CKA_VALUE, &value),
        ];
        create(&p, h, &mut t);
    }
    finalize(&p);
}

isolated_test!(
    fn after_a_principals_login_memory_holds_no_value_of_a_key_it_may_not_use() {
        if std::env::var_os(ROLE).is_some() {
            return import_keys();
        }
        let dir = token_dir();
        token_with_principal(&[]);
        let name = "after_a_principals_login_memory_holds_no_value_of_a_key_it_may_not_use";
        let mut worker = worker_command(name, Path::new(&dir), ROLE, "import").spawn().unwrap();
        let status = worker.wait().unwrap();
        let mut err = String::new();
        worker.stderr.take().unwrap().read_to_string(&mut err).unwrap();
        assert!(status.success(), "{err}");

        let p = load_raw();
        initialize(&p);
        let h = open(&p, initialized_slot(&p));
        assert_eq!(login(&p, h, CKU_USER, &format!("{PRINCIPAL}:{PRINCIPAL_PIN}")), CKR_OK);
        // Every object the login may see is loaded (a search without a template).
        let found = find_all(&p, h);
        assert_eq!(found.len(), 1, "the principal sees the DEK only");
        // The scan finds a value the login opened (the control), and none it may not use.
        assert!(occurrences(VISIBLE) >= 1, "the control: the usable key's value is found");
        assert_eq!(occurrences(HIDDEN), 0, "the value of a key the principal may not use is in memory");
    }
);

/// The worker of the next test: logs in as the decrypt-only principal and starts a
/// decryption with its DEK, the module logging at debug level which values of the hierarchy
/// it opens (ECM_HSM_LOG=debug).
fn use_the_dek() {
    let p = load_raw();
    initialize(&p);
    let h = open(&p, initialized_slot(&p));
    assert_eq!(login(&p, h, CKU_USER, &format!("{PRINCIPAL}:{PRINCIPAL_PIN}")), CKR_OK);
    let found = find_all(&p, h);
    assert_eq!(found.len(), 1, "the principal sees its DEK only");
    let mut iv = [7u8; 12];
    let mut params = gcm_params(&mut iv);
    let mut m = CK_MECHANISM {
        mechanism: CKM_AES_GCM,
        pParameter: (&raw mut params).cast(),
        ulParameterLen: ulen(std::mem::size_of::<CK_GCM_PARAMS>()),
    };
    // SAFETY: the mechanism and its parameter are live locals.
    assert_eq!(unsafe { p.C_DecryptInit(h, &mut m, found[0]) }, CKR_OK, "the DEK is usable");
    // The DEK's value is kept in memory left out of core dumps, and locked when the limit
    // allows (issue 13 item 14).
    let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
    let no_dump = smaps
        .lines()
        .filter(|l| l.starts_with("VmFlags:"))
        .filter(|l| l.split_whitespace().any(|f| f == "dd"))
        .count();
    assert!(no_dump >= 1, "no mapping excluded from core dumps");
    if may_lock() {
        assert!(locked_kb() > 0, "VmLck is 0 although RLIMIT_MEMLOCK allows locking");
    }
    finalize(&p);
}

isolated_test!(
    fn a_decrypt_only_principal_uses_its_dek_without_the_kek_or_master_key_opened_for_it() {
        if std::env::var_os(ROLE).is_some() {
            return use_the_dek();
        }
        let dir = token_dir();
        token_with_principal(&[&["hierarchy", "init"], &["tenant", "add", "acme"]]);
        let name = "a_decrypt_only_principal_uses_its_dek_without_the_kek_or_master_key_opened_for_it";
        // Read while it runs (the debug log could fill the pipe).
        let out =
            worker_command(name, Path::new(&dir), ROLE, "use").env("ECM_HSM_LOG", "debug").output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{err}");
        let opened: Vec<&str> = err.lines().filter(|l| l.contains("hierarchy key '")).collect();
        // The control: the DEK's value was unwrapped for its use.
        assert!(opened.iter().any(|l| l.contains("'dek-acme-v1' unwrapped for use")), "{opened:#?}");
        // The master key and the KEK were never opened for the login, nor kept: only opened
        // for the moment of unwrapping the DEK, then wiped.
        for key in ["master-v1", "kek-v1"] {
            assert!(
                opened
                    .iter()
                    .filter(|l| l.contains(&format!("'{key}'")))
                    .all(|l| l.contains("opened for a moment")),
                "{key}: {opened:#?}"
            );
        }
        assert!(opened.iter().any(|l| l.contains("'dek-acme-v1' opened for this login")), "{opened:#?}");
    }
);

isolated_test!(
    fn the_values_a_login_opens_live_only_in_locked_memory_left_out_of_core_dumps() {
        if std::env::var_os(ROLE).is_some() {
            return import_keys();
        }
        let dir = token_dir();
        cli(&["init", "--label", "memory"], &[("ECM_HSM_NEW_PIN", USER_PIN)]);
        let name = "the_values_a_login_opens_live_only_in_locked_memory_left_out_of_core_dumps";
        let out = worker_command(name, Path::new(&dir), ROLE, "import").output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

        let p = load_raw();
        initialize(&p);
        let h = open(&p, initialized_slot(&p));
        // The token's user opens every key: both values are loaded (and the token key held).
        assert_eq!(login(&p, h, CKU_USER, USER_PIN), CKR_OK);
        assert_eq!(find_all(&p, h).len(), 2);
        for seed in [VISIBLE, HIDDEN] {
            let found = occurrences_at(seed);
            // The control: the scan finds the opened value.
            assert!(!found.is_empty(), "the opened value of {seed:#x} is not in memory");
            for (address, flags) in &found {
                // Nothing but the locked pool holds it: no copy in dumpable memory.
                assert!(
                    flags.iter().any(|f| f == "dd"),
                    "a copy of {seed:#x} at {address:#x} would be dumped: {flags:?}"
                );
                if may_lock() {
                    assert!(
                        flags.iter().any(|f| f == "lo"),
                        "{seed:#x} at {address:#x} is not locked: {flags:?}"
                    );
                }
            }
        }
        if may_lock() {
            assert!(locked_kb() > 0, "VmLck is 0 although RLIMIT_MEMLOCK allows locking");
        }
        // Logout takes the opened values with it at once, not at the next use of the token.
        // SAFETY: no pointers.
        assert_eq!(unsafe { p.C_Logout(h) }, CKR_OK);
        for seed in [VISIBLE, HIDDEN] {
            assert_eq!(occurrences(seed), 0, "the value of {seed:#x} outlived the logout");
        }
        finalize(&p);
    }
);

isolated_test!(
    fn a_thousand_keys_take_little_locked_memory_and_few_mappings() {
        cli(&["init", "--label", "memory"], &[("ECM_HSM_NEW_PIN", USER_PIN)]);
        let p = load_raw();
        initialize(&p);
        let h = open(&p, initialized_slot(&p));
        assert_eq!(login(&p, h, CKU_USER, USER_PIN), CKR_OK);
        let mappings = || std::fs::read_to_string("/proc/self/maps").unwrap().lines().count();
        let (locked_before, maps_before) = (locked_kb(), mappings());
        for i in 0..1000u32 {
            let value: Vec<u8> = (0..32).map(|b| key_byte(i, b)).collect();
            let (class, key_type) = (CKO_SECRET_KEY, CKK_AES);
            let mut t = [
                attr(CKA_CLASS, &class),
                attr(CKA_KEY_TYPE, &key_type),
                attr(CKA_ENCRYPT, &TRUE),
                attr_bytes(CKA_LABEL, format!("key-{i}").as_bytes()),
                attr_bytes(CKA_VALUE, &value),
            ];
            create(&p, h, &mut t);
        }
        let (locked, maps) = (locked_kb() - locked_before, mappings() - maps_before);
        eprintln!("1,000 AES keys: VmLck +{locked} KiB, +{maps} mappings");
        // A page per key would be 4,000 KiB (half the usual 8 MiB limit) and 1,000 mappings;
        // the pool's chunks take about an eighth of that, in a few arenas.
        assert!(maps < 100, "{maps} new mappings for 1,000 keys");
        if may_lock() {
            assert!(locked > 0 && locked <= 2048, "VmLck +{locked} KiB for 1,000 keys");
        }
        finalize(&p);
    }
);

#[test]
fn the_admin_tool_is_not_dumpable() {
    // The hidden `debug-process` command reports the state of the process that runs it,
    // after the start every command shares.
    let out = Command::new(BIN).arg("debug-process").output().expect("run ecm-hsm");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "dumpable: 0");
}

#[test]
fn the_debug_command_is_not_offered_in_the_help() {
    let out = Command::new(BIN).arg("--help").output().expect("run ecm-hsm");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("debug-process"));
}
