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
//! Layers, bottom to top. A module uses modules of its own layer or of layers below, and two
//! modules never use each other; [`layering`](../src/layering.rs)'s test reads the sources and
//! fails otherwise. Within [`http`], the resources (one file per route group) share its lower
//! modules and never import each other.
//!
//! 1. Foundation, no domain: [`clock`] (wall-clock time for records), [`secret`] (the redacting
//!    secret string), [`blocking`] (the one helper through which blocking work leaves the async
//!    runtime), [`shutdown`] (the one signal every task selects on), [`fsutil`] (crash-safe file
//!    writes that follow no link), [`report`] (error chains for people), and [`vocab`], the
//!    shared vocabulary: roles, access bindings, the user view, the provider's state.
//! 2. [`setup`]: the setup repository. `oidc.json`'s model and schema validation, git safety
//!    (libgit2), the folder watch (and its re-watch when the folder is replaced), creating a
//!    repository from the template. No HTTP, no live state.
//! 3. [`store`]: sled; users (unique email index, the last-admin rule), SSO identities, API
//!    keys, sessions, pending logins, device codes, the audit trail; backups; flushed before a
//!    change is acknowledged.
//! 4. [`audit`]: the kinds of audited events, the one function that records them, and the
//!    throttle for unauthenticated failures.
//! 5. [`auth`]: the one permission check, credentials (Argon2id passwords, `cf_` API keys,
//!    tokens), account rules (when access ends, credentials end), the first admin, SSO
//!    provisioning (`link_by_email`), rate limits, name validation, issuing and authenticating
//!    API keys (with the key cache), the device-login steps.
//! 6. [`reload`]: the one reload path (read -> validate -> build -> swap), the live
//!    configuration ([`reload::LiveConfig`] in an `ArcSwap`), the reload status and counters.
//! 7. [`oidc`]: the relying party. The live identity provider (discovery and JWKS in the
//!    background, cached, refreshed; one task writes its snapshot), its HTTP client (timeouts,
//!    size caps, no redirects, confined to the issuer, private CAs), the authorization code flow
//!    with every ID token check, claims read as providers send them, recent failures.
//! 8. [`state`]: what every request handler shares ([`state::AppState`]).
//! 9. [`http`]: the warp routes, one file per resource; one rejection handler; request bodies;
//!    the client address; security headers.
//! 10. [`server`]: the daemon. Start-up, the HTTP listener (timeouts, connection cap), signals,
//!     the admin socket (`<data-dir>/admin.sock`), housekeeping, graceful shutdown.
//! 11. Entry points: [`commands`] (`coder-server`'s subcommands, one file each), [`cli`] (the
//!     `coder` client: profiles, device login, its HTTP client; it uses only the foundation and
//!     the vocabulary of the server), [`fuzz_checks`] (the properties the fuzz targets check).
//!
//! The binaries in `src/bin/` only parse arguments, set up logging and call into this library.
//! Items are `pub(crate)` unless the binaries, tests or examples reach them (the
//! `unreachable_pub` lint keeps it so).

pub mod audit;
pub mod auth;
pub(crate) mod blocking;
pub mod cli;
pub(crate) mod clock;
pub mod commands;
pub(crate) mod fsutil;
pub mod fuzz_checks;
pub(crate) mod http;
pub mod oidc;
pub mod reload;
pub mod report;
pub(crate) mod secret;
pub mod server;
pub mod setup;
pub(crate) mod shutdown;
pub(crate) mod state;
pub mod store;
pub mod vocab;

#[cfg(test)]
mod layering;
