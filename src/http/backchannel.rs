//! `POST /auth/oidc/backchannel-logout` (OpenID Connect Back-Channel Logout 1.0): the identity
//! provider tells us a user signed out there. The logout token is checked
//! ([`crate::oidc::logout`]), its `jti` used once on every replica (the store), and then the
//! sessions of that provider session (`sid`) end, or every session of that user (`sub` alone);
//! with `backchannel_logout_revokes_keys` the user's device-login keys are revoked too.
//! 200 on success; 400 `{"error": "invalid_request", "error_description"}` otherwise, and nothing
//! ends. Every answer is audited (refusals throttled per address).

use serde::Deserialize;
use serde_json::json;
use warp::Filter;
use warp::Reply;
use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::reply::Response;

use super::auth::store_unavailable;
use super::client::{client_ip, limit_key};
use crate::audit::{Audit, AuditKind};
use crate::oidc::logout::verify_logout_token;
use crate::oidc::provider::Ready;
use crate::state::AppState;

/// A logout token is a few kilobytes at most.
const MAX_BODY_BYTES: u64 = 16 * 1024;

#[derive(Deserialize)]
struct LogoutForm {
    logout_token: String,
}

pub(crate) fn routes(state: AppState) -> BoxedFilter<(Response,)> {
    warp::path!("auth" / "oidc" / "backchannel-logout")
        .and(warp::post())
        .and(client_ip())
        .and(super::body::form::<LogoutForm>(MAX_BODY_BYTES))
        .and(super::with_state(state))
        .then(logout)
        .boxed()
}

fn answer(status: StatusCode, body: serde_json::Value) -> Response {
    let mut response = warp::reply::with_status(warp::reply::json(&body), status).into_response();
    response.headers_mut().insert(
        warp::http::header::CACHE_CONTROL,
        warp::http::HeaderValue::from_static("no-store"),
    );
    response
}

async fn logout(remote: Option<std::net::IpAddr>, form: LogoutForm, state: AppState) -> Response {
    let refuse = |reason: String| {
        let state = state.clone();
        async move {
            tracing::warn!(reason = %reason, "back-channel logout refused");
            let audit = Audit::failure(AuditKind::LogoutBackchannel, &reason).ip(remote);
            state
                .audit_throttle
                .record(audit, &limit_key(remote), &state.store)
                .await;
            answer(
                StatusCode::BAD_REQUEST,
                json!({"error": "invalid_request", "error_description": reason}),
            )
        }
    };
    let live = state.reloader.live();
    let Ok(Ready { config, discovered }) = state.provider.ready_for(&live) else {
        return refuse("single sign-on is not enabled or its provider is not ready".into()).await;
    };
    let now = crate::clock::unix_secs();
    let token = match verify_logout_token(
        &state.provider,
        &discovered,
        config,
        &form.logout_token,
        i64::try_from(now).unwrap_or(i64::MAX),
    )
    .await
    {
        Ok(token) => token,
        Err(reason) => return refuse(reason).await,
    };
    let jti_key = format!("{} {}", discovered.issuer, token.jti);
    match state
        .store
        .use_logout_jti(&jti_key, token.remember_until)
        .await
    {
        Ok(true) => {}
        Ok(false) => return refuse("the logout token's jti was used before".into()).await,
        Err(e) => return store_unavailable(e).response(),
    }
    let issuer = discovered.issuer.clone();
    let ended = async {
        let mut users: Vec<String> = Vec::new();
        let mut sessions = 0;
        if let Some(sid) = &token.sid {
            let of_sid = state.store.delete_sessions_of_sid(&issuer, sid).await?;
            sessions += of_sid.len();
            users.extend(of_sid);
        }
        let by_sub = match &token.sub {
            Some(sub) => state.store.identity(&issuer, sub).await?,
            None => None,
        };
        if let Some(username) = &by_sub {
            // A sub alone ends every session of that user; with a sid, that session only.
            if token.sid.is_none() {
                sessions += state.store.delete_sessions_of(username).await?;
            }
            users.push(username.clone());
        }
        users.sort();
        users.dedup();
        let mut keys = 0;
        if config.backchannel_logout_revokes_keys {
            for username in &users {
                for key in state.store.api_keys_of(username).await? {
                    if key.from_device && state.store.delete_api_key(username, &key.id).await? {
                        keys += 1;
                    }
                }
            }
        }
        state.store.flush().await?;
        Ok::<_, crate::store::StoreError>((users, sessions, keys))
    }
    .await;
    let (users, sessions, keys) = match ended {
        Ok(ended) => ended,
        Err(e) => return store_unavailable(e).response(),
    };
    tracing::info!(users = ?users, sessions, keys, "back-channel logout");
    Audit::success(AuditKind::LogoutBackchannel)
        .actor(users.first().map(String::as_str).unwrap_or(""))
        .reason(format!(
            "{sessions} session(s) and {keys} device-login key(s) ended ({})",
            if token.sid.is_some() { "sid" } else { "sub" }
        ))
        .ip(remote)
        .record(&state.store)
        .await;
    answer(StatusCode::OK, json!({}))
}
