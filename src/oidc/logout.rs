//! OpenID Connect Back-Channel Logout 1.0: checking a logout token. It is verified like an ID
//! token (signature by the provider's JWKS, `iss`, `aud`) plus that specification's rules
//! (section 2.6): an `events` member with the back-channel logout event, a `sid` and/or a `sub`,
//! no `nonce`, a `jti`, and an `iat` at most [`MAX_AGE_SECS`] old (plus the clock leeway). The
//! `jti`'s single use is the caller's (it needs the store).

use std::sync::Arc;

use serde_json::Value;

use super::claims::Claims;
use super::jws;
use super::provider::{Discovered, ProviderHandle};
use crate::setup::config::OidcConfig;

/// The event a logout token must carry.
pub(crate) const BACKCHANNEL_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";
/// How old a logout token may be.
pub(crate) const MAX_AGE_SECS: i64 = 300;
/// Clock skew allowed each way.
const LEEWAY_SECS: i64 = 60;

/// What a valid logout token ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LogoutToken {
    pub jti: String,
    pub sid: Option<String>,
    pub sub: Option<String>,
    /// Unix seconds until which its `jti` must be remembered.
    pub remember_until: u64,
}

/// Checks `token` against the provider of `config` at `now` (unix seconds).
///
/// Fails with the reason, for the 400 answer and the audit trail.
pub(crate) async fn verify_logout_token(
    provider: &ProviderHandle,
    discovered: &Arc<Discovered>,
    config: &OidcConfig,
    token: &str,
    now: i64,
) -> Result<LogoutToken, String> {
    let verified = match jws::verify(token, discovered.metadata.jwks()) {
        Err(e) if e.may_be_rotation() => match provider.refetch_jwks(discovered).await {
            Some(fresh) => jws::verify(token, fresh.metadata.jwks()),
            None => Err(e),
        },
        other => other,
    }
    .map_err(|e| format!("the logout token is refused: {e}"))?;
    check_claims(&verified.claims, &discovered.issuer, &config.client_id, now)
}

/// The claim rules of a logout token (section 2.6), its signature already checked.
pub(crate) fn check_claims(
    claims: &Claims,
    issuer: &str,
    client_id: &str,
    now: i64,
) -> Result<LogoutToken, String> {
    if claims.get("iss").and_then(Value::as_str) != Some(issuer) {
        return Err("iss is not the configured issuer".into());
    }
    let audiences: Vec<&str> = match claims.get("aud") {
        Some(Value::String(aud)) => vec![aud.as_str()],
        Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).collect(),
        _ => return Err("aud is missing".into()),
    };
    if !audiences.contains(&client_id) {
        return Err("aud does not contain our client_id".into());
    }
    let iat = claims
        .get("iat")
        .and_then(Value::as_i64)
        .ok_or("iat is missing or not a number")?;
    if iat > now + LEEWAY_SECS {
        return Err("iat is in the future".into());
    }
    if iat < now - MAX_AGE_SECS - LEEWAY_SECS {
        return Err(format!("iat is more than {MAX_AGE_SECS} seconds old"));
    }
    if let Some(exp) = claims.get("exp") {
        if exp.as_i64().is_none_or(|exp| exp + LEEWAY_SECS <= now) {
            return Err("the logout token expired".into());
        }
    }
    let event = claims
        .get("events")
        .and_then(Value::as_object)
        .and_then(|events| events.get(BACKCHANNEL_EVENT));
    if !event.is_some_and(Value::is_object) {
        return Err(format!("events does not hold {BACKCHANNEL_EVENT}"));
    }
    if claims.contains_key("nonce") {
        return Err("a logout token must not carry a nonce".into());
    }
    let text = |name: &str| {
        claims
            .get(name)
            .and_then(Value::as_str)
            .filter(|v| !v.is_empty() && v.len() <= 256)
            .map(str::to_owned)
    };
    let (sid, sub) = (text("sid"), text("sub"));
    if sid.is_none() && sub.is_none() {
        return Err("neither sid nor sub".into());
    }
    let jti = text("jti").ok_or("jti is missing")?;
    let remember_until = u64::try_from(now + MAX_AGE_SECS + 2 * LEEWAY_SECS).unwrap_or(0);
    Ok(LogoutToken {
        jti,
        sid,
        sub,
        remember_until,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn good(now: i64) -> Value {
        json!({
            "iss": "https://idp", "aud": "c", "iat": now, "jti": "j1", "sid": "s1",
            "events": {BACKCHANNEL_EVENT: {}},
        })
    }

    fn check(claims: Value, now: i64) -> Result<LogoutToken, String> {
        check_claims(claims.as_object().unwrap(), "https://idp", "c", now)
    }

    #[test]
    fn the_specifications_rules_each_refuse() {
        let now = 1_900_000_000;
        let ok = check(good(now), now).unwrap();
        assert_eq!((ok.sid.as_deref(), ok.sub.as_deref()), (Some("s1"), None));
        let bad = |change: &dyn Fn(&mut Value)| {
            let mut claims = good(now);
            change(&mut claims);
            check(claims, now).unwrap_err()
        };
        assert!(bad(&|c| c["iss"] = "https://other".into()).contains("iss"));
        assert!(bad(&|c| c["aud"] = "other".into()).contains("aud"));
        assert!(bad(&|c| c["nonce"] = "n".into()).contains("nonce"));
        assert!(
            bad(&|c| {
                c.as_object_mut().unwrap().remove("events");
            })
            .contains("events")
        );
        assert!(bad(&|c| c["events"] = json!({"other": {}})).contains("events"));
        assert!(bad(&|c| c["events"] = json!({BACKCHANNEL_EVENT: "x"})).contains("events"));
        assert!(
            bad(&|c| {
                c.as_object_mut().unwrap().remove("sid");
            })
            .contains("neither")
        );
        assert!(
            bad(&|c| {
                c.as_object_mut().unwrap().remove("jti");
            })
            .contains("jti")
        );
        assert!(bad(&|c| c["iat"] = json!(now - 361)).contains("old"));
        assert!(bad(&|c| c["iat"] = json!(now + 61)).contains("future"));
        assert!(bad(&|c| c["iat"] = json!("now")).contains("iat"));
        assert!(bad(&|c| c["exp"] = json!(now - 61)).contains("expired"));
        // Within the leeway; a sub alone; an audience list.
        let mut edge = good(now);
        edge["iat"] = json!(now - 359);
        assert!(check(edge, now).is_ok());
        let mut by_sub = good(now);
        by_sub.as_object_mut().unwrap().remove("sid");
        by_sub["sub"] = "u1".into();
        by_sub["aud"] = json!(["c", "other"]);
        let only_sub = check(by_sub, now).unwrap();
        assert_eq!((only_sub.sid, only_sub.sub.as_deref()), (None, Some("u1")));
    }
}
