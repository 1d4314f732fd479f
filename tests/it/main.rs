//! Integration tests: the real `coder-server` binary on 127.0.0.1:0 with temporary setup
//! repositories (see `support`).

mod accounts;
mod audit;
mod backup;
mod cli;
mod cli_trust;
mod device;
mod docs;
mod faults;
mod fuzz_regressions;
mod git;
mod http;
mod idp;
mod people;
mod providers;
mod reload;
mod security;
mod sessions;
mod settings;
mod sso;
mod startup;
mod support;
