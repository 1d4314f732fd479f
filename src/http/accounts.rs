//! Password sign-in for API clients and the signed-in user: `POST /api/auth/login`,
//! `GET /api/me`, and the password check the login form shares.

use std::net::IpAddr;
use std::sync::LazyLock;

use serde::Deserialize;
use warp::Filter;
use warp::Reply;
use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::reply::Response;

use super::auth::{Caller, require, store_unavailable};
use super::client::limit_key;
use super::error::ApiError;
use crate::audit::{Audit, AuditKind};
use crate::auth::Permission;
use crate::auth::account::{UserView, UserViewRef};
use crate::auth::credential::{
    Password, generate_password, hash_password, new_api_key, random_token, verify_password,
};
use crate::auth::ratelimit::RateLimits;
use crate::auth::text::{MAX_NAME_CHARS, clean_name};
use crate::blocking::run_blocking;
use crate::server::AppState;
use crate::store::{ApiKeyRecord, UserRecord};

/// Largest JSON body these routes read.
const MAX_BODY_BYTES: u64 = 16 * 1024;

/// A hash to verify against when the user does not exist, so that an unknown username takes as
/// long as a wrong password and does not reveal itself. Computed once.
static DUMMY_HASH: LazyLock<String> =
    LazyLock::new(|| hash_password(&generate_password()).unwrap_or_default());

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginRequest {
    username: String,
    password: Password,
    key_name: Option<String>,
}

/// `POST /api/auth/login` and `GET /api/me`.
/// Mounted under `/api/` by [`super::routes`]: the paths here start after it.
pub fn routes(state: AppState) -> BoxedFilter<(Response,)> {
    let login = warp::path!("auth" / "login")
        .and(warp::post())
        .and(super::client::client_ip())
        .and(super::body::json(MAX_BODY_BYTES))
        .and(super::with_state(state.clone()))
        .then(login);
    let me = warp::path!("me")
        .and(warp::get())
        .and(require(state, Permission::SignedIn))
        .map(me);
    me.or(login).unify().boxed()
}

/// `GET /api/me`: the caller's view, as rendered by the key cache when there is one.
fn me(caller: Caller) -> Response {
    let Some(json) = caller.view_json else {
        return warp::reply::json(&UserViewRef::from(&*caller.user)).into_response();
    };
    let mut response = Response::new(json.into());
    response.headers_mut().insert(
        warp::http::header::CONTENT_TYPE,
        warp::http::HeaderValue::from_static("application/json"),
    );
    response
}

async fn login(remote: Option<IpAddr>, request: LoginRequest, state: AppState) -> Response {
    match try_login(remote, request, &state).await {
        Ok(response) => response,
        Err(e) => e.response(),
    }
}

async fn try_login(
    remote: Option<IpAddr>,
    request: LoginRequest,
    state: &AppState,
) -> Result<Response, ApiError> {
    // Checked before the password, so a refused name costs no Argon2 and issues nothing.
    let name = match request.key_name.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(name) => Some(clean_name(name, MAX_NAME_CHARS).map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_name",
                format!("key_name: {e}"),
            )
        })?),
    };
    let user = check_password(state, remote, &request.username, request.password).await?;
    let name = name.unwrap_or_else(|| format!("login {}", crate::clock::now_rfc3339()));
    let key = issue_api_key(state, &user.username, &name).await?;
    tracing::info!(username = %user.username, key_id = %key.record.id, "local login: API key issued");
    Ok(warp::reply::json(&serde_json::json!({
        "api_key": key.secret,
        "key_id": key.record.id,
        "user": UserView::from(&user),
    }))
    .into_response())
}

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
    let address = limit_key(remote);
    let record_failure = |reason: &str| {
        tracing::info!(username, ip = address, reason, "local login refused");
        let audit = Audit::failure(AuditKind::LoginLocal, reason)
            .actor(username)
            .ip(remote);
        state.audit_throttle.record(audit, &address, &state.store);
    };
    if !state.reloader.live().local_auth_allowed() {
        record_failure("local login is disabled");
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "local_auth_disabled",
            "local username/password login is disabled on this server: sign in with SSO",
        ));
    }
    let limits = &state.limits;
    let failure_key = RateLimits::login_failure_key(username, &address);
    let limited = limits
        .logins_per_ip
        .hit(&address)
        .and_then(|()| limits.login_failures_per_user.check(&failure_key));
    if let Err(retry) = limited {
        tracing::warn!(
            username,
            ip = address,
            "login attempt refused by the rate limit"
        );
        record_failure("rate limited");
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!(
                "too many login attempts: try again in {} seconds",
                retry.0.as_secs().max(1)
            ),
        ));
    }
    let user = state.store.user(username).map_err(store_unavailable)?;
    let hash = user
        .as_ref()
        .and_then(|u| u.password_hash.clone())
        .unwrap_or_else(|| DUMMY_HASH.clone());
    let matches = run_blocking(move || verify_password(&password, &hash)).await;
    match user {
        Some(user) if matches && user.password_hash.is_some() && !user.disabled => {
            limits.login_failures_per_user.reset(&failure_key);
            Audit::success(AuditKind::LoginLocal)
                .actor(username)
                .ip(remote)
                .record(&state.store);
            Ok(user)
        }
        _ => {
            let _ = limits.login_failures_per_user.hit(&failure_key);
            record_failure("wrong username or password");
            Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_credentials",
                "wrong username or password",
            ))
        }
    }
}

/// A key just made: the secret to show once, and what was stored.
pub(crate) struct IssuedKey {
    pub secret: String,
    pub record: ApiKeyRecord,
}

/// Creates an API key named `name` for `username`, durable before it returns.
///
/// Fails with 503 when the store cannot be written.
pub(crate) async fn issue_api_key(
    state: &AppState,
    username: &str,
    name: &str,
) -> Result<IssuedKey, ApiError> {
    let key = new_api_key();
    let record = ApiKeyRecord {
        id: random_token(9),
        username: username.to_owned(),
        name: name.to_owned(),
        prefix: key.prefix.clone(),
        created_at: crate::clock::now_rfc3339(),
        last_used_unix: None,
    };
    state
        .store
        .create_api_key(&key.hash, &record)
        .map_err(store_unavailable)?;
    Audit::success(AuditKind::ApiKeyCreated)
        .actor(username)
        .subject(&record.id)
        .reason(format!("key \"{name}\""))
        .record(&state.store);
    state.store.flush().await.map_err(store_unavailable)?;
    Ok(IssuedKey {
        secret: key.secret,
        record,
    })
}
