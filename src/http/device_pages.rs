//! Device login, the browser side: `GET /device` (enter or confirm a code, `?user_code=`
//! pre-fills), `POST /device`, and `POST /device/{approve|deny}`. The client side is
//! [`super::device`].
//!
//! The first session that opens a code claims it; only that session may approve or deny, by an
//! explicit POST with its CSRF token. Wrong codes are rate-limited per signed-in user (after 5,
//! even the right code waits) and, more loosely, per client address, so one person's typos
//! never block their neighbours.

use serde::Deserialize;
use warp::Filter;
use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::reply::Response;

use super::auth::store_unavailable;
use super::client::limit_key;
use super::error::ApiError;
use super::page::{Page, error_page, escape, query_escape, see_other};
use super::session::Session;
use super::session::{BrowserRequest, browser_request, require_page};
use crate::audit::{Audit, AuditKind};
use crate::auth::Permission;
use crate::auth::device::{display_user_code, normalise_user_code};
use crate::auth::ratelimit::RateLimiter;
use crate::state::AppState;
use crate::store::{DeviceRecord, DeviceStatus};
use crate::vocab::ErrorCode;

/// Largest form body read.
const MAX_BODY_BYTES: u64 = 4 * 1024;

#[derive(Deserialize)]
struct DeviceQuery {
    user_code: Option<String>,
}

#[derive(Deserialize)]
struct DecisionForm {
    user_code: String,
    csrf_token: String,
}

/// `GET /device`, `POST /device`, `POST /device/{decision}`.
pub(crate) fn routes(state: AppState) -> BoxedFilter<(Response,)> {
    let with_state = super::with_state(state);
    let page = warp::path!("device")
        .and(warp::get())
        .and(warp::query::<DeviceQuery>())
        .and(browser_request())
        .and(with_state.clone())
        .then(device_page);
    let enter = warp::path!("device")
        .and(warp::post())
        .and(browser_request())
        .and(super::body::form::<DecisionForm>(MAX_BODY_BYTES))
        .and(with_state.clone())
        .then(enter_code);
    let decide = warp::path!("device" / String)
        .and(warp::post())
        .and(browser_request())
        .and(super::body::form::<DecisionForm>(MAX_BODY_BYTES))
        .and(with_state)
        .then(decide);
    page.or(enter).unify().or(decide).unify().boxed()
}

/// The session's identity as a device code keeps it.
fn claim_id(session: &Session) -> String {
    base64::Engine::encode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        session.hash,
    )
}

/// The limits wrong codes are counted under: this user's, then this address's (a higher one,
/// so one user's typos never block their neighbours).
fn failure_limits<'a>(
    state: &'a AppState,
    session: &Session,
    request: &BrowserRequest,
) -> [(&'a RateLimiter, String); 2] {
    [
        (
            &state.limits.user_code_failures,
            format!("user:{}", session.user.username),
        ),
        (
            &state.limits.user_code_failures_per_ip,
            limit_key(request.remote),
        ),
    ]
}

fn entry_form(session: &Session, message: Option<&str>, status: StatusCode) -> Response {
    let alert = message
        .map(|m| {
            format!(
                "<div class=\"alert alert-error\" role=\"alert\">{}</div>",
                escape(m)
            )
        })
        .unwrap_or_default();
    let body = format!(
        "<section class=\"card auth-card\"><h1>Connect a device</h1>{alert}\
         <p class=\"lead\">Enter the code shown in your terminal or editor.</p>\
         <form method=\"post\" action=\"/device\" class=\"stack\">\
         <input type=\"hidden\" name=\"csrf_token\" value=\"{csrf}\">\
         <div class=\"field\"><label for=\"user_code\">Code</label>\
         <input id=\"user_code\" name=\"user_code\" class=\"code-input\" autocomplete=\"off\" autocapitalize=\"characters\" spellcheck=\"false\" placeholder=\"XXXX-XXXX\" required autofocus></div>\
         <button type=\"submit\" class=\"btn btn-primary btn-block\">Continue</button></form></section>",
        csrf = escape(&session.record.csrf_token),
    );
    Page {
        title: "Connect a device",
        name: "device",
        session: Some(session),
        body,
        script: false,
    }
    .respond(status)
}

async fn device_page(query: DeviceQuery, request: BrowserRequest, state: AppState) -> Response {
    let path = match query.user_code.as_deref() {
        Some(code) => format!("/device?user_code={}", query_escape(code)),
        None => "/device".to_owned(),
    };
    let session = match require_page(&state, &request, Permission::SignedIn, &path).await {
        Ok(session) => session,
        Err(response) => return *response,
    };
    let Some(typed) = query.user_code else {
        return entry_form(&session, None, StatusCode::OK);
    };
    let limits = failure_limits(&state, &session, &request);
    if limits.iter().any(|(limit, key)| limit.check(key).is_err()) {
        return entry_form(
            &session,
            Some("Too many wrong codes. Wait a few minutes, then try again."),
            StatusCode::TOO_MANY_REQUESTS,
        );
    }
    let now = crate::clock::unix_secs();
    let found = match normalise_user_code(&typed) {
        Some(code) => match state.store.device_by_user_code(&code, now).await {
            Ok(found) => found,
            Err(e) => return store_unavailable(e).response(),
        },
        None => None,
    };
    let Some((hash, record)) = found else {
        for (limit, key) in &limits {
            let _ = limit.hit(key);
        }
        tracing::info!(username = %session.user.username, "device page: wrong or expired user code");
        return entry_form(
            &session,
            Some(
                "No sign-in is waiting for this code. Check the code in your terminal; codes expire after a few minutes.",
            ),
            StatusCode::NOT_FOUND,
        );
    };
    if record.status != DeviceStatus::Pending {
        return error_page(
            StatusCode::CONFLICT,
            "Code already used",
            "This code was already approved or denied.",
            "Start a new sign-in from your terminal or editor.",
            Some(&session),
        );
    }
    let me = claim_id(&session);
    let claimed = state
        .store
        .update_device(
            &hash,
            |r| r.status == DeviceStatus::Pending && r.claimed_by.as_ref().is_none_or(|c| *c == me),
            |r| r.claimed_by = Some(me.clone()),
        )
        .await;
    match claimed {
        Ok(Some(record)) => confirm_page(&session, &record),
        Ok(None) => error_page(
            StatusCode::CONFLICT,
            "Code opened elsewhere",
            "This code is being approved in another browser session.",
            "If that was not you, deny the sign-in there, or start a new one from your terminal.",
            Some(&session),
        ),
        Err(e) => store_unavailable(e).response(),
    }
}

fn confirm_page(session: &Session, record: &DeviceRecord) -> Response {
    let code = display_user_code(&record.user_code);
    let when = record
        .created_at
        .get(..19)
        .unwrap_or(&record.created_at)
        .replace('T', " ");
    let form = |action: &str, class: &str, id: &str, label: &str| {
        format!(
            "<form method=\"post\" action=\"/device/{action}\" class=\"inline\">\
             <input type=\"hidden\" name=\"csrf_token\" value=\"{csrf}\">\
             <input type=\"hidden\" name=\"user_code\" value=\"{code}\">\
             <button type=\"submit\" class=\"btn {class}\" id=\"{id}\">{label}</button></form>",
            csrf = escape(&session.record.csrf_token),
            code = escape(&code),
        )
    };
    let body = format!(
        "<section class=\"card auth-card\"><h1>Approve sign-in?</h1>\
         <p class=\"lead\"><strong>{client}</strong> wants to sign in as <strong>{user}</strong> and receive a personal API key.</p>\
         <p class=\"muted\">Check that this code matches the one in your terminal or editor:</p>\
         <div class=\"user-code\" aria-label=\"code\">{code}</div>\
         <dl class=\"facts\"><dt>Client</dt><dd>{client}</dd><dt>Requested</dt><dd>{when} UTC</dd>\
         <dt>IP address</dt><dd>{ip}</dd><dt>Browser / agent</dt><dd>{agent}</dd></dl>\
         <div class=\"actions\">{approve}{deny}</div></section>",
        client = escape(&record.client_name),
        user = escape(&session.user.username),
        code = escape(&code),
        when = escape(&when),
        ip = escape(&record.requester_ip),
        agent = escape(if record.requester_agent.is_empty() {
            "unknown"
        } else {
            &record.requester_agent
        }),
        approve = form("approve", "btn-primary", "approve", "Approve"),
        deny = form("deny", "btn-danger-outline", "deny", "Deny"),
    );
    Page {
        title: "Approve sign-in",
        name: "device",
        session: Some(session),
        body,
        script: false,
    }
    .respond(StatusCode::OK)
}

async fn enter_code(request: BrowserRequest, form: DecisionForm, state: AppState) -> Response {
    let session = match require_page(&state, &request, Permission::SignedIn, "/device").await {
        Ok(session) => session,
        Err(response) => return *response,
    };
    if !session.csrf_matches(&form.csrf_token) {
        return entry_form(
            &session,
            Some("The form expired. Please enter the code again."),
            StatusCode::FORBIDDEN,
        );
    }
    see_other(
        &format!("/device?user_code={}", query_escape(form.user_code.trim())),
        &[],
    )
}

async fn decide(
    action: String,
    request: BrowserRequest,
    form: DecisionForm,
    state: AppState,
) -> Response {
    let approve = match action.as_str() {
        "approve" => true,
        "deny" => false,
        _ => {
            return ApiError::new(StatusCode::NOT_FOUND, ErrorCode::NotFound, "no such route")
                .response();
        }
    };
    let session = match require_page(&state, &request, Permission::SignedIn, "/device").await {
        Ok(session) => session,
        Err(response) => return *response,
    };
    if !session.csrf_matches(&form.csrf_token) {
        return error_page(
            StatusCode::FORBIDDEN,
            "Request refused",
            "This approval did not come from the CoderFlow page.",
            "Open the link from your terminal again.",
            Some(&session),
        );
    }
    let now = crate::clock::unix_secs();
    let found = match normalise_user_code(&form.user_code) {
        Some(code) => match state.store.device_by_user_code(&code, now).await {
            Ok(found) => found,
            Err(e) => return store_unavailable(e).response(),
        },
        None => None,
    };
    let Some((hash, _)) = found else {
        return error_page(
            StatusCode::NOT_FOUND,
            "Code expired",
            "This sign-in code is no longer valid.",
            "Start a new sign-in from your terminal or editor.",
            Some(&session),
        );
    };
    let me = claim_id(&session);
    let username = session.user.username.clone();
    let decided = state
        .store
        .update_device(
            &hash,
            |r| r.status == DeviceStatus::Pending && r.claimed_by.as_deref() == Some(me.as_str()),
            |r| {
                r.status = if approve {
                    DeviceStatus::Approved {
                        username: username.clone(),
                    }
                } else {
                    DeviceStatus::Denied
                }
            },
        )
        .await;
    let record = match decided {
        Ok(Some(record)) => record,
        Ok(None) => {
            tracing::warn!(username = %session.user.username, "device decision refused: code claimed by another session or already decided");
            return error_page(
                StatusCode::CONFLICT,
                "Not allowed",
                "This code was opened in another browser session, or already decided.",
                "Start a new sign-in from your terminal or editor.",
                Some(&session),
            );
        }
        Err(e) => return store_unavailable(e).response(),
    };
    let kind = if approve {
        AuditKind::DeviceApproved
    } else {
        AuditKind::DeviceDenied
    };
    Audit::success(kind)
        .actor(&session.user.username)
        .subject(&record.client_name)
        .reason(format!("requested from {}", record.requester_ip))
        .ip(request.remote)
        .record(&state.store)
        .await;
    if let Err(e) = state.store.flush().await {
        return store_unavailable(e).response();
    }
    tracing::info!(username = %session.user.username, client = %record.client_name, approved = approve, "device sign-in decided");
    let body = if approve {
        format!(
            "<section class=\"card auth-card\"><div class=\"result result-ok\" role=\"status\"><h1>Device connected</h1>\
             <p class=\"lead\"><strong>{}</strong> is signed in as <strong>{}</strong>.</p>\
             <p class=\"muted\">You can close this window and return to your terminal or editor.</p></div></section>",
            escape(&record.client_name),
            escape(&session.user.username)
        )
    } else {
        "<section class=\"card auth-card\"><div class=\"result result-denied\" role=\"status\"><h1>Sign-in denied</h1>\
         <p class=\"lead\">The device was not signed in.</p>\
         <p class=\"muted\">If you did not start this sign-in, someone may have tried to trick you into approving it.</p></div></section>"
            .to_owned()
    };
    Page {
        title: "Connect a device",
        name: "device",
        session: Some(&session),
        body,
        script: false,
    }
    .respond(StatusCode::OK)
}
