//! API keys, stored by the SHA-256 of the key; the key itself is never stored.

use sled::Transactional;
use sled::transaction::ConflictableTransactionError;

use super::{ApiKeyRecord, SledStore, StoreError, decode, encode, unwrap_tx};

pub(super) fn owner_key(username: &str, id: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(username.len() + 1 + id.len());
    key.extend_from_slice(username.as_bytes());
    key.push(0);
    key.extend_from_slice(id.as_bytes());
    key
}

impl SledStore {
    /// Stores a new key under the SHA-256 `hash` of its secret.
    ///
    /// Fails with [`StoreError::Disabled`] when the owner is disabled: checked under the write
    /// gate, so a key cannot slip in between disabling a user and revoking their keys.
    pub(crate) fn create_api_key(
        &self,
        hash: &[u8],
        record: &ApiKeyRecord,
    ) -> Result<(), StoreError> {
        let _write = self.write_gate();
        if self.user(&record.username)?.is_some_and(|u| u.disabled) {
            return Err(StoreError::Disabled(record.username.clone()));
        }
        let bytes = encode(record)?;
        (&self.api_keys, &self.api_keys_by_user)
            .transaction(|(keys, owners)| {
                keys.insert(hash, bytes.as_slice())?;
                owners.insert(owner_key(&record.username, &record.id), hash)?;
                Ok::<_, ConflictableTransactionError<StoreError>>(())
            })
            .map_err(unwrap_tx)
    }

    /// The key whose secret hashes to `hash`.
    pub(crate) fn api_key_by_hash(&self, hash: &[u8]) -> Result<Option<ApiKeyRecord>, StoreError> {
        self.api_keys
            .get(hash)?
            .map(|bytes| decode(&bytes))
            .transpose()
    }

    /// A user's keys, ordered by id.
    pub(crate) fn api_keys_of(&self, username: &str) -> Result<Vec<ApiKeyRecord>, StoreError> {
        Ok(self
            .api_keys_with_hashes_of(username)?
            .into_iter()
            .map(|(_, key)| key)
            .collect())
    }

    /// A user's keys with the hash each is stored under, ordered by id.
    pub(crate) fn api_keys_with_hashes_of(
        &self,
        username: &str,
    ) -> Result<Vec<(Vec<u8>, ApiKeyRecord)>, StoreError> {
        let mut prefix = username.as_bytes().to_vec();
        prefix.push(0);
        let mut keys = Vec::new();
        for entry in self.api_keys_by_user.scan_prefix(prefix) {
            let (_, hash) = entry?;
            if let Some(record) = self.api_key_by_hash(&hash)? {
                keys.push((hash.to_vec(), record));
            }
        }
        Ok(keys)
    }

    /// Revokes `username`'s key `id`; false when there is no such key of that user.
    pub(crate) fn delete_api_key(&self, username: &str, id: &str) -> Result<bool, StoreError> {
        let _write = self.write_gate();
        let result = (&self.api_keys, &self.api_keys_by_user)
            .transaction(|(keys, owners)| {
                let Some(hash) = owners.remove(owner_key(username, id))? else {
                    return Ok(false);
                };
                keys.remove(hash)?;
                Ok::<_, ConflictableTransactionError<StoreError>>(true)
            })
            .map_err(unwrap_tx);
        self.bump_auth_epoch();
        result
    }

    /// Revokes every key of `username`; returns how many there were.
    pub(crate) fn delete_api_keys_of(&self, username: &str) -> Result<usize, StoreError> {
        let mut revoked = 0;
        for key in self.api_keys_of(username)? {
            if self.delete_api_key(username, &key.id)? {
                revoked += 1;
            }
        }
        Ok(revoked)
    }

    /// Records the last use of keys (hash, unix seconds), skipping keys revoked meanwhile.
    pub(crate) fn record_api_key_uses(&self, uses: &[(Vec<u8>, u64)]) -> Result<(), StoreError> {
        let _write = self.write_gate();
        for (hash, unix) in uses {
            self.api_keys.fetch_and_update(hash, |old| {
                let mut record: ApiKeyRecord = serde_json::from_slice(old?).ok()?;
                record.last_used_unix = Some(record.last_used_unix.unwrap_or(0).max(*unix));
                serde_json::to_vec(&record).ok()
            })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sled_store::test_store;

    fn key(id: &str, username: &str) -> ApiKeyRecord {
        ApiKeyRecord {
            id: id.into(),
            username: username.into(),
            name: format!("key {id}"),
            prefix: "cf_abc".into(),
            created_at: "2026-11-29T00:00:00Z".into(),
            last_used_unix: None,
            expires_unix: None,
            from_device: false,
        }
    }

    #[test]
    fn keys_are_found_by_hash_listed_per_user_and_revoked_by_their_owner_only() {
        let (_dir, store) = test_store();
        store.create_api_key(b"h1", &key("k1", "ann")).unwrap();
        store.create_api_key(b"h2", &key("k2", "ann")).unwrap();
        store.create_api_key(b"h3", &key("k3", "annie")).unwrap();
        assert_eq!(store.api_key_by_hash(b"h2").unwrap().unwrap().id, "k2");
        let ids: Vec<_> = store
            .api_keys_of("ann")
            .unwrap()
            .into_iter()
            .map(|k| k.id)
            .collect();
        assert_eq!(ids, ["k1", "k2"]);
        assert!(!store.delete_api_key("annie", "k1").unwrap());
        assert!(store.delete_api_key("ann", "k1").unwrap());
        assert!(store.api_key_by_hash(b"h1").unwrap().is_none());
        assert_eq!(store.api_keys_of("ann").unwrap().len(), 1);
    }

    #[test]
    fn all_keys_of_a_user_are_revoked_and_a_disabled_user_gets_none() {
        let (_dir, store) = test_store();
        let ann = crate::store::sled_store::users::tests::user("ann", "ann@example.com");
        store.create_user(&ann).unwrap();
        store.create_api_key(b"h1", &key("k1", "ann")).unwrap();
        store.create_api_key(b"h2", &key("k2", "ann")).unwrap();
        store.create_api_key(b"h3", &key("k3", "annie")).unwrap();
        assert_eq!(store.delete_api_keys_of("ann").unwrap(), 2);
        assert!(store.api_key_by_hash(b"h1").unwrap().is_none());
        assert!(store.api_key_by_hash(b"h3").unwrap().is_some());
        store.update_user("ann", |u| u.disabled = true).unwrap();
        assert!(matches!(
            store.create_api_key(b"h4", &key("k4", "ann")),
            Err(StoreError::Disabled(_))
        ));
        assert!(store.api_key_by_hash(b"h4").unwrap().is_none());
    }

    #[test]
    fn key_uses_keep_the_latest_time_and_skip_revoked_keys() {
        let (_dir, store) = test_store();
        store.create_api_key(b"h1", &key("k1", "ann")).unwrap();
        store
            .record_api_key_uses(&[(b"h1".to_vec(), 200), (b"gone".to_vec(), 5)])
            .unwrap();
        store.record_api_key_uses(&[(b"h1".to_vec(), 100)]).unwrap();
        assert_eq!(
            store
                .api_key_by_hash(b"h1")
                .unwrap()
                .unwrap()
                .last_used_unix,
            Some(200)
        );
        assert!(store.api_key_by_hash(b"gone").unwrap().is_none());
    }
}
