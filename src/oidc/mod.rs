//! OpenID Connect as a relying party: the live identity provider ([`provider`]), the HTTP client
//! it uses ([`http`]) and the authorization code flow ([`flow`]).
//!
//! This module never touches the store or the browser: the routes in `crate::http::sso` keep the
//! pending login, and `crate::auth::provision` turns a verified identity into a user.

pub mod claims;
pub mod failures;
pub mod flow;
pub mod http;
pub mod jws;
pub mod provider;

pub use provider::{ProviderHandle, ProviderState, ProviderStatus};

/// An error with its cause chain, in one line (for the operator's log and the status detail;
/// errors here never carry a secret).
pub(crate) fn describe(e: &dyn std::error::Error) -> String {
    let mut message = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.contains(&text) {
            message = format!("{message}: {text}");
        }
        source = cause.source();
    }
    message
}

/// Where `issuer` publishes its discovery document (OpenID Connect Discovery 1.0, section 4).
pub fn discovery_url(issuer: &str) -> String {
    format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    )
}
