//! The browser pages of accounts: `/` , `/login` (GET and POST), `/logout`, and the shells of
//! the admin pages (`/people`, `/settings/sso`) whose scripts call the JSON API.
//!
//! Forms carry a CSRF token: the session's, or before sign-in a double-submit token in the
//! `cf_login_csrf` cookie. A successful login always starts a new session (rotation).

use std::time::Duration;

use serde::Deserialize;
use warp::Filter;
use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::reply::Response;

use super::auth::{is_own_origin, store_unavailable};
use super::login::check_password;
use super::page::{Page, error_page, escape, query_escape, see_other};
use super::return_to::return_to_or_home;
use super::session::{
    BrowserRequest, LOGIN_CSRF_COOKIE, SESSION_COOKIE, browser_request, clear_cookie, end_session,
    page_session, request_cookie, require_page, set_cookie, start_session, tokens_equal,
};
use crate::audit::{Audit, AuditKind};
use crate::auth::credential::{Password, random_token};
use crate::auth::{Permission, permission::permits};
use crate::state::AppState;

/// Largest form body read.
const MAX_FORM_BYTES: u64 = 8 * 1024;
/// How long the login form's CSRF cookie lives.
const LOGIN_CSRF_TTL: Duration = Duration::from_secs(3600);

#[derive(Deserialize)]
struct LoginQuery {
    return_to: Option<String>,
}

#[derive(Deserialize)]
struct LoginForm {
    username: String,
    password: Password,
    csrf_token: String,
    return_to: Option<String>,
}

#[derive(Deserialize)]
struct CsrfForm {
    csrf_token: Option<String>,
}

/// The page routes.
pub(crate) fn routes(state: AppState) -> BoxedFilter<(Response,)> {
    let with_state = super::with_state(state);
    let home = warp::path::end()
        .and(warp::get())
        .and(browser_request())
        .and(with_state.clone())
        .then(home);
    let login_page = warp::path!("login")
        .and(warp::get())
        .and(warp::query::<LoginQuery>())
        .and(browser_request())
        .and(with_state.clone())
        .then(login_page);
    let login_post = warp::path!("login")
        .and(warp::post())
        .and(browser_request())
        .and(super::body::form::<LoginForm>(MAX_FORM_BYTES))
        .and(with_state.clone())
        .then(login_post);
    let logout = warp::path!("logout")
        .and(warp::post())
        .and(browser_request())
        .and(super::body::form::<CsrfForm>(MAX_FORM_BYTES))
        .and(with_state.clone())
        .then(logout);
    let people = warp::path!("people")
        .and(warp::get())
        .and(browser_request())
        .and(with_state.clone())
        .then(|request: BrowserRequest, state: AppState| async move {
            admin_shell(
                &state,
                &request,
                "/people",
                "People & Access",
                "people",
                String::new(),
            )
            .await
        });
    let audit = warp::path!("audit")
        .and(warp::get())
        .and(browser_request())
        .and(with_state.clone())
        .then(|request: BrowserRequest, state: AppState| async move {
            admin_shell(
                &state,
                &request,
                "/audit",
                "Audit trail",
                "audit",
                String::new(),
            )
            .await
        });
    let settings = warp::path!("settings" / "sso")
        .and(warp::get())
        .and(browser_request())
        .and(with_state)
        .then(|request: BrowserRequest, state: AppState| async move {
            let data = format!(" data-redirect-uri=\"{}\"", escape(&state.redirect_uri()));
            admin_shell(
                &state,
                &request,
                "/settings/sso",
                "Single Sign-On",
                "settings-sso",
                data,
            )
            .await
        });
    home.or(login_page)
        .unify()
        .or(login_post)
        .unify()
        .or(logout)
        .unify()
        .or(people)
        .unify()
        .or(settings)
        .unify()
        .or(audit)
        .unify()
        .boxed()
}

async fn admin_shell(
    state: &AppState,
    request: &BrowserRequest,
    path: &str,
    title: &str,
    name: &str,
    data: String,
) -> Response {
    let session = match require_page(state, request, Permission::ServerAdmin, path).await {
        Ok(session) => session,
        Err(response) => return *response,
    };
    Page {
        title,
        name,
        session: Some(&session),
        body: format!(
            "<div id=\"app\"{data}><noscript>This page needs JavaScript.</noscript></div>"
        ),
        script: true,
    }
    .respond(StatusCode::OK)
}

async fn home(request: BrowserRequest, state: AppState) -> Response {
    let session = match require_page(&state, &request, Permission::SignedIn, "/").await {
        Ok(session) => session,
        Err(response) => return *response,
    };
    let user = &session.user;
    let access: Vec<String> = user
        .access
        .iter()
        .map(|b| {
            format!(
                "<li><span class=\"badge\">{}</span> {}</li>",
                escape(b.role.as_str()),
                escape(&b.scope)
            )
        })
        .collect();
    let admin_links = if permits(user, Permission::ServerAdmin) {
        "<p class=\"toolbar\"><a class=\"btn btn-secondary\" href=\"/settings/sso\">Single Sign-On settings</a> \
         <a class=\"btn btn-secondary\" href=\"/people\">People &amp; Access</a> \
         <a class=\"btn btn-secondary\" href=\"/audit\">Audit trail</a></p>"
    } else {
        ""
    };
    let body = format!(
        "<section class=\"card\"><h1>Welcome, {name}</h1><p class=\"lead\">Signed in as <strong>{username}</strong> ({email}).</p>\
         <h2>Your access</h2><ul class=\"access-list\">{access}</ul>{admin_links}\
         <p class=\"muted\">Command line: <code>coder login --sso --server {url}</code></p></section>",
        name = escape(&user.name),
        username = escape(&user.username),
        email = escape(&user.email),
        access = if access.is_empty() {
            "<li>none</li>".to_owned()
        } else {
            access.concat()
        },
        url = escape(&state.public_url),
    );
    Page {
        title: "Home",
        name: "home",
        session: Some(&session),
        body,
        script: false,
    }
    .respond(StatusCode::OK)
}

async fn login_page(query: LoginQuery, request: BrowserRequest, state: AppState) -> Response {
    let session = match page_session(&state, &request).await {
        Ok(session) => session,
        Err(response) => return *response,
    };
    let return_to = return_to_or_home(query.return_to.as_deref());
    if session.is_some() {
        return see_other(&return_to, &[]);
    }
    render_login(&state, &return_to, None, StatusCode::OK)
}

/// The login page, with an error message when a sign-in failed.
pub(crate) fn render_login(
    state: &AppState,
    return_to: &str,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let live = state.reloader.live();
    // Always fresh: a value adopted from the request could be one an attacker planted, who
    // would then know the token and could sign the victim in to the attacker's account.
    let csrf = random_token(32);
    let mut body = String::from("<section class=\"card auth-card\"><h1>Sign in to CoderFlow</h1>");
    if let Some(error) = error {
        body.push_str(&format!(
            "<div class=\"alert alert-error\" role=\"alert\">{}</div>",
            escape(error)
        ));
    }
    if live.sso_enabled() {
        body.push_str(&format!(
            "<a class=\"btn btn-primary btn-block sso-button\" id=\"sso-login\" href=\"/auth/oidc/login?return_to={}\">{}</a>",
            escape(&query_escape(return_to)),
            escape(live.display_name())
        ));
    }
    if live.local_auth_allowed() {
        if live.sso_enabled() {
            body.push_str("<div class=\"divider\"><span>or</span></div>");
        }
        body.push_str(&format!(
            "<form method=\"post\" action=\"/login\" class=\"stack\" id=\"local-login-form\">\
             <input type=\"hidden\" name=\"csrf_token\" value=\"{csrf}\">\
             <input type=\"hidden\" name=\"return_to\" value=\"{return_to}\">\
             <div class=\"field\"><label for=\"username\">Username</label>\
             <input id=\"username\" name=\"username\" autocomplete=\"username\" autocapitalize=\"none\" spellcheck=\"false\" required autofocus></div>\
             <div class=\"field\"><label for=\"password\">Password</label>\
             <input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required></div>\
             <button type=\"submit\" class=\"btn btn-primary btn-block\" id=\"local-login\">Sign in</button></form>",
            csrf = escape(&csrf),
            return_to = escape(return_to),
        ));
    } else if live.sso_enabled() {
        body.push_str(
            "<p class=\"muted\">Local login is disabled. Use your organisation's SSO.</p>",
        );
    } else {
        body.push_str(
            "<div class=\"alert alert-error\">No sign-in method is enabled. An operator can set \
             <code>allow_local_auth</code> to <code>true</code> in <code>oidc.json</code>.</div>",
        );
    }
    body.push_str("</section>");
    let mut response = Page {
        title: "Sign in",
        name: "login",
        session: None,
        body,
        script: false,
    }
    .respond(status);
    if let Ok(value) = set_cookie(state, LOGIN_CSRF_COOKIE, &csrf, Some(LOGIN_CSRF_TTL)).parse() {
        response
            .headers_mut()
            .append(warp::http::header::SET_COOKIE, value);
    }
    response
}

async fn login_post(request: BrowserRequest, form: LoginForm, state: AppState) -> Response {
    let return_to = return_to_or_home(form.return_to.as_deref());
    let cookie_token =
        request_cookie(&state, request.cookie.as_deref(), LOGIN_CSRF_COOKIE).unwrap_or("");
    // Browsers send `Origin: null` on form posts under `Referrer-Policy: no-referrer`: only a
    // real foreign origin is refused; the double-submit token is what proves the form is ours.
    let origin_ok = request
        .origin
        .as_deref()
        .is_none_or(|origin| origin == "null" || is_own_origin(&state, origin));
    if !origin_ok || !tokens_equal(cookie_token, &form.csrf_token) {
        tracing::warn!("login form refused: CSRF token or origin mismatch");
        return render_login(
            &state,
            &return_to,
            Some("Your sign-in form expired. Please try again."),
            StatusCode::FORBIDDEN,
        );
    }
    let username = form.username.trim().to_owned();
    let user = match check_password(&state, request.remote, &username, form.password).await {
        Ok(user) => user,
        Err(e) => return render_login(&state, &return_to, Some(&e.message), e.status),
    };
    // Rotation: whatever session this browser had ends; the signed-in one is new.
    if let Err(e) = end_session(&state, request.cookie.as_deref()).await {
        return store_unavailable(e).response();
    }
    match start_session(&state, &user.username, None).await {
        Ok(cookie) => {
            tracing::info!(
                username = %user.username,
                user_agent = request.user_agent.as_deref().unwrap_or(""),
                "local login: session started"
            );
            see_other(
                &return_to,
                &[cookie, clear_cookie(&state, LOGIN_CSRF_COOKIE)],
            )
        }
        Err(e) => store_unavailable(e).response(),
    }
}

async fn logout(request: BrowserRequest, form: CsrfForm, state: AppState) -> Response {
    let session = match page_session(&state, &request).await {
        Ok(session) => session,
        Err(response) => return *response,
    };
    if let Some(session) = &session {
        let token_ok = form
            .csrf_token
            .as_deref()
            .is_some_and(|t| session.csrf_matches(t));
        let origin_ok = request
            .origin
            .as_deref()
            .is_some_and(|o| is_own_origin(&state, o));
        if !token_ok && !origin_ok {
            return error_page(
                StatusCode::FORBIDDEN,
                "Sign-out refused",
                "This sign-out request did not come from a CoderFlow page.",
                "Use the Sign out button.",
                Some(session),
            );
        }
        if let Err(e) = end_session(&state, request.cookie.as_deref()).await {
            return store_unavailable(e).response();
        }
        tracing::info!(username = %session.user.username, "signed out");
        Audit::success(AuditKind::Logout)
            .actor(&session.user.username)
            .ip(request.remote)
            .record(&state.store)
            .await;
        if let Some(url) = provider_logout_url(&state, session) {
            tracing::info!(username = %session.user.username, "signed out: on to the identity provider's logout");
            Audit::success(AuditKind::LogoutProvider)
                .actor(&session.user.username)
                .reason("idp_logout: the browser goes to the provider's end_session_endpoint")
                .ip(request.remote)
                .record(&state.store)
                .await;
            return see_other(&url, &[clear_cookie(&state, SESSION_COOKIE)]);
        }
    }
    see_other("/login", &[clear_cookie(&state, SESSION_COOKIE)])
}

/// Where a signed-out SSO session goes to sign out at the provider too (`idp_logout`): its
/// `end_session_endpoint` with `id_token_hint`, `client_id` and `post_logout_redirect_uri` =
/// `<public URL>/login`; `None` for a local session, with `idp_logout` off, for a session of
/// another issuer than the live one, or a provider without the endpoint.
fn provider_logout_url(state: &AppState, session: &super::session::Session) -> Option<String> {
    let sso = session.record.sso.as_ref()?;
    let live = state.reloader.live();
    let ready = state.provider.ready_for(&live).ok()?;
    if !ready.config.idp_logout || ready.config.issuer != sso.issuer {
        return None;
    }
    let endpoint = ready
        .discovered
        .metadata
        .additional_metadata()
        .end_session_endpoint
        .clone()?;
    let mut url = url::Url::parse(&endpoint).ok()?;
    if url.scheme() != "https" && url.scheme() != "http" {
        return None;
    }
    url.query_pairs_mut()
        .append_pair("id_token_hint", sso.id_token.expose())
        .append_pair("client_id", &ready.config.client_id)
        .append_pair(
            "post_logout_redirect_uri",
            &format!("{}/login", state.public_url),
        );
    Some(url.to_string())
}
