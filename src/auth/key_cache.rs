//! API keys already looked up, with their users, so an authenticated request costs a SHA-256
//! and a hash-map read. Any change to a user or a key revocation (the store's auth epoch moves)
//! makes every entry stale at once: a disabled user or a revoked key never authenticates from
//! the cache.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use crate::store::UserRecord;

/// Entries kept at most; the cache starts over when full.
const MAX_ENTRIES: usize = 50_000;

/// The store epoch when a key was looked up, and its enabled user.
type Entry = (u64, Arc<UserRecord>);

/// key hash -> [`Entry`].
#[derive(Debug, Default)]
pub struct KeyCache {
    entries: RwLock<HashMap<[u8; 32], Entry>>,
}

impl KeyCache {
    /// The user of the key hashing to `hash`, if looked up at `epoch`.
    pub fn get(&self, hash: &[u8; 32], epoch: u64) -> Option<Arc<UserRecord>> {
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        match entries.get(hash) {
            Some((seen, user)) if *seen == epoch => Some(user.clone()),
            _ => None,
        }
    }

    /// Remembers that the key hashing to `hash` belonged to `user` at `epoch`.
    pub fn insert(&self, hash: [u8; 32], epoch: u64, user: Arc<UserRecord>) {
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= MAX_ENTRIES {
            entries.retain(|_, (seen, _)| *seen == epoch);
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(hash, (epoch, user));
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
        assert_eq!(cache.get(&[1; 32], 7).unwrap().username, "ann");
        assert!(
            cache.get(&[1; 32], 8).is_none(),
            "a store change invalidates"
        );
        assert!(cache.get(&[2; 32], 7).is_none());
    }
}
