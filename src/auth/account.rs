//! Creating accounts: the rules for usernames, emails and names, the first admin, and the one
//! `create_user` that the CLI, the admin socket and the API share.
//!
//! Argon2 runs through [`crate::blocking::run_blocking`], off the async runtime's threads.
//! Callers flush the store before they acknowledge.

use super::Role;
use super::credential::{CredentialError, Password, generate_password, hash_password};
use crate::store::{AccessBinding, Store, StoreError, UserRecord, UserSource};

/// Username of the account made at first start.
pub(crate) const INITIAL_ADMIN: &str = "admin";

/// A user to create.
#[derive(Debug, Clone)]
pub(crate) struct NewUser {
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

pub(crate) use crate::vocab::{UserView, UserViewRef};

/// Checks a username: 1 to 64 of `[a-z0-9._-]`, starting with a letter or digit.
pub(crate) fn validate_username(username: &str) -> Result<(), AccountError> {
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
pub(crate) fn validate_email(email: &str) -> Result<(), AccountError> {
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
pub(crate) async fn create_user(store: &Store, new: NewUser) -> Result<UserRecord, AccountError> {
    validate_username(&new.username)?;
    validate_email(&new.email)?;
    let name = new.name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(AccountError::InvalidName);
    }
    let password_hash = hash_off_runtime(new.password.as_ref()).await?;
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
    store.create_user(&user).await.map_err(|e| match e {
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
pub(crate) async fn ensure_initial_admin(store: &Store) -> Result<Option<Password>, AccountError> {
    if store.user_count().await.map_err(AccountError::Store)? > 0 {
        return Ok(None);
    }
    let password = generate_password();
    let created = create_user(
        store,
        NewUser {
            username: INITIAL_ADMIN.into(),
            // Not a shared constant: an SSO account at any provider that asserts a known
            // admin email would otherwise be one step from linking to this account.
            email: format!(
                "admin-{}@localhost.invalid",
                crate::auth::credential::random_token(6)
                    .to_lowercase()
                    .replace(['-', '_'], "x")
            ),
            name: "Administrator".into(),
            role: Role::ServerAdmin,
            password: Some(password.clone()),
            source: UserSource::Local,
        },
    )
    .await;
    match created {
        Ok(_) => Ok(Some(password)),
        // Another replica starting on the same empty database made it first.
        Err(AccountError::UsernameTaken(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// A change to a user (`PATCH /api/users/{username}`); `None` leaves a field alone.
#[derive(Debug, Default, Clone)]
pub(crate) struct UserChange {
    pub name: Option<String>,
    pub email: Option<String>,
    pub disabled: Option<bool>,
    pub password: Option<Password>,
    /// With a new password: keep the user's API keys (`reset-password --keep-keys`).
    pub keep_keys: bool,
}

/// What a change ended: when access ends, credentials end (contract section 9).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CredentialsEnded {
    pub sessions: usize,
    pub keys: usize,
}

impl CredentialsEnded {
    /// For the audit trail: `"2 sessions and 1 API key ended"`, `None` when nothing ended.
    pub(crate) fn describe(&self) -> Option<String> {
        let plural = |n: usize, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
        (self.sessions + self.keys > 0).then(|| {
            format!(
                "{} and {} ended",
                plural(self.sessions, "session"),
                plural(self.keys, "API key")
            )
        })
    }
}

/// Applies `change` to `username`. Blocking (a new password is hashed).
///
/// Disabling a user ends their browser sessions and revokes their API keys for good (enabling
/// them again revives nothing); a new password does the same unless `keep_keys` keeps the keys.
///
/// Fails on invalid values, a taken email, an unknown user, or disabling the last enabled
/// server_admin (checked atomically with the write).
pub(crate) async fn change_user(
    store: &Store,
    username: &str,
    change: UserChange,
) -> Result<(UserRecord, CredentialsEnded), AccountError> {
    if let Some(email) = &change.email {
        validate_email(email)?;
    }
    let name = change.name.as_deref().map(str::trim).map(str::to_owned);
    if let Some(name) = &name {
        if name.is_empty() || name.chars().count() > 200 {
            return Err(AccountError::InvalidName);
        }
    }
    let password_hash = hash_off_runtime(change.password.as_ref()).await?;
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
        .await
        .map_err(|e| store_error(e, change.email.as_deref().unwrap_or_default()))?
        .ok_or_else(|| AccountError::NoSuchUser(username.to_owned()))?;
    let disabled = change.disabled == Some(true);
    let mut ended = CredentialsEnded::default();
    if disabled || password_hash.is_some() {
        ended.sessions = store
            .delete_sessions_of(username)
            .await
            .map_err(AccountError::Store)?;
    }
    if disabled || (password_hash.is_some() && !change.keep_keys) {
        ended.keys = store
            .delete_api_keys_of(username)
            .await
            .map_err(AccountError::Store)?;
    }
    Ok((updated, ended))
}

/// Sets a new password (`coder-server reset-password`): ends the user's sessions and, unless
/// `keep_keys`, revokes their API keys. Blocking.
///
/// Fails for an unknown user or a too short password.
pub(crate) async fn reset_password(
    store: &Store,
    username: &str,
    password: &Password,
    keep_keys: bool,
) -> Result<(UserRecord, CredentialsEnded), AccountError> {
    change_user(
        store,
        username,
        UserChange {
            password: Some(password.clone()),
            keep_keys,
            ..UserChange::default()
        },
    )
    .await
}

/// Replaces a user's access bindings. Each binding's scope must be its role's scope
/// (`server` for server_admin, `environment:*` for the others); duplicates are dropped.
///
/// Fails for an unknown user, a misfit scope, or removing server_admin from the last enabled
/// server_admin.
pub(crate) async fn set_access(
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
    store
        .update_user(username, |u| u.access.clone_from(&bindings))
        .await
        .map_err(|e| store_error(e, ""))?
        .ok_or_else(|| AccountError::NoSuchUser(username.to_owned()))
}

/// Binds a user to exactly `role` at its scope (`coder-server set-role`).
///
/// Fails as [`set_access`] does.
pub(crate) async fn set_role(
    store: &Store,
    username: &str,
    role: Role,
) -> Result<UserRecord, AccountError> {
    set_access(store, username, vec![AccessBinding::for_role(role)]).await
}

/// The Argon2id hash of `password`, computed on a blocking thread.
async fn hash_off_runtime(password: Option<&Password>) -> Result<Option<String>, CredentialError> {
    let Some(password) = password.cloned() else {
        return Ok(None);
    };
    crate::blocking::run_blocking(move || hash_password(&password).map(Some)).await
}

fn store_error(e: StoreError, email: &str) -> AccountError {
    match e {
        StoreError::Conflict(_) => AccountError::EmailTaken(email.to_owned()),
        StoreError::LastAdmin(username) => AccountError::LastAdmin(username),
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

    #[tokio::test]
    async fn creates_an_sso_only_user_bound_at_the_roles_scope() {
        let (_dir, store) = test_store();
        let user = create_user(&store, john()).await.unwrap();
        assert_eq!(user.password_hash, None);
        assert_eq!(user.access, [AccessBinding::for_role(Role::Developer)]);
        assert_eq!(user.access[0].scope, "environment:*");
        assert_eq!(store.user("johndoe").await.unwrap().unwrap(), user);
    }

    #[tokio::test]
    async fn duplicates_are_refused_with_clear_messages() {
        let (_dir, store) = test_store();
        create_user(&store, john()).await.unwrap();
        let e = create_user(&store, john()).await.unwrap_err();
        assert_eq!(e.to_string(), "a user named `johndoe` already exists");
        let e = create_user(
            &store,
            NewUser {
                username: "jd".into(),
                email: "JOHN.DOE@company.com".into(),
                ..john()
            },
        )
        .await
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "a user with email `JOHN.DOE@company.com` already exists"
        );
    }

    #[tokio::test]
    async fn bad_usernames_emails_and_names_are_refused() {
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
        .await
        .unwrap_err();
        assert!(matches!(e, AccountError::InvalidName));
    }

    #[tokio::test]
    async fn first_start_creates_one_admin_with_a_working_random_password() {
        let (_dir, store) = test_store();
        let password = ensure_initial_admin(&store)
            .await
            .unwrap()
            .expect("created");
        let admin = store.user(INITIAL_ADMIN).await.unwrap().unwrap();
        assert_eq!(admin.access, [AccessBinding::for_role(Role::ServerAdmin)]);
        assert_eq!(admin.access[0].scope, "server");
        assert!(verify_password(
            &password,
            admin.password_hash.as_deref().unwrap()
        ));
        assert!(ensure_initial_admin(&store).await.unwrap().is_none());
        assert_eq!(store.user_count().await.unwrap(), 1);
    }

    #[tokio::test]
    async fn the_last_enabled_admin_cannot_be_demoted_or_disabled() {
        let (_dir, store) = test_store();
        ensure_initial_admin(&store).await.unwrap();
        let e = set_role(&store, INITIAL_ADMIN, Role::Developer)
            .await
            .unwrap_err();
        assert!(matches!(e, AccountError::LastAdmin(_)), "{e}");
        let e = change_user(
            &store,
            INITIAL_ADMIN,
            UserChange {
                disabled: Some(true),
                ..UserChange::default()
            },
        )
        .await
        .unwrap_err();
        assert!(matches!(e, AccountError::LastAdmin(_)), "{e}");
        create_user(
            &store,
            NewUser {
                role: Role::ServerAdmin,
                ..john()
            },
        )
        .await
        .unwrap();
        let demoted = set_role(&store, INITIAL_ADMIN, Role::Viewer).await.unwrap();
        assert_eq!(demoted.access, [AccessBinding::for_role(Role::Viewer)]);
        let e = set_access(&store, "johndoe", vec![]).await.unwrap_err();
        assert!(matches!(e, AccountError::LastAdmin(_)), "{e}");
    }

    #[tokio::test]
    async fn access_scopes_must_fit_their_roles_and_duplicates_collapse() {
        let (_dir, store) = test_store();
        create_user(&store, john()).await.unwrap();
        let e = set_access(
            &store,
            "johndoe",
            vec![AccessBinding {
                role: Role::ServerAdmin,
                scope: "environment:*".into(),
            }],
        )
        .await
        .unwrap_err();
        assert!(matches!(e, AccountError::InvalidScope { .. }), "{e}");
        let viewer = AccessBinding::for_role(Role::Viewer);
        let user = set_access(&store, "johndoe", vec![viewer.clone(), viewer.clone()])
            .await
            .unwrap();
        assert_eq!(user.access, [viewer]);
        assert!(matches!(
            set_role(&store, "nobody", Role::Viewer).await,
            Err(AccountError::NoSuchUser(_))
        ));
    }

    #[tokio::test]
    async fn a_password_reset_ends_sessions_and_keys_and_the_new_password_works() {
        let (_dir, store) = test_store();
        create_user(&store, john()).await.unwrap();
        let session = crate::store::SessionRecord {
            username: "johndoe".into(),
            created_unix: 0,
            expires_unix: u64::MAX,
            csrf_token: "t".into(),
            sso: None,
        };
        store.create_session(b"s", &session).await.unwrap();
        store.create_api_key(b"k", &key("johndoe")).await.unwrap();
        let password = Password::new("correct horse battery");
        let (user, ended) = reset_password(&store, "johndoe", &password, false)
            .await
            .unwrap();
        assert!(verify_password(
            &password,
            user.password_hash.as_deref().unwrap()
        ));
        assert_eq!(
            ended,
            CredentialsEnded {
                sessions: 1,
                keys: 1
            }
        );
        assert!(store.session(b"s", 1).await.unwrap().is_none());
        assert!(store.api_key_by_hash(b"k").await.unwrap().is_none());
        store.create_api_key(b"k2", &key("johndoe")).await.unwrap();
        let (_, ended) = reset_password(&store, "johndoe", &password, true)
            .await
            .unwrap();
        assert_eq!(ended.keys, 0, "--keep-keys keeps them");
        assert!(store.api_key_by_hash(b"k2").await.unwrap().is_some());
        let e = reset_password(&store, "johndoe", &Password::new("short"), false)
            .await
            .unwrap_err();
        assert!(matches!(e, AccountError::Credential(_)));
    }

    #[tokio::test]
    async fn disabled_users_lose_their_keys_for_good() {
        let (_dir, store) = test_store();
        create_user(&store, john()).await.unwrap();
        store.create_api_key(b"k", &key("johndoe")).await.unwrap();
        let disable = |disabled| UserChange {
            disabled: Some(disabled),
            ..UserChange::default()
        };
        let (_, ended) = change_user(&store, "johndoe", disable(true)).await.unwrap();
        assert_eq!(ended.keys, 1);
        change_user(&store, "johndoe", disable(false))
            .await
            .unwrap();
        assert!(
            store.api_key_by_hash(b"k").await.unwrap().is_none(),
            "re-enabling revives nothing"
        );
    }

    fn key(username: &str) -> crate::store::ApiKeyRecord {
        crate::store::ApiKeyRecord {
            id: random_id(),
            username: username.into(),
            name: "k".into(),
            prefix: "cf_x".into(),
            created_at: "2026-12-01T00:00:00Z".into(),
            last_used_unix: None,
            expires_unix: None,
            from_device: false,
        }
    }

    fn random_id() -> String {
        crate::auth::credential::random_token(6)
    }
}
