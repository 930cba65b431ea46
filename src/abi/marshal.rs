//! Moving values across the C boundary, written once.
//!
//! Every function here that reads or writes caller memory is `unsafe`: its contract is the
//! PKCS#11 one, that a non-NULL pointer points to as many valid elements as its length says.
//! Each checks for NULL and converts lengths with `try_from` before making a slice.

use std::ffi::c_void;

use cryptoki_sys::*;

use crate::mechanism::aes_gcm::GcmMessageParams;
use crate::mechanism::{CtrParams, EcdhParams, GcmParams, Mechanism, MechanismParams, OaepParams, PssParams};
use crate::object::Attribute;
use crate::object::attribute::{decode_attribute_array, encode_attribute_array, is_attribute_array};
use crate::session::{Output, OutputBuffer};
use crate::{Error, Result};

/// The longest length a caller may state for each kind of argument, in one place (README,
/// "Hostile lengths"). A length beyond its cap cannot belong to a valid call; it is refused
/// with the function's code before the caller's memory is touched, since a length is all
/// that is known of a buffer: 0xffffffff over a 16-byte buffer would have the module read
/// past it, and a length beyond `isize::MAX` cannot even be made into a slice.
pub mod caps {
    /// Data one call passes in (`C_Encrypt`, `C_SignUpdate`, a message, its associated data,
    /// a random seed): what a multi-part operation may hold in all (64 MiB).
    pub const DATA: usize = crate::mechanism::secret_buffer::MAX_HELD_INPUT;
    /// A PIN of `C_InitPIN`, `C_SetPIN`, `C_InitToken` and `C_LoginUser`.
    pub const PIN: usize = crate::token::MAX_PIN_LEN;
    /// A principal's name (`C_LoginUser`); names are at most 64 bytes, this is a bound no
    /// valid name reaches.
    pub const NAME: usize = 256;
    /// `C_Login`'s PIN, which may carry a principal's name as `name:pin`.
    pub const LOGIN_PIN: usize = PIN + 1 + NAME;
    /// Entries of one template (`ulCount`); a template names each attribute at most once,
    /// and the standard defines far fewer.
    pub const TEMPLATE_COUNT: usize = 4096;
    /// One attribute's value (a certificate, a wrap template).
    pub const ATTRIBUTE: usize = 64 << 20;
    /// A mechanism's parameter block: the largest structure is a few hundred bytes; an IV or
    /// other opaque parameter is far shorter.
    pub const PARAMETER: usize = 64 << 10;
    /// A byte string a parameter structure points to (an IV, a GCM's associated data, an
    /// OAEP label, ECDH data).
    pub const PARAMETER_BYTES: usize = DATA;
    /// A wrapped key given to `C_UnwrapKey` (an RSA-16384 or ML-DSA-87 private key wrapped
    /// is some tens of KiB).
    pub const WRAPPED_KEY: usize = 1 << 20;
    /// An output buffer's stated capacity is not refused (a large buffer is valid), but no
    /// output is longer than this, so a larger capacity is read as this. It is also the most
    /// `C_GenerateRandom` fills in one call.
    pub const OUTPUT: usize = 2 * DATA;
}

/// Refuses a stated length beyond `cap` with `code`.
pub fn capped(len: CK_ULONG, cap: usize, code: Error) -> Result<CK_ULONG> {
    if to_usize(len).map_or(true, |n| n > cap) { Err(code) } else { Ok(len) }
}

pub fn to_usize(n: CK_ULONG) -> Result<usize> {
    usize::try_from(n).map_err(|_| Error::ArgumentsBad)
}

pub fn to_ulong(n: usize) -> CK_ULONG {
    // usize and CK_ULONG have the same width on every supported target.
    n as CK_ULONG
}

/// Borrows `len` bytes at `ptr`; NULL is allowed only with a zero length.
///
/// # Safety
/// A non-NULL `ptr` must point to `len` readable bytes that outlive `'a`.
/// A length beyond `caps::DATA` is `CKR_ARGUMENTS_BAD`; callers whose function has a code of
/// its own for it check with `capped` first (or call `bytes_in_capped`).
pub unsafe fn bytes_in<'a>(ptr: *const u8, len: CK_ULONG) -> Result<&'a [u8]> {
    // SAFETY: forwarded contract.
    unsafe { bytes_in_capped(ptr, len, caps::DATA, Error::ArgumentsBad) }
}

/// `bytes_in` with a cap of the caller's choosing, refused with `code`.
///
/// # Safety
/// As `bytes_in`.
pub unsafe fn bytes_in_capped<'a>(
    ptr: *const u8,
    len: CK_ULONG,
    cap: usize,
    code: Error,
) -> Result<&'a [u8]> {
    let len = to_usize(capped(len, cap, code)?)?;
    if ptr.is_null() {
        return if len == 0 { Ok(&[]) } else { Err(Error::ArgumentsBad) };
    }
    // SAFETY: non-NULL, and the caller guarantees `len` readable bytes.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// Borrows `len` writable bytes at `ptr`; NULL is allowed only with a zero length.
///
/// # Safety
/// A non-NULL `ptr` must point to `len` writable bytes, not aliased, that outlive `'a`.
/// A length beyond `caps::OUTPUT` is `CKR_ARGUMENTS_BAD` (callers pass a buffer's capacity
/// through `output_capacity` first).
pub unsafe fn bytes_out<'a>(ptr: *mut u8, len: CK_ULONG) -> Result<&'a mut [u8]> {
    let len = to_usize(capped(len, caps::OUTPUT, Error::ArgumentsBad)?)?;
    if ptr.is_null() {
        return if len == 0 { Ok(&mut []) } else { Err(Error::ArgumentsBad) };
    }
    // SAFETY: non-NULL, and the caller guarantees `len` writable bytes.
    Ok(unsafe { std::slice::from_raw_parts_mut(ptr, len) })
}

/// Borrows an array of `count` elements; a count beyond `caps::TEMPLATE_COUNT` is
/// `CKR_ARGUMENTS_BAD` (the count does not match any array a valid call passes).
///
/// # Safety
/// A non-NULL `ptr` must point to `count` valid elements that outlive `'a`.
pub unsafe fn array_in<'a, T>(ptr: *const T, count: CK_ULONG) -> Result<&'a [T]> {
    let count = to_usize(capped(count, caps::TEMPLATE_COUNT, Error::ArgumentsBad)?)?;
    if ptr.is_null() {
        return if count == 0 { Ok(&[]) } else { Err(Error::ArgumentsBad) };
    }
    // SAFETY: non-NULL, and the caller guarantees `count` valid elements.
    Ok(unsafe { std::slice::from_raw_parts(ptr, count) })
}

/// Whether two byte ranges of caller memory, `(start, len)`, share a byte (only the
/// addresses are compared; nothing is read).
pub fn overlaps(a: (*const u8, usize), b: (*const u8, usize)) -> bool {
    let (a0, b0) = (a.0 as usize, b.0 as usize);
    a.1 > 0 && b.1 > 0 && a0 < b0.saturating_add(b.1) && b0 < a0.saturating_add(a.1)
}

/// Writes one value through an out-pointer.
///
/// # Safety
/// A non-NULL `ptr` must be valid for a write of `T`.
pub unsafe fn write<T>(ptr: *mut T, value: T) -> Result<()> {
    if ptr.is_null() {
        return Err(Error::ArgumentsBad);
    }
    // SAFETY: non-NULL and valid for writes by the caller's contract.
    unsafe { ptr.write(value) };
    Ok(())
}

/// `C_CreateObject`, `C_CopyObject`: the caller's template is read (after the out-pointer is
/// checked, as [`new_handle_out`] does) and `make` turns it into the new object's handle.
///
/// # Safety
/// As `template_in` for `template` and `count`, `new_handle_out` for `out`.
pub unsafe fn template_to_new_handle(
    out: *mut CK_ULONG,
    template: *const CK_ATTRIBUTE,
    count: CK_ULONG,
    make: impl FnOnce(&[Attribute]) -> Result<CK_ULONG>,
) -> Result<()> {
    // SAFETY: forwarded contract of the caller.
    unsafe { new_handle_out(out, || make(&template_in(template, count)?)) }
}

/// `C_GenerateKey`, `C_DeriveKey`: as [`keyed_blob_to_new_handle`], with no blob.
///
/// # Safety
/// As `mechanism_in` for `mechanism`, `template_in` for `template` and `count`,
/// `new_handle_out` for `out`.
pub unsafe fn keyed_template_to_new_handle(
    out: *mut CK_ULONG,
    mechanism: *const CK_MECHANISM,
    template: *const CK_ATTRIBUTE,
    count: CK_ULONG,
    make: impl FnOnce(&Mechanism, &[Attribute]) -> Result<CK_ULONG>,
) -> Result<()> {
    // SAFETY: forwarded contract of the caller.
    unsafe { keyed_blob_to_new_handle(out, mechanism, || Ok(&[]), template, count, |m, _, t| make(m, t)) }
}

/// The calls that make a key from a mechanism, a caller's blob (`C_UnwrapKey`'s wrapped key,
/// `C_DecapsulateKey`'s ciphertext) and a template: after the out-pointer is checked, the
/// mechanism, the blob (`blob` reads it) and the template are read in that order, all before
/// a NULL mechanism is refused; `make` turns them into the new key's handle.
///
/// # Safety
/// As `mechanism_in` for `mechanism`, `template_in` for `template` and `count`,
/// `new_handle_out` for `out`.
pub unsafe fn keyed_blob_to_new_handle<'a>(
    out: *mut CK_ULONG,
    mechanism: *const CK_MECHANISM,
    blob: impl FnOnce() -> Result<&'a [u8]>,
    template: *const CK_ATTRIBUTE,
    count: CK_ULONG,
    make: impl FnOnce(&Mechanism, &'a [u8], &[Attribute]) -> Result<CK_ULONG>,
) -> Result<()> {
    let read = || {
        // SAFETY: forwarded contract of the caller.
        let (mechanism, blob, template) =
            unsafe { (mechanism_in(mechanism)?, blob()?, template_in(template, count)?) };
        make(&mechanism.ok_or(Error::ArgumentsBad)?, blob, &template)
    };
    // SAFETY: forwarded contract of the caller.
    unsafe { new_handle_out(out, read) }
}

/// The calls that make one object and hand back its handle (`C_CreateObject`,
/// `C_GenerateKey`, ...): a NULL out-pointer is `CKR_ARGUMENTS_BAD` before anything is read
/// or made; otherwise the handle `make` returns is written through it.
///
/// # Safety
/// A non-NULL `out` must be valid for a write of a handle.
pub unsafe fn new_handle_out(out: *mut CK_ULONG, make: impl FnOnce() -> Result<CK_ULONG>) -> Result<()> {
    if out.is_null() {
        return Err(Error::ArgumentsBad);
    }
    let handle = make()?;
    // SAFETY: checked non-NULL; writable by the caller's contract.
    unsafe { write(out, handle) }
}

/// Copies a template in, owning every value. An attribute-array value (`CKA_WRAP_TEMPLATE`,
/// ...) is itself a template; it is copied in and kept encoded as one value. Arrays do not
/// nest further.
///
/// # Safety
/// `ptr` must point to `count` attributes whose non-NULL `pValue`s point to `ulValueLen`
/// readable bytes (for an array attribute, to `ulValueLen / sizeof(CK_ATTRIBUTE)`
/// attributes under the same contract).
pub unsafe fn template_in(ptr: *const CK_ATTRIBUTE, count: CK_ULONG) -> Result<Vec<Attribute>> {
    // SAFETY: forwarded contract.
    unsafe { template_in_depth(ptr, count, 0) }
}

/// # Safety
/// As `template_in`.
unsafe fn template_in_depth(ptr: *const CK_ATTRIBUTE, count: CK_ULONG, depth: u8) -> Result<Vec<Attribute>> {
    // SAFETY: forwarded contract.
    let entries = unsafe { array_in(ptr, count)? };
    entries
        .iter()
        .map(|a| {
            capped(a.ulValueLen, caps::ATTRIBUTE, Error::AttributeValueInvalid)?;
            if is_attribute_array(a.type_) {
                let size = std::mem::size_of::<CK_ATTRIBUTE>() as CK_ULONG;
                if depth > 0 || a.ulValueLen % size != 0 {
                    return Err(Error::AttributeValueInvalid);
                }
                // SAFETY: forwarded contract for the nested template.
                let nested =
                    unsafe { template_in_depth(a.pValue as *const CK_ATTRIBUTE, a.ulValueLen / size, 1)? };
                return Ok(Attribute::new(a.type_, encode_attribute_array(&nested)));
            }
            // SAFETY: forwarded contract for each entry's value.
            let value = unsafe {
                bytes_in_capped(
                    a.pValue as *const u8,
                    a.ulValueLen,
                    caps::ATTRIBUTE,
                    Error::AttributeValueInvalid,
                )?
            };
            Ok(Attribute::new(a.type_, value.to_vec()))
        })
        .collect()
}

/// Delivers one attribute value into a caller's `CK_ATTRIBUTE` by the rules of
/// `C_GetAttributeValue`: NULL `pValue` asks for the length; a buffer too small gets
/// `CK_UNAVAILABLE_INFORMATION`. An attribute array is delivered entry by entry into the
/// caller's nested array. Returns whether the value fitted.
///
/// # Safety
/// A non-NULL `entry.pValue` must point to `entry.ulValueLen` writable bytes (for an array,
/// to that many bytes of `CK_ATTRIBUTE`s whose non-NULL `pValue`s are likewise writable).
pub unsafe fn attribute_value_out(entry: &mut CK_ATTRIBUTE, value: &[u8]) -> Result<bool> {
    if is_attribute_array(entry.type_) {
        let nested =
            decode_attribute_array(value).ok_or(Error::Internal("stored attribute array is malformed"))?;
        let size = std::mem::size_of::<CK_ATTRIBUTE>();
        let needed = nested.len() * size;
        if entry.pValue.is_null() {
            entry.ulValueLen = to_ulong(needed);
            return Ok(true);
        }
        if to_usize(entry.ulValueLen)? < needed {
            entry.ulValueLen = CK_UNAVAILABLE_INFORMATION;
            return Ok(false);
        }
        // SAFETY: the caller's array holds at least `nested.len()` writable entries.
        let out = unsafe { std::slice::from_raw_parts_mut(entry.pValue as *mut CK_ATTRIBUTE, nested.len()) };
        let mut all_fit = true;
        for (slot, a) in out.iter_mut().zip(&nested) {
            slot.type_ = a.kind;
            // SAFETY: forwarded contract for the nested entry.
            all_fit &= unsafe { attribute_value_out(slot, &a.value)? };
        }
        entry.ulValueLen = to_ulong(needed);
        return Ok(all_fit);
    }
    if entry.pValue.is_null() {
        entry.ulValueLen = to_ulong(value.len());
        Ok(true)
    } else if to_usize(entry.ulValueLen)? >= value.len() {
        // SAFETY: the caller's buffer holds `ulValueLen >= value.len()` bytes.
        unsafe { std::ptr::copy_nonoverlapping(value.as_ptr(), entry.pValue as *mut u8, value.len()) };
        entry.ulValueLen = to_ulong(value.len());
        Ok(true)
    } else {
        entry.ulValueLen = CK_UNAVAILABLE_INFORMATION;
        Ok(false)
    }
}

/// Reads a mechanism's parameter structure, which must be exactly a `T`.
///
/// # Safety
/// A non-NULL `m.pParameter` must point to `m.ulParameterLen` readable bytes.
pub(super) unsafe fn parameter<T: Copy>(m: &CK_MECHANISM) -> Result<T> {
    if m.pParameter.is_null() || to_usize(m.ulParameterLen).ok() != Some(std::mem::size_of::<T>()) {
        return Err(Error::MechanismParamInvalid);
    }
    // SAFETY: non-NULL and exactly the size of T; read unaligned since the caller's buffer
    // may be a byte array.
    Ok(unsafe { (m.pParameter as *const T).read_unaligned() })
}

/// Bytes a parameter structure points to; a bad pointer/length pair is a bad parameter.
///
/// # Safety
/// As `bytes_in`.
pub(super) unsafe fn parameter_bytes(ptr: *const u8, len: CK_ULONG) -> Result<Vec<u8>> {
    // SAFETY: forwarded contract.
    unsafe { bytes_in_capped(ptr, len, caps::PARAMETER_BYTES, Error::MechanismParamInvalid) }
        .map(<[u8]>::to_vec)
        .map_err(|_| Error::MechanismParamInvalid)
}

/// Copies a mechanism and its parameter in, decoding the parameter structures this module
/// understands; `None` for a NULL pointer.
///
/// # Safety
/// A non-NULL `ptr` must point to a `CK_MECHANISM` whose non-NULL `pParameter` points to
/// `ulParameterLen` readable bytes, and whose inner pointers are valid for their lengths.
pub unsafe fn mechanism_in(ptr: *const CK_MECHANISM) -> Result<Option<Mechanism>> {
    if ptr.is_null() {
        return Ok(None);
    }
    // SAFETY: non-NULL, valid by contract.
    let m = unsafe { &*ptr };
    capped(m.ulParameterLen, caps::PARAMETER, Error::MechanismParamInvalid)?;
    let no_parameter = m.pParameter.is_null() || m.ulParameterLen == 0;
    // SAFETY: the parameter and the pointers inside it are the caller's, valid for their
    // stated lengths by contract; `parameter` checks the structure's size.
    let params = unsafe {
        match m.mechanism {
            // Message-based GCM takes no parameter at init; per-message ones come later.
            CKM_AES_GCM if no_parameter => MechanismParams::None,
            CKM_AES_GCM => {
                let p: CK_GCM_PARAMS = parameter(m)?;
                MechanismParams::Gcm(GcmParams {
                    iv: parameter_bytes(p.pIv, p.ulIvLen)?,
                    aad: parameter_bytes(p.pAAD, p.ulAADLen)?,
                    tag_bits: p.ulTagBits,
                })
            }
            CKM_AES_CTR => {
                let p: CK_AES_CTR_PARAMS = parameter(m)?;
                MechanismParams::Ctr(CtrParams { counter_bits: p.ulCounterBits, counter_block: p.cb })
            }
            CKM_RSA_PKCS_PSS
            | CKM_SHA1_RSA_PKCS_PSS
            | CKM_SHA224_RSA_PKCS_PSS
            | CKM_SHA256_RSA_PKCS_PSS
            | CKM_SHA384_RSA_PKCS_PSS
            | CKM_SHA512_RSA_PKCS_PSS => {
                let p: CK_RSA_PKCS_PSS_PARAMS = parameter(m)?;
                MechanismParams::Pss(PssParams { hash: p.hashAlg, mgf: p.mgf, salt_len: p.sLen })
            }
            CKM_RSA_PKCS_OAEP => {
                let p: CK_RSA_PKCS_OAEP_PARAMS = parameter(m)?;
                let label = match p.source {
                    CKZ_DATA_SPECIFIED => parameter_bytes(p.pSourceData as *const u8, p.ulSourceDataLen)?,
                    0 if p.ulSourceDataLen == 0 => Vec::new(),
                    _ => return Err(Error::MechanismParamInvalid),
                };
                MechanismParams::Oaep(OaepParams { hash: p.hashAlg, mgf: p.mgf, label })
            }
            CKM_ECDH1_DERIVE => {
                let p: CK_ECDH1_DERIVE_PARAMS = parameter(m)?;
                MechanismParams::Ecdh(EcdhParams {
                    kdf: p.kdf,
                    shared_data: parameter_bytes(p.pSharedData, p.ulSharedDataLen)?,
                    public_data: parameter_bytes(p.pPublicData, p.ulPublicDataLen)?,
                })
            }
            // CK_SIGN_ADDITIONAL_CONTEXT (PKCS#11 3.2); without one, CKM_ML_DSA signs with no context.
            CKM_ML_DSA
            | CKM_HASH_ML_DSA_SHA224
            | CKM_HASH_ML_DSA_SHA256
            | CKM_HASH_ML_DSA_SHA384
            | CKM_HASH_ML_DSA_SHA512
            | CKM_HASH_ML_DSA_SHA3_224
            | CKM_HASH_ML_DSA_SHA3_256
            | CKM_HASH_ML_DSA_SHA3_384
            | CKM_HASH_ML_DSA_SHA3_512
            | CKM_HASH_ML_DSA_SHAKE128
            | CKM_HASH_ML_DSA_SHAKE256
                if !no_parameter =>
            {
                let p: CK_SIGN_ADDITIONAL_CONTEXT = parameter(m)?;
                MechanismParams::SignContext(crate::mechanism::ml_dsa::SignContext {
                    hedge: p.hedgeVariant,
                    context: parameter_bytes(p.pContext, p.ulContextLen)?,
                    hash: None,
                })
            }
            // CK_HASH_SIGN_ADDITIONAL_CONTEXT: the context and the hash the data was made with.
            CKM_HASH_ML_DSA if !no_parameter => {
                let p: CK_HASH_SIGN_ADDITIONAL_CONTEXT = parameter(m)?;
                MechanismParams::SignContext(crate::mechanism::ml_dsa::SignContext {
                    hedge: p.hedgeVariant,
                    context: parameter_bytes(p.pContext, p.ulContextLen)?,
                    hash: Some(p.hash),
                })
            }
            // CK_EDDSA_PARAMS (3.0): Ed25519ctx or Ed25519ph; without one, CKM_EDDSA is pure
            // Ed25519. A phFlag that is no CK_BBOOL value is a bad parameter.
            CKM_EDDSA if !no_parameter => {
                let p: CK_EDDSA_PARAMS = parameter(m)?;
                let prehash = match p.phFlag {
                    CK_FALSE => false,
                    CK_TRUE => true,
                    _ => return Err(Error::MechanismParamInvalid),
                };
                let context = parameter_bytes(p.pContextData, p.ulContextDataLen)?;
                MechanismParams::Eddsa(crate::mechanism::eddsa::EddsaParams { prehash, context })
            }
            // The secret-key derivations' parameters (src/abi/derive_params.rs).
            _ if !no_parameter && let Some(p) = super::derive_params::derive_params_in(m)? => p,
            // An IV, or a key wrap's alternative initial value.
            CKM_AES_CBC
            | CKM_AES_CBC_PAD
            | CKM_AES_KEY_WRAP
            | CKM_AES_KEY_WRAP_PAD
            | CKM_AES_KEY_WRAP_KWP
            | CKM_AES_KEY_WRAP_PKCS7
                if !no_parameter =>
            {
                MechanismParams::Iv(parameter_bytes(m.pParameter as *const u8, m.ulParameterLen)?)
            }
            _ if no_parameter => MechanismParams::None,
            _ => MechanismParams::Opaque(parameter_bytes(m.pParameter as *const u8, m.ulParameterLen)?),
        }
    };
    Ok(Some(Mechanism { kind: m.mechanism, params }))
}

/// Copies in the mechanism of `C_MessageEncryptInit`/`C_MessageDecryptInit`; `None` for a
/// NULL pointer. In PKCS#11 3.0 each message brings its own `CK_GCM_MESSAGE_PARAMS`, and the
/// init call's parameter has no role: clients pass NULL, or the `CK_GCM_MESSAGE_PARAMS` they
/// will reuse for the messages (the `cryptoki` crate does). A parameter of that structure's
/// size is therefore accepted without being read (its pointers are the caller's per-message
/// buffers, and a `CK_GCM_PARAMS` has the same size but other pointers); any other size is
/// `CKR_MECHANISM_PARAM_INVALID`.
///
/// # Safety
/// A non-NULL `ptr` must point to a `CK_MECHANISM`.
pub unsafe fn message_mechanism_in(ptr: *const CK_MECHANISM) -> Result<Option<Mechanism>> {
    if ptr.is_null() {
        return Ok(None);
    }
    // SAFETY: non-NULL, valid by contract; only the structure itself is read.
    let m = unsafe { &*ptr };
    let no_parameter = m.pParameter.is_null() || m.ulParameterLen == 0;
    if !no_parameter && to_usize(m.ulParameterLen).ok() != Some(std::mem::size_of::<CK_GCM_MESSAGE_PARAMS>())
    {
        return Err(Error::MechanismParamInvalid);
    }
    Ok(Some(Mechanism { kind: m.mechanism, params: MechanismParams::None }))
}

/// Reads a `CK_GCM_MESSAGE_PARAMS` (for `C_EncryptMessage`/`C_DecryptMessage`), returning it
/// decoded and as the caller laid it out (to write the IV and the tag back).
///
/// # Safety
/// A non-NULL `ptr` must point to `len` readable bytes; the IV pointer inside must be valid
/// for its length.
pub unsafe fn gcm_message_params_in(
    ptr: *const c_void,
    len: CK_ULONG,
) -> Result<(GcmMessageParams, CK_GCM_MESSAGE_PARAMS)> {
    if ptr.is_null() || to_usize(len).ok() != Some(std::mem::size_of::<CK_GCM_MESSAGE_PARAMS>()) {
        return Err(Error::MechanismParamInvalid);
    }
    // SAFETY: non-NULL and exactly the structure's size; read unaligned.
    let raw = unsafe { (ptr as *const CK_GCM_MESSAGE_PARAMS).read_unaligned() };
    // SAFETY: the IV pointer is the caller's, valid for its length.
    let iv = unsafe { parameter_bytes(raw.pIv, raw.ulIvLen)? };
    let params = GcmMessageParams {
        iv,
        fixed_bits: raw.ulIvFixedBits,
        generator: raw.ivGenerator,
        tag_bits: raw.ulTagBits,
    };
    Ok((params, raw))
}

/// Reads the caller's output buffer: NULL means a length query.
///
/// # Safety
/// `len` must be NULL or valid for reads.
pub unsafe fn output_buffer(out: *mut u8, len: *mut CK_ULONG) -> Result<OutputBuffer> {
    if len.is_null() {
        return Err(Error::ArgumentsBad);
    }
    if out.is_null() {
        return Ok(OutputBuffer::Query);
    }
    // SAFETY: non-NULL, valid by contract.
    Ok(OutputBuffer::Capacity(output_capacity(unsafe { *len })))
}

/// The room a caller's output buffer states, read as at most `caps::OUTPUT` (no output is
/// longer, and a slice is never made over more than the buffer could need).
pub fn output_capacity(len: CK_ULONG) -> usize {
    to_usize(len).map_or(caps::OUTPUT, |n| n.min(caps::OUTPUT))
}

/// Delivers an operation's result by the output-buffer protocol.
///
/// # Safety
/// `len` must be valid for writes; a non-NULL `out` must hold `*len` writable bytes.
pub unsafe fn output_out(result: Result<Output>, out: *mut u8, len: *mut CK_ULONG) -> Result<()> {
    match result {
        Ok(Output::Length(n)) => {
            // SAFETY: forwarded contract.
            unsafe { write(len, to_ulong(n)) }
        }
        Ok(Output::Bytes(bytes)) => {
            if !bytes.is_empty() {
                // SAFETY: output_step only produces bytes after checking they fit the
                // capacity read from `*len`, and `out` is non-NULL then.
                unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), out, bytes.len()) };
            }
            let n = bytes.len();
            crate::mechanism::secret_buffer::discard(bytes);
            // SAFETY: forwarded contract.
            unsafe { write(len, to_ulong(n)) }
        }
        Err(Error::BufferTooSmall { needed }) => {
            // SAFETY: forwarded contract.
            unsafe { write(len, to_ulong(needed))? };
            Err(Error::BufferTooSmall { needed })
        }
        Err(e) => Err(e),
    }
}

/// Delivers a list (slot ids, mechanisms, interfaces) by the output-buffer protocol.
///
/// # Safety
/// `count` must be NULL or valid for reads and writes; a non-NULL `out` must hold `*count`
/// writable elements.
pub unsafe fn list_out<T: Copy>(list: &[T], out: *mut T, count: *mut CK_ULONG) -> Result<()> {
    if count.is_null() {
        return Err(Error::ArgumentsBad);
    }
    if !out.is_null() {
        // SAFETY: non-NULL, valid by contract.
        let capacity = to_usize(unsafe { *count })?;
        if capacity < list.len() {
            // SAFETY: as above.
            unsafe { *count = to_ulong(list.len()) };
            return Err(Error::BufferTooSmall { needed: list.len() });
        }
        // SAFETY: `out` holds at least `capacity >= list.len()` elements.
        unsafe { std::ptr::copy_nonoverlapping(list.as_ptr(), out, list.len()) };
    }
    // SAFETY: non-NULL, valid by contract.
    unsafe { *count = to_ulong(list.len()) };
    Ok(())
}

/// A fixed-width, blank-padded PKCS#11 string field.
pub fn padded<const N: usize>(text: &[u8]) -> [u8; N] {
    let mut field = [b' '; N];
    let n = text.len().min(N);
    field[..n].copy_from_slice(&text[..n]);
    field
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::c_void;

    #[test]
    fn null_pointers_are_allowed_only_with_zero_length() {
        // SAFETY: NULL pointers are never dereferenced.
        unsafe {
            assert_eq!(bytes_in(std::ptr::null(), 0).unwrap(), &[] as &[u8]);
            assert_eq!(bytes_in(std::ptr::null(), 3), Err(Error::ArgumentsBad));
            assert!(template_in(std::ptr::null(), 0).unwrap().is_empty());
            assert_eq!(template_in(std::ptr::null(), 1).unwrap_err(), Error::ArgumentsBad);
            assert_eq!(output_buffer(std::ptr::null_mut(), std::ptr::null_mut()), Err(Error::ArgumentsBad));
        }
    }

    #[test]
    fn lengths_beyond_their_cap_are_refused_from_the_length_alone() {
        assert_eq!(capped(16, 16, Error::PinLenRange), Ok(16));
        assert_eq!(capped(17, 16, Error::PinLenRange), Err(Error::PinLenRange));
        assert_eq!(capped(CK_ULONG::MAX, caps::DATA, Error::DataLenRange), Err(Error::DataLenRange));
        let p = 0x1000 as *const u8; // never mapped: a read would fault
        // SAFETY: each length is beyond its cap, so nothing at `p` is read or borrowed.
        unsafe {
            assert_eq!(bytes_in(p, 0xffff_ffff), Err(Error::ArgumentsBad));
            assert_eq!(bytes_in_capped(p, 256, caps::PIN, Error::PinLenRange), Err(Error::PinLenRange));
            assert_eq!(bytes_out(p as *mut u8, CK_ULONG::MAX), Err(Error::ArgumentsBad));
            assert_eq!(array_in(p as *const CK_ATTRIBUTE, 0xffff_ffff).unwrap_err(), Error::ArgumentsBad);
        }
        // A large output buffer is valid: its room is read as at most the cap, not refused.
        assert_eq!(output_capacity(CK_ULONG::MAX), caps::OUTPUT);
        assert_eq!(output_capacity(4096), 4096);
    }

    #[test]
    fn list_out_follows_the_buffer_protocol() {
        let list = [7, 8, 9];
        let mut count: CK_ULONG = 0;
        let mut out = [0 as CK_ULONG; 3];
        // SAFETY: all pointers are to live locals of the stated sizes.
        unsafe {
            list_out(&list, std::ptr::null_mut(), &mut count).unwrap();
            assert_eq!(count, 3);
            count = 2;
            assert_eq!(
                list_out(&list, out.as_mut_ptr(), &mut count),
                Err(Error::BufferTooSmall { needed: 3 })
            );
            assert_eq!((count, out), (3, [0, 0, 0]));
            list_out(&list, out.as_mut_ptr(), &mut count).unwrap();
            assert_eq!(out, list);
        }
    }

    #[test]
    fn gcm_parameters_of_the_wrong_size_are_refused() {
        let mut params = [0u8; 8];
        let m = CK_MECHANISM {
            mechanism: CKM_AES_GCM,
            pParameter: params.as_mut_ptr() as *mut c_void,
            ulParameterLen: 8,
        };
        // SAFETY: the mechanism points to a live local buffer of the stated size.
        assert_eq!(unsafe { mechanism_in(&m) }, Err(Error::MechanismParamInvalid));
    }

    #[test]
    fn overlapping_ranges() {
        let buf = [0u8; 16];
        let p = buf.as_ptr();
        assert!(overlaps((p, 8), (p, 8)));
        assert!(overlaps((p, 8), (p.wrapping_add(7), 8)));
        assert!(!overlaps((p, 8), (p.wrapping_add(8), 8)));
        assert!(!overlaps((p, 0), (p, 8)), "an empty range shares nothing");
        assert!(!overlaps((std::ptr::null(), 0), (p, 8)));
    }

    #[test]
    fn padding() {
        assert_eq!(&padded::<4>(b"ab"), b"ab  ");
        assert_eq!(&padded::<2>(b"abc"), b"ab");
    }
}
