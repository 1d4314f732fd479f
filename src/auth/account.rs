//! Creating accounts: the rules for usernames, emails and names, the first admin, and the one
//! `create_user` that the CLI, the admin socket and the API share.
//!
//! Blocking (Argon2 and store writes): call through [`crate::blocking::run_blocking`] on the
//! runtime. Callers flush the store before they acknowledge.

use serde::Serialize;

use super::Role;
use super::credential::{CredentialError, Password, generate_password, hash_password};
use super::permission::{Permission, permits};
use crate::store::{AccessBinding, Store, StoreError, UserRecord, UserSource};

/// Username of the account made at first start.
pub const INITIAL_ADMIN: &str = "admin";

/// A user to create.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub username: String,
    pub email: String,
    pub name: String,
    pub role: Role,
    /// `None`: an SSO-only account.
    pub password: Option<Password>,
    pub source: UserSource,
}

/// Why an account could not be created or changed.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error(
        "invalid username `{0}`: use 1 to 64 lower-case letters, digits, `.`, `_` or `-`, starting with a letter or digit"
    )]
    InvalidUsername(String),
    #[error("invalid email `{0}`")]
    InvalidEmail(String),
    #[error("the name must be 1 to 200 characters")]
    InvalidName,
    #[error("a user named `{0}` already exists")]
    UsernameTaken(String),
    #[error("a user with email `{0}` already exists")]
    EmailTaken(String),
    #[error("no user named `{0}`")]
    NoSuchUser(String),
    #[error(
        "`{0}` is the last enabled server_admin: give another user server_admin first, or nobody could manage this server"
    )]
    LastAdmin(String),
    #[error("scope `{scope}` does not fit role {role}: {role} binds at `{}`", role.scope())]
    InvalidScope { role: Role, scope: String },
    #[error(transparent)]
    Credential(#[from] CredentialError),
    #[error(transparent)]
    Store(StoreError),
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

impl<'a> From<&'a UserRecord> for UserViewRef<'a> {
    fn from(u: &'a UserRecord) -> Self {
        UserViewRef {
            username: &u.username,
            email: &u.email,
            name: &u.name,
            source: u.source,
            disabled: u.disabled,
            created_at: &u.created_at,
            access: &u.access,
        }
    }
}

impl From<&UserRecord> for UserView {
    fn from(u: &UserRecord) -> Self {
        UserView {
            username: u.username.clone(),
            email: u.email.clone(),
            name: u.name.clone(),
            source: u.source,
            disabled: u.disabled,
            created_at: u.created_at.clone(),
            access: u.access.clone(),
        }
    }
}

/// Checks a username: 1 to 64 of `[a-z0-9._-]`, starting with a letter or digit.
pub fn validate_username(username: &str) -> Result<(), AccountError> {
    let ok = (1..=64).contains(&username.len())
        && username.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && username
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(AccountError::InvalidUsername(username.to_owned()))
    }
}

/// A plausible email: one `@` with something on both sides, a dot in the domain, no spaces.
pub fn validate_email(email: &str) -> Result<(), AccountError> {
    let ok = email.len() <= 254
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && !domain.is_empty() && !domain.contains('@') && domain.contains('.')
        });
    if ok {
        Ok(())
    } else {
        Err(AccountError::InvalidEmail(email.to_owned()))
    }
}

/// Creates a user bound to `role` at its natural scope. Blocking.
///
/// Fails on an invalid username, email, name or password, or a taken username or email.
pub fn create_user(store: &Store, new: NewUser) -> Result<UserRecord, AccountError> {
    validate_username(&new.username)?;
    validate_email(&new.email)?;
    let name = new.name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(AccountError::InvalidName);
    }
    let password_hash = new.password.as_ref().map(hash_password).transpose()?;
    let user = UserRecord {
        username: new.username.clone(),
        email: new.email.trim().to_owned(),
        name: name.to_owned(),
        source: new.source,
        disabled: false,
        created_at: crate::clock::now_rfc3339(),
        access: vec![AccessBinding::for_role(new.role)],
        password_hash,
    };
    store.create_user(&user).map_err(|e| match e {
        StoreError::Conflict("username") => AccountError::UsernameTaken(new.username.clone()),
        StoreError::Conflict(_) => AccountError::EmailTaken(new.email.clone()),
        other => AccountError::Store(other),
    })?;
    Ok(user)
}

/// On a store without users, creates `admin` (server_admin) with a random password and returns
/// the password, to be shown once. Blocking.
///
/// Fails when the store cannot be written.
pub fn ensure_initial_admin(store: &Store) -> Result<Option<Password>, AccountError> {
    if store.user_count() > 0 {
        return Ok(None);
    }
    let password = generate_password();
    create_user(
        store,
        NewUser {
            username: INITIAL_ADMIN.into(),
            email: "admin@localhost.localdomain".into(),
            name: "Administrator".into(),
            role: Role::ServerAdmin,
            password: Some(password.clone()),
            source: UserSource::Local,
        },
    )?;
    Ok(Some(password))
}

/// A change to a user (`PATCH /api/users/{username}`); `None` leaves a field alone.
#[derive(Debug, Default, Clone)]
pub struct UserChange {
    pub name: Option<String>,
    pub email: Option<String>,
    pub disabled: Option<bool>,
    pub password: Option<Password>,
}

/// Applies `change` to `username`. Blocking (a new password is hashed).
///
/// Fails on invalid values, a taken email, an unknown user, or disabling the last enabled
/// server_admin. Disabling a user or changing their password ends their browser sessions.
pub fn change_user(
    store: &Store,
    username: &str,
    change: UserChange,
) -> Result<UserRecord, AccountError> {
    if let Some(email) = &change.email {
        validate_email(email)?;
    }
    let name = change.name.as_deref().map(str::trim).map(str::to_owned);
    if let Some(name) = &name {
        if name.is_empty() || name.chars().count() > 200 {
            return Err(AccountError::InvalidName);
        }
    }
    let password_hash = change.password.as_ref().map(hash_password).transpose()?;
    let current = existing(store, username)?;
    if change.disabled == Some(true) && !current.disabled {
        guard_last_admin(store, &current)?;
    }
    let updated = store
        .update_user(username, |u| {
            if let Some(name) = &name {
                u.name.clone_from(name);
            }
            if let Some(email) = &change.email {
                u.email = email.trim().to_owned();
            }
            if let Some(disabled) = change.disabled {
                u.disabled = disabled;
            }
            if let Some(hash) = &password_hash {
                u.password_hash = Some(hash.clone());
            }
        })
        .map_err(|e| store_error(e, change.email.as_deref().unwrap_or_default()))?
        .ok_or_else(|| AccountError::NoSuchUser(username.to_owned()))?;
    if change.disabled == Some(true) || password_hash.is_some() {
        store
            .delete_sessions_of(username)
            .map_err(AccountError::Store)?;
    }
    Ok(updated)
}

/// Sets a new password (`coder-server reset-password`). Blocking.
///
/// Fails for an unknown user or a too short password.
pub fn reset_password(
    store: &Store,
    username: &str,
    password: &Password,
) -> Result<UserRecord, AccountError> {
    change_user(
        store,
        username,
        UserChange {
            password: Some(password.clone()),
            ..UserChange::default()
        },
    )
}

/// Replaces a user's access bindings. Each binding's scope must be its role's scope
/// (`server` for server_admin, `environment:*` for the others); duplicates are dropped.
///
/// Fails for an unknown user, a misfit scope, or removing server_admin from the last enabled
/// server_admin.
pub fn set_access(
    store: &Store,
    username: &str,
    access: Vec<AccessBinding>,
) -> Result<UserRecord, AccountError> {
    let mut bindings: Vec<AccessBinding> = Vec::new();
    for binding in access {
        if binding.scope != binding.role.scope() {
            return Err(AccountError::InvalidScope {
                role: binding.role,
                scope: binding.scope,
            });
        }
        if !bindings.contains(&binding) {
            bindings.push(binding);
        }
    }
    let current = existing(store, username)?;
    let keeps_admin = bindings.iter().any(|b| b.role == Role::ServerAdmin);
    if !keeps_admin {
        guard_last_admin(store, &current)?;
    }
    store
        .update_user(username, |u| u.access.clone_from(&bindings))
        .map_err(AccountError::Store)?
        .ok_or_else(|| AccountError::NoSuchUser(username.to_owned()))
}

/// Binds a user to exactly `role` at its scope (`coder-server set-role`).
///
/// Fails as [`set_access`] does.
pub fn set_role(store: &Store, username: &str, role: Role) -> Result<UserRecord, AccountError> {
    set_access(store, username, vec![AccessBinding::for_role(role)])
}

fn existing(store: &Store, username: &str) -> Result<UserRecord, AccountError> {
    store
        .user(username)
        .map_err(AccountError::Store)?
        .ok_or_else(|| AccountError::NoSuchUser(username.to_owned()))
}

/// Refuses a change that would leave no enabled server_admin, when `user` is one now.
fn guard_last_admin(store: &Store, user: &UserRecord) -> Result<(), AccountError> {
    let is_admin = |u: &UserRecord| permits(u, Permission::ServerAdmin);
    if !is_admin(user) {
        return Ok(());
    }
    let others = store
        .users()
        .map_err(AccountError::Store)?
        .iter()
        .filter(|u| u.username != user.username && is_admin(u))
        .count();
    if others == 0 {
        return Err(AccountError::LastAdmin(user.username.clone()));
    }
    Ok(())
}

fn store_error(e: StoreError, email: &str) -> AccountError {
    match e {
        StoreError::Conflict(_) => AccountError::EmailTaken(email.to_owned()),
        other => AccountError::Store(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::credential::verify_password;
    use crate::store::test_store;

    fn john() -> NewUser {
        NewUser {
            username: "johndoe".into(),
            email: "john.doe@company.com".into(),
            name: "John Doe".into(),
            role: Role::Developer,
            password: None,
            source: UserSource::Local,
        }
    }

    #[test]
    fn creates_an_sso_only_user_bound_at_the_roles_scope() {
        let (_dir, store) = test_store();
        let user = create_user(&store, john()).unwrap();
        assert_eq!(user.password_hash, None);
        assert_eq!(user.access, [AccessBinding::for_role(Role::Developer)]);
        assert_eq!(user.access[0].scope, "environment:*");
        assert_eq!(store.user("johndoe").unwrap().unwrap(), user);
    }

    #[test]
    fn duplicates_are_refused_with_clear_messages() {
        let (_dir, store) = test_store();
        create_user(&store, john()).unwrap();
        let e = create_user(&store, john()).unwrap_err();
        assert_eq!(e.to_string(), "a user named `johndoe` already exists");
        let e = create_user(
            &store,
            NewUser {
                username: "jd".into(),
                email: "JOHN.DOE@company.com".into(),
                ..john()
            },
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "a user with email `JOHN.DOE@company.com` already exists"
        );
    }

    #[test]
    fn bad_usernames_emails_and_names_are_refused() {
        for bad in ["", "John", "-x", "a b", "x/y", &"a".repeat(65)] {
            assert!(validate_username(bad).is_err(), "{bad:?}");
        }
        for good in ["johndoe", "j.doe", "j_doe-2", "0day"] {
            validate_username(good).unwrap();
        }
        for bad in [
            "",
            "john",
            "john@",
            "@x.com",
            "a b@x.com",
            "a@b@c.com",
            "a@localhost",
        ] {
            assert!(validate_email(bad).is_err(), "{bad:?}");
        }
        let (_dir, store) = test_store();
        let e = create_user(
            &store,
            NewUser {
                name: "  ".into(),
                ..john()
            },
        )
        .unwrap_err();
        assert!(matches!(e, AccountError::InvalidName));
    }

    #[test]
    fn first_start_creates_one_admin_with_a_working_random_password() {
        let (_dir, store) = test_store();
        let password = ensure_initial_admin(&store).unwrap().expect("created");
        let admin = store.user(INITIAL_ADMIN).unwrap().unwrap();
        assert_eq!(admin.access, [AccessBinding::for_role(Role::ServerAdmin)]);
        assert_eq!(admin.access[0].scope, "server");
        assert!(verify_password(
            &password,
            admin.password_hash.as_deref().unwrap()
        ));
        assert!(ensure_initial_admin(&store).unwrap().is_none());
        assert_eq!(store.user_count(), 1);
    }

    #[test]
    fn the_last_enabled_admin_cannot_be_demoted_or_disabled() {
        let (_dir, store) = test_store();
        ensure_initial_admin(&store).unwrap();
        let e = set_role(&store, INITIAL_ADMIN, Role::Developer).unwrap_err();
        assert!(matches!(e, AccountError::LastAdmin(_)), "{e}");
        let e = change_user(
            &store,
            INITIAL_ADMIN,
            UserChange {
                disabled: Some(true),
                ..UserChange::default()
            },
        )
        .unwrap_err();
        assert!(matches!(e, AccountError::LastAdmin(_)), "{e}");
        create_user(
            &store,
            NewUser {
                role: Role::ServerAdmin,
                ..john()
            },
        )
        .unwrap();
        let demoted = set_role(&store, INITIAL_ADMIN, Role::Viewer).unwrap();
        assert_eq!(demoted.access, [AccessBinding::for_role(Role::Viewer)]);
        let e = set_access(&store, "johndoe", vec![]).unwrap_err();
        assert!(matches!(e, AccountError::LastAdmin(_)), "{e}");
    }

    #[test]
    fn access_scopes_must_fit_their_roles_and_duplicates_collapse() {
        let (_dir, store) = test_store();
        create_user(&store, john()).unwrap();
        let e = set_access(
            &store,
            "johndoe",
            vec![AccessBinding {
                role: Role::ServerAdmin,
                scope: "environment:*".into(),
            }],
        )
        .unwrap_err();
        assert!(matches!(e, AccountError::InvalidScope { .. }), "{e}");
        let viewer = AccessBinding::for_role(Role::Viewer);
        let user = set_access(&store, "johndoe", vec![viewer.clone(), viewer.clone()]).unwrap();
        assert_eq!(user.access, [viewer]);
        assert!(matches!(
            set_role(&store, "nobody", Role::Viewer),
            Err(AccountError::NoSuchUser(_))
        ));
    }

    #[test]
    fn a_password_reset_ends_sessions_and_the_new_password_works() {
        let (_dir, store) = test_store();
        create_user(&store, john()).unwrap();
        let session = crate::store::SessionRecord {
            username: "johndoe".into(),
            created_unix: 0,
            expires_unix: u64::MAX,
            csrf_token: "t".into(),
        };
        store.create_session(b"s", &session).unwrap();
        let password = Password::new("correct horse battery");
        let user = reset_password(&store, "johndoe", &password).unwrap();
        assert!(verify_password(
            &password,
            user.password_hash.as_deref().unwrap()
        ));
        assert!(store.session(b"s", 1).unwrap().is_none());
        let e = reset_password(&store, "johndoe", &Password::new("short")).unwrap_err();
        assert!(matches!(e, AccountError::Credential(_)));
    }
}
