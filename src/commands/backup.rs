//! `coder-server backup` and `coder-server restore`: a consistent copy of the sled store, and
//! putting one back as a whole.
//!
//! A copy of the live store's folder is not a backup (sled writes it continuously), and copying
//! one back into an existing folder merges with newer files and leaves a store that does not
//! open. These commands work on the database instead: `backup` copies every record under the
//! store's write gate (through the running daemon's admin socket, or from the store when no
//! daemon runs); `restore` refuses while a daemon runs, checks the backup opens, and swaps the
//! store as a whole, keeping the old one aside.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Args;

use crate::server::admin::{AdminError, AdminRequest, AdminResponse, admin_request};
use crate::store::{Store, StoreSummary, restore_from};

#[derive(Debug, Args)]
pub struct BackupArgs {
    /// A new (or empty) folder for the backup.
    #[arg(long, value_name = "PATH")]
    pub to: PathBuf,
    /// The daemon's data directory.
    #[arg(long, env = "CODERFLOW_DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// A folder made by `coder-server backup`.
    #[arg(long, value_name = "PATH")]
    pub from: PathBuf,
    /// The data directory whose store is replaced (the daemon must be stopped).
    #[arg(long, env = "CODERFLOW_DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,
}

fn describe(summary: &StoreSummary) -> String {
    format!(
        "{} users, {} API keys, {} audit events",
        summary.users, summary.api_keys, summary.audit_events
    )
}

/// Backs the store up into `--to`: through the running daemon, or from the store when none
/// runs.
///
/// Fails when the target is not empty or cannot be written, or the store cannot be opened.
pub(crate) fn backup(args: BackupArgs) -> anyhow::Result<ExitCode> {
    // The daemon may run in another folder: it gets an absolute path.
    let to = std::path::absolute(&args.to)
        .with_context(|| format!("invalid path {}", args.to.display()))?;
    let runtime = super::small_runtime()?;
    let request = AdminRequest::Backup { to: to.clone() };
    let (summary, how) = match runtime.block_on(admin_request(&args.data_dir, &request)) {
        Ok(AdminResponse::Backup(summary)) => (summary, "from the running daemon"),
        Ok(AdminResponse::Error { message }) => bail!("{message}"),
        Ok(other) => bail!("unexpected answer from the daemon: {other:?}"),
        Err(AdminError::NotRunning { .. }) => {
            let store_dir = args.data_dir.join("store");
            // Opening a missing store would create an empty one and "back it up".
            if !store_dir.join("conf").is_file() {
                bail!(
                    "no store in {} (is --data-dir right?)",
                    args.data_dir.display()
                );
            }
            let store = Store::open(&store_dir)?;
            let summary = store
                .backup_to(&to)
                .with_context(|| format!("cannot back up into {}", to.display()))?;
            (summary, "from the stopped store")
        }
        Err(e) => return Err(e.into()),
    };
    println!(
        "backed up {how} into {}: {}",
        to.display(),
        describe(&summary)
    );
    Ok(ExitCode::SUCCESS)
}

/// Replaces the store with the backup in `--from`.
///
/// Fails while a daemon runs with the data directory, or when the backup does not open.
pub(crate) fn restore(args: RestoreArgs) -> anyhow::Result<ExitCode> {
    let runtime = super::small_runtime()?;
    match runtime.block_on(admin_request(&args.data_dir, &AdminRequest::Status)) {
        Err(AdminError::NotRunning { .. }) => {}
        Ok(_) => bail!(
            "a coder-server is running with data directory {}: stop it first (restore replaces its store)",
            args.data_dir.display()
        ),
        Err(e) => return Err(e.into()),
    }
    let store_dir = args.data_dir.join("store");
    let summary = restore_from(&args.from, &store_dir)
        .with_context(|| format!("nothing was changed in {}", args.data_dir.display()))?;
    println!(
        "restored {} from {}: {} (the previous store is kept beside it as store.replaced-<time>)",
        store_dir.display(),
        args.from.display(),
        describe(&summary)
    );
    Ok(ExitCode::SUCCESS)
}
