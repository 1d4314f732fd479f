//! The live identity provider: discovery and JWKS fetched in the background from the current
//! configuration, cached per (issuer, client_id), swapped atomically, refreshed periodically and
//! on an unknown `kid`, retried with backoff while unreachable.
//!
//! Nothing here blocks a request: a login reads the current snapshot and gets either a ready
//! provider or the reason there is none. Local login and API keys never touch this module.
//!
//! The snapshot has one writer, [`run_provider`]. A request that learns something (the provider
//! stopped answering, or a JWKS fetched again for a new `kid`) reports it to that task; the keys
//! it fetched are handed to concurrent logins at once through the refetch state, before the task
//! installs them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use openidconnect::{IssuerUrl, JsonWebKeySet};

use super::http::ProviderHttp;
use crate::reload::{LiveConfig, Reloader};
use crate::setup::config::OidcConfig;
use crate::shutdown::Shutdown;

/// How long discovery and keys are used before they are fetched again.
const REFRESH: Duration = Duration::from_secs(3600);
/// First and longest wait between attempts while the provider is unreachable.
const FIRST_RETRY: Duration = Duration::from_secs(1);
const MAX_RETRY: Duration = Duration::from_secs(30);
/// The JWKS is fetched again for an unknown `kid` at most this often.
const JWKS_REFETCH_GAP: Duration = Duration::from_secs(5);
/// Providers remembered for a switch back.
const CACHE_ENTRIES: usize = 8;
/// A login starting longer than this after the provider last answered checks that it still
/// answers, so a browser is never sent to a provider that is down.
const PROBE_AFTER: Duration = Duration::from_secs(10);
/// How long that check may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

pub use crate::vocab::{ProviderState, ProviderStatus};

/// Discovery members openidconnect's core metadata does not read.
#[derive(Debug, Clone, Default, serde::Deserialize, serde::Serialize)]
pub struct ExtraMetadata {
    /// RFC 9207: the provider adds `iss` to its authorization responses, so a response
    /// without it is refused (a mix-up attack strips it).
    #[serde(default, deserialize_with = "lenient_bool")]
    pub authorization_response_iss_parameter_supported: bool,
    /// RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0).
    #[serde(default)]
    pub end_session_endpoint: Option<String>,
    /// OpenID Connect Back-Channel Logout 1.0.
    #[serde(default, deserialize_with = "lenient_bool")]
    pub backchannel_logout_supported: bool,
    #[serde(default, deserialize_with = "lenient_bool")]
    pub backchannel_logout_session_supported: bool,
}

impl openidconnect::AdditionalProviderMetadata for ExtraMetadata {}

/// A discovery document with [`ExtraMetadata`].
pub(crate) type ProviderMetadata = openidconnect::ProviderMetadata<
    ExtraMetadata,
    openidconnect::core::CoreAuthDisplay,
    openidconnect::core::CoreClientAuthMethod,
    openidconnect::core::CoreClaimName,
    openidconnect::core::CoreClaimType,
    openidconnect::core::CoreGrantType,
    openidconnect::core::CoreJweContentEncryptionAlgorithm,
    openidconnect::core::CoreJweKeyManagementAlgorithm,
    openidconnect::core::CoreJsonWebKey,
    openidconnect::core::CoreResponseMode,
    openidconnect::core::CoreResponseType,
    openidconnect::core::CoreSubjectIdentifierType,
>;

/// A boolean as real providers write it: `true`, `"true"`, anything else false (an optional
/// member of an unexpected type must not fail discovery).
fn lenient_bool<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    let value: serde_json::Value = serde::Deserialize::deserialize(deserializer)?;
    Ok(match value {
        serde_json::Value::Bool(b) => b,
        serde_json::Value::String(s) => s.eq_ignore_ascii_case("true"),
        _ => false,
    })
}

/// A configuration ready for a login: the enabled SSO configuration and its provider.
pub struct Ready<'a> {
    pub config: &'a OidcConfig,
    pub discovered: Arc<Discovered>,
}

/// Why no login can use the provider now.
pub enum NotReady<'a> {
    /// SSO is not enabled.
    Disabled,
    /// The provider of this configuration is not ready: its status says why.
    Unavailable {
        config: &'a OidcConfig,
        status: ProviderStatus,
    },
}

/// One provider's discovery document with its keys.
#[derive(Debug)]
pub struct Discovered {
    pub issuer: String,
    pub client_id: String,
    pub metadata: ProviderMetadata,
    /// When discovery (or the last JWKS refetch) happened.
    pub fetched_at: Instant,
}

/// What a request sees: the provider for the current configuration, if any.
#[derive(Debug, Default)]
struct Snapshot {
    key: Option<(String, String)>,
    status: ProviderStatus,
    discovered: Option<Arc<Discovered>>,
}

/// The last JWKS refetch: when, and the provider with the keys it fetched.
#[derive(Debug, Default)]
struct Refetch {
    at: Option<Instant>,
    fresh: Option<Arc<Discovered>>,
}

/// What a request tells [`run_provider`].
#[derive(Debug)]
enum Report {
    /// A request to the provider of (issuer, client_id) failed: `detail`.
    Unreachable {
        key: (String, String),
        detail: String,
    },
    /// The provider with keys fetched again.
    Keys(Arc<Discovered>),
}

/// Shared handle to the live provider; cheap to clone as `Arc<ProviderHandle>`.
#[derive(Debug)]
pub struct ProviderHandle {
    /// The client every request uses: `base_http`, plus the live configuration's `idp_ca_file`.
    http: ArcSwap<ProviderHttp>,
    /// The client trusting the built-in and system authorities only.
    base_http: ProviderHttp,
    /// The extra authorities `http` trusts now.
    roots: Mutex<Option<Arc<[u8]>>>,
    current: ArcSwap<Snapshot>,
    /// Providers discovered earlier, by (issuer, client_id).
    cache: Mutex<HashMap<(String, String), Arc<Discovered>>>,
    /// Single flight for JWKS refetches, with the time and result of the last one.
    jwks_refetch: tokio::sync::Mutex<Refetch>,
    /// What requests learnt, for [`run_provider`] to apply.
    reports: tokio::sync::mpsc::UnboundedSender<Report>,
    /// The receiving end, taken by [`run_provider`].
    report_inbox: Mutex<Option<tokio::sync::mpsc::UnboundedReceiver<Report>>>,
    /// Asks the background task to retry now (a login found the provider unreachable).
    wake: tokio::sync::Notify,
    /// When the provider last answered (discovery, JWKS, a token exchange, a probe).
    last_answer: Mutex<Option<Instant>>,
    /// Single flight for probes.
    probe: tokio::sync::Mutex<()>,
}

impl ProviderHandle {
    pub fn new(http: ProviderHttp) -> Arc<ProviderHandle> {
        let (reports, inbox) = tokio::sync::mpsc::unbounded_channel();
        Arc::new(ProviderHandle {
            http: ArcSwap::from_pointee(http.clone()),
            base_http: http,
            roots: Mutex::new(None),
            current: ArcSwap::from_pointee(Snapshot::default()),
            cache: Mutex::new(HashMap::new()),
            jwks_refetch: tokio::sync::Mutex::new(Refetch::default()),
            reports,
            report_inbox: Mutex::new(Some(inbox)),
            wake: tokio::sync::Notify::new(),
            last_answer: Mutex::new(None),
            probe: tokio::sync::Mutex::new(()),
        })
    }

    /// Notes that the provider just answered.
    pub fn answered(&self) {
        *self.last_answer.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
    }

    fn answered_within(&self, within: Duration) -> bool {
        self.last_answer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some_and(|at| at.elapsed() < within)
    }

    /// Before a browser is sent to the provider: when it has not answered for a while, checks
    /// (one request, a few seconds at most) that its discovery document still answers. When it
    /// does not, the provider is marked unreachable and the background task retries.
    ///
    /// Fails with the status to show when the provider does not answer.
    pub async fn ensure_answering(&self, discovered: &Discovered) -> Result<(), ProviderStatus> {
        if self.answered_within(PROBE_AFTER) {
            return Ok(());
        }
        let _single = self.probe.lock().await;
        if self.answered_within(PROBE_AFTER) {
            return Ok(());
        }
        let request = openidconnect::http::Request::get(super::discovery_url(&discovered.issuer))
            .body(Vec::new())
            .map_err(|e| ProviderStatus {
                state: ProviderState::Unreachable,
                detail: e.to_string(),
            })?;
        let probe = tokio::time::timeout(
            PROBE_TIMEOUT.min(self.http().timeout()),
            openidconnect::AsyncHttpClient::call(&*self.http(), request),
        )
        .await;
        match probe {
            Ok(Ok(response)) if response.status().is_success() => {
                self.answered();
                Ok(())
            }
            failed => {
                let detail = match failed {
                    Ok(Ok(response)) => format!("discovery answered HTTP {}", response.status()),
                    Ok(Err(e)) => e.to_string(),
                    Err(_) => format!("no answer within {PROBE_TIMEOUT:?}"),
                };
                self.mark_unreachable(discovered, &detail);
                Err(ProviderStatus {
                    state: ProviderState::Unreachable,
                    detail,
                })
            }
        }
    }

    /// Marks the provider of `discovered` unreachable at once (a request to it just failed):
    /// the status and `/metrics` say so, the next login start probes it instead of sending a
    /// browser to a dead provider, and the background task retries.
    pub fn mark_unreachable(&self, discovered: &Discovered, detail: &str) {
        tracing::warn!(issuer = %discovered.issuer, error = %detail, "identity provider stopped answering");
        *self.last_answer.lock().unwrap_or_else(|e| e.into_inner()) = None;
        self.report(Report::Unreachable {
            key: (discovered.issuer.clone(), discovered.client_id.clone()),
            detail: detail.to_owned(),
        });
    }

    /// Hands `report` to [`run_provider`] (dropped when it has stopped: shutdown).
    fn report(&self, report: Report) {
        let _ = self.reports.send(report);
    }

    /// Applies a request's report to the snapshot; only [`run_provider`] calls this.
    fn apply(&self, report: Report) {
        match report {
            Report::Keys(fresh) => self.install(&fresh),
            Report::Unreachable { key, detail } => {
                self.current.rcu(|snapshot| {
                    if snapshot.key.as_ref() == Some(&key) {
                        Arc::new(Snapshot {
                            key: Some(key.clone()),
                            status: ProviderStatus {
                                state: ProviderState::Unreachable,
                                detail: detail.clone(),
                            },
                            discovered: None,
                        })
                    } else {
                        snapshot.clone()
                    }
                });
            }
        }
    }

    /// The HTTP client for this provider's requests.
    pub fn http(&self) -> Arc<ProviderHttp> {
        self.http.load_full()
    }

    /// A client for `config` (which need not be the live one: Test Connection), trusting its
    /// `idp_ca_file`.
    ///
    /// Fails when the CA file's content is unusable.
    pub fn http_for(&self, config: &OidcConfig) -> Result<ProviderHttp, String> {
        match &config.idp_ca_pem {
            None => Ok(self.base_http.clone()),
            Some(pem) => self.base_http.with_roots(pem),
        }
    }

    /// Makes every request trust `pem`'s authorities besides the system's (the live
    /// `idp_ca_file`); a change forgets cached providers so they are discovered through the new
    /// trust.
    fn use_roots(&self, pem: Option<&Arc<[u8]>>) {
        let mut roots = self.roots.lock().unwrap_or_else(|e| e.into_inner());
        if roots.as_deref() == pem.map(|p| &**p) {
            return;
        }
        let http = match pem {
            None => Ok(self.base_http.clone()),
            Some(pem) => self.base_http.with_roots(pem),
        };
        match http {
            Ok(http) => {
                self.http.store(Arc::new(http));
                *roots = pem.cloned();
                self.cache.lock().unwrap_or_else(|e| e.into_inner()).clear();
            }
            Err(e) => tracing::error!(error = %e, "the identity provider's CA file is unusable"),
        }
    }

    /// The state for the reload status.
    pub fn status(&self) -> ProviderStatus {
        self.current.load().status.clone()
    }

    /// The live configuration made ready for a login: its enabled SSO configuration paired with
    /// the discovered provider, or why there is none (SSO disabled, or the provider's status,
    /// with a nudge to the background task to retry). The one place a configuration and a
    /// provider are paired.
    pub fn ready_for<'a>(&self, live: &'a LiveConfig) -> Result<Ready<'a>, NotReady<'a>> {
        let Some(config) = live.oidc.as_ref().filter(|c| c.enabled) else {
            return Err(NotReady::Disabled);
        };
        self.ready(&config.issuer, &config.client_id)
            .map(|discovered| Ready { config, discovered })
            .map_err(|status| NotReady::Unavailable { config, status })
    }

    /// The ready provider for (issuer, client_id), or the status explaining why there is none
    /// (and a nudge to the background task to retry).
    fn ready(&self, issuer: &str, client_id: &str) -> Result<Arc<Discovered>, ProviderStatus> {
        let current = self.current.load();
        match &current.discovered {
            Some(d) if d.issuer == issuer && d.client_id == client_id => Ok(d.clone()),
            _ => {
                if current.status.state == ProviderState::Unreachable {
                    self.wake.notify_one();
                }
                Err(current.status.clone())
            }
        }
    }

    /// Fetches the JWKS of `stale` again, at most once per [`JWKS_REFETCH_GAP`] and one fetch at
    /// a time; answers the provider with the new keys, or `None` when no fetch was made or it
    /// failed.
    pub async fn refetch_jwks(&self, stale: &Arc<Discovered>) -> Option<Arc<Discovered>> {
        let mut last = self.jwks_refetch.lock().await;
        // Another request refetched while this one waited: use its keys.
        let installed = self.current.load().discovered.clone();
        for newer in [last.fresh.clone(), installed].into_iter().flatten() {
            if newer.issuer == stale.issuer
                && newer.client_id == stale.client_id
                && newer.fetched_at > stale.fetched_at
            {
                return Some(newer);
            }
        }
        if last.at.is_some_and(|at| at.elapsed() < JWKS_REFETCH_GAP) {
            return None;
        }
        last.at = Some(Instant::now());
        let keys = JsonWebKeySet::fetch_async(
            stale.metadata.jwks_uri(),
            &self.http().confined_to(&stale.issuer),
        )
        .await;
        match keys {
            Ok(keys) => {
                tracing::info!(issuer = %stale.issuer, keys = keys.keys().len(), "fetched the JWKS again for an unknown key id");
                let fresh = Arc::new(Discovered {
                    issuer: stale.issuer.clone(),
                    client_id: stale.client_id.clone(),
                    metadata: stale.metadata.clone().set_jwks(keys),
                    fetched_at: Instant::now(),
                });
                self.answered();
                last.fresh = Some(fresh.clone());
                self.report(Report::Keys(fresh.clone()));
                Some(fresh)
            }
            Err(e) => {
                let detail = super::describe(&e);
                tracing::warn!(issuer = %stale.issuer, error = %detail, "fetching the JWKS again failed");
                if matches!(e, openidconnect::DiscoveryError::Request(_)) {
                    self.mark_unreachable(stale, &detail);
                }
                None
            }
        }
    }

    /// Discovery and JWKS of `issuer`, checked to name exactly that issuer.
    ///
    /// Fails with a sentence for admins when the provider is unreachable, answers garbage, or
    /// names another issuer.
    pub async fn discover(&self, issuer: &str) -> Result<ProviderMetadata, String> {
        let url =
            IssuerUrl::new(issuer.to_owned()).map_err(|e| format!("invalid issuer URL: {e}"))?;
        ProviderMetadata::discover_async(url, &self.http().confined_to(issuer))
            .await
            .map_err(|e| super::describe(&e))
    }

    /// Makes `fresh` current (if it is still the wanted provider) and caches it.
    fn install(&self, fresh: &Arc<Discovered>) {
        self.answered();
        let key = (fresh.issuer.clone(), fresh.client_id.clone());
        {
            let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            if cache.len() >= CACHE_ENTRIES && !cache.contains_key(&key) {
                cache.clear();
            }
            cache.insert(key.clone(), fresh.clone());
        }
        self.current.rcu(|snapshot| {
            if snapshot.key.as_ref() == Some(&key) {
                Arc::new(Snapshot {
                    key: Some(key.clone()),
                    status: ProviderStatus {
                        state: ProviderState::Ready,
                        detail: format!("discovery and keys loaded from {}", fresh.issuer),
                    },
                    discovered: Some(fresh.clone()),
                })
            } else {
                snapshot.clone()
            }
        });
    }

    fn cached(&self, key: &(String, String)) -> Option<Arc<Discovered>> {
        let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        cache
            .get(key)
            .filter(|d| d.fetched_at.elapsed() < REFRESH)
            .cloned()
    }

    fn set(
        &self,
        key: Option<(String, String)>,
        state: ProviderState,
        detail: String,
        discovered: Option<Arc<Discovered>>,
    ) {
        self.current.store(Arc::new(Snapshot {
            key,
            status: ProviderStatus { state, detail },
            discovered,
        }));
    }
}

/// Follows the live configuration until shutdown: discovers the configured provider, keeps it
/// fresh, retries with backoff while it is unreachable.
pub(crate) async fn run_provider(
    handle: Arc<ProviderHandle>,
    reloader: Arc<Reloader>,
    mut shutdown: Shutdown,
) {
    let mut changes = reloader.subscribe();
    let Some(mut reports) = handle
        .report_inbox
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take()
    else {
        tracing::error!("the identity provider task runs once per handle");
        return;
    };
    let mut retry = FIRST_RETRY;
    loop {
        let live = reloader.live();
        handle.use_roots(live.oidc.as_ref().and_then(|c| c.idp_ca_pem.as_ref()));
        let wanted = live
            .oidc
            .as_ref()
            .filter(|c| c.enabled)
            .map(|c| (c.issuer.clone(), c.client_id.clone()));
        let wait = match wanted {
            None => {
                if handle.current.load().status.state != ProviderState::Disabled {
                    handle.set(
                        None,
                        ProviderState::Disabled,
                        "SSO is disabled".into(),
                        None,
                    );
                }
                retry = FIRST_RETRY;
                Duration::from_secs(24 * 3600)
            }
            Some(key) => {
                let current = handle.current.load_full();
                let same = current.key.as_ref() == Some(&key);
                let fresh = same
                    && current
                        .discovered
                        .as_ref()
                        .is_some_and(|d| d.fetched_at.elapsed() < REFRESH);
                if fresh {
                    let age = current
                        .discovered
                        .as_ref()
                        .map_or(REFRESH, |d| d.fetched_at.elapsed());
                    REFRESH.saturating_sub(age)
                } else if let Some(cached) = (!same).then(|| handle.cached(&key)).flatten() {
                    handle.set(Some(key.clone()), ProviderState::Ready, String::new(), None);
                    handle.install(&cached);
                    retry = FIRST_RETRY;
                    continue;
                } else {
                    if !same {
                        handle.set(
                            Some(key.clone()),
                            ProviderState::Discovering,
                            format!("discovering {}", key.0),
                            None,
                        );
                    }
                    let attempt = tokio::select! {
                        result = handle.discover(&key.0) => Some(result),
                        _ = changes.changed() => None,
                        _ = shutdown.wait() => return,
                    };
                    match attempt {
                        // The configuration changed meanwhile: start over with the new one.
                        None => continue,
                        Some(Ok(metadata)) => {
                            tracing::info!(issuer = %key.0, keys = metadata.jwks().keys().len(), "identity provider discovered");
                            let fresh = Arc::new(Discovered {
                                issuer: key.0.clone(),
                                client_id: key.1.clone(),
                                metadata,
                                fetched_at: Instant::now(),
                            });
                            handle.install(&fresh);
                            retry = FIRST_RETRY;
                            REFRESH
                        }
                        Some(Err(detail)) => {
                            let current = handle.current.load_full();
                            if let Some(old) = current.discovered.clone().filter(|_| same) {
                                // A refresh failed: the provider is reported unreachable at
                                // once, and the next login start probes it before sending a
                                // browser there; the keys loaded earlier still verify the
                                // logins that were already under way.
                                tracing::warn!(issuer = %key.0, error = %detail, "refreshing the identity provider failed; keeping the keys loaded earlier");
                                handle.set(
                                    Some(key.clone()),
                                    ProviderState::Unreachable,
                                    format!("refresh failed (keys from earlier kept): {detail}"),
                                    Some(old),
                                );
                                *handle.last_answer.lock().unwrap_or_else(|e| e.into_inner()) =
                                    None;
                            } else {
                                tracing::warn!(issuer = %key.0, error = %detail, retry_in = ?retry, "identity provider unreachable");
                                handle.set(
                                    Some(key.clone()),
                                    ProviderState::Unreachable,
                                    detail,
                                    None,
                                );
                            }
                            let wait = retry;
                            retry = (retry * 2).min(MAX_RETRY);
                            wait
                        }
                    }
                }
            }
        };
        tokio::select! {
            _ = changes.changed() => retry = FIRST_RETRY,
            _ = tokio::time::sleep(wait) => {}
            _ = handle.wake.notified() => {
                // A login wants the provider now; still at most one attempt a second.
                tokio::time::sleep(FIRST_RETRY).await;
            }
            Some(report) = reports.recv() => {
                let unreachable = matches!(report, Report::Unreachable { .. });
                handle.apply(report);
                if unreachable {
                    // Retried after a second, as when a login asks for it.
                    tokio::time::sleep(FIRST_RETRY).await;
                }
            }
            _ = shutdown.wait() => return,
        }
    }
}
