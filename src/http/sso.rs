//! SSO sign-in pages: `GET /auth/oidc/login` starts the authorization code flow,
//! `GET /auth/oidc/callback` finishes it.
//!
//! The pending login (state, nonce, PKCE verifier, `return_to`) is kept server-side and works
//! once; it is bound to the browser by the `cf_login_binding` cookie. After any rejection no
//! session exists and no user was created; the browser gets one of the guide's error pages and
//! the operator's log gets the detail (never a secret, code or token).

use std::time::Duration;

use serde::Deserialize;
use warp::Filter;
use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::reply::Response;

use super::auth::store_unavailable;
use super::client::limit_key;
use super::page::{error_page, see_other};
use super::return_to::return_to_or_home;
use super::session::require_page;
use super::session::{BrowserRequest, browser_request};
use super::session::{
    clear_cookie, end_session, request_cookie, set_cookie, start_session, tokens_equal,
};
use crate::audit::{Audit, AuditKind};
use crate::auth::access::AccessRefusal;
use crate::auth::credential::{random_token, sha256};
use crate::auth::permission::Permission;
use crate::auth::provision::{SsoRefusal, sign_in_identity};
use crate::auth::text::displayable;
use crate::oidc::flow::{FailureKind, binding_hash, finish_login, start_login};
use crate::oidc::provider::{NotReady, Ready};
use crate::state::AppState;

/// The cookie that binds a pending login to the browser that started it.
pub(crate) const BINDING_COOKIE: &str = "cf_login_binding";
/// Longest callback query read.
const MAX_QUERY_BYTES: usize = 8 * 1024;

#[derive(Deserialize)]
struct StartQuery {
    return_to: Option<String>,
    /// `1`: "Check with my account" (server_admin only): the callback shows a preview.
    preview: Option<String>,
}

/// `GET /auth/oidc/login` and `GET /auth/oidc/callback`.
pub(crate) fn routes(state: AppState) -> BoxedFilter<(Response,)> {
    let with_state = super::with_state(state);
    let start = warp::path!("auth" / "oidc" / "login")
        .and(warp::get())
        .and(warp::query::<StartQuery>())
        .and(browser_request())
        .and(with_state.clone())
        .then(start);
    let callback = warp::path!("auth" / "oidc" / "callback")
        .and(warp::get())
        .and(warp::query::raw().or(warp::any().map(String::new)).unify())
        .and(browser_request())
        .and(with_state)
        .then(callback);
    start.or(callback).unify().boxed()
}

fn unavailable(detail: &str) -> Response {
    tracing::warn!(
        detail,
        "SSO login refused: the identity provider is not ready"
    );
    error_page(
        StatusCode::SERVICE_UNAVAILABLE,
        "Single sign-on is unavailable",
        "The identity provider cannot be reached right now.",
        "Try again in a moment. If it keeps failing, an administrator can check Settings → Single Sign-On → Test Connection.",
        None,
    )
}

fn state_error() -> Response {
    error_page(
        StatusCode::BAD_REQUEST,
        "Invalid or expired state",
        "This sign-in could not be matched to one started in this browser.",
        "The login took too long, the page was refreshed during login, or browser cookies are blocked. Return to the login page and try again.",
        None,
    )
}

/// The page for a login the callback could not complete, after recording its cause for the
/// administrator under a reference the page shows.
fn failed(state: &AppState, kind: FailureKind, cause: &str, hint: Option<&str>) -> Response {
    let label = match kind {
        FailureKind::Transient => "transient",
        FailureKind::Configuration => "configuration",
        FailureKind::Rejected => "rejected",
    };
    let reference = state.sso_failures.record(label, cause, hint);
    tracing::warn!(
        reference,
        kind = label,
        cause,
        hint = hint.unwrap_or(""),
        "SSO login failed"
    );
    match kind {
        FailureKind::Transient => error_page(
            StatusCode::SERVICE_UNAVAILABLE,
            "The identity provider did not answer",
            "Signing in could not be finished because the identity provider could not be reached.",
            &format!(
                "Try again in a moment. If it keeps failing, tell your administrator the reference {reference}."
            ),
            None,
        ),
        FailureKind::Configuration => error_page(
            StatusCode::BAD_GATEWAY,
            "Single sign-on is not set up correctly",
            "Signing in with your identity provider does not work on this server right now, and trying again will not help.",
            &format!(
                "Contact your administrator and give them the reference {reference}: they will find the cause under Settings → Single Sign-On."
            ),
            None,
        ),
        FailureKind::Rejected => error_page(
            StatusCode::BAD_GATEWAY,
            "Sign-in failed",
            "The identity provider's answer could not be verified.",
            &format!(
                "Try again. If it keeps failing, tell your administrator the reference {reference}."
            ),
            None,
        ),
    }
}

async fn start(query: StartQuery, request: BrowserRequest, state: AppState) -> Response {
    let live = state.reloader.live();
    let Ready { config, discovered } = match state.provider.ready_for(&live) {
        Ok(ready) => ready,
        Err(NotReady::Disabled) => {
            return error_page(
                StatusCode::NOT_FOUND,
                "Single sign-on is not enabled",
                "This server does not offer single sign-on.",
                "Sign in with your username and password, or ask an administrator to enable SSO.",
                None,
            );
        }
        Err(NotReady::Unavailable { status, .. }) => return unavailable(&status.detail),
    };
    if state
        .limits
        .sso_starts_per_ip
        .hit(&limit_key(request.remote))
        .is_err()
    {
        return error_page(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many sign-in attempts",
            "This address started too many sign-ins in a short time.",
            "Wait a minute, then try again.",
            None,
        );
    }
    if let Err(status) = state.provider.ensure_answering(&discovered).await {
        return unavailable(&status.detail);
    }
    let preview_by = match query.preview.as_deref() {
        None | Some("" | "0" | "false") => None,
        Some(_) => {
            match require_page(&state, &request, Permission::ServerAdmin, "/settings/sso").await {
                Ok(session) => Some(session.user.username),
                Err(page) => return *page,
            }
        }
    };
    // Always fresh: adopting a binding the browser sent would let an attacker who can plant
    // cookies bind a login of their own to the victim's browser (login CSRF). A second login
    // started in another tab replaces the first one's binding; the first then fails with
    // "Invalid or expired state" and can simply be started again.
    let binding = random_token(32);
    let ttl = state.lifetimes.login_state;
    let return_to = return_to_or_home(query.return_to.as_deref());
    let mut login = start_login(
        &discovered,
        config,
        &state.redirect_uri(),
        &binding,
        &return_to,
        crate::clock::unix_secs() + ttl.as_secs(),
    );
    login.pending.preview_by = preview_by;
    if let Err(e) = state
        .store
        .create_pending_login(&sha256(login.state.as_bytes()), &login.pending)
        .await
    {
        return store_unavailable(e).response();
    }
    let cookie = set_cookie(
        &state,
        BINDING_COOKIE,
        &binding,
        Some(ttl.max(Duration::from_secs(60))),
    );
    see_other(&login.authorize_url, &[cookie])
}

/// The callback's parameters, each at most once.
#[derive(Debug, Default)]
pub(crate) struct CallbackParams {
    pub code: Option<String>,
    pub state: Option<String>,
    pub iss: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
    /// A token in the front channel (`id_token`, `access_token`): this client only uses the
    /// code flow, so such a response is an injection or a mix-up and is refused.
    pub front_channel_token: bool,
}

/// Parses the raw query; `None` when a parameter appears twice or the query is too long.
pub(crate) fn parse_callback(raw: &str) -> Option<CallbackParams> {
    if raw.len() > MAX_QUERY_BYTES {
        return None;
    }
    let mut params = CallbackParams::default();
    let mut seen = std::collections::HashSet::new();
    for (key, value) in url::form_urlencoded::parse(raw.as_bytes()) {
        if !seen.insert(key.clone()) {
            return None;
        }
        let slot = match key.as_ref() {
            "code" => &mut params.code,
            "state" => &mut params.state,
            "iss" => &mut params.iss,
            "error" => &mut params.error,
            "error_description" => &mut params.error_description,
            "id_token" | "access_token" => {
                params.front_channel_token = true;
                continue;
            }
            _ => continue,
        };
        *slot = Some(value.into_owned());
    }
    Some(params)
}

async fn callback(raw: String, request: BrowserRequest, state: AppState) -> Response {
    let address = limit_key(request.remote);
    let audit_failure = |reason: &str| {
        let audit = Audit::failure(AuditKind::LoginSso, reason).ip(request.remote);
        state.audit_throttle.record(audit, &address, &state.store)
    };
    let Some(params) = parse_callback(&raw) else {
        audit_failure("malformed callback (duplicated parameters or oversized)").await;
        tracing::warn!("SSO callback refused: duplicated parameters or an oversized query");
        return error_page(
            StatusCode::BAD_REQUEST,
            "Invalid sign-in response",
            "The sign-in response was malformed.",
            "Return to the login page and try again.",
            None,
        );
    };
    let now = crate::clock::unix_secs();
    let pending = match params.state.as_deref() {
        Some(s) => match state
            .store
            .take_pending_login(&sha256(s.as_bytes()), now)
            .await
        {
            Ok(pending) => pending,
            Err(e) => return store_unavailable(e).response(),
        },
        None => None,
    };
    if let Some(error) = &params.error {
        let code: String = error
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
            .take(64)
            .collect();
        let description = params
            .error_description
            .as_deref()
            .map(|d| displayable(d, 200))
            .filter(|d| !d.is_empty());
        let cause = match &description {
            Some(d) => format!("the identity provider answered `{code}`: {d}"),
            None => format!("the identity provider answered `{code}`"),
        };
        audit_failure(&cause).await;
        // Only for a login this server started: anyone can call the callback with `error=`,
        // and the administrator's list must not fill with made-up causes.
        let reference = pending.as_ref().map(|_| {
            state.sso_failures.record(
                "refused",
                &cause,
                Some("check the application at the identity provider: the redirect URI, the users or groups assigned to it, consent"),
            )
        });
        tracing::warn!(reference = reference.as_deref().unwrap_or(""), error = %code, description = description.as_deref().unwrap_or(""), "SSO login: the identity provider answered an error");
        let message = match &description {
            Some(d) => format!("The identity provider answered “{code}”: {d}"),
            None => format!("The identity provider answered “{code}”."),
        };
        let with_reference = reference
            .map(|r| format!(", with the reference {r}"))
            .unwrap_or_default();
        return error_page(
            StatusCode::BAD_REQUEST,
            "Sign-in was not completed",
            &message,
            &format!(
                "If you cancelled, you can try again. Otherwise ask your administrator to check the application's settings at the identity provider (redirect URI, assigned users){with_reference}."
            ),
            None,
        );
    }
    let Some(pending) = pending else {
        tracing::warn!("SSO callback refused: unknown, used or expired state");
        audit_failure("unknown, used or expired state").await;
        return state_error();
    };
    let binding = request_cookie(&state, request.cookie.as_deref(), BINDING_COOKIE).unwrap_or("");
    if binding.is_empty() || !tokens_equal(&pending.binding_hash, &binding_hash(binding)) {
        tracing::warn!(
            "SSO callback refused: the state belongs to another browser (or cookies are blocked)"
        );
        audit_failure("state of another browser, or cookies blocked").await;
        return state_error();
    }
    let live = state.reloader.live();
    // The login must finish with the configuration it started with.
    let ready = match state.provider.ready_for(&live) {
        Ok(ready) if ready.config.is_for(&pending.issuer, &pending.client_id) => ready,
        Err(NotReady::Unavailable { config, status })
            if config.is_for(&pending.issuer, &pending.client_id) =>
        {
            return unavailable(&status.detail);
        }
        _ => {
            tracing::warn!(
                "SSO callback refused: the SSO configuration changed since the login started"
            );
            return state_error();
        }
    };
    let Ready { config, discovered } = ready;
    if params.front_channel_token {
        tracing::warn!(
            "SSO callback refused: a token in the front channel (only the code flow is used)"
        );
        audit_failure("token in the authorization response").await;
        return failed(
            &state,
            FailureKind::Rejected,
            "a token in the authorization response (only the code flow is used)",
            None,
        );
    }
    // RFC 9207: `iss` must be the issuer, and must be there when the provider says it sends it.
    let iss_required = discovered
        .metadata
        .additional_metadata()
        .authorization_response_iss_parameter_supported;
    let iss_problem = match params.iss.as_deref() {
        Some(iss) if iss != pending.issuer => Some("`iss` parameter is not the issuer"),
        None if iss_required => Some("no `iss` parameter, though the provider announces it"),
        _ => None,
    };
    if let Some(problem) = iss_problem {
        tracing::warn!(
            iss = params.iss.as_deref().unwrap_or(""),
            "SSO callback refused: {problem}"
        );
        audit_failure(problem).await;
        return failed(&state, FailureKind::Rejected, problem, None);
    }
    let Some(code) = params.code.filter(|c| !c.is_empty()) else {
        tracing::warn!("SSO callback refused: no code");
        audit_failure("no code").await;
        return failed(
            &state,
            FailureKind::Rejected,
            "the authorization response has no code",
            None,
        );
    };
    let identity = match finish_login(
        &state.provider,
        discovered,
        config,
        &state.redirect_uri(),
        &code,
        &pending,
    )
    .await
    {
        Ok(identity) => identity,
        Err(e) => {
            let cause = crate::oidc::describe(&e);
            audit_failure(&cause).await;
            return failed(&state, e.kind(), &cause, e.hint());
        }
    };
    if let Some(admin) = &pending.preview_by {
        return super::sso_preview::preview_page(&state, &request, admin, config, &identity).await;
    }
    let subject = identity.subject.clone();
    let user = match sign_in_identity(&state.store, config, &identity).await {
        Ok(user) => user,
        Err(refusal) => {
            tracing::warn!(reason = %refusal, sub = %subject, issuer = %pending.issuer, "SSO login refused");
            let audit = Audit::failure(AuditKind::LoginSso, refusal.to_string())
                .subject(&subject)
                .ip(request.remote);
            state
                .audit_throttle
                .record(audit, &address, &state.store)
                .await;
            let reference = state
                .sso_failures
                .record("refused", &refusal.to_string(), None);
            return refusal_page(&refusal, &pending.issuer, &reference);
        }
    };
    if let Err(e) = end_session(&state, request.cookie.as_deref()).await {
        return store_unavailable(e).response();
    }
    let sso = crate::store::SsoSession {
        issuer: pending.issuer.clone(),
        id_token: identity.id_token.clone(),
        sid: identity
            .claims
            .get("sid")
            .and_then(serde_json::Value::as_str)
            .map(|s| s.chars().take(256).collect()),
    };
    match start_session(&state, &user.username, Some(sso)).await {
        Ok(cookie) => {
            tracing::info!(username = %user.username, issuer = %pending.issuer, "SSO login: session started");
            Audit::success(AuditKind::LoginSso)
                .actor(&user.username)
                .reason(format!("issuer {}", pending.issuer))
                .ip(request.remote)
                .record(&state.store)
                .await;
            see_other(
                &pending.return_to,
                &[cookie, clear_cookie(&state, BINDING_COOKIE)],
            )
        }
        Err(e) => store_unavailable(e).response(),
    }
}

/// The page of a login refused by the access rules: it names the rule, never the allowed
/// values (a refused user learns nothing of the configuration).
fn access_refusal_page(refusal: &AccessRefusal, reference: &str) -> Response {
    let (title, message, hint) = match refusal {
        AccessRefusal::RequiredClaim(_) => (
            "Not allowed to sign in",
            "Your account at the identity provider does not meet this server's sign-in requirements (required_claims).".to_owned(),
            "Sign in with the account your organisation gave you, or ask an administrator",
        ),
        AccessRefusal::EmailDomain => (
            "Email domain not allowed",
            "This server does not accept sign-ins with your email address's domain (allowed_email_domains).".to_owned(),
            "Sign in with your organisation's account, or ask an administrator",
        ),
        AccessRefusal::NotInAllowedGroups => (
            "Not allowed to sign in",
            "Your account is not in a group that may sign in to this server (allowed_groups).".to_owned(),
            "Ask an administrator to add you to the right group at the identity provider",
        ),
        AccessRefusal::MissingGroupsClaim(_) | AccessRefusal::MalformedGroupsClaim(_) => (
            "Missing groups claim",
            "The identity provider did not send your groups, which this server needs to decide your access. Nothing was changed.".to_owned(),
            "Ask an administrator to configure the identity provider to send the groups claim (groups_claim)",
        ),
        AccessRefusal::GroupOverage => (
            "Too many groups",
            "The identity provider sent a reference to your groups instead of the groups: you are in more groups than fit in a sign-in token.".to_owned(),
            "Ask an administrator to limit the groups claim to the groups assigned to the application",
        ),
    };
    error_page(
        StatusCode::FORBIDDEN,
        title,
        &message,
        &format!("{hint} (reference {reference})."),
        None,
    )
}

/// Whether `issuer` is Microsoft Entra ID (hints may then name its settings).
fn is_entra(issuer: &str) -> bool {
    url::Url::parse(issuer).is_ok_and(|u| {
        matches!(
            u.host_str(),
            Some("login.microsoftonline.com" | "sts.windows.net" | "login.microsoftonline.us")
        )
    })
}

fn refusal_page(refusal: &SsoRefusal, issuer: &str, reference: &str) -> Response {
    match refusal {
        SsoRefusal::MissingEmail => {
            let mut hint = format!(
                "Ask your administrator (reference {reference}) to make sure the email scope is requested and that your account at the identity provider has an email address."
            );
            if is_entra(issuer) {
                hint.push_str(" In Microsoft Entra ID, the account needs a mail address and the app registration the email permission.");
            }
            error_page(
                StatusCode::FORBIDDEN,
                "Missing email claim",
                "The identity provider did not return your email address.",
                &hint,
                None,
            )
        }
        SsoRefusal::EmailNotVerified(_) => error_page(
            StatusCode::FORBIDDEN,
            "Email not verified",
            "The identity provider says your email address is not verified, so it cannot be matched to an account.",
            &format!(
                "Verify your email address with your identity provider, then try again (reference {reference})."
            ),
            None,
        ),
        SsoRefusal::NotLinked { .. } => error_page(
            StatusCode::FORBIDDEN,
            "Account not linked",
            "A CoderFlow account with your email address exists, but this sign-in cannot be linked to it automatically.",
            &format!(
                "Ask an administrator to check the SSO settings (link_by_email), or sign in with your password and try again later (reference {reference})."
            ),
            None,
        ),
        SsoRefusal::UserNotFound(_) => error_page(
            StatusCode::FORBIDDEN,
            "User not found",
            "No CoderFlow user has your email address, and automatic provisioning is disabled.",
            &format!(
                "Ask an administrator to create your account with your email address, or to enable auto-provisioning (reference {reference})."
            ),
            None,
        ),
        SsoRefusal::Disabled(_) => error_page(
            StatusCode::FORBIDDEN,
            "Account disabled",
            "Your CoderFlow account is disabled.",
            &format!("Ask an administrator to enable it (reference {reference})."),
            None,
        ),
        SsoRefusal::Access(refusal) => access_refusal_page(refusal, reference),
        SsoRefusal::Store(e) => {
            tracing::error!(error = %e, "store failure during SSO login");
            error_page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Temporarily unavailable",
                "The server cannot use its store right now.",
                "Try again in a moment.",
                None,
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callback_parameters_are_read_once_each() {
        let p = parse_callback("code=a%2Bb&state=s&iss=https%3A%2F%2Fidp&extra=1").unwrap();
        assert_eq!(p.code.as_deref(), Some("a+b"));
        assert_eq!(p.iss.as_deref(), Some("https://idp"));
        assert!(parse_callback("code=a&code=b&state=s").is_none());
        assert!(parse_callback("state=s&state=s").is_none());
        assert!(parse_callback(&"x".repeat(MAX_QUERY_BYTES + 1)).is_none());
        assert!(parse_callback("").unwrap().state.is_none());
    }
}
