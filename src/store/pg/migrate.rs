//! Embedded, versioned schema migrations: applied in order inside one transaction under a
//! transaction-level advisory lock, so replicas starting together migrate once and the others
//! find the work done. A database migrated by a newer binary is refused.

use super::StoreError;

/// The migrations, in order; the schema version is the number of the last one applied.
const MIGRATIONS: &[(i32, &str)] = &[
    (1, include_str!("migrations/0001_initial.sql")),
    (2, include_str!("migrations/0002_replicas.sql")),
    (3, include_str!("migrations/0003_backchannel_logout.sql")),
];

/// The schema version this binary runs on.
pub(crate) const SCHEMA_VERSION: i32 = MIGRATIONS.len() as i32;

/// The advisory lock key of migrations ("cfsso-mi").
const MIGRATION_LOCK: i64 = 0x6366_7373_6f2d_6d69;

/// What [`migrate`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Migrated {
    /// The version found (0 for an empty database) and the version left.
    pub from: i32,
    pub to: i32,
}

/// Brings the schema to [`SCHEMA_VERSION`].
///
/// Fails when the database's schema is newer than this binary's, or a statement fails (then
/// nothing of it stays: one transaction).
pub(crate) async fn migrate(client: &mut tokio_postgres::Client) -> Result<Migrated, StoreError> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS coderflow_schema (
            version    integer PRIMARY KEY,
            applied_at timestamptz NOT NULL DEFAULT now()
        )",
    )
    .await?;
    let from: i32 = tx
        .query_one(
            "SELECT coalesce(max(version), 0) FROM coderflow_schema",
            &[],
        )
        .await?
        .get(0);
    if from > SCHEMA_VERSION {
        return Err(StoreError::NewerSchema {
            found: from,
            supported: SCHEMA_VERSION,
        });
    }
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > from) {
        tx.batch_execute(sql).await?;
        tx.execute(
            "INSERT INTO coderflow_schema (version) VALUES ($1)",
            &[version],
        )
        .await?;
        tracing::info!(version, "database schema migrated");
    }
    tx.commit().await?;
    Ok(Migrated {
        from,
        to: SCHEMA_VERSION,
    })
}
