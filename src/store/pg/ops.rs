//! The store's operations in SQL, with the same results and errors as the sled backend (the
//! store contract tests run on both). Rules that need a transaction:
//!
//! - unique username, email (lower-cased) and identity: unique constraints, mapped to
//!   [`StoreError::Conflict`];
//! - the last enabled server_admin: a change that demotes or disables one takes an advisory
//!   transaction lock and counts the others, so two concurrent demotions cannot both pass;
//! - no key for a disabled user: the key's insert locks the owner's row (`FOR SHARE`) against a
//!   concurrent disable (`FOR UPDATE`);
//! - one key per device code: the poll locks the code's row (`FOR UPDATE`);
//! - single-use logins: `DELETE ... RETURNING`.
//!
//! Changes that can take access away notify the other replicas in their own transaction.

use std::collections::BTreeSet;

use tokio_postgres::error::SqlState;
use tokio_postgres::types::Json;

use super::{AUTH_CHANNEL, PgStore};
use crate::store::records::{
    ApiKeyRecord, AuditEvent, DeviceRecord, DeviceStatus, EXPIRED_KEPT_SECS, PendingLogin,
    PollOutcome, PollStep, REPLICA_KEPT_SECS, SessionRecord, UserRecord,
};
use crate::store::{StoreError, StoreExport, StoreSummary};

/// The advisory lock key of changes that may remove a server_admin ("cfsso-ad").
const ADMIN_LOCK: i64 = 0x6366_7373_6f2d_6164;

/// Unix seconds as the database keeps them.
pub(super) fn int(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn email_key(email: &str) -> String {
    email.trim().to_lowercase()
}

/// The conflict a unique violation means, by its constraint.
fn conflict(e: impl Into<StoreError>) -> StoreError {
    let e = match e.into() {
        StoreError::Postgres(e) => e,
        other => return other,
    };
    let Some(db) = e.as_db_error() else {
        return StoreError::Postgres(e);
    };
    if db.code() == &SqlState::UNIQUE_VIOLATION {
        match db.constraint() {
            Some("users_pkey") => StoreError::Conflict("username"),
            Some("users_email_key_key") => StoreError::Conflict("email"),
            Some("identities_pkey") => StoreError::Conflict("identity"),
            _ => StoreError::Postgres(e),
        }
    } else if db.code() == &SqlState::FOREIGN_KEY_VIOLATION {
        StoreError::Conflict("username")
    } else {
        StoreError::Postgres(e)
    }
}

impl PgStore {
    // Users.

    pub(crate) async fn create_user(&self, user: &UserRecord) -> Result<(), StoreError> {
        self.execute("INSERT INTO users (username, email_key, enabled_admin, record) VALUES ($1, $2, $3, $4)", &[
                    &user.username,
                    &email_key(&user.email),
                    &user.is_enabled_server_admin(),
                    &Json(user),
                ])
            .await
            .map_err(conflict)?;
        Ok(())
    }

    pub(crate) async fn user(&self, username: &str) -> Result<Option<UserRecord>, StoreError> {
        let row = self
            .query_opt("SELECT record FROM users WHERE username = $1", &[&username])
            .await?;
        Ok(row.map(|r| r.get::<_, Json<UserRecord>>(0).0))
    }

    pub(crate) async fn user_by_email(
        &self,
        email: &str,
    ) -> Result<Option<UserRecord>, StoreError> {
        let row = self
            .query_opt(
                "SELECT record FROM users WHERE email_key = $1",
                &[&email_key(email)],
            )
            .await?;
        Ok(row.map(|r| r.get::<_, Json<UserRecord>>(0).0))
    }

    pub(crate) async fn users(&self) -> Result<Vec<UserRecord>, StoreError> {
        let rows = self
            .query(
                "SELECT record FROM users ORDER BY username COLLATE \"C\"",
                &[],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| r.get::<_, Json<UserRecord>>(0).0)
            .collect())
    }

    pub(crate) async fn user_count(&self) -> Result<usize, StoreError> {
        let count: i64 = self
            .query_one("SELECT count(*) FROM users", &[])
            .await?
            .get(0);
        Ok(usize::try_from(count).unwrap_or(0))
    }

    pub(crate) async fn update_user(
        &self,
        username: &str,
        change: impl Fn(&mut UserRecord) + Send + Sync,
    ) -> Result<Option<UserRecord>, StoreError> {
        self.bump_auth_epoch();
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let Some(row) = tx
            .query_opt(
                &tx.prepare_cached("SELECT record FROM users WHERE username = $1 FOR UPDATE")
                    .await?,
                &[&username],
            )
            .await?
        else {
            return Ok(None);
        };
        let old = row.get::<_, Json<UserRecord>>(0).0;
        let mut new = old.clone();
        change(&mut new);
        new.username.clone_from(&old.username);
        if old.is_enabled_server_admin() && !new.is_enabled_server_admin() {
            tx.execute(
                &tx.prepare_cached("SELECT pg_advisory_xact_lock($1)")
                    .await?,
                &[&ADMIN_LOCK],
            )
            .await?;
            let others: i64 = tx
                .query_one(
                    &tx.prepare_cached(
                        "SELECT count(*) FROM users WHERE enabled_admin AND username <> $1",
                    )
                    .await?,
                    &[&username],
                )
                .await?
                .get(0);
            if others == 0 {
                return Err(StoreError::LastAdmin(username.to_owned()));
            }
        }
        tx.execute(
            &tx.prepare_cached("UPDATE users SET email_key = $2, enabled_admin = $3, record = $4 WHERE username = $1").await?,
            &[
                &username,
                &email_key(&new.email),
                &new.is_enabled_server_admin(),
                &Json(&new),
            ],
        )
        .await
        .map_err(conflict)?;
        notify(&tx).await?;
        tx.commit().await?;
        // Again after the write: a lookup between the two bumps cached the old record.
        self.bump_auth_epoch();
        Ok(Some(new))
    }

    // Identities and pending logins.

    pub(crate) async fn identity(
        &self,
        issuer: &str,
        sub: &str,
    ) -> Result<Option<String>, StoreError> {
        let row = self
            .query_opt(
                "SELECT username FROM identities WHERE issuer = $1 AND sub = $2",
                &[&issuer, &sub],
            )
            .await?;
        Ok(row.map(|r| r.get(0)))
    }

    pub(crate) async fn users_with_identity_at(
        &self,
        issuer: &str,
    ) -> Result<BTreeSet<String>, StoreError> {
        let rows = self
            .query(
                "SELECT username FROM identities WHERE issuer = $1",
                &[&issuer],
            )
            .await?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    pub(crate) async fn link_identity(
        &self,
        issuer: &str,
        sub: &str,
        username: &str,
    ) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO identities (issuer, sub, username) VALUES ($1, $2, $3)",
            &[&issuer, &sub, &username],
        )
        .await
        .map_err(conflict)?;
        Ok(())
    }

    pub(crate) async fn provision_user(
        &self,
        user: &UserRecord,
        usernames: &[String],
        issuer: &str,
        sub: &str,
    ) -> Result<UserRecord, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let taken: BTreeSet<String> = tx
            .query(
                &tx.prepare_cached("SELECT username FROM users WHERE username = ANY($1)")
                    .await?,
                &[&usernames],
            )
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let Some(name) = usernames.iter().find(|n| !taken.contains(*n)) else {
            return Err(StoreError::Conflict("username"));
        };
        let mut record = user.clone();
        record.username.clone_from(name);
        // The identity first: a concurrent first login of the same person is told so.
        let linked = tx
            .query_opt(
                &tx.prepare_cached("SELECT 1 FROM identities WHERE issuer = $1 AND sub = $2")
                    .await?,
                &[&issuer, &sub],
            )
            .await?;
        if linked.is_some() {
            return Err(StoreError::Conflict("identity"));
        }
        tx.execute(
            &tx.prepare_cached("INSERT INTO users (username, email_key, enabled_admin, record) VALUES ($1, $2, $3, $4)").await?,
            &[
                &record.username,
                &email_key(&record.email),
                &record.is_enabled_server_admin(),
                &Json(&record),
            ],
        )
        .await
        .map_err(conflict)?;
        tx.execute(
            &tx.prepare_cached(
                "INSERT INTO identities (issuer, sub, username) VALUES ($1, $2, $3)",
            )
            .await?,
            &[&issuer, &sub, &record.username],
        )
        .await
        .map_err(conflict)?;
        tx.commit().await.map_err(conflict)?;
        Ok(record)
    }

    pub(crate) async fn create_pending_login(
        &self,
        state_hash: &[u8],
        login: &PendingLogin,
    ) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO pending_logins (state_hash, expires_unix, record) VALUES ($1, $2, $3)",
            &[&state_hash, &int(login.expires_unix), &Json(login)],
        )
        .await?;
        Ok(())
    }

    pub(crate) async fn take_pending_login(
        &self,
        state_hash: &[u8],
        now_unix: u64,
    ) -> Result<Option<PendingLogin>, StoreError> {
        let row = self
            .query_opt(
                "DELETE FROM pending_logins WHERE state_hash = $1 RETURNING record",
                &[&state_hash],
            )
            .await?;
        Ok(row
            .map(|r| r.get::<_, Json<PendingLogin>>(0).0)
            .filter(|login| login.expires_unix > now_unix))
    }

    pub(crate) async fn sweep_pending_logins(&self, now_unix: u64) -> Result<usize, StoreError> {
        let removed = self
            .execute(
                "DELETE FROM pending_logins WHERE expires_unix <= $1",
                &[&int(now_unix)],
            )
            .await?;
        Ok(removed as usize)
    }

    // API keys.

    pub(crate) async fn create_api_key(
        &self,
        hash: &[u8],
        record: &ApiKeyRecord,
    ) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let owner = tx
            .query_opt(
                &tx.prepare_cached("SELECT record FROM users WHERE username = $1 FOR SHARE")
                    .await?,
                &[&record.username],
            )
            .await?;
        if owner.is_some_and(|r| r.get::<_, Json<UserRecord>>(0).0.disabled) {
            return Err(StoreError::Disabled(record.username.clone()));
        }
        insert_key(&tx, hash, record).await?;
        tx.commit().await?;
        Ok(())
    }

    pub(crate) async fn api_key_by_hash(
        &self,
        hash: &[u8],
    ) -> Result<Option<ApiKeyRecord>, StoreError> {
        let row = self
            .query_opt(
                "SELECT record, last_used_unix FROM api_keys WHERE hash = $1",
                &[&hash],
            )
            .await?;
        Ok(row.map(|r| key_of(&r, 0)))
    }

    pub(crate) async fn api_keys_of(
        &self,
        username: &str,
    ) -> Result<Vec<ApiKeyRecord>, StoreError> {
        Ok(self
            .api_keys_with_hashes_of(username)
            .await?
            .into_iter()
            .map(|(_, key)| key)
            .collect())
    }

    pub(crate) async fn api_keys_with_hashes_of(
        &self,
        username: &str,
    ) -> Result<Vec<(Vec<u8>, ApiKeyRecord)>, StoreError> {
        let rows = self
            .query(
                "SELECT hash, record, last_used_unix FROM api_keys WHERE username = $1
                 ORDER BY id COLLATE \"C\"",
                &[&username],
            )
            .await?;
        Ok(rows.iter().map(|r| (r.get(0), key_of(r, 1))).collect())
    }

    pub(crate) async fn delete_api_key(
        &self,
        username: &str,
        id: &str,
    ) -> Result<bool, StoreError> {
        self.bump_auth_epoch();
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let removed = tx
            .execute(
                &tx.prepare_cached("DELETE FROM api_keys WHERE username = $1 AND id = $2")
                    .await?,
                &[&username, &id],
            )
            .await?;
        if removed > 0 {
            notify(&tx).await?;
        }
        tx.commit().await?;
        self.bump_auth_epoch();
        Ok(removed > 0)
    }

    pub(crate) async fn delete_api_keys_of(&self, username: &str) -> Result<usize, StoreError> {
        self.bump_auth_epoch();
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let removed = tx
            .execute(
                &tx.prepare_cached("DELETE FROM api_keys WHERE username = $1")
                    .await?,
                &[&username],
            )
            .await?;
        if removed > 0 {
            notify(&tx).await?;
        }
        tx.commit().await?;
        self.bump_auth_epoch();
        Ok(removed as usize)
    }

    pub(crate) async fn record_api_key_uses(
        &self,
        uses: &[(Vec<u8>, u64)],
    ) -> Result<(), StoreError> {
        if uses.is_empty() {
            return Ok(());
        }
        let hashes: Vec<&[u8]> = uses.iter().map(|(h, _)| h.as_slice()).collect();
        let times: Vec<i64> = uses.iter().map(|(_, t)| int(*t)).collect();
        self.execute(
            "UPDATE api_keys AS k
                 SET last_used_unix = greatest(coalesce(k.last_used_unix, 0), u.unix)
                 FROM unnest($1::bytea[], $2::bigint[]) AS u(hash, unix)
                 WHERE k.hash = u.hash",
            &[&hashes, &times],
        )
        .await?;
        Ok(())
    }

    // Sessions.

    pub(crate) async fn create_session(
        &self,
        hash: &[u8],
        session: &SessionRecord,
    ) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO sessions (hash, username, expires_unix, record) VALUES ($1, $2, $3, $4)",
            &[
                &hash,
                &session.username,
                &int(session.expires_unix),
                &Json(session),
            ],
        )
        .await?;
        Ok(())
    }

    pub(crate) async fn session(
        &self,
        hash: &[u8],
        now_unix: u64,
    ) -> Result<Option<SessionRecord>, StoreError> {
        let row = self
            .query_opt(
                "SELECT record FROM sessions WHERE hash = $1 AND expires_unix > $2",
                &[&hash, &int(now_unix)],
            )
            .await?;
        Ok(row.map(|r| r.get::<_, Json<SessionRecord>>(0).0))
    }

    pub(crate) async fn delete_session(&self, hash: &[u8]) -> Result<(), StoreError> {
        self.execute("DELETE FROM sessions WHERE hash = $1", &[&hash])
            .await?;
        Ok(())
    }

    pub(crate) async fn delete_sessions_of(&self, username: &str) -> Result<usize, StoreError> {
        let removed = self
            .execute("DELETE FROM sessions WHERE username = $1", &[&username])
            .await?;
        Ok(removed as usize)
    }

    pub(crate) async fn sweep_expired(&self, now_unix: u64) -> Result<usize, StoreError> {
        Ok(self.sweep_expired_sessions(now_unix).await?
            + self.sweep_pending_logins(now_unix).await?
            + self.sweep_device_codes(now_unix).await?
            + self
                .sweep_replicas(now_unix.saturating_sub(REPLICA_KEPT_SECS))
                .await?
            + self.sweep_password_failures(now_unix).await?
            + self.sweep_logout_jtis(now_unix).await?)
    }

    pub(crate) async fn sweep_expired_sessions(&self, now_unix: u64) -> Result<usize, StoreError> {
        let removed = self
            .execute(
                "DELETE FROM sessions WHERE expires_unix <= $1",
                &[&int(now_unix)],
            )
            .await?;
        Ok(removed as usize)
    }

    // Device logins.

    pub(crate) async fn create_device_code(
        &self,
        device_hash: &[u8],
        record: &DeviceRecord,
    ) -> Result<bool, StoreError> {
        let inserted = self
            .execute(
                "INSERT INTO device_codes (hash, user_code, expires_unix, record)
                 VALUES ($1, $2, $3, $4) ON CONFLICT (user_code) DO NOTHING",
                &[
                    &device_hash,
                    &record.user_code,
                    &int(record.expires_unix),
                    &Json(record),
                ],
            )
            .await?;
        Ok(inserted == 1)
    }

    pub(crate) async fn device_code(
        &self,
        device_hash: &[u8],
    ) -> Result<Option<DeviceRecord>, StoreError> {
        let row = self
            .query_opt(
                "SELECT record FROM device_codes WHERE hash = $1",
                &[&device_hash],
            )
            .await?;
        Ok(row.map(|r| r.get::<_, Json<DeviceRecord>>(0).0))
    }

    pub(crate) async fn device_by_user_code(
        &self,
        user_code: &str,
        now_unix: u64,
    ) -> Result<Option<(Vec<u8>, DeviceRecord)>, StoreError> {
        let row = self
            .query_opt(
                "SELECT hash, record FROM device_codes WHERE user_code = $1 AND expires_unix > $2",
                &[&user_code, &int(now_unix)],
            )
            .await?;
        Ok(row.map(|r| (r.get(0), r.get::<_, Json<DeviceRecord>>(1).0)))
    }

    pub(crate) async fn update_device(
        &self,
        device_hash: &[u8],
        allowed: impl Fn(&DeviceRecord) -> bool + Send + Sync,
        change: impl Fn(&mut DeviceRecord) + Send + Sync,
    ) -> Result<Option<DeviceRecord>, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let Some(row) = tx
            .query_opt(
                &tx.prepare_cached("SELECT record FROM device_codes WHERE hash = $1 FOR UPDATE")
                    .await?,
                &[&device_hash],
            )
            .await?
        else {
            return Ok(None);
        };
        let mut record = row.get::<_, Json<DeviceRecord>>(0).0;
        if !allowed(&record) {
            return Ok(None);
        }
        change(&mut record);
        tx.execute(
            &tx.prepare_cached("UPDATE device_codes SET record = $2 WHERE hash = $1")
                .await?,
            &[&device_hash, &Json(&record)],
        )
        .await?;
        tx.commit().await?;
        Ok(Some(record))
    }

    pub(crate) async fn poll_device(
        &self,
        device_hash: &[u8],
        now_ms: u64,
        key_hash: &[u8],
        key: &ApiKeyRecord,
    ) -> Result<PollOutcome, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let Some(row) = tx
            .query_opt(
                &tx.prepare_cached("SELECT record FROM device_codes WHERE hash = $1 FOR UPDATE")
                    .await?,
                &[&device_hash],
            )
            .await?
        else {
            return Ok(PollOutcome::Invalid);
        };
        let mut record = row.get::<_, Json<DeviceRecord>>(0).0;
        let approver_enabled = match &record.status {
            DeviceStatus::Approved { username } => tx
                .query_opt(
                    &tx.prepare_cached("SELECT record FROM users WHERE username = $1 FOR SHARE")
                        .await?,
                    &[username],
                )
                .await?
                .is_none_or(|r| !r.get::<_, Json<UserRecord>>(0).0.disabled),
            _ => true,
        };
        let outcome = match record.poll(now_ms, approver_enabled) {
            PollStep::Keep(outcome) => return Ok(outcome),
            PollStep::Store(outcome) => outcome,
            PollStep::Issue { username } => {
                let mut key = key.clone();
                key.username = username;
                insert_key(&tx, key_hash, &key).await?;
                PollOutcome::Issued(key)
            }
        };
        tx.execute(
            &tx.prepare_cached("UPDATE device_codes SET record = $2 WHERE hash = $1")
                .await?,
            &[&device_hash, &Json(&record)],
        )
        .await?;
        tx.commit().await?;
        Ok(outcome)
    }

    pub(crate) async fn sweep_device_codes(&self, now_unix: u64) -> Result<usize, StoreError> {
        let removed = self
            .execute(
                "DELETE FROM device_codes WHERE expires_unix + $2 <= $1",
                &[&int(now_unix), &int(EXPIRED_KEPT_SECS)],
            )
            .await?;
        Ok(removed as usize)
    }

    // The audit trail.

    pub(crate) async fn record_audit(&self, event: &AuditEvent) -> Result<u64, StoreError> {
        let id: i64 = self
            .query_one(
                "INSERT INTO audit (at, kind, record) VALUES ($1, $2, $3) RETURNING id",
                &[&event.at, &event.kind, &Json(event)],
            )
            .await?
            .get(0);
        Ok(u64::try_from(id).unwrap_or(0))
    }

    pub(crate) async fn audit_events(
        &self,
        before: Option<u64>,
        limit: usize,
        kind: Option<&str>,
    ) -> Result<Vec<AuditEvent>, StoreError> {
        let before = before.map_or(i64::MAX, int);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self
            .query(
                "SELECT id, record FROM audit
                 WHERE id < $1 AND ($2::text IS NULL OR kind = $2 OR starts_with(kind, $2 || '.'))
                 ORDER BY id DESC LIMIT $3",
                &[&before, &kind, &limit],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| {
                let mut event = r.get::<_, Json<AuditEvent>>(1).0;
                event.id = u64::try_from(r.get::<_, i64>(0)).unwrap_or(0);
                event
            })
            .collect())
    }

    pub(crate) async fn sweep_audit(
        &self,
        cutoff_rfc3339: &str,
        max_events: usize,
    ) -> Result<usize, StoreError> {
        let old = self
            .execute("DELETE FROM audit WHERE at < $1", &[&cutoff_rfc3339])
            .await?;
        let excess = self
            .execute(
                "DELETE FROM audit WHERE id IN (SELECT id FROM audit ORDER BY id DESC OFFSET $1)",
                &[&i64::try_from(max_events).unwrap_or(i64::MAX)],
            )
            .await?;
        Ok((old + excess) as usize)
    }

    pub(crate) async fn summary(&self) -> Result<StoreSummary, StoreError> {
        let row = self
            .query_one(
                "SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM api_keys),
                        (SELECT count(*) FROM audit)",
                &[],
            )
            .await?;
        let count = |i: usize| usize::try_from(row.get::<_, i64>(i)).unwrap_or(0);
        Ok(StoreSummary {
            users: count(0),
            api_keys: count(1),
            audit_events: count(2),
        })
    }
}

impl PgStore {
    /// See [`crate::store::Store::import`].
    pub(crate) async fn import(&self, export: &StoreExport) -> Result<StoreSummary, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        // No second copy can run alongside: the advisory lock of migrations.
        tx.execute(
            &tx.prepare_cached("SELECT pg_advisory_xact_lock($1)")
                .await?,
            &[&IMPORT_LOCK],
        )
        .await?;
        let held = tx
            .query_one(
                &tx.prepare_cached(
                    "SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM api_keys),
                        (SELECT count(*) FROM audit)",
                )
                .await?,
                &[],
            )
            .await?;
        let (users, keys, events): (i64, i64, i64) = (held.get(0), held.get(1), held.get(2));
        if users + keys + events > 0 {
            return Err(StoreError::TargetNotEmptyDatabase(format!(
                "{users} users, {keys} API keys and {events} audit events"
            )));
        }
        for user in &export.users {
            tx.execute(
                &tx.prepare_cached("INSERT INTO users (username, email_key, enabled_admin, record) VALUES ($1, $2, $3, $4)").await?,
                &[
                    &user.username,
                    &email_key(&user.email),
                    &user.is_enabled_server_admin(),
                    &Json(user),
                ],
            )
            .await
            .map_err(conflict)?;
        }
        for (issuer, sub, username) in &export.identities {
            tx.execute(
                &tx.prepare_cached(
                    "INSERT INTO identities (issuer, sub, username) VALUES ($1, $2, $3)",
                )
                .await?,
                &[issuer, sub, username],
            )
            .await
            .map_err(conflict)?;
        }
        for (hash, key) in &export.api_keys {
            insert_key(&tx, hash, key).await?;
        }
        for event in &export.audit {
            tx.execute(
                &tx.prepare_cached(
                    "INSERT INTO audit (id, at, kind, record) VALUES ($1, $2, $3, $4)",
                )
                .await?,
                &[&int(event.id), &event.at, &event.kind, &Json(event)],
            )
            .await?;
        }
        // New events follow the copied ones.
        tx.execute(
            &tx.prepare_cached("SELECT setval(pg_get_serial_sequence('audit', 'id'), greatest((SELECT max(id) FROM audit), 1))").await?,
            &[],
        )
        .await?;
        tx.commit().await?;
        Ok(StoreSummary {
            users: export.users.len(),
            api_keys: export.api_keys.len(),
            audit_events: export.audit.len(),
        })
    }
}

/// The advisory lock key of `migrate-store` ("cfsso-im").
const IMPORT_LOCK: i64 = 0x6366_7373_6f2d_696d;

/// Inserts `record` under `hash` in `tx`.
async fn insert_key(
    tx: &deadpool_postgres::Transaction<'_>,
    hash: &[u8],
    record: &ApiKeyRecord,
) -> Result<(), StoreError> {
    tx.execute(
        &tx.prepare_cached("INSERT INTO api_keys (hash, id, username, last_used_unix, record) VALUES ($1, $2, $3, $4, $5)").await?,
        &[
            &hash,
            &record.id,
            &record.username,
            &record.last_used_unix.map(int),
            &Json(record),
        ],
    )
    .await?;
    Ok(())
}

/// A key from a row whose column `at` is its record and `at + 1` its last use.
fn key_of(row: &tokio_postgres::Row, at: usize) -> ApiKeyRecord {
    let mut key = row.get::<_, Json<ApiKeyRecord>>(at).0;
    key.last_used_unix = row
        .get::<_, Option<i64>>(at + 1)
        .and_then(|t| u64::try_from(t).ok());
    key
}

/// Tells every replica (on commit) that access may have been taken away.
async fn notify(tx: &deadpool_postgres::Transaction<'_>) -> Result<(), StoreError> {
    tx.execute(
        &tx.prepare_cached("SELECT pg_notify($1, '')").await?,
        &[&AUTH_CHANNEL],
    )
    .await?;
    Ok(())
}
