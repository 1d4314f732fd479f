//! `coder-server`: the CoderFlow daemon and its admin commands.

use std::process::ExitCode;

use clap::Parser;
use coderflow::commands::{ServerCli, init_tracing, print_error};
use coderflow::server::ServeError;

/// Exit code of a daemon that refuses to start on an invalid `oidc.json`.
const EXIT_INVALID_CONFIG: u8 = 2;

fn main() -> ExitCode {
    let cli = ServerCli::parse();
    init_tracing(cli.log_format());
    match cli.run() {
        Ok(code) => code,
        Err(error) => {
            print_error(&error);
            match error.downcast_ref::<ServeError>() {
                Some(ServeError::InvalidConfig(_)) => ExitCode::from(EXIT_INVALID_CONFIG),
                _ => ExitCode::FAILURE,
            }
        }
    }
}
