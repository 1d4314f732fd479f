//! Integration tests: the real `coder-server` binary on 127.0.0.1:0 with temporary setup
//! repositories (see `support`).

// Test and tool code: a failure panics with its cause, and output is the point.
#![allow(
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr
)]

mod access;
mod accounts;
mod audit;
mod backchannel;
mod backup;
mod cli;
mod cli_trust;
mod database;
mod deploy;
mod device;
mod docs;
mod faults;
mod fuzz_regressions;
mod git;
mod http;
mod idp;
mod key_lifetimes;
mod logout;
mod people;
mod providers;
mod reload;
mod replicas;
mod security;
mod sessions;
mod settings;
mod sso;
mod startup;
mod store_contract;
mod support;
