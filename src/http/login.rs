//! The steps every way of signing in shares: checking a local password (with its rate limits and
//! audit) for the login form and `POST /api/auth/login`, and issuing an API key, durable before
//! it is answered, for password logins and `POST /api/keys`. No route lives here.

use std::net::IpAddr;
use std::sync::LazyLock;

use warp::http::StatusCode;

use super::auth::store_unavailable;
use super::client::limit_key;
use super::error::ApiError;
use crate::audit::{Audit, AuditKind};
use crate::auth::credential::{Password, generate_password, hash_password, verify_password};
use crate::auth::keys::IssuedKey;
use crate::auth::ratelimit::RateLimits;
use crate::blocking::run_blocking;
use crate::state::AppState;
use crate::store::UserRecord;
use crate::vocab::ErrorCode;

/// A hash to verify against when the user does not exist, so that an unknown username takes as
/// long as a wrong password and does not reveal itself. Computed once.
static DUMMY_HASH: LazyLock<String> =
    LazyLock::new(|| hash_password(&generate_password()).unwrap_or_default());

/// Checks a local username and password, with the rate limits: per client IP on every attempt,
/// per username on failures. Refused while local login is disabled.
///
/// Fails with 403 `local_auth_disabled`, 429 `rate_limited` or 401 `invalid_credentials`
/// (the same answer for an unknown user, a wrong password, an SSO-only or a disabled account).
pub(crate) async fn check_password(
    state: &AppState,
    remote: Option<IpAddr>,
    username: &str,
    password: Password,
) -> Result<UserRecord, ApiError> {
    // No username is longer than 64 characters: a longer one (up to the body cap) must not
    // make every limiter key, log line and audit event that long.
    let named: String = username.chars().take(64).collect();
    let address = limit_key(remote);
    let record_failure = |reason: &str| {
        tracing::info!(
            username = named,
            ip = address,
            reason,
            "local login refused"
        );
        let audit = Audit::failure(AuditKind::LoginLocal, reason)
            .actor(&named)
            .ip(remote);
        state.audit_throttle.record(audit, &address, &state.store)
    };
    if !state.reloader.live().local_auth_allowed() {
        record_failure("local login is disabled").await;
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            ErrorCode::LocalAuthDisabled,
            "local username/password login is disabled on this server: sign in with SSO",
        ));
    }
    let limits = &state.limits;
    let failure_key = RateLimits::login_failure_key(&named, &address);
    let limited = match limits.logins_per_ip.hit(&address) {
        Err(retry) => Some(retry),
        Ok(()) => limits
            .password_refused(&state.store, &failure_key)
            .await
            .map_err(store_unavailable)?,
    };
    if let Some(retry) = limited {
        record_failure("rate limited").await;
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::RateLimited,
            format!(
                "too many login attempts: try again in {} seconds",
                retry.0.as_secs().max(1)
            ),
        ));
    }
    let user = state
        .store
        .user(username)
        .await
        .map_err(store_unavailable)?;
    let hash = user
        .as_ref()
        .and_then(|u| u.password_hash.clone())
        .unwrap_or_else(|| DUMMY_HASH.clone());
    let matches = run_blocking(move || verify_password(&password, &hash)).await;
    match user {
        Some(user) if matches && user.password_hash.is_some() && !user.disabled => {
            if let Err(e) = limits.password_succeeded(&state.store, &failure_key).await {
                tracing::warn!(error = %e, "clearing password failures failed");
            }
            Audit::success(AuditKind::LoginLocal)
                .actor(&named)
                .ip(remote)
                .record(&state.store)
                .await;
            Ok(user)
        }
        _ => {
            limits
                .password_failed(&state.store, &failure_key)
                .await
                .map_err(store_unavailable)?;
            record_failure("wrong username or password").await;
            Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                ErrorCode::InvalidCredentials,
                "wrong username or password",
            ))
        }
    }
}

/// Creates an API key named `name` for `username` ([`crate::auth::keys::issue_api_key`]),
/// expiring at `expires_unix` (never: `None`).
///
/// Fails with 503 when the store cannot be written.
pub(crate) async fn issue_api_key(
    state: &AppState,
    username: &str,
    name: &str,
    expires_unix: Option<u64>,
) -> Result<IssuedKey, ApiError> {
    crate::auth::keys::issue_api_key(&state.store, username, name, expires_unix)
        .await
        .map_err(store_unavailable)
}
