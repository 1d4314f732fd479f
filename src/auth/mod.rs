//! Who may do what: roles, permissions, credentials, rate limits and the rules for accounts.
//!
//! Owns the role vocabulary shared by `oidc.json` (`default_role`) and the store, the one
//! permission check ([`permission::permits`]), password and key hashing, creating and changing
//! accounts, issuing and authenticating API keys, and the steps of a device login. Its only I/O
//! is through [`crate::store::Store`]; it knows nothing of HTTP.

pub(crate) mod access;
pub(crate) mod account;
pub mod credential;
pub(crate) mod device;
pub(crate) mod key_cache;
pub(crate) mod key_usage;
pub(crate) mod keys;
pub(crate) mod permission;
pub(crate) mod provision;
pub(crate) mod ratelimit;

pub use crate::vocab::{Role, role, text};
pub use permission::Permission;
