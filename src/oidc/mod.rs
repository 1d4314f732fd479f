//! OpenID Connect as a relying party: the live identity provider ([`provider`]), the HTTP client
//! it uses ([`http`]) and the authorization code flow ([`flow`]).
//!
//! This module does no store I/O and renders no page: it builds the pending login that the
//! routes in `crate::http::sso` keep and consume, and `crate::auth::provision` turns a verified
//! identity into a user. Its only writer of the provider snapshot is [`provider::run_provider`]
//! (with the requests that find the provider gone marking it unreachable).

pub(crate) mod claims;
pub(crate) mod failures;
pub(crate) mod flow;
pub(crate) mod http;
pub(crate) mod jws;
pub(crate) mod logout;
pub(crate) mod provider;

pub use provider::{ProviderHandle, ProviderState, ProviderStatus};

/// An error with its cause chain, in one line (for the operator's log and the status detail;
/// errors here never carry a secret).
pub(crate) use crate::report::chain as describe;

/// Where `issuer` publishes its discovery document (OpenID Connect Discovery 1.0, section 4).
pub fn discovery_url(issuer: &str) -> String {
    format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    )
}
