//! Reading the claims the product needs (email, its verification, the display name) from the
//! raw JSON that providers really send, instead of a strict deserialisation that refuses a
//! whole answer for one claim's type.
//!
//! - `email_verified` is read as a boolean or as the strings `"true"` / `"false"` (providers
//!   whose exported claims default to strings, some ADFS and Cognito set-ups).
//! - A multi-valued `name` or `email` (a JSON array, as LDAP-backed providers send for
//!   multi-valued attributes) gives its first string; a number or an object gives nothing (the
//!   caller falls back as for a missing claim). Each such leniency is logged once per claim.
//!
//! The claims the security checks read (`iss`, `aud`, `azp`, `exp`, `iat`, `nonce`, `sub`) are
//! not read here: [`super::jws`] and [`super::flow`] read them strictly.

use std::collections::HashSet;
use std::sync::{LazyLock, Mutex};

use serde_json::{Map, Value};

use crate::setup::config::ClaimPath;

/// Claims as received: a JSON object.
pub(crate) type Claims = Map<String, Value>;

/// Leniencies already logged, so the log says each once.
static NOTED: LazyLock<Mutex<HashSet<String>>> = LazyLock::new(|| Mutex::new(HashSet::new()));

fn note_once(issuer: &str, claim: &str, what: &str) {
    let key = format!("{issuer}\0{claim}\0{what}");
    let first = NOTED
        .lock()
        .map(|mut noted| noted.len() < 1000 && noted.insert(key))
        .unwrap_or(false);
    if first {
        tracing::info!(issuer, claim, "identity provider claim: {what}");
    }
}

/// A string claim at a configured location (a claim name or a JSON Pointer): a string, or the
/// first string of an array; `None` for anything else.
pub(crate) fn string_claim_at(claims: &Claims, at: &ClaimPath, issuer: &str) -> Option<String> {
    string_value(at.find(claims)?, at.as_str(), issuer)
}

fn string_value(value: &Value, name: &str, issuer: &str) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Array(items) => {
            let first = items.iter().find_map(Value::as_str).map(str::to_owned);
            note_once(
                issuer,
                name,
                &format!("{} values sent; the first is used", items.len()),
            );
            first
        }
        Value::Null => None,
        other => {
            note_once(
                issuer,
                name,
                &format!("a {} where a string was expected; ignored", kind(other)),
            );
            None
        }
    }
}

/// A boolean claim: `true`/`false`, or the strings `"true"`/`"false"` in any case.
pub(crate) fn bool_claim(claims: &Claims, name: &str, issuer: &str) -> Option<bool> {
    match claims.get(name)? {
        Value::Bool(b) => Some(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
        Value::Null => None,
        other => {
            note_once(
                issuer,
                name,
                &format!("a {} where a boolean was expected; ignored", kind(other)),
            );
            None
        }
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Claims from a JSON object literal (tests).
#[cfg(test)]
pub(crate) fn claims_of(value: Value) -> Claims {
    value.as_object().cloned().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    use super::claims_of as claims;

    #[test]
    fn values_are_read_as_real_providers_send_them() {
        let c = claims(json!({
            "email": ["first@example.com", "second@example.com"],
            "name": 42,
            "nickname": {"en": "x"},
            "email_verified": "TRUE",
            "phone_verified": "false",
            "other": 1,
        }));
        assert_eq!(
            string_claim_at(&c, &ClaimPath::new("email"), "i").as_deref(),
            Some("first@example.com")
        );
        assert_eq!(string_claim_at(&c, &ClaimPath::new("name"), "i"), None);
        assert_eq!(string_claim_at(&c, &ClaimPath::new("nickname"), "i"), None);
        assert_eq!(string_claim_at(&c, &ClaimPath::new("missing"), "i"), None);
        assert_eq!(bool_claim(&c, "email_verified", "i"), Some(true));
        assert_eq!(bool_claim(&c, "phone_verified", "i"), Some(false));
        assert_eq!(bool_claim(&c, "other", "i"), None);
        let plain = claims(json!({"email": "a@example.com", "email_verified": false}));
        assert_eq!(
            string_claim_at(&plain, &ClaimPath::new("email"), "i").as_deref(),
            Some("a@example.com")
        );
        assert_eq!(bool_claim(&plain, "email_verified", "i"), Some(false));
        assert_eq!(
            string_claim_at(&claims(json!({"email": []})), &ClaimPath::new("email"), "i"),
            None
        );
    }
}
