//! Authentication and authorisation filters: who is calling, and may they.
//!
//! An API key (`Authorization: Bearer cf_...`) costs a SHA-256 and one store lookup, never a
//! password hash. Every protected route passes through [`authenticated`] and, for admin routes,
//! [`require_server_admin`]: the one permission check.

use warp::http::StatusCode;
use warp::{Filter, Rejection};

use super::error::ApiError;
use crate::auth::Role;
use crate::auth::credential::api_key_hash;
use crate::server::AppState;
use crate::store::UserRecord;

/// The signed-in user of a request.
#[derive(Debug, Clone)]
pub struct CurrentUser(pub UserRecord);

impl CurrentUser {
    /// Whether the user holds `role` at server scope.
    pub fn is_server_admin(&self) -> bool {
        self.0
            .access
            .iter()
            .any(|b| b.role == Role::ServerAdmin && b.scope == "server")
    }
}

/// Passes requests that carry a valid API key of an enabled user, extracting that user.
pub fn authenticated(
    state: AppState,
) -> impl Filter<Extract = (CurrentUser,), Error = Rejection> + Clone {
    warp::header::optional::<String>("authorization").and_then(move |header: Option<String>| {
        let state = state.clone();
        async move {
            let user = header
                .as_deref()
                .and_then(|h| h.strip_prefix("Bearer "))
                .map(str::trim)
                .and_then(api_key_hash)
                .map(|hash| lookup_key_owner(&state, &hash))
                .transpose()?
                .flatten();
            user.map(CurrentUser)
                .ok_or_else(|| warp::reject::custom(ApiError::unauthenticated()))
        }
    })
}

fn lookup_key_owner(state: &AppState, hash: &[u8]) -> Result<Option<UserRecord>, Rejection> {
    let internal = |e: crate::store::StoreError| {
        tracing::error!(error = %e, "store lookup failed during authentication");
        warp::reject::custom(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
            "the server cannot read its store right now",
        ))
    };
    let Some(key) = state.store.api_key_by_hash(hash).map_err(internal)? else {
        return Ok(None);
    };
    let user = state.store.user(&key.username).map_err(internal)?;
    Ok(user.filter(|u| !u.disabled))
}

/// Passes only a signed-in server_admin: 401 without credentials, 403 for other roles.
pub fn require_server_admin(
    state: AppState,
) -> impl Filter<Extract = (CurrentUser,), Error = Rejection> + Clone {
    authenticated(state).and_then(|user: CurrentUser| async move {
        if user.is_server_admin() {
            Ok(user)
        } else {
            Err(warp::reject::custom(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "this needs the server_admin role",
            )))
        }
    })
}
