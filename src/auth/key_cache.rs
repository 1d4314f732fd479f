//! API keys already looked up, with their users, so an authenticated request costs a SHA-256
//! and a hash-map read. Each entry also keeps its user's `GET /api/me` JSON, rendered once. Any change to a user or a key revocation (the store's auth epoch moves)
//! makes every entry stale at once: a disabled user or a revoked key never authenticates from
//! the cache.
//!
//! Reads take no lock: the map is swapped whole (copy on write) when a key is added, which only
//! happens on a miss.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arc_swap::ArcSwap;
use bytes::Bytes;

use super::account::UserViewRef;
use crate::store::UserRecord;

/// Entries kept at most; the cache starts over when full.
const MAX_ENTRIES: usize = 10_000;

/// One key: the store epoch when it was looked up, its enabled user and the user's view as
/// JSON, and the Unix second of its last recorded use (so a busy key records its use once a
/// second, not on every request).
#[derive(Debug)]
struct Entry {
    epoch: u64,
    user: Arc<UserRecord>,
    expires_unix: Option<u64>,
    view_json: Bytes,
    last_use: AtomicU64,
}

/// A key found in the cache.
#[derive(Debug)]
pub struct Hit {
    pub user: Arc<UserRecord>,
    /// The user's [`crate::auth::account::UserView`] as JSON.
    pub view_json: Bytes,
    /// Whether this use is the first of its second (worth recording).
    pub first_use_this_second: bool,
    /// When the key expires (unix seconds), if ever.
    pub expires_unix: Option<u64>,
}

/// key hash -> [`Entry`].
#[derive(Debug, Default)]
pub struct KeyCache {
    entries: ArcSwap<HashMap<[u8; 32], Arc<Entry>, KeyHashState>>,
    /// Serialises inserts (copy on write).
    insert: std::sync::Mutex<()>,
}

impl KeyCache {
    /// The user of the key hashing to `hash`, if looked up at `epoch`, and whether this use
    /// at `now_unix` is the first of its second.
    pub fn get(&self, hash: &[u8; 32], epoch: u64, now_unix: u64) -> Option<Hit> {
        let entries = self.entries.load();
        let entry = entries.get(hash).filter(|e| e.epoch == epoch)?;
        // Read first: a busy key's second rarely changes, and a plain read shares the cache line.
        let first = entry.last_use.load(Ordering::Relaxed) != now_unix
            && entry.last_use.swap(now_unix, Ordering::Relaxed) != now_unix;
        Some(Hit {
            user: entry.user.clone(),
            view_json: entry.view_json.clone(),
            first_use_this_second: first,
            expires_unix: entry.expires_unix,
        })
    }

    /// Remembers that the key hashing to `hash` belonged to `user` at `epoch`; returns the
    /// user's view as JSON.
    pub fn insert(
        &self,
        hash: [u8; 32],
        epoch: u64,
        user: Arc<UserRecord>,
        expires_unix: Option<u64>,
    ) -> Bytes {
        // Invariant: a view is strings, booleans and unit enums; writing it to a Vec cannot fail.
        #[allow(clippy::expect_used, reason = "the invariant above")]
        let view_json = Bytes::from(
            serde_json::to_vec(&UserViewRef::from(&*user)).expect("a user view serializes"),
        );
        let _one = self.insert.lock().unwrap_or_else(|e| e.into_inner());
        let current = self.entries.load();
        let mut next: HashMap<[u8; 32], Arc<Entry>, KeyHashState> = if current.len() >= MAX_ENTRIES
        {
            HashMap::default()
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
                expires_unix,
                view_json: view_json.clone(),
                last_use: AtomicU64::new(0),
            }),
        );
        self.entries.store(Arc::new(next));
        view_json
    }
}

/// Hashes the map's keys by their first eight bytes: they are SHA-256 digests already, which
/// no client can steer into collisions, so hashing them again (SipHash) would be wasted work.
#[derive(Debug, Default, Clone, Copy)]
struct KeyHashState;

impl std::hash::BuildHasher for KeyHashState {
    type Hasher = PrefixHasher;

    fn build_hasher(&self) -> PrefixHasher {
        PrefixHasher(0)
    }
}

/// See [`KeyHashState`].
#[derive(Debug)]
struct PrefixHasher(u64);

impl std::hash::Hasher for PrefixHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // An array hashes as its bytes in one write (after its length, which is ignored).
        if let Some(first) = bytes.first_chunk::<8>() {
            self.0 = u64::from_ne_bytes(*first);
        }
    }

    fn write_usize(&mut self, _length: usize) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::UserSource;

    #[test]
    fn keys_hash_by_their_leading_bytes() {
        use std::hash::BuildHasher;
        let a = KeyHashState.hash_one([7u8; 32]);
        let mut other = [7u8; 32];
        other[31] = 0;
        assert_eq!(
            a,
            KeyHashState.hash_one(other),
            "only the first 8 bytes count"
        );
        other[0] = 8;
        assert_ne!(a, KeyHashState.hash_one(other));
        assert_ne!(a, 0, "the digest bytes are used, not ignored");
    }

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
        let view = cache.insert([1; 32], 7, user.clone(), None);
        let hit = cache.get(&[1; 32], 7, 100).unwrap();
        assert_eq!(
            (hit.user.username.as_str(), hit.first_use_this_second),
            ("ann", true)
        );
        assert_eq!(hit.view_json, view);
        let json: serde_json::Value = serde_json::from_slice(&view).unwrap();
        assert_eq!(json["username"], "ann");
        assert!(json.get("password_hash").is_none());
        assert!(
            !cache.get(&[1; 32], 7, 100).unwrap().first_use_this_second,
            "one record per second"
        );
        assert!(cache.get(&[1; 32], 7, 101).unwrap().first_use_this_second);
        assert!(
            cache.get(&[1; 32], 8, 101).is_none(),
            "a store change invalidates"
        );
        assert!(cache.get(&[2; 32], 7, 101).is_none());
        cache.insert([2; 32], 8, user, None);
        assert!(
            cache.get(&[1; 32], 7, 102).is_none(),
            "stale entries are dropped on insert"
        );
    }
}
