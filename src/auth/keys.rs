//! Issuing personal API keys: a `cf_` key of 256 random bits, stored by its SHA-256 only, named,
//! audited, and durable before anyone is told the secret. Password logins, `POST /api/keys` and
//! (through the store's poll) device logins issue keys.

use super::credential::{new_api_key, random_token};
use crate::audit::{Audit, AuditKind};
use crate::store::{ApiKeyRecord, Store, StoreError};

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
) -> Result<IssuedKey, StoreError> {
    let key = new_api_key();
    let record = ApiKeyRecord {
        id: random_token(9),
        username: username.to_owned(),
        name: name.to_owned(),
        prefix: key.prefix.clone(),
        created_at: crate::clock::now_rfc3339(),
        last_used_unix: None,
    };
    store.create_api_key(&key.hash, &record)?;
    Audit::success(AuditKind::ApiKeyCreated)
        .actor(username)
        .subject(&record.id)
        .reason(format!("key \"{name}\""))
        .record(store);
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

    #[tokio::test]
    async fn a_key_is_stored_by_its_hash_named_and_audited() {
        let (_dir, store) = test_store();
        let issued = issue_api_key(&store, "ann", "laptop").await.unwrap();
        assert!(issued.secret.starts_with("cf_"));
        assert!(issued.secret.starts_with(&issued.record.prefix));
        let stored = store
            .api_key_by_hash(&sha256(issued.secret.as_bytes()))
            .unwrap()
            .expect("found by the hash of its secret");
        assert_eq!(stored, issued.record);
        assert_eq!(stored.name, "laptop");
        let events = store.audit_events(None, 5, Some("api_key")).unwrap();
        assert_eq!(
            events[0].subject.as_deref(),
            Some(issued.record.id.as_str())
        );
        let other = issue_api_key(&store, "ann", "laptop").await.unwrap();
        assert_ne!(other.secret, issued.secret);
        assert_ne!(other.record.id, issued.record.id);
    }
}
