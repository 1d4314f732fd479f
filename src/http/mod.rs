//! The warp HTTP surface: one file per resource, one rejection handler, common headers.
//!
//! Handlers load the live configuration once per request and keep it for the request's life.
//! Reading `oidc.json` and talking to git is [`crate::reload`]'s job; the one file written here is
//! `oidc.json` itself, by the settings routes (atomically, through [`crate::fsutil`]), after which
//! the one reload path applies it. Resources (one file each) share the lower modules
//! (`session`, `login`, `page`, `error`, `body`, `client`, `auth`) and never import each other.

pub(crate) mod accounts;
pub(crate) mod api;
pub(crate) mod assets;
pub(crate) mod audit;
pub(crate) mod auth;
pub(crate) mod backchannel;
pub(crate) mod body;
pub(crate) mod client;
pub(crate) mod device;
pub(crate) mod device_pages;
pub(crate) mod error;
pub(crate) mod health;
pub(crate) mod keys;
pub(crate) mod login;
pub(crate) mod page;
pub(crate) mod pages;
pub(crate) mod return_to;
pub(crate) mod session;
pub(crate) mod settings;
pub(crate) mod sso;
pub(crate) mod sso_preview;
pub(crate) mod users;

use warp::filters::BoxedFilter;
use warp::http::HeaderValue;
use warp::http::header;
use warp::reply::Response;
use warp::{Filter, Reply};

use crate::state::AppState;

/// Hands each request a clone of the shared state.
pub(crate) fn with_state(
    state: AppState,
) -> impl Filter<Extract = (AppState,), Error = std::convert::Infallible> + Clone {
    warp::any().map(move || state.clone())
}

/// Every route, with JSON errors and the security headers.
pub(crate) fn routes(state: AppState) -> BoxedFilter<(Response,)> {
    // Routes are tried in order, and trying one that does not match costs about as much as
    // answering `/healthz`. So the routes under `/api/` (their modules' paths start after it)
    // come first as one group that every other request skips with one segment check; in it,
    // `GET /api/me` (what every signed-in client calls most) comes first. Then the probes,
    // then the pages.
    let api = warp::path("api").and(
        accounts::routes(state.clone())
            .or(api::routes(state.clone()))
            .unify()
            .or(keys::routes(state.clone()))
            .unify()
            .or(users::routes(state.clone()))
            .unify()
            .or(settings::routes(state.clone()))
            .unify()
            .or(audit::routes(state.clone()))
            .unify()
            .boxed(),
    );
    api.or(health::routes(state.clone()))
        .unify()
        .or(pages::routes(state.clone()))
        .unify()
        .or(sso::routes(state.clone()))
        .unify()
        .or(backchannel::routes(state.clone()))
        .unify()
        // After the API group: the device flow's API routes start with `/api/auth/device`.
        .or(device::routes(state.clone()))
        .unify()
        .or(device_pages::routes(state))
        .unify()
        .or(assets::routes())
        .unify()
        .recover(error::handle_rejection)
        .unify()
        .map(with_security_headers)
        .with(warp::log::custom(|info| {
            tracing::debug!(
                method = %info.method(),
                path = info.path(),
                status = info.status().as_u16(),
                elapsed_ms = info.elapsed().as_secs_f64() * 1000.0,
                "request"
            );
        }))
        .map(Reply::into_response)
        .boxed()
}

/// Headers every answer carries: nothing is cached, framed, sniffed or given a referrer.
fn with_security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CACHE_CONTROL, "no-store"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; frame-ancestors 'none'",
        ),
        (header::REFERRER_POLICY, "no-referrer"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}
