//! What `C_GetTokenInfo` answers: the token's own record and the sessions open on it. A plain
//! value that the module's facade and the key service's client both make.

use crate::token::TokenInfo;

/// What `C_GetTokenInfo` needs beyond the token's own record.
pub struct TokenStatus {
    pub info: TokenInfo,
    pub session_count: usize,
    pub rw_session_count: usize,
}
