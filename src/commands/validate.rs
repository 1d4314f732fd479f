//! `coder-server validate [PATH]`: check an `oidc.json` the way the daemon would, for CI
//! pipelines of a setup repository.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use crate::setup::config::{OIDC_FILE, load_idp_ca, parse_oidc_config};

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// A setup repository (its oidc.json is checked) or a file.
    #[arg(env = "CODERFLOW_SETUP_REPO", default_value = "setup-repo")]
    pub path: PathBuf,
}

/// Prints `valid` or every problem; exit 0 when valid (or when a setup repository has no
/// `oidc.json`, which means SSO disabled), 1 when invalid.
///
/// Fails when the path does not exist or cannot be read.
pub(crate) fn run(args: ValidateArgs) -> anyhow::Result<ExitCode> {
    let (file, in_repo) = if args.path.is_dir() {
        (args.path.join(OIDC_FILE), true)
    } else {
        (args.path.clone(), false)
    };
    let bytes = match std::fs::read(&file) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && in_repo => {
            println!(
                "{}: no {OIDC_FILE}: SSO is disabled and local login allowed",
                args.path.display()
            );
            return Ok(ExitCode::SUCCESS);
        }
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", file.display())),
    };
    let root = file.parent().unwrap_or(std::path::Path::new("."));
    let parsed = parse_oidc_config(&bytes).and_then(|mut config| {
        load_idp_ca(&mut config, root).map_err(|problem| vec![problem])?;
        Ok(config)
    });
    match parsed {
        Ok(config) => {
            let sso = if config.enabled {
                format!("SSO enabled, issuer {}", config.issuer)
            } else {
                "SSO disabled".to_owned()
            };
            println!("{}: valid ({sso})", file.display());
            Ok(ExitCode::SUCCESS)
        }
        Err(problems) => {
            for problem in &problems {
                println!("{}: {problem}", file.display());
            }
            let count = problems.len();
            let noun = if count == 1 { "problem" } else { "problems" };
            eprintln!("{}: invalid, {count} {noun}", file.display());
            Ok(ExitCode::FAILURE)
        }
    }
}
