//! What every request handler shares: the live configuration's owner, the store, the provider,
//! the limits and caches, and the public URL. [`AppState`] is built once at start-up by
//! [`crate::server`] and read by [`crate::http`]; it owns no task and does no I/O itself.

use std::sync::Arc;
use std::time::Duration;

use crate::auth::key_cache::KeyCache;
use crate::auth::key_usage::KeyUsage;
use crate::auth::ratelimit::RateLimits;
use crate::oidc::ProviderHandle;
use crate::reload::{ReloadOutcome, ReloadStatus, Reloader, Trigger};
use crate::store::{ReplicaRecord, Store, StoreError};

/// How often each replica records itself in the store (`crate::server`'s heartbeat).
pub(crate) const REPLICA_HEARTBEAT: Duration = Duration::from_secs(10);

/// How long the login flows' records and the credentials they give live (`serve`'s flags).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifetimes {
    /// State, nonce and PKCE verifier of an SSO login in progress.
    pub login_state: Duration,
    /// A CLI device code.
    pub device_code: Duration,
    /// The minimum time between two polls of a device code.
    pub device_poll_interval: Duration,
    /// A browser session.
    pub session: Duration,
    /// How long audit events are kept.
    pub audit_retention: Duration,
    /// The longest an API key may live (`--api-key-max-days`); `None`: no cap.
    pub api_key_max_days: Option<u64>,
    /// How long keys from device logins and `coder login` live (`--cli-key-days`).
    pub cli_key_days: u64,
}

impl Lifetimes {
    /// When a key asked to live `requested_days` (or by default) expires, from `now_unix`:
    /// capped at `api_key_max_days` (a longer request gets the cap, not a refusal); `None`:
    /// never.
    pub fn api_key_expiry(&self, requested_days: Option<u64>, now_unix: u64) -> Option<u64> {
        let days = match (requested_days, self.api_key_max_days) {
            (Some(asked), Some(max)) => Some(asked.min(max)),
            (asked, max) => asked.or(max),
        };
        days.map(|d| now_unix.saturating_add(d.saturating_mul(86_400)))
    }

    /// When a key from a device login or `coder login` expires, from `now_unix`.
    pub fn cli_key_expiry(&self, now_unix: u64) -> Option<u64> {
        self.api_key_expiry(Some(self.cli_key_days), now_unix)
    }
}

impl Default for Lifetimes {
    fn default() -> Self {
        Lifetimes {
            login_state: Duration::from_secs(600),
            device_code: Duration::from_secs(600),
            device_poll_interval: Duration::from_secs(5),
            session: Duration::from_secs(43_200),
            audit_retention: Duration::from_secs(90 * 86_400),
            api_key_max_days: None,
            cli_key_days: 90,
        }
    }
}

/// State every request handler shares; cloning it is one reference count (handlers clone it
/// on every request).
#[derive(Clone)]
pub struct AppState(Arc<SharedState>);

impl std::ops::Deref for AppState {
    type Target = SharedState;

    fn deref(&self) -> &SharedState {
        &self.0
    }
}

/// What [`AppState`] shares.
pub struct SharedState {
    /// Owner of the live configuration and its reloads.
    pub reloader: Arc<Reloader>,
    /// Users, keys and sessions.
    pub store: Store,
    /// The public URL without a trailing slash; the redirect URI derives from it, never from
    /// request headers.
    pub public_url: Arc<str>,
    /// `scheme://host[:port]` of the public URL: the only `Origin` trusted for cookie requests.
    pub public_origin: Arc<str>,
    /// Lifetimes of login state, device codes and sessions.
    pub lifetimes: Lifetimes,
    /// Login, device-code and user-code rate limits.
    pub limits: Arc<RateLimits>,
    /// API key uses not yet written to the store.
    pub key_usage: Arc<KeyUsage>,
    /// The live identity provider of the current configuration.
    pub provider: Arc<ProviderHandle>,
    /// Authenticated API keys and their users, valid until the store's auth epoch moves.
    pub key_cache: Arc<KeyCache>,
    /// Which unauthenticated failures the audit trail records one by one.
    pub audit_throttle: Arc<crate::audit::AuditThrottle>,
    /// The last SSO login failures with their causes, for the settings page.
    pub sso_failures: Arc<crate::oidc::failures::RecentFailures>,
    /// This process among the replicas of one store: the host name and a random suffix.
    pub replica_id: Arc<str>,
}

impl AppState {
    /// The state of a daemon whose public URL is `public_url` (no trailing slash).
    pub fn new(
        reloader: Arc<Reloader>,
        store: Store,
        public_url: &str,
        lifetimes: Lifetimes,
        provider: Arc<ProviderHandle>,
    ) -> AppState {
        let public_origin = url::Url::parse(public_url)
            .map(|u| u.origin().ascii_serialization())
            .unwrap_or_default();
        AppState(Arc::new(SharedState {
            reloader,
            store,
            public_url: public_url.into(),
            public_origin: public_origin.into(),
            lifetimes,
            limits: Arc::new(RateLimits::default()),
            key_usage: Arc::new(KeyUsage::default()),
            provider,
            key_cache: Arc::new(KeyCache::default()),
            audit_throttle: Arc::default(),
            sso_failures: Arc::default(),
            replica_id: new_replica_id().into(),
        }))
    }

    /// The reload status with the identity provider's state.
    pub fn reload_status(&self) -> ReloadStatus {
        ReloadStatus {
            provider: self.provider.status(),
            ..(*self.reloader.status()).clone()
        }
    }

    /// Reloads through the one reload path; the outcome carries the provider's state.
    pub async fn reload(&self, trigger: Trigger) -> ReloadOutcome {
        let mut outcome = self.reloader.reload(trigger).await;
        outcome.status.provider = self.provider.status();
        outcome
    }

    /// The replicas seen within three heartbeats, by id (with sled: this daemon).
    ///
    /// Fails when the store cannot be read.
    pub async fn replicas(&self) -> Result<Vec<ReplicaRecord>, StoreError> {
        let since = crate::clock::unix_secs().saturating_sub(3 * REPLICA_HEARTBEAT.as_secs());
        self.store.replicas(since).await
    }

    /// The redirect URI to register at the identity provider.
    pub fn redirect_uri(&self) -> String {
        format!("{}/auth/oidc/callback", self.public_url)
    }
}

/// A replica id: the host name (a pod's name in Kubernetes) and six random hex digits.
fn new_replica_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "coder-server".to_owned());
    let mut suffix = [0u8; 3];
    rand::fill(&mut suffix[..]);
    let suffix: String = suffix.iter().map(|b| format!("{b:02x}")).collect();
    format!("{host}-{suffix}")
}
