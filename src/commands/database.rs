//! The PostgreSQL backend's flag and commands: `--database-url` (shared by `serve` and the
//! account commands), `migrate-db` and `migrate-store`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use crate::store::{DatabaseUrl, Store};

/// `--database-url`: absent, the sled store in the data directory.
#[derive(Debug, Clone, Default, Args)]
pub struct DatabaseArgs {
    /// PostgreSQL to keep users, sessions and keys in, shared by every replica
    /// (postgres://user:password@host:port/dbname?sslmode=disable|prefer|require|verify-full;
    /// a Unix socket as ?host=/path). Absent: the sled store in the data directory.
    // Parsed by us, not by clap, whose errors repeat the value (and so the password).
    #[arg(
        long,
        env = "CODERFLOW_DATABASE_URL",
        hide_env_values = true,
        value_name = "URL"
    )]
    pub database_url: Option<String>,
}

impl DatabaseArgs {
    /// The parsed URL, if one was given.
    ///
    /// Fails with a message that never holds the password.
    pub fn url(&self) -> anyhow::Result<Option<DatabaseUrl>> {
        self.database_url
            .as_deref()
            .map(|text| text.parse::<DatabaseUrl>().context("--database-url"))
            .transpose()
    }

    /// The parsed URL; fails when none was given.
    fn required(&self) -> anyhow::Result<DatabaseUrl> {
        self.url()?
            .context("--database-url (or CODERFLOW_DATABASE_URL) names the PostgreSQL database")
    }
}

#[derive(Debug, Args)]
pub struct MigrateDbArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
}

#[derive(Debug, Args)]
pub struct MigrateStoreArgs {
    /// The data directory of the sled store to copy (its daemon stopped).
    #[arg(long, env = "CODERFLOW_DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,
    #[command(flatten)]
    pub database: DatabaseArgs,
}

/// `coder-server migrate-db`: applies the schema migrations without serving.
///
/// Fails when the database cannot be reached or is newer than this binary.
pub(crate) fn migrate_db(args: MigrateDbArgs) -> anyhow::Result<ExitCode> {
    let url = args.database.required()?;
    let runtime = super::small_runtime()?;
    let migrated = runtime
        .block_on(Store::migrate_db(&url))
        .with_context(|| format!("cannot migrate {url}"))?;
    if migrated.from == migrated.to {
        println!(
            "{url}: the schema is at version {}, nothing to do",
            migrated.to
        );
    } else {
        println!(
            "{url}: the schema went from version {} to {}",
            migrated.from, migrated.to
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `coder-server migrate-store`: copies a sled store into an empty PostgreSQL database.
///
/// Fails when the sled store is in use or missing, or the database is not empty; then nothing
/// was copied (one transaction), and the command can be run again.
pub(crate) fn migrate_store(args: MigrateStoreArgs) -> anyhow::Result<ExitCode> {
    let url = args.database.required()?;
    let store_dir = args.data_dir.join("store");
    if !store_dir.join("conf").is_file() {
        anyhow::bail!("{} holds no sled store", store_dir.display());
    }
    let sled = Store::open(&store_dir).with_context(|| {
        format!(
            "cannot open the store in {} (stop the daemon that uses it first)",
            store_dir.display()
        )
    })?;
    let export = sled.export()?;
    drop(sled);
    let runtime = super::small_runtime()?;
    let copied = runtime.block_on(async {
        let target = Store::connect_once(&url)
            .await
            .with_context(|| format!("cannot connect to {url}"))?;
        target.import(&export).await.map_err(anyhow::Error::from)
    })?;
    println!(
        "copied {} users, {} SSO identities, {} API keys and {} audit events from {} into {url}",
        copied.users,
        export.identities.len(),
        copied.api_keys,
        copied.audit_events,
        store_dir.display()
    );
    Ok(ExitCode::SUCCESS)
}
