//! Device login (RFC 8628) for the CLI and editor extensions, the client side:
//! `POST /api/auth/device/code` and `POST /api/auth/device/token`. The browser side (entering,
//! confirming, approving or denying a code) is [`super::device_pages`].
//!
//! The device code has 256 bits and is stored hashed; the user code is 8 consonants, unique
//! among live codes. A code yields at most one API key, owned by the approving user, also under
//! concurrent polls; a user disabled since approving gets none.

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
use crate::auth::account::UserView;
use crate::auth::device::{self, display_user_code};
use crate::state::AppState;
use crate::store::PollOutcome;
use crate::vocab::ErrorCode;

/// Largest JSON or form body read.
const MAX_BODY_BYTES: u64 = 4 * 1024;

#[derive(Deserialize, Default)]
struct CodeRequest {
    client_name: Option<String>,
}

#[derive(Deserialize)]
struct TokenRequest {
    device_code: String,
}

/// `POST /api/auth/device/code` and `POST /api/auth/device/token`.
pub(crate) fn routes(state: AppState) -> BoxedFilter<(Response,)> {
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
        .and(with_state)
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
    code.or(token).unify().boxed()
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
    let request = device::CodeRequest {
        client_name: request.client_name,
        requester_ip: ip,
        requester_agent: user_agent.unwrap_or_default(),
    };
    let started = device::start(
        &state.store,
        request,
        lifetimes.device_code,
        lifetimes.device_poll_interval,
    )
    .await;
    let (device_code, record) = match started {
        Ok(started) => (started.device_code, started.record),
        Err(device::StartError::Store(e)) => return store_unavailable(e).response(),
        Err(e @ device::StartError::ClientName(_)) => {
            return ApiError::new(
                StatusCode::BAD_REQUEST,
                ErrorCode::InvalidRequest,
                e.to_string(),
            )
            .response();
        }
        Err(e @ device::StartError::NoFreeCode) => {
            return ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::TemporarilyUnavailable,
                e.to_string(),
            )
            .response();
        }
    };
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
    let now_ms = crate::clock::unix_ms();
    let expires = state.lifetimes.cli_key_expiry(now_ms / 1000);
    let poll = match device::poll(&state.store, &request.device_code, now_ms, expires).await {
        Ok(poll) => poll,
        Err(e) => return store_unavailable(e).response(),
    };
    let outcome = match poll {
        device::Poll::Issued { secret, key, user } => {
            return warp::reply::json(&json!({
                "api_key": secret,
                "key_id": key.id,
                "user": UserView::from(&user),
            }))
            .into_response();
        }
        device::Poll::Waiting(outcome) => outcome,
    };
    match outcome {
        PollOutcome::Invalid | PollOutcome::Issued(_) => token_error(
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
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_encoded_polls_name_their_device_code() {
        let request = serde_urlencoded_device_code(
            b"grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code&device_code=a%2Bb&client_id=x",
        )
        .unwrap();
        assert_eq!(request.device_code, "a+b");
        assert!(serde_urlencoded_device_code(b"grant_type=x").is_none());
    }
}
