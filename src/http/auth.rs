//! Who is calling, and may they: the one filter every protected route goes through.
//!
//! A request is authenticated by `Authorization: Bearer <api key>` (a SHA-256 and a lookup,
//! never a password hash; a request with that header is judged by it alone) or by the
//! `cf_session` cookie. A cookie-authenticated unsafe
//! method (anything but GET and HEAD) must also carry the session's CSRF token in
//! `X-CSRF-Token` or a same-origin `Origin` header, so another site cannot make a signed-in
//! browser act. Keys already seen are answered from [`crate::auth::key_cache`] until the store
//! changes a user or revokes a key. The permission itself is [`crate::auth::permission::permits`].

use std::sync::Arc;

use warp::http::{HeaderValue, Method, StatusCode};
use warp::{Filter, Rejection};

use super::error::ApiError;
use super::session::{Session, session_from_cookies, tokens_equal};
use crate::auth::credential::api_key_hash;
use crate::auth::{Permission, keys, permission::permits};
use crate::state::AppState;
use crate::store::{StoreError, UserRecord};
use crate::vocab::ErrorCode;

/// The signed-in caller of a request.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    pub user: Arc<UserRecord>,
    /// The user's [`crate::auth::account::UserView`] as JSON, when already rendered (API keys
    /// keep it in the key cache).
    pub view_json: Option<bytes::Bytes>,
}

/// The credentials a request presents.
enum Presented {
    /// An `Authorization` header: the request is judged by it alone, never by a cookie beside it.
    Authorization(HeaderValue),
    /// What a browser sends: the session cookie, and for unsafe methods the CSRF proof.
    Browser {
        method: Method,
        cookie: Option<String>,
        origin: Option<String>,
        csrf: Option<String>,
    },
}

/// Passes callers that are signed in and hold `permission`: 401 without valid credentials,
/// 403 when the permission is missing or the CSRF check fails.
pub(crate) fn require(
    state: AppState,
    permission: Permission,
) -> impl Filter<Extract = (Caller,), Error = Rejection> + Clone {
    // An API request reads one header; the browser's headers are read only without it.
    let authorization = warp::header::value("authorization").map(Presented::Authorization);
    let browser = warp::method()
        .and(warp::header::optional::<String>("cookie"))
        .and(warp::header::optional::<String>("origin"))
        .and(warp::header::optional::<String>("x-csrf-token"))
        .map(|method, cookie, origin, csrf| Presented::Browser {
            method,
            cookie,
            origin,
            csrf,
        });
    authorization
        .or(browser)
        .unify()
        .and_then(move |presented: Presented| {
            let state = state.clone();
            async move { authorize(&state, &presented, permission).await }
        })
}

async fn authorize(
    state: &AppState,
    presented: &Presented,
    permission: Permission,
) -> Result<Caller, Rejection> {
    let caller = identify(state, presented)
        .await?
        .ok_or_else(|| warp::reject::custom(ApiError::unauthenticated()))?;
    if !permits(&caller.user, permission) {
        return Err(warp::reject::custom(forbidden(permission)));
    }
    Ok(caller)
}

async fn identify(state: &AppState, presented: &Presented) -> Result<Option<Caller>, Rejection> {
    let internal = |e: StoreError| warp::reject::custom(store_unavailable(e));
    let (method, cookie, origin, csrf) = match presented {
        Presented::Authorization(header) => return identify_key(state, header).await,
        Presented::Browser {
            method,
            cookie,
            origin,
            csrf,
        } => (method, cookie, origin, csrf),
    };
    let Some(session) = session_from_cookies(state, cookie.as_deref())
        .await
        .map_err(internal)?
    else {
        return Ok(None);
    };
    let safe = method == Method::GET || method == Method::HEAD;
    if !safe && !same_site_request(state, &session, origin.as_deref(), csrf.as_deref()) {
        return Err(warp::reject::custom(ApiError::new(
            StatusCode::FORBIDDEN,
            ErrorCode::CsrfFailed,
            "this request needs the page's CSRF token (X-CSRF-Token) or a same-origin Origin header",
        )));
    }
    Ok(Some(Caller {
        user: Arc::new(session.user.clone()),
        view_json: None,
    }))
}

/// The caller of an `Authorization: Bearer <api key>` header; `None` for anything else.
async fn identify_key(state: &AppState, header: &HeaderValue) -> Result<Option<Caller>, Rejection> {
    let internal = |e: StoreError| warp::reject::custom(store_unavailable(e));
    let Some(hash) = header.to_str().ok().and_then(bearer_key_hash) else {
        return Ok(None);
    };
    let now = crate::clock::unix_secs();
    let owner = keys::authenticate(&state.store, &state.key_cache, &state.key_usage, hash, now)
        .await
        .map_err(internal)?;
    match owner {
        keys::KeyAuth::Valid(owner) => Ok(Some(Caller {
            user: owner.user,
            view_json: Some(owner.view_json),
        })),
        keys::KeyAuth::Refused => Ok(None),
        keys::KeyAuth::Expired { username } => {
            // Throttled per user: a client retrying an expired key must not flood the trail.
            let audit = crate::audit::Audit::failure(
                crate::audit::AuditKind::ApiKeyExpired,
                "an expired API key was presented",
            )
            .actor(&username);
            state
                .audit_throttle
                .record(audit, &format!("expired-key:{username}"), &state.store)
                .await;
            Err(warp::reject::custom(ApiError::new(
                StatusCode::UNAUTHORIZED,
                ErrorCode::KeyExpired,
                "this API key has expired: sign in again (coder login)",
            )))
        }
    }
}

/// Whether a cookie-authenticated unsafe request comes from our own pages.
fn same_site_request(
    state: &AppState,
    session: &Session,
    origin: Option<&str>,
    csrf: Option<&str>,
) -> bool {
    if let Some(token) = csrf {
        return session.csrf_matches(token);
    }
    origin.is_some_and(|origin| is_own_origin(state, origin))
}

/// Whether `origin` (an `Origin` header) is the public URL's origin.
pub(crate) fn is_own_origin(state: &AppState, origin: &str) -> bool {
    tokens_equal(&state.public_origin, origin)
}

/// The key hash of an `Authorization: Bearer cf_...` header; `None` for anything else.
fn bearer_key_hash(header: &str) -> Option<[u8; 32]> {
    let scheme = header.get(..7)?;
    if !scheme.eq_ignore_ascii_case("bearer ") {
        return None;
    }
    api_key_hash(header[7..].trim())
}

fn forbidden(permission: Permission) -> ApiError {
    let message = match permission {
        Permission::ServerAdmin => "this needs the server_admin role",
        Permission::SignedIn => "this account cannot do that",
    };
    ApiError::new(StatusCode::FORBIDDEN, ErrorCode::Forbidden, message)
}

/// The answer when the store cannot be read: logged here, a plain 503 for the client.
pub(crate) fn store_unavailable(e: StoreError) -> ApiError {
    tracing::error!(error = %e, "store failure");
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::StoreUnavailable,
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
