//! `coder-server serve`: run the daemon.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, ValueEnum};

use std::time::Duration;

use crate::http::client::TrustedProxies;
use crate::server::listen::ConnectionLimits;
use crate::server::{Lifetimes, ServeOptions, serve};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Readable lines.
    Text,
    /// One JSON object a line.
    Json,
}

#[derive(Debug, Parser)]
pub struct ServeArgs {
    /// The setup repository to watch; created from the template (with git init) when missing.
    #[arg(long, env = "CODERFLOW_SETUP_REPO", default_value = "setup-repo")]
    pub setup_repo: PathBuf,
    /// Where users, sessions and keys are stored, and the admin socket lives.
    #[arg(long, env = "CODERFLOW_DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,
    /// Address to listen on (port 0: any free port).
    #[arg(long, env = "CODERFLOW_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// The URL users reach the server at [default: http://<listen>].
    #[arg(long, env = "CODERFLOW_PUBLIC_URL")]
    pub public_url: Option<url::Url>,
    /// Log format on stderr; filter with RUST_LOG.
    #[arg(long, env = "CODERFLOW_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Seconds a browser has to finish an SSO login (state, nonce and PKCE verifier lifetime).
    #[arg(long, value_name = "SECONDS", default_value_t = 600, value_parser = clap::value_parser!(u64).range(1..))]
    pub login_state_ttl: u64,
    /// Seconds a CLI device code stays valid.
    #[arg(long, value_name = "SECONDS", default_value_t = 600, value_parser = clap::value_parser!(u64).range(1..))]
    pub device_code_ttl: u64,
    /// Minimum seconds between two polls of a device code.
    #[arg(long, value_name = "SECONDS", default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..))]
    pub device_poll_interval: u64,
    /// Seconds a browser session lasts.
    #[arg(long, value_name = "SECONDS", default_value_t = 43200, value_parser = clap::value_parser!(u64).range(1..))]
    pub session_ttl: u64,
    /// Days audit events are kept (at most 100,000 events are kept in any case).
    #[arg(long, value_name = "DAYS", default_value_t = 90, value_parser = clap::value_parser!(u64).range(1..=3650))]
    pub audit_retention_days: u64,
    /// Seconds one request to the identity provider (discovery, JWKS, token, userinfo) may take.
    #[arg(long, value_name = "SECONDS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=120))]
    pub idp_timeout: u64,
    /// Seconds a client has to send a request's headers, from connecting or from the request's
    /// first byte; slower clients are disconnected.
    #[arg(long, value_name = "SECONDS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=300))]
    pub header_timeout: u64,
    /// Seconds a kept-alive connection may wait for its next request before it is closed (keep
    /// it above your proxy's keep-alive timeout).
    #[arg(long, value_name = "SECONDS", default_value_t = 75, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub idle_timeout: u64,
    /// Connections served at once; more wait until one closes.
    #[arg(long, value_name = "N", default_value_t = 1024, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub max_connections: u64,
    /// Proxies (addresses or CIDR blocks, comma-separated) whose X-Forwarded-For names the
    /// client; without it the header is ignored.
    #[arg(long, env = "CODERFLOW_TRUSTED_PROXIES", value_name = "CIDR[,CIDR...]", value_parser = parse_trusted_proxies)]
    pub trusted_proxies: Option<TrustedProxies>,
    /// The longest any API key may live, in days (1-3650); a longer request gets this.
    /// Without it, keys made with `POST /api/keys` live as asked (or forever).
    #[arg(long, env = "CODERFLOW_API_KEY_MAX_DAYS", value_name = "DAYS", value_parser = clap::value_parser!(u64).range(1..=3650))]
    pub api_key_max_days: Option<u64>,
    /// Days the keys of device logins and `coder login` live (1-3650); capped by
    /// --api-key-max-days.
    #[arg(long, env = "CODERFLOW_CLI_KEY_DAYS", value_name = "DAYS", default_value_t = 90, value_parser = clap::value_parser!(u64).range(1..=3650))]
    pub cli_key_days: u64,
    /// Check oidc.json every SECONDS instead of relying on file events (inotify): for setup
    /// repositories on network filesystems, where changes made on another machine raise no event.
    #[arg(long, env = "CODERFLOW_WATCH_POLL", value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub watch_poll: Option<u64>,
    #[command(flatten)]
    pub database: super::database::DatabaseArgs,
}

fn parse_trusted_proxies(s: &str) -> Result<TrustedProxies, String> {
    s.parse()
}

/// Runs the daemon on a multi-threaded runtime until SIGTERM or SIGINT.
///
/// Fails as [`serve`] does.
pub(crate) fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let options = ServeOptions {
        setup_repo: args.setup_repo,
        data_dir: args.data_dir,
        listen: args.listen,
        public_url: args.public_url,
        lifetimes: Lifetimes {
            login_state: Duration::from_secs(args.login_state_ttl),
            device_code: Duration::from_secs(args.device_code_ttl),
            device_poll_interval: Duration::from_secs(args.device_poll_interval),
            session: Duration::from_secs(args.session_ttl),
            audit_retention: Duration::from_secs(args.audit_retention_days * 86_400),
            api_key_max_days: args.api_key_max_days,
            cli_key_days: args.cli_key_days,
        },
        idp_timeout: Duration::from_secs(args.idp_timeout),
        connections: ConnectionLimits {
            header_timeout: Duration::from_secs(args.header_timeout),
            idle_timeout: Duration::from_secs(args.idle_timeout),
            max_connections: usize::try_from(args.max_connections).unwrap_or(usize::MAX),
        },
        trusted_proxies: args.trusted_proxies.unwrap_or_default(),
        database_url: args.database.url()?,
        watch_poll: args.watch_poll.map(Duration::from_secs),
    };
    // Blocking work is Argon2, git and file I/O: a few threads are plenty on any machine, and
    // each one costs memory.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .max_blocking_threads(16)
        .enable_all()
        .build()?;
    runtime.block_on(serve(options))?;
    Ok(ExitCode::SUCCESS)
}
