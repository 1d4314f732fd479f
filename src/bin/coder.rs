//! `coder`: the CoderFlow command-line client.
//!
//! Profiles and `coder login --sso` arrive with the device-login work; until then this binary
//! only reports its version and help.

use clap::Parser;

/// CoderFlow client: sign in to a CoderFlow server and keep server profiles.
#[derive(Debug, Parser)]
#[command(name = "coder", version, about, long_about = None)]
struct CoderCli {}

fn main() {
    CoderCli::parse();
}
