//! JSON API routes of the configuration: the public SSO configuration and the admin reload.

use warp::Filter;
use warp::Reply;
use warp::filters::BoxedFilter;
use warp::reply::Response;

use super::auth::{Caller, require};
use crate::auth::Permission;
use crate::reload::Trigger;
use crate::server::AppState;

/// `GET /api/auth/oidc/config` and `POST /api/settings/sso/reload`.
pub fn routes(state: AppState) -> BoxedFilter<(Response,)> {
    let with_state = super::with_state(state.clone());
    let oidc_config = warp::path!("api" / "auth" / "oidc" / "config")
        .and(warp::get())
        .and(with_state.clone())
        .map(public_oidc_config);
    let reload = warp::path!("api" / "settings" / "sso" / "reload")
        .and(warp::post())
        .and(require(state.clone(), Permission::ServerAdmin))
        .and(with_state)
        .then(reload_from_file);
    oidc_config.or(reload).unify().boxed()
}

/// What anyone may know of the SSO configuration: never a secret.
fn public_oidc_config(state: AppState) -> Response {
    let live = state.reloader.live();
    let login_url = live
        .sso_enabled()
        .then(|| format!("{}/auth/oidc/login", state.public_url));
    warp::reply::json(&serde_json::json!({
        "sso_enabled": live.sso_enabled(),
        "display_name": live.display_name(),
        "allow_local_auth": live.local_auth_allowed(),
        "login_url": login_url,
    }))
    .into_response()
}

/// Answers the status after the reload, with an added `result` (applied, unchanged, rejected).
async fn reload_from_file(admin: Caller, state: AppState) -> Response {
    let outcome = state.reload(Trigger::Api).await;
    tracing::info!(by = %admin.user.username, result = ?outcome.result, "reload from the API");
    let mut body = serde_json::to_value(&outcome.status).unwrap_or_default();
    body["result"] = serde_json::to_value(outcome.result).unwrap_or_default();
    warp::reply::json(&body).into_response()
}
