//! `coder`, the user's command-line client: profiles, `login --sso` (device login), password
//! login, `whoami`, `logout`.
//!
//! Output is for people on a terminal (instructions and progress on stderr, results on stdout)
//! and for scripts when piped: no progress animation, and `whoami` prints JSON. Errors print
//! one `error:` line; every failure exits 1, bad arguments exit 64.

// Printing for people is this module's job.
#![allow(clippy::print_stdout, clippy::print_stderr)]

pub(crate) mod client;
pub(crate) mod device_login;
pub(crate) mod profiles;
pub(crate) mod text;
pub(crate) mod trust;

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};

use client::ServerClient;
use profiles::{Profile, Profiles, config_dir};

use crate::secret::Secret;
use crate::vocab::ErrorCode;

/// CoderFlow client: sign in to a CoderFlow server and keep server profiles.
#[derive(Debug, Parser)]
#[command(name = "coder", version, about, long_about = None)]
pub struct CoderCli {
    #[command(subcommand)]
    pub command: CoderCommand,
}

#[derive(Debug, Subcommand)]
pub enum CoderCommand {
    /// Sign in and store a personal API key in a profile.
    Login(LoginArgs),
    /// Show the server, user and roles of the active profile.
    Whoami {
        /// Print JSON (the default when stdout is not a terminal).
        #[arg(long)]
        json: bool,
        /// Use this profile instead of the active one.
        #[arg(long)]
        profile: Option<String>,
    },
    /// Revoke the profile's API key on the server and remove it here.
    Logout {
        /// Use this profile instead of the active one.
        #[arg(long)]
        profile: Option<String>,
        /// Forget the key here even when the server cannot revoke it (it then stays valid on
        /// the server until an administrator revokes it).
        #[arg(long)]
        force: bool,
    },
    /// List or switch profiles.
    #[command(subcommand)]
    Profile(ProfileCommand),
}

#[derive(Debug, clap::Args)]
pub struct LoginArgs {
    /// Sign in with the server's single sign-on in a browser (device login).
    #[arg(long)]
    pub sso: bool,
    /// The server URL [default: $CODER_URL, then the profile's server].
    #[arg(long)]
    pub server: Option<String>,
    /// The profile to store the key in [default: the active profile, else "default"].
    #[arg(long)]
    pub profile: Option<String>,
    /// Never open a browser; print the URL only.
    #[arg(long)]
    pub no_browser: bool,
    /// Username for password login [default: asked on the terminal].
    #[arg(long, conflicts_with = "sso")]
    pub username: Option<String>,
    /// Read the password from the first line of standard input.
    #[arg(long, conflicts_with = "sso")]
    pub password_stdin: bool,
    /// Trust the certificate authorities in this PEM file for the server (kept in the profile),
    /// besides the system's.
    #[arg(long, value_name = "PATH")]
    pub ca_file: Option<std::path::PathBuf>,
    /// Accept a plain http:// server on another machine (the password and the key then cross
    /// the network unencrypted).
    #[arg(long)]
    pub allow_http: bool,
}

#[derive(Debug, Subcommand)]
pub enum ProfileCommand {
    /// List the profiles; the active one is marked.
    List,
    /// Make NAME the active profile.
    Use { name: String },
}

impl CoderCli {
    /// Runs the command on a small runtime.
    ///
    /// Fails with a message for people: server unreachable, SSO disabled, sign-in denied or
    /// expired, no profile, no key.
    pub fn run(self) -> anyhow::Result<ExitCode> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let dir = config_dir()?;
        match self.command {
            CoderCommand::Login(args) => runtime.block_on(login(&dir, args)),
            CoderCommand::Whoami { json, profile } => {
                runtime.block_on(whoami(&dir, profile.as_deref(), json))
            }
            CoderCommand::Logout { profile, force } => {
                runtime.block_on(logout(&dir, profile.as_deref(), force))
            }
            CoderCommand::Profile(ProfileCommand::List) => profile_list(&dir),
            CoderCommand::Profile(ProfileCommand::Use { name }) => profile_use(&dir, &name),
        }
    }
}

/// The server URL: `--server`, else `$CODER_URL`, else the profile's; checked as
/// [`trust::check_server_url`] says (a warning on stderr for accepted plain http).
fn server_url(
    flag: Option<String>,
    profile: Option<&Profile>,
    allow_http: bool,
) -> anyhow::Result<String> {
    let url = flag
        .or_else(|| std::env::var("CODER_URL").ok().filter(|u| !u.is_empty()))
        .or_else(|| profile.map(|p| p.server.clone()))
        .context("no server: pass --server URL (or set CODER_URL)")?;
    let (url, insecure) = trust::check_server_url(&url, allow_http)?;
    if insecure {
        eprintln!(
            "warning: {url} is plain http: your password and API key cross the network unencrypted"
        );
    }
    Ok(url)
}

/// A client for `profile`'s server with its key and CA file.
fn profile_client(profile: &Profile, key: Option<String>) -> anyhow::Result<ServerClient> {
    trust::check_server_url(&profile.server, profile.allow_http)?;
    ServerClient::new(&profile.server, key, profile.ca_file.as_deref())
}

/// This machine's name for key and client names: at most 60 characters, nothing hidden (the
/// server refuses names with control characters or longer than 100).
fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| crate::vocab::text::displayable(&h, 60))
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "this computer".to_owned())
}

async fn login(dir: &std::path::Path, args: LoginArgs) -> anyhow::Result<ExitCode> {
    let mut profiles = Profiles::load(dir)?;
    let name = profiles.name(args.profile.as_deref());
    let old = profiles.profiles.get(&name).cloned();
    // A plain-http server accepted earlier stays accepted for that server only.
    let requested = args
        .server
        .clone()
        .or_else(|| std::env::var("CODER_URL").ok().filter(|u| !u.is_empty()));
    let accepted_before = old.as_ref().is_some_and(|p| {
        p.allow_http
            && requested
                .as_deref()
                .is_none_or(|r| r.trim_end_matches('/') == p.server)
    });
    let server = server_url(
        args.server.clone(),
        old.as_ref(),
        args.allow_http || accepted_before,
    )?;
    let same_server = old.as_ref().is_some_and(|p| p.server == server);
    // The CA file: the flag, else the one this profile's server was used with.
    let ca_file = args.ca_file.clone().or_else(|| {
        old.as_ref()
            .filter(|_| same_server)
            .and_then(|p| p.ca_file.clone())
    });
    let client = ServerClient::new(&server, None, ca_file.as_deref())?;
    let issued = if args.sso {
        device_login::run(
            &client,
            &format!("coder CLI on {}", hostname()),
            args.no_browser,
        )
        .await?
    } else {
        let username = match args.username {
            Some(username) => username,
            None => prompt(&format!("Username at {server}: "))?,
        };
        let password = if args.password_stdin {
            let mut line = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .context("cannot read the password from standard input")?;
            line.trim_end_matches(['\r', '\n']).to_owned()
        } else if std::io::stdin().is_terminal() {
            rpassword::prompt_password(format!("Password for {username} at {server}: "))
                .context("cannot read the password")?
        } else {
            bail!("no password: pass --password-stdin, or run on a terminal");
        };
        let key_name = format!("coder CLI on {}", hostname());
        client
            .password_login(&username, &password, &key_name)
            .await
            .map_err(|e| match e.code() {
                Some(ErrorCode::LocalAuthDisabled) => anyhow::anyhow!(
                    "password login is disabled on {server}: use `coder login --sso`"
                ),
                _ => anyhow::Error::new(e),
            })?
    };
    // Replacing a profile's key: the old one is revoked, on whichever server it was made, so
    // keys do not pile up (or live on at a server this profile no longer names).
    if let Some(old) = &old {
        if let (Some(key), Some(id)) = (&old.api_key, &old.key_id) {
            let revoked = match profile_client(old, Some(key.expose().to_owned())) {
                Ok(old_client) => old_client.revoke_key(id).await.map_err(anyhow::Error::new),
                Err(e) => Err(e),
            };
            if let Err(e) = revoked {
                if !matches!(
                    e.downcast_ref::<client::ApiFailure>()
                        .and_then(|f| f.code()),
                    Some(ErrorCode::NotFound | ErrorCode::Unauthenticated | ErrorCode::KeyExpired)
                ) {
                    eprintln!(
                        "warning: the profile's previous key at {} could not be revoked ({e}); revoke it there",
                        old.server
                    );
                }
            }
        }
    }
    let username = text::short(&issued.user.username);
    profiles.profiles.insert(
        name.clone(),
        Profile {
            server: server.clone(),
            username: Some(username.clone()),
            api_key: Some(Secret::new(issued.api_key)),
            key_id: issued.key_id,
            ca_file: ca_file.map(|p| std::path::absolute(&p).unwrap_or(p)),
            allow_http: trust::check_server_url(&server, false).is_err(),
        },
    );
    profiles.active = Some(name);
    profiles.save(dir)?;
    println!("Logged in to {server} as {username}");
    Ok(ExitCode::SUCCESS)
}

fn prompt(question: &str) -> anyhow::Result<String> {
    if !std::io::stdin().is_terminal() {
        bail!("no username: pass --username");
    }
    eprint!("{question}");
    std::io::stderr().flush()?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(line.trim().to_owned())
}

/// The profile a command works on, with its key.
fn signed_in_profile(
    profiles: &Profiles,
    requested: Option<&str>,
) -> anyhow::Result<(String, Profile, String)> {
    let name = profiles.name(requested);
    let profile =
        profiles.profiles.get(&name).cloned().with_context(|| {
            format!("no profile `{name}`: run `coder login --server URL` first")
        })?;
    let key = profile
        .api_key
        .as_ref()
        .map(|k| k.expose().to_owned())
        .with_context(|| format!("profile `{name}` is signed out: run `coder login`"))?;
    Ok((name, profile, key))
}

async fn whoami(
    dir: &std::path::Path,
    requested: Option<&str>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let profiles = Profiles::load(dir)?;
    let (name, profile, key) = signed_in_profile(&profiles, requested)?;
    let client = profile_client(&profile, Some(key))?;
    let user = client.me().await.map_err(|e| match e.code() {
        Some(ErrorCode::KeyExpired) => anyhow::anyhow!(
            "the key of profile `{name}` expired on {}: run `coder login` to sign in again",
            profile.server
        ),
        Some(ErrorCode::Unauthenticated) => anyhow::anyhow!(
            "the key of profile `{name}` is no longer valid on {}: run `coder login`",
            profile.server
        ),
        _ => anyhow::Error::new(e),
    })?;
    // The key's expiry, from the key list (an older server lists none: shown as unknown).
    let expires_at = match &profile.key_id {
        Some(id) => client
            .keys()
            .await
            .ok()
            .and_then(|keys| keys.into_iter().find(|k| k.id == *id))
            .map(|k| k.expires_at),
        None => None,
    };
    if json || !std::io::stdout().is_terminal() {
        let out = serde_json::json!({
            "server": profile.server,
            "profile": name,
            "user": user,
            "key": {"id": profile.key_id, "expires_at": expires_at.clone().flatten()},
        });
        println!("{}", text::json(&out));
    } else {
        println!("Server:  {}", profile.server);
        println!(
            "User:    {} ({} <{}>)",
            text::short(&user.username),
            text::short(&user.name),
            text::short(&user.email)
        );
        let roles: Vec<String> = user
            .access
            .iter()
            .map(|b| format!("{} ({})", b.role, text::short(&b.scope)))
            .collect();
        println!(
            "Roles:   {}",
            if roles.is_empty() {
                "none".to_owned()
            } else {
                roles.join(", ")
            }
        );
        println!("Profile: {name}");
        match expires_at {
            Some(Some(at)) => println!("Key:     expires {}", text::short(&at)),
            Some(None) => println!("Key:     never expires"),
            None => {}
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// What became of a key at logout.
enum Revocation {
    Revoked,
    /// The server no longer knows it (revoked or expired already).
    AlreadyGone,
    /// `--force`: the server could not be asked; the key may still be valid there.
    Forgotten(anyhow::Error),
}

async fn logout(
    dir: &std::path::Path,
    requested: Option<&str>,
    force: bool,
) -> anyhow::Result<ExitCode> {
    let mut profiles = Profiles::load(dir)?;
    let (name, profile, key) = signed_in_profile(&profiles, requested)?;
    let outcome = match revoke_profile_key(&profile, &key).await {
        Ok(outcome) => outcome,
        Err(e) if force => Revocation::Forgotten(e),
        Err(e) => {
            return Err(e.context(
                "the key was not revoked; it is still in the profile (`coder logout --force` forgets it here anyway)",
            ));
        }
    };
    if let Some(p) = profiles.profiles.get_mut(&name) {
        p.api_key = None;
        p.key_id = None;
    }
    profiles.save(dir)?;
    let server = &profile.server;
    match outcome {
        Revocation::Revoked => {
            println!("Logged out of {server} (profile `{name}`): the API key is revoked");
        }
        Revocation::AlreadyGone => println!(
            "Logged out of {server} (profile `{name}`): the server no longer knew the key (already revoked or expired); it is removed here"
        ),
        Revocation::Forgotten(e) => {
            println!("Logged out of {server} (profile `{name}`): the key is removed here only");
            eprintln!(
                "warning: the key could not be revoked ({e}); it stays valid on {server} until an administrator revokes it"
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Revokes the profile's key on its server.
async fn revoke_profile_key(profile: &Profile, key: &str) -> anyhow::Result<Revocation> {
    let client = profile_client(profile, Some(key.to_owned()))?;
    let gone = |e: &client::ApiFailure| {
        matches!(
            e.code(),
            Some(ErrorCode::NotFound | ErrorCode::Unauthenticated | ErrorCode::KeyExpired)
        )
    };
    let id = match &profile.key_id {
        Some(id) => id.clone(),
        None => match client.keys().await {
            Ok(keys) => match keys.into_iter().find(|k| key.starts_with(&k.prefix)) {
                Some(k) => k.id,
                None => return Ok(Revocation::AlreadyGone),
            },
            Err(e) if gone(&e) => return Ok(Revocation::AlreadyGone),
            Err(e) => return Err(e.into()),
        },
    };
    match client.revoke_key(&id).await {
        Ok(()) => Ok(Revocation::Revoked),
        Err(e) if gone(&e) => Ok(Revocation::AlreadyGone),
        Err(e) => Err(e.into()),
    }
}

fn profile_list(dir: &std::path::Path) -> anyhow::Result<ExitCode> {
    let profiles = Profiles::load(dir)?;
    if profiles.profiles.is_empty() {
        eprintln!("no profiles yet: run `coder login --server URL`");
        return Ok(ExitCode::SUCCESS);
    }
    let active = profiles.name(None);
    for (name, profile) in &profiles.profiles {
        let marker = if *name == active { "*" } else { " " };
        let who = match (&profile.username, &profile.api_key) {
            (Some(user), Some(_)) => text::short(user),
            _ => "(signed out)".to_owned(),
        };
        println!("{marker} {name}\t{}\t{who}", profile.server);
    }
    Ok(ExitCode::SUCCESS)
}

fn profile_use(dir: &std::path::Path, name: &str) -> anyhow::Result<ExitCode> {
    let mut profiles = Profiles::load(dir)?;
    if !profiles.profiles.contains_key(name) {
        let known: Vec<&str> = profiles.profiles.keys().map(String::as_str).collect();
        bail!(
            "no profile `{name}` (profiles: {})",
            if known.is_empty() {
                "none".to_owned()
            } else {
                known.join(", ")
            }
        );
    }
    profiles.active = Some(name.to_owned());
    profiles.save(dir)?;
    println!("active profile: {name}");
    Ok(ExitCode::SUCCESS)
}
