//! The authorization code flow as a relying party: the authorization request (state, nonce,
//! PKCE S256, the configured scopes) and the callback's token exchange and ID token checks.
//!
//! Every check of the contract's section 6 happens here or in the callback route: the ID token's
//! signature with a key of the JWKS (an unknown `kid` refetches the JWKS once), `iss`, `aud`
//! (no audience but ours; `azp`, when present, ours), `exp`, `iat` (not in the future, at most
//! ten minutes old, each with 60 s leeway), `sub`, the nonce, and `at_hash` when present. `alg: none` and HMAC algorithms are refused: a deliberate deviation from the RP
//! conformance test `rp-id_token-sig-none`, since an HMAC key here would be the client secret.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreJwsSigningAlgorithm, CoreUserInfoClaims,
};
use openidconnect::{
    AccessToken, AccessTokenHash, AuthorizationCode, ClientId, ClientSecret, CsrfToken,
    EndpointMaybeSet, EndpointNotSet, EndpointSet, Nonce, OAuth2TokenResponse, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, Scope, TokenResponse,
};

use super::describe;
use super::provider::{Discovered, ProviderHandle};
use crate::auth::credential::{random_token, sha256};
use crate::setup::config::OidcConfig;
use crate::store::PendingLogin;

/// openidconnect's client with the endpoints discovery provides pinned in its type.
pub type OidcClient = CoreClient<
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

/// `iat` must be neither in the future nor older than [`MAX_TOKEN_AGE`] (each with
/// [`CLOCK_LEEWAY`]).
fn check_issue_time(iat: chrono::DateTime<chrono::Utc>) -> Result<(), String> {
    let now = chrono::Utc::now();
    if iat > now + CLOCK_LEEWAY {
        Err(format!("issued in the future ({iat})"))
    } else if iat < now - MAX_TOKEN_AGE - CLOCK_LEEWAY {
        Err(format!("issued too long ago ({iat})"))
    } else {
        Ok(())
    }
}

/// Asymmetric signature algorithms an ID token may use; never `none` or HMAC.
const ALLOWED_ALGS: [CoreJwsSigningAlgorithm; 10] = [
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha384,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha512,
    CoreJwsSigningAlgorithm::RsaSsaPssSha256,
    CoreJwsSigningAlgorithm::RsaSsaPssSha384,
    CoreJwsSigningAlgorithm::RsaSsaPssSha512,
    CoreJwsSigningAlgorithm::EcdsaP256Sha256,
    CoreJwsSigningAlgorithm::EcdsaP384Sha384,
    CoreJwsSigningAlgorithm::EcdsaP521Sha512,
    CoreJwsSigningAlgorithm::EdDsa,
];

/// Why a callback could not be turned into a verified identity. The text is for the log; the
/// browser gets a fixed page.
#[derive(Debug, thiserror::Error)]
pub enum FlowError {
    #[error("the identity provider has no token endpoint")]
    NoTokenEndpoint,
    #[error("the token request failed: {0}")]
    Token(String),
    #[error("the token response has no ID token")]
    NoIdToken,
    #[error("the ID token was rejected: {0}")]
    IdToken(String),
    #[error("the userinfo request failed: {0}")]
    Userinfo(String),
}

/// Who the identity provider says signed in, after every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedIdentity {
    pub issuer: String,
    pub subject: String,
    pub email: Option<String>,
    pub email_verified: Option<bool>,
    pub name: Option<String>,
}

/// A started login: where to send the browser, and what to keep until the callback.
pub struct LoginStart {
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
pub fn binding_hash(binding: &str) -> String {
    URL_SAFE_NO_PAD.encode(sha256(binding.as_bytes()))
}

/// Builds the authorization request: fresh state, nonce and PKCE verifier.
pub fn start_login(
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
        },
    }
}

/// Exchanges `code` and verifies the answer; calls userinfo (whose `sub` must match) when the
/// ID token lacks the email or the name.
///
/// Fails on a refused exchange, a missing or invalid ID token, or a failed userinfo request.
pub async fn finish_login(
    provider: &ProviderHandle,
    discovered: Arc<Discovered>,
    config: &OidcConfig,
    redirect_uri: &str,
    code: &str,
    pending: &PendingLogin,
) -> Result<VerifiedIdentity, FlowError> {
    let http = &provider.http().confined_to(&discovered.issuer);
    let token = client(&discovered, config, redirect_uri)
        .exchange_code(AuthorizationCode::new(code.to_owned()))
        .map_err(|_| FlowError::NoTokenEndpoint)?
        .set_pkce_verifier(PkceCodeVerifier::new(pending.pkce_verifier.clone()))
        .request_async(http)
        .await
        .map_err(|e| FlowError::Token(describe(&e)))?;
    provider.answered();
    let id_token = token.id_token().ok_or(FlowError::NoIdToken)?;
    let nonce = Nonce::new(pending.nonce.clone());
    let verify = |discovered: &Discovered| {
        let client = client(discovered, config, redirect_uri);
        let verifier = client
            .id_token_verifier()
            .set_allowed_algs(ALLOWED_ALGS)
            // OpenID Connect Core 3.1.3.7: an audience we do not trust refuses the token.
            .set_other_audience_verifier_fn(|_| false)
            .set_time_fn(|| chrono::Utc::now() - CLOCK_LEEWAY)
            .set_issue_time_verifier_fn(check_issue_time);
        let claims = id_token.claims(&verifier, &nonce)?.clone();
        // `at_hash`, when present, must be the access token's: a token pair spliced from two
        // logins is refused.
        if let Some(expected) = claims.access_token_hash() {
            let signature = openidconnect::ClaimsVerificationError::SignatureVerification;
            let alg = id_token.signing_alg().map_err(signature)?;
            let key = id_token.signing_key(&verifier).map_err(signature)?;
            let actual =
                AccessTokenHash::from_token(token.access_token(), alg, key).map_err(|e| {
                    openidconnect::ClaimsVerificationError::Other(format!(
                        "cannot compute at_hash: {e}"
                    ))
                })?;
            if actual != *expected {
                return Err(openidconnect::ClaimsVerificationError::Other(
                    "at_hash does not match the access token".into(),
                ));
            }
        }
        Ok(claims)
    };
    let claims = match verify(&discovered) {
        Err(openidconnect::ClaimsVerificationError::SignatureVerification(
            openidconnect::SignatureVerificationError::NoMatchingKey,
        )) => match provider.refetch_jwks(&discovered).await {
            Some(fresh) => verify(&fresh),
            None => verify(&discovered),
        },
        other => other,
    }
    .map_err(|e| FlowError::IdToken(describe(&e)))?;
    let audiences = claims.audiences();
    let azp = claims.authorized_party().map(|a| a.as_str());
    if azp.is_some_and(|azp| azp != config.client_id) {
        return Err(FlowError::IdToken("azp is not our client_id".into()));
    }
    if audiences.len() > 1 && azp.is_none() {
        return Err(FlowError::IdToken(
            "several audiences and no azp naming our client_id".into(),
        ));
    }
    let subject = claims.subject().as_str().to_owned();
    if subject.is_empty() {
        return Err(FlowError::IdToken("empty sub".into()));
    }
    let mut identity = VerifiedIdentity {
        issuer: discovered.issuer.clone(),
        subject,
        email: claims.email().map(|e| e.as_str().to_owned()),
        email_verified: claims.email_verified(),
        name: claims
            .name()
            .and_then(|n| n.get(None))
            .map(|n| n.as_str().to_owned()),
    };
    if identity.email.is_none() || identity.name.is_none() {
        if let Some(info) = userinfo(
            &discovered,
            config,
            redirect_uri,
            provider,
            token.access_token(),
            claims.subject(),
        )
        .await?
        {
            if identity.email.is_none() {
                identity.email = info.email().map(|e| e.as_str().to_owned());
                identity.email_verified = info.email_verified();
            }
            if identity.name.is_none() {
                identity.name = info
                    .name()
                    .and_then(|n| n.get(None))
                    .map(|n| n.as_str().to_owned());
            }
        }
    }
    identity.name = identity
        .name
        .map(|n| n.trim().to_owned())
        .filter(|n| !n.is_empty());
    identity.email = identity
        .email
        .map(|e| e.trim().to_owned())
        .filter(|e| !e.is_empty());
    Ok(identity)
}

/// The userinfo claims, checked to be about `subject`; `None` when the provider has no
/// userinfo endpoint.
async fn userinfo(
    discovered: &Discovered,
    config: &OidcConfig,
    redirect_uri: &str,
    provider: &ProviderHandle,
    access_token: &AccessToken,
    subject: &openidconnect::SubjectIdentifier,
) -> Result<Option<CoreUserInfoClaims>, FlowError> {
    let client = client(discovered, config, redirect_uri);
    let Ok(request) = client.user_info(access_token.clone(), Some(subject.clone())) else {
        return Ok(None);
    };
    let claims: CoreUserInfoClaims = request
        .request_async(&provider.http().confined_to(&discovered.issuer))
        .await
        .map_err(|e| FlowError::Userinfo(describe(&e)))?;
    Ok(Some(claims))
}
