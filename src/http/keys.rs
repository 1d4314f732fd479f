//! API keys: the signed-in user's own (`GET/POST /api/keys`, `DELETE /api/keys/{id}`), and any
//! user's for server_admin (`GET /api/users/{username}/keys`,
//! `DELETE /api/users/{username}/keys/{id}`), so an administrator can end a person's access.
//!
//! The secret is in the POST answer only; lists show the id, name, prefix and times.

use serde::Deserialize;
use serde_json::json;
use warp::Filter;
use warp::Reply;
use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::reply::Response;

use super::auth::{Caller, require, store_unavailable};
use super::error::ApiError;
use super::login::issue_api_key;
use crate::audit::{Audit, AuditKind};
use crate::auth::Permission;
use crate::auth::text::{MAX_NAME_CHARS, clean_name};
use crate::state::AppState;
use crate::store::ApiKeyRecord;
use crate::vocab::ErrorCode;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewKey {
    name: String,
    /// 1-3650; capped at `--api-key-max-days`; absent: that cap, or never.
    expires_in_days: Option<u64>,
}

/// `GET /api/keys`, `POST /api/keys`, `DELETE /api/keys/{id}`, and the server_admin routes
/// under `/api/users/{username}/keys`.
/// Mounted under `/api/` by [`super::routes`]: the paths here start after it.
pub(crate) fn routes(state: AppState) -> BoxedFilter<(Response,)> {
    let with_state = super::with_state(state.clone());
    let signed_in = require(state.clone(), Permission::SignedIn);
    let admin = require(state, Permission::ServerAdmin);
    let list = warp::path!("keys")
        .and(warp::get())
        .and(signed_in.clone())
        .and(with_state.clone())
        .then(|caller: Caller, state: AppState| async move {
            list_keys(&caller.user.username, &state).await
        });
    let create = warp::path!("keys")
        .and(warp::post())
        .and(signed_in.clone())
        .and(super::body::json(4 * 1024))
        .and(with_state.clone())
        .then(create);
    let revoke = warp::path!("keys" / String)
        .and(warp::delete())
        .and(signed_in)
        .and(with_state.clone())
        .then(|id: String, caller: Caller, state: AppState| async move {
            let owner = caller.user.username.clone();
            revoke_key(&owner, id, &caller, &state).await
        });
    let list_of = warp::path!("users" / String / "keys")
        .and(warp::get())
        .and(admin.clone())
        .and(with_state.clone())
        .then(|username: String, _: Caller, state: AppState| async move {
            match state.store.user(&username).await {
                Ok(Some(_)) => list_keys(&username, &state).await,
                Ok(None) => no_such_user(),
                Err(e) => store_unavailable(e).response(),
            }
        });
    let revoke_of = warp::path!("users" / String / "keys" / String)
        .and(warp::delete())
        .and(admin)
        .and(with_state)
        .then(
            |username: String, id: String, caller: Caller, state: AppState| async move {
                revoke_key(&username, id, &caller, &state).await
            },
        );
    list.or(create)
        .unify()
        .or(revoke)
        .unify()
        .or(list_of)
        .unify()
        .or(revoke_of)
        .unify()
        .boxed()
}

fn no_such_user() -> Response {
    ApiError::new(StatusCode::NOT_FOUND, ErrorCode::NotFound, "no such user").response()
}

/// A key as listed: never the secret or its hash.
fn listed(state: &AppState, hash: Option<&[u8]>, key: &ApiKeyRecord) -> serde_json::Value {
    let pending = hash.and_then(|h| state.key_usage.pending(h));
    let last_used = pending
        .max(key.last_used_unix)
        .map(crate::clock::rfc3339_of_unix);
    json!({
        "id": key.id,
        "name": key.name,
        "prefix": key.prefix,
        "created_at": key.created_at,
        "last_used_at": last_used,
        // `null`: never.
        "expires_at": key.expires_unix.map(crate::clock::rfc3339_of_unix),
    })
}

async fn list_keys(username: &str, state: &AppState) -> Response {
    match state.store.api_keys_with_hashes_of(username).await {
        Ok(keys) => {
            let keys: Vec<_> = keys
                .iter()
                .map(|(hash, key)| listed(state, Some(hash), key))
                .collect();
            warp::reply::json(&json!({ "keys": keys })).into_response()
        }
        Err(e) => store_unavailable(e).response(),
    }
}

async fn create(caller: Caller, body: NewKey, state: AppState) -> Response {
    let name = match clean_name(&body.name, MAX_NAME_CHARS) {
        Ok(name) => name,
        Err(e) => {
            return ApiError::new(
                StatusCode::BAD_REQUEST,
                ErrorCode::InvalidName,
                e.to_string(),
            )
            .response();
        }
    };
    if body
        .expires_in_days
        .is_some_and(|d| !(1..=3650).contains(&d))
    {
        return ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::InvalidRequest,
            "expires_in_days must be between 1 and 3650",
        )
        .response();
    }
    let expires = state
        .lifetimes
        .api_key_expiry(body.expires_in_days, crate::clock::unix_secs());
    match issue_api_key(&state, &caller.user.username, &name, expires).await {
        Ok(key) => {
            tracing::info!(username = %caller.user.username, key_id = %key.record.id, "API key created");
            let body = json!({
                "id": key.record.id,
                "name": key.record.name,
                "prefix": key.record.prefix,
                "api_key": key.secret,
                "created_at": key.record.created_at,
                "expires_at": key.record.expires_unix.map(crate::clock::rfc3339_of_unix),
            });
            warp::reply::with_status(warp::reply::json(&body), StatusCode::CREATED).into_response()
        }
        Err(e) => e.response(),
    }
}

/// Revokes `owner`'s key `id` on behalf of `caller` (the owner, or a server_admin).
async fn revoke_key(owner: &str, id: String, caller: &Caller, state: &AppState) -> Response {
    let deleted = match state.store.delete_api_key(owner, &id).await {
        Ok(deleted) => deleted,
        Err(e) => return store_unavailable(e).response(),
    };
    if !deleted {
        let message = if owner == caller.user.username {
            "you have no API key with this id"
        } else {
            "this user has no API key with this id"
        };
        return ApiError::new(StatusCode::NOT_FOUND, ErrorCode::NotFound, message).response();
    }
    let mut audit = Audit::success(AuditKind::ApiKeyRevoked)
        .actor(&caller.user.username)
        .subject(&id);
    if owner != caller.user.username {
        audit = audit.reason(format!("key of {owner}"));
    }
    audit.record(&state.store).await;
    if let Err(e) = state.store.flush().await {
        return store_unavailable(e).response();
    }
    tracing::info!(by = %caller.user.username, owner, key_id = %id, "API key revoked");
    warp::reply::with_status(warp::reply(), StatusCode::NO_CONTENT).into_response()
}
