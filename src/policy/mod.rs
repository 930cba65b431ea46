//! Who may do what. Today: the standard's access rules for objects by session state
//! (PKCS#11 3.0 base, section 4.4 and table 5), as pure functions of the session's view.
//! Principals, per-key permissions, in-band approvals (`approval.rs`) and approvals recorded
//! ahead for management operations (`approval_ahead.rs`) are here too.

pub mod approval;
pub mod approval_ahead;
mod custody;
pub mod document;

pub use approval::PendingApproval;
pub use document::{Decision, Operation, Policy};

use cryptoki_sys::*;

use crate::{Error, Result};

/// Who is logged in to a token, for the whole application.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginState {
    Public,
    User,
    SecurityOfficer,
}

/// What one session sees: the application's login state and the session's read/write flag,
/// and whether the user logged in is a named principal rather than the token's user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionView {
    pub login: LoginState,
    pub read_write: bool,
    pub principal: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    None,
    ReadOnly,
    ReadWrite,
}

impl SessionView {
    /// `CK_SESSION_INFO.state`.
    pub fn state(self) -> CK_STATE {
        match (self.login, self.read_write) {
            (LoginState::Public, false) => CKS_RO_PUBLIC_SESSION,
            (LoginState::Public, true) => CKS_RW_PUBLIC_SESSION,
            (LoginState::User, false) => CKS_RO_USER_FUNCTIONS,
            (LoginState::User, true) => CKS_RW_USER_FUNCTIONS,
            (LoginState::SecurityOfficer, _) => CKS_RW_SO_FUNCTIONS,
        }
    }

    /// Access to an object: private objects only for the user; token objects writable only
    /// in read/write sessions; session objects always writable by the sessions that see them.
    pub fn access(self, token: bool, private: bool) -> Access {
        if private && self.login != LoginState::User {
            return Access::None;
        }
        if token && !self.read_write { Access::ReadOnly } else { Access::ReadWrite }
    }

    /// May this session create (or change into) an object with these flags?
    pub fn may_write(self, token: bool, private: bool) -> Result<()> {
        if private && self.login != LoginState::User {
            return Err(Error::UserNotLoggedIn);
        }
        if token && !self.read_write {
            return Err(Error::SessionReadOnly);
        }
        Ok(())
    }

    pub fn is_so(self) -> bool {
        self.login == LoginState::SecurityOfficer
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use LoginState::*;

    fn view(login: LoginState, read_write: bool) -> SessionView {
        SessionView { login, read_write, principal: false }
    }

    /// The whole of the specification's table, row by row.
    #[test]
    fn access_table() {
        use Access::*;
        // (login, rw) → [public session obj, private session obj, public token obj, private token obj]
        let table = [
            (Public, false, [ReadWrite, None, ReadOnly, None]),
            (Public, true, [ReadWrite, None, ReadWrite, None]),
            (User, false, [ReadWrite, ReadWrite, ReadOnly, ReadOnly]),
            (User, true, [ReadWrite, ReadWrite, ReadWrite, ReadWrite]),
            (SecurityOfficer, true, [ReadWrite, None, ReadWrite, None]),
        ];
        for (login, rw, expected) in table {
            let v = view(login, rw);
            let got =
                [v.access(false, false), v.access(false, true), v.access(true, false), v.access(true, true)];
            assert_eq!(got, expected, "{login:?} rw={rw}");
        }
    }

    #[test]
    fn writes_need_login_for_private_and_rw_for_token_objects() {
        assert_eq!(view(Public, true).may_write(false, true), Err(Error::UserNotLoggedIn));
        assert_eq!(view(SecurityOfficer, true).may_write(true, true), Err(Error::UserNotLoggedIn));
        assert_eq!(view(User, false).may_write(true, true), Err(Error::SessionReadOnly));
        assert_eq!(view(User, false).may_write(false, true), Ok(()));
        assert_eq!(view(Public, true).may_write(true, false), Ok(()));
        assert_eq!(view(SecurityOfficer, true).state(), CKS_RW_SO_FUNCTIONS);
        assert_eq!(view(User, false).state(), CKS_RO_USER_FUNCTIONS);
    }
}
