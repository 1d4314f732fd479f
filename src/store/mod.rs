//! Persistent records: users, SSO identities, API keys, sessions, pending SSO logins, device
//! logins and the audit trail, behind one interface ([`Store`]) with two backends: the embedded
//! sled database (the default, one daemon per data directory) and PostgreSQL (several replicas).
//!
//! The rest of the daemon reaches the store only through [`Store`]'s methods, which take and
//! return the domain records of [`records`], never a backend's types. Every method that changes
//! a record returns once the change is in the database; [`Store::flush`] makes it durable, and
//! a handler calls it before it acknowledges the change. The rules that decide a change without
//! storage (a device poll) live with the records, so both backends apply them alike; the rules
//! that need a transaction (unique emails, the last admin, one key per device code, single-use
//! logins) are each backend's, and one contract test suite checks them on both.

pub mod pg;
pub mod records;
mod sled_store;

use std::path::{Path, PathBuf};

use serde::Serialize;

pub use pg::DatabaseUrl;
pub use pg::migrate::Migrated;
pub use records::{
    AccessBinding, ApiKeyRecord, AuditEvent, DeviceRecord, DeviceStatus, FailureWindow,
    PendingLogin, PollOutcome, ReplicaRecord, SessionRecord, SsoSession, UserRecord, UserSource,
};
pub use sled_store::restore_from;

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
    /// The user is disabled: nothing may be issued to them.
    #[error("the user `{0}` is disabled")]
    Disabled(String),
    /// The change would leave no enabled server_admin.
    #[error("`{0}` is the last enabled server_admin")]
    LastAdmin(String),
    /// A backup goes into a new or empty folder only.
    #[error("{} is not empty: back up into a new folder", .0.display())]
    TargetNotEmpty(PathBuf),
    /// The folder to restore from is not a backup of the store.
    #[error("{} is not a backup made by `coder-server backup`", .0.display())]
    NotABackup(PathBuf),
    #[error("a stored record cannot be read")]
    Corrupt(#[from] serde_json::Error),
    #[error("a stored key of {0} cannot be read")]
    CorruptKey(&'static str),
    /// The database refused or failed (PostgreSQL).
    #[error("the database failed")]
    Postgres(#[from] tokio_postgres::Error),
    /// No connection to the database within the wait (PostgreSQL).
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    /// `--database-url` cannot be used; the message never holds the password.
    #[error("invalid database URL: {0}")]
    InvalidUrl(String),
    /// The database was migrated by a newer binary.
    #[error(
        "the database schema is version {found}, newer than this binary's {supported}: run a binary at least as new as the one that migrated it"
    )]
    NewerSchema { found: i32, supported: i32 },
    /// `migrate-store` copies into an empty database only.
    #[error("the database already holds {0}: migrate-store copies into an empty database only")]
    TargetNotEmptyDatabase(String),
    /// An operation only the other backend has.
    #[error("{0}")]
    Unsupported(&'static str),
}

/// Why sled has no shared failure counters.
const SHARED_COUNTERS: &str = "failed-password counters are kept in the store with PostgreSQL only";

/// What a store (or a backup of one) holds, for the backup and restore commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct StoreSummary {
    pub users: usize,
    pub api_keys: usize,
    pub audit_events: usize,
}

/// What `migrate-store` copies: users (with their access), SSO identities (issuer, sub,
/// username), API keys by their hashes (so keys keep working), audit events.
#[derive(Debug, Default)]
pub struct StoreExport {
    pub users: Vec<UserRecord>,
    pub identities: Vec<(String, String, String)>,
    pub api_keys: Vec<(Vec<u8>, ApiKeyRecord)>,
    pub audit: Vec<AuditEvent>,
}

/// The store: a backend behind one interface. Cloning it is one reference count.
#[derive(Clone)]
pub struct Store {
    backend: Backend,
}

#[derive(Clone)]
enum Backend {
    Sled(sled_store::SledStore),
    Postgres(pg::PgStore),
}

impl Store {
    /// Opens (or creates) the sled store in `dir`. Blocking.
    ///
    /// Fails when the folder cannot be created or another process holds the store's lock.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        Ok(Store {
            backend: Backend::Sled(sled_store::SledStore::open(dir)?),
        })
    }

    /// Connects to the PostgreSQL database at `url`, migrating its schema, and listens for
    /// other replicas' changes. Needs a Tokio runtime.
    ///
    /// Fails when the database cannot be reached or migrated, or its schema is newer than this
    /// binary's.
    pub async fn connect(url: &DatabaseUrl) -> Result<Store, StoreError> {
        Ok(Store {
            backend: Backend::Postgres(pg::PgStore::connect(url).await?),
        })
    }

    /// [`Store::connect`] for a command that runs a few operations and exits: no listener.
    ///
    /// Fails as [`Store::connect`] does.
    pub async fn connect_once(url: &DatabaseUrl) -> Result<Store, StoreError> {
        Ok(Store {
            backend: Backend::Postgres(pg::PgStore::connect_without_listening(url).await?),
        })
    }

    /// Whether the store can serve requests now: always for sled; for PostgreSQL, when the
    /// database answers and other replicas' changes reach this one.
    pub async fn ready(&self) -> bool {
        match &self.backend {
            Backend::Sled(_) => true,
            Backend::Postgres(p) => p.ready().await,
        }
    }

    /// Applies the embedded schema migrations to the PostgreSQL database at `url`, without
    /// serving (`coder-server migrate-db`).
    ///
    /// Fails as [`Store::connect`] does.
    pub async fn migrate_db(url: &DatabaseUrl) -> Result<Migrated, StoreError> {
        pg::PgStore::migrate_only(url).await
    }

    /// What `migrate-store` copies out of this (sled) store. Blocking.
    ///
    /// Fails on a PostgreSQL store, or when a record cannot be read.
    pub fn export(&self) -> Result<StoreExport, StoreError> {
        match &self.backend {
            Backend::Sled(s) => s.export(),
            Backend::Postgres(_) => Err(StoreError::Unsupported(
                "migrate-store copies from a sled store",
            )),
        }
    }

    /// Copies `export` into this (PostgreSQL) store, in one transaction: all or nothing.
    ///
    /// Fails with [`StoreError::TargetNotEmptyDatabase`] when the database already holds users,
    /// keys or audit events, and on a sled store.
    pub async fn import(&self, export: &StoreExport) -> Result<StoreSummary, StoreError> {
        match &self.backend {
            Backend::Sled(_) => Err(StoreError::Unsupported(
                "migrate-store copies into a PostgreSQL database",
            )),
            Backend::Postgres(p) => p.import(export).await,
        }
    }

    /// Whether records live in a database shared by several replicas.
    pub fn is_shared(&self) -> bool {
        matches!(self.backend, Backend::Postgres(_))
    }

    /// Copies the whole sled store into a new sled database in `dir` (see
    /// [`sled_store::SledStore::backup_to`]). Blocking.
    ///
    /// Fails when `dir` is not empty or cannot be written.
    pub fn backup_to(&self, dir: &Path) -> Result<StoreSummary, StoreError> {
        match &self.backend {
            Backend::Sled(s) => s.backup_to(dir),
            Backend::Postgres(_) => Err(StoreError::Unsupported(
                "back up a PostgreSQL store with pg_dump",
            )),
        }
    }

    /// Appends an event (not flushed: it is written with the change it records, or within the
    /// next flush).
    pub async fn record_audit(&self, event: &AuditEvent) -> Result<u64, StoreError> {
        match &self.backend {
            Backend::Sled(s) => s.record_audit(event),
            Backend::Postgres(p) => p.record_audit(event).await,
        }
    }

    /// Up to `limit` events older than `before` (newest first), those of `kind` only when given.
    pub async fn audit_events(
        &self,
        before: Option<u64>,
        limit: usize,
        kind: Option<&str>,
    ) -> Result<Vec<AuditEvent>, StoreError> {
        match &self.backend {
            Backend::Sled(s) => s.audit_events(before, limit, kind),
            Backend::Postgres(p) => p.audit_events(before, limit, kind).await,
        }
    }

    /// Drops events recorded before `cutoff_rfc3339` and beyond the newest `max_events`;
    /// returns how many.
    pub async fn sweep_audit(
        &self,
        cutoff_rfc3339: &str,
        max_events: usize,
    ) -> Result<usize, StoreError> {
        match &self.backend {
            Backend::Sled(s) => s.sweep_audit(cutoff_rfc3339, max_events),
            Backend::Postgres(p) => p.sweep_audit(cutoff_rfc3339, max_events).await,
        }
    }

    /// Stores a new device login; false (nothing written) when its user code is already used
    /// by a live code.
    pub async fn create_device_code(
        &self,
        device_hash: &[u8],
        record: &DeviceRecord,
    ) -> Result<bool, StoreError> {
        match &self.backend {
            Backend::Sled(s) => s.create_device_code(device_hash, record),
            Backend::Postgres(p) => p.create_device_code(device_hash, record).await,
        }
    }

    /// The device login stored under `device_hash`.
    pub async fn device_code(
        &self,
        device_hash: &[u8],
    ) -> Result<Option<DeviceRecord>, StoreError> {
        match &self.backend {
            Backend::Sled(s) => s.device_code(device_hash),
            Backend::Postgres(p) => p.device_code(device_hash).await,
        }
    }

    /// The live device login whose (normalised) user code is `user_code`, with its hash.
    pub async fn device_by_user_code(
        &self,
        user_code: &str,
        now_unix: u64,
    ) -> Result<Option<(Vec<u8>, DeviceRecord)>, StoreError> {
        match &self.backend {
            Backend::Sled(s) => s.device_by_user_code(user_code, now_unix),
            Backend::Postgres(p) => p.device_by_user_code(user_code, now_unix).await,
        }
    }

    /// Changes a device login with `change` when `allowed` holds for it; answers the record
    /// after the change, or `None` (nothing written) when it is gone or `allowed` refused.
    pub async fn update_device(
        &self,
        device_hash: &[u8],
        allowed: impl Fn(&DeviceRecord) -> bool + Send + Sync,
        change: impl Fn(&mut DeviceRecord) + Send + Sync,
    ) -> Result<Option<DeviceRecord>, StoreError> {
        match &self.backend {
            Backend::Sled(s) => s.update_device(device_hash, allowed, change),
            Backend::Postgres(p) => p.update_device(device_hash, allowed, change).await,
        }
    }

    /// One poll of a device code at `now_ms`. When the code is approved, stores `key` (under
    /// `key_hash`, owned by the approving user) and marks the code spent, in one transaction.
    pub async fn poll_device(
        &self,
        device_hash: &[u8],
        now_ms: u64,
        key_hash: &[u8],
        key: &ApiKeyRecord,
    ) -> Result<PollOutcome, StoreError> {
        match &self.backend {
            Backend::Sled(s) => s.poll_device(device_hash, now_ms, key_hash, key),
            Backend::Postgres(p) => p.poll_device(device_hash, now_ms, key_hash, key).await,
        }
    }

    /// Removes device logins expired at `now_unix` and their user codes; returns how many.
    pub async fn sweep_device_codes(&self, now_unix: u64) -> Result<usize, StoreError> {
        match &self.backend {
            Backend::Sled(s) => s.sweep_device_codes(now_unix),
            Backend::Postgres(p) => p.sweep_device_codes(now_unix).await,
        }
    }

    /// The username linked to (issuer, sub).
    pub async fn identity(&self, issuer: &str, sub: &str) -> Result<Option<String>, StoreError> {
        match &self.backend {
            Backend::Sled(s) => s.identity(issuer, sub),
            Backend::Postgres(p) => p.identity(issuer, sub).await,
        }
    }

    /// Users with an SSO identity at `issuer`.
    pub async fn users_with_identity_at(
        &self,
        issuer: &str,
    ) -> Result<std::collections::BTreeSet<String>, StoreError> {
        match &self.backend {
            Backend::Sled(s) => s.users_with_identity_at(issuer),
            Backend::Postgres(p) => p.users_with_identity_at(issuer).await,
        }
    }

    /// Links (issuer, sub) to the existing user `username`. Fails with
    /// [`StoreError::Conflict`] when the identity is already linked to someone.
    pub async fn link_identity(
        &self,
        issuer: &str,
        sub: &str,
        username: &str,
    ) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Sled(s) => s.link_identity(issuer, sub, username),
            Backend::Postgres(p) => p.link_identity(issuer, sub, username).await,
        }
    }

    /// Creates `user` (under the first free name among `usernames`) linked to (issuer, sub), in
    /// one transaction. Returns the user as stored. Fails with [`StoreError::Conflict`] when the
    /// identity is linked or the email taken meanwhile, or no candidate name is free.
    pub async fn provision_user(
        &self,
        user: &UserRecord,
        usernames: &[String],
        issuer: &str,
        sub: &str,
    ) -> Result<UserRecord, StoreError> {
        match &self.backend {
            Backend::Sled(s) => s.provision_user(user, usernames, issuer, sub),
            Backend::Postgres(p) => p.provision_user(user, usernames, issuer, sub).await,
        }
    }

    /// Stores a pending login under the SHA-256 of its `state`.
    pub async fn create_pending_login(
        &self,
        state_hash: &[u8],
        login: &PendingLogin,
    ) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Sled(s) => s.create_pending_login(state_hash, login),
            Backend::Postgres(p) => p.create_pending_login(state_hash, login).await,
        }
    }

    /// Removes and returns the pending login of a state: a state works once. An expired one is
    /// removed and not returned.
    pub async fn take_pending_login(
        &self,
        state_hash: &[u8],
        now_unix: u64,
    ) -> Result<Option<PendingLogin>, StoreError> {
        match &self.backend {
            Backend::Sled(s) => s.take_pending_login(state_hash, now_unix),
            Backend::Postgres(p) => p.take_pending_login(state_hash, now_unix).await,
        }
    }

    /// Removes pending logins expired at `now_unix`; returns how many.
    pub async fn sweep_pending_logins(&self, now_unix: u64) -> Result<usize, StoreError> {
        match &self.backend {
            Backend::Sled(s) => s.sweep_pending_logins(now_unix),
            Backend::Postgres(p) => p.sweep_pending_logins(now_unix).await,
        }
    }

    /// Stores a new key under the SHA-256 `hash` of its secret.
    ///
    /// Fails with [`StoreError::Disabled`] when the owner is disabled: checked under the write
    /// gate, so a key cannot slip in between disabling a user and revoking their keys.
    pub async fn create_api_key(
        &self,
        hash: &[u8],
        record: &ApiKeyRecord,
    ) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Sled(s) => s.create_api_key(hash, record),
            Backend::Postgres(p) => p.create_api_key(hash, record).await,
        }
    }

    /// The key whose secret hashes to `hash`.
    pub async fn api_key_by_hash(&self, hash: &[u8]) -> Result<Option<ApiKeyRecord>, StoreError> {
        match &self.backend {
            Backend::Sled(s) => s.api_key_by_hash(hash),
            Backend::Postgres(p) => p.api_key_by_hash(hash).await,
        }
    }

    /// A user's keys, ordered by id.
    pub async fn api_keys_of(&self, username: &str) -> Result<Vec<ApiKeyRecord>, StoreError> {
        match &self.backend {
            Backend::Sled(s) => s.api_keys_of(username),
            Backend::Postgres(p) => p.api_keys_of(username).await,
        }
    }

    /// A user's keys with the hash each is stored under, ordered by id.
    pub async fn api_keys_with_hashes_of(
        &self,
        username: &str,
    ) -> Result<Vec<(Vec<u8>, ApiKeyRecord)>, StoreError> {
        match &self.backend {
            Backend::Sled(s) => s.api_keys_with_hashes_of(username),
            Backend::Postgres(p) => p.api_keys_with_hashes_of(username).await,
        }
    }

    /// Revokes `username`'s key `id`; false when there is no such key of that user.
    pub async fn delete_api_key(&self, username: &str, id: &str) -> Result<bool, StoreError> {
        match &self.backend {
            Backend::Sled(s) => s.delete_api_key(username, id),
            Backend::Postgres(p) => p.delete_api_key(username, id).await,
        }
    }

    /// Revokes every key of `username`; returns how many there were.
    pub async fn delete_api_keys_of(&self, username: &str) -> Result<usize, StoreError> {
        match &self.backend {
            Backend::Sled(s) => s.delete_api_keys_of(username),
            Backend::Postgres(p) => p.delete_api_keys_of(username).await,
        }
    }

    /// Records the last use of keys (hash, unix seconds), skipping keys revoked meanwhile.
    pub async fn record_api_key_uses(&self, uses: &[(Vec<u8>, u64)]) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Sled(s) => s.record_api_key_uses(uses),
            Backend::Postgres(p) => p.record_api_key_uses(uses).await,
        }
    }

    // Replicas.

    /// Records a replica's heartbeat (inserted or replaced by its id).
    pub async fn record_replica(&self, replica: &ReplicaRecord) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Sled(s) => s.record_replica(replica),
            Backend::Postgres(p) => p.record_replica(replica).await,
        }
    }

    /// Removes a replica's heartbeat (it stops).
    pub async fn remove_replica(&self, id: &str) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Sled(s) => s.remove_replica(id),
            Backend::Postgres(p) => p.remove_replica(id).await,
        }
    }

    /// The replicas whose last heartbeat is at or after `seen_since` (unix seconds), by id.
    pub async fn replicas(&self, seen_since: u64) -> Result<Vec<ReplicaRecord>, StoreError> {
        match &self.backend {
            Backend::Sled(s) => s.replicas(seen_since),
            Backend::Postgres(p) => p.replicas(seen_since).await,
        }
    }

    // Failed password logins (PostgreSQL: one daemon keeps them in memory, see
    // `crate::auth::ratelimit`).

    /// The failures of `key` in its live window at `now_unix`, if any.
    ///
    /// Fails with [`StoreError::Unsupported`] on sled.
    pub async fn password_failures(
        &self,
        key: &str,
        now_unix: u64,
    ) -> Result<Option<FailureWindow>, StoreError> {
        match &self.backend {
            Backend::Sled(_) => Err(StoreError::Unsupported(SHARED_COUNTERS)),
            Backend::Postgres(p) => p.password_failures(key, now_unix).await,
        }
    }

    /// Counts a failure of `key`: in its live window, or in a new one of `window_secs` from
    /// `now_unix`. Concurrent failures on several replicas each count once.
    ///
    /// Fails with [`StoreError::Unsupported`] on sled.
    pub async fn record_password_failure(
        &self,
        key: &str,
        now_unix: u64,
        window_secs: u64,
    ) -> Result<FailureWindow, StoreError> {
        match &self.backend {
            Backend::Sled(_) => Err(StoreError::Unsupported(SHARED_COUNTERS)),
            Backend::Postgres(p) => p.record_password_failure(key, now_unix, window_secs).await,
        }
    }

    /// Forgets the failures of `key` (a successful login).
    ///
    /// Fails with [`StoreError::Unsupported`] on sled.
    pub async fn clear_password_failures(&self, key: &str) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Sled(_) => Err(StoreError::Unsupported(SHARED_COUNTERS)),
            Backend::Postgres(p) => p.clear_password_failures(key).await,
        }
    }

    /// The auth epoch: changes whenever a user changes or a key is revoked.
    pub fn auth_epoch(&self) -> u64 {
        match &self.backend {
            Backend::Sled(s) => s.auth_epoch(),
            Backend::Postgres(p) => p.auth_epoch(),
        }
    }

    /// Writes every change made so far to disk; a change is durable once this returns.
    /// Concurrent callers share flushes (group commit): a caller whose writes were covered by a
    /// flush that started after them returns without another one.
    ///
    /// Fails when the disk refuses the write.
    pub async fn flush(&self) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Sled(s) => s.flush().await,
            Backend::Postgres(p) => p.flush().await,
        }
    }

    /// How many users, API keys and audit events the store holds.
    pub async fn summary(&self) -> Result<StoreSummary, StoreError> {
        match &self.backend {
            Backend::Sled(s) => Ok(s.summary()),
            Backend::Postgres(p) => p.summary().await,
        }
    }

    /// Stores a new session under the SHA-256 `hash` of its id.
    pub async fn create_session(
        &self,
        hash: &[u8],
        session: &SessionRecord,
    ) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Sled(s) => s.create_session(hash, session),
            Backend::Postgres(p) => p.create_session(hash, session).await,
        }
    }

    /// The live session whose id hashes to `hash`; an expired one is removed and not returned.
    pub async fn session(
        &self,
        hash: &[u8],
        now_unix: u64,
    ) -> Result<Option<SessionRecord>, StoreError> {
        match &self.backend {
            Backend::Sled(s) => s.session(hash, now_unix),
            Backend::Postgres(p) => p.session(hash, now_unix).await,
        }
    }

    /// Ends a session.
    pub async fn delete_session(&self, hash: &[u8]) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Sled(s) => s.delete_session(hash),
            Backend::Postgres(p) => p.delete_session(hash).await,
        }
    }

    /// Ends every session of `username` (a disabled user, a password reset).
    pub async fn delete_sessions_of(&self, username: &str) -> Result<usize, StoreError> {
        match &self.backend {
            Backend::Sled(s) => s.delete_sessions_of(username),
            Backend::Postgres(p) => p.delete_sessions_of(username).await,
        }
    }

    /// Ends the sessions made by the SSO login whose provider session is `sid` at `issuer`
    /// (back-channel logout); answers their users (one entry per session).
    pub async fn delete_sessions_of_sid(
        &self,
        issuer: &str,
        sid: &str,
    ) -> Result<Vec<String>, StoreError> {
        match &self.backend {
            Backend::Sled(s) => s.delete_sessions_of_sid(issuer, sid),
            Backend::Postgres(p) => p.delete_sessions_of_sid(issuer, sid).await,
        }
    }

    /// Records the use of a logout token's `jti` (`key`: issuer and jti), kept until
    /// `expires_unix`; false when it was used before, on any replica.
    pub async fn use_logout_jti(&self, key: &str, expires_unix: u64) -> Result<bool, StoreError> {
        match &self.backend {
            Backend::Sled(s) => s.use_logout_jti(key, expires_unix),
            Backend::Postgres(p) => p.use_logout_jti(key, expires_unix).await,
        }
    }

    /// Removes every record kind's expired records at `now_unix`; returns how many.
    pub async fn sweep_expired(&self, now_unix: u64) -> Result<usize, StoreError> {
        match &self.backend {
            Backend::Sled(s) => s.sweep_expired(now_unix),
            Backend::Postgres(p) => p.sweep_expired(now_unix).await,
        }
    }

    /// Removes sessions expired at `now_unix`; returns how many.
    pub async fn sweep_expired_sessions(&self, now_unix: u64) -> Result<usize, StoreError> {
        match &self.backend {
            Backend::Sled(s) => s.sweep_expired_sessions(now_unix),
            Backend::Postgres(p) => p.sweep_expired_sessions(now_unix).await,
        }
    }

    /// Creates a user. Fails with [`StoreError::Conflict`] when the username or the email
    /// (case-insensitively) is taken.
    pub async fn create_user(&self, user: &UserRecord) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Sled(s) => s.create_user(user),
            Backend::Postgres(p) => p.create_user(user).await,
        }
    }

    /// The user named `username`.
    pub async fn user(&self, username: &str) -> Result<Option<UserRecord>, StoreError> {
        match &self.backend {
            Backend::Sled(s) => s.user(username),
            Backend::Postgres(p) => p.user(username).await,
        }
    }

    /// The user whose email is `email`, compared case-insensitively.
    pub async fn user_by_email(&self, email: &str) -> Result<Option<UserRecord>, StoreError> {
        match &self.backend {
            Backend::Sled(s) => s.user_by_email(email),
            Backend::Postgres(p) => p.user_by_email(email).await,
        }
    }

    /// Every user, ordered by username.
    pub async fn users(&self) -> Result<Vec<UserRecord>, StoreError> {
        match &self.backend {
            Backend::Sled(s) => s.users(),
            Backend::Postgres(p) => p.users().await,
        }
    }

    /// How many users exist.
    pub async fn user_count(&self) -> Result<usize, StoreError> {
        match &self.backend {
            Backend::Sled(s) => Ok(s.user_count()),
            Backend::Postgres(p) => p.user_count().await,
        }
    }

    /// Changes a user with `change` and stores it, keeping the email index consistent. Returns
    /// the changed user, `None` when there is no such user.
    ///
    /// The store keeps one rule itself: a change that would leave no enabled server_admin fails
    /// with [`StoreError::LastAdmin`]. The check and the write happen under the write gate that
    /// every write takes, so two concurrent demotions of the last two admins cannot both pass.
    ///
    /// Fails with [`StoreError::Conflict`] when the new email is taken.
    pub async fn update_user(
        &self,
        username: &str,
        change: impl Fn(&mut UserRecord) + Send + Sync,
    ) -> Result<Option<UserRecord>, StoreError> {
        match &self.backend {
            Backend::Sled(s) => s.update_user(username, change),
            Backend::Postgres(p) => p.update_user(username, change).await,
        }
    }
}

#[cfg(test)]
pub(crate) fn test_store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("store")).unwrap();
    (dir, store)
}
