//! What replicas share beyond the records: heartbeats (which configuration each one runs) and
//! the failed-password counters per username and address, so a password guesser gains nothing
//! by spreading attempts over replicas.

use tokio_postgres::types::Json;

use super::PgStore;
use super::ops::int;
use crate::store::StoreError;
use crate::store::records::{FailureWindow, ReplicaRecord};

impl PgStore {
    pub(crate) async fn record_replica(&self, replica: &ReplicaRecord) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO replicas (id, last_seen_unix, record) VALUES ($1, $2, $3)
                 ON CONFLICT (id) DO UPDATE SET last_seen_unix = $2, record = $3",
            &[&replica.id, &int(replica.last_seen), &Json(replica)],
        )
        .await?;
        Ok(())
    }

    pub(crate) async fn remove_replica(&self, id: &str) -> Result<(), StoreError> {
        self.execute("DELETE FROM replicas WHERE id = $1", &[&id])
            .await?;
        Ok(())
    }

    pub(crate) async fn replicas(&self, seen_since: u64) -> Result<Vec<ReplicaRecord>, StoreError> {
        let rows = self
            .query(
                "SELECT record FROM replicas WHERE last_seen_unix >= $1 ORDER BY id",
                &[&int(seen_since)],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| r.get::<_, Json<ReplicaRecord>>(0).0)
            .collect())
    }

    pub(crate) async fn sweep_replicas(&self, seen_before: u64) -> Result<usize, StoreError> {
        let removed = self
            .execute(
                "DELETE FROM replicas WHERE last_seen_unix < $1",
                &[&int(seen_before)],
            )
            .await?;
        Ok(removed as usize)
    }

    pub(crate) async fn password_failures(
        &self,
        key: &str,
        now_unix: u64,
    ) -> Result<Option<FailureWindow>, StoreError> {
        let row = self
            .query_opt(
                "SELECT failures, window_end_unix FROM password_failures
                 WHERE key = $1 AND window_end_unix > $2",
                &[&key.as_bytes(), &int(now_unix)],
            )
            .await?;
        Ok(row.map(window))
    }

    pub(crate) async fn record_password_failure(
        &self,
        key: &str,
        now_unix: u64,
        window_secs: u64,
    ) -> Result<FailureWindow, StoreError> {
        // One statement: concurrent failures on several replicas each count once.
        let row = self
            .query_one(
                "INSERT INTO password_failures AS f (key, window_end_unix, failures)
                 VALUES ($1, $2::bigint + $3::bigint, 1)
                 ON CONFLICT (key) DO UPDATE SET
                   failures = CASE WHEN f.window_end_unix <= $2 THEN 1 ELSE f.failures + 1 END,
                   window_end_unix = CASE WHEN f.window_end_unix <= $2
                                          THEN $2::bigint + $3::bigint
                                          ELSE f.window_end_unix END
                 RETURNING failures, window_end_unix",
                &[&key.as_bytes(), &int(now_unix), &int(window_secs)],
            )
            .await?;
        Ok(window(row))
    }

    pub(crate) async fn clear_password_failures(&self, key: &str) -> Result<(), StoreError> {
        self.execute(
            "DELETE FROM password_failures WHERE key = $1",
            &[&key.as_bytes()],
        )
        .await?;
        Ok(())
    }

    pub(crate) async fn sweep_password_failures(&self, now_unix: u64) -> Result<usize, StoreError> {
        let removed = self
            .execute(
                "DELETE FROM password_failures WHERE window_end_unix <= $1",
                &[&int(now_unix)],
            )
            .await?;
        Ok(removed as usize)
    }
}

impl PgStore {
    pub(crate) async fn delete_sessions_of_sid(
        &self,
        issuer: &str,
        sid: &str,
    ) -> Result<Vec<String>, StoreError> {
        let rows = self
            .query(
                "DELETE FROM sessions WHERE record->'sso'->>'issuer' = $1
                         AND record->'sso'->>'sid' = $2 RETURNING username",
                &[&issuer, &sid],
            )
            .await?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    pub(crate) async fn use_logout_jti(
        &self,
        key: &str,
        expires_unix: u64,
    ) -> Result<bool, StoreError> {
        let inserted = self
            .execute(
                "INSERT INTO logout_jtis (key, expires_unix) VALUES ($1, $2)
                         ON CONFLICT (key) DO NOTHING",
                &[&key, &int(expires_unix)],
            )
            .await?;
        Ok(inserted == 1)
    }

    pub(crate) async fn sweep_logout_jtis(&self, now_unix: u64) -> Result<usize, StoreError> {
        let removed = self
            .execute(
                "DELETE FROM logout_jtis WHERE expires_unix <= $1",
                &[&int(now_unix)],
            )
            .await?;
        Ok(removed as usize)
    }
}

fn window(row: tokio_postgres::Row) -> FailureWindow {
    let failures: i32 = row.get(0);
    let ends: i64 = row.get(1);
    FailureWindow {
        failures: u32::try_from(failures).unwrap_or(0),
        ends_unix: u64::try_from(ends).unwrap_or(0),
    }
}
