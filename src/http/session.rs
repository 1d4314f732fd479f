//! Browser sessions: the `cf_session` cookie, its record in the store, and cookie headers.
//!
//! The cookie holds 256 random bits; the store keeps only their SHA-256. Every session has its
//! own CSRF token for forms and for the `X-CSRF-Token` header of the page scripts. Cookies are
//! `HttpOnly`, `SameSite=Lax`, `Path=/`, and `Secure` with the `__Host-` prefix when the public
//! URL is https. Their names start with `cf_` so they never collide with an identity provider's
//! cookies on the same host. Values the server checks a request against (the login form's CSRF
//! token, the SSO binding) are always minted fresh, never adopted from what a browser sent.

use std::time::Duration;

use subtle::ConstantTimeEq;

use std::net::IpAddr;

use warp::Filter;
use warp::http::StatusCode;
use warp::reply::Response;

use super::auth::store_unavailable;
use super::page::{error_page, query_escape, see_other};
use crate::auth::credential::{random_token, sha256};
use crate::auth::{Permission, permission::permits};
use crate::state::AppState;
use crate::store::{SessionRecord, StoreError, UserRecord};

/// The session cookie.
pub(crate) const SESSION_COOKIE: &str = "cf_session";
/// The CSRF token of the login form, before there is a session (double-submit).
pub(crate) const LOGIN_CSRF_COOKIE: &str = "cf_login_csrf";

/// The value of cookie `name` in a `Cookie` header; `None` when absent or sent more than once
/// (a duplicated cookie is a sign of cookie tossing and is not guessed at).
pub(crate) fn cookie_value<'a>(header: Option<&'a str>, name: &str) -> Option<&'a str> {
    let mut found = None;
    for pair in header?.split(';') {
        let Some((key, value)) = pair.trim().split_once('=') else {
            continue;
        };
        if key == name {
            if found.is_some() {
                return None;
            }
            found = Some(value.trim_matches('"'));
        }
    }
    found.filter(|v| !v.is_empty())
}

/// The name cookie `name` goes by: under an https public URL `__Host-<name>`, which browsers
/// accept only from this exact host over https with `Path=/` and no `Domain`, so neither a
/// sibling subdomain nor a plain-http man in the middle can plant it.
pub(crate) fn cookie_name(state: &AppState, name: &str) -> String {
    if state.public_url.starts_with("https://") {
        format!("__Host-{name}")
    } else {
        name.to_owned()
    }
}

/// The value of our cookie `name` in a `Cookie` header, under the name it goes by (see
/// [`cookie_name`]).
pub(crate) fn request_cookie<'a>(
    state: &AppState,
    header: Option<&'a str>,
    name: &str,
) -> Option<&'a str> {
    cookie_value(header, &cookie_name(state, name))
}

/// A `Set-Cookie` value for `name=value` living `max_age` (a session cookie when `None`).
pub(crate) fn set_cookie(
    state: &AppState,
    name: &str,
    value: &str,
    max_age: Option<Duration>,
) -> String {
    let name = cookie_name(state, name);
    let mut cookie = format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax");
    if let Some(age) = max_age {
        cookie.push_str(&format!("; Max-Age={}", age.as_secs()));
    }
    if state.public_url.starts_with("https://") {
        cookie.push_str("; Secure");
    }
    cookie
}

/// A `Set-Cookie` value that removes cookie `name`.
pub(crate) fn clear_cookie(state: &AppState, name: &str) -> String {
    set_cookie(state, name, "", Some(Duration::ZERO))
}

/// A signed-in browser: the session and its user.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    /// SHA-256 of the cookie value: how the session is stored.
    pub hash: [u8; 32],
    pub record: SessionRecord,
    pub user: UserRecord,
}

impl Session {
    /// Whether `presented` is this session's CSRF token (constant time).
    pub(crate) fn csrf_matches(&self, presented: &str) -> bool {
        tokens_equal(&self.record.csrf_token, presented)
    }
}

/// Compares two tokens in constant time.
pub(crate) fn tokens_equal(expected: &str, presented: &str) -> bool {
    !expected.is_empty() && bool::from(expected.as_bytes().ct_eq(presented.as_bytes()))
}

/// The live session named by the `Cookie` header, with its enabled user.
///
/// Fails when the store cannot be read.
pub(crate) async fn session_from_cookies(
    state: &AppState,
    cookie_header: Option<&str>,
) -> Result<Option<Session>, StoreError> {
    let Some(id) = request_cookie(state, cookie_header, SESSION_COOKIE) else {
        return Ok(None);
    };
    if id.len() != 43 {
        return Ok(None);
    }
    let hash = sha256(id.as_bytes());
    let Some(record) = state
        .store
        .session(&hash, crate::clock::unix_secs())
        .await?
    else {
        return Ok(None);
    };
    let user = state.store.user(&record.username).await?;
    Ok(user
        .filter(|u| !u.disabled)
        .map(|user| Session { hash, record, user }))
}

/// Starts a session for `username`, durable before it returns; answers the `Set-Cookie` value.
/// The caller ends the browser's previous session first (rotation at login).
///
/// Fails when the store cannot be written.
pub(crate) async fn start_session(
    state: &AppState,
    username: &str,
    sso: Option<crate::store::SsoSession>,
) -> Result<String, StoreError> {
    let id = random_token(32);
    let now = crate::clock::unix_secs();
    let lifetime = state.lifetimes.session;
    let record = SessionRecord {
        username: username.to_owned(),
        created_unix: now,
        expires_unix: now + lifetime.as_secs(),
        csrf_token: random_token(32),
        sso,
    };
    state
        .store
        .create_session(&sha256(id.as_bytes()), &record)
        .await?;
    state.store.flush().await?;
    Ok(set_cookie(state, SESSION_COOKIE, &id, Some(lifetime)))
}

/// Ends the session named by the `Cookie` header, if any.
///
/// Fails when the store cannot be written.
pub(crate) async fn end_session(
    state: &AppState,
    cookie_header: Option<&str>,
) -> Result<(), StoreError> {
    if let Some(id) = request_cookie(state, cookie_header, SESSION_COOKIE) {
        state.store.delete_session(&sha256(id.as_bytes())).await?;
        state.store.flush().await?;
    }
    Ok(())
}

/// The headers and peer a page handler needs.
#[derive(Clone)]
pub(crate) struct BrowserRequest {
    pub cookie: Option<String>,
    pub origin: Option<String>,
    pub remote: Option<IpAddr>,
    pub user_agent: Option<String>,
}

/// Extracts a [`BrowserRequest`].
pub(crate) fn browser_request()
-> impl Filter<Extract = (BrowserRequest,), Error = warp::Rejection> + Clone {
    warp::header::optional::<String>("cookie")
        .and(warp::header::optional::<String>("origin"))
        .and(super::client::client_ip())
        .and(warp::header::optional::<String>("user-agent"))
        .map(|cookie, origin, remote, user_agent| BrowserRequest {
            cookie,
            origin,
            remote,
            user_agent,
        })
}

/// The signed-in browser of a page request, or the page to answer instead (a store failure).
pub(crate) async fn page_session(
    state: &AppState,
    request: &BrowserRequest,
) -> Result<Option<Session>, Box<Response>> {
    session_from_cookies(state, request.cookie.as_deref())
        .await
        .map_err(|e| {
            let e = store_unavailable(e);
            Box::new(error_page(
                e.status,
                "Temporarily unavailable",
                &e.message,
                "Try again in a moment.",
                None,
            ))
        })
}

/// The session of a page that needs `permission`: a sign-in redirect when there is none, a 403
/// page when the user lacks it.
pub(crate) async fn require_page(
    state: &AppState,
    request: &BrowserRequest,
    permission: Permission,
    path: &str,
) -> Result<Session, Box<Response>> {
    let Some(session) = page_session(state, request).await? else {
        return Err(Box::new(see_other(
            &format!("/login?return_to={}", query_escape(path)),
            &[],
        )));
    };
    if !permits(&session.user, permission) {
        return Err(Box::new(error_page(
            StatusCode::FORBIDDEN,
            "Not allowed",
            "This page is for server administrators.",
            "Ask a server_admin for access, or go back.",
            Some(&session),
        )));
    }
    Ok(session)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookie_values_are_found_exactly_and_duplicates_refused() {
        let header = Some("_session=idp; cf_session=abc; cf_login_csrf=\"q\"");
        assert_eq!(cookie_value(header, SESSION_COOKIE), Some("abc"));
        assert_eq!(cookie_value(header, LOGIN_CSRF_COOKIE), Some("q"));
        assert_eq!(cookie_value(header, "session"), None);
        assert_eq!(
            cookie_value(Some("cf_session=a; cf_session=b"), SESSION_COOKIE),
            None
        );
        assert_eq!(cookie_value(Some("cf_session="), SESSION_COOKIE), None);
        assert_eq!(cookie_value(None, SESSION_COOKIE), None);
    }

    #[test]
    fn token_comparison_refuses_empty_and_different_tokens() {
        assert!(tokens_equal("abc", "abc"));
        assert!(!tokens_equal("abc", "abd"));
        assert!(!tokens_equal("abc", "ab"));
        assert!(!tokens_equal("", ""));
    }
}
