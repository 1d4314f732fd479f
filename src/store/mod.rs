//! Persistent records in an embedded sled database: users, SSO identities, API keys, sessions
//! pending SSO logins and device logins.
//!
//! The rest of the daemon reaches the store only through [`Store`]'s methods, which take and
//! return domain records, never sled types, so that another backend (PostgreSQL for several
//! replicas) can stand behind the same operations. Tree names carry a version (`users.v1`) so a
//! later format can be migrated beside the old one. Every method that changes a record returns
//! once the change is in the database; [`Store::flush`] makes it durable, and a handler calls it
//! before it acknowledges the change.
//!
//! Blocking: sled reads are memory-speed; writes and flushes go through
//! [`crate::blocking::run_blocking`] in the callers that run on the async runtime.

mod audit;
mod devices;
mod identities;
mod keys;
mod sessions;
mod users;

use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;

pub use audit::AuditEvent;
pub use devices::{DeviceRecord, DeviceStatus, PollOutcome};
pub use identities::PendingLogin;
pub use keys::ApiKeyRecord;
pub use sessions::SessionRecord;
pub use users::{AccessBinding, UserRecord, UserSource};

/// Failures of the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the store in {}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: sled::Error,
    },
    #[error("the store failed")]
    Io(#[from] sled::Error),
    /// A unique field (username, email) is taken.
    #[error("a user with this {0} already exists")]
    Conflict(&'static str),
    #[error("a stored record cannot be read")]
    Corrupt(#[from] serde_json::Error),
}

/// The store: one sled database with a tree per record kind and index.
#[derive(Clone)]
pub struct Store {
    /// Flushed as a whole.
    db: sled::Db,
    /// username -> [`UserRecord`].
    users: sled::Tree,
    /// lower-cased email -> username; unique.
    users_by_email: sled::Tree,
    /// SHA-256 of the key -> [`ApiKeyRecord`].
    api_keys: sled::Tree,
    /// `username \0 key id` -> SHA-256 of the key; lists a user's keys.
    api_keys_by_user: sled::Tree,
    /// SHA-256 of the session id -> [`SessionRecord`].
    sessions: sled::Tree,
    /// `issuer \0 sub` -> username: linked SSO identities.
    identities: sled::Tree,
    /// SHA-256 of an SSO login's `state` -> [`PendingLogin`].
    pending_logins: sled::Tree,
    /// SHA-256 of a device code -> [`DeviceRecord`].
    device_codes: sled::Tree,
    /// Normalised user code -> SHA-256 of its device code; unique among live codes.
    device_user_codes: sled::Tree,
    /// Big-endian event id -> [`AuditEvent`].
    audit: sled::Tree,
}

impl Store {
    /// Opens (or creates) the store in `dir`. Blocking.
    ///
    /// Fails when the folder cannot be created or another process holds the store's lock.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        let open = |source| StoreError::Open {
            path: dir.to_owned(),
            source,
        };
        let db = sled::Config::new().path(dir).open().map_err(open)?;
        let tree = |name: &str| db.open_tree(name).map_err(open);
        Ok(Store {
            users: tree("users.v1")?,
            users_by_email: tree("users_by_email.v1")?,
            api_keys: tree("api_keys.v1")?,
            api_keys_by_user: tree("api_keys_by_user.v1")?,
            sessions: tree("sessions.v1")?,
            identities: tree("identities.v1")?,
            pending_logins: tree("pending_logins.v1")?,
            device_codes: tree("device_codes.v1")?,
            device_user_codes: tree("device_user_codes.v1")?,
            audit: tree("audit.v1")?,
            db,
        })
    }

    /// Writes every change made so far to disk; a change is durable once this returns.
    ///
    /// Fails when the disk refuses the write.
    pub async fn flush(&self) -> Result<(), StoreError> {
        self.db.flush_async().await?;
        Ok(())
    }
}

fn encode<T: Serialize>(record: &T) -> Result<Vec<u8>, StoreError> {
    Ok(serde_json::to_vec(record)?)
}

fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, StoreError> {
    Ok(serde_json::from_slice(bytes)?)
}

/// The error of a transaction: the aborting error, or the storage failure.
fn unwrap_tx(e: sled::transaction::TransactionError<StoreError>) -> StoreError {
    match e {
        sled::transaction::TransactionError::Abort(e) => e,
        sled::transaction::TransactionError::Storage(e) => StoreError::Io(e),
    }
}

#[cfg(test)]
pub(crate) fn test_store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("store")).unwrap();
    (dir, store)
}
