//! The child side of the fuzz run: one token, one seed, a sequence of random calls through
//! the raw function list. Before each call it prints `CALL` with the arguments (so that the
//! parent can name the call that crashed or hung), after it the code, and `BAD` for a code
//! the standard does not allow that function.

use std::ptr::null_mut;

use cryptoki_sys::*;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

mod ops;

use super::allow::{Allow, Kind};
use super::args::{self, Arena};
use super::rv_table;
use crate::common::raw::*;
use crate::common::{SO_PIN, USER_PIN};

pub struct Driver {
    p: Pkcs11,
    rng: StdRng,
    slot: CK_SLOT_ID,
    /// Sessions believed open, and ones closed since (kept to try stale handles).
    sessions: Vec<CK_SESSION_HANDLE>,
    stale: Vec<CK_SESSION_HANDLE>,
    objects: Vec<CK_OBJECT_HANDLE>,
    initialized: bool,
    allow: Vec<Allow>,
    step: usize,
    pub bad: usize,
}

/// Every function the driver calls, with its weight.
const FUNCTIONS: &[(&str, u32)] = &[
    ("C_Initialize", 1),
    ("C_Finalize", 1),
    ("C_GetInfo", 1),
    ("C_GetSlotList", 1),
    ("C_GetSlotInfo", 1),
    ("C_GetTokenInfo", 1),
    ("C_GetMechanismList", 1),
    ("C_GetMechanismInfo", 1),
    ("C_InitToken", 1),
    ("C_InitPIN", 1),
    ("C_SetPIN", 1),
    ("C_OpenSession", 4),
    ("C_CloseSession", 2),
    ("C_CloseAllSessions", 1),
    ("C_GetSessionInfo", 1),
    ("C_GetOperationState", 1),
    ("C_SetOperationState", 1),
    ("C_Login", 6),
    ("C_Logout", 2),
    ("C_CreateObject", 6),
    ("C_CopyObject", 3),
    ("C_DestroyObject", 2),
    ("C_GetObjectSize", 2),
    ("C_GetAttributeValue", 5),
    ("C_SetAttributeValue", 4),
    ("C_FindObjectsInit", 3),
    ("C_FindObjects", 3),
    ("C_FindObjectsFinal", 2),
    ("C_EncryptInit", 5),
    ("C_Encrypt", 3),
    ("C_EncryptUpdate", 3),
    ("C_EncryptFinal", 2),
    ("C_DecryptInit", 5),
    ("C_Decrypt", 3),
    ("C_DecryptUpdate", 3),
    ("C_DecryptFinal", 2),
    ("C_DigestInit", 2),
    ("C_Digest", 2),
    ("C_DigestUpdate", 2),
    ("C_DigestKey", 2),
    ("C_DigestFinal", 2),
    ("C_SignInit", 4),
    ("C_Sign", 3),
    ("C_SignUpdate", 2),
    ("C_SignFinal", 2),
    ("C_VerifyInit", 3),
    ("C_Verify", 3),
    ("C_VerifyUpdate", 2),
    ("C_VerifyFinal", 2),
    ("C_VerifySignatureInit", 3),
    ("C_VerifySignature", 2),
    ("C_VerifySignatureUpdate", 2),
    ("C_VerifySignatureFinal", 2),
    ("C_GenerateKey", 5),
    ("C_GenerateKeyPair", 2),
    ("C_WrapKey", 3),
    ("C_UnwrapKey", 3),
    ("C_DeriveKey", 3),
    ("C_SeedRandom", 1),
    ("C_GenerateRandom", 1),
    ("C_GetFunctionStatus", 1),
    ("C_CancelFunction", 1),
    ("C_WaitForSlotEvent", 1),
    ("C_SessionCancel", 1),
    ("C_MessageEncryptInit", 2),
    ("C_EncryptMessage", 2),
    ("C_MessageEncryptFinal", 1),
    ("C_MessageDecryptInit", 2),
    ("C_DecryptMessage", 2),
    ("C_MessageDecryptFinal", 1),
];

fn describe_mechanism(m: *mut CK_MECHANISM) -> String {
    if m.is_null() {
        return "NULL".into();
    }
    // SAFETY: a non-NULL mechanism comes from the driver's arena, alive here.
    let m = unsafe { &*m };
    format!("{:#x}(param {:?}, {})", m.mechanism, m.pParameter, m.ulParameterLen)
}

/// A handle argument: one time in twenty each CK_INVALID_HANDLE, any value, a small value, and
/// (where there are) a `stale` one; else a `live` one, or a small value while there is none.
fn pick_handle(r: &mut StdRng, live: &[CK_ULONG], stale: &[CK_ULONG]) -> CK_ULONG {
    match r.random_range(0..20) {
        0 => CK_INVALID_HANDLE,
        1 => r.random(),
        2 => r.random_range(1..64),
        3 if !stale.is_empty() => stale[r.random_range(0..stale.len())],
        _ if live.is_empty() => r.random_range(1..8),
        _ => live[r.random_range(0..live.len())],
    }
}

impl Driver {
    /// A module with an initialized token, two sessions, one logged in as the user.
    pub fn new(seed: u64, allow: Vec<Allow>) -> Driver {
        let (p, slot) = setup();
        let h = open(&p, slot);
        assert_eq!(login(&p, h, CKU_USER, USER_PIN), CKR_OK);
        let other = open(&p, slot);
        let rng = StdRng::seed_from_u64(seed);
        let objects = vec![
            aes_key(&p, h, &[7; 32], false),
            aes_key(&p, h, &[9; 32], true),
            data_object(&p, h, b"fuzz-data", b"value", true),
        ];
        let mut d = Driver {
            p,
            rng,
            slot,
            sessions: vec![h, other],
            stale: Vec::new(),
            objects,
            allow,
            initialized: true,
            step: 0,
            bad: 0,
        };
        d.ec_pair(h);
        d
    }

    /// An EC key pair on P-256 in session `h`, its handles remembered.
    fn ec_pair(&mut self, h: CK_SESSION_HANDLE) {
        let mut m =
            CK_MECHANISM { mechanism: CKM_EC_KEY_PAIR_GEN, pParameter: null_mut(), ulParameterLen: 0 };
        let mut public =
            [attr_bytes(CKA_EC_PARAMS, args::P256), attr(CKA_VERIFY, &TRUE), attr(CKA_DERIVE, &TRUE)];
        let mut private = [attr(CKA_SIGN, &TRUE), attr(CKA_DERIVE, &TRUE), attr(CKA_EXTRACTABLE, &TRUE)];
        let (mut pk, mut sk) = (CK_INVALID_HANDLE, CK_INVALID_HANDLE);
        // SAFETY: the mechanism, templates and out-pointers are live locals.
        let rv = unsafe {
            self.p.C_GenerateKeyPair(
                h,
                &mut m,
                public.as_mut_ptr(),
                3,
                private.as_mut_ptr(),
                3,
                &mut pk,
                &mut sk,
            )
        };
        assert_eq!(rv, CKR_OK, "generate the driver's EC key pair");
        self.objects.extend([pk, sk]);
    }

    /// Keeps the run from degenerating into "not initialized" and "no session": after a
    /// `C_Finalize`, usually initialize again; with no session left, open one and log in.
    fn maintain(&mut self) {
        if !self.initialized && self.rng.random_range(0..4) != 0 {
            let mut a = Arena::default();
            // SAFETY: NULL initialization arguments are allowed.
            if self.call("C_Initialize", "NULL (maintenance)".into(), &a, |p| unsafe {
                p.C_Initialize(null_mut())
            }) == Some(CKR_OK)
            {
                self.initialized = true;
            }
            a.tags.clear();
        }
        if self.initialized && self.sessions.is_empty() {
            let a = Arena::default();
            let mut h = CK_INVALID_HANDLE;
            let slot = self.slot;
            let flags = CKF_SERIAL_SESSION | CKF_RW_SESSION;
            let rv = self.call("C_OpenSession", "(maintenance)".into(), &a, |p| {
                // SAFETY: no callback; out-pointer to a live local.
                unsafe { p.C_OpenSession(slot, flags, null_mut(), None, &mut h) }
            });
            if rv == Some(CKR_OK) {
                self.sessions.push(h);
                let mut pin = USER_PIN.as_bytes().to_vec();
                let len = pin.len() as CK_ULONG;
                let rv = self.call("C_Login", format!("h={h} user (maintenance)"), &a, |p| {
                    // SAFETY: the PIN buffer holds its stated length.
                    unsafe { p.C_Login(h, CKU_USER, pin.as_mut_ptr(), len) }
                });
                if rv == Some(CKR_OK) && self.objects.len() < 60 {
                    // Fresh session keys, since a C_Finalize took the others.
                    let key = aes_key(&self.p, h, &[7; 32], false);
                    self.objects.push(key);
                }
            }
        }
    }

    /// Moves sessions the module closed to the stale list.
    fn closed(&mut self, which: Option<CK_SESSION_HANDLE>) {
        let gone: Vec<_> = match which {
            Some(h) => self.sessions.iter().copied().filter(|&s| s == h).collect(),
            None => std::mem::take(&mut self.sessions),
        };
        self.sessions.retain(|s| !gone.contains(s));
        for h in gone {
            if self.stale.len() < 16 {
                self.stale.push(h);
            }
        }
    }

    fn session(&mut self) -> CK_SESSION_HANDLE {
        pick_handle(&mut self.rng, &self.sessions, &self.stale)
    }

    fn object(&mut self) -> CK_OBJECT_HANDLE {
        pick_handle(&mut self.rng, &self.objects, &[])
    }

    fn remember(&mut self, rv: Option<CK_RV>, handles: &[CK_OBJECT_HANDLE]) {
        if rv == Some(CKR_OK) {
            for &o in handles {
                if o != CK_INVALID_HANDLE && !self.objects.contains(&o) && self.objects.len() < 64 {
                    self.objects.push(o);
                }
            }
        }
    }

    /// Runs one call unless the allow-list names its shape as a known crash or hang; checks
    /// its code against the standard's list.
    fn call(
        &mut self,
        name: &'static str,
        args: String,
        a: &Arena,
        f: impl FnOnce(&Pkcs11) -> CK_RV,
    ) -> Option<CK_RV> {
        self.step += 1;
        let tags = a.tags.join(",");
        let mut allowed = self.allow.iter().filter(|e| e.function == name || e.function == "*");
        let is_rv = |k: Kind| matches!(k, Kind::Rv | Kind::Standard);
        if let Some(e) = allowed.find(|e| !is_rv(e.kind) && a.tags.contains(&e.what.as_str())) {
            // The third word names the allow-list line, for the parent's summary.
            println!("SKIP {} {:?}:{}:{} {name} [{tags}] {args}", self.step, e.kind, e.function, e.what);
            return None;
        }
        println!("CALL {} {name} [{tags}] {args}", self.step);
        let rv = f(&self.p);
        let code = rv_table::name(rv);
        if !rv_table::allowed(name, rv) {
            match self
                .allow
                .iter()
                .find(|e| is_rv(e.kind) && (e.function == name || e.function == "*") && e.what == code)
            {
                Some(e) => {
                    println!("KNOWN {} {:?}:{}:{code} {name} [{tags}] {args}", self.step, e.kind, e.function)
                }
                None => {
                    self.bad += 1;
                    println!("BAD {} {name} {code} [{tags}] {args}", self.step);
                }
            }
        }
        println!("RV {} {code}", self.step);
        Some(rv)
    }

    /// One random call.
    pub fn step(&mut self) {
        let total: u32 = FUNCTIONS.iter().map(|f| f.1).sum();
        let mut pick = self.rng.random_range(0..total);
        let name = FUNCTIONS
            .iter()
            .find(|(_, w)| {
                if pick < *w {
                    return true;
                }
                pick -= w;
                false
            })
            .expect("a weighted pick")
            .0;
        self.maintain();
        let mut a = Arena::default();
        self.one(name, &mut a);
    }

    #[allow(clippy::too_many_lines)]
    fn one(&mut self, name: &'static str, a: &mut Arena) {
        // Every pointer below comes from the arena `a` (or is NULL) and stays alive for the
        // call; a length larger than the memory behind a pointer is only ever stated for a
        // guarded buffer, whose overrun faults.
        let slot = if self.rng.random_range(0..10) == 0 { self.rng.random() } else { self.slot };
        match name {
            "C_Initialize" => {
                let args = if self.rng.random_bool(0.5) {
                    null_mut()
                } else {
                    let flags = [0, CKF_OS_LOCKING_OK, CKF_LIBRARY_CANT_CREATE_OS_THREADS, self.rng.random()];
                    let reserved =
                        if self.rng.random_range(0..4) == 0 { a.bytes(vec![1]).cast() } else { null_mut() };
                    let args = CK_C_INITIALIZE_ARGS {
                        CreateMutex: None,
                        DestroyMutex: None,
                        LockMutex: None,
                        UnlockMutex: None,
                        flags: flags[self.rng.random_range(0..4)],
                        pReserved: reserved,
                    };
                    a.keep(args).cast()
                };
                // SAFETY: see the note at the top of `one`.
                if self.call(name, format!("{args:?}"), a, |p| unsafe { p.C_Initialize(args) })
                    == Some(CKR_OK)
                {
                    self.initialized = true;
                }
            }
            "C_Finalize" => {
                let reserved =
                    if self.rng.random_range(0..4) == 0 { a.bytes(vec![1]).cast() } else { null_mut() };
                // SAFETY: see the note at the top of `one`.
                if self.call(name, format!("{reserved:?}"), a, |p| unsafe { p.C_Finalize(reserved) })
                    == Some(CKR_OK)
                {
                    self.initialized = false;
                    self.closed(None);
                }
            }
            "C_GetInfo" => {
                let info = args::info_out::<CK_INFO>(&mut self.rng, a);
                // SAFETY: see the note at the top of `one`.
                self.call(name, format!("{info:?}"), a, |p| unsafe { p.C_GetInfo(info) });
            }
            "C_GetSlotList" => {
                let present = self.rng.random_range(0..3) as CK_BBOOL;
                let (list, count) = args::list_out::<8>(&mut self.rng, a, 0);
                let args = format!("present={present} list={list:?} count={count:?}");
                // SAFETY: see the note at the top of `one`.
                self.call(name, args, a, |p| unsafe { p.C_GetSlotList(present, list, count) });
            }
            "C_GetSlotInfo" => {
                let info = args::info_out::<CK_SLOT_INFO>(&mut self.rng, a);
                // SAFETY: see the note at the top of `one`.
                self.call(name, format!("slot={slot} {info:?}"), a, |p| unsafe {
                    p.C_GetSlotInfo(slot, info)
                });
            }
            "C_GetTokenInfo" => {
                let info = args::info_out::<CK_TOKEN_INFO>(&mut self.rng, a);
                // SAFETY: see the note at the top of `one`.
                self.call(name, format!("slot={slot} {info:?}"), a, |p| unsafe {
                    p.C_GetTokenInfo(slot, info)
                });
            }
            "C_GetMechanismList" => {
                let (list, count) = args::list_out::<128>(&mut self.rng, a, 1);
                let args = format!("slot={slot} list={list:?} count={count:?}");
                // SAFETY: see the note at the top of `one`.
                self.call(name, args, a, |p| unsafe { p.C_GetMechanismList(slot, list, count) });
            }
            "C_GetMechanismInfo" => {
                let m = args::mechanism_type(&mut self.rng);
                let info = args::info_out::<CK_MECHANISM_INFO>(&mut self.rng, a);
                // SAFETY: see the note at the top of `one`.
                self.call(name, format!("slot={slot} {m:#x} {info:?}"), a, |p| unsafe {
                    p.C_GetMechanismInfo(slot, m, info)
                });
            }
            "C_InitToken" => {
                let (pin, len) = args::pin(&mut self.rng, a, SO_PIN);
                let label = if self.rng.random_range(0..4) == 0 {
                    null_mut()
                } else {
                    a.bytes(padded_label("fuzz").to_vec())
                };
                let args = format!("slot={slot} pin=({pin:?},{len}) label={label:?}");
                // SAFETY: see the note at the top of `one`.
                self.call(name, args, a, |p| unsafe { p.C_InitToken(slot, pin, len, label) });
            }
            "C_InitPIN" => {
                let h = self.session();
                let (pin, len) = args::pin(&mut self.rng, a, USER_PIN);
                // SAFETY: see the note at the top of `one`.
                self.call(name, format!("h={h} pin=({pin:?},{len})"), a, |p| unsafe {
                    p.C_InitPIN(h, pin, len)
                });
            }
            "C_SetPIN" => {
                // The new PIN is the old one (or one the module must refuse), so that later
                // logins keep working.
                let h = self.session();
                let right = if self.rng.random_bool(0.5) { USER_PIN } else { SO_PIN };
                let (old, old_len) = args::pin(&mut self.rng, a, right);
                let (new, new_len) = match self.rng.random_range(0..3) {
                    0 => (a.bytes(Vec::new()), 0),
                    1 => (null_mut(), 0),
                    _ => (a.bytes(right.as_bytes().to_vec()), right.len() as CK_ULONG),
                };
                let args = format!("h={h} old=({old:?},{old_len}) new=({new:?},{new_len})");
                // SAFETY: see the note at the top of `one`.
                self.call(name, args, a, |p| unsafe { p.C_SetPIN(h, old, old_len, new, new_len) });
            }
            "C_OpenSession" => {
                let flags = [
                    CKF_SERIAL_SESSION | CKF_RW_SESSION,
                    CKF_SERIAL_SESSION,
                    CKF_SERIAL_SESSION | CKF_RW_SESSION,
                    0,
                    CKF_RW_SESSION,
                ][self.rng.random_range(0..5)];
                let out =
                    if self.rng.random_range(0..8) == 0 { null_mut() } else { a.keep(CK_INVALID_HANDLE) };
                let args = format!("slot={slot} flags={flags:#x} out={out:?}");
                // SAFETY: see the note at the top of `one`.
                let rv = self
                    .call(name, args, a, |p| unsafe { p.C_OpenSession(slot, flags, null_mut(), None, out) });
                if rv == Some(CKR_OK) && self.sessions.len() < 32 {
                    // SAFETY: on success the out-pointer (from the arena) holds the handle.
                    self.sessions.push(unsafe { *out });
                }
            }
            "C_CloseSession" => {
                let h = self.session();
                // SAFETY: no pointers.
                if self.call(name, format!("h={h}"), a, |p| unsafe { p.C_CloseSession(h) }) == Some(CKR_OK) {
                    self.closed(Some(h));
                }
            }
            "C_CloseAllSessions" => {
                // SAFETY: no pointers.
                if self.call(name, format!("slot={slot}"), a, |p| unsafe { p.C_CloseAllSessions(slot) })
                    == Some(CKR_OK)
                {
                    self.closed(None);
                }
            }
            "C_GetSessionInfo" => {
                let h = self.session();
                let info = args::info_out::<CK_SESSION_INFO>(&mut self.rng, a);
                // SAFETY: see the note at the top of `one`.
                self.call(name, format!("h={h} {info:?}"), a, |p| unsafe { p.C_GetSessionInfo(h, info) });
            }
            "C_GetOperationState" => {
                let h = self.session();
                let (out, len) = args::output(&mut self.rng, a);
                // SAFETY: see the note at the top of `one`.
                self.call(name, format!("h={h} out={out:?}"), a, |p| unsafe {
                    p.C_GetOperationState(h, out, len)
                });
            }
            "C_SetOperationState" => {
                let h = self.session();
                let (state, len) = args::input(&mut self.rng, a);
                let (k1, k2) = (self.object(), self.object());
                let args = format!("h={h} state=({state:?},{len}) keys={k1},{k2}");
                // SAFETY: see the note at the top of `one`.
                self.call(name, args, a, |p| unsafe { p.C_SetOperationState(h, state, len, k1, k2) });
            }
            "C_Login" => {
                let h = self.session();
                let user = [CKU_USER, CKU_USER, CKU_SO, CKU_CONTEXT_SPECIFIC, self.rng.random()]
                    [self.rng.random_range(0..5)];
                let right = if user == CKU_SO { SO_PIN } else { USER_PIN };
                let (pin, len) = args::pin(&mut self.rng, a, right);
                let args = format!("h={h} user={user:#x} pin=({pin:?},{len})");
                // SAFETY: see the note at the top of `one`.
                self.call(name, args, a, |p| unsafe { p.C_Login(h, user, pin, len) });
            }
            "C_Logout" => {
                let h = self.session();
                // SAFETY: no pointers.
                self.call(name, format!("h={h}"), a, |p| unsafe { p.C_Logout(h) });
            }
            _ => self.objects_and_crypto(name, a),
        }
    }
}
