//! OpenID Connect as a relying party: the live identity provider ([`provider`]), the HTTP client
//! it uses ([`http`]) and the authorization code flow ([`flow`]).
//!
//! This module never touches the store or the browser: the routes in `crate::http::sso` keep the
//! pending login, and `crate::auth::provision` turns a verified identity into a user.

pub mod flow;
pub mod http;
pub mod provider;

pub use provider::{ProviderHandle, ProviderState, ProviderStatus};
