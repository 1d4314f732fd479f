//! # CoderFlow SSO
//!
//! The single sign-on part of a self-hosted developer server. The daemon, `coder-server`,
//! watches a *setup repository* (a git folder of configuration); its `oidc.json` configures
//! OpenID Connect SSO. The daemon validates the file against `schemas/oidc.schema.json`, makes
//! sure git ignores it (it holds a secret) and hot-swaps the live configuration behind its HTTP
//! endpoints the moment the file is saved, keeping the last good configuration when an edit is
//! broken.
//!
//! # Layout
//!
//! - [`setup`]: the setup repository. `oidc.json`'s model and schema validation, git safety
//!   (libgit2), the folder watch, creating a repository from the template. No HTTP, no live state.
//! - [`reload`]: the one reload path (read -> validate -> build -> swap), the live configuration
//!   ([`reload::LiveConfig`] in an `ArcSwap`), the reload status and counters.
//! - [`server`]: the daemon. Start-up, [`server::AppState`], signals, the admin socket
//!   (`<data-dir>/admin.sock`), graceful shutdown.
//! - [`http`]: the warp routes, one file per resource; one rejection handler; security headers.
//! - [`oidc`]: the relying party. The live identity provider (discovery and JWKS in the
//!   background, cached, refreshed), its HTTP client (timeouts, size caps, no redirects), and the
//!   authorization code flow with every ID token check. No store, no pages.
//! - [`auth`]: roles and the one permission check, credentials (Argon2id passwords, `cf_` API
//!   keys, tokens), account rules, the first admin, SSO provisioning, rate limits.
//! - [`store`]: sled; users (unique email index), SSO identities, API keys, sessions, pending
//!   logins; flushed before a change is acknowledged.
//! - [`commands`]: `coder-server`'s subcommands, one file each.
//! - [`cli`]: the `coder` client: profiles, device login (`coder login --sso`), its HTTP client.
//! - [`audit`]: the kinds of audited events and the one function that records them.
//! - [`blocking`]: the one helper through which blocking work leaves the async runtime.
//! - [`fuzz_checks`]: the properties the fuzz targets (`fuzz/`) and their regression tests check.
//! - [`secret`], [`clock`]: the redacting secret string; wall-clock time for records.
//!
//! The binaries in `src/bin/` only parse arguments, set up logging and call into this library.

pub mod audit;
pub mod auth;
pub mod blocking;
pub mod cli;
pub mod clock;
pub mod commands;
pub mod fuzz_checks;
pub mod http;
pub mod oidc;
pub mod reload;
pub mod secret;
pub mod server;
pub mod setup;
pub mod store;
