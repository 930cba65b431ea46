//! Copying in the parameter structures of the secret-key derivations (`C_DeriveKey`):
//! `CK_KEY_DERIVATION_STRING_DATA`, `CK_AES_CBC_ENCRYPT_DATA_PARAMS`, `CK_HKDF_PARAMS` and the
//! SP 800-108 parameters with their `CK_PRF_DATA_PARAM` arrays. Pointers inside are read
//! once, here; the mechanism layer sees owned values.

use cryptoki_sys::*;

use super::marshal::{parameter, parameter_bytes, to_usize};
use crate::mechanism::MechanismParams;
use crate::mechanism::derive::CbcDataParams;
use crate::mechanism::hkdf::{HkdfParams, HkdfSalt};
use crate::mechanism::sp800_108::{CounterFormat, DkmFormat, KbkdfParams, PrfData};
use crate::{Error, Result};

/// The decoded parameter of a derivation mechanism this file knows, or `None`.
///
/// # Safety
/// `m.pParameter`, if non-NULL, points to `m.ulParameterLen` readable bytes, and the pointers
/// inside the structure are valid for their stated lengths.
pub unsafe fn derive_params_in(m: &CK_MECHANISM) -> Result<Option<MechanismParams>> {
    // SAFETY: forwarded contract; `parameter` checks the structure's size.
    unsafe {
        Ok(Some(match m.mechanism {
            CKM_CONCATENATE_BASE_AND_DATA
            | CKM_CONCATENATE_DATA_AND_BASE
            | CKM_XOR_BASE_AND_DATA
            | CKM_AES_ECB_ENCRYPT_DATA => {
                let p: CK_KEY_DERIVATION_STRING_DATA = parameter(m)?;
                MechanismParams::Data(parameter_bytes(p.pData, p.ulLen)?)
            }
            CKM_AES_CBC_ENCRYPT_DATA => {
                let p: CK_AES_CBC_ENCRYPT_DATA_PARAMS = parameter(m)?;
                MechanismParams::CbcData(CbcDataParams {
                    iv: p.iv,
                    data: parameter_bytes(p.pData, p.length)?,
                })
            }
            CKM_HKDF_DERIVE | CKM_HKDF_DATA => MechanismParams::Hkdf(hkdf_params(parameter(m)?)?),
            CKM_SP800_108_COUNTER_KDF => {
                let p: CK_SP800_108_KDF_PARAMS = parameter(m)?;
                MechanismParams::Kbkdf(KbkdfParams {
                    prf: p.prfType,
                    data: prf_data(p.pDataParams, p.ulNumberOfDataParams)?,
                    iv: None,
                    additional_keys: to_usize(p.ulAdditionalDerivedKeys)?,
                })
            }
            CKM_SP800_108_FEEDBACK_KDF => {
                let p: CK_SP800_108_FEEDBACK_KDF_PARAMS = parameter(m)?;
                MechanismParams::Kbkdf(KbkdfParams {
                    prf: p.prfType,
                    data: prf_data(p.pDataParams, p.ulNumberOfDataParams)?,
                    iv: Some(parameter_bytes(p.pIV, p.ulIVLen)?),
                    additional_keys: to_usize(p.ulAdditionalDerivedKeys)?,
                })
            }
            _ => return Ok(None),
        }))
    }
}

/// # Safety
/// The salt and info pointers are valid for their lengths.
unsafe fn hkdf_params(p: CK_HKDF_PARAMS) -> Result<HkdfParams> {
    let flag = |b: CK_BBOOL| match b {
        CK_FALSE => Ok(false),
        CK_TRUE => Ok(true),
        _ => Err(Error::MechanismParamInvalid),
    };
    let salt = match p.ulSaltType {
        CKF_HKDF_SALT_NULL => HkdfSalt::Null,
        // SAFETY: forwarded contract.
        CKF_HKDF_SALT_DATA => HkdfSalt::Data(unsafe { parameter_bytes(p.pSalt, p.ulSaltLen)? }),
        CKF_HKDF_SALT_KEY => HkdfSalt::Key(p.hSaltKey),
        _ => return Err(Error::MechanismParamInvalid),
    };
    Ok(HkdfParams {
        extract: flag(p.bExtract)?,
        expand: flag(p.bExpand)?,
        prf: p.prfHashMechanism,
        salt,
        // SAFETY: forwarded contract.
        info: unsafe { parameter_bytes(p.pInfo, p.ulInfoLen)? },
    })
}

/// Reads a `T` that a `CK_PRF_DATA_PARAM` points to; it must be exactly that size.
///
/// # Safety
/// A non-NULL `ptr` points to `len` readable bytes.
unsafe fn value<T: Copy>(ptr: *const std::ffi::c_void, len: CK_ULONG) -> Result<T> {
    if ptr.is_null() || to_usize(len)? != size_of::<T>() {
        return Err(Error::MechanismParamInvalid);
    }
    // SAFETY: non-NULL and exactly the size of T; read unaligned.
    Ok(unsafe { (ptr as *const T).read_unaligned() })
}

/// The most data parameters accepted: a bound on what one call makes the module allocate.
const MAX_DATA_PARAMS: usize = 64;

/// # Safety
/// A non-NULL `ptr` points to `count` `CK_PRF_DATA_PARAM`s whose values are valid for their
/// lengths.
unsafe fn prf_data(ptr: *const CK_PRF_DATA_PARAM, count: CK_ULONG) -> Result<Vec<PrfData>> {
    let count = to_usize(count)?;
    if ptr.is_null() || count == 0 || count > MAX_DATA_PARAMS {
        return Err(Error::MechanismParamInvalid);
    }
    let counter = |f: CK_SP800_108_COUNTER_FORMAT| CounterFormat {
        little_endian: f.bLittleEndian != CK_FALSE,
        width_bits: f.ulWidthInBits,
    };
    let mut out = Vec::with_capacity(count);
    for i in 0..count {
        // SAFETY: `i < count` entries are readable by contract; read unaligned.
        let d = unsafe { ptr.add(i).read_unaligned() };
        // SAFETY: each value pointer is valid for its length by contract.
        out.push(unsafe {
            match d.type_ {
                CK_SP800_108_ITERATION_VARIABLE if d.pValue.is_null() && d.ulValueLen == 0 => {
                    PrfData::Iteration(None)
                }
                CK_SP800_108_ITERATION_VARIABLE => {
                    PrfData::Iteration(Some(counter(value(d.pValue, d.ulValueLen)?)))
                }
                CK_SP800_108_OPTIONAL_COUNTER => {
                    PrfData::OptionalCounter(counter(value(d.pValue, d.ulValueLen)?))
                }
                CK_SP800_108_DKM_LENGTH => {
                    let f: CK_SP800_108_DKM_LENGTH_FORMAT = value(d.pValue, d.ulValueLen)?;
                    PrfData::DkmLength(DkmFormat {
                        method: f.dkmLengthMethod,
                        little_endian: f.bLittleEndian != CK_FALSE,
                        width_bits: f.ulWidthInBits,
                    })
                }
                CK_SP800_108_BYTE_ARRAY => {
                    PrfData::Bytes(parameter_bytes(d.pValue as *const u8, d.ulValueLen)?)
                }
                CK_SP800_108_KEY_HANDLE => PrfData::KeyHandle(value(d.pValue, d.ulValueLen)?),
                _ => return Err(Error::MechanismParamInvalid),
            }
        });
    }
    Ok(out)
}
