//! Users and their access bindings, with a unique index on the lower-cased email.

use sled::Transactional;
use sled::transaction::ConflictableTransactionError;

use super::{SledStore, StoreError, UserRecord, decode, encode, unwrap_tx};

pub(super) fn email_key(email: &str) -> Vec<u8> {
    email.trim().to_lowercase().into_bytes()
}

fn abort(e: StoreError) -> ConflictableTransactionError<StoreError> {
    ConflictableTransactionError::Abort(e)
}

impl SledStore {
    /// Creates a user. Fails with [`StoreError::Conflict`] when the username or the email
    /// (case-insensitively) is taken.
    pub(crate) fn create_user(&self, user: &UserRecord) -> Result<(), StoreError> {
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
    pub(crate) fn user(&self, username: &str) -> Result<Option<UserRecord>, StoreError> {
        self.users
            .get(username.as_bytes())?
            .map(|bytes| decode(&bytes))
            .transpose()
    }

    /// The user whose email is `email`, compared case-insensitively.
    pub(crate) fn user_by_email(&self, email: &str) -> Result<Option<UserRecord>, StoreError> {
        match self.users_by_email.get(email_key(email))? {
            Some(username) => self.user(&String::from_utf8_lossy(&username)),
            None => Ok(None),
        }
    }

    /// Every user, ordered by username.
    pub(crate) fn users(&self) -> Result<Vec<UserRecord>, StoreError> {
        self.users
            .iter()
            .values()
            .map(|bytes| decode(&bytes?))
            .collect()
    }

    /// How many users exist.
    pub(crate) fn user_count(&self) -> usize {
        self.users.len()
    }

    /// Changes a user with `change` and stores it, keeping the email index consistent. Returns
    /// the changed user, `None` when there is no such user.
    ///
    /// The store keeps one rule itself: a change that would leave no enabled server_admin fails
    /// with [`StoreError::LastAdmin`]. The check and the write happen under the write gate that
    /// every write takes, so two concurrent demotions of the last two admins cannot both pass.
    ///
    /// Fails with [`StoreError::Conflict`] when the new email is taken.
    pub(crate) fn update_user(
        &self,
        username: &str,
        change: impl Fn(&mut UserRecord),
    ) -> Result<Option<UserRecord>, StoreError> {
        let _write = self.write_gate();
        if let Some(old) = self.user(username)? {
            let mut new = old.clone();
            change(&mut new);
            if old.is_enabled_server_admin()
                && !new.is_enabled_server_admin()
                && !self.another_enabled_admin(username)?
            {
                return Err(StoreError::LastAdmin(username.to_owned()));
            }
        }
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

impl SledStore {
    /// Whether a user other than `username` is an enabled server_admin. Call under the write
    /// gate for an answer that stays true until the gate is released.
    fn another_enabled_admin(&self, username: &str) -> Result<bool, StoreError> {
        for bytes in self.users.iter().values() {
            let user: UserRecord = decode(&bytes?)?;
            if user.username != username && user.is_enabled_server_admin() {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::store::sled_store::test_store;
    use crate::vocab::{AccessBinding, Role, UserSource};

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
    fn concurrent_demotions_never_leave_no_admin() {
        let admin = |name: &str| UserRecord {
            access: vec![AccessBinding::for_role(Role::ServerAdmin)],
            ..user(name, &format!("{name}@example.com"))
        };
        for _ in 0..20 {
            let (_dir, store) = test_store();
            store.create_user(&admin("a")).unwrap();
            store.create_user(&admin("b")).unwrap();
            let barrier = std::sync::Arc::new(std::sync::Barrier::new(2));
            let threads: Vec<_> = ["a", "b"]
                .into_iter()
                .map(|name| {
                    let (store, barrier) = (store.clone(), barrier.clone());
                    std::thread::spawn(move || {
                        barrier.wait();
                        store.update_user(name, |u| u.disabled = true)
                    })
                })
                .collect();
            let results: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
            let refused = results
                .iter()
                .filter(|r| matches!(r, Err(StoreError::LastAdmin(_))))
                .count();
            assert_eq!(
                refused, 1,
                "exactly one of two concurrent disables is refused"
            );
            let admins = store
                .users()
                .unwrap()
                .iter()
                .filter(|u| u.is_enabled_server_admin())
                .count();
            assert_eq!(admins, 1);
        }
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
