//! `coder-server reload` and `coder-server status`: ask the running daemon to reload
//! `oidc.json`, or how its configuration stands.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::reload::ReloadResult;
use crate::server::admin::{AdminRequest, AdminResponse, admin_request};

#[derive(Debug, Args)]
pub struct ReloadArgs {
    /// The running daemon's data directory (its admin socket is there).
    #[arg(long, env = "CODERFLOW_DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,
}

/// Prints what the reload did; exit 1 when the file on disk is rejected (now or, unchanged, before).
///
/// Fails when no daemon runs with that data directory.
pub(crate) fn run(args: ReloadArgs) -> anyhow::Result<ExitCode> {
    let response =
        super::small_runtime()?.block_on(admin_request(&args.data_dir, &AdminRequest::Reload))?;
    let outcome = match response {
        AdminResponse::Reload(outcome) => outcome,
        AdminResponse::Error { message } => anyhow::bail!("the daemon refused: {message}"),
        other => anyhow::bail!("unexpected answer from the daemon: {other:?}"),
    };
    let status = &outcome.status;
    let code = match outcome.result {
        ReloadResult::Applied => {
            println!("reloaded: generation {} is live", status.generation);
            ExitCode::SUCCESS
        }
        ReloadResult::Unchanged if status.error.is_some() => {
            println!(
                "rejected: oidc.json has not changed since it was rejected; generation {} stays live",
                status.generation
            );
            ExitCode::FAILURE
        }
        ReloadResult::Unchanged => {
            println!(
                "unchanged: oidc.json has not changed, generation {} stays live",
                status.generation
            );
            ExitCode::SUCCESS
        }
        ReloadResult::Rejected => {
            println!(
                "rejected: generation {} stays live (loaded {})",
                status.generation, status.loaded_at
            );
            if let Some(error) = &status.error {
                println!("{}", error.message);
            }
            ExitCode::FAILURE
        }
    };
    if let (Some(error), ReloadResult::Unchanged) = (&status.error, outcome.result) {
        println!("{}", error.message);
    }
    if status.git.tracked {
        eprintln!(
            "warning: oidc.json is tracked by git: run `git rm --cached oidc.json`, commit, and rotate the client secret"
        );
    }
    Ok(code)
}

/// Prints the daemon's reload status as JSON; exit 1 when the file on disk is rejected.
///
/// Fails when no daemon runs with that data directory.
pub(crate) fn run_status(args: ReloadArgs) -> anyhow::Result<ExitCode> {
    let response =
        super::small_runtime()?.block_on(admin_request(&args.data_dir, &AdminRequest::Status))?;
    let AdminResponse::Status(status) = response else {
        anyhow::bail!("unexpected answer from the daemon: {response:?}");
    };
    println!("{}", serde_json::to_string_pretty(&status)?);
    Ok(if status.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
