//! `coder-server create-user`: create an account, through the running daemon's admin socket or,
//! when no daemon runs, in the store directly.

use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use crate::auth::Role;
use crate::auth::account::{NewUser, UserView, create_user};
use crate::auth::credential::Password;
use crate::server::admin::{AdminError, AdminRequest, AdminResponse, admin_request};
use crate::store::{Store, UserSource};

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
}

/// Creates the user and prints it.
///
/// Fails on invalid input, a taken username or email, or an unusable store.
pub fn run(args: CreateUserArgs) -> anyhow::Result<ExitCode> {
    let password = if args.password_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("cannot read the password from standard input")?;
        Some(Password::new(line.trim_end_matches(['\r', '\n'])))
    } else {
        None
    };
    let request = AdminRequest::CreateUser {
        username: args.username.clone(),
        email: args.email.clone(),
        name: args.name.clone(),
        role: args.role,
        password: password.clone(),
    };
    let user = match super::small_runtime()?.block_on(admin_request(&args.data_dir, &request)) {
        Ok(AdminResponse::User(user)) => user,
        Ok(AdminResponse::Error { message }) => anyhow::bail!("{message}"),
        Ok(other) => anyhow::bail!("unexpected answer from the daemon: {other:?}"),
        Err(AdminError::NotRunning { .. }) => {
            // No daemon: the store is free to open here.
            let store = Store::open(&args.data_dir.join("store"))?;
            let user = create_user(
                &store,
                NewUser {
                    username: args.username,
                    email: args.email,
                    name: args.name,
                    role: args.role,
                    password,
                    source: UserSource::Local,
                },
            )?;
            super::small_runtime()?.block_on(store.flush())?;
            UserView::from(&user)
        }
        Err(e) => return Err(e.into()),
    };
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
