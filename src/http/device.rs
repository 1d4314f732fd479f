//! Device login (RFC 8628) for the CLI and editor extensions: `POST /api/auth/device/code`,
//! `POST /api/auth/device/token`, and the browser side, `GET /device` (enter or confirm a code)
//! with `POST /device`, `/device/approve` and `/device/deny`.
//!
//! The device code has 256 bits and is stored hashed; the user code is 8 consonants, unique
//! among live codes. The first session that opens a code claims it; only that session may
//! approve or deny, by an explicit POST with its CSRF token. Wrong codes are rate-limited per
//! signed-in user (after 5, even the right code waits) and, more loosely, per client address,
//! so one person's typos never block their neighbours. A code yields at most one API key,
//! owned by the approving user, also under concurrent polls.

use std::net::IpAddr;

use serde::Deserialize;
use serde_json::json;
use warp::Filter;
use warp::Reply;
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
use crate::auth::account::UserView;
use crate::auth::credential::{new_api_key, random_token, sha256};
use crate::auth::device::{display_user_code, new_user_code, normalise_user_code};
use crate::auth::ratelimit::RateLimiter;
use crate::auth::text::{NameError, clean_name, displayable};
use crate::state::AppState;
use crate::store::{ApiKeyRecord, DeviceRecord, DeviceStatus, PollOutcome};
use crate::vocab::ErrorCode;

/// Largest JSON or form body read.
const MAX_BODY_BYTES: u64 = 4 * 1024;
/// Longest client name (the one limit for names, [`crate::auth::text`]).
const MAX_CLIENT_NAME: usize = crate::auth::text::MAX_NAME_CHARS;

#[derive(Deserialize, Default)]
struct CodeRequest {
    client_name: Option<String>,
}

#[derive(Deserialize)]
struct TokenRequest {
    device_code: String,
}

#[derive(Deserialize)]
struct DeviceQuery {
    user_code: Option<String>,
}

#[derive(Deserialize)]
struct DecisionForm {
    user_code: String,
    csrf_token: String,
}

/// The device routes.
pub fn routes(state: AppState) -> BoxedFilter<(Response,)> {
    let with_state = super::with_state(state);
    let code = warp::path!("api" / "auth" / "device" / "code")
        .and(warp::post())
        .and(super::client::client_ip())
        .and(warp::header::optional::<String>("user-agent"))
        .and(super::body::bytes(MAX_BODY_BYTES))
        .and(with_state.clone())
        .then(device_code);
    let token = warp::path!("api" / "auth" / "device" / "token")
        .and(warp::post())
        .and(warp::header::optional::<String>("content-type"))
        .and(super::body::bytes(MAX_BODY_BYTES))
        .and(with_state.clone())
        .then(|content_type: Option<String>, body: warp::hyper::body::Bytes, state: AppState| async move {
            // JSON as the contract says, or RFC 8628's form encoding (`grant_type`,
            // `device_code`, `client_id`) for standard OAuth device-flow clients.
            let form = content_type
                .as_deref()
                .is_some_and(|t| t.starts_with("application/x-www-form-urlencoded"));
            let request: Option<TokenRequest> = if form {
                serde_urlencoded_device_code(&body)
            } else {
                serde_json::from_slice(&body).ok()
            };
            match request {
                Some(request) => device_token(request, state).await,
                None => token_error(ErrorCode::InvalidRequest, "send {\"device_code\": \"...\"}"),
            }
        });
    let page = warp::path!("device")
        .and(warp::get())
        .and(warp::query::<DeviceQuery>())
        .and(browser_request())
        .and(with_state.clone())
        .map(device_page);
    let enter = warp::path!("device")
        .and(warp::post())
        .and(browser_request())
        .and(super::body::form::<DecisionForm>(MAX_BODY_BYTES))
        .and(with_state.clone())
        .map(enter_code);
    let decide = warp::path!("device" / String)
        .and(warp::post())
        .and(browser_request())
        .and(super::body::form::<DecisionForm>(MAX_BODY_BYTES))
        .and(with_state)
        .then(decide);
    code.or(token)
        .unify()
        .or(page)
        .unify()
        .or(enter)
        .unify()
        .or(decide)
        .unify()
        .boxed()
}

/// The client's name as the approval page will show it; refused when it could mislead (see
/// [`crate::auth::text`]).
fn client_name(requested: Option<String>) -> Result<String, NameError> {
    match requested {
        None => Ok("unnamed client".to_owned()),
        Some(name) if name.trim().is_empty() => Ok("unnamed client".to_owned()),
        Some(name) => clean_name(&name, MAX_CLIENT_NAME),
    }
}

async fn device_code(
    remote: Option<IpAddr>,
    user_agent: Option<String>,
    body: warp::hyper::body::Bytes,
    state: AppState,
) -> Response {
    let request: CodeRequest = if body.iter().all(u8::is_ascii_whitespace) {
        CodeRequest::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(request) => request,
            Err(_) => {
                return ApiError::new(
                    StatusCode::BAD_REQUEST,
                    ErrorCode::InvalidRequest,
                    "the body must be JSON: {\"client_name\": \"...\"}",
                )
                .response();
            }
        }
    };
    let client_name = match client_name(request.client_name) {
        Ok(name) => name,
        Err(e) => {
            return ApiError::new(
                StatusCode::BAD_REQUEST,
                ErrorCode::InvalidRequest,
                format!("client_name: {e}"),
            )
            .response();
        }
    };
    let ip = remote.map(|ip| ip.to_string()).unwrap_or_default();
    if let Err(retry) = state.limits.device_codes_per_ip.hit(&limit_key(remote)) {
        return ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::SlowDown,
            format!(
                "too many device codes requested: try again in {} seconds",
                retry.0.as_secs().max(1)
            ),
        )
        .response();
    }
    let lifetimes = state.lifetimes;
    let now = crate::clock::unix_secs();
    let device_code = random_token(32);
    let device_hash = sha256(device_code.as_bytes());
    let mut record = DeviceRecord {
        user_code: String::new(),
        client_name,
        requester_ip: ip,
        requester_agent: displayable(&user_agent.unwrap_or_default(), 200),
        created_at: crate::clock::now_rfc3339(),
        expires_unix: now + lifetimes.device_code.as_secs(),
        interval_secs: lifetimes.device_poll_interval.as_secs(),
        last_poll_ms: 0,
        claimed_by: None,
        status: DeviceStatus::Pending,
    };
    let mut stored = false;
    for _ in 0..16 {
        record.user_code = new_user_code();
        match state.store.create_device_code(&device_hash, &record) {
            Ok(true) => {
                stored = true;
                break;
            }
            Ok(false) => continue,
            Err(e) => return store_unavailable(e).response(),
        }
    }
    if !stored {
        return ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::TemporarilyUnavailable,
            "no free user code: try again",
        )
        .response();
    }
    let shown = display_user_code(&record.user_code);
    let verification_uri = format!("{}/device", state.public_url);
    tracing::info!(client = %record.client_name, ip = %record.requester_ip, "device code issued");
    warp::reply::json(&json!({
        "device_code": device_code,
        "user_code": shown,
        "verification_uri": verification_uri,
        "verification_uri_complete": format!("{verification_uri}?user_code={shown}"),
        "expires_in": lifetimes.device_code.as_secs(),
        "interval": record.interval_secs,
    }))
    .into_response()
}

/// The `device_code` field of a form-encoded token request.
fn serde_urlencoded_device_code(body: &[u8]) -> Option<TokenRequest> {
    url::form_urlencoded::parse(body)
        .find(|(k, _)| k == "device_code")
        .map(|(_, v)| TokenRequest {
            device_code: v.into_owned(),
        })
}

fn token_error(code: ErrorCode, message: &str) -> Response {
    ApiError::new(StatusCode::BAD_REQUEST, code, message).response()
}

async fn device_token(request: TokenRequest, state: AppState) -> Response {
    let key = new_api_key();
    let record = ApiKeyRecord {
        id: random_token(9),
        username: String::new(),
        name: String::new(),
        prefix: key.prefix.clone(),
        created_at: crate::clock::now_rfc3339(),
        last_used_unix: None,
    };
    let device_hash = sha256(request.device_code.as_bytes());
    let now_ms = crate::clock::unix_ms();
    // The key's name needs the code's client: read it first (a miss is answered by the poll).
    let mut record = record;
    if let Ok(Some(device)) = state.store.device_code(&device_hash) {
        record.name = format!(
            "{} ({})",
            device.client_name,
            &device.created_at[..device.created_at.len().min(19)].replace('T', " ")
        );
    }
    let outcome = match state
        .store
        .poll_device(&device_hash, now_ms, &key.hash, &record)
    {
        Ok(outcome) => outcome,
        Err(e) => return store_unavailable(e).response(),
    };
    match outcome {
        PollOutcome::Invalid => token_error(
            ErrorCode::InvalidGrant,
            "unknown or already used device code",
        ),
        PollOutcome::Expired => token_error(
            ErrorCode::ExpiredToken,
            "the device code expired before it was approved: start again",
        ),
        PollOutcome::Pending => token_error(
            ErrorCode::AuthorizationPending,
            "waiting for approval in the browser",
        ),
        PollOutcome::Denied => token_error(
            ErrorCode::AccessDenied,
            "the sign-in was denied in the browser",
        ),
        PollOutcome::SlowDown(interval) => {
            let body = json!({
                "error": ErrorCode::SlowDown,
                "message": format!("polling too fast: wait {interval} seconds between polls"),
                "interval": interval,
            });
            warp::reply::with_status(warp::reply::json(&body), StatusCode::BAD_REQUEST)
                .into_response()
        }
        PollOutcome::Issued(issued) => {
            if let Err(e) = state.store.flush().await {
                return store_unavailable(e).response();
            }
            let user = match state.store.user(&issued.username) {
                Ok(Some(user)) => user,
                Ok(None) => {
                    return token_error(
                        ErrorCode::InvalidGrant,
                        "the approving user no longer exists",
                    );
                }
                Err(e) => return store_unavailable(e).response(),
            };
            tracing::info!(username = %user.username, key_id = %issued.id, client = %issued.name, "device login: API key issued");
            Audit::success(AuditKind::LoginDevice)
                .actor(&user.username)
                .subject(&issued.id)
                .reason(format!("key \"{}\"", issued.name))
                .record(&state.store);
            warp::reply::json(&json!({
                "api_key": key.secret,
                "key_id": issued.id,
                "user": UserView::from(&user),
            }))
            .into_response()
        }
    }
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

fn device_page(query: DeviceQuery, request: BrowserRequest, state: AppState) -> Response {
    let path = match query.user_code.as_deref() {
        Some(code) => format!("/device?user_code={}", query_escape(code)),
        None => "/device".to_owned(),
    };
    let session = match require_page(&state, &request, Permission::SignedIn, &path) {
        Ok(session) => session,
        Err(response) => return response,
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
        Some(code) => match state.store.device_by_user_code(&code, now) {
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
    let claimed = state.store.update_device(
        &hash,
        |r| r.status == DeviceStatus::Pending && r.claimed_by.as_ref().is_none_or(|c| *c == me),
        |r| r.claimed_by = Some(me.clone()),
    );
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

fn enter_code(request: BrowserRequest, form: DecisionForm, state: AppState) -> Response {
    let session = match require_page(&state, &request, Permission::SignedIn, "/device") {
        Ok(session) => session,
        Err(response) => return response,
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
    let session = match require_page(&state, &request, Permission::SignedIn, "/device") {
        Ok(session) => session,
        Err(response) => return response,
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
    let found = match normalise_user_code(&form.user_code)
        .map(|c| state.store.device_by_user_code(&c, now))
    {
        Some(Ok(found)) => found,
        Some(Err(e)) => return store_unavailable(e).response(),
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
    let decided = state.store.update_device(
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
    );
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
        .record(&state.store);
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
