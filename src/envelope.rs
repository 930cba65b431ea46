//! The envelope format: data sealed under a tenant's DEK, in a documented and versioned byte
//! layout, and the library calls that make and open envelopes through the same safe core
//! (`module::Module`, or the key service through `module::Backend`) that serves PKCS#11, so
//! the same rules apply to them.
//!
//! # Layout, format version 1
//!
//! All integers are big-endian.
//!
//! | field | size | meaning |
//! |---|---|---|
//! | magic | 4 | `ECME` |
//! | version | 1 | format version, `1` |
//! | tenant length | 2 (u16) | length of the tenant name, in bytes |
//! | tenant | that many | the tenant name, UTF-8 (`CKA_ECM_TENANT` of the DEK) |
//! | DEK version | 4 (u32) | `CKA_ECM_KEY_VERSION` of the DEK (`dek-<tenant>-v<N>`) |
//! | DEK id length | 1 (u8) | length of the DEK's `CKA_UNIQUE_ID` |
//! | DEK id | that many | the DEK's `CKA_UNIQUE_ID` (32 hex digits on ecm-hsm) |
//! | IV | 12 | the AES-GCM IV, random for each envelope |
//! | associated data length | 4 (u32) | length of the caller's associated data |
//! | associated data | that many | the caller's associated data, in clear |
//! | ciphertext length | 8 (u64) | length of the ciphertext (= of the plaintext) |
//! | ciphertext | that many | AES-256-GCM ciphertext |
//! | tag | 16 | the GCM tag |
//!
//! The *header* is every byte before the ciphertext (magic to ciphertext length, the
//! caller's associated data included). The whole header is the GCM associated data, so
//! changing any byte of it (the tenant, the key named, the IV, the associated data, a length)
//! makes the tag fail: a header cannot be moved to other data, nor data to another tenant or
//! key. Nothing may follow the tag.
//!
//! # Calls
//!
//! On a logged-in session: [`seal`] finds the tenant's active DEK with one plain search
//! (`CKA_ECM_TIER` = DEK, `CKA_ECM_TENANT`, `CKA_ECM_KEY_STATE` = active) and encrypts under a
//! fresh IV from the token's generator; [`open`] finds the DEK by its unique id (a
//! decrypt-only older version opens as well as the current one) and decrypts; [`reencrypt`]
//! opens and seals again under the tenant's current DEK, in memory only. [`parse`] reads a
//! header without any key.

use cryptoki_sys::*;
use zeroize::Zeroizing;

use crate::mechanism::{GcmParams, Mechanism, MechanismParams};
use crate::module::{Backend, CipherKind, Step};
use crate::object::attribute::decode_ulong;
use crate::object::{Attribute, AttributeRead};
use crate::policy::LoginState;
use crate::session::{Output, OutputBuffer};
use crate::vendor::*;

/// The first four bytes of every envelope.
pub const MAGIC: [u8; 4] = *b"ECME";
/// The format version this build writes and reads.
pub const FORMAT_VERSION: u8 = 1;
pub const IV_LEN: usize = 12;
pub const TAG_LEN: usize = 16;

/// Why an envelope could not be made or opened.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EnvelopeError {
    /// The bytes do not start with `ECME`.
    NotAnEnvelope,
    /// A format version this build does not read.
    UnsupportedVersion(u8),
    /// The bytes end inside the named field.
    Truncated { field: &'static str },
    /// Bytes follow the tag.
    TrailingData { extra: u64 },
    /// The header's tenant name is not UTF-8.
    TenantNotUtf8,
    /// A field too long for its length prefix (when sealing).
    TooLarge { field: &'static str, max: u64 },
    /// The tenant has no active DEK to seal under.
    NoActiveDek { tenant: String },
    /// No DEK with the envelope's unique id on this token: retired, or never here.
    DekNotFound { tenant: String, dek_version: u32, unique_id: String },
    /// The tag did not verify, or the header names a key that did not seal it.
    Altered,
    /// The core refused (not logged in, a busy store, ...).
    Module(crate::Error),
}

impl std::fmt::Display for EnvelopeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EnvelopeError::NotAnEnvelope => {
                write!(f, "not an ecm-hsm envelope (it does not start with ECME)")
            }
            EnvelopeError::UnsupportedVersion(v) => {
                write!(f, "unknown envelope format version {v} (this build reads version {FORMAT_VERSION})")
            }
            EnvelopeError::Truncated { field } => {
                write!(f, "the envelope is truncated (it ends in its {field})")
            }
            EnvelopeError::TrailingData { extra } => {
                write!(f, "the envelope has {extra} stray bytes after its tag (more than one envelope?)")
            }
            EnvelopeError::TenantNotUtf8 => write!(f, "the envelope's tenant name is not UTF-8"),
            EnvelopeError::TooLarge { field, max } => {
                write!(f, "the {field} is too large for an envelope (at most {max} bytes)")
            }
            EnvelopeError::NoActiveDek { tenant } => {
                write!(
                    f,
                    "tenant {tenant} has no active DEK: add the tenant first (ecm-hsm tenant add {tenant})"
                )
            }
            EnvelopeError::DekNotFound { tenant, dek_version, unique_id } => write!(
                f,
                "no DEK {unique_id} (dek-{tenant}-v{dek_version}) for tenant {tenant}: was it retired?"
            ),
            EnvelopeError::Altered => write!(f, "the envelope was altered or belongs to another key"),
            EnvelopeError::Module(e) => write!(f, "the token refused: {e}"),
        }
    }
}

impl std::error::Error for EnvelopeError {}

impl From<crate::Error> for EnvelopeError {
    fn from(e: crate::Error) -> Self {
        EnvelopeError::Module(e)
    }
}

pub type Result<T> = std::result::Result<T, EnvelopeError>;

/// The header of an envelope: everything before the ciphertext.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub tenant: String,
    pub dek_version: u32,
    pub dek_unique_id: Vec<u8>,
    pub iv: [u8; IV_LEN],
    pub aad: Vec<u8>,
    pub ciphertext_len: u64,
}

impl Header {
    /// The header's bytes, which are also the GCM associated data.
    pub fn encode(&self) -> Result<Vec<u8>> {
        let tenant_len = u16::try_from(self.tenant.len())
            .map_err(|_| EnvelopeError::TooLarge { field: "tenant name", max: u16::MAX.into() })?;
        let id_len = u8::try_from(self.dek_unique_id.len())
            .map_err(|_| EnvelopeError::TooLarge { field: "DEK id", max: u8::MAX.into() })?;
        let aad_len = u32::try_from(self.aad.len())
            .map_err(|_| EnvelopeError::TooLarge { field: "associated data", max: u32::MAX.into() })?;
        let mut out = Vec::with_capacity(self.encoded_len());
        out.extend_from_slice(&MAGIC);
        out.push(FORMAT_VERSION);
        out.extend_from_slice(&tenant_len.to_be_bytes());
        out.extend_from_slice(self.tenant.as_bytes());
        out.extend_from_slice(&self.dek_version.to_be_bytes());
        out.push(id_len);
        out.extend_from_slice(&self.dek_unique_id);
        out.extend_from_slice(&self.iv);
        out.extend_from_slice(&aad_len.to_be_bytes());
        out.extend_from_slice(&self.aad);
        out.extend_from_slice(&self.ciphertext_len.to_be_bytes());
        Ok(out)
    }

    fn encoded_len(&self) -> usize {
        4 + 1 + 2 + self.tenant.len() + 4 + 1 + self.dek_unique_id.len() + IV_LEN + 4 + self.aad.len() + 8
    }

    /// The label of the DEK that sealed the envelope, `dek-<tenant>-v<N>`.
    pub fn dek_label(&self) -> String {
        format!("dek-{}-v{}", self.tenant, self.dek_version)
    }
}

/// An envelope read without any key: its header, and where its parts are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed<'a> {
    pub header: Header,
    /// The header's bytes (the GCM associated data).
    pub header_bytes: &'a [u8],
    /// The ciphertext followed by the tag.
    pub sealed: &'a [u8],
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|e| *e <= self.bytes.len());
        let end = end.ok_or(EnvelopeError::Truncated { field })?;
        let out = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N]> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N, field)?);
        Ok(a)
    }
}

/// Reads an envelope's layout: every length must agree with the bytes there are, and
/// nothing may follow the tag. Nothing is authenticated yet: that is [`open`]'s work.
pub fn parse(envelope: &[u8]) -> Result<Parsed<'_>> {
    if envelope.len() < MAGIC.len() {
        return Err(if MAGIC.starts_with(envelope) {
            EnvelopeError::Truncated { field: "magic" }
        } else {
            EnvelopeError::NotAnEnvelope
        });
    }
    let mut r = Reader { bytes: envelope, pos: 0 };
    if r.take(4, "magic")? != MAGIC {
        return Err(EnvelopeError::NotAnEnvelope);
    }
    let [version] = r.array::<1>("format version")?;
    if version != FORMAT_VERSION {
        return Err(EnvelopeError::UnsupportedVersion(version));
    }
    let tenant_len = u16::from_be_bytes(r.array("tenant length")?);
    let tenant = r.take(tenant_len.into(), "tenant")?;
    let tenant = std::str::from_utf8(tenant).map_err(|_| EnvelopeError::TenantNotUtf8)?.to_owned();
    let dek_version = u32::from_be_bytes(r.array("DEK version")?);
    let [id_len] = r.array::<1>("DEK id length")?;
    let dek_unique_id = r.take(id_len.into(), "DEK id")?.to_vec();
    let iv = r.array::<IV_LEN>("IV")?;
    let aad_len = u32::from_be_bytes(r.array("associated data length")?);
    let aad_len =
        usize::try_from(aad_len).map_err(|_| EnvelopeError::Truncated { field: "associated data" })?;
    let aad = r.take(aad_len, "associated data")?.to_vec();
    let ciphertext_len = u64::from_be_bytes(r.array("ciphertext length")?);
    let header_len = r.pos;
    let rest = (envelope.len() - header_len) as u64;
    if ciphertext_len > rest {
        return Err(EnvelopeError::Truncated { field: "ciphertext" });
    }
    if rest - ciphertext_len < TAG_LEN as u64 {
        return Err(EnvelopeError::Truncated { field: "tag" });
    }
    if rest - ciphertext_len > TAG_LEN as u64 {
        return Err(EnvelopeError::TrailingData { extra: rest - ciphertext_len - TAG_LEN as u64 });
    }
    Ok(Parsed {
        header: Header { tenant, dek_version, dek_unique_id, iv, aad, ciphertext_len },
        header_bytes: &envelope[..header_len],
        sealed: &envelope[header_len..],
    })
}

/// What [`open`] gives back.
#[derive(Debug, PartialEq, Eq)]
pub struct Opened {
    pub tenant: String,
    /// The caller's associated data, as it was sealed (authenticated).
    pub aad: Vec<u8>,
    pub plaintext: Zeroizing<Vec<u8>>,
    /// The version of the DEK that sealed it.
    pub dek_version: u32,
}

/// Seals `plaintext` for `tenant` under the tenant's active DEK, binding `aad` (kept in
/// clear in the envelope) and the whole header.
pub fn seal(
    module: &Backend,
    session: CK_SESSION_HANDLE,
    tenant: &str,
    aad: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>> {
    require_user(module, session)?;
    let template = [
        Attribute::ulong(CKA_ECM_TIER, CKT_ECM_DEK),
        Attribute::new(CKA_ECM_TENANT, tenant.as_bytes().to_vec()),
        Attribute::ulong(CKA_ECM_KEY_STATE, CKS_ECM_ACTIVE),
    ];
    // One family has one active version; should a damaged store show two, the newest wins.
    let mut current = None;
    for handle in find_all(module, session, &template)? {
        let version = dek_version(module, session, handle)?;
        if current.is_none_or(|(_, v)| version > v) {
            current = Some((handle, version));
        }
    }
    let (dek, version) = current.ok_or_else(|| EnvelopeError::NoActiveDek { tenant: tenant.to_owned() })?;
    let unique_id = value(module, session, dek, CKA_UNIQUE_ID)?
        .ok_or(EnvelopeError::Module(crate::Error::Internal("DEK without a unique id")))?;
    let mut iv = [0u8; IV_LEN];
    module.generate_random(session, &mut iv)?;
    let header = Header {
        tenant: tenant.to_owned(),
        dek_version: version,
        dek_unique_id: unique_id,
        iv,
        aad: aad.to_vec(),
        ciphertext_len: plaintext.len() as u64,
    };
    let mut envelope = header.encode()?;
    let sealed = gcm(module, session, CipherKind::Encrypt, dek, &iv, &envelope, plaintext)?;
    if sealed.len() != plaintext.len() + TAG_LEN {
        return Err(EnvelopeError::Module(crate::Error::Internal("AES-GCM output of an unexpected length")));
    }
    envelope.extend_from_slice(&sealed);
    Ok(envelope)
}

/// Opens an envelope with the DEK it names, whichever version (current or decrypt-only).
pub fn open(module: &Backend, session: CK_SESSION_HANDLE, envelope: &[u8]) -> Result<Opened> {
    let parsed = parse(envelope)?;
    require_user(module, session)?;
    let h = &parsed.header;
    let by_id =
        [Attribute::ulong(CKA_ECM_TIER, CKT_ECM_DEK), Attribute::new(CKA_UNIQUE_ID, h.dek_unique_id.clone())];
    let Some(&dek) = find_all(module, session, &by_id)?.first() else {
        // The tenant's DEK of that version exists under another id: the id was changed, or
        // the envelope comes from another token.
        let same_version = [
            Attribute::ulong(CKA_ECM_TIER, CKT_ECM_DEK),
            Attribute::new(CKA_ECM_TENANT, h.tenant.as_bytes().to_vec()),
            Attribute::ulong(CKA_ECM_KEY_VERSION, h.dek_version as CK_ULONG),
        ];
        if !find_all(module, session, &same_version)?.is_empty() {
            return Err(EnvelopeError::Altered);
        }
        return Err(EnvelopeError::DekNotFound {
            tenant: h.tenant.clone(),
            dek_version: h.dek_version,
            unique_id: String::from_utf8_lossy(&h.dek_unique_id).into_owned(),
        });
    };
    // The key must be the tenant's (the tag would fail anyway: the header is authenticated).
    if value(module, session, dek, CKA_ECM_TENANT)?.as_deref() != Some(h.tenant.as_bytes()) {
        return Err(EnvelopeError::Altered);
    }
    let plaintext = gcm(module, session, CipherKind::Decrypt, dek, &h.iv, parsed.header_bytes, parsed.sealed)
        .map_err(|e| match e {
            EnvelopeError::Module(
                crate::Error::EncryptedDataInvalid | crate::Error::EncryptedDataLenRange,
            ) => EnvelopeError::Altered,
            other => other,
        })?;
    Ok(Opened {
        tenant: parsed.header.tenant,
        aad: parsed.header.aad,
        plaintext,
        dek_version: parsed.header.dek_version,
    })
}

/// Opens an envelope and seals its content again under the tenant's current DEK (with a new
/// IV and the same associated data). The plaintext exists only in memory, zeroized after.
pub fn reencrypt(module: &Backend, session: CK_SESSION_HANDLE, envelope: &[u8]) -> Result<Vec<u8>> {
    let opened = open(module, session, envelope)?;
    seal(module, session, &opened.tenant, &opened.aad, &opened.plaintext)
}

/// DEKs are private objects: without the user's login a search finds none, which would read
/// as "no DEK". Say what is wrong instead.
fn require_user(module: &Backend, session: CK_SESSION_HANDLE) -> Result<()> {
    match module.session_view(session)?.1.login {
        LoginState::User => Ok(()),
        _ => Err(EnvelopeError::Module(crate::Error::UserNotLoggedIn)),
    }
}

/// A whole `C_FindObjectsInit`/`C_FindObjects`/`C_FindObjectsFinal`.
fn find_all(
    module: &Backend,
    session: CK_SESSION_HANDLE,
    template: &[Attribute],
) -> crate::Result<Vec<CK_OBJECT_HANDLE>> {
    module.find_init(session, template)?;
    let mut found = Vec::new();
    let result = loop {
        match module.find_next(session, 256) {
            Ok(batch) if batch.is_empty() => break Ok(()),
            Ok(batch) => found.extend(batch),
            Err(e) => break Err(e),
        }
    };
    module.find_final(session)?;
    result.map(|()| found)
}

fn value(
    module: &Backend,
    session: CK_SESSION_HANDLE,
    object: CK_OBJECT_HANDLE,
    kind: CK_ATTRIBUTE_TYPE,
) -> crate::Result<Option<Vec<u8>>> {
    Ok(match module.get_attributes(session, object, &[kind])?.pop() {
        Some(AttributeRead::Value(v)) => Some(v.to_vec()),
        _ => None,
    })
}

fn dek_version(module: &Backend, session: CK_SESSION_HANDLE, dek: CK_OBJECT_HANDLE) -> Result<u32> {
    value(module, session, dek, CKA_ECM_KEY_VERSION)?
        .and_then(|v| decode_ulong(&v))
        .and_then(|v| u32::try_from(v).ok())
        .ok_or(EnvelopeError::Module(crate::Error::Internal("DEK without a usable version")))
}

/// One single-part AES-GCM operation on the token with a 128-bit tag.
fn gcm(
    module: &Backend,
    session: CK_SESSION_HANDLE,
    kind: CipherKind,
    key: CK_OBJECT_HANDLE,
    iv: &[u8; IV_LEN],
    aad: &[u8],
    input: &[u8],
) -> Result<Zeroizing<Vec<u8>>> {
    let mechanism = Mechanism {
        kind: CKM_AES_GCM,
        params: MechanismParams::Gcm(GcmParams { iv: iv.to_vec(), aad: aad.to_vec(), tag_bits: 128 }),
    };
    module.operation_init(session, kind.operation(), Some(&mechanism), key)?;
    // A single-part call ends the operation whether it succeeds or fails.
    match module.cipher(session, kind, Step::Single(input), OutputBuffer::Capacity(usize::MAX))? {
        Output::Bytes(bytes) => Ok(bytes),
        Output::Length(_) => Err(EnvelopeError::Module(crate::Error::Internal("a length for a buffer"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::module::Module;

    fn header(tenant: &str, aad: &[u8], ciphertext_len: u64) -> Header {
        Header {
            tenant: tenant.into(),
            dek_version: 7,
            dek_unique_id: b"0123456789abcdef0123456789abcdef".to_vec(),
            iv: [0x5A; IV_LEN],
            aad: aad.to_vec(),
            ciphertext_len,
        }
    }

    fn envelope_of(h: &Header) -> Vec<u8> {
        let mut e = h.encode().unwrap();
        e.extend(std::iter::repeat_n(0xC3, h.ciphertext_len as usize + TAG_LEN));
        e
    }

    #[test]
    fn the_header_round_trips_through_the_parser() {
        for h in [
            header("acme", b"", 0),
            header("acme", b"order 42", 5),
            header("Zürich-東京", &[0u8; 1000], 300),
            Header { dek_unique_id: vec![], ..header("t", b"x", 1) },
        ] {
            let e = envelope_of(&h);
            let parsed = parse(&e).unwrap();
            assert_eq!(parsed.header, h);
            assert_eq!(parsed.header_bytes, h.encode().unwrap().as_slice());
            assert_eq!(parsed.sealed.len() as u64, h.ciphertext_len + TAG_LEN as u64);
        }
        // The layout, byte by byte, for a small header.
        let h = Header { dek_unique_id: b"id".to_vec(), ..header("ab", b"Z", 3) };
        let mut expected = b"ECME\x01\x00\x02ab\x00\x00\x00\x07\x02id".to_vec();
        expected.extend([0x5A; 12]);
        expected.extend(b"\x00\x00\x00\x01Z\x00\x00\x00\x00\x00\x00\x00\x03");
        assert_eq!(h.encode().unwrap(), expected);
        assert_eq!(h.dek_label(), "dek-ab-v7");
    }

    #[test]
    fn every_truncation_point_is_refused() {
        let e = envelope_of(&header("acme", b"context", 9));
        for n in 0..e.len() {
            match parse(&e[..n]) {
                Err(EnvelopeError::Truncated { .. }) => {}
                other => panic!("{n} of {} bytes: {other:?}", e.len()),
            }
        }
        assert!(parse(&e).is_ok());
        let mut longer = e.clone();
        longer.push(0);
        assert_eq!(parse(&longer), Err(EnvelopeError::TrailingData { extra: 1 }));
    }

    #[test]
    fn foreign_bytes_and_other_versions_are_named() {
        let e = envelope_of(&header("acme", b"", 1));
        assert_eq!(parse(b"PK\x03\x04 a zip file"), Err(EnvelopeError::NotAnEnvelope));
        assert_eq!(parse(b"x"), Err(EnvelopeError::NotAnEnvelope));
        let mut v2 = e.clone();
        v2[4] = 2;
        assert_eq!(parse(&v2), Err(EnvelopeError::UnsupportedVersion(2)));
        let mut bad_tenant = e.clone();
        bad_tenant[7] = 0xFF;
        assert_eq!(parse(&bad_tenant), Err(EnvelopeError::TenantNotUtf8));
        let long = Header { tenant: "t".repeat(70_000), ..header("", b"", 0) };
        assert!(matches!(long.encode(), Err(EnvelopeError::TooLarge { .. })));
        assert!(EnvelopeError::Altered.to_string().contains("altered or belongs to another key"));
        let missing =
            EnvelopeError::DekNotFound { tenant: "acme".into(), dek_version: 1, unique_id: "ab".into() };
        assert_eq!(missing.to_string(), "no DEK ab (dek-acme-v1) for tenant acme: was it retired?");
    }

    /// A token in a temporary directory with a master key, a KEK and DEKs for two tenants;
    /// returns the module, a logged-in session and the directory (to remove).
    fn token() -> (Backend, CK_SESSION_HANDLE, std::path::PathBuf) {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
        let dir = std::env::temp_dir().join(format!("ecm-hsm-envelope-unit-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let config = Config::from_toml(
            dir.clone(),
            "test_settings = true\npin_kdf_iterations = 1000\n",
            std::path::Path::new("test"),
        )
        .unwrap();
        let module = Backend::Local(Module::new(config).unwrap());
        let mut label = [b' '; 32];
        label[..4].copy_from_slice(b"unit");
        module.init_token(0, b"so-pin-1", label).unwrap();
        let s = module.open_session(0, CKF_SERIAL_SESSION | CKF_RW_SESSION).unwrap();
        module.login(s, CKU_SO, b"so-pin-1").unwrap();
        module.init_pin(s, b"user-pin-1").unwrap();
        module.logout(s).unwrap();
        module.login(s, CKU_USER, b"user-pin-1").unwrap();
        generate(&module, s, CKT_ECM_MASTER, None);
        generate(&module, s, CKT_ECM_KEK, None);
        generate(&module, s, CKT_ECM_DEK, Some("acme"));
        generate(&module, s, CKT_ECM_DEK, Some("globex"));
        (module, s, dir)
    }

    fn generate(module: &Backend, s: CK_SESSION_HANDLE, tier: CK_ULONG, tenant: Option<&str>) {
        let mut template = vec![Attribute::ulong(CKA_ECM_TIER, tier)];
        if let Some(t) = tenant {
            template.push(Attribute::new(CKA_ECM_TENANT, t.as_bytes().to_vec()));
        }
        let mechanism = Mechanism { kind: CKM_AES_KEY_GEN, params: MechanismParams::None };
        module.generate_key(s, &mechanism, &template).unwrap();
    }

    #[test]
    fn each_header_byte_flip_and_each_sealed_byte_flip_is_refused() {
        let (module, s, dir) = token();
        let e = seal(&module, s, "acme", b"order 42", b"the record").unwrap();
        let opened = open(&module, s, &e).unwrap();
        assert_eq!(
            (opened.tenant.as_str(), opened.aad.as_slice(), opened.plaintext.as_slice(), opened.dek_version),
            ("acme", b"order 42".as_slice(), b"the record".as_slice(), 1)
        );
        let header_len = parse(&e).unwrap().header_bytes.len();
        for i in 0..e.len() {
            for mask in [0x01u8, 0x80, 0xFF] {
                let mut bad = e.clone();
                bad[i] ^= mask;
                let result = open(&module, s, &bad);
                assert!(result.is_err(), "byte {i} ^ {mask:#x} opened");
                if i >= header_len {
                    assert_eq!(result.unwrap_err(), EnvelopeError::Altered, "byte {i}");
                }
            }
        }
        // Another tenant's envelope relabelled as this tenant's does not open either.
        let globex = seal(&module, s, "globex", b"", b"theirs").unwrap();
        let p = parse(&globex).unwrap();
        let forged = Header { tenant: "acme".into(), ..p.header.clone() };
        let mut forged_bytes = forged.encode().unwrap();
        forged_bytes.extend_from_slice(p.sealed);
        assert_eq!(open(&module, s, &forged_bytes), Err(EnvelopeError::Altered));
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn old_versions_open_after_rotation_and_reencrypt_moves_to_the_current_one() {
        let (module, s, dir) = token();
        let v1 = seal(&module, s, "acme", b"ctx", b"month one").unwrap();
        let public = module.open_session(0, CKF_SERIAL_SESSION).unwrap();
        module.logout(public).unwrap();
        assert_eq!(open(&module, public, &v1), Err(EnvelopeError::Module(crate::Error::UserNotLoggedIn)));
        module.login(s, CKU_USER, b"user-pin-1").unwrap();
        assert_eq!(
            seal(&module, s, "nobody", b"", b"x"),
            Err(EnvelopeError::NoActiveDek { tenant: "nobody".into() })
        );
        generate(&module, s, CKT_ECM_DEK, Some("acme"));
        assert_eq!(open(&module, s, &v1).unwrap().plaintext.as_slice(), b"month one");
        let v2 = reencrypt(&module, s, &v1).unwrap();
        let h = parse(&v2).unwrap().header;
        assert_eq!((h.dek_version, h.aad.as_slice(), h.tenant.as_str()), (2, b"ctx".as_slice(), "acme"));
        assert_ne!(h.iv, parse(&v1).unwrap().header.iv, "a fresh IV");
        assert_eq!(open(&module, s, &v2).unwrap().plaintext.as_slice(), b"month one");
        // Retire v1: its envelopes name a key that is gone.
        let old = find_all(
            &module,
            s,
            &[
                Attribute::ulong(CKA_ECM_TIER, CKT_ECM_DEK),
                Attribute::ulong(CKA_ECM_KEY_VERSION, 1),
                Attribute::new(CKA_ECM_TENANT, b"acme".to_vec()),
            ],
        )
        .unwrap();
        module.destroy_object(s, old[0]).unwrap();
        match open(&module, s, &v1) {
            Err(e @ EnvelopeError::DekNotFound { .. }) => {
                assert!(e.to_string().contains("(dek-acme-v1) for tenant acme: was it retired?"), "{e}")
            }
            other => panic!("{other:?}"),
        }
        let _ = std::fs::remove_dir_all(dir);
    }
}
