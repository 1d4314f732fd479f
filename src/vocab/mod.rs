//! The shared vocabulary at the bottom of the crate: the names and wire types that the store,
//! the setup repository, the relying party, the HTTP surface and the `coder` client all speak.
//! Only plain data, its parsing, and the one rule for names shown to people live here: no I/O.

pub mod error;
pub mod provider;
pub mod role;
pub mod text;
pub mod user;

pub use error::ErrorCode;
pub use provider::{ProviderState, ProviderStatus};
pub use role::{ROLE_NAMES, Role};
pub use user::{AccessBinding, UserSource, UserView, UserViewRef};
