//! The authorization code flow as a relying party: the authorization request (state, nonce,
//! PKCE S256, the configured scopes) and the callback's token exchange and ID token checks.
//!
//! Every check of the contract's section 6 happens here or in the callback route: the ID token's
//! signature with a key of the JWKS ([`super::jws`]; an unknown `kid` refetches the JWKS once),
//! `iss`, `aud` (no audience but ours; `azp`, when present, ours), `exp`, `iat` (not in the
//! future, at most ten minutes old, each with 60 s leeway), `sub`, the nonce, and `at_hash` when
//! present. Those claims are read strictly; the ones the product needs besides (email, its
//! verification, the name) leniently, from the raw JSON ([`super::claims`]), so one claim of an
//! unexpected type never refuses a whole login. The token request is made here too, so a
//! refusal says why (`invalid_client` is a configuration problem, not "try again"). `alg: none` and HMAC algorithms are refused: a deliberate deviation from the RP
//! conformance test `rp-id_token-sig-none`, since an HMAC key here would be the client secret.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use openidconnect::core::{CoreAuthenticationFlow, CoreClient};
use openidconnect::{
    AsyncHttpClient, ClientId, ClientSecret, CsrfToken, EndpointMaybeSet, EndpointNotSet,
    EndpointSet, Nonce, PkceCodeChallenge, RedirectUrl, Scope,
};
use serde_json::Value;

use super::claims::{Claims, bool_claim, string_claim_at};
use super::describe;
use super::http::{ProviderHttp, ProviderHttpError};
use super::jws::{self, JwsError};
use super::provider::{Discovered, ProviderHandle};
use crate::auth::credential::{random_token, sha256};
pub(crate) use crate::auth::provision::VerifiedIdentity;
use crate::setup::config::OidcConfig;
use crate::store::PendingLogin;

/// openidconnect's client with the endpoints discovery provides pinned in its type.
pub(crate) type OidcClient = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// Leeway for `exp` and `iat`.
const CLOCK_LEEWAY: chrono::TimeDelta = chrono::TimeDelta::seconds(60);
/// Oldest `iat` accepted: an ID token is minted at the code exchange, so one older than a
/// login may last (the default `--login-state-ttl`) is a replay, not this login's.
const MAX_TOKEN_AGE: chrono::TimeDelta = chrono::TimeDelta::seconds(600);

/// What a failed login means for the person at the browser.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FailureKind {
    /// The provider could not be reached or did not answer in time: trying again may help.
    Transient,
    /// Sign-in is not set up correctly (an algorithm we refuse, a client secret the provider
    /// refuses, a token response without an ID token): only an administrator can fix it.
    Configuration,
    /// The answer failed a security check: refused, whatever the cause.
    Rejected,
}

/// Why a callback could not be turned into a verified identity. The text is for the log, the
/// audit trail and the settings page; the browser gets a fixed page for the [`FailureKind`].
#[derive(Debug, thiserror::Error)]
pub(crate) enum FlowError {
    #[error("the identity provider's discovery document has no token endpoint")]
    NoTokenEndpoint,
    #[error("the token request failed")]
    TokenTransport(#[source] ProviderHttpError),
    #[error("the token endpoint refused the request: `{error}`{}", description.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    TokenRefused {
        error: String,
        description: Option<String>,
    },
    #[error("the token response cannot be used: {0}")]
    TokenResponse(String),
    #[error("the ID token cannot be used: {0}")]
    Unusable(String),
    #[error("the ID token was rejected: {0}")]
    IdToken(String),
    #[error("the userinfo request failed")]
    UserinfoTransport(#[source] ProviderHttpError),
    #[error("the userinfo answer was rejected: {0}")]
    Userinfo(String),
}

impl FlowError {
    /// What the failure means for the person signing in.
    pub(crate) fn kind(&self) -> FailureKind {
        match self {
            FlowError::TokenTransport(_) | FlowError::UserinfoTransport(_) => {
                FailureKind::Transient
            }
            FlowError::NoTokenEndpoint | FlowError::TokenResponse(_) | FlowError::Unusable(_) => {
                FailureKind::Configuration
            }
            FlowError::TokenRefused { error, .. }
                if matches!(
                    error.as_str(),
                    "invalid_client" | "unauthorized_client" | "unsupported_grant_type"
                ) =>
            {
                FailureKind::Configuration
            }
            FlowError::TokenRefused { .. } | FlowError::IdToken(_) | FlowError::Userinfo(_) => {
                FailureKind::Rejected
            }
        }
    }

    /// What an administrator should change, when this says more than the cause.
    pub(crate) fn hint(&self) -> Option<&'static str> {
        match self {
            FlowError::TokenRefused { error, .. } if error == "invalid_client" => Some(
                "the provider refused the client credentials: check client_id and client_secret (a secret may have expired or been rotated)",
            ),
            FlowError::TokenRefused { error, .. } if error == "unauthorized_client" => Some(
                "the application is not allowed the authorization code grant at the provider: enable it for this client",
            ),
            FlowError::TokenResponse(_) => Some(
                "make sure the scopes include openid and the application is an OpenID Connect (not plain OAuth) client",
            ),
            FlowError::Unusable(_) => Some(
                "set the provider to sign ID tokens with RS256 (or another RS, PS, ES or EdDSA algorithm); HMAC (HS256) and unsigned tokens are refused",
            ),
            _ => None,
        }
    }
}

/// A started login: where to send the browser, and what to keep until the callback.
pub(crate) struct LoginStart {
    pub authorize_url: String,
    /// The `state` parameter; stored by its SHA-256.
    pub state: String,
    pub pending: PendingLogin,
}

fn client(discovered: &Discovered, config: &OidcConfig, redirect_uri: &str) -> OidcClient {
    let client = CoreClient::from_provider_metadata(
        discovered.metadata.clone(),
        ClientId::new(config.client_id.clone()),
        Some(ClientSecret::new(config.client_secret.expose().to_owned())),
    );
    match RedirectUrl::new(redirect_uri.to_owned()) {
        Ok(url) => client.set_redirect_uri(url),
        Err(_) => client,
    }
}

/// The base64url SHA-256 of a browser-binding cookie, as a pending login keeps it.
pub(crate) fn binding_hash(binding: &str) -> String {
    URL_SAFE_NO_PAD.encode(sha256(binding.as_bytes()))
}

/// Builds the authorization request: fresh state, nonce and PKCE verifier.
pub(crate) fn start_login(
    discovered: &Discovered,
    config: &OidcConfig,
    redirect_uri: &str,
    binding: &str,
    return_to: &str,
    expires_unix: u64,
) -> LoginStart {
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let state = random_token(32);
    let nonce = random_token(32);
    let (state_for_url, nonce_for_url) = (state.clone(), nonce.clone());
    let scopes = config
        .scopes
        .iter()
        .filter(|s| s.as_str() != "openid")
        .map(|s| Scope::new(s.clone()));
    let (url, _, _) = client(discovered, config, redirect_uri)
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            move || CsrfToken::new(state_for_url),
            move || Nonce::new(nonce_for_url),
        )
        .add_scopes(scopes)
        .set_pkce_challenge(challenge)
        .url();
    LoginStart {
        authorize_url: url.to_string(),
        state,
        pending: PendingLogin {
            binding_hash: binding_hash(binding),
            nonce,
            pkce_verifier: verifier.secret().clone(),
            return_to: return_to.to_owned(),
            issuer: discovered.issuer.clone(),
            client_id: config.client_id.clone(),
            expires_unix,
            preview_by: None,
        },
    }
}

/// What the token endpoint answered that this client uses.
struct TokenAnswer {
    access_token: String,
    id_token: String,
}

/// Exchanges `code` at the token endpoint (`client_secret_basic`, the id and secret
/// form-urlencoded first, PKCE verifier), verifies the ID token, and calls userinfo (whose `sub`
/// must match) when the ID token lacks the email or the name.
///
/// A request that cannot reach the provider marks it unreachable at once.
///
/// Fails on a refused exchange, an ID token that fails a check, or a failed userinfo request.
pub(crate) async fn finish_login(
    provider: &ProviderHandle,
    discovered: Arc<Discovered>,
    config: &OidcConfig,
    redirect_uri: &str,
    code: &str,
    pending: &PendingLogin,
) -> Result<VerifiedIdentity, FlowError> {
    let http = provider.http().confined_to(&discovered.issuer);
    let token_url = discovered
        .metadata
        .token_endpoint()
        .ok_or(FlowError::NoTokenEndpoint)?
        .as_str()
        .to_owned();
    let token = match request_token(&http, &token_url, config, redirect_uri, code, pending).await {
        Err(FlowError::TokenTransport(e)) => {
            provider.mark_unreachable(&discovered, &describe(&e));
            return Err(FlowError::TokenTransport(e));
        }
        other => other?,
    };
    provider.answered();
    let verified = match jws::verify(&token.id_token, discovered.metadata.jwks()) {
        Err(e) if e.may_be_rotation() => match provider.refetch_jwks(&discovered).await {
            Some(fresh) => jws::verify(&token.id_token, fresh.metadata.jwks()),
            None => Err(e),
        },
        other => other,
    }
    .map_err(|e| match e {
        JwsError::AlgorithmRefused(_) => FlowError::Unusable(e.to_string()),
        _ => FlowError::IdToken(e.to_string()),
    })?;
    let claims = &verified.claims;
    check_id_token(
        claims,
        &discovered.issuer,
        &config.client_id,
        &pending.nonce,
        chrono::Utc::now().timestamp(),
    )
    .map_err(FlowError::IdToken)?;
    // `at_hash`, when present, must be the access token's: a token pair spliced from two
    // logins is refused.
    if let Some(at_hash) = claims.get("at_hash") {
        let expected = jws::access_token_hash(&token.access_token, &verified.alg, &verified.key);
        if at_hash.as_str().is_none() || at_hash.as_str() != expected.as_deref() {
            return Err(FlowError::IdToken(
                "at_hash does not match the access token".into(),
            ));
        }
    }
    let issuer = &discovered.issuer;
    let subject = claims["sub"].as_str().unwrap_or_default().to_owned();
    let rules = &config.access;
    let mut merged = claims.clone();
    // Userinfo completes what the ID token lacks: the email and name, and whatever the access
    // rules read (groups, required claims, the username).
    let lacks = |claims: &Claims| {
        rules.email_claim.find(claims).is_none()
            || rules.name_claim.find(claims).is_none()
            || (rules.needs_groups() && rules.groups_claim.find(claims).is_none())
            || rules
                .required_claims
                .iter()
                .any(|(c, _)| c.find(claims).is_none())
            || rules
                .username_claim
                .as_ref()
                .is_some_and(|c| c.find(claims).is_none())
    };
    if lacks(&merged) {
        let info = match userinfo(&http, &discovered, config, &token.access_token, &subject).await {
            Err(FlowError::UserinfoTransport(e)) => {
                provider.mark_unreachable(&discovered, &describe(&e));
                return Err(FlowError::UserinfoTransport(e));
            }
            other => other?,
        };
        if let Some(info) = info {
            // The email's verification comes with the email: from userinfo when the email does.
            if rules.email_claim.find(&merged).is_none() {
                merged.remove("email_verified");
            }
            for (name, value) in info {
                merged.entry(name).or_insert(value);
            }
        }
    }
    let trimmed =
        |value: Option<String>| value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
    Ok(VerifiedIdentity {
        issuer: issuer.clone(),
        email: trimmed(string_claim_at(&merged, &rules.email_claim, issuer)),
        email_verified: bool_claim(&merged, "email_verified", issuer),
        name: trimmed(string_claim_at(&merged, &rules.name_claim, issuer)),
        subject,
        claims: merged,
        id_token: crate::secret::Secret::new(token.id_token.clone()),
    })
}

/// The token request and its answer.
async fn request_token(
    http: &ProviderHttp,
    url: &str,
    config: &OidcConfig,
    redirect_uri: &str,
    code: &str,
    pending: &PendingLogin,
) -> Result<TokenAnswer, FlowError> {
    let encode = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let credentials = base64::engine::general_purpose::STANDARD.encode(format!(
        "{}:{}",
        encode(&config.client_id),
        encode(config.client_secret.expose())
    ));
    let body = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", "authorization_code")
        .append_pair("code", code)
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("code_verifier", &pending.pkce_verifier)
        .finish();
    let request = openidconnect::http::Request::post(url)
        .header("authorization", format!("Basic {credentials}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("accept", "application/json")
        .body(body.into_bytes())
        .map_err(|e| FlowError::TokenResponse(e.to_string()))?;
    let response = http
        .call(request)
        .await
        .map_err(FlowError::TokenTransport)?;
    let answer: Value = serde_json::from_slice(response.body()).unwrap_or(Value::Null);
    if !response.status().is_success() {
        let error = answer["error"]
            .as_str()
            .map(|e| {
                e.chars()
                    .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .take(64)
                    .collect()
            })
            .unwrap_or_else(|| format!("HTTP {}", response.status().as_u16()));
        let description = answer["error_description"]
            .as_str()
            .map(|d| crate::auth::text::displayable(d, 200))
            .filter(|d| !d.is_empty());
        return Err(FlowError::TokenRefused { error, description });
    }
    let field = |name: &str| {
        answer[name]
            .as_str()
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    let access_token =
        field("access_token").ok_or_else(|| FlowError::TokenResponse("no access_token".into()))?;
    let id_token = field("id_token").ok_or_else(|| {
        FlowError::TokenResponse("no id_token (is the openid scope requested?)".into())
    })?;
    Ok(TokenAnswer {
        access_token,
        id_token,
    })
}

/// The ID token's claims that the security checks read, strictly: `iss` exactly the issuer;
/// `aud` ours and no other; `azp`, when present, ours; `exp` not passed and `iat` neither in the
/// future nor older than [`MAX_TOKEN_AGE`] (each with [`CLOCK_LEEWAY`]); `nonce` the one sent;
/// `sub` present.
///
/// Fails with what is wrong, for the log.
fn check_id_token(
    claims: &Claims,
    issuer: &str,
    client_id: &str,
    nonce: &str,
    now: i64,
) -> Result<(), String> {
    let iss = claims.get("iss").and_then(Value::as_str);
    if iss != Some(issuer) {
        return Err(format!(
            "iss is {}, not the configured issuer",
            iss.map_or("missing".to_owned(), |i| format!(
                "`{}`",
                i.chars().take(200).collect::<String>()
            ))
        ));
    }
    let audiences: Vec<&str> = match claims.get("aud") {
        Some(Value::String(aud)) => vec![aud.as_str()],
        Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).collect(),
        _ => return Err("aud is missing".into()),
    };
    if !audiences.contains(&client_id) {
        return Err("aud does not contain our client_id".into());
    }
    // OpenID Connect Core 3.1.3.7: an audience we do not trust refuses the token.
    if audiences.iter().any(|aud| *aud != client_id) {
        return Err("aud names an audience other than our client_id".into());
    }
    if let Some(azp) = claims.get("azp") {
        if azp.as_str() != Some(client_id) {
            return Err("azp is not our client_id".into());
        }
    }
    let time = |name: &str| -> Result<i64, String> {
        match claims.get(name) {
            Some(Value::Number(n)) => n
                .as_i64()
                .or_else(|| n.as_f64().map(|f| f as i64))
                .ok_or_else(|| format!("{name} is not a time")),
            Some(_) => Err(format!("{name} is not a number")),
            None => Err(format!("{name} is missing")),
        }
    };
    let leeway = CLOCK_LEEWAY.num_seconds();
    if time("exp")? + leeway <= now {
        return Err("the ID token expired".into());
    }
    let iat = time("iat")?;
    if iat > now + leeway {
        return Err("the ID token was issued in the future".into());
    }
    if iat < now - MAX_TOKEN_AGE.num_seconds() - leeway {
        return Err("the ID token was issued too long ago".into());
    }
    if claims.get("nonce").and_then(Value::as_str) != Some(nonce) {
        return Err("the nonce is missing or not the one sent".into());
    }
    if claims
        .get("sub")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        return Err("sub is missing or empty".into());
    }
    Ok(())
}

/// The userinfo claims, checked to be about `subject`; `None` when the provider has no
/// userinfo endpoint. A signed answer (`application/jwt`) is verified with the provider's keys;
/// its `iss` and `aud` may be absent (OpenID Connect Core says SHOULD) but, when present, must
/// be the issuer and our client_id.
async fn userinfo(
    http: &ProviderHttp,
    discovered: &Discovered,
    config: &OidcConfig,
    access_token: &str,
    subject: &str,
) -> Result<Option<Claims>, FlowError> {
    let Some(url) = discovered.metadata.userinfo_endpoint() else {
        return Ok(None);
    };
    let request = openidconnect::http::Request::get(url.as_str())
        .header("authorization", format!("Bearer {access_token}"))
        .header("accept", "application/json, application/jwt")
        .body(Vec::new())
        .map_err(|e| FlowError::Userinfo(e.to_string()))?;
    let response = http
        .call(request)
        .await
        .map_err(FlowError::UserinfoTransport)?;
    if !response.status().is_success() {
        return Err(FlowError::Userinfo(format!(
            "the endpoint answered HTTP {}",
            response.status().as_u16()
        )));
    }
    let signed = response
        .headers()
        .get("content-type")
        .and_then(|t| t.to_str().ok())
        .is_some_and(|t| t.trim().to_ascii_lowercase().starts_with("application/jwt"));
    let claims = if signed {
        let token = std::str::from_utf8(response.body())
            .map_err(|_| FlowError::Userinfo("the signed answer is not text".into()))?;
        let claims = jws::verify(token, discovered.metadata.jwks())
            .map_err(|e| FlowError::Userinfo(format!("the signed answer: {e}")))?
            .claims;
        if claims
            .get("iss")
            .is_some_and(|iss| iss.as_str() != Some(discovered.issuer.as_str()))
        {
            return Err(FlowError::Userinfo("iss is not the issuer".into()));
        }
        let aud_ok = match claims.get("aud") {
            None => true,
            Some(Value::String(aud)) => *aud == config.client_id,
            Some(Value::Array(list)) => list.iter().any(|a| a.as_str() == Some(&config.client_id)),
            Some(_) => false,
        };
        if !aud_ok {
            return Err(FlowError::Userinfo("aud is not our client_id".into()));
        }
        claims
    } else {
        match serde_json::from_slice(response.body()) {
            Ok(Value::Object(claims)) => claims,
            _ => {
                return Err(FlowError::Userinfo(
                    "the answer is not a JSON object".into(),
                ));
            }
        }
    };
    if claims.get("sub").and_then(Value::as_str) != Some(subject) {
        return Err(FlowError::Userinfo("its sub is not the ID token's".into()));
    }
    Ok(Some(claims))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    use crate::oidc::claims::claims_of as claims;

    #[test]
    fn the_security_claims_are_read_strictly() {
        let now = 1_800_000_000;
        let good = json!({"iss": "https://idp", "aud": "c", "exp": now + 300, "iat": now,
                          "nonce": "n", "sub": "s"});
        check_id_token(&claims(good.clone()), "https://idp", "c", "n", now).unwrap();
        let cases: [(&str, Value); 12] = [
            ("iss", json!("https://idp/")),
            ("aud", json!(["c", "other"])),
            ("aud", json!("other")),
            ("azp", json!("other")),
            ("exp", json!(now - 61)),
            ("exp", json!("soon")),
            ("iat", json!(now + 61)),
            ("iat", json!(now - 661)),
            ("nonce", json!("m")),
            ("sub", json!("")),
            ("sub", json!(42)),
            ("iss", json!(null)),
        ];
        for (claim, value) in cases {
            let mut bad = good.clone();
            bad[claim] = value.clone();
            assert!(
                check_id_token(&claims(bad), "https://idp", "c", "n", now).is_err(),
                "{claim} = {value}"
            );
        }
        for missing in ["iss", "aud", "exp", "iat", "nonce", "sub"] {
            let mut bad = good.clone();
            bad.as_object_mut().unwrap().remove(missing);
            assert!(
                check_id_token(&claims(bad), "https://idp", "c", "n", now).is_err(),
                "{missing}"
            );
        }
        let mut leeway = good.clone();
        leeway["exp"] = json!(now - 30);
        leeway["iat"] = json!(now - 540);
        leeway["azp"] = json!("c");
        leeway["aud"] = json!(["c"]);
        check_id_token(&claims(leeway), "https://idp", "c", "n", now).unwrap();
    }

    #[test]
    fn failures_are_classified_for_the_person_signing_in() {
        let refused = |error: &str| FlowError::TokenRefused {
            error: error.into(),
            description: None,
        };
        assert_eq!(refused("invalid_client").kind(), FailureKind::Configuration);
        assert!(
            refused("invalid_client")
                .hint()
                .unwrap()
                .contains("client_secret")
        );
        assert_eq!(refused("invalid_grant").kind(), FailureKind::Rejected);
        assert_eq!(
            FlowError::Unusable("HS256".into()).kind(),
            FailureKind::Configuration
        );
        assert_eq!(FlowError::IdToken("x".into()).kind(), FailureKind::Rejected);
        assert_eq!(
            FlowError::TokenTransport(ProviderHttpError::Timeout(std::time::Duration::from_secs(
                1
            )))
            .kind(),
            FailureKind::Transient
        );
    }
}
