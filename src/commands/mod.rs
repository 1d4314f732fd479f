//! `coder-server`'s command line: argument definitions and one file per subcommand.
//!
//! Commands print human output themselves and return an exit code; `main` turns an error into
//! one `error:` line per line of its message plus `Caused by:` lines.

// Printing for people is this module's job.
#![allow(clippy::print_stdout, clippy::print_stderr)]

pub(crate) mod account;
pub(crate) mod backup;
pub(crate) mod database;
pub(crate) mod reload;
pub(crate) mod schema;
pub(crate) mod serve;
pub(crate) mod validate;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// CoderFlow server: single sign-on for a self-hosted developer server.
#[derive(Debug, Parser)]
#[command(name = "coder-server", version, about, long_about = None)]
pub struct ServerCli {
    #[command(subcommand)]
    pub command: Option<ServerCommand>,
}

#[derive(Debug, Subcommand)]
pub enum ServerCommand {
    /// Run the daemon (the default when no command is given).
    Serve(Box<serve::ServeArgs>),
    /// Check a setup repository's oidc.json (or a file): exit 0 when valid, 1 when not.
    Validate(validate::ValidateArgs),
    /// Ask the running daemon to reload oidc.json: exit 1 when the file is rejected.
    Reload(reload::ReloadArgs),
    /// Show the running daemon's configuration status (generation, errors, git state) as JSON.
    Status(reload::ReloadArgs),
    /// Print the JSON schema of oidc.json.
    Schema,
    /// Create a user (through the running daemon, or in the store when none runs).
    CreateUser(account::CreateUserArgs),
    /// Set a user's password (recovery; through the running daemon or the store).
    ResetPassword(account::ResetPasswordArgs),
    /// Bind a user to exactly one role (recovery; through the running daemon or the store).
    SetRole(account::SetRoleArgs),
    /// Copy the store, consistently, into a new folder (through the running daemon or the store).
    Backup(backup::BackupArgs),
    /// Replace the store with a backup (the daemon must be stopped).
    Restore(backup::RestoreArgs),
    /// Apply the PostgreSQL schema migrations without serving.
    MigrateDb(database::MigrateDbArgs),
    /// Copy a sled store (daemon stopped) into an empty PostgreSQL database.
    MigrateStore(database::MigrateStoreArgs),
}

impl ServerCli {
    /// Parses the command line; no command means `serve` with its defaults and environment.
    ///
    /// Fails with clap's error for bad arguments, `--help` and `--version`.
    pub fn try_parse_args() -> Result<ServerCli, clap::Error> {
        let mut cli = ServerCli::try_parse()?;
        if cli.command.is_none() {
            cli.command = Some(ServerCommand::Serve(Box::new(
                serve::ServeArgs::try_parse_from(["serve"])?,
            )));
        }
        Ok(cli)
    }

    /// The log format the command wants (only `serve` has a choice).
    pub fn log_format(&self) -> serve::LogFormat {
        match &self.command {
            Some(ServerCommand::Serve(args)) => args.log_format,
            _ => serve::LogFormat::Text,
        }
    }

    /// Runs the command.
    ///
    /// Fails as the command does; `serve` with an invalid `oidc.json` fails with
    /// [`crate::server::ServeError::InvalidConfig`], which `main` maps to exit code 2.
    pub fn run(self) -> anyhow::Result<ExitCode> {
        match self.command {
            None => serve::run(serve::ServeArgs::try_parse_from(["serve"])?),
            Some(ServerCommand::Serve(args)) => serve::run(*args),
            Some(ServerCommand::Validate(args)) => validate::run(args),
            Some(ServerCommand::Reload(args)) => reload::run(args),
            Some(ServerCommand::Status(args)) => reload::run_status(args),
            Some(ServerCommand::Schema) => schema::run(),
            Some(ServerCommand::CreateUser(args)) => account::create_user(args),
            Some(ServerCommand::ResetPassword(args)) => account::reset_password(args),
            Some(ServerCommand::SetRole(args)) => account::set_role(args),
            Some(ServerCommand::Backup(args)) => backup::backup(args),
            Some(ServerCommand::Restore(args)) => backup::restore(args),
            Some(ServerCommand::MigrateDb(args)) => database::migrate_db(args),
            Some(ServerCommand::MigrateStore(args)) => database::migrate_store(args),
        }
    }
}

/// Sets up logging to stderr: `RUST_LOG` filters (default `info`), text or JSON lines.
pub fn init_tracing(format: serve::LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match format {
        serve::LogFormat::Text => builder.init(),
        serve::LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

pub use crate::report::print_error;

/// A current-thread runtime for the short commands that talk to the daemon.
fn small_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}
