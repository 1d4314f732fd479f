//! Browser sessions, stored by the SHA-256 of the session id; expired ones are swept.

use super::{SessionRecord, SledStore, StoreError, decode, encode};
use crate::store::records::REPLICA_KEPT_SECS;

impl SledStore {
    /// Stores a new session under the SHA-256 `hash` of its id.
    pub(crate) fn create_session(
        &self,
        hash: &[u8],
        session: &SessionRecord,
    ) -> Result<(), StoreError> {
        let _write = self.write_gate();
        self.sessions.insert(hash, encode(session)?)?;
        Ok(())
    }

    /// The live session whose id hashes to `hash`; an expired one is removed and not returned.
    pub(crate) fn session(
        &self,
        hash: &[u8],
        now_unix: u64,
    ) -> Result<Option<SessionRecord>, StoreError> {
        let Some(bytes) = self.sessions.get(hash)? else {
            return Ok(None);
        };
        let session: SessionRecord = decode(&bytes)?;
        if session.expires_unix <= now_unix {
            let _write = self.write_gate();
            self.sessions.remove(hash)?;
            return Ok(None);
        }
        Ok(Some(session))
    }

    /// Ends a session.
    pub(crate) fn delete_session(&self, hash: &[u8]) -> Result<(), StoreError> {
        let _write = self.write_gate();
        self.sessions.remove(hash)?;
        Ok(())
    }

    /// Ends every session of `username` (a disabled user, a password reset).
    pub(crate) fn delete_sessions_of(&self, username: &str) -> Result<usize, StoreError> {
        self.remove_sessions(|s| s.username == username)
    }

    /// Ends the sessions made by the SSO login whose provider session is `sid` at `issuer`;
    /// answers their users.
    pub(crate) fn delete_sessions_of_sid(
        &self,
        issuer: &str,
        sid: &str,
    ) -> Result<Vec<String>, StoreError> {
        let mut users = Vec::new();
        let _write = self.write_gate();
        for entry in self.sessions.iter() {
            let (hash, bytes) = entry?;
            let Ok(session) = decode::<SessionRecord>(&bytes) else {
                continue;
            };
            if session
                .sso
                .as_ref()
                .is_some_and(|s| s.issuer == issuer && s.sid.as_deref() == Some(sid))
            {
                self.sessions.remove(hash)?;
                users.push(session.username);
            }
        }
        Ok(users)
    }

    /// Records the use of a logout token's `jti` (kept until `expires_unix`); false when it
    /// was used before.
    pub(crate) fn use_logout_jti(&self, key: &str, expires_unix: u64) -> Result<bool, StoreError> {
        let _write = self.write_gate();
        let fresh = self
            .logout_jtis
            .compare_and_swap(
                key.as_bytes(),
                None::<&[u8]>,
                Some(&expires_unix.to_be_bytes()[..]),
            )?
            .is_ok();
        Ok(fresh)
    }

    /// Removes every record kind's expired records at `now_unix`; returns how many.
    pub(crate) fn sweep_expired(&self, now_unix: u64) -> Result<usize, StoreError> {
        Ok(self.sweep_expired_sessions(now_unix)?
            + self.sweep_pending_logins(now_unix)?
            + self.sweep_device_codes(now_unix)?
            + self.sweep_replicas(now_unix.saturating_sub(REPLICA_KEPT_SECS))?
            + self.sweep_logout_jtis(now_unix)?)
    }

    fn sweep_logout_jtis(&self, now_unix: u64) -> Result<usize, StoreError> {
        let mut stale = Vec::new();
        for entry in self.logout_jtis.iter() {
            let (key, value) = entry?;
            let expires = value
                .as_ref()
                .try_into()
                .map(u64::from_be_bytes)
                .unwrap_or(0);
            if expires <= now_unix {
                stale.push(key);
            }
        }
        let _write = self.write_gate();
        for key in &stale {
            self.logout_jtis.remove(key)?;
        }
        Ok(stale.len())
    }

    /// Removes sessions expired at `now_unix`; returns how many.
    pub(crate) fn sweep_expired_sessions(&self, now_unix: u64) -> Result<usize, StoreError> {
        self.remove_sessions(|s| s.expires_unix <= now_unix)
    }

    fn remove_sessions(
        &self,
        doomed: impl Fn(&SessionRecord) -> bool,
    ) -> Result<usize, StoreError> {
        let _write = self.write_gate();
        let mut removed = 0;
        for entry in self.sessions.iter() {
            let (hash, bytes) = entry?;
            let gone = decode::<SessionRecord>(&bytes).map_or(true, |s| doomed(&s));
            if gone {
                self.sessions.remove(hash)?;
                removed += 1;
            }
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sled_store::test_store;

    fn session(username: &str, expires_unix: u64) -> SessionRecord {
        SessionRecord {
            username: username.into(),
            created_unix: 0,
            expires_unix,
            csrf_token: "t".into(),
            sso: None,
        }
    }

    #[test]
    fn expired_sessions_are_not_returned_and_are_swept() {
        let (_dir, store) = test_store();
        store.create_session(b"live", &session("ann", 200)).unwrap();
        store.create_session(b"old", &session("ann", 100)).unwrap();
        store.create_session(b"older", &session("bob", 50)).unwrap();
        assert!(store.session(b"live", 150).unwrap().is_some());
        assert!(store.session(b"old", 150).unwrap().is_none());
        assert_eq!(store.sweep_expired_sessions(150).unwrap(), 1);
        assert!(store.session(b"live", 150).unwrap().is_some());
        assert_eq!(store.delete_sessions_of("ann").unwrap(), 1);
        assert!(store.session(b"live", 150).unwrap().is_none());
    }
}
