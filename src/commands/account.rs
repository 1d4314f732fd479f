//! Account commands an operator needs, with the daemon running (through its admin socket) or
//! stopped (on the store directly): `create-user`, `reset-password`, `set-role`.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use crate::auth::Role;
use crate::auth::account::UserView;
use crate::auth::credential::{Password, generate_password};
use crate::server::admin::{
    AdminError, AdminRequest, AdminResponse, admin_request, apply_account_request,
};
use crate::store::Store;

#[derive(Debug, Args)]
pub struct CreateUserArgs {
    /// Login name: lower-case letters, digits, `.`, `_`, `-`.
    #[arg(long)]
    pub username: String,
    /// Email; an SSO login with this email (case-insensitive) signs in as this user.
    #[arg(long)]
    pub email: String,
    /// Display name.
    #[arg(long)]
    pub name: String,
    /// viewer, developer, environment_admin or server_admin (legacy: manager, admin).
    #[arg(long)]
    pub role: Role,
    /// Read a password from the first line of standard input; without it the user can sign in
    /// with SSO only.
    #[arg(long)]
    pub password_stdin: bool,
    /// The daemon's data directory.
    #[arg(long, env = "CODERFLOW_DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,
    #[command(flatten)]
    pub database: super::database::DatabaseArgs,
}

#[derive(Debug, Args)]
pub struct ResetPasswordArgs {
    /// The user whose password to set.
    #[arg(long)]
    pub username: String,
    /// Read the new password from the first line of standard input; without it a random
    /// password is made and printed once.
    #[arg(long)]
    pub password_stdin: bool,
    /// Keep the user's API keys; by default a new password revokes them (when access ends,
    /// credentials end).
    #[arg(long)]
    pub keep_keys: bool,
    /// The daemon's data directory.
    #[arg(long, env = "CODERFLOW_DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,
    #[command(flatten)]
    pub database: super::database::DatabaseArgs,
}

#[derive(Debug, Args)]
pub struct SetRoleArgs {
    /// The user to change.
    #[arg(long)]
    pub username: String,
    /// The user's only role from now on: viewer, developer, environment_admin or server_admin
    /// (legacy: manager, admin).
    #[arg(long)]
    pub role: Role,
    /// The daemon's data directory.
    #[arg(long, env = "CODERFLOW_DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,
    #[command(flatten)]
    pub database: super::database::DatabaseArgs,
}

/// `create-user`: creates the user and prints it.
///
/// Fails on invalid input, a taken username or email, or an unusable store.
pub(crate) fn create_user(args: CreateUserArgs) -> anyhow::Result<ExitCode> {
    let password = args.password_stdin.then(read_password).transpose()?;
    let user = apply(
        &args.data_dir,
        &args.database,
        AdminRequest::CreateUser {
            username: args.username,
            email: args.email,
            name: args.name,
            role: args.role,
            password,
        },
    )?;
    let login = if args.password_stdin {
        "password or SSO"
    } else {
        "SSO only"
    };
    println!(
        "created user `{}` <{}> with role {} ({login})",
        user.username, user.email, args.role
    );
    Ok(ExitCode::SUCCESS)
}

/// `reset-password`: sets a password (read from stdin, or made up and printed once). The
/// user's browser sessions end and their API keys are revoked (kept with `--keep-keys`).
///
/// Fails for an unknown user, a too short password, or an unusable store.
pub(crate) fn reset_password(args: ResetPasswordArgs) -> anyhow::Result<ExitCode> {
    let (password, generated) = if args.password_stdin {
        (read_password()?, false)
    } else {
        (generate_password(), true)
    };
    let user = apply(
        &args.data_dir,
        &args.database,
        AdminRequest::ResetPassword {
            username: args.username,
            password: password.clone(),
            keep_keys: args.keep_keys,
        },
    )?;
    let keys = if args.keep_keys {
        "their API keys were kept"
    } else {
        "their API keys were revoked"
    };
    println!(
        "password of `{}` changed; their browser sessions ended and {keys}",
        user.username
    );
    if generated {
        println!("new password (shown once): {}", password.expose());
    }
    Ok(ExitCode::SUCCESS)
}

/// `set-role`: binds the user to exactly one role at its scope.
///
/// Fails for an unknown user, demoting the last server_admin, or an unusable store.
pub(crate) fn set_role(args: SetRoleArgs) -> anyhow::Result<ExitCode> {
    let user = apply(
        &args.data_dir,
        &args.database,
        AdminRequest::SetRole {
            username: args.username,
            role: args.role,
        },
    )?;
    println!("`{}` now has role {} only", user.username, args.role);
    Ok(ExitCode::SUCCESS)
}

fn read_password() -> anyhow::Result<Password> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("cannot read the password from standard input")?;
    Ok(Password::new(line.trim_end_matches(['\r', '\n'])))
}

/// Sends `request` to the running daemon; when none runs, carries it out on the store here
/// and flushes it.
fn apply(
    data_dir: &Path,
    database: &super::database::DatabaseArgs,
    request: AdminRequest,
) -> anyhow::Result<UserView> {
    let runtime = super::small_runtime()?;
    let response = if let Some(url) = database.url()? {
        // The database is shared: the change is made there, and every replica sees it.
        runtime.block_on(async {
            let store = Store::connect_once(&url)
                .await
                .with_context(|| format!("cannot connect to {url}"))?;
            Ok::<_, anyhow::Error>(apply_account_request(&store, request).await)
        })?
    } else {
        apply_on_data_dir(&runtime, data_dir, request)?
    };
    match response {
        AdminResponse::User(user) => Ok(user),
        AdminResponse::Error { message } => anyhow::bail!("{message}"),
        other => anyhow::bail!("unexpected answer from the daemon: {other:?}"),
    }
}

/// Sends `request` to the daemon running on `data_dir`, or applies it to its sled store.
fn apply_on_data_dir(
    runtime: &tokio::runtime::Runtime,
    data_dir: &Path,
    request: AdminRequest,
) -> anyhow::Result<AdminResponse> {
    let response = match runtime.block_on(admin_request(data_dir, &request)) {
        Ok(response) => response,
        Err(AdminError::NotRunning { .. }) => {
            // No daemon: the store is free to open here.
            let store = Store::open(&data_dir.join("store"))?;
            runtime.block_on(async {
                let response = apply_account_request(&store, request).await;
                store.flush().await.map(|()| response)
            })?
        }
        Err(e) => return Err(e.into()),
    };
    Ok(response)
}
