//! API keys already looked up, with their users, so an authenticated request costs a SHA-256
//! and a hash-map read. Any change to a user or a key revocation (the store's auth epoch moves)
//! makes every entry stale at once: a disabled user or a revoked key never authenticates from
//! the cache.
//!
//! Reads take no lock: the map is swapped whole (copy on write) when a key is added, which only
//! happens on a miss.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arc_swap::ArcSwap;

use crate::store::UserRecord;

/// Entries kept at most; the cache starts over when full.
const MAX_ENTRIES: usize = 10_000;

/// One key: the store epoch when it was looked up, its enabled user, and the Unix second of
/// its last recorded use (so a busy key records its use once a second, not on every request).
#[derive(Debug)]
struct Entry {
    epoch: u64,
    user: Arc<UserRecord>,
    last_use: AtomicU64,
}

/// key hash -> [`Entry`].
#[derive(Debug, Default)]
pub struct KeyCache {
    entries: ArcSwap<HashMap<[u8; 32], Arc<Entry>>>,
    /// Serialises inserts (copy on write).
    insert: std::sync::Mutex<()>,
}

impl KeyCache {
    /// The user of the key hashing to `hash`, if looked up at `epoch`, and whether this use
    /// at `now_unix` is the first of its second (worth recording).
    pub fn get(
        &self,
        hash: &[u8; 32],
        epoch: u64,
        now_unix: u64,
    ) -> Option<(Arc<UserRecord>, bool)> {
        let entries = self.entries.load();
        let entry = entries.get(hash).filter(|e| e.epoch == epoch)?;
        // Read first: a busy key's second rarely changes, and a plain read shares the cache line.
        let first = entry.last_use.load(Ordering::Relaxed) != now_unix
            && entry.last_use.swap(now_unix, Ordering::Relaxed) != now_unix;
        Some((entry.user.clone(), first))
    }

    /// Remembers that the key hashing to `hash` belonged to `user` at `epoch`.
    pub fn insert(&self, hash: [u8; 32], epoch: u64, user: Arc<UserRecord>) {
        let _one = self.insert.lock().unwrap_or_else(|e| e.into_inner());
        let current = self.entries.load();
        let mut next: HashMap<[u8; 32], Arc<Entry>> = if current.len() >= MAX_ENTRIES {
            HashMap::new()
        } else {
            current
                .iter()
                .filter(|(_, e)| e.epoch == epoch)
                .map(|(k, e)| (*k, e.clone()))
                .collect()
        };
        next.insert(
            hash,
            Arc::new(Entry {
                epoch,
                user,
                last_use: AtomicU64::new(0),
            }),
        );
        self.entries.store(Arc::new(next));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::UserSource;

    #[test]
    fn entries_of_an_older_epoch_are_stale() {
        let cache = KeyCache::default();
        let user = Arc::new(UserRecord {
            username: "ann".into(),
            email: "a@x.io".into(),
            name: "Ann".into(),
            source: UserSource::Local,
            disabled: false,
            created_at: String::new(),
            access: vec![],
            password_hash: None,
        });
        cache.insert([1; 32], 7, user.clone());
        let (found, first) = cache.get(&[1; 32], 7, 100).unwrap();
        assert_eq!((found.username.as_str(), first), ("ann", true));
        assert!(
            !cache.get(&[1; 32], 7, 100).unwrap().1,
            "one record per second"
        );
        assert!(cache.get(&[1; 32], 7, 101).unwrap().1);
        assert!(
            cache.get(&[1; 32], 8, 101).is_none(),
            "a store change invalidates"
        );
        assert!(cache.get(&[2; 32], 7, 101).is_none());
        cache.insert([2; 32], 8, user);
        assert!(
            cache.get(&[1; 32], 7, 102).is_none(),
            "stale entries are dropped on insert"
        );
    }
}
