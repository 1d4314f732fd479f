//! The audit trail for server_admin: `GET /api/audit` (newest first, paged with `before`,
//! filtered by `kind`) and the `/audit` page.

use serde::Deserialize;
use serde_json::json;
use warp::Filter;
use warp::Reply;
use warp::filters::BoxedFilter;
use warp::reply::Response;

use super::auth::{Caller, require, store_unavailable};
use crate::auth::Permission;
use crate::state::AppState;

/// Events per page unless asked otherwise, and at most.
const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 500;

#[derive(Deserialize)]
struct AuditQuery {
    limit: Option<usize>,
    before: Option<u64>,
    kind: Option<String>,
}

/// `GET /api/audit`.
/// Mounted under `/api/` by [`super::routes`]: the paths here start after it.
pub(crate) fn routes(state: AppState) -> BoxedFilter<(Response,)> {
    warp::path!("audit")
        .and(warp::get())
        .and(require(state.clone(), Permission::ServerAdmin))
        .and(warp::query::<AuditQuery>())
        .and(super::with_state(state))
        .then(list)
        .boxed()
}

async fn list(_admin: Caller, query: AuditQuery, state: AppState) -> Response {
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT);
    let kind = query.kind.as_deref().filter(|k| !k.is_empty());
    // One more than asked tells whether an older page exists.
    match state
        .store
        .audit_events(query.before, limit + 1, kind)
        .await
    {
        Ok(mut events) => {
            let more = events.len() > limit;
            events.truncate(limit);
            let next_before = more.then(|| events.last().map(|e| e.id)).flatten();
            warp::reply::json(&json!({ "events": events, "next_before": next_before }))
                .into_response()
        }
        Err(e) => store_unavailable(e).response(),
    }
}
