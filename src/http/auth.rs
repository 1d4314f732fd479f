//! Authentication and authorisation filters for the HTTP routes.
//!
//! Accounts (sessions, API keys, roles) do not exist yet, so no credential can be valid: every
//! protected route answers 401. The filter is in place so each protected route already passes
//! through the one check that accounts will fill in.

use warp::{Filter, Rejection};

use super::error::ApiError;

/// Passes only requests of a signed-in server_admin.
pub fn require_server_admin() -> impl Filter<Extract = (), Error = Rejection> + Clone {
    warp::any()
        .and_then(|| async {
            Err::<(), Rejection>(warp::reject::custom(ApiError::unauthenticated()))
        })
        .untuple_one()
}
