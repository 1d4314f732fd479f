//! Users as the API, the admin socket and the `coder` client show them: never a password hash.

use serde::{Deserialize, Serialize};

use super::role::Role;

/// Where an account came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UserSource {
    Local,
    Sso,
}

/// A role bound at a scope: `server` for server_admin, `environment:*` for the others.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AccessBinding {
    pub role: Role,
    pub scope: String,
}

impl AccessBinding {
    /// The binding a role gets by default: at its natural scope.
    pub fn for_role(role: Role) -> AccessBinding {
        AccessBinding {
            role,
            scope: role.scope().to_owned(),
        }
    }
}

/// A user as the API and the CLI show it: never the password hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct UserView {
    pub username: String,
    pub email: String,
    pub name: String,
    pub source: UserSource,
    pub disabled: bool,
    pub created_at: String,
    pub access: Vec<AccessBinding>,
}

/// [`UserView`]'s JSON written straight from a record, without copying it (the hot path of
/// `GET /api/me`).
#[derive(Serialize)]
pub struct UserViewRef<'a> {
    pub username: &'a str,
    pub email: &'a str,
    pub name: &'a str,
    pub source: UserSource,
    pub disabled: bool,
    pub created_at: &'a str,
    pub access: &'a [AccessBinding],
}
