//! People and access for server_admin: `GET/POST /api/users`, `GET/PATCH /api/users/{username}`,
//! `PUT /api/users/{username}/access`.
//!
//! Every change is flushed before the answer. The last enabled server_admin cannot be disabled
//! or lose the role, so the server always has someone who can manage it.

use serde::Deserialize;
use serde_json::{Value, json};
use warp::Filter;
use warp::Reply;
use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::reply::Response;

use super::auth::{Caller, require, store_unavailable};
use super::error::ApiError;
use crate::audit::{Audit, AuditKind};
use crate::auth::account::{
    AccountError, NewUser, UserChange, UserView, change_user, create_user, set_access,
};
use crate::auth::credential::Password;
use crate::auth::{Permission, Role};
use crate::state::AppState;
use crate::store::{AccessBinding, UserSource};
use crate::vocab::ErrorCode;

/// Largest JSON body these routes read.
const MAX_BODY_BYTES: u64 = 16 * 1024;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    username: String,
    email: String,
    name: String,
    role: String,
    password: Option<Password>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PatchBody {
    name: Option<String>,
    email: Option<String>,
    disabled: Option<bool>,
    password: Option<Password>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BindingBody {
    role: String,
    scope: String,
}

/// The users routes, all for server_admin.
/// Mounted under `/api/` by [`super::routes`]: the paths here start after it.
pub(crate) fn routes(state: AppState) -> BoxedFilter<(Response,)> {
    let with_state = super::with_state(state.clone());
    let admin = require(state, Permission::ServerAdmin);
    let list = warp::path!("users")
        .and(warp::get())
        .and(admin.clone())
        .and(with_state.clone())
        .then(list);
    let create = warp::path!("users")
        .and(warp::post())
        .and(admin.clone())
        .and(json_body())
        .and(with_state.clone())
        .then(create);
    let show = warp::path!("users" / String)
        .and(warp::get())
        .and(admin.clone())
        .and(with_state.clone())
        .then(show);
    let patch = warp::path!("users" / String)
        .and(warp::patch())
        .and(admin.clone())
        .and(json_body())
        .and(with_state.clone())
        .then(patch);
    let access = warp::path!("users" / String / "access")
        .and(warp::put())
        .and(admin)
        .and(json_body())
        .and(with_state)
        .then(put_access);
    list.or(create)
        .unify()
        .or(show)
        .unify()
        .or(patch)
        .unify()
        .or(access)
        .unify()
        .boxed()
}

/// A JSON body of at most [`MAX_BODY_BYTES`].
fn json_body<T: serde::de::DeserializeOwned + Send + 'static>()
-> impl Filter<Extract = (T,), Error = warp::Rejection> + Clone {
    super::body::json(MAX_BODY_BYTES)
}

async fn list(_admin: Caller, state: AppState) -> Response {
    let managed = match managed_users(&state).await {
        Ok(managed) => managed,
        Err(e) => return e.response(),
    };
    match state.store.users().await {
        Ok(users) => {
            let users: Vec<Value> = users
                .iter()
                .map(|u| with_managed(u, managed.contains(&u.username)))
                .collect();
            warp::reply::json(&json!({ "users": users })).into_response()
        }
        Err(e) => store_unavailable(e).response(),
    }
}

async fn show(username: String, _admin: Caller, state: AppState) -> Response {
    let managed = match managed_by_provider(&state, &username).await {
        Ok(managed) => managed,
        Err(e) => return e.response(),
    };
    match state.store.user(&username).await {
        Ok(Some(user)) => warp::reply::json(&with_managed(&user, managed)).into_response(),
        Ok(None) => account_error(AccountError::NoSuchUser(username)).response(),
        Err(e) => store_unavailable(e).response(),
    }
}

/// A user's view with `access_managed_by_provider` (their access is read-only here).
fn with_managed(user: &crate::store::UserRecord, managed: bool) -> Value {
    view_with_managed(&UserView::from(user), managed)
}

fn view_with_managed(view: &UserView, managed: bool) -> Value {
    let mut view = serde_json::to_value(view).unwrap_or_default();
    view["access_managed_by_provider"] = managed.into();
    view
}

async fn create(admin: Caller, body: CreateBody, state: AppState) -> Response {
    let role = match body.role.parse::<Role>() {
        Ok(role) => role,
        Err(e) => {
            return ApiError::new(
                StatusCode::BAD_REQUEST,
                ErrorCode::InvalidRole,
                e.to_string(),
            )
            .response();
        }
    };
    let new = NewUser {
        username: body.username,
        email: body.email,
        name: body.name,
        role,
        password: body.password,
        source: UserSource::Local,
    };
    let store = state.store.clone();
    let result = create_user(&store, new)
        .await
        .map(|user| UserView::from(&user));
    match saved(&state, result).await {
        Ok(user) => {
            tracing::info!(by = %admin.user.username, username = %user.username, role = %role, "user created");
            Audit::success(AuditKind::UserCreated)
                .actor(&admin.user.username)
                .subject(&user.username)
                .reason(format!("role {role}"))
                .record(&state.store)
                .await;
            // A new user has no SSO identity yet: managed here.
            warp::reply::with_status(
                warp::reply::json(&view_with_managed(&user, false)),
                StatusCode::CREATED,
            )
            .into_response()
        }
        Err(e) => e.response(),
    }
}

async fn patch(username: String, admin: Caller, body: PatchBody, state: AppState) -> Response {
    let changed = [
        body.name.as_ref().map(|_| "name"),
        body.email.as_ref().map(|_| "email"),
        body.disabled
            .map(|d| if d { "disabled" } else { "enabled" }),
        body.password.as_ref().map(|_| "password"),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join(", ");
    let change = UserChange {
        name: body.name,
        email: body.email,
        disabled: body.disabled,
        password: body.password,
        keep_keys: false,
    };
    let store = state.store.clone();
    let target = username.clone();
    let result = change_user(&store, &target, change).await;
    let result = result.map(|(user, ended)| (UserView::from(&user), ended));
    match saved(&state, result).await {
        Ok((user, ended)) => {
            tracing::info!(by = %admin.user.username, username = %user.username, disabled = user.disabled, sessions_ended = ended.sessions, keys_revoked = ended.keys, "user changed");
            let reason = match ended.describe() {
                Some(ended) => format!("{changed}; {ended}"),
                None => changed,
            };
            Audit::success(AuditKind::UserChanged)
                .actor(&admin.user.username)
                .subject(&user.username)
                .reason(reason)
                .record(&state.store)
                .await;
            let managed = managed_by_provider(&state, &user.username)
                .await
                .unwrap_or(false);
            warp::reply::json(&view_with_managed(&user, managed)).into_response()
        }
        Err(e) => e.response(),
    }
}

async fn put_access(
    username: String,
    admin: Caller,
    body: Vec<BindingBody>,
    state: AppState,
) -> Response {
    let mut bindings = Vec::with_capacity(body.len());
    for b in body {
        match b.role.parse::<Role>() {
            Ok(role) => bindings.push(AccessBinding {
                role,
                scope: b.scope,
            }),
            Err(e) => {
                return ApiError::new(
                    StatusCode::BAD_REQUEST,
                    ErrorCode::InvalidRole,
                    e.to_string(),
                )
                .response();
            }
        }
    }
    match managed_by_provider(&state, &username).await {
        Ok(false) => {}
        Ok(true) => {
            return ApiError::new(
                StatusCode::CONFLICT,
                ErrorCode::ManagedByProvider,
                "this user's access comes from the identity provider (role_mapping in oidc.json): change their groups at the provider; the next SSO login applies them",
            )
            .response();
        }
        Err(e) => return e.response(),
    }
    let store = state.store.clone();
    let target = username.clone();
    let result = set_access(&store, &target, bindings)
        .await
        .map(|user| UserView::from(&user));
    match saved(&state, result).await {
        Ok(user) => {
            let roles: Vec<&str> = user.access.iter().map(|b| b.role.as_str()).collect();
            tracing::info!(by = %admin.user.username, username = %user.username, roles = ?roles, "access changed");
            Audit::success(AuditKind::AccessChanged)
                .actor(&admin.user.username)
                .subject(&user.username)
                .reason(roles.join(", "))
                .record(&state.store)
                .await;
            // Refused above for a managed user.
            warp::reply::json(&view_with_managed(&user, false)).into_response()
        }
        Err(e) => e.response(),
    }
}

/// Whether the identity provider manages `username`'s access: the live configuration maps
/// groups to roles (`role_mapping`) and the user signs in through its issuer.
///
/// Fails with 503 when the store cannot be read.
pub(crate) async fn managed_by_provider(
    state: &AppState,
    username: &str,
) -> Result<bool, ApiError> {
    Ok(managed_users(state).await?.iter().any(|u| u == username))
}

/// The users whose access the identity provider manages (none without `role_mapping`).
///
/// Fails with 503 when the store cannot be read.
async fn managed_users(state: &AppState) -> Result<std::collections::BTreeSet<String>, ApiError> {
    let live = state.reloader.live();
    let Some(config) = live
        .oidc
        .as_ref()
        .filter(|c| c.enabled && c.access.manages_access())
    else {
        return Ok(Default::default());
    };
    state
        .store
        .users_with_identity_at(&config.issuer)
        .await
        .map_err(super::auth::store_unavailable)
}

/// Flushes a successful change before it is acknowledged; maps failures to answers.
async fn saved<T>(state: &AppState, result: Result<T, AccountError>) -> Result<T, ApiError> {
    let changed = result.map_err(account_error)?;
    state.store.flush().await.map_err(store_unavailable)?;
    Ok(changed)
}

/// The answer for an account rule that refused a change.
pub(crate) fn account_error(e: AccountError) -> ApiError {
    let (status, code) = match &e {
        AccountError::NoSuchUser(_) => (StatusCode::NOT_FOUND, ErrorCode::NotFound),
        AccountError::UsernameTaken(_) | AccountError::EmailTaken(_) => {
            (StatusCode::CONFLICT, ErrorCode::Conflict)
        }
        AccountError::LastAdmin(_) => (StatusCode::CONFLICT, ErrorCode::LastAdmin),
        AccountError::Store(_) => {
            tracing::error!(error = %e, "store failure");
            return ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::StoreUnavailable,
                "the server cannot use its store right now",
            );
        }
        AccountError::InvalidUsername(_)
        | AccountError::InvalidEmail(_)
        | AccountError::InvalidName
        | AccountError::InvalidScope { .. }
        | AccountError::Credential(_) => (StatusCode::BAD_REQUEST, ErrorCode::InvalidRequest),
    };
    ApiError::new(status, code, e.to_string())
}
