//! Persistent records in an embedded sled database: users, SSO identities, API keys, sessions
//! pending SSO logins and device logins.
//!
//! The rest of the daemon reaches the store only through [`SledStore`]'s methods, which take and
//! return domain records, never sled types, so that another backend (PostgreSQL for several
//! replicas) can stand behind the same operations. Tree names carry a version (`users.v1`) so a
//! later format can be migrated beside the old one. Every method that changes a record returns
//! once the change is in the database; [`SledStore::flush`] makes it durable, and a handler calls it
//! before it acknowledges the change.
//!
//! Blocking: sled reads are memory-speed; writes and flushes go through
//! [`crate::blocking::run_blocking`] in the callers that run on the async runtime.

mod audit;
mod devices;
mod export;
mod identities;
mod keys;
mod replicas;
mod sessions;
pub(super) mod users;

use std::path::Path;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::records::{
    ApiKeyRecord, AuditEvent, DeviceRecord, DeviceStatus, PendingLogin, PollOutcome, PollStep,
    SessionRecord, UserRecord,
};
use super::{StoreError, StoreSummary};

/// sled's page cache.
const CACHE_BYTES: u64 = 2 * 1024 * 1024;

/// The store: one sled database with a tree per record kind and index. Cloning it is one
/// reference count.
#[derive(Clone)]
pub(super) struct SledStore(std::sync::Arc<Trees>);

impl std::ops::Deref for SledStore {
    type Target = Trees;

    fn deref(&self) -> &Trees {
        &self.0
    }
}

/// The database and its trees, shared by every clone of a [`SledStore`].
pub(super) struct Trees {
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
    /// Replica id -> [`super::records::ReplicaRecord`] (heartbeats).
    replicas: sled::Tree,
    /// `issuer \0 jti` of used back-channel logout tokens -> expiry (big-endian unix seconds).
    logout_jtis: sled::Tree,
    /// Device code hash -> (last poll in ms, interval in s): the pacing of polls, in memory so
    /// that a poll that changes no status writes nothing (see `poll_device`).
    poll_pacing: std::sync::Mutex<std::collections::HashMap<Vec<u8>, (u64, u64)>>,
    /// Moves on every change that can take a key's permissions away (a user changed, a key
    /// revoked), so caches of authenticated keys know they are stale.
    auth_epoch: std::sync::atomic::AtomicU64,
    /// Held by every write and by every flush, so they never overlap. sled 0.34 deadlocks when
    /// a transaction waits for its exclusive lock while a flush holds the shared one and waits
    /// for IO threads that need the shared lock too (seen under concurrent user creation).
    write_gate: std::sync::Mutex<()>,
    /// Group commit: writes completed, and writes known durable.
    writes: std::sync::atomic::AtomicU64,
    flushed: std::sync::atomic::AtomicU64,
    /// One flush at a time; callers arriving during a flush share the next one.
    flush_turn: tokio::sync::Mutex<()>,
}

impl SledStore {
    /// Opens (or creates) the store in `dir`. Blocking.
    ///
    /// Fails when the folder cannot be created or another process holds the store's lock.
    pub(super) fn open(dir: &Path) -> Result<SledStore, StoreError> {
        let open = |source| StoreError::Open {
            path: dir.to_owned(),
            source,
        };
        // A small page cache: the records are small and few; the daemon should stay small.
        // No background flusher: it takes sled's shared lock outside the write gate (see
        // `write_gate`); the maintenance task flushes instead, and every acknowledged change
        // is flushed before its answer.
        let db = sled::Config::new()
            .path(dir)
            .cache_capacity(CACHE_BYTES)
            .flush_every_ms(None)
            .open()
            .map_err(open)?;
        let tree = |name: &str| db.open_tree(name).map_err(open);
        Ok(SledStore(std::sync::Arc::new(Trees {
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
            replicas: tree("replicas.v1")?,
            logout_jtis: tree("logout_jtis.v1")?,
            poll_pacing: Default::default(),
            auth_epoch: Default::default(),
            write_gate: Default::default(),
            writes: Default::default(),
            flushed: Default::default(),
            flush_turn: Default::default(),
            db,
        })))
    }

    /// The auth epoch: changes whenever a user changes or a key is revoked.
    pub(super) fn auth_epoch(&self) -> u64 {
        self.auth_epoch.load(std::sync::atomic::Ordering::Acquire)
    }

    fn bump_auth_epoch(&self) {
        self.auth_epoch
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    }

    /// Writes every change made so far to disk; a change is durable once this returns.
    /// Concurrent callers share flushes (group commit): a caller whose writes were covered by a
    /// flush that started after them returns without another one.
    ///
    /// Fails when the disk refuses the write.
    pub(super) async fn flush(&self) -> Result<(), StoreError> {
        use std::sync::atomic::Ordering;
        let mine = self.writes.load(Ordering::Acquire);
        let _turn = self.flush_turn.lock().await;
        if self.flushed.load(Ordering::Acquire) >= mine {
            return Ok(());
        }
        let store = self.clone();
        crate::blocking::run_blocking(move || {
            let _write = store.write_gate();
            let covered = store.writes.load(Ordering::Acquire);
            store.db.flush()?;
            store.flushed.fetch_max(covered, Ordering::AcqRel);
            Ok(())
        })
        .await
    }

    /// Enters the write gate; the write counts once the guard is dropped.
    fn write_gate(&self) -> WriteGuard<'_> {
        WriteGuard {
            _guard: self.write_gate.lock().unwrap_or_else(|e| e.into_inner()),
            writes: &self.writes,
        }
    }
}

impl SledStore {
    /// How many users, API keys and audit events the store holds.
    pub(super) fn summary(&self) -> StoreSummary {
        StoreSummary {
            users: self.users.len(),
            api_keys: self.api_keys.len(),
            audit_events: self.audit.len(),
        }
    }

    /// Copies the whole store into a new sled database in `dir` (which must not exist, or be an
    /// empty folder) and flushes it. Consistent: it runs under the write gate, so no write
    /// happens during the copy and every write acknowledged before it is in the copy. Blocking;
    /// writes wait for it (milliseconds for thousands of records).
    ///
    /// Fails when `dir` is not empty or cannot be written.
    pub(super) fn backup_to(&self, dir: &Path) -> Result<StoreSummary, StoreError> {
        let _write = self.write_gate();
        copy_database(&self.db, dir)?;
        Ok(self.summary())
    }
}

/// Copies every tree of `from` into a new database at `dir`, flushed.
fn copy_database(from: &sled::Db, dir: &Path) -> Result<(), StoreError> {
    let not_empty = std::fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_some());
    if not_empty {
        return Err(StoreError::TargetNotEmpty(dir.to_owned()));
    }
    let open = |source| StoreError::Open {
        path: dir.to_owned(),
        source,
    };
    // The copy holds password hashes and key hashes: only its owner may read it.
    {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        if !dir.exists() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| open(sled::Error::Io(e)))?;
        }
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| open(sled::Error::Io(e)))?;
    }
    let target = sled::Config::new().path(dir).open().map_err(open)?;
    for name in from.tree_names() {
        let source = from.open_tree(&name)?;
        let copy = target.open_tree(&name)?;
        for entry in source.iter() {
            let (key, value) = entry?;
            copy.insert(key, value)?;
        }
    }
    target.flush()?;
    Ok(())
}

/// Replaces the store in `store_dir` with a copy of the backup in `backup_dir`, as a whole: the
/// backup is opened first (a folder that is no store changes nothing), copied into a new
/// database beside the store, checked to open, and only then swapped in; the old store is kept
/// as `<store_dir>.replaced-<unix seconds>`. Blocking. The daemon must not run (the caller checks;
/// sled's lock on the store refuses it anyway).
///
/// Fails when the backup does not open as a store, or the data directory cannot be written.
pub fn restore_from(backup_dir: &Path, store_dir: &Path) -> Result<StoreSummary, StoreError> {
    if !backup_dir.join("conf").is_file() {
        return Err(StoreError::NotABackup(backup_dir.to_owned()));
    }
    let backup = SledStore::open(backup_dir)?;
    let summary = backup.summary();
    let parent = store_dir.parent().unwrap_or(Path::new("."));
    let name = store_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "store".into());
    let staging = parent.join(format!("{name}.restoring"));
    if staging.exists() {
        std::fs::remove_dir_all(&staging).map_err(|e| io_error(&staging, e))?;
    }
    copy_database(&backup.db, &staging)?;
    drop(backup);
    // The copy opens, with the same content.
    let copied = SledStore::open(&staging)?.summary();
    if copied != summary {
        return Err(StoreError::NotABackup(backup_dir.to_owned()));
    }
    if store_dir.exists() {
        let kept = parent.join(format!("{name}.replaced-{}", crate::clock::unix_secs()));
        std::fs::rename(store_dir, &kept).map_err(|e| io_error(store_dir, e))?;
    }
    std::fs::rename(&staging, store_dir).map_err(|e| io_error(store_dir, e))?;
    std::fs::File::open(parent)
        .and_then(|f| f.sync_all())
        .map_err(|e| io_error(parent, e))?;
    Ok(summary)
}

fn io_error(path: &Path, source: std::io::Error) -> StoreError {
    StoreError::Open {
        path: path.to_owned(),
        source: sled::Error::Io(source),
    }
}

/// Holds the write gate; counts a write when dropped (after the write happened).
struct WriteGuard<'a> {
    _guard: std::sync::MutexGuard<'a, ()>,
    writes: &'a std::sync::atomic::AtomicU64,
}

impl Drop for WriteGuard<'_> {
    fn drop(&mut self) {
        self.writes
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        // sled frees replaced pages and full log buffers (512 KiB each) through epoch-based
        // reclamation, deferred into a bag of the writing thread that is only handed on once
        // it holds 64 items: a thread that writes now and then would keep megabytes alive.
        // Handing the bag on after every write lets them go within the next collections.
        crossbeam_epoch::pin().flush();
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
pub(crate) fn test_store() -> (tempfile::TempDir, SledStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open(&dir.path().join("store")).unwrap();
    (dir, store)
}

#[cfg(test)]
mod backup_tests {
    use super::*;

    #[test]
    fn a_backup_restores_as_a_whole_and_keeps_the_old_store() {
        let (dir, store) = test_store();
        store
            .create_user(&users::tests::user("ann", "ann@example.com"))
            .unwrap();
        let backup = dir.path().join("backup");
        assert_eq!(store.backup_to(&backup).unwrap().users, 1);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&backup).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700, "only its owner reads a backup");
        assert!(matches!(
            store.backup_to(&backup),
            Err(StoreError::TargetNotEmpty(_))
        ));
        store
            .create_user(&users::tests::user("bob", "bob@example.com"))
            .unwrap();
        drop(store);
        let store_dir = dir.path().join("store");
        let restored = restore_from(&backup, &store_dir).unwrap();
        assert_eq!(restored.users, 1);
        let store = SledStore::open(&store_dir).unwrap();
        assert!(store.user("ann").unwrap().is_some());
        assert!(store.user("bob").unwrap().is_none(), "replaced, not merged");
        let kept = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(Result::ok)
            .any(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with("store.replaced-")
            });
        assert!(kept, "the old store is kept aside");
        let nothing = dir.path().join("nothing");
        std::fs::create_dir(&nothing).unwrap();
        assert!(matches!(
            restore_from(&nothing, &store_dir),
            Err(StoreError::NotABackup(_))
        ));
    }
}
