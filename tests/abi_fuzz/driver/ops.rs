//! The driver's object, crypto and miscellaneous calls (the session and token calls are in
//! the parent file).

use std::ptr::null_mut;

use cryptoki_sys::*;
use rand::RngExt;

use super::{Driver, describe_mechanism};
use crate::args::{self, Arena};

impl Driver {
    /// A one-shot or update call: input, and output into a buffer of random shape.
    fn data_call(
        &mut self,
        name: &'static str,
        a: &mut Arena,
        f: fn(&Pkcs11, CK_SESSION_HANDLE, *mut u8, CK_ULONG, *mut u8, *mut CK_ULONG) -> CK_RV,
    ) {
        let h = self.session();
        let (input, len) = args::input(&mut self.rng, a);
        let (out, out_len) = args::output(&mut self.rng, a);
        let args = format!("h={h} in=({input:?},{len:#x}) out=({out:?},{out_len:?})");
        self.call(name, args, a, |p| f(p, h, input, len, out, out_len));
    }

    /// A `*Final` or `C_Digest*` call that only writes.
    fn final_call(
        &mut self,
        name: &'static str,
        a: &mut Arena,
        f: fn(&Pkcs11, CK_SESSION_HANDLE, *mut u8, *mut CK_ULONG) -> CK_RV,
    ) {
        let h = self.session();
        let (out, out_len) = args::output(&mut self.rng, a);
        self.call(name, format!("h={h} out=({out:?},{out_len:?})"), a, |p| f(p, h, out, out_len));
    }

    /// An `*Init` with a mechanism and a key.
    fn init_call(
        &mut self,
        name: &'static str,
        a: &mut Arena,
        f: fn(&Pkcs11, CK_SESSION_HANDLE, *mut CK_MECHANISM, CK_OBJECT_HANDLE) -> CK_RV,
    ) {
        let h = self.session();
        let m = args::mechanism(&mut self.rng, a);
        let k = self.object();
        let args = format!("h={h} mech={} key={k}", describe_mechanism(m));
        self.call(name, args, a, |p| f(p, h, m, k));
    }

    /// An update call that only reads (digest, sign, verify).
    fn update_call(
        &mut self,
        name: &'static str,
        a: &mut Arena,
        f: fn(&Pkcs11, CK_SESSION_HANDLE, *mut u8, CK_ULONG) -> CK_RV,
    ) {
        let h = self.session();
        let (input, len) = args::input(&mut self.rng, a);
        self.call(name, format!("h={h} in=({input:?},{len:#x})"), a, |p| f(p, h, input, len));
    }

    #[allow(clippy::too_many_lines)]
    pub(super) fn objects_and_crypto(&mut self, name: &'static str, a: &mut Arena) {
        match name {
            "C_CreateObject" | "C_CopyObject" => {
                let h = self.session();
                let src = self.object();
                let (t, n) = args::template(&mut self.rng, a);
                let out =
                    if self.rng.random_range(0..10) == 0 { null_mut() } else { a.keep(CK_INVALID_HANDLE) };
                let args = format!("h={h} src={src} template=({t:?},{n:#x}) out={out:?}");
                let rv = if name == "C_CreateObject" {
                    // SAFETY: every pointer is the arena's (see `Driver::one`).
                    self.call(name, args, a, |p| unsafe { p.C_CreateObject(h, t, n, out) })
                } else {
                    // SAFETY: every pointer is the arena's (see `Driver::one`).
                    self.call(name, args, a, |p| unsafe { p.C_CopyObject(h, src, t, n, out) })
                };
                // SAFETY: on success the out-pointer (from the arena) holds the handle.
                self.remember(rv, &[if out.is_null() { CK_INVALID_HANDLE } else { unsafe { *out } }]);
            }
            "C_DestroyObject" => {
                let (h, o) = (self.session(), self.object());
                // SAFETY: no pointers.
                self.call(name, format!("h={h} o={o}"), a, |p| unsafe { p.C_DestroyObject(h, o) });
            }
            "C_GetObjectSize" => {
                let (h, o) = (self.session(), self.object());
                let out = if self.rng.random_range(0..5) == 0 { null_mut() } else { a.keep(0 as CK_ULONG) };
                // SAFETY: every pointer is the arena's (see `Driver::one`).
                self.call(name, format!("h={h} o={o} out={out:?}"), a, |p| unsafe {
                    p.C_GetObjectSize(h, o, out)
                });
            }
            "C_GetAttributeValue" => {
                let (h, o) = (self.session(), self.object());
                let (t, n) = args::read_template(&mut self.rng, a);
                let args = format!("h={h} o={o} template=({t:?},{n})");
                // SAFETY: every pointer is the arena's (see `Driver::one`).
                self.call(name, args, a, |p| unsafe { p.C_GetAttributeValue(h, o, t, n) });
            }
            "C_SetAttributeValue" => {
                let (h, o) = (self.session(), self.object());
                let (t, n) = args::template(&mut self.rng, a);
                let args = format!("h={h} o={o} template=({t:?},{n:#x})");
                // SAFETY: every pointer is the arena's (see `Driver::one`).
                self.call(name, args, a, |p| unsafe { p.C_SetAttributeValue(h, o, t, n) });
            }
            "C_FindObjectsInit" => {
                let h = self.session();
                let (t, n) = args::template(&mut self.rng, a);
                // SAFETY: every pointer is the arena's (see `Driver::one`).
                self.call(name, format!("h={h} template=({t:?},{n:#x})"), a, |p| unsafe {
                    p.C_FindObjectsInit(h, t, n)
                });
            }
            "C_FindObjects" => {
                let h = self.session();
                let max = [0, 1, 16][self.rng.random_range(0..3)];
                let list = if self.rng.random_range(0..8) == 0 {
                    null_mut()
                } else {
                    a.keep([0 as CK_ULONG; 16]).cast()
                };
                let count = if self.rng.random_range(0..8) == 0 { null_mut() } else { a.keep(0 as CK_ULONG) };
                let args = format!("h={h} list={list:?} max={max} count={count:?}");
                // SAFETY: every pointer is the arena's (see `Driver::one`).
                let rv = self.call(name, args, a, |p| unsafe { p.C_FindObjects(h, list, max, count) });
                if rv == Some(CKR_OK) && !list.is_null() && !count.is_null() {
                    // SAFETY: on success the module wrote `*count` (≤ max ≤ 16) handles.
                    let found =
                        unsafe { std::slice::from_raw_parts(list, (*count).min(16) as usize) }.to_vec();
                    self.remember(rv, &found);
                }
            }
            "C_FindObjectsFinal" => {
                let h = self.session();
                // SAFETY: no pointers.
                self.call(name, format!("h={h}"), a, |p| unsafe { p.C_FindObjectsFinal(h) });
            }
            // SAFETY: the driver's helper passes only the arena's pointers (see `Driver::one`).
            "C_EncryptInit" => self.init_call(name, a, |p, h, m, k| unsafe { p.C_EncryptInit(h, m, k) }),
            // SAFETY: the driver's helper passes only the arena's pointers (see `Driver::one`).
            "C_DecryptInit" => self.init_call(name, a, |p, h, m, k| unsafe { p.C_DecryptInit(h, m, k) }),
            // SAFETY: the driver's helper passes only the arena's pointers (see `Driver::one`).
            "C_SignInit" => self.init_call(name, a, |p, h, m, k| unsafe { p.C_SignInit(h, m, k) }),
            // SAFETY: the driver's helper passes only the arena's pointers (see `Driver::one`).
            "C_VerifyInit" => self.init_call(name, a, |p, h, m, k| unsafe { p.C_VerifyInit(h, m, k) }),
            "C_MessageEncryptInit" => {
                // SAFETY: the driver's helper passes only the arena's pointers (see `Driver::one`).
                self.init_call(name, a, |p, h, m, k| unsafe { p.C_MessageEncryptInit(h, m, k) })
            }
            "C_MessageDecryptInit" => {
                // SAFETY: the driver's helper passes only the arena's pointers (see `Driver::one`).
                self.init_call(name, a, |p, h, m, k| unsafe { p.C_MessageDecryptInit(h, m, k) })
            }
            "C_Encrypt" => {
                // SAFETY: the driver's helper passes only the arena's pointers (see `Driver::one`).
                self.data_call(name, a, |p, h, i, n, o, on| unsafe { p.C_Encrypt(h, i, n, o, on) })
            }
            "C_EncryptUpdate" => {
                // SAFETY: the driver's helper passes only the arena's pointers (see `Driver::one`).
                self.data_call(name, a, |p, h, i, n, o, on| unsafe { p.C_EncryptUpdate(h, i, n, o, on) })
            }
            "C_Decrypt" => {
                // SAFETY: the driver's helper passes only the arena's pointers (see `Driver::one`).
                self.data_call(name, a, |p, h, i, n, o, on| unsafe { p.C_Decrypt(h, i, n, o, on) })
            }
            "C_DecryptUpdate" => {
                // SAFETY: the driver's helper passes only the arena's pointers (see `Driver::one`).
                self.data_call(name, a, |p, h, i, n, o, on| unsafe { p.C_DecryptUpdate(h, i, n, o, on) })
            }
            // SAFETY: the driver's helper passes only the arena's pointers (see `Driver::one`).
            "C_Digest" => self.data_call(name, a, |p, h, i, n, o, on| unsafe { p.C_Digest(h, i, n, o, on) }),
            // SAFETY: the driver's helper passes only the arena's pointers (see `Driver::one`).
            "C_Sign" => self.data_call(name, a, |p, h, i, n, o, on| unsafe { p.C_Sign(h, i, n, o, on) }),
            // SAFETY: the driver's helper passes only the arena's pointers (see `Driver::one`).
            "C_EncryptFinal" => self.final_call(name, a, |p, h, o, on| unsafe { p.C_EncryptFinal(h, o, on) }),
            // SAFETY: the driver's helper passes only the arena's pointers (see `Driver::one`).
            "C_DecryptFinal" => self.final_call(name, a, |p, h, o, on| unsafe { p.C_DecryptFinal(h, o, on) }),
            // SAFETY: the driver's helper passes only the arena's pointers (see `Driver::one`).
            "C_DigestFinal" => self.final_call(name, a, |p, h, o, on| unsafe { p.C_DigestFinal(h, o, on) }),
            // SAFETY: the driver's helper passes only the arena's pointers (see `Driver::one`).
            "C_SignFinal" => self.final_call(name, a, |p, h, o, on| unsafe { p.C_SignFinal(h, o, on) }),
            // SAFETY: the driver's helper passes only the arena's pointers (see `Driver::one`).
            "C_DigestUpdate" => self.update_call(name, a, |p, h, i, n| unsafe { p.C_DigestUpdate(h, i, n) }),
            // SAFETY: the driver's helper passes only the arena's pointers (see `Driver::one`).
            "C_SignUpdate" => self.update_call(name, a, |p, h, i, n| unsafe { p.C_SignUpdate(h, i, n) }),
            // SAFETY: the driver's helper passes only the arena's pointers (see `Driver::one`).
            "C_VerifyUpdate" => self.update_call(name, a, |p, h, i, n| unsafe { p.C_VerifyUpdate(h, i, n) }),
            // SAFETY: the driver's helper passes only the arena's pointers (see `Driver::one`).
            "C_VerifyFinal" => self.update_call(name, a, |p, h, i, n| unsafe { p.C_VerifyFinal(h, i, n) }),
            // SAFETY: the driver's helper passes only the arena's pointers (see `Driver::one`).
            "C_SeedRandom" => self.update_call(name, a, |p, h, i, n| unsafe { p.C_SeedRandom(h, i, n) }),
            "C_VerifySignatureUpdate" => {
                // SAFETY: the driver's helper passes only the arena's pointers (see `Driver::one`).
                self.update_call(name, a, |p, h, i, n| unsafe { p.C_VerifySignatureUpdate(h, i, n) })
            }
            "C_VerifySignature" => {
                // SAFETY: the driver's helper passes only the arena's pointers (see `Driver::one`).
                self.update_call(name, a, |p, h, i, n| unsafe { p.C_VerifySignature(h, i, n) })
            }
            "C_VerifySignatureFinal" => {
                let h = self.session();
                // SAFETY: no pointers.
                self.call(name, format!("h={h}"), a, |p| unsafe { p.C_VerifySignatureFinal(h) });
            }
            "C_VerifySignatureInit" => {
                let (h, k) = (self.session(), self.object());
                let m = args::mechanism(&mut self.rng, a);
                let (sig, sig_len) = args::input(&mut self.rng, a);
                let args = format!("h={h} mech={} key={k} sig=({sig:?},{sig_len:#x})", describe_mechanism(m));
                // SAFETY: every pointer is the arena's (see `Driver::one`).
                self.call(name, args, a, |p| unsafe { p.C_VerifySignatureInit(h, m, k, sig, sig_len) });
            }
            "C_Verify" => {
                let h = self.session();
                let (data, len) = args::input(&mut self.rng, a);
                let (sig, sig_len) = args::input(&mut self.rng, a);
                let args = format!("h={h} data=({data:?},{len:#x}) sig=({sig:?},{sig_len:#x})");
                // SAFETY: every pointer is the arena's (see `Driver::one`).
                self.call(name, args, a, |p| unsafe { p.C_Verify(h, data, len, sig, sig_len) });
            }
            "C_DigestInit" => {
                let h = self.session();
                let m = args::mechanism(&mut self.rng, a);
                // SAFETY: every pointer is the arena's (see `Driver::one`).
                self.call(name, format!("h={h} mech={}", describe_mechanism(m)), a, |p| unsafe {
                    p.C_DigestInit(h, m)
                });
            }
            "C_DigestKey" => {
                let (h, k) = (self.session(), self.object());
                // SAFETY: no pointers.
                self.call(name, format!("h={h} key={k}"), a, |p| unsafe { p.C_DigestKey(h, k) });
            }
            "C_GenerateKey" => {
                let h = self.session();
                let m = args::mechanism(&mut self.rng, a);
                let (t, n) = args::template(&mut self.rng, a);
                let out =
                    if self.rng.random_range(0..10) == 0 { null_mut() } else { a.keep(CK_INVALID_HANDLE) };
                let args =
                    format!("h={h} mech={} template=({t:?},{n:#x}) out={out:?}", describe_mechanism(m));
                // SAFETY: every pointer is the arena's (see `Driver::one`).
                let rv = self.call(name, args, a, |p| unsafe { p.C_GenerateKey(h, m, t, n, out) });
                // SAFETY: on success the out-pointer (from the arena) holds the handle.
                self.remember(rv, &[if out.is_null() { CK_INVALID_HANDLE } else { unsafe { *out } }]);
            }
            "C_GenerateKeyPair" => {
                let h = self.session();
                let m = args::mechanism(&mut self.rng, a);
                let (pt, pn) = args::template(&mut self.rng, a);
                let (st, sn) = args::template(&mut self.rng, a);
                let (pk, sk) = (a.keep(CK_INVALID_HANDLE), a.keep(CK_INVALID_HANDLE));
                let args = format!(
                    "h={h} mech={} public=({pt:?},{pn:#x}) private=({st:?},{sn:#x})",
                    describe_mechanism(m)
                );
                // SAFETY: every pointer is the arena's (see `Driver::one`).
                let rv = self
                    .call(name, args, a, |p| unsafe { p.C_GenerateKeyPair(h, m, pt, pn, st, sn, pk, sk) });
                // SAFETY: both out-pointers are the arena's.
                self.remember(rv, &unsafe { [*pk, *sk] });
            }
            "C_WrapKey" => {
                let (h, wrapping, key) = (self.session(), self.object(), self.object());
                let m = args::mechanism(&mut self.rng, a);
                let (out, out_len) = args::output(&mut self.rng, a);
                let args = format!(
                    "h={h} mech={} wrapping={wrapping} key={key} out=({out:?},{out_len:?})",
                    describe_mechanism(m)
                );
                // SAFETY: every pointer is the arena's (see `Driver::one`).
                self.call(name, args, a, |p| unsafe { p.C_WrapKey(h, m, wrapping, key, out, out_len) });
            }
            "C_UnwrapKey" => {
                let (h, unwrapping) = (self.session(), self.object());
                let m = args::mechanism(&mut self.rng, a);
                let (wrapped, len) = args::input(&mut self.rng, a);
                let (t, n) = args::template(&mut self.rng, a);
                let out = a.keep(CK_INVALID_HANDLE);
                let args = format!(
                    "h={h} mech={} unwrapping={unwrapping} wrapped=({wrapped:?},{len:#x}) template=({t:?},{n:#x})",
                    describe_mechanism(m)
                );
                // SAFETY: every pointer is the arena's (see `Driver::one`).
                let rv = self.call(name, args, a, |p| unsafe {
                    p.C_UnwrapKey(h, m, unwrapping, wrapped, len, t, n, out)
                });
                // SAFETY: the out-pointer is the arena's.
                self.remember(rv, &[unsafe { *out }]);
            }
            "C_DeriveKey" => {
                let (h, base) = (self.session(), self.object());
                let m = args::mechanism(&mut self.rng, a);
                let (t, n) = args::template(&mut self.rng, a);
                let out = a.keep(CK_INVALID_HANDLE);
                let args =
                    format!("h={h} mech={} base={base} template=({t:?},{n:#x})", describe_mechanism(m));
                // SAFETY: every pointer is the arena's (see `Driver::one`).
                let rv = self.call(name, args, a, |p| unsafe { p.C_DeriveKey(h, m, base, t, n, out) });
                // SAFETY: the out-pointer is the arena's.
                self.remember(rv, &[unsafe { *out }]);
            }
            "C_GenerateRandom" => {
                let h = self.session();
                let len: CK_ULONG = [0, 1, 32, 4096][self.rng.random_range(0..4)];
                let out = if self.rng.random_range(0..8) == 0 { null_mut() } else { a.bytes(vec![0; 4096]) };
                // SAFETY: the buffer holds 4096 bytes, never fewer than `len`.
                self.call(name, format!("h={h} out=({out:?},{len})"), a, |p| unsafe {
                    p.C_GenerateRandom(h, out, len)
                });
            }
            "C_GetFunctionStatus" => {
                let h = self.session();
                // SAFETY: no pointers.
                self.call(name, format!("h={h}"), a, |p| unsafe { p.C_GetFunctionStatus(h) });
            }
            "C_CancelFunction" => {
                let h = self.session();
                // SAFETY: no pointers.
                self.call(name, format!("h={h}"), a, |p| unsafe { p.C_CancelFunction(h) });
            }
            "C_WaitForSlotEvent" => {
                // Never blocking: a blocking wait with no event may rightly wait forever.
                let slot =
                    if self.rng.random_range(0..5) == 0 { null_mut() } else { a.keep(0 as CK_SLOT_ID) };
                // SAFETY: every pointer is the arena's (see `Driver::one`).
                self.call(name, format!("slot={slot:?}"), a, |p| unsafe {
                    p.C_WaitForSlotEvent(CKF_DONT_BLOCK, slot, null_mut())
                });
            }
            "C_SessionCancel" => {
                let h = self.session();
                let flags = [CKF_ENCRYPT, CKF_DECRYPT | CKF_SIGN, CKF_FIND_OBJECTS, self.rng.random()]
                    [self.rng.random_range(0..4)];
                // SAFETY: no pointers.
                self.call(name, format!("h={h} flags={flags:#x}"), a, |p| unsafe {
                    p.C_SessionCancel(h, flags)
                });
            }
            "C_EncryptMessage" | "C_DecryptMessage" => {
                let h = self.session();
                let (param, param_len) = args::message_parameter(&mut self.rng, a);
                let (aad, aad_len) = args::input(&mut self.rng, a);
                let (input, len) = args::input(&mut self.rng, a);
                let (out, out_len) = args::output(&mut self.rng, a);
                let args = format!(
                    "h={h} param=({param:?},{param_len}) aad=({aad:?},{aad_len:#x}) in=({input:?},{len:#x}) out=({out:?},{out_len:?})"
                );
                if name == "C_EncryptMessage" {
                    // SAFETY: every pointer is the arena's (see `Driver::one`).
                    self.call(name, args, a, |p| unsafe {
                        p.C_EncryptMessage(h, param, param_len, aad, aad_len, input, len, out, out_len)
                    });
                } else {
                    // SAFETY: every pointer is the arena's (see `Driver::one`).
                    self.call(name, args, a, |p| unsafe {
                        p.C_DecryptMessage(h, param, param_len, aad, aad_len, input, len, out, out_len)
                    });
                }
            }
            "C_MessageEncryptFinal" | "C_MessageDecryptFinal" => {
                let h = self.session();
                if name == "C_MessageEncryptFinal" {
                    // SAFETY: no pointers.
                    self.call(name, format!("h={h}"), a, |p| unsafe { p.C_MessageEncryptFinal(h) });
                } else {
                    // SAFETY: no pointers.
                    self.call(name, format!("h={h}"), a, |p| unsafe { p.C_MessageDecryptFinal(h) });
                }
            }
            other => panic!("the driver has no call for {other}"),
        }
    }
}
