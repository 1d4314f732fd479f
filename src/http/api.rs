//! The public SSO configuration: `GET /api/auth/oidc/config`.

use warp::Filter;
use warp::Reply;
use warp::filters::BoxedFilter;
use warp::reply::Response;

use crate::state::AppState;

/// `GET /api/auth/oidc/config`.
/// Mounted under `/api/` by [`super::routes`]: the paths here start after it.
pub(crate) fn routes(state: AppState) -> BoxedFilter<(Response,)> {
    let with_state = super::with_state(state);
    let oidc_config = warp::path!("auth" / "oidc" / "config")
        .and(warp::get())
        .and(with_state.clone())
        .map(public_oidc_config);
    oidc_config.boxed()
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
