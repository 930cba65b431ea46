//! The return values each function may give, from the PKCS#11 3.0 base specification
//! (section 5, each function's "Return values"; the verification with the signature first
//! from 3.2's "Functions for verifying signatures and MACs"), so that the driver can tell a
//! refusal the standard allows from one it does not.
//!
//! Every function may also answer the codes in `ANY` (section 5.1: general errors, and the
//! stub answer for an unsupported function); every function that takes a session handle the
//! codes in `SESSION` (section 5.1: session handle and device errors).

use cryptoki_sys::*;

const ANY: &[CK_RV] = &[
    CKR_OK,
    CKR_GENERAL_ERROR,
    CKR_HOST_MEMORY,
    CKR_FUNCTION_FAILED,
    CKR_FUNCTION_NOT_SUPPORTED,
    CKR_CRYPTOKI_NOT_INITIALIZED,
    CKR_ARGUMENTS_BAD,
];

const SESSION: &[CK_RV] = &[
    CKR_SESSION_HANDLE_INVALID,
    CKR_SESSION_CLOSED,
    CKR_DEVICE_ERROR,
    CKR_DEVICE_MEMORY,
    CKR_DEVICE_REMOVED,
    CKR_TOKEN_NOT_PRESENT,
    CKR_FUNCTION_CANCELED,
];

const TOKEN: &[CK_RV] = &[
    CKR_SLOT_ID_INVALID,
    CKR_TOKEN_NOT_PRESENT,
    CKR_TOKEN_NOT_RECOGNIZED,
    CKR_DEVICE_ERROR,
    CKR_DEVICE_MEMORY,
    CKR_DEVICE_REMOVED,
];

/// Codes of an operation's `*Init` with a key (encrypt, decrypt, sign, verify, message).
const KEY_INIT: &[CK_RV] = &[
    CKR_KEY_FUNCTION_NOT_PERMITTED,
    CKR_KEY_HANDLE_INVALID,
    CKR_KEY_SIZE_RANGE,
    CKR_KEY_TYPE_INCONSISTENT,
    CKR_MECHANISM_INVALID,
    CKR_MECHANISM_PARAM_INVALID,
    CKR_OPERATION_ACTIVE,
    CKR_PIN_EXPIRED,
    CKR_USER_NOT_LOGGED_IN,
];

/// Codes of the calls that make an object from a template (generate, unwrap, derive).
const NEW_OBJECT: &[CK_RV] = &[
    CKR_ATTRIBUTE_READ_ONLY,
    CKR_ATTRIBUTE_TYPE_INVALID,
    CKR_ATTRIBUTE_VALUE_INVALID,
    CKR_CURVE_NOT_SUPPORTED,
    CKR_DOMAIN_PARAMS_INVALID,
    CKR_MECHANISM_INVALID,
    CKR_MECHANISM_PARAM_INVALID,
    CKR_OPERATION_ACTIVE,
    CKR_PIN_EXPIRED,
    CKR_SESSION_READ_ONLY,
    CKR_TEMPLATE_INCOMPLETE,
    CKR_TEMPLATE_INCONSISTENT,
    CKR_TOKEN_WRITE_PROTECTED,
    CKR_USER_NOT_LOGGED_IN,
];

/// The codes the standard lists for `function`, beyond `ANY`; `None` for a function this
/// table does not cover (the driver never calls one).
fn specific(function: &str) -> Option<(bool, &'static [CK_RV])> {
    use CKR_BUFFER_TOO_SMALL as SMALL;
    use CKR_OPERATION_NOT_INITIALIZED as NOT_INIT;
    // (takes a session handle, codes)
    let entry: (bool, &'static [CK_RV]) = match function {
        "C_Initialize" => {
            (false, &[CKR_CANT_LOCK, CKR_CRYPTOKI_ALREADY_INITIALIZED, CKR_NEED_TO_CREATE_THREADS])
        }
        "C_Finalize" | "C_GetInfo" | "C_GetInterfaceList" | "C_GetInterface" => (false, &[SMALL]),
        "C_GetSlotList" => (false, &[SMALL]),
        "C_GetSlotInfo" => (false, TOKEN),
        "C_GetTokenInfo" => (false, TOKEN),
        "C_GetMechanismList" => {
            (false, &[SMALL, CKR_SLOT_ID_INVALID, CKR_TOKEN_NOT_PRESENT, CKR_TOKEN_NOT_RECOGNIZED])
        }
        "C_GetMechanismInfo" => (
            false,
            &[CKR_MECHANISM_INVALID, CKR_SLOT_ID_INVALID, CKR_TOKEN_NOT_PRESENT, CKR_TOKEN_NOT_RECOGNIZED],
        ),
        "C_InitToken" => (
            false,
            &[
                CKR_PIN_INCORRECT,
                CKR_PIN_LOCKED,
                CKR_SESSION_EXISTS,
                CKR_SLOT_ID_INVALID,
                CKR_TOKEN_NOT_PRESENT,
                CKR_TOKEN_NOT_RECOGNIZED,
                CKR_TOKEN_WRITE_PROTECTED,
                CKR_DEVICE_ERROR,
                CKR_DEVICE_MEMORY,
                CKR_DEVICE_REMOVED,
                CKR_FUNCTION_CANCELED,
            ],
        ),
        "C_InitPIN" => (
            true,
            &[
                CKR_PIN_INVALID,
                CKR_PIN_LEN_RANGE,
                CKR_SESSION_READ_ONLY,
                CKR_TOKEN_WRITE_PROTECTED,
                CKR_USER_NOT_LOGGED_IN,
            ],
        ),
        "C_SetPIN" => (
            true,
            &[
                CKR_PIN_INCORRECT,
                CKR_PIN_INVALID,
                CKR_PIN_LEN_RANGE,
                CKR_PIN_LOCKED,
                CKR_SESSION_READ_ONLY,
                CKR_TOKEN_WRITE_PROTECTED,
            ],
        ),
        "C_OpenSession" => (
            false,
            &[
                CKR_SESSION_COUNT,
                CKR_SESSION_PARALLEL_NOT_SUPPORTED,
                CKR_SESSION_READ_WRITE_SO_EXISTS,
                CKR_SLOT_ID_INVALID,
                CKR_TOKEN_NOT_PRESENT,
                CKR_TOKEN_NOT_RECOGNIZED,
                CKR_TOKEN_WRITE_PROTECTED,
                CKR_DEVICE_ERROR,
                CKR_DEVICE_MEMORY,
                CKR_DEVICE_REMOVED,
            ],
        ),
        "C_CloseSession" | "C_GetSessionInfo" => (true, &[]),
        "C_CloseAllSessions" => (false, TOKEN),
        "C_GetOperationState" => (true, &[SMALL, NOT_INIT, CKR_STATE_UNSAVEABLE]),
        "C_SetOperationState" => {
            (true, &[CKR_KEY_CHANGED, CKR_KEY_NEEDED, CKR_KEY_NOT_NEEDED, CKR_SAVED_STATE_INVALID])
        }
        "C_Login" | "C_LoginUser" => (
            true,
            &[
                NOT_INIT,
                CKR_PIN_INCORRECT,
                CKR_PIN_LOCKED,
                CKR_SESSION_READ_ONLY_EXISTS,
                CKR_USER_ALREADY_LOGGED_IN,
                CKR_USER_ANOTHER_ALREADY_LOGGED_IN,
                CKR_USER_PIN_NOT_INITIALIZED,
                CKR_USER_TOO_MANY_TYPES,
                CKR_USER_TYPE_INVALID,
            ],
        ),
        "C_Logout" => (true, &[CKR_USER_NOT_LOGGED_IN]),
        "C_CreateObject" => (
            true,
            &[
                CKR_ATTRIBUTE_READ_ONLY,
                CKR_ATTRIBUTE_TYPE_INVALID,
                CKR_ATTRIBUTE_VALUE_INVALID,
                CKR_CURVE_NOT_SUPPORTED,
                CKR_DOMAIN_PARAMS_INVALID,
                CKR_PIN_EXPIRED,
                CKR_SESSION_READ_ONLY,
                CKR_TEMPLATE_INCOMPLETE,
                CKR_TEMPLATE_INCONSISTENT,
                CKR_TOKEN_WRITE_PROTECTED,
                CKR_USER_NOT_LOGGED_IN,
            ],
        ),
        "C_CopyObject" => (
            true,
            &[
                CKR_ACTION_PROHIBITED,
                CKR_ATTRIBUTE_READ_ONLY,
                CKR_ATTRIBUTE_TYPE_INVALID,
                CKR_ATTRIBUTE_VALUE_INVALID,
                CKR_OBJECT_HANDLE_INVALID,
                CKR_PIN_EXPIRED,
                CKR_SESSION_READ_ONLY,
                CKR_TEMPLATE_INCONSISTENT,
                CKR_TOKEN_WRITE_PROTECTED,
                CKR_USER_NOT_LOGGED_IN,
            ],
        ),
        "C_DestroyObject" => (
            true,
            &[
                CKR_ACTION_PROHIBITED,
                CKR_OBJECT_HANDLE_INVALID,
                CKR_PIN_EXPIRED,
                CKR_SESSION_READ_ONLY,
                CKR_TOKEN_WRITE_PROTECTED,
            ],
        ),
        "C_GetObjectSize" => (true, &[CKR_INFORMATION_SENSITIVE, CKR_OBJECT_HANDLE_INVALID]),
        "C_GetAttributeValue" => {
            (true, &[CKR_ATTRIBUTE_SENSITIVE, CKR_ATTRIBUTE_TYPE_INVALID, SMALL, CKR_OBJECT_HANDLE_INVALID])
        }
        "C_SetAttributeValue" => (
            true,
            &[
                CKR_ACTION_PROHIBITED,
                CKR_ATTRIBUTE_READ_ONLY,
                CKR_ATTRIBUTE_TYPE_INVALID,
                CKR_ATTRIBUTE_VALUE_INVALID,
                CKR_OBJECT_HANDLE_INVALID,
                CKR_SESSION_READ_ONLY,
                CKR_TEMPLATE_INCONSISTENT,
                CKR_TOKEN_WRITE_PROTECTED,
                CKR_USER_NOT_LOGGED_IN,
            ],
        ),
        "C_FindObjectsInit" => (
            true,
            &[CKR_ATTRIBUTE_TYPE_INVALID, CKR_ATTRIBUTE_VALUE_INVALID, CKR_OPERATION_ACTIVE, CKR_PIN_EXPIRED],
        ),
        "C_FindObjects" | "C_FindObjectsFinal" => (true, &[NOT_INIT]),
        "C_EncryptInit"
        | "C_DecryptInit"
        | "C_SignInit"
        | "C_VerifyInit"
        | "C_MessageEncryptInit"
        | "C_MessageDecryptInit" => (true, KEY_INIT),
        "C_Encrypt" | "C_EncryptUpdate" => (true, &[SMALL, CKR_DATA_INVALID, CKR_DATA_LEN_RANGE, NOT_INIT]),
        "C_EncryptFinal" => (true, &[SMALL, CKR_DATA_LEN_RANGE, NOT_INIT]),
        "C_Decrypt" | "C_DecryptUpdate" | "C_DecryptFinal" => (
            true,
            &[
                SMALL,
                CKR_ENCRYPTED_DATA_INVALID,
                CKR_ENCRYPTED_DATA_LEN_RANGE,
                CKR_AEAD_DECRYPT_FAILED,
                NOT_INIT,
                CKR_USER_NOT_LOGGED_IN,
            ],
        ),
        "C_DigestInit" => (
            true,
            &[
                CKR_MECHANISM_INVALID,
                CKR_MECHANISM_PARAM_INVALID,
                CKR_OPERATION_ACTIVE,
                CKR_PIN_EXPIRED,
                CKR_USER_NOT_LOGGED_IN,
            ],
        ),
        "C_Digest" | "C_DigestFinal" => (true, &[SMALL, NOT_INIT]),
        "C_DigestUpdate" => (true, &[NOT_INIT]),
        "C_DigestKey" => {
            (true, &[CKR_KEY_HANDLE_INVALID, CKR_KEY_INDIGESTIBLE, CKR_KEY_SIZE_RANGE, NOT_INIT])
        }
        "C_Sign" | "C_SignFinal" => (
            true,
            &[
                SMALL,
                CKR_DATA_INVALID,
                CKR_DATA_LEN_RANGE,
                NOT_INIT,
                CKR_USER_NOT_LOGGED_IN,
                CKR_FUNCTION_REJECTED,
            ],
        ),
        "C_SignUpdate" => (true, &[CKR_DATA_LEN_RANGE, NOT_INIT, CKR_USER_NOT_LOGGED_IN]),
        "C_Verify" | "C_VerifyFinal" => (
            true,
            &[CKR_DATA_INVALID, CKR_DATA_LEN_RANGE, NOT_INIT, CKR_SIGNATURE_INVALID, CKR_SIGNATURE_LEN_RANGE],
        ),
        "C_VerifyUpdate" => (true, &[CKR_DATA_LEN_RANGE, NOT_INIT]),
        // 3.2: C_VerifyInit's codes and the signature's length; the steps as C_Verify's, but
        // C_VerifySignatureUpdate and C_VerifySignatureFinal also list CKR_TOKEN_RESOURCE_EXCEEDED.
        "C_VerifySignatureInit" => (
            true,
            &[
                CKR_KEY_FUNCTION_NOT_PERMITTED,
                CKR_KEY_HANDLE_INVALID,
                CKR_KEY_SIZE_RANGE,
                CKR_KEY_TYPE_INCONSISTENT,
                CKR_MECHANISM_INVALID,
                CKR_MECHANISM_PARAM_INVALID,
                CKR_OPERATION_ACTIVE,
                CKR_PIN_EXPIRED,
                CKR_SIGNATURE_LEN_RANGE,
                CKR_USER_NOT_LOGGED_IN,
                CKR_OPERATION_CANCEL_FAILED,
            ],
        ),
        "C_VerifySignature" => (
            true,
            &[
                CKR_DATA_INVALID,
                CKR_DATA_LEN_RANGE,
                NOT_INIT,
                CKR_SIGNATURE_INVALID,
                CKR_SIGNATURE_LEN_RANGE,
                CKR_TOKEN_RESOURCE_EXCEEDED,
            ],
        ),
        "C_VerifySignatureUpdate" => (true, &[CKR_DATA_LEN_RANGE, NOT_INIT, CKR_TOKEN_RESOURCE_EXCEEDED]),
        "C_VerifySignatureFinal" => (
            true,
            &[
                CKR_DATA_LEN_RANGE,
                NOT_INIT,
                CKR_SIGNATURE_INVALID,
                CKR_SIGNATURE_LEN_RANGE,
                CKR_TOKEN_RESOURCE_EXCEEDED,
            ],
        ),
        "C_GenerateKey" | "C_GenerateKeyPair" => (true, NEW_OBJECT),
        "C_WrapKey" => (
            true,
            &[
                SMALL,
                CKR_KEY_HANDLE_INVALID,
                CKR_KEY_NOT_WRAPPABLE,
                CKR_KEY_SIZE_RANGE,
                CKR_KEY_UNEXTRACTABLE,
                CKR_MECHANISM_INVALID,
                CKR_MECHANISM_PARAM_INVALID,
                CKR_OPERATION_ACTIVE,
                CKR_PIN_EXPIRED,
                CKR_USER_NOT_LOGGED_IN,
                CKR_WRAPPING_KEY_HANDLE_INVALID,
                CKR_WRAPPING_KEY_SIZE_RANGE,
                CKR_WRAPPING_KEY_TYPE_INCONSISTENT,
            ],
        ),
        "C_UnwrapKey" => (
            true,
            &[
                SMALL,
                CKR_UNWRAPPING_KEY_HANDLE_INVALID,
                CKR_UNWRAPPING_KEY_SIZE_RANGE,
                CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT,
                CKR_WRAPPED_KEY_INVALID,
                CKR_WRAPPED_KEY_LEN_RANGE,
            ],
        ),
        "C_DeriveKey" => (true, &[CKR_KEY_HANDLE_INVALID, CKR_KEY_SIZE_RANGE, CKR_KEY_TYPE_INCONSISTENT]),
        "C_SeedRandom" => (true, &[CKR_OPERATION_ACTIVE, CKR_RANDOM_SEED_NOT_SUPPORTED, CKR_RANDOM_NO_RNG]),
        "C_GenerateRandom" => (true, &[CKR_OPERATION_ACTIVE, CKR_RANDOM_NO_RNG]),
        "C_GetFunctionStatus" | "C_CancelFunction" => (true, &[CKR_FUNCTION_NOT_PARALLEL]),
        "C_WaitForSlotEvent" => (false, &[CKR_NO_EVENT]),
        "C_SessionCancel" => (true, &[CKR_OPERATION_CANCEL_FAILED]),
        "C_EncryptMessage" => (
            true,
            &[
                SMALL,
                CKR_DATA_INVALID,
                CKR_DATA_LEN_RANGE,
                CKR_MECHANISM_PARAM_INVALID,
                CKR_OPERATION_ACTIVE,
                NOT_INIT,
            ],
        ),
        "C_DecryptMessage" => (
            true,
            &[
                SMALL,
                CKR_ENCRYPTED_DATA_INVALID,
                CKR_ENCRYPTED_DATA_LEN_RANGE,
                CKR_AEAD_DECRYPT_FAILED,
                CKR_MECHANISM_PARAM_INVALID,
                CKR_OPERATION_ACTIVE,
                NOT_INIT,
                CKR_USER_NOT_LOGGED_IN,
            ],
        ),
        "C_MessageEncryptFinal" | "C_MessageDecryptFinal" => (true, &[NOT_INIT]),
        _ => return None,
    };
    Some(entry)
}

/// Whether the standard lets `function` answer `rv`.
pub fn allowed(function: &str, rv: CK_RV) -> bool {
    let (session, codes) =
        specific(function).unwrap_or_else(|| panic!("no return-value table for {function}"));
    let extra: &[CK_RV] = match function {
        // UnwrapKey and DeriveKey also answer everything a new object's template can cause.
        "C_UnwrapKey" | "C_DeriveKey" => NEW_OBJECT,
        _ => &[],
    };
    ANY.contains(&rv) || codes.contains(&rv) || extra.contains(&rv) || (session && SESSION.contains(&rv))
}

/// The code's name as the `cryptoki` crate spells it (`PinLenRange`), for reports and the
/// allow-list.
pub fn name(rv: CK_RV) -> String {
    match cryptoki::error::Rv::from(rv) {
        cryptoki::error::Rv::Ok => "Ok".into(),
        cryptoki::error::Rv::Error(e) => format!("{e:?}"),
    }
}
