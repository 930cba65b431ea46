//! Every export runs its body through [`guard`]: a panic becomes `CKR_GENERAL_ERROR` instead
//! of unwinding into C (which, since Rust 1.81, would abort the host process), and an
//! [`Error`] becomes its `CK_RV` through the core's one mapping.

use std::panic::{AssertUnwindSafe, catch_unwind};

use cryptoki_sys::{CK_RV, CKR_GENERAL_ERROR, CKR_OK};

use crate::Error;

pub fn guard(function: &'static str, body: impl FnOnce() -> Result<(), Error>) -> CK_RV {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => CKR_OK,
        Ok(Err(e)) => {
            if e.is_fault() {
                crate::error::log_fault(function, &e);
            }
            e.ck_rv()
        }
        Err(_) => {
            crate::error::log_fault(function, &Error::Internal("panic caught at the C boundary"));
            CKR_GENERAL_ERROR
        }
    }
}

/// Defines an exported PKCS#11 function whose body returns `Result<(), Error>`.
macro_rules! pkcs11_fn {
    ($(#[$meta:meta])* fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $body:block) => {
        $(#[$meta])*
        ///
        /// # Safety
        /// Pointer arguments must satisfy the PKCS#11 contract: NULL, or valid for the
        /// length the call states.
        #[unsafe(no_mangle)]
        #[allow(non_snake_case)]
        pub unsafe extern "C" fn $name($($arg: $ty),*) -> CK_RV {
            $crate::abi::guard::guard(stringify!($name), || $body)
        }
    };
}

/// Defines an exported function the module does not offer yet.
macro_rules! not_supported {
    ($($name:ident($($ty:ty),* $(,)?);)*) => {
        $(
            /// Not offered by this module: returns `CKR_FUNCTION_NOT_SUPPORTED`.
            ///
            /// # Safety
            /// Reads none of its arguments.
            #[unsafe(no_mangle)]
            #[allow(non_snake_case)]
            pub unsafe extern "C" fn $name($(_: $ty),*) -> CK_RV {
                CKR_FUNCTION_NOT_SUPPORTED
            }
        )*
    };
}

pub(crate) use {not_supported, pkcs11_fn};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panics_and_errors_become_return_codes() {
        assert_eq!(guard("t", || Ok(())), CKR_OK);
        assert_eq!(guard("t", || Err(Error::PinIncorrect)), cryptoki_sys::CKR_PIN_INCORRECT);
        assert_eq!(guard("t", || panic!("boom")), CKR_GENERAL_ERROR);
    }
}
