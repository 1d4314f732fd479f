//! The signed-in user's own API keys: `GET/POST /api/keys`, `DELETE /api/keys/{id}`.
//!
//! The secret is in the POST answer only; lists show the id, name, prefix and times.

use serde::Deserialize;
use serde_json::json;
use warp::Filter;
use warp::Reply;
use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::reply::Response;

use super::accounts::issue_api_key;
use super::auth::{Caller, require, store_unavailable};
use super::error::error_response;
use crate::audit::{Audit, AuditKind};
use crate::auth::Permission;
use crate::server::AppState;
use crate::store::ApiKeyRecord;

/// Longest key name.
const MAX_NAME_CHARS: usize = 100;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewKey {
    name: String,
}

/// `GET /api/keys`, `POST /api/keys`, `DELETE /api/keys/{id}`.
/// Mounted under `/api/` by [`super::routes`]: the paths here start after it.
pub fn routes(state: AppState) -> BoxedFilter<(Response,)> {
    let with_state = super::with_state(state.clone());
    let signed_in = require(state, Permission::SignedIn);
    let list = warp::path!("keys")
        .and(warp::get())
        .and(signed_in.clone())
        .and(with_state.clone())
        .map(list);
    let create = warp::path!("keys")
        .and(warp::post())
        .and(signed_in.clone())
        .and(warp::body::content_length_limit(4 * 1024))
        .and(warp::body::json())
        .and(with_state.clone())
        .then(create);
    let revoke = warp::path!("keys" / String)
        .and(warp::delete())
        .and(signed_in)
        .and(with_state)
        .then(revoke);
    list.or(create).unify().or(revoke).unify().boxed()
}

/// A key as listed: never the secret or its hash.
fn listed(state: &AppState, hash: Option<&[u8]>, key: &ApiKeyRecord) -> serde_json::Value {
    let pending = hash.and_then(|h| state.key_usage.pending(h));
    let last_used = pending.max(key.last_used_unix).map(|unix| {
        humantime::format_rfc3339_seconds(
            std::time::UNIX_EPOCH + std::time::Duration::from_secs(unix),
        )
        .to_string()
    });
    json!({
        "id": key.id,
        "name": key.name,
        "prefix": key.prefix,
        "created_at": key.created_at,
        "last_used_at": last_used,
    })
}

fn list(caller: Caller, state: AppState) -> Response {
    match state.store.api_keys_with_hashes_of(&caller.user.username) {
        Ok(keys) => {
            let keys: Vec<_> = keys
                .iter()
                .map(|(hash, key)| listed(&state, Some(hash), key))
                .collect();
            warp::reply::json(&json!({ "keys": keys })).into_response()
        }
        Err(e) => store_unavailable(e).response(),
    }
}

async fn create(caller: Caller, body: NewKey, state: AppState) -> Response {
    let name = body.name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
        return error_response(
            StatusCode::BAD_REQUEST,
            "invalid_name",
            &format!("a key name has 1 to {MAX_NAME_CHARS} characters"),
        );
    }
    match issue_api_key(&state, &caller.user.username, name).await {
        Ok(key) => {
            tracing::info!(username = %caller.user.username, key_id = %key.record.id, "API key created");
            let body = json!({
                "id": key.record.id,
                "name": key.record.name,
                "prefix": key.record.prefix,
                "api_key": key.secret,
                "created_at": key.record.created_at,
            });
            warp::reply::with_status(warp::reply::json(&body), StatusCode::CREATED).into_response()
        }
        Err(e) => e.response(),
    }
}

async fn revoke(id: String, caller: Caller, state: AppState) -> Response {
    let deleted = match state.store.delete_api_key(&caller.user.username, &id) {
        Ok(deleted) => deleted,
        Err(e) => return store_unavailable(e).response(),
    };
    if !deleted {
        return error_response(
            StatusCode::NOT_FOUND,
            "not_found",
            "you have no API key with this id",
        );
    }
    Audit::success(AuditKind::ApiKeyRevoked)
        .actor(&caller.user.username)
        .subject(&id)
        .record(&state.store);
    if let Err(e) = state.store.flush().await {
        return store_unavailable(e).response();
    }
    tracing::info!(username = %caller.user.username, key_id = %id, "API key revoked");
    warp::reply::with_status(warp::reply(), StatusCode::NO_CONTENT).into_response()
}
