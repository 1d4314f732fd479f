//! Who is calling, and may they: the one filter every protected route goes through.
//!
//! A request is authenticated by `Authorization: Bearer <api key>` (a SHA-256 and one store
//! lookup, never a password hash) or by the `cf_session` cookie. A cookie-authenticated unsafe
//! method (anything but GET and HEAD) must also carry the session's CSRF token in
//! `X-CSRF-Token` or a same-origin `Origin` header, so another site cannot make a signed-in
//! browser act. Keys already seen are answered from [`crate::auth::key_cache`] until the store
//! changes a user or revokes a key. The permission itself is [`crate::auth::permission::permits`].

use std::sync::Arc;

use warp::http::{Method, StatusCode};
use warp::{Filter, Rejection};

use super::error::ApiError;
use super::session::{Session, session_from_cookies, tokens_equal};
use crate::auth::credential::api_key_hash;
use crate::auth::{Permission, permission::permits};
use crate::server::AppState;
use crate::store::{StoreError, UserRecord};

/// How a caller proved who they are.
#[derive(Debug, Clone)]
pub enum Credential {
    /// An API key; holds the SHA-256 of the key.
    ApiKey([u8; 32]),
    /// A browser session.
    Session(Box<Session>),
}

/// The signed-in caller of a request.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user: Arc<UserRecord>,
    pub credential: Credential,
}

/// The headers authentication reads.
struct Presented {
    method: Method,
    authorization: Option<String>,
    cookie: Option<String>,
    origin: Option<String>,
    csrf: Option<String>,
}

/// Passes callers that are signed in and hold `permission`: 401 without valid credentials,
/// 403 when the permission is missing or the CSRF check fails.
pub fn require(
    state: AppState,
    permission: Permission,
) -> impl Filter<Extract = (Caller,), Error = Rejection> + Clone {
    warp::method()
        .and(warp::header::optional::<String>("authorization"))
        .and(warp::header::optional::<String>("cookie"))
        .and(warp::header::optional::<String>("origin"))
        .and(warp::header::optional::<String>("x-csrf-token"))
        .and_then(move |method, authorization, cookie, origin, csrf| {
            let state = state.clone();
            let presented = Presented {
                method,
                authorization,
                cookie,
                origin,
                csrf,
            };
            async move {
                let caller = identify(&state, &presented)?
                    .ok_or_else(|| warp::reject::custom(ApiError::unauthenticated()))?;
                if !permits(&caller.user, permission) {
                    return Err(warp::reject::custom(forbidden(permission)));
                }
                Ok(caller)
            }
        })
}

fn identify(state: &AppState, presented: &Presented) -> Result<Option<Caller>, Rejection> {
    let internal = |e: StoreError| warp::reject::custom(store_unavailable(e));
    if let Some(header) = &presented.authorization {
        // A request that sends a key is judged by the key alone, never by a cookie beside it.
        let Some(hash) = bearer_key_hash(header) else {
            return Ok(None);
        };
        // The epoch is read before the lookup, so a change racing with it leaves a stale entry.
        let epoch = state.store.auth_epoch();
        let now = crate::clock::unix_secs();
        if let Some((user, first_this_second)) = state.key_cache.get(&hash, epoch, now) {
            if first_this_second {
                state.key_usage.record(hash, now);
            }
            return Ok(Some(Caller {
                user,
                credential: Credential::ApiKey(hash),
            }));
        }
        let Some(key) = state.store.api_key_by_hash(&hash).map_err(internal)? else {
            return Ok(None);
        };
        let user = state.store.user(&key.username).map_err(internal)?;
        let Some(user) = user.filter(|u| !u.disabled) else {
            return Ok(None);
        };
        let user = Arc::new(user);
        state.key_cache.insert(hash, epoch, user.clone());
        state.key_usage.record(hash, crate::clock::unix_secs());
        return Ok(Some(Caller {
            user,
            credential: Credential::ApiKey(hash),
        }));
    }
    let Some(session) =
        session_from_cookies(state, presented.cookie.as_deref()).map_err(internal)?
    else {
        return Ok(None);
    };
    let safe = presented.method == Method::GET || presented.method == Method::HEAD;
    if !safe && !same_site_request(state, &session, presented) {
        return Err(warp::reject::custom(ApiError::new(
            StatusCode::FORBIDDEN,
            "csrf_failed",
            "this request needs the page's CSRF token (X-CSRF-Token) or a same-origin Origin header",
        )));
    }
    Ok(Some(Caller {
        user: Arc::new(session.user.clone()),
        credential: Credential::Session(Box::new(session)),
    }))
}

/// Whether a cookie-authenticated unsafe request comes from our own pages.
fn same_site_request(state: &AppState, session: &Session, presented: &Presented) -> bool {
    if let Some(token) = &presented.csrf {
        return session.csrf_matches(token);
    }
    presented
        .origin
        .as_deref()
        .is_some_and(|origin| is_own_origin(state, origin))
}

/// Whether `origin` (an `Origin` header) is the public URL's origin.
pub fn is_own_origin(state: &AppState, origin: &str) -> bool {
    tokens_equal(&state.public_origin, origin)
}

/// The key hash of an `Authorization: Bearer cf_...` header; `None` for anything else.
fn bearer_key_hash(header: &str) -> Option<[u8; 32]> {
    let (scheme, key) = header.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    api_key_hash(key.trim())
}

fn forbidden(permission: Permission) -> ApiError {
    let message = match permission {
        Permission::ServerAdmin => "this needs the server_admin role",
        Permission::SignedIn => "this account cannot do that",
    };
    ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
}

/// The answer when the store cannot be read: logged here, a plain 503 for the client.
pub fn store_unavailable(e: StoreError) -> ApiError {
    tracing::error!(error = %e, "store failure");
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "store_unavailable",
        "the server cannot use its store right now",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_bearer_headers_with_well_formed_keys_are_looked_up() {
        let key = crate::auth::credential::new_api_key();
        assert_eq!(
            bearer_key_hash(&format!("Bearer {}", key.secret)),
            Some(key.hash)
        );
        assert_eq!(
            bearer_key_hash(&format!("bearer {}", key.secret)),
            Some(key.hash)
        );
        assert_eq!(bearer_key_hash(&format!("Basic {}", key.secret)), None);
        assert_eq!(bearer_key_hash("Bearer cf_short"), None);
        assert_eq!(bearer_key_hash("Bearer"), None);
    }
}
