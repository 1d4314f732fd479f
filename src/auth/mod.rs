//! Who may do what: roles and (later) passwords, sessions, API keys and device login.
//!
//! This module owns the role vocabulary shared by `oidc.json` (`default_role`) and the accounts
//! store. It must not do I/O.

pub mod account;
pub mod credential;
pub mod role;

pub use role::Role;
