//! SSO identities: (issuer, `sub`) linked to a user, and the transactions that link or
//! provision one together with the user and the email index.

use sled::Transactional;
use sled::transaction::ConflictableTransactionError;

use super::users::email_key;
use super::{PendingLogin, SledStore, StoreError, UserRecord, decode, encode, unwrap_tx};

/// The identities tree's key: `issuer \0 sub`.
fn identity_key(issuer: &str, sub: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(issuer.len() + 1 + sub.len());
    key.extend_from_slice(issuer.as_bytes());
    key.push(0);
    key.extend_from_slice(sub.as_bytes());
    key
}

fn abort(e: StoreError) -> ConflictableTransactionError<StoreError> {
    ConflictableTransactionError::Abort(e)
}

impl SledStore {
    /// The username linked to (issuer, sub).
    pub(crate) fn identity(&self, issuer: &str, sub: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .identities
            .get(identity_key(issuer, sub))?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    /// Users with an SSO identity at `issuer`.
    pub(crate) fn users_with_identity_at(
        &self,
        issuer: &str,
    ) -> Result<std::collections::BTreeSet<String>, StoreError> {
        let mut prefix = issuer.as_bytes().to_vec();
        prefix.push(0);
        let mut users = std::collections::BTreeSet::new();
        for entry in self.identities.scan_prefix(prefix) {
            let (_, username) = entry?;
            users.insert(String::from_utf8_lossy(&username).into_owned());
        }
        Ok(users)
    }

    /// Links (issuer, sub) to the existing user `username`. Fails with
    /// [`StoreError::Conflict`] when the identity is already linked to someone.
    pub(crate) fn link_identity(
        &self,
        issuer: &str,
        sub: &str,
        username: &str,
    ) -> Result<(), StoreError> {
        let _write = self.write_gate();
        let key = identity_key(issuer, sub);
        (&self.identities, &self.users)
            .transaction(|(identities, users)| {
                if identities.get(&key)?.is_some() {
                    return Err(abort(StoreError::Conflict("identity")));
                }
                if users.get(username.as_bytes())?.is_none() {
                    return Err(abort(StoreError::Conflict("username")));
                }
                identities.insert(key.as_slice(), username.as_bytes())?;
                Ok(())
            })
            .map_err(unwrap_tx)
    }

    /// Creates `user` (under the first free name among `usernames`) linked to (issuer, sub), in
    /// one transaction. Returns the user as stored. Fails with [`StoreError::Conflict`] when the
    /// identity is linked or the email taken meanwhile, or no candidate name is free.
    pub(crate) fn provision_user(
        &self,
        user: &UserRecord,
        usernames: &[String],
        issuer: &str,
        sub: &str,
    ) -> Result<UserRecord, StoreError> {
        let _write = self.write_gate();
        let key = identity_key(issuer, sub);
        (&self.users, &self.users_by_email, &self.identities)
            .transaction(|(users, emails, identities)| {
                if identities.get(&key)?.is_some() {
                    return Err(abort(StoreError::Conflict("identity")));
                }
                if emails.get(email_key(&user.email))?.is_some() {
                    return Err(abort(StoreError::Conflict("email")));
                }
                let mut free = None;
                for name in usernames {
                    if users.get(name.as_bytes())?.is_none() {
                        free = Some(name);
                        break;
                    }
                }
                let Some(name) = free else {
                    return Err(abort(StoreError::Conflict("username")));
                };
                let mut record = user.clone();
                record.username.clone_from(name);
                users.insert(name.as_bytes(), encode(&record).map_err(abort)?)?;
                emails.insert(email_key(&record.email), name.as_bytes())?;
                identities.insert(key.as_slice(), name.as_bytes())?;
                Ok(record)
            })
            .map_err(unwrap_tx)
    }
}

impl SledStore {
    /// Stores a pending login under the SHA-256 of its `state`.
    pub(crate) fn create_pending_login(
        &self,
        state_hash: &[u8],
        login: &PendingLogin,
    ) -> Result<(), StoreError> {
        let _write = self.write_gate();
        self.pending_logins.insert(state_hash, encode(login)?)?;
        Ok(())
    }

    /// Removes and returns the pending login of a state: a state works once. An expired one is
    /// removed and not returned.
    pub(crate) fn take_pending_login(
        &self,
        state_hash: &[u8],
        now_unix: u64,
    ) -> Result<Option<PendingLogin>, StoreError> {
        let _write = self.write_gate();
        let Some(bytes) = self.pending_logins.remove(state_hash)? else {
            return Ok(None);
        };
        let login: PendingLogin = decode(&bytes)?;
        Ok((login.expires_unix > now_unix).then_some(login))
    }

    /// Removes pending logins expired at `now_unix`; returns how many.
    pub(crate) fn sweep_pending_logins(&self, now_unix: u64) -> Result<usize, StoreError> {
        let _write = self.write_gate();
        let mut removed = 0;
        for entry in self.pending_logins.iter() {
            let (key, bytes) = entry?;
            let expired =
                decode::<PendingLogin>(&bytes).map_or(true, |p| p.expires_unix <= now_unix);
            if expired {
                self.pending_logins.remove(key)?;
                removed += 1;
            }
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Role;
    use crate::store::sled_store::test_store;
    use crate::store::{AccessBinding, UserSource};

    fn sso_user(email: &str) -> UserRecord {
        UserRecord {
            username: String::new(),
            email: email.into(),
            name: "N".into(),
            source: UserSource::Sso,
            disabled: false,
            created_at: String::new(),
            access: vec![AccessBinding::for_role(Role::Developer)],
            password_hash: None,
        }
    }

    #[test]
    fn provisioning_takes_the_first_free_name_and_links_atomically() {
        let (_dir, store) = test_store();
        let names: Vec<String> = ["john", "john2", "john3"].map(String::from).to_vec();
        let first = store
            .provision_user(&sso_user("john@a.com"), &names, "https://idp", "1")
            .unwrap();
        assert_eq!(first.username, "john");
        let second = store
            .provision_user(&sso_user("john@b.com"), &names, "https://idp", "2")
            .unwrap();
        assert_eq!(second.username, "john2");
        assert_eq!(
            store.identity("https://idp", "2").unwrap().as_deref(),
            Some("john2")
        );
        // The same identity again, or a taken email: nothing is written.
        assert!(matches!(
            store.provision_user(&sso_user("x@c.com"), &names, "https://idp", "1"),
            Err(StoreError::Conflict("identity"))
        ));
        assert!(matches!(
            store.provision_user(&sso_user("JOHN@a.com"), &names, "https://idp", "3"),
            Err(StoreError::Conflict("email"))
        ));
        assert_eq!(store.user_count(), 2);
        assert!(store.identity("https://idp", "3").unwrap().is_none());
        let linked = store.users_with_identity_at("https://idp").unwrap();
        assert_eq!(linked.into_iter().collect::<Vec<_>>(), ["john", "john2"]);
        assert!(
            store
                .users_with_identity_at("https://other")
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn pending_logins_work_once_and_expire() {
        let (_dir, store) = test_store();
        let login = PendingLogin {
            binding_hash: "b".into(),
            nonce: "n".into(),
            pkce_verifier: "v".into(),
            return_to: "/".into(),
            issuer: "i".into(),
            client_id: "c".into(),
            expires_unix: 100,
            preview_by: None,
        };
        store.create_pending_login(b"s1", &login).unwrap();
        store.create_pending_login(b"s2", &login).unwrap();
        store.create_pending_login(b"s3", &login).unwrap();
        assert_eq!(
            store.take_pending_login(b"s1", 50).unwrap(),
            Some(login.clone())
        );
        assert_eq!(
            store.take_pending_login(b"s1", 50).unwrap(),
            None,
            "single use"
        );
        assert_eq!(
            store.take_pending_login(b"s2", 100).unwrap(),
            None,
            "expired"
        );
        assert_eq!(store.sweep_pending_logins(100).unwrap(), 1);
    }
}
