//! The four roles and their legacy aliases.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A role a user can be bound to. Environment roles bind to every environment
/// (`environment:*`); `server_admin` binds at server scope (`server`).
/// Ordered by what they allow: `viewer` < `developer` < `environment_admin` < `server_admin`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Viewer,
    Developer,
    EnvironmentAdmin,
    ServerAdmin,
}

/// Every spelling [`Role::from_str`] accepts, canonical names first, then the legacy aliases.
pub const ROLE_NAMES: [&str; 6] = [
    "viewer",
    "developer",
    "environment_admin",
    "server_admin",
    "manager",
    "admin",
];

impl Role {
    /// The canonical name, as stored and as answered by the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Developer => "developer",
            Role::EnvironmentAdmin => "environment_admin",
            Role::ServerAdmin => "server_admin",
        }
    }

    /// The scope an access binding of this role has: `server` for server_admin, every
    /// environment for the others.
    pub fn scope(self) -> &'static str {
        match self {
            Role::ServerAdmin => "server",
            _ => "environment:*",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error of parsing a role name that is neither canonical nor legacy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown role `{0}` (expected one of viewer, developer, environment_admin, server_admin; legacy: manager, admin)"
)]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;

    /// Parses a canonical name or a legacy alias: `manager` is `environment_admin`, `admin` is
    /// `server_admin`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "viewer" => Ok(Role::Viewer),
            "developer" => Ok(Role::Developer),
            "environment_admin" | "manager" => Ok(Role::EnvironmentAdmin),
            "server_admin" | "admin" => Ok(Role::ServerAdmin),
            other => Err(UnknownRole(other.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_names_map_to_current_roles() {
        assert_eq!("manager".parse(), Ok(Role::EnvironmentAdmin));
        assert_eq!("admin".parse(), Ok(Role::ServerAdmin));
    }

    #[test]
    fn every_listed_name_parses_and_canonical_names_round_trip() {
        for name in ROLE_NAMES {
            let role: Role = name.parse().unwrap();
            assert_eq!(role.as_str().parse::<Role>().unwrap(), role);
        }
        assert!("Admin".parse::<Role>().is_err());
        assert!("".parse::<Role>().is_err());
    }

    #[test]
    fn scopes_follow_the_role_kind() {
        assert_eq!(Role::ServerAdmin.scope(), "server");
        assert_eq!(Role::Viewer.scope(), "environment:*");
        assert_eq!(Role::EnvironmentAdmin.scope(), "environment:*");
    }
}
