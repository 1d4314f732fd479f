//! Password sign-in for API clients and the signed-in user: `POST /api/auth/login` and
//! `GET /api/me`.

use std::net::IpAddr;

use serde::Deserialize;
use warp::Filter;
use warp::Reply;
use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::reply::Response;

use super::auth::{Caller, require};
use super::error::ApiError;
use super::login::{check_password, issue_api_key};
use crate::auth::Permission;
use crate::auth::account::{UserView, UserViewRef};
use crate::auth::credential::Password;
use crate::auth::text::{MAX_NAME_CHARS, clean_name};
use crate::state::AppState;
use crate::vocab::ErrorCode;

/// Largest JSON body these routes read.
const MAX_BODY_BYTES: u64 = 16 * 1024;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginRequest {
    username: String,
    password: Password,
    key_name: Option<String>,
}

/// `POST /api/auth/login` and `GET /api/me`.
/// Mounted under `/api/` by [`super::routes`]: the paths here start after it.
pub(crate) fn routes(state: AppState) -> BoxedFilter<(Response,)> {
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
                ErrorCode::InvalidName,
                format!("key_name: {e}"),
            )
        })?),
    };
    let user = check_password(state, remote, &request.username, request.password).await?;
    let name = name.unwrap_or_else(|| format!("login {}", crate::clock::now_rfc3339()));
    // A key for the CLI (`coder login`): it lives --cli-key-days.
    let expires = state.lifetimes.cli_key_expiry(crate::clock::unix_secs());
    let key = issue_api_key(state, &user.username, &name, expires).await?;
    tracing::info!(username = %user.username, key_id = %key.record.id, "local login: API key issued");
    Ok(warp::reply::json(&serde_json::json!({
        "api_key": key.secret,
        "key_id": key.record.id,
        "expires_at": key.record.expires_unix.map(crate::clock::rfc3339_of_unix),
        "user": UserView::from(&user),
    }))
    .into_response())
}
