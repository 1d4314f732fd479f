//! Shows what the daemon makes of an `oidc.json`: every default applied, legacy roles mapped,
//! the secret redacted; or every problem with its position.
//!
//! `cargo run --example check_oidc -- setup-repo-template/oidc.example.json`

// Test and tool code: a failure panics with its cause, and output is the point.
#![allow(
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr
)]

use std::process::ExitCode;

use coderflow::setup::config::parse_oidc_config;

fn main() -> ExitCode {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: check_oidc <path to oidc.json>");
        return ExitCode::from(2);
    };
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) => {
            eprintln!("error: cannot read {path}: {e}");
            return ExitCode::FAILURE;
        }
    };
    match parse_oidc_config(&bytes) {
        Ok(config) => {
            println!("{config:#?}");
            println!("local login allowed: {}", config.local_auth_allowed());
            ExitCode::SUCCESS
        }
        Err(problems) => {
            for problem in problems {
                println!("{path}: {problem}");
            }
            ExitCode::FAILURE
        }
    }
}
