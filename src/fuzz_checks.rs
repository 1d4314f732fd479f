//! The properties the fuzz targets check (`fuzz/`), kept here so the regression tests run the
//! same checks on every input fuzzing ever found (`fuzz/regressions/<target>/`) in `cargo test`.
//!
//! Each function takes arbitrary bytes and panics when a property fails; a parser that panics by
//! itself fails too.

// Properties for the fuzz targets: a broken property panics, which is what a fuzzer looks for.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::auth::credential::api_key_hash;
use crate::auth::device::{USER_CODE_ALPHABET, USER_CODE_LEN, normalise_user_code};
use crate::http::return_to::safe_return_to;
use crate::http::session::cookie_value;
use crate::http::sso::parse_callback;
use crate::setup::config::parse_oidc_config;

/// A property check over arbitrary bytes.
pub type Check = fn(&[u8]);

/// Every fuzz target: name and check.
pub const TARGETS: &[(&str, Check)] = &[
    ("oidc_config", oidc_config),
    ("callback_query", callback_query),
    ("return_to", return_to),
    ("user_code", user_code),
    ("api_key", api_key),
    ("session_cookie", session_cookie),
];

/// `oidc.json` parsing and validation: never panics; a valid result keeps the schema's promises;
/// an error never quotes the client secret.
pub fn oidc_config(data: &[u8]) {
    match parse_oidc_config(data) {
        Ok(config) => {
            assert!(config.scopes.iter().any(|s| s == "openid"));
            assert!(!config.client_id.is_empty());
            assert!(config.issuer.starts_with("https://") || config.issuer.starts_with("http://"));
        }
        Err(problems) => {
            assert!(!problems.is_empty());
            // The same document with a marker for a secret: no message may contain the marker
            // (a secret that merely equals a piece of a message proves nothing).
            let Ok(serde_json::Value::Object(mut object)) = serde_json::from_slice(data) else {
                return;
            };
            if !object
                .get("client_secret")
                .is_some_and(serde_json::Value::is_string)
            {
                return;
            }
            const MARKER: &str = "SECRET-MARKER-4b1d";
            if String::from_utf8_lossy(data).contains(MARKER) {
                // The marker is elsewhere in the document (a field name, say): inconclusive.
                return;
            }
            object.insert("client_secret".into(), MARKER.into());
            let marked = serde_json::to_vec(&object).unwrap_or_default();
            if let Err(problems) = parse_oidc_config(&marked) {
                for problem in &problems {
                    assert!(
                        !problem.message.contains(MARKER),
                        "an error quoted the secret"
                    );
                }
            }
        }
    }
}

/// Callback query parsing: never panics; a parameter given twice is refused.
pub fn callback_query(data: &[u8]) {
    let raw = String::from_utf8_lossy(data);
    if let Some(params) = parse_callback(&raw) {
        let states = url::form_urlencoded::parse(raw.as_bytes())
            .filter(|(k, _)| k == "state")
            .count();
        assert!(states <= 1);
        assert_eq!(params.state.is_some(), states == 1);
    }
}

/// `return_to`: whatever passes is a same-origin path.
pub fn return_to(data: &[u8]) {
    let raw = String::from_utf8_lossy(data);
    if let Some(path) = safe_return_to(&raw) {
        assert!(path.starts_with('/'));
        assert!(!path.starts_with("//"));
        assert!(!path.contains('\\'));
        assert!(!path.chars().any(|c| c.is_control() || c.is_whitespace()));
        let base = url::Url::parse("https://coder.example.com/").unwrap();
        let joined = base.join(path).unwrap();
        assert_eq!(
            joined.host_str(),
            Some("coder.example.com"),
            "{path:?} left the origin"
        );
    }
}

/// User codes: whatever normalises is 8 letters of the alphabet, and normalising is stable.
pub fn user_code(data: &[u8]) {
    let raw = String::from_utf8_lossy(data);
    if let Some(code) = normalise_user_code(&raw) {
        assert_eq!(code.len(), USER_CODE_LEN);
        assert!(code.bytes().all(|b| USER_CODE_ALPHABET.contains(&b)));
        assert_eq!(normalise_user_code(&code).as_deref(), Some(code.as_str()));
    }
}

/// API keys: only `cf_` and 43 base64url characters are looked up.
pub fn api_key(data: &[u8]) {
    let raw = String::from_utf8_lossy(data);
    if api_key_hash(&raw).is_some() {
        assert!(raw.starts_with("cf_") && raw.len() == 46);
    }
}

/// Session cookies: a value found is the named cookie's, present once.
pub fn session_cookie(data: &[u8]) {
    let raw = String::from_utf8_lossy(data);
    if let Some(value) = cookie_value(Some(&raw), "cf_session") {
        assert!(!value.is_empty());
        assert!(!value.contains(';'));
        let named = raw
            .split(';')
            .filter(|pair| {
                pair.trim()
                    .split_once('=')
                    .is_some_and(|(k, _)| k == "cf_session")
            })
            .count();
        assert_eq!(named, 1, "exactly one cookie is named cf_session");
    }
}
