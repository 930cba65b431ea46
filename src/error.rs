//! The one error type of the core, and its one mapping to `CK_RV`.
//!
//! Variants are named after the condition, not the return code, so that the core reads as
//! prose; [`Error::ck_rv`] is the single exhaustive `match` that turns them into codes.
//! Messages never carry secret material.

use cryptoki_sys::*;

pub type Result<T> = std::result::Result<T, Error>;

#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    ArgumentsBad,
    AttributeReadOnly,
    AttributeSensitive,
    AttributeTypeInvalid,
    AttributeValueInvalid,
    /// The caller's buffer is too small; `needed` bytes are required. The operation stays
    /// active, as the specification requires.
    BufferTooSmall {
        needed: usize,
    },
    CryptokiAlreadyInitialized,
    CryptokiNotInitialized,
    /// A named elliptic curve the token does not offer (on generation and on import alike).
    CurveNotSupported,
    DataInvalid,
    /// The key service's connection was lost during the call; its sessions are gone.
    DeviceRemoved,
    DataLenRange,
    EncryptedDataInvalid,
    EncryptedDataLenRange,
    FunctionNotSupported,
    /// Legacy parallel-function calls (`C_GetFunctionStatus`, `C_CancelFunction`).
    FunctionNotParallel,
    KeyFunctionNotPermitted,
    KeyHandleInvalid,
    KeyIndigestible,
    KeyNotWrappable,
    KeySizeRange,
    KeyTypeInconsistent,
    KeyUnextractable,
    MechanismInvalid,
    MechanismParamInvalid,
    /// `C_WaitForSlotEvent` with `CKF_DONT_BLOCK` and no event.
    NoEvent,
    ObjectHandleInvalid,
    OperationActive,
    OperationNotInitialized,
    PinIncorrect,
    PinInvalid,
    PinLenRange,
    PinLocked,
    /// A policy document that does not parse or validate; the text names the line.
    PolicyInvalid(String),
    RandomSeedNotSupported,
    /// The key service's limit of sessions per connection is reached.
    SessionCount,
    SessionExists,
    SignatureInvalid,
    SignatureLenRange,
    SessionHandleInvalid,
    SessionParallelNotSupported,
    SessionReadOnly,
    SessionReadOnlyExists,
    SessionReadWriteSoExists,
    SlotIdInvalid,
    TemplateIncomplete,
    TemplateInconsistent,
    TokenNotRecognized,
    UserAlreadyLoggedIn,
    UserAnotherAlreadyLoggedIn,
    UserNotLoggedIn,
    UserPinNotInitialized,
    UserTypeInvalid,
    UnwrappingKeyHandleInvalid,
    UnwrappingKeyTypeInconsistent,
    WrappedKeyInvalid,
    WrappedKeyLenRange,
    WrappingKeyHandleInvalid,
    WrappingKeyTypeInconsistent,
    ActionProhibited,
    /// Another process held the store for longer than the configured busy timeout.
    StoreBusy,
    /// The store file is unreadable, of an unknown schema, or failed an integrity check.
    StoreCorrupt(String),
    /// An I/O or database failure; the text is for the log, never for the caller.
    Device(String),
    /// A broken internal invariant; logged, reported as `CKR_GENERAL_ERROR`.
    Internal(&'static str),
}

impl Error {
    /// The return code a PKCS#11 caller sees.
    pub fn ck_rv(&self) -> CK_RV {
        match self {
            Error::ArgumentsBad => CKR_ARGUMENTS_BAD,
            Error::AttributeReadOnly => CKR_ATTRIBUTE_READ_ONLY,
            Error::AttributeSensitive => CKR_ATTRIBUTE_SENSITIVE,
            Error::AttributeTypeInvalid => CKR_ATTRIBUTE_TYPE_INVALID,
            Error::AttributeValueInvalid => CKR_ATTRIBUTE_VALUE_INVALID,
            Error::BufferTooSmall { .. } => CKR_BUFFER_TOO_SMALL,
            Error::CryptokiAlreadyInitialized => CKR_CRYPTOKI_ALREADY_INITIALIZED,
            Error::CryptokiNotInitialized => CKR_CRYPTOKI_NOT_INITIALIZED,
            Error::CurveNotSupported => CKR_CURVE_NOT_SUPPORTED,
            Error::DataInvalid => CKR_DATA_INVALID,
            Error::DeviceRemoved => CKR_DEVICE_REMOVED,
            Error::DataLenRange => CKR_DATA_LEN_RANGE,
            Error::EncryptedDataInvalid => CKR_ENCRYPTED_DATA_INVALID,
            Error::EncryptedDataLenRange => CKR_ENCRYPTED_DATA_LEN_RANGE,
            Error::FunctionNotSupported => CKR_FUNCTION_NOT_SUPPORTED,
            Error::FunctionNotParallel => CKR_FUNCTION_NOT_PARALLEL,
            Error::KeyFunctionNotPermitted => CKR_KEY_FUNCTION_NOT_PERMITTED,
            Error::KeyHandleInvalid => CKR_KEY_HANDLE_INVALID,
            Error::KeyIndigestible => CKR_KEY_INDIGESTIBLE,
            Error::KeyNotWrappable => CKR_KEY_NOT_WRAPPABLE,
            Error::KeySizeRange => CKR_KEY_SIZE_RANGE,
            Error::KeyTypeInconsistent => CKR_KEY_TYPE_INCONSISTENT,
            Error::KeyUnextractable => CKR_KEY_UNEXTRACTABLE,
            Error::MechanismInvalid => CKR_MECHANISM_INVALID,
            Error::MechanismParamInvalid => CKR_MECHANISM_PARAM_INVALID,
            Error::NoEvent => CKR_NO_EVENT,
            Error::ObjectHandleInvalid => CKR_OBJECT_HANDLE_INVALID,
            Error::OperationActive => CKR_OPERATION_ACTIVE,
            Error::OperationNotInitialized => CKR_OPERATION_NOT_INITIALIZED,
            Error::PinIncorrect => CKR_PIN_INCORRECT,
            Error::PinInvalid => CKR_PIN_INVALID,
            Error::PinLenRange => CKR_PIN_LEN_RANGE,
            Error::PinLocked => CKR_PIN_LOCKED,
            Error::PolicyInvalid(_) => CKR_ARGUMENTS_BAD,
            Error::RandomSeedNotSupported => CKR_RANDOM_SEED_NOT_SUPPORTED,
            Error::SessionCount => CKR_SESSION_COUNT,
            Error::SessionExists => CKR_SESSION_EXISTS,
            Error::SignatureInvalid => CKR_SIGNATURE_INVALID,
            Error::SignatureLenRange => CKR_SIGNATURE_LEN_RANGE,
            Error::SessionHandleInvalid => CKR_SESSION_HANDLE_INVALID,
            Error::SessionParallelNotSupported => CKR_SESSION_PARALLEL_NOT_SUPPORTED,
            Error::SessionReadOnly => CKR_SESSION_READ_ONLY,
            Error::SessionReadOnlyExists => CKR_SESSION_READ_ONLY_EXISTS,
            Error::SessionReadWriteSoExists => CKR_SESSION_READ_WRITE_SO_EXISTS,
            Error::SlotIdInvalid => CKR_SLOT_ID_INVALID,
            Error::TemplateIncomplete => CKR_TEMPLATE_INCOMPLETE,
            Error::TemplateInconsistent => CKR_TEMPLATE_INCONSISTENT,
            Error::TokenNotRecognized => CKR_TOKEN_NOT_RECOGNIZED,
            Error::UserAlreadyLoggedIn => CKR_USER_ALREADY_LOGGED_IN,
            Error::UserAnotherAlreadyLoggedIn => CKR_USER_ANOTHER_ALREADY_LOGGED_IN,
            Error::UserNotLoggedIn => CKR_USER_NOT_LOGGED_IN,
            Error::UserPinNotInitialized => CKR_USER_PIN_NOT_INITIALIZED,
            Error::UserTypeInvalid => CKR_USER_TYPE_INVALID,
            Error::UnwrappingKeyHandleInvalid => CKR_UNWRAPPING_KEY_HANDLE_INVALID,
            Error::UnwrappingKeyTypeInconsistent => CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT,
            Error::WrappedKeyInvalid => CKR_WRAPPED_KEY_INVALID,
            Error::WrappedKeyLenRange => CKR_WRAPPED_KEY_LEN_RANGE,
            Error::WrappingKeyHandleInvalid => CKR_WRAPPING_KEY_HANDLE_INVALID,
            Error::WrappingKeyTypeInconsistent => CKR_WRAPPING_KEY_TYPE_INCONSISTENT,
            Error::ActionProhibited => CKR_ACTION_PROHIBITED,
            // A busy store is reported as a failed function the caller may retry, never as a
            // memory or general error.
            Error::StoreBusy => CKR_FUNCTION_FAILED,
            Error::StoreCorrupt(_) => CKR_DEVICE_ERROR,
            Error::Device(_) => CKR_DEVICE_ERROR,
            Error::Internal(_) => CKR_GENERAL_ERROR,
        }
    }

    /// Faults worth a line in the log (never containing secrets).
    pub fn is_fault(&self) -> bool {
        matches!(self, Error::StoreBusy | Error::StoreCorrupt(_) | Error::Device(_) | Error::Internal(_))
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::StoreCorrupt(m) => write!(f, "token store corrupt: {m}"),
            Error::PolicyInvalid(m) => write!(f, "policy refused: {m}"),
            Error::Device(m) => write!(f, "device error: {m}"),
            Error::Internal(m) => write!(f, "internal error: {m}"),
            other => write!(f, "{other:?}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        use rusqlite::ErrorCode;
        match e.sqlite_error_code() {
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => Error::StoreBusy,
            Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => Error::StoreCorrupt(e.to_string()),
            _ => Error::Device(e.to_string()),
        }
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Device(e.to_string())
    }
}

/// Reports a fault through the `log` facade (the library never prints by itself: the
/// application's logger, or the one `ECM_HSM_LOG` installs, decides where it goes). Callers
/// pass only non-secret text (error kinds, file names).
pub fn log_fault(context: &str, error: &Error) {
    log::warn!("{context}: {error}");
}

/// Installs a logger to standard error when `ECM_HSM_LOG` is set (`1`/any text: warnings;
/// or a level such as `info`, `debug`), unless the process already has a logger. For C
/// applications, which have no Rust logger of their own, and for the admin tool.
pub fn install_env_logger() {
    let Some(setting) = std::env::var_os("ECM_HSM_LOG") else { return };
    let level =
        setting.to_str().and_then(|s| s.parse::<log::LevelFilter>().ok()).unwrap_or(log::LevelFilter::Warn);
    let _ =
        env_logger::Builder::new().filter_level(level).format_timestamp(None).format_target(false).try_init();
}
