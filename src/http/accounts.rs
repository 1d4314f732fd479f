//! Sign-in for API clients and the signed-in user: `POST /api/auth/login`, `GET /api/me`.

use std::sync::LazyLock;

use serde::Deserialize;
use warp::Filter;
use warp::Reply;
use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::reply::Response;

use super::auth::{CurrentUser, authenticated};
use super::error::{ApiError, error_response};
use crate::auth::account::UserView;
use crate::auth::credential::{
    Password, generate_password, hash_password, new_api_key, verify_password,
};
use crate::blocking::run_blocking;
use crate::server::AppState;
use crate::store::{ApiKeyRecord, StoreError};

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
pub fn routes(state: AppState) -> BoxedFilter<(Response,)> {
    let with_state = super::with_state(state.clone());
    let login = warp::path!("api" / "auth" / "login")
        .and(warp::post())
        .and(warp::body::content_length_limit(MAX_BODY_BYTES))
        .and(warp::body::json())
        .and(with_state)
        .then(login);
    let me = warp::path!("api" / "me")
        .and(warp::get())
        .and(authenticated(state))
        .map(|user: CurrentUser| warp::reply::json(&UserView::from(&user.0)).into_response());
    login.or(me).unify().boxed()
}

async fn login(request: LoginRequest, state: AppState) -> Response {
    match try_login(request, &state).await {
        Ok(response) => response,
        Err(e) => error_response(e.status, e.code, &e.message),
    }
}

async fn try_login(request: LoginRequest, state: &AppState) -> Result<Response, ApiError> {
    if !state.reloader.live().local_auth_allowed() {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "local_auth_disabled",
            "local username/password login is disabled on this server: sign in with SSO",
        ));
    }
    let user = state.store.user(&request.username).map_err(store_error)?;
    let hash = user
        .as_ref()
        .and_then(|u| u.password_hash.clone())
        .unwrap_or_else(|| DUMMY_HASH.clone());
    let password = request.password;
    let matches = run_blocking(move || verify_password(&password, &hash)).await;
    let user = match user {
        Some(user) if matches && user.password_hash.is_some() && !user.disabled => user,
        _ => {
            tracing::info!(username = %request.username, "local login refused");
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_credentials",
                "wrong username or password",
            ));
        }
    };
    let key = new_api_key();
    let now = crate::clock::now_rfc3339();
    let record = ApiKeyRecord {
        id: crate::auth::credential::random_token(9),
        username: user.username.clone(),
        name: request
            .key_name
            .filter(|n| !n.trim().is_empty())
            .unwrap_or_else(|| format!("login {now}")),
        prefix: key.prefix.clone(),
        created_at: now,
        last_used_unix: None,
    };
    state
        .store
        .create_api_key(&key.hash, &record)
        .map_err(store_error)?;
    state.store.flush().await.map_err(store_error)?;
    tracing::info!(username = %user.username, key_id = %record.id, "local login: API key issued");
    Ok(warp::reply::json(&serde_json::json!({
        "api_key": key.secret,
        "user": UserView::from(&user),
    }))
    .into_response())
}

fn store_error(e: StoreError) -> ApiError {
    tracing::error!(error = %e, "store failure");
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "store_unavailable",
        "the server cannot use its store right now",
    )
}
