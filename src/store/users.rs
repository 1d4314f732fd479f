//! Users and their access bindings, with a unique index on the lower-cased email.

use serde::{Deserialize, Serialize};
use sled::Transactional;
use sled::transaction::ConflictableTransactionError;

use super::{Store, StoreError, decode, encode, unwrap_tx};
use crate::auth::Role;

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

/// A user as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRecord {
    pub username: String,
    pub email: String,
    pub name: String,
    pub source: UserSource,
    pub disabled: bool,
    /// RFC 3339.
    pub created_at: String,
    pub access: Vec<AccessBinding>,
    /// Argon2id PHC string; `None` for SSO-only users.
    pub password_hash: Option<String>,
}

pub(super) fn email_key(email: &str) -> Vec<u8> {
    email.trim().to_lowercase().into_bytes()
}

fn abort(e: StoreError) -> ConflictableTransactionError<StoreError> {
    ConflictableTransactionError::Abort(e)
}

impl Store {
    /// Creates a user. Fails with [`StoreError::Conflict`] when the username or the email
    /// (case-insensitively) is taken.
    pub fn create_user(&self, user: &UserRecord) -> Result<(), StoreError> {
        let _write = self.write_gate();
        let bytes = encode(user)?;
        (&self.users, &self.users_by_email)
            .transaction(|(users, emails)| {
                if users.get(user.username.as_bytes())?.is_some() {
                    return Err(abort(StoreError::Conflict("username")));
                }
                if emails.get(email_key(&user.email))?.is_some() {
                    return Err(abort(StoreError::Conflict("email")));
                }
                users.insert(user.username.as_bytes(), bytes.as_slice())?;
                emails.insert(email_key(&user.email), user.username.as_bytes())?;
                Ok(())
            })
            .map_err(unwrap_tx)
    }

    /// The user named `username`.
    pub fn user(&self, username: &str) -> Result<Option<UserRecord>, StoreError> {
        self.users
            .get(username.as_bytes())?
            .map(|bytes| decode(&bytes))
            .transpose()
    }

    /// The user whose email is `email`, compared case-insensitively.
    pub fn user_by_email(&self, email: &str) -> Result<Option<UserRecord>, StoreError> {
        match self.users_by_email.get(email_key(email))? {
            Some(username) => self.user(&String::from_utf8_lossy(&username)),
            None => Ok(None),
        }
    }

    /// Every user, ordered by username.
    pub fn users(&self) -> Result<Vec<UserRecord>, StoreError> {
        self.users
            .iter()
            .values()
            .map(|bytes| decode(&bytes?))
            .collect()
    }

    /// How many users exist.
    pub fn user_count(&self) -> usize {
        self.users.len()
    }

    /// Changes a user with `change` and stores it, keeping the email index consistent. Returns
    /// the changed user, `None` when there is no such user. Fails with
    /// [`StoreError::Conflict`] when the new email is taken.
    pub fn update_user(
        &self,
        username: &str,
        change: impl Fn(&mut UserRecord),
    ) -> Result<Option<UserRecord>, StoreError> {
        let _write = self.write_gate();
        self.bump_auth_epoch();
        let result = (&self.users, &self.users_by_email)
            .transaction(|(users, emails)| {
                let Some(bytes) = users.get(username.as_bytes())? else {
                    return Ok(None);
                };
                let old: UserRecord = decode(&bytes).map_err(abort)?;
                let mut new = old.clone();
                change(&mut new);
                new.username = old.username.clone();
                if email_key(&new.email) != email_key(&old.email) {
                    if emails.get(email_key(&new.email))?.is_some() {
                        return Err(abort(StoreError::Conflict("email")));
                    }
                    emails.remove(email_key(&old.email))?;
                    emails.insert(email_key(&new.email), new.username.as_bytes())?;
                }
                users.insert(username.as_bytes(), encode(&new).map_err(abort)?)?;
                Ok(Some(new))
            })
            .map_err(unwrap_tx);
        // Again after the write: a lookup between the two bumps cached the old record.
        self.bump_auth_epoch();
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_store;

    pub(crate) fn user(username: &str, email: &str) -> UserRecord {
        UserRecord {
            username: username.into(),
            email: email.into(),
            name: username.into(),
            source: UserSource::Local,
            disabled: false,
            created_at: "2026-11-29T00:00:00Z".into(),
            access: vec![AccessBinding::for_role(Role::Developer)],
            password_hash: None,
        }
    }

    #[test]
    fn usernames_and_emails_are_unique_case_insensitively() {
        let (_dir, store) = test_store();
        store
            .create_user(&user("john", "John.Doe@Example.com"))
            .unwrap();
        assert!(matches!(
            store.create_user(&user("john", "other@example.com")),
            Err(StoreError::Conflict("username"))
        ));
        assert!(matches!(
            store.create_user(&user("johnny", "john.doe@example.COM")),
            Err(StoreError::Conflict("email"))
        ));
        assert_eq!(store.user_count(), 1);
        let found = store
            .user_by_email("JOHN.DOE@example.com")
            .unwrap()
            .unwrap();
        assert_eq!(found.username, "john");
    }

    #[test]
    fn changing_the_email_moves_the_index_entry() {
        let (_dir, store) = test_store();
        store.create_user(&user("a", "a@example.com")).unwrap();
        store.create_user(&user("b", "b@example.com")).unwrap();
        let changed = store
            .update_user("a", |u| u.email = "new@example.com".into())
            .unwrap()
            .unwrap();
        assert_eq!(changed.email, "new@example.com");
        assert!(store.user_by_email("a@example.com").unwrap().is_none());
        assert_eq!(
            store
                .user_by_email("NEW@example.com")
                .unwrap()
                .unwrap()
                .username,
            "a"
        );
        assert!(matches!(
            store.update_user("a", |u| u.email = "B@example.com".into()),
            Err(StoreError::Conflict("email"))
        ));
        assert_eq!(store.user("a").unwrap().unwrap().email, "new@example.com");
        assert!(store.update_user("nobody", |_| {}).unwrap().is_none());
    }

    #[test]
    fn update_cannot_rename_a_user() {
        let (_dir, store) = test_store();
        store.create_user(&user("a", "a@example.com")).unwrap();
        store
            .update_user("a", |u| u.username = "root".into())
            .unwrap();
        assert!(store.user("root").unwrap().is_none());
        assert_eq!(store.users().unwrap().len(), 1);
    }
}
