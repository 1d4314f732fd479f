//! Who may do what: roles, permissions, credentials, rate limits and the rules for accounts.
//!
//! Owns the role vocabulary shared by `oidc.json` (`default_role`) and the store, the one
//! permission check ([`permission::permits`]), password and key hashing, and creating and
//! changing accounts. Its only I/O is through [`crate::store::Store`].

pub mod account;
pub mod credential;
pub mod device;
pub mod key_cache;
pub mod key_usage;
pub mod keys;
pub mod permission;
pub mod provision;
pub mod ratelimit;

pub use crate::vocab::{Role, role, text};
pub use permission::Permission;
