//! Who may do what: roles, credentials and the rules for accounts.
//!
//! Owns the role vocabulary shared by `oidc.json` (`default_role`) and the store, password and
//! key hashing, and creating accounts. Its only I/O is through [`crate::store::Store`].

pub mod account;
pub mod credential;
pub mod role;

pub use role::Role;
