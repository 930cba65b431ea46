//! The workloads: the table of per-operation workloads (each with its PKCS#11 setup and its
//! aws-lc-rs counterpart), the thread runs, and the object-store phases; and what each child
//! process runs.
//!
//! Keys of the crypto workloads are session objects (CKA_TOKEN false) made by the module
//! (`C_GenerateKey`/`C_GenerateKeyPair`), sensitive and private, except where a row says
//! otherwise. Objects a workload creates in a window are destroyed between windows, untimed.

use std::cell::{OnceCell, RefCell};
use std::path::Path;
use std::rc::Rc;
use std::time::Instant;

use cryptoki::context::Pkcs11;
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsOaepParams, PkcsOaepSource, PkcsPssParams};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, SessionState, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use cryptoki_sys::{CK_MECHANISM_TYPE, CKM_AES_KEY_WRAP_KWP, CKM_AES_KEY_WRAP_PAD};

use crate::direct;
use crate::p11::{self, Engine, Raw, ckr};
use crate::report::{self, Figure};
use crate::timing::{Bench, Pace, SendOp, Timing, measure, measure_threads};

/// What the signatures are made over (hashed by the mechanism).
pub const MESSAGE: [u8; 256] = [0x4d; 256];
/// What CKM_ECDSA signs: a SHA-256-sized digest made by the caller.
pub const DIGEST: [u8; 32] = [0xd1; 32];
/// The byte of every payload.
pub const PAYLOAD: u8 = 0x5a;
/// DER of the OID of P-256 (prime256v1), the value of CKA_EC_PARAMS.
const P256: [u8; 10] = [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];

/// One row of the per-operation table.
pub struct Workload {
    pub id: &'static str,
    pub name: &'static str,
    /// Payload bytes per operation, for MB/s (0: none).
    pub bytes: usize,
    pub pace: Pace,
    /// Prepares the workload on a module; `Err` is the return code that refused it.
    pub p11: for<'a> fn(&'a Fixture) -> Result<Bench<'a>, String>,
    /// The same operation on aws-lc-rs in-process (the ceiling), where there is one.
    pub direct: Option<fn() -> Bench<'static>>,
}

const fn w(
    id: &'static str,
    name: &'static str,
    bytes: usize,
    p11: for<'a> fn(&'a Fixture) -> Result<Bench<'a>, String>,
    direct: Option<fn() -> Bench<'static>>,
) -> Workload {
    Workload { id, name, bytes, pace: Pace::Windows, p11, direct }
}

const fn keygen(
    id: &'static str,
    name: &'static str,
    (full, quick): (usize, usize),
    p11: for<'a> fn(&'a Fixture) -> Result<Bench<'a>, String>,
    direct: fn() -> Bench<'static>,
) -> Workload {
    Workload { id, name, bytes: 0, pace: Pace::Iterations { full, quick }, p11, direct: Some(direct) }
}

pub const WORKLOADS: &[Workload] = &[
    w("login", "login (open, login, logout, close)", 0, login, Some(direct::pin_kdf)),
    w(
        "gcm-enc-1k",
        "AES-256-GCM encrypt 1 KiB",
        1024,
        |f| gcm_encrypt(f, 1024, false),
        Some(direct::gcm_encrypt_1k),
    ),
    w(
        "gcm-enc-1k-token",
        "AES-256-GCM encrypt 1 KiB, token key",
        1024,
        |f| gcm_encrypt(f, 1024, true),
        Some(direct::gcm_encrypt_1k),
    ),
    w(
        "gcm-enc-64k",
        "AES-256-GCM encrypt 64 KiB",
        65536,
        |f| gcm_encrypt(f, 65536, false),
        Some(direct::gcm_encrypt_64k),
    ),
    w("gcm-dec-64k", "AES-256-GCM decrypt 64 KiB", 65536, gcm_decrypt_64k, Some(direct::gcm_decrypt_64k)),
    // What a service that keeps encrypting meets and a short window does not: with auditing,
    // a trail written faster than the disk takes it (see the README's Performance).
    Workload {
        id: "gcm-enc-1k-sustained",
        name: "AES-256-GCM encrypt 1 KiB, sustained",
        bytes: 1024,
        pace: Pace::Sustained,
        p11: |f| gcm_encrypt(f, 1024, false),
        direct: None,
    },
    w("kwp-wrap", "AES-KWP wrap a 32-byte key", 0, kwp_wrap, Some(direct::kwp_wrap)),
    w("kwp-unwrap", "AES-KWP unwrap to a session object", 0, kwp_unwrap, Some(direct::kwp_unwrap)),
    w("aes-keygen-token", "AES-256 keygen, persisted (CKA_TOKEN=true)", 0, persisted_keygen, None),
    w("rsa2048-sign", "RSA-2048 sign SHA256-RSA-PKCS", 0, rsa2048_sign, Some(direct::rsa2048_sign)),
    w(
        "rsa2048-sign-pss",
        "RSA-2048 sign SHA256-RSA-PKCS-PSS",
        0,
        rsa2048_sign_pss,
        Some(direct::rsa2048_sign_pss),
    ),
    w("rsa2048-verify", "RSA-2048 verify SHA256-RSA-PKCS", 0, rsa2048_verify, Some(direct::rsa2048_verify)),
    w(
        "rsa2048-oaep",
        "RSA-2048 decrypt OAEP-SHA256",
        0,
        rsa2048_oaep_decrypt,
        Some(direct::rsa2048_oaep_decrypt),
    ),
    w("rsa4096-sign", "RSA-4096 sign SHA256-RSA-PKCS", 0, rsa4096_sign, Some(direct::rsa4096_sign)),
    w("ecdsa-sign", "ECDSA P-256 sign (CKM_ECDSA, 32-byte digest)", 0, ecdsa_sign, Some(direct::ecdsa_sign)),
    w("ecdsa-keygen", "ECDSA P-256 keygen", 0, ecdsa_keygen, Some(direct::ecdsa_keygen)),
    keygen("rsa2048-keygen", "RSA-2048 keygen", (7, 1), |f| rsa_keygen(f, 2048), direct::rsa2048_keygen),
    keygen("rsa4096-keygen", "RSA-4096 keygen", (5, 0), |f| rsa_keygen(f, 4096), direct::rsa4096_keygen),
    w("sha256-64k", "SHA-256 of 64 KiB", 65536, sha256_64k, Some(direct::sha256_64k)),
    // The audit register's own cost per record, as a figure of the library in this process:
    // no PKCS#11 call has it alone, so the module's column says so.
    w(
        "audit-append",
        "audit register append (HMAC-linked), library in-process",
        0,
        |_| Err("no PKCS#11 call measures it alone".to_owned()),
        Some(direct::audit_register_append),
    ),
];

/// The rows the thread runs report, as (id, name, payload bytes): `<id>-2t` (2 threads,
/// summed) and `<id>-2t-ratio` (÷ the same harness on 1 thread).
pub const THREADED: [(&str, &str, usize); 2] =
    [("gcm-enc-1k", "AES-256-GCM encrypt 1 KiB", 1024), ("rsa2048-sign", "RSA-2048 sign SHA256-RSA-PKCS", 0)];

/// The rows of AES-GCM 1 KiB from several client processes at once against one service (or,
/// in-process, one token directory): the parent runs [`PROCESS_PHASE`] children, first one
/// alone, then two together, and reports their summed rate and the ratio.
pub const PROCESSES_ID: &str = "gcm-enc-1k-2p";
pub const PROCESSES_RATIO_ID: &str = "gcm-enc-1k-2p-ratio";
pub const PROCESS_ROW: &str = "gcm-enc-1k-proc";
pub const PROCESS_PHASE: &str = "gcm-proc";

/// The rows asked for with `--rows` (all when `None`), set once at start.
pub static ROWS: std::sync::OnceLock<Option<Vec<String>>> = std::sync::OnceLock::new();

/// Whether the row `id` is to be measured.
pub fn wanted(id: &str) -> bool {
    match ROWS.get() {
        Some(Some(rows)) => rows.iter().any(|r| r == id),
        _ => true,
    }
}

/// Whether any row starting with `prefix` is to be measured.
pub fn wanted_prefix(prefix: &str) -> bool {
    match ROWS.get() {
        Some(Some(rows)) => rows.iter().any(|r| r.starts_with(prefix)),
        _ => true,
    }
}

/// The workload also measured on ecm-hsm with auditing off (a child of its own whose token
/// directory has [`AUDIT_OFF_SETTINGS`]), reported as [`AUDIT_OFF_ID`]; the parent adds
/// [`AUDIT_RATIO_ID`], this workload's usual figure (auditing on, the default) ÷ that one.
pub const AUDITED: &str = "gcm-enc-1k";
pub const AUDIT_OFF_ID: &str = "gcm-enc-1k-audit-off";
pub const AUDIT_RATIO_ID: &str = "gcm-enc-1k-audit-ratio";
/// The ecm-hsm settings file (`ecm-hsm.toml`) of the auditing-off token directory.
pub const AUDIT_OFF_SETTINGS: &str = "audit = false\n";

/// Whether ecm-hsm wrote audit records in a token directory: the lines of its
/// `token-<slot>.audit` registers (every process that records opens its segment there),
/// but for the `audit_off` notes a process with auditing off writes (once or twice).
pub fn audit_records(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .filter_map(Result::ok)
        .filter(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            name.starts_with("token-") && name.ends_with(".audit")
        })
        .filter_map(|e| std::fs::read(e.path()).ok())
        .map(|bytes| {
            bytes
                .split(|&b| b == b'\n')
                .filter(|l| !l.is_empty() && memchr::memmem::find(l, b"\"audit_off\"").is_none())
                .count()
        })
        .sum()
}

/// A module with a fresh token and a user session, shared by the crypto workloads.
pub struct Fixture {
    p11: Pkcs11,
    raw: Raw,
    slot: Slot,
    session: Session,
    /// SoftHSMv2 (by its C_GetInfo), which has RFC 5649 under another mechanism number.
    softhsm: bool,
    rsa2048: OnceCell<Result<KeyPair, String>>,
}

#[derive(Clone, Copy)]
struct KeyPair {
    public: ObjectHandle,
    private: ObjectHandle,
}

impl Fixture {
    fn open(path: &Path) -> Result<Self, String> {
        let p11 = p11::load(path)?;
        let (manufacturer, description, version) = p11::library_info(&p11);
        report::info("library", &format!("{manufacturer} / {description} / {version}"));
        let slot = p11::fresh_token(&p11)?;
        let session = p11::user_session(&p11, slot)?;
        let raw = Raw::load(path)?;
        let softhsm = manufacturer.contains("SoftHSM");
        Ok(Fixture { p11, raw, slot, session, softhsm, rsa2048: OnceCell::new() })
    }

    /// Every workload starts with the user logged in (the login workload logs out).
    fn ensure_login(&self) -> Result<(), String> {
        let state = self.session.get_session_info().map_err(ckr)?.session_state();
        if !matches!(state, SessionState::RwUser) {
            self.session.login(UserType::User, Some(&AuthPin::new(p11::USER_PIN.into()))).map_err(ckr)?;
        }
        Ok(())
    }

    /// The RSA-2048 key pair the RSA-2048 workloads share.
    fn rsa2048(&self) -> Result<KeyPair, String> {
        self.rsa2048.get_or_init(|| rsa_pair(self, 2048)).clone()
    }

    /// Objects a window created, destroyed between windows.
    fn destroyer(&self) -> (Rc<RefCell<Vec<ObjectHandle>>>, impl FnMut() + '_) {
        let made = Rc::new(RefCell::new(Vec::new()));
        let list = made.clone();
        let destroy = move || {
            for h in list.borrow_mut().drain(..) {
                let _ = self.session.destroy_object(h);
            }
        };
        (made, destroy)
    }
}

// --- setup helpers ------------------------------------------------------------------------

fn aes_template(token: bool, extractable: bool, label: &str) -> Vec<Attribute> {
    vec![
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::AES),
        Attribute::ValueLen(32.into()),
        Attribute::Token(token),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(extractable),
        Attribute::Encrypt(true),
        Attribute::Decrypt(true),
        Attribute::Wrap(true),
        Attribute::Unwrap(true),
        Attribute::Label(label.as_bytes().to_vec()),
    ]
}

fn aes_key(f: &Fixture, token: bool, extractable: bool) -> Result<ObjectHandle, String> {
    f.session.generate_key(&Mechanism::AesKeyGen, &aes_template(token, extractable, "bench-aes")).map_err(ckr)
}

/// Session key pair templates: a public key that verifies and a sensitive private key that
/// signs, each with its `extra` attributes after these.
fn pair_templates(
    public_extra: &[Attribute],
    private_extra: &[Attribute],
) -> (Vec<Attribute>, Vec<Attribute>) {
    let mut public = vec![Attribute::Token(false), Attribute::Private(false), Attribute::Verify(true)];
    public.extend_from_slice(public_extra);
    let mut private = vec![
        Attribute::Token(false),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Sign(true),
    ];
    private.extend_from_slice(private_extra);
    (public, private)
}

fn rsa_templates(bits: u64) -> (Vec<Attribute>, Vec<Attribute>) {
    pair_templates(
        &[
            Attribute::ModulusBits(bits.into()),
            Attribute::PublicExponent(vec![0x01, 0x00, 0x01]),
            Attribute::Encrypt(true),
        ],
        &[Attribute::Decrypt(true)],
    )
}

fn rsa_pair(f: &Fixture, bits: u64) -> Result<KeyPair, String> {
    let (public, private) = rsa_templates(bits);
    let (public, private) =
        f.session.generate_key_pair(&Mechanism::RsaPkcsKeyPairGen, &public, &private).map_err(ckr)?;
    Ok(KeyPair { public, private })
}

fn ec_templates() -> (Vec<Attribute>, Vec<Attribute>) {
    pair_templates(&[Attribute::EcParams(P256.to_vec())], &[])
}

/// A distinct 96-bit GCM IV per call (a counter), as a caller must use.
pub fn next_iv(counter: &mut u64) -> [u8; 12] {
    *counter += 1;
    let mut iv = [0u8; 12];
    iv[4..].copy_from_slice(&counter.to_be_bytes());
    iv
}

fn pss() -> Mechanism<'static> {
    Mechanism::Sha256RsaPkcsPss(PkcsPssParams {
        hash_alg: MechanismType::SHA256,
        mgf: PkcsMgfType::MGF1_SHA256,
        s_len: 32.into(),
    })
}

fn oaep() -> Mechanism<'static> {
    Mechanism::RsaPkcsOaep(PkcsOaepParams::new(
        MechanismType::SHA256,
        PkcsMgfType::MGF1_SHA256,
        PkcsOaepSource::empty(),
    ))
}

// --- the workloads on a module ------------------------------------------------------------

fn login(f: &Fixture) -> Result<Bench<'_>, String> {
    // The login state belongs to the application, so the shared session logs out first.
    f.session.logout().map_err(ckr)?;
    let pin = AuthPin::new(p11::USER_PIN.into());
    Ok(Bench::new(move || {
        let s = f.p11.open_rw_session(f.slot).map_err(ckr)?;
        s.login(UserType::User, Some(&pin)).map_err(ckr)?;
        s.logout().map_err(ckr)?;
        s.close().map_err(ckr)
    }))
}

fn gcm_encrypt(f: &Fixture, len: usize, token: bool) -> Result<Bench<'_>, String> {
    let key = aes_key(f, token, false)?;
    let data = vec![PAYLOAD; len];
    let mut counter = 0;
    Ok(Bench::new(move || {
        let mut iv = next_iv(&mut counter);
        let gcm = GcmParams::new(&mut iv, &[], 128.into()).map_err(ckr)?;
        f.session.encrypt(&Mechanism::AesGcm(gcm), key, &data).map(drop).map_err(ckr)
    }))
}

fn gcm_decrypt_64k(f: &Fixture) -> Result<Bench<'_>, String> {
    const IV: [u8; 12] = [7; 12];
    let key = aes_key(f, false, false)?;
    let mut iv = IV;
    let gcm = GcmParams::new(&mut iv, &[], 128.into()).map_err(ckr)?;
    let ciphertext = f.session.encrypt(&Mechanism::AesGcm(gcm), key, &[PAYLOAD; 65536]).map_err(ckr)?;
    Ok(Bench::new(move || {
        let mut iv = IV;
        let gcm = GcmParams::new(&mut iv, &[], 128.into()).map_err(ckr)?;
        f.session.decrypt(&Mechanism::AesGcm(gcm), key, &ciphertext).map(drop).map_err(ckr)
    }))
}

/// A KEK, an extractable key to wrap, and the RFC 5649 mechanism the module offers:
/// `CKM_AES_KEY_WRAP_KWP`, or on SoftHSMv2, which lacks it, its `CKM_AES_KEY_WRAP_PAD`, which
/// SoftHSMv2 implements as RFC 5649 (noted on the row).
fn kwp_setup(f: &Fixture, id: &str) -> Result<(ObjectHandle, ObjectHandle, CK_MECHANISM_TYPE), String> {
    let kek = aes_key(f, false, false)?;
    let key = aes_key(f, false, true)?;
    match f.raw.wrap(&f.session, CKM_AES_KEY_WRAP_KWP, kek, key) {
        Ok(_) => Ok((kek, key, CKM_AES_KEY_WRAP_KWP)),
        Err(e) if f.softhsm => {
            f.raw.wrap(&f.session, CKM_AES_KEY_WRAP_PAD, kek, key)?;
            report::note(
                id,
                &format!(
                    "no CKM_AES_KEY_WRAP_KWP ({e}); this is its CKM_AES_KEY_WRAP_PAD, which \
                     SoftHSMv2 implements as RFC 5649, the same algorithm"
                ),
            );
            Ok((kek, key, CKM_AES_KEY_WRAP_PAD))
        }
        Err(e) => Err(e),
    }
}

fn kwp_wrap(f: &Fixture) -> Result<Bench<'_>, String> {
    let (kek, key, mechanism) = kwp_setup(f, "kwp-wrap")?;
    Ok(Bench::new(move || f.raw.wrap(&f.session, mechanism, kek, key).map(drop)))
}

fn kwp_unwrap(f: &Fixture) -> Result<Bench<'_>, String> {
    let (kek, key, mechanism) = kwp_setup(f, "kwp-unwrap")?;
    let wrapped = f.raw.wrap(&f.session, mechanism, kek, key)?;
    let template = [
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::AES),
        Attribute::Token(false),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Encrypt(true),
    ];
    let (made, destroy) = f.destroyer();
    Ok(Bench::new(move || {
        let h = f.raw.unwrap(&f.session, mechanism, kek, &wrapped, &template)?;
        made.borrow_mut().push(h);
        Ok(())
    })
    .between(destroy))
}

fn persisted_keygen(f: &Fixture) -> Result<Bench<'_>, String> {
    let template = aes_template(true, false, "bench-persisted");
    let (made, destroy) = f.destroyer();
    Ok(Bench::new(move || {
        let h = f.session.generate_key(&Mechanism::AesKeyGen, &template).map_err(ckr)?;
        made.borrow_mut().push(h);
        Ok(())
    })
    .between(destroy))
}

fn rsa2048_sign(f: &Fixture) -> Result<Bench<'_>, String> {
    let pair = f.rsa2048()?;
    Ok(Bench::new(move || {
        f.session.sign(&Mechanism::Sha256RsaPkcs, pair.private, &MESSAGE).map(drop).map_err(ckr)
    }))
}

fn rsa2048_sign_pss(f: &Fixture) -> Result<Bench<'_>, String> {
    let pair = f.rsa2048()?;
    Ok(Bench::new(move || f.session.sign(&pss(), pair.private, &MESSAGE).map(drop).map_err(ckr)))
}

fn rsa2048_verify(f: &Fixture) -> Result<Bench<'_>, String> {
    let pair = f.rsa2048()?;
    let signature = f.session.sign(&Mechanism::Sha256RsaPkcs, pair.private, &MESSAGE).map_err(ckr)?;
    Ok(Bench::new(move || {
        f.session.verify(&Mechanism::Sha256RsaPkcs, pair.public, &MESSAGE, &signature).map_err(ckr)
    }))
}

fn rsa2048_oaep_decrypt(f: &Fixture) -> Result<Bench<'_>, String> {
    let pair = f.rsa2048()?;
    let ciphertext = match f.session.encrypt(&oaep(), pair.public, &[PAYLOAD; 32]) {
        Ok(c) => c,
        Err(e) => {
            let sha1 =
                PkcsOaepParams::new(MechanismType::SHA1, PkcsMgfType::MGF1_SHA1, PkcsOaepSource::empty());
            if f.session.encrypt(&Mechanism::RsaPkcsOaep(sha1), pair.public, &[PAYLOAD; 32]).is_ok() {
                report::note("rsa2048-oaep", "it offers RSA-OAEP with SHA-1 only");
            }
            return Err(ckr(e));
        }
    };
    Ok(Bench::new(move || f.session.decrypt(&oaep(), pair.private, &ciphertext).map(drop).map_err(ckr)))
}

fn rsa4096_sign(f: &Fixture) -> Result<Bench<'_>, String> {
    let pair = rsa_pair(f, 4096)?;
    Ok(Bench::new(move || {
        f.session.sign(&Mechanism::Sha256RsaPkcs, pair.private, &MESSAGE).map(drop).map_err(ckr)
    }))
}

fn ecdsa_sign(f: &Fixture) -> Result<Bench<'_>, String> {
    let (public, private) = ec_templates();
    let (_, private) =
        f.session.generate_key_pair(&Mechanism::EccKeyPairGen, &public, &private).map_err(ckr)?;
    Ok(Bench::new(move || f.session.sign(&Mechanism::Ecdsa, private, &DIGEST).map(drop).map_err(ckr)))
}

fn ecdsa_keygen(f: &Fixture) -> Result<Bench<'_>, String> {
    let (public, private) = ec_templates();
    let (made, destroy) = f.destroyer();
    Ok(Bench::new(move || {
        let (pu, pr) =
            f.session.generate_key_pair(&Mechanism::EccKeyPairGen, &public, &private).map_err(ckr)?;
        made.borrow_mut().extend([pu, pr]);
        Ok(())
    })
    .between(destroy))
}

fn rsa_keygen(f: &Fixture, bits: u64) -> Result<Bench<'_>, String> {
    let (made, destroy) = f.destroyer();
    Ok(Bench::new(move || {
        let pair = rsa_pair(f, bits)?;
        made.borrow_mut().extend([pair.public, pair.private]);
        Ok(())
    })
    .between(destroy))
}

fn sha256_64k(f: &Fixture) -> Result<Bench<'_>, String> {
    let data = vec![PAYLOAD; 65536];
    Ok(Bench::new(move || f.session.digest(&Mechanism::Sha256, &data).map(drop).map_err(ckr)))
}

// --- threads --------------------------------------------------------------------------------

/// Measures `make`'s operation on 1 thread and on 2 (each thread with its own op, so its own
/// session), and reports the 2-thread sum and the ratio.
/// The 1 KiB AES-GCM thread rows under `id`: 1 and 2 threads, each with its own session.
fn gcm_threads(f: &Fixture, id: &str, t: &Timing) {
    // Session objects are visible to every session of the application.
    let session = || f.p11.open_rw_session(f.slot).map_err(ckr);
    match aes_key(f, false, false) {
        Ok(key) => thread_rows(
            id,
            || {
                let s = session()?;
                let data = vec![PAYLOAD; 1024];
                let mut counter = 0;
                Ok(Box::new(move || {
                    let mut iv = next_iv(&mut counter);
                    let gcm = GcmParams::new(&mut iv, &[], 128.into()).map_err(ckr)?;
                    s.encrypt(&Mechanism::AesGcm(gcm), key, &data).map(drop).map_err(ckr)
                }))
            },
            t,
        ),
        Err(e) => thread_rows(id, || Err(e.clone()), t),
    }
}

fn thread_rows(id: &str, make: impl Fn() -> Result<SendOp, String>, t: &Timing) {
    let run = |n: usize| -> Result<f64, String> {
        let ops = (0..n).map(|_| make()).collect::<Result<Vec<_>, _>>()?;
        settle_disk();
        measure_threads(ops, t)
    };
    match run(1).and_then(|one| Ok((one, run(2)?))) {
        Ok((one, two)) => {
            report::emit(&format!("{id}-2t"), &Figure::Rate(two));
            report::emit(&format!("{id}-2t-ratio"), &Figure::Ratio(two / one));
        }
        Err(e) => {
            report::emit(&format!("{id}-2t"), &Figure::Unsupported(e.clone()));
            report::emit(&format!("{id}-2t-ratio"), &Figure::Unsupported(e));
        }
    }
}

fn threads(f: &Fixture, t: &Timing) {
    if wanted("gcm-enc-1k-2t") {
        gcm_threads(f, "gcm-enc-1k", t);
    }
    if !wanted("rsa2048-sign-2t") {
        return;
    }
    let session = || f.p11.open_rw_session(f.slot).map_err(ckr);
    match f.rsa2048() {
        Ok(pair) => thread_rows(
            "rsa2048-sign",
            || {
                let s = session()?;
                Ok(Box::new(move || {
                    s.sign(&Mechanism::Sha256RsaPkcs, pair.private, &MESSAGE).map(drop).map_err(ckr)
                }))
            },
            t,
        ),
        Err(e) => thread_rows("rsa2048-sign", || Err(e.clone()), t),
    }
}

// --- the phases of a child process ----------------------------------------------------------

/// Runs one phase in this (child) process and prints its rows; exits non-zero if the phase
/// could not run at all.
pub fn run_child(phase: &str, engine: Engine, module: &Path, t: &Timing) {
    let result = match (phase, engine) {
        ("crypto", Engine::Direct) => {
            direct_crypto(t);
            Ok(())
        }
        ("crypto", _) => crypto(module, t),
        ("audit-off", _) => audit_off(module, t),
        ("objects", _) => objects(module, t),
        ("reopen", _) => reopen(module, t),
        ("token", _) => p11::load(module).and_then(|p11| p11::fresh_token(&p11)).map(drop),
        (PROCESS_PHASE, _) => gcm_process(module, t),
        _ => Err(format!("unknown phase {phase:?}")),
    };
    if let Err(e) = result {
        eprintln!("p11bench {phase}: {e}");
        std::process::exit(1);
    }
}

/// Writes the page cache back before a workload: an audited module's earlier rows leave
/// gigabytes of audit records to write, and a row measured while the kernel writes them
/// (throttling writers, its flusher on the same two cores) would measure that instead of
/// itself, by where it stands in the list. Every module gets the same.
fn settle_disk() {
    let _ = std::process::Command::new("sync").status();
}

fn crypto(module: &Path, t: &Timing) -> Result<(), String> {
    let f = Fixture::open(module)?;
    for w in WORKLOADS.iter().filter(|w| wanted(w.id)) {
        settle_disk();
        let figure = if w.pace.skipped(t) {
            Figure::Skipped
        } else {
            match (w.p11)(&f) {
                Ok(mut bench) => measure(&mut bench, t, w.pace),
                Err(e) => Figure::Unsupported(e),
            }
        };
        report::emit(w.id, &figure);
        f.ensure_login()?;
    }
    threads(&f, t);
    Ok(())
}

/// The [`AUDITED`] workload alone, in a process whose token directory (`ECM_HSM_DIR`) has
/// `audit = false` in its settings; reported as [`AUDIT_OFF_ID`]. Should the module write
/// audit records all the same, the figure is not what its row says, and it is a failure.
fn audit_off(module: &Path, t: &Timing) -> Result<(), String> {
    let w = WORKLOADS.iter().find(|w| w.id == AUDITED).ok_or(format!("no {AUDITED} workload"))?;
    let f = Fixture::open(module)?;
    let figure = match (w.p11)(&f) {
        Ok(mut bench) => measure(&mut bench, t, w.pace),
        Err(e) => Figure::Unsupported(e),
    };
    let records = std::env::var_os("ECM_HSM_DIR").map_or(0, |dir| audit_records(Path::new(&dir)));
    let figure = if records > 0 {
        Figure::Failed(format!("{records} audit records written with audit = false"))
    } else {
        figure
    };
    report::emit(AUDIT_OFF_ID, &figure);
    // How the module itself scales, without the audit's work on the same two cores.
    gcm_threads(&f, AUDIT_OFF_ID, t);
    Ok(())
}

/// One of several processes encrypting at once: sets up its session and key, waits for the
/// others at the barrier (`P11BENCH_BARRIER`, a directory where each process leaves a file,
/// and `P11BENCH_PARTIES` of them), then encrypts for a fixed time and reports its rate.
fn gcm_process(module: &Path, t: &Timing) -> Result<(), String> {
    let p11 = p11::load(module)?;
    let slot = p11::our_slot(&p11)?;
    let session = p11::user_session(&p11, slot)?;
    let key =
        session.generate_key(&Mechanism::AesKeyGen, &aes_template(false, false, "proc")).map_err(ckr)?;
    let data = vec![PAYLOAD; 1024];
    let mut counter = 0;
    let mut op = || {
        let mut iv = next_iv(&mut counter);
        let gcm = GcmParams::new(&mut iv, &[], 128.into()).map_err(ckr)?;
        session.encrypt(&Mechanism::AesGcm(gcm), key, &data).map(drop).map_err(ckr)
    };
    op()?;
    let barrier = std::env::var_os("P11BENCH_BARRIER").ok_or("no P11BENCH_BARRIER")?;
    let parties: usize = std::env::var("P11BENCH_PARTIES").ok().and_then(|n| n.parse().ok()).unwrap_or(1);
    let barrier = Path::new(&barrier);
    std::fs::write(barrier.join(std::process::id().to_string()), b"").map_err(|e| e.to_string())?;
    let deadline = Instant::now() + std::time::Duration::from_secs(120);
    while std::fs::read_dir(barrier).map_or(0, Iterator::count) < parties {
        if Instant::now() > deadline {
            return Err("the other processes did not come to the barrier".into());
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    crate::timing::run_for(&mut op, t.warm_up())?;
    let rate = crate::timing::run_for(&mut op, t.sustain())?;
    report::emit(PROCESS_ROW, &Figure::Rate(rate));
    Ok(())
}

fn direct_crypto(t: &Timing) {
    for w in WORKLOADS.iter().filter(|w| wanted(w.id)) {
        if let Some(setup) = w.direct {
            let figure = if w.pace.skipped(t) { Figure::Skipped } else { measure(&mut setup(), t, w.pace) };
            report::emit(w.id, &figure);
        }
    }
    if wanted("gcm-enc-1k-2t") {
        thread_rows("gcm-enc-1k", || Ok(Box::new(direct::gcm_encrypt_op(1024))), t);
    }
    if wanted("rsa2048-sign-2t") {
        thread_rows("rsa2048-sign", || Ok(Box::new(direct::rsa_sign_op(2048, false))), t);
    }
}

fn object_label(i: usize) -> String {
    format!("obj-{i:06}")
}

/// The `CKA_ID` of object `i` (as applications set one per key, and look keys up by it).
fn object_id(i: usize) -> Attribute {
    Attribute::Id((i as u32).to_be_bytes().to_vec())
}

/// Creates `t.objects` token objects (AES-256 keys, one `C_GenerateKey` each), then finds one
/// by its label, and one by its `CKA_ID`, among them; reports the peak RSS of the process.
fn objects(module: &Path, t: &Timing) -> Result<(), String> {
    report::info("rss-baseline", &format!("{:.1}", p11::peak_rss_mib()));
    let p11 = p11::load(module)?;
    let slot = p11::fresh_token(&p11)?;
    let s = p11::user_session(&p11, slot)?;
    let start = Instant::now();
    for i in 0..t.objects {
        let mut template = aes_template(true, false, &object_label(i));
        template.push(object_id(i));
        if let Err(e) = s.generate_key(&Mechanism::AesKeyGen, &template) {
            report::emit("objects-create", &Figure::Failed(format!("object {i}: {}", ckr(e))));
            return Ok(());
        }
    }
    report::emit("objects-create", &Figure::Rate(t.objects as f64 / start.elapsed().as_secs_f64()));
    let template = [Attribute::Label(object_label(t.objects / 2).into_bytes())];
    let mut find = Bench::new(|| match s.find_objects(&template).map_err(ckr)?.len() {
        1 => Ok(()),
        n => Err(format!("found {n} objects")),
    });
    report::emit("objects-find", &measure(&mut find, t, Pace::Windows));
    let template = [object_id(t.objects / 2)];
    let mut find = Bench::new(|| match s.find_objects(&template).map_err(ckr)?.len() {
        1 => Ok(()),
        n => Err(format!("found {n} objects")),
    });
    report::emit("objects-find-id", &measure(&mut find, t, Pace::Windows));
    report::emit("objects-rss", &Figure::Mib(p11::peak_rss_mib()));
    Ok(())
}

/// A new process against the store `objects` left: `C_Initialize`, then slots + open +
/// login, then the first find by label, then the first by `CKA_ID` (of another object),
/// each timed once.
fn reopen(module: &Path, t: &Timing) -> Result<(), String> {
    let ms = |start: Instant| Figure::Millis(start.elapsed().as_secs_f64() * 1e3);
    let p11 = Pkcs11::new(module).map_err(|e| e.to_string())?;
    let start = Instant::now();
    p11.initialize(cryptoki::context::CInitializeArgs::new(
        cryptoki::context::CInitializeFlags::OS_LOCKING_OK,
    ))
    .map_err(ckr)?;
    report::emit("reopen-init", &ms(start));
    let start = Instant::now();
    let slot = p11::our_slot(&p11)?;
    let s = p11::user_session(&p11, slot)?;
    report::emit("reopen-login", &ms(start));
    let start = Instant::now();
    let found = s.find_objects(&[Attribute::Label(object_label(t.objects / 2).into_bytes())]).map_err(ckr)?;
    report::emit(
        "reopen-find",
        &if found.len() == 1 { ms(start) } else { Figure::Failed(format!("found {}", found.len())) },
    );
    let start = Instant::now();
    let found = s.find_objects(&[object_id(t.objects / 3)]).map_err(ckr)?;
    report::emit(
        "reopen-find-id",
        &if found.len() == 1 { ms(start) } else { Figure::Failed(format!("found {}", found.len())) },
    );
    report::emit("reopen-rss", &Figure::Mib(p11::peak_rss_mib()));
    Ok(())
}
