//! `coder-server serve`: run the daemon.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, ValueEnum};

use crate::server::{ServeOptions, serve};

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
}

/// Runs the daemon on a multi-threaded runtime until SIGTERM or SIGINT.
///
/// Fails as [`serve`] does.
pub fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let options = ServeOptions {
        setup_repo: args.setup_repo,
        data_dir: args.data_dir,
        listen: args.listen,
        public_url: args.public_url,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(serve(options))?;
    Ok(ExitCode::SUCCESS)
}
