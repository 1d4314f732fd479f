//! `coder-server schema`: print the embedded JSON schema of `oidc.json`.

use std::process::ExitCode;

use crate::setup::config::OIDC_SCHEMA;

pub(crate) fn run() -> anyhow::Result<ExitCode> {
    print!("{OIDC_SCHEMA}");
    Ok(ExitCode::SUCCESS)
}
