//! Loading a module, giving it a fresh token, and the few calls `cryptoki` cannot express
//! (`CKM_AES_KEY_WRAP_KWP` is not among its mechanisms), made through `cryptoki_sys` on the
//! same library.
#![allow(unsafe_code)]

use std::path::Path;

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error, Rv, RvError};
use cryptoki::object::{Attribute, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use cryptoki_sys::{
    CK_ATTRIBUTE, CK_FUNCTION_LIST, CK_MECHANISM, CK_MECHANISM_TYPE, CK_RV, CK_ULONG, CKR_OK,
};

pub const SO_PIN: &str = "bench-so-1234";
pub const USER_PIN: &str = "bench-user-1234";
pub const TOKEN_LABEL: &str = "p11bench";

/// What a column measures.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Engine {
    Ecm,
    SoftHsm,
    /// A module given with `--module`.
    Other,
    /// aws-lc-rs called in-process: the ceiling.
    Direct,
}

impl Engine {
    pub fn as_str(self) -> &'static str {
        match self {
            Engine::Ecm => "ecm",
            Engine::SoftHsm => "softhsm",
            Engine::Other => "other",
            Engine::Direct => "direct",
        }
    }

    pub fn parse(s: &str) -> Result<Self, String> {
        [Engine::Ecm, Engine::SoftHsm, Engine::Other, Engine::Direct]
            .into_iter()
            .find(|e| e.as_str() == s)
            .ok_or(format!("unknown engine {s:?}"))
    }
}

/// The name of a PKCS#11 return code: `RvError::MechanismInvalid` → `CKR_MECHANISM_INVALID`.
pub fn rv_name(rv: RvError) -> String {
    let camel = format!("{rv:?}");
    if camel.contains('(') {
        return camel;
    }
    let mut name = String::from("CKR");
    for c in camel.chars() {
        if c.is_ascii_uppercase() {
            name.push('_');
        }
        name.push(c.to_ascii_uppercase());
    }
    name
}

/// A `cryptoki` error as the return code's name (or the error's text if it is not a code).
pub fn ckr(e: Error) -> String {
    match e {
        Error::Pkcs11(rv, _) => rv_name(rv),
        other => other.to_string(),
    }
}

/// A raw return code as its name.
pub fn raw_ckr(rv: CK_RV) -> String {
    match Rv::from(rv) {
        Rv::Ok => "CKR_OK".into(),
        Rv::Error(e) => rv_name(e),
    }
}

/// Loads and initializes a module (OS locking), timing nothing.
pub fn load(path: &Path) -> Result<Pkcs11, String> {
    let p11 = Pkcs11::new(path).map_err(|e| format!("loading {}: {e}", path.display()))?;
    p11.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)).map_err(ckr)?;
    Ok(p11)
}

/// `manufacturer / description / library version` from `C_GetInfo`.
pub fn library_info(p11: &Pkcs11) -> (String, String, String) {
    match p11.get_library_info() {
        Ok(i) => (
            i.manufacturer_id().trim().to_string(),
            i.library_description().trim().to_string(),
            i.library_version().to_string(),
        ),
        Err(e) => (ckr(e), String::new(), String::new()),
    }
}

/// Initializes a fresh token with the bench's SO and user PINs on the first slot whose token
/// is not initialized (never re-initializing someone's token), and returns its slot.
pub fn fresh_token(p11: &Pkcs11) -> Result<Slot, String> {
    let mut free = None;
    for slot in p11.get_slots_with_token().map_err(ckr)? {
        if !p11.get_token_info(slot).map_err(ckr)?.token_initialized() {
            free = Some(slot);
            break;
        }
    }
    let free = free.ok_or("no slot with an uninitialized token (the bench never re-initializes one)")?;
    p11.init_token(free, &AuthPin::new(SO_PIN.into()), TOKEN_LABEL).map_err(ckr)?;
    let slot = our_slot(p11)?;
    let so = p11.open_rw_session(slot).map_err(ckr)?;
    so.login(UserType::So, Some(&AuthPin::new(SO_PIN.into()))).map_err(ckr)?;
    so.init_pin(&AuthPin::new(USER_PIN.into())).map_err(ckr)?;
    so.logout().map_err(ckr)?;
    Ok(slot)
}

/// The slot of the bench's token. SoftHSMv2 moves a token to a new slot id when it is
/// initialized, so the token is found by its label.
pub fn our_slot(p11: &Pkcs11) -> Result<Slot, String> {
    for slot in p11.get_slots_with_token().map_err(ckr)? {
        let info = p11.get_token_info(slot).map_err(ckr)?;
        if info.token_initialized() && info.label().trim() == TOKEN_LABEL {
            return Ok(slot);
        }
    }
    Err(format!("token {TOKEN_LABEL:?} not found after C_InitToken"))
}

/// A read/write session on `slot` with the user logged in.
pub fn user_session(p11: &Pkcs11, slot: Slot) -> Result<Session, String> {
    let s = p11.open_rw_session(slot).map_err(ckr)?;
    s.login(UserType::User, Some(&AuthPin::new(USER_PIN.into()))).map_err(ckr)?;
    Ok(s)
}

/// This process's peak resident set (`VmHWM`), in MiB.
pub fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
            line.split_whitespace().nth(1)?.parse::<f64>().ok()
        })
        .map_or(f64::NAN, |kib| kib / 1024.0)
}

/// The library's C ABI, loaded beside `cryptoki` from the same path, so the same (already
/// initialized) module instance with the same sessions and objects; called through its
/// function list, as a module that exports only `C_GetFunctionList` (p11-kit's client) has it.
pub struct Raw {
    _library: cryptoki_sys::Pkcs11,
    list: *const CK_FUNCTION_LIST,
    /// The list is not `cryptoki`'s instance: p11-kit's client makes a new instance, with its
    /// own connection to the server, at every `C_GetFunctionList`/`C_GetInterface`. Such a
    /// list is initialized here, so that a call through it answers what the client does with
    /// the mechanism; the row's session handles are not in it, which its errors say.
    separate: bool,
}

impl Raw {
    pub fn load(path: &Path) -> Result<Self, String> {
        // SAFETY: the library is already loaded (and initialized) through `cryptoki`; loading
        // the same path again only takes another reference to it.
        let library = unsafe { cryptoki_sys::Pkcs11::new(path) }.map_err(|e| e.to_string())?;
        let mut list = std::ptr::null_mut();
        // SAFETY: an out-pointer to a local; the module fills it with its static list.
        check(unsafe { library.C_GetFunctionList(&mut list) })?;
        if list.is_null() {
            return Err("C_GetFunctionList gave no list".into());
        }
        let mut raw = Raw { _library: library, list, separate: false };
        let get_info = raw.functions().C_GetInfo.ok_or("no C_GetInfo in the function list")?;
        let mut info = std::mem::MaybeUninit::<cryptoki_sys::CK_INFO>::uninit();
        // SAFETY: an out-pointer to a local of the type the module fills.
        if unsafe { get_info(info.as_mut_ptr()) } == cryptoki_sys::CKR_CRYPTOKI_NOT_INITIALIZED {
            let initialize = raw.functions().C_Initialize.ok_or("no C_Initialize in the function list")?;
            let mut args = cryptoki_sys::CK_C_INITIALIZE_ARGS {
                CreateMutex: None,
                DestroyMutex: None,
                LockMutex: None,
                UnlockMutex: None,
                flags: cryptoki_sys::CKF_OS_LOCKING_OK,
                pReserved: std::ptr::null_mut(),
            };
            // SAFETY: initialization arguments live for the call; the module copies them.
            check(unsafe { initialize((&mut args as *mut cryptoki_sys::CK_C_INITIALIZE_ARGS).cast()) })?;
            raw.separate = true;
        }
        Ok(raw)
    }

    /// A failed call's code, saying so when it went through a separate instance.
    fn failed(&self, rv: CK_RV) -> Result<(), String> {
        match check(rv) {
            Err(e) if self.separate => Err(format!(
                "{e}, through a separate instance of the client library (it makes one per \
                 C_GetFunctionList, and cryptoki cannot name this mechanism)"
            )),
            other => other,
        }
    }

    fn functions(&self) -> &CK_FUNCTION_LIST {
        // SAFETY: checked non-NULL at load; the list lives as long as the library, held here.
        unsafe { &*self.list }
    }

    /// `C_WrapKey` as `cryptoki` makes it: a length query, then the call.
    pub fn wrap(
        &self,
        session: &Session,
        mechanism: CK_MECHANISM_TYPE,
        wrapping_key: ObjectHandle,
        key: ObjectHandle,
    ) -> Result<Vec<u8>, String> {
        let mut mech = no_param(mechanism);
        let mut len: CK_ULONG = 0;
        let (h, wk, k) = (session.handle(), wrapping_key.handle(), key.handle());
        let wrap_key = self.functions().C_WrapKey.ok_or("no C_WrapKey in the function list")?;
        // SAFETY: a parameterless mechanism and a live out-length; NULL output asks the length.
        let rv = unsafe { wrap_key(h, &mut mech, wk, k, std::ptr::null_mut(), &mut len) };
        self.failed(rv)?;
        let mut out = vec![0u8; len as usize];
        // SAFETY: `out` holds `len` bytes.
        let rv = unsafe { wrap_key(h, &mut mech, wk, k, out.as_mut_ptr(), &mut len) };
        self.failed(rv)?;
        out.truncate(len as usize);
        Ok(out)
    }

    /// `C_UnwrapKey` with `template`; returns the new object.
    pub fn unwrap(
        &self,
        session: &Session,
        mechanism: CK_MECHANISM_TYPE,
        unwrapping_key: ObjectHandle,
        wrapped: &[u8],
        template: &[Attribute],
    ) -> Result<ObjectHandle, String> {
        let mut mech = no_param(mechanism);
        let mut attrs: Vec<CK_ATTRIBUTE> = template.iter().map(Into::into).collect();
        let mut handle = 0;
        let unwrap_key = self.functions().C_UnwrapKey.ok_or("no C_UnwrapKey in the function list")?;
        // SAFETY: `wrapped` and the template's values (borrowed from `template`) are live for
        // the call; the module only reads them. Out-pointer to a local.
        let rv = unsafe {
            unwrap_key(
                session.handle(),
                &mut mech,
                unwrapping_key.handle(),
                wrapped.as_ptr() as *mut u8,
                wrapped.len() as CK_ULONG,
                attrs.as_mut_ptr(),
                attrs.len() as CK_ULONG,
                &mut handle,
            )
        };
        self.failed(rv)?;
        // SAFETY: a handle the module has just returned for the new object.
        Ok(unsafe { ObjectHandle::new_from_raw(handle) })
    }
}

impl Drop for Raw {
    fn drop(&mut self) {
        if self.separate
            && let Some(finalize) = self.functions().C_Finalize
        {
            // SAFETY: the instance this `Raw` initialized; NULL is the argument the call takes.
            unsafe { finalize(std::ptr::null_mut()) };
        }
    }
}

fn no_param(mechanism: CK_MECHANISM_TYPE) -> CK_MECHANISM {
    CK_MECHANISM { mechanism, pParameter: std::ptr::null_mut(), ulParameterLen: 0 }
}

fn check(rv: CK_RV) -> Result<(), String> {
    if rv == CKR_OK { Ok(()) } else { Err(raw_ckr(rv)) }
}
