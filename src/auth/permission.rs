//! The one permission check: what a signed-in user may do, derived only from their access
//! bindings. API keys and sessions carry exactly their user's permissions.

use super::Role;
use crate::store::UserRecord;

/// What a route needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// Any enabled, signed-in user: their own profile and API keys, device approval.
    SignedIn,
    /// Managing SSO settings, people and access, reading the audit trail.
    ServerAdmin,
}

/// Whether `user` holds `permission`. A disabled user holds none.
pub(crate) fn permits(user: &UserRecord, permission: Permission) -> bool {
    if user.disabled {
        return false;
    }
    match permission {
        Permission::SignedIn => true,
        Permission::ServerAdmin => user
            .access
            .iter()
            .any(|b| b.role == Role::ServerAdmin && b.scope == Role::ServerAdmin.scope()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{AccessBinding, UserSource};

    fn user(access: Vec<AccessBinding>, disabled: bool) -> UserRecord {
        UserRecord {
            username: "u".into(),
            email: "u@example.com".into(),
            name: "U".into(),
            source: UserSource::Local,
            disabled,
            created_at: String::new(),
            access,
            password_hash: None,
        }
    }

    #[test]
    fn only_a_server_scoped_server_admin_binding_grants_admin() {
        let admin = user(vec![AccessBinding::for_role(Role::ServerAdmin)], false);
        assert!(permits(&admin, Permission::ServerAdmin));
        for role in [Role::Viewer, Role::Developer, Role::EnvironmentAdmin] {
            let u = user(vec![AccessBinding::for_role(role)], false);
            assert!(permits(&u, Permission::SignedIn));
            assert!(!permits(&u, Permission::ServerAdmin), "{role}");
        }
        let misbound = user(
            vec![AccessBinding {
                role: Role::ServerAdmin,
                scope: "environment:*".into(),
            }],
            false,
        );
        assert!(!permits(&misbound, Permission::ServerAdmin));
        let disabled = user(vec![AccessBinding::for_role(Role::ServerAdmin)], true);
        assert!(!permits(&disabled, Permission::SignedIn));
        assert!(!permits(&disabled, Permission::ServerAdmin));
    }
}
