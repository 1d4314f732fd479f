//! Personal API keys. Issuing: a `cf_` key of 256 random bits, stored by its SHA-256 only,
//! named, audited, and durable before anyone is told the secret (password logins,
//! `POST /api/keys`; device logins through [`super::device::poll`]). Authenticating
//! ([`authenticate`]): a SHA-256 and a cache read, the store only on a miss.

use std::sync::Arc;

use bytes::Bytes;

use super::credential::{new_api_key, random_token};
use super::key_cache::KeyCache;
use super::key_usage::KeyUsage;
use crate::audit::{Audit, AuditKind};
use crate::store::{ApiKeyRecord, Store, StoreError, UserRecord};

/// The enabled owner of a presented key.
#[derive(Debug)]
pub(crate) struct KeyOwner {
    pub user: Arc<UserRecord>,
    /// The user's [`crate::vocab::UserView`] as JSON.
    pub view_json: Bytes,
}

/// What a presented key is worth.
#[derive(Debug)]
pub(crate) enum KeyAuth {
    /// A live key of an enabled user.
    Valid(KeyOwner),
    /// Past its `expires_at`: the client should sign in again.
    Expired { username: String },
    /// Unknown, revoked, or its owner is disabled.
    Refused,
}

#[cfg(test)]
impl KeyAuth {
    /// The owner of a valid key.
    pub(crate) fn owner(self) -> Option<KeyOwner> {
        match self {
            KeyAuth::Valid(owner) => Some(owner),
            KeyAuth::Expired { .. } | KeyAuth::Refused => None,
        }
    }
}

/// The enabled owner of the key whose SHA-256 is `hash`, at `now_unix`. A cached answer is used
/// only while the store's auth epoch is the one it was looked up at; the use is noted in `usage`
/// (written in batches). An expired key is refused as such, from the cache too.
pub(crate) async fn authenticate(
    store: &Store,
    cache: &KeyCache,
    usage: &KeyUsage,
    hash: [u8; 32],
    now_unix: u64,
) -> Result<KeyAuth, StoreError> {
    // The epoch is read before the lookup, so a change racing with it leaves a stale entry.
    let epoch = store.auth_epoch();
    if let Some(hit) = cache.get(&hash, epoch, now_unix) {
        if hit.expires_unix.is_some_and(|at| at <= now_unix) {
            return Ok(KeyAuth::Expired {
                username: hit.user.username.clone(),
            });
        }
        if hit.first_use_this_second {
            usage.record(hash, now_unix);
        }
        return Ok(KeyAuth::Valid(KeyOwner {
            user: hit.user,
            view_json: hit.view_json,
        }));
    }
    let Some(key) = store.api_key_by_hash(&hash).await? else {
        return Ok(KeyAuth::Refused);
    };
    let Some(user) = store.user(&key.username).await?.filter(|u| !u.disabled) else {
        return Ok(KeyAuth::Refused);
    };
    if key.expires_unix.is_some_and(|at| at <= now_unix) {
        return Ok(KeyAuth::Expired {
            username: user.username,
        });
    }
    let user = Arc::new(user);
    let view_json = cache.insert(hash, epoch, user.clone(), key.expires_unix);
    usage.record(hash, now_unix);
    Ok(KeyAuth::Valid(KeyOwner { user, view_json }))
}

/// A key just made: the secret to show once, and what was stored.
pub(crate) struct IssuedKey {
    pub secret: String,
    pub record: ApiKeyRecord,
}

/// Creates an API key named `name` for `username`, flushed to disk before it returns.
///
/// Fails when the store cannot be written, or the user is disabled
/// ([`StoreError::Disabled`]).
pub(crate) async fn issue_api_key(
    store: &Store,
    username: &str,
    name: &str,
    expires_unix: Option<u64>,
) -> Result<IssuedKey, StoreError> {
    let key = new_api_key();
    let record = ApiKeyRecord {
        id: random_token(9),
        username: username.to_owned(),
        name: name.to_owned(),
        prefix: key.prefix.clone(),
        created_at: crate::clock::now_rfc3339(),
        last_used_unix: None,
        expires_unix,
        from_device: false,
    };
    store.create_api_key(&key.hash, &record).await?;
    Audit::success(AuditKind::ApiKeyCreated)
        .actor(username)
        .subject(&record.id)
        .reason(format!("key \"{name}\""))
        .record(store)
        .await;
    store.flush().await?;
    Ok(IssuedKey {
        secret: key.secret,
        record,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::credential::sha256;
    use crate::store::test_store;

    async fn ann(store: &Store) {
        store
            .create_user(&UserRecord {
                username: "ann".into(),
                email: "ann@example.com".into(),
                name: "Ann".into(),
                source: crate::store::UserSource::Local,
                disabled: false,
                created_at: crate::clock::now_rfc3339(),
                access: vec![crate::store::AccessBinding::for_role(
                    crate::vocab::Role::Developer,
                )],
                password_hash: None,
            })
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn a_key_authenticates_its_enabled_owner_until_revoked() {
        let (_dir, store) = test_store();
        let (cache, usage) = (KeyCache::default(), KeyUsage::default());
        ann(&store).await;
        let issued = issue_api_key(&store, "ann", "laptop", None).await.unwrap();
        let hash = sha256(issued.secret.as_bytes());
        for now in [100, 100, 101] {
            let owner = authenticate(&store, &cache, &usage, hash, now)
                .await
                .unwrap()
                .owner()
                .unwrap();
            assert_eq!(owner.user.username, "ann");
            let view: serde_json::Value = serde_json::from_slice(&owner.view_json).unwrap();
            assert_eq!(view["username"], "ann");
            assert_eq!(usage.pending(&hash), Some(now), "the use is noted");
        }
        assert!(
            authenticate(&store, &cache, &usage, [7; 32], 102)
                .await
                .unwrap()
                .owner()
                .is_none()
        );
        assert!(
            store
                .delete_api_key("ann", &issued.record.id)
                .await
                .unwrap()
        );
        assert!(
            authenticate(&store, &cache, &usage, hash, 102)
                .await
                .unwrap()
                .owner()
                .is_none(),
            "a revoked key is refused although it was cached"
        );
    }

    #[tokio::test]
    async fn an_expired_key_is_refused_as_expired_from_the_store_and_the_cache() {
        let (_dir, store) = test_store();
        let (cache, usage) = (KeyCache::default(), KeyUsage::default());
        ann(&store).await;
        let issued = issue_api_key(&store, "ann", "laptop", Some(1_000))
            .await
            .unwrap();
        assert_eq!(issued.record.expires_unix, Some(1_000));
        let hash = sha256(issued.secret.as_bytes());
        let at = |now| authenticate(&store, &cache, &usage, hash, now);
        assert!(at(999).await.unwrap().owner().is_some(), "live until then");
        for _ in 0..2 {
            assert!(
                matches!(at(1_000).await.unwrap(), KeyAuth::Expired { ref username } if username == "ann"),
                "expired, from the cache and again"
            );
        }
        let fresh = KeyCache::default();
        assert!(matches!(
            authenticate(&store, &fresh, &usage, hash, 5_000)
                .await
                .unwrap(),
            KeyAuth::Expired { .. }
        ));
    }

    #[tokio::test]
    async fn a_disabled_owner_is_refused_although_cached() {
        let (_dir, store) = test_store();
        let (cache, usage) = (KeyCache::default(), KeyUsage::default());
        ann(&store).await;
        let issued = issue_api_key(&store, "ann", "laptop", None).await.unwrap();
        let hash = sha256(issued.secret.as_bytes());
        assert!(
            authenticate(&store, &cache, &usage, hash, 1)
                .await
                .unwrap()
                .owner()
                .is_some()
        );
        store
            .update_user("ann", |u| u.disabled = true)
            .await
            .unwrap()
            .unwrap();
        assert!(
            authenticate(&store, &cache, &usage, hash, 2)
                .await
                .unwrap()
                .owner()
                .is_none()
        );
    }

    #[tokio::test]
    async fn a_key_is_stored_by_its_hash_named_and_audited() {
        let (_dir, store) = test_store();
        let issued = issue_api_key(&store, "ann", "laptop", None).await.unwrap();
        assert!(issued.secret.starts_with("cf_"));
        assert!(issued.secret.starts_with(&issued.record.prefix));
        let stored = store
            .api_key_by_hash(&sha256(issued.secret.as_bytes()))
            .await
            .unwrap()
            .expect("found by the hash of its secret");
        assert_eq!(stored, issued.record);
        assert_eq!(stored.name, "laptop");
        let events = store.audit_events(None, 5, Some("api_key")).await.unwrap();
        assert_eq!(
            events[0].subject.as_deref(),
            Some(issued.record.id.as_str())
        );
        let other = issue_api_key(&store, "ann", "laptop", None).await.unwrap();
        assert_ne!(other.secret, issued.secret);
        assert_ne!(other.record.id, issued.record.id);
    }
}
