//! When each API key was last used, kept in memory and written to the store in batches, so that
//! authenticating a request never costs a disk write.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::store::{Store, StoreError};

/// Uses seen since the last [`KeyUsage::persist`]: key hash -> Unix seconds.
#[derive(Debug, Default)]
pub struct KeyUsage {
    pending: Mutex<HashMap<[u8; 32], u64>>,
}

impl KeyUsage {
    /// Notes that the key hashing to `hash` was used at `unix` seconds.
    pub fn record(&self, hash: [u8; 32], unix: u64) {
        let mut pending = self.lock();
        let last = pending.entry(hash).or_insert(unix);
        *last = (*last).max(unix);
    }

    /// The last use not yet written, if any.
    pub fn pending(&self, hash: &[u8]) -> Option<u64> {
        let hash: [u8; 32] = hash.try_into().ok()?;
        self.lock().get(&hash).copied()
    }

    /// Writes the pending uses to the store (keys revoked meanwhile are skipped). Blocking.
    ///
    /// Fails when the store refuses the write; the uses are then kept for the next attempt.
    pub async fn persist(&self, store: &Store) -> Result<usize, StoreError> {
        let batch: Vec<(Vec<u8>, u64)> = self
            .lock()
            .iter()
            .map(|(hash, unix)| (hash.to_vec(), *unix))
            .collect();
        if batch.is_empty() {
            return Ok(0);
        }
        store.record_api_key_uses(&batch).await?;
        let mut pending = self.lock();
        for (hash, unix) in &batch {
            let hash: [u8; 32] = hash.as_slice().try_into().unwrap_or([0; 32]);
            // A use recorded while writing stays pending.
            if pending.get(&hash) == Some(unix) {
                pending.remove(&hash);
            }
        }
        Ok(batch.len())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], u64>> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{ApiKeyRecord, test_store};

    #[tokio::test]
    async fn uses_are_kept_in_memory_then_written_in_one_batch() {
        let (_dir, store) = test_store();
        let record = ApiKeyRecord {
            id: "k1".into(),
            username: "ann".into(),
            name: "laptop".into(),
            prefix: "cf_abcdef".into(),
            created_at: "2026-11-29T00:00:00Z".into(),
            last_used_unix: None,
            expires_unix: None,
            from_device: false,
        };
        let hash = [7u8; 32];
        store.create_api_key(&hash, &record).await.unwrap();
        let usage = KeyUsage::default();
        usage.record(hash, 100);
        usage.record(hash, 90);
        assert_eq!(usage.pending(&hash), Some(100));
        let stored = store.api_key_by_hash(&hash).await.unwrap().unwrap();
        assert_eq!(stored.last_used_unix, None, "no write per use");
        assert_eq!(usage.persist(&store).await.unwrap(), 1);
        assert_eq!(usage.pending(&hash), None);
        let stored = store.api_key_by_hash(&hash).await.unwrap().unwrap();
        assert_eq!(stored.last_used_unix, Some(100));
        assert_eq!(usage.persist(&store).await.unwrap(), 0);
    }
}
