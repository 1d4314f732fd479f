//! The one reload path: read `oidc.json` -> validate -> build -> swap.
//!
//! Every trigger (the folder watch, `SIGHUP`, `coder-server reload` over the admin socket, the
//! HTTP reload endpoint) calls [`Reloader::reload`]; loads are serialised by one lock, so two
//! triggers never race. A new configuration is built completely before it is swapped in
//! ([`ArcSwap`]); a request that loaded the old one keeps it for its whole life. A rejected file
//! leaves the last good configuration live and is reported (log, status, metrics).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;
use serde::{Deserialize, Serialize};
use tokio::sync::{Mutex, mpsc};

use crate::blocking::run_blocking;
use crate::clock::{now_rfc3339, unix_ms};
use crate::setup::SetupError;
use crate::setup::config::{
    ConfigProblem, DEFAULT_DISPLAY_NAME, OIDC_FILE, OidcConfig, load_idp_ca, parse_oidc_config,
};
use crate::setup::git::{GitState, ensure_oidc_ignored};
use crate::setup::watcher::WatchSignal;
use crate::shutdown::Shutdown;
use crate::vocab::ProviderStatus;

/// Quiet time after the last file event before the file is read: long enough to coalesce the
/// events of one save, short enough that a save is live in tens of milliseconds.
const DEBOUNCE: Duration = Duration::from_millis(15);
/// A stream of events never delays a reload by more than this.
const MAX_DEBOUNCE: Duration = Duration::from_millis(150);
/// How long a file that is being written may stay open before it is read anyway.
const MAX_WRITE_WAIT: Duration = Duration::from_secs(1);
/// When a watched file disappears, how long to wait for an editor's backup-and-rename save to put
/// the new file in place before SSO is turned off.
const DELETE_GRACE: Duration = Duration::from_millis(250);

/// The configuration requests use. `oidc` is `None` when there is no `oidc.json` (SSO off).
#[derive(Debug)]
pub struct LiveConfig {
    /// Counts successful loads, starting at 1 at start-up.
    pub generation: u64,
    /// The validated file, or `None` when the file does not exist.
    pub oidc: Option<OidcConfig>,
    /// SHA-256 (hex) of the file's bytes; empty when there is no file. Replicas compare it.
    pub sha256: String,
}

/// SHA-256 (hex) of `content`; empty for no file.
fn content_sha256(content: Option<&[u8]>) -> String {
    use sha2::Digest;
    content.map_or_else(String::new, |bytes| {
        sha2::Sha256::digest(bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    })
}

impl LiveConfig {
    /// Whether the login page offers SSO.
    pub fn sso_enabled(&self) -> bool {
        self.oidc.as_ref().is_some_and(|c| c.enabled)
    }

    /// The SSO button's label (the default when there is no file).
    pub fn display_name(&self) -> &str {
        self.oidc
            .as_ref()
            .map_or(DEFAULT_DISPLAY_NAME, |c| &c.display_name)
    }

    /// Whether local username/password login is allowed: always, unless SSO is enabled and the
    /// file sets `allow_local_auth: false`.
    pub fn local_auth_allowed(&self) -> bool {
        self.oidc
            .as_ref()
            .is_none_or(OidcConfig::local_auth_allowed)
    }
}

/// What asked for a reload; logged with each reload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    Startup,
    Watch,
    Signal,
    AdminSocket,
    Api,
}

/// Why the last reload was rejected: the first problem's position, and every problem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReloadError {
    /// Every problem, one a line, each prefixed with the file.
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pointer: Option<String>,
    /// Each problem on its own, for showing beside a form field.
    pub details: Vec<ConfigProblem>,
}

/// The state of configuration loading, shown to admins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReloadStatus {
    /// The last reload was applied (or changed nothing); false while the file on disk is rejected.
    pub ok: bool,
    /// The live configuration's generation.
    pub generation: u64,
    /// When the live configuration was loaded (RFC 3339).
    pub loaded_at: String,
    /// Why the file on disk is not live, when it is not.
    pub error: Option<ReloadError>,
    /// What git knows of `oidc.json`.
    pub git: GitState,
    /// The identity provider's state (filled in by the server, which owns the provider).
    #[serde(default)]
    pub provider: ProviderStatus,
}

/// What one reload did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReloadResult {
    /// A new configuration is live.
    Applied,
    /// The file has the same bytes as at the last reload: nothing to do.
    Unchanged,
    /// The file was rejected; the last good configuration stays live.
    Rejected,
}

/// A reload's result and the status after it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReloadOutcome {
    pub result: ReloadResult,
    pub status: ReloadStatus,
}

/// Reload counters for `/metrics`.
#[derive(Debug, Default)]
pub struct ReloadMetrics {
    /// Reloads that made a new configuration live.
    pub success_total: AtomicU64,
    /// Reloads rejected (invalid or unreadable file).
    pub failure_total: AtomicU64,
    /// Unix time in milliseconds of the last reload, applied or rejected (0: none since start).
    pub last_reload_unix_ms: AtomicU64,
}

/// The configuration invalid at start-up: fatal, since there is no last good configuration.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("{}", describe_problems(path, problems))]
    InvalidConfig {
        path: PathBuf,
        problems: Vec<ConfigProblem>,
    },
    #[error("{}", describe_problems(&.0.path(), &[read_problem(.0)]))]
    Read(#[from] SetupError),
}

/// Owns loading `oidc.json` and the live configuration. Shared as `Arc<Reloader>`.
pub struct Reloader {
    /// The setup repository folder.
    root: PathBuf,
    /// What requests read: swapped whole, never mutated.
    live: ArcSwap<LiveConfig>,
    /// What admins are shown; replaced after every reload.
    status: ArcSwap<ReloadStatus>,
    /// The file's bytes at the last reload: `Some(None)` no file, `None` unknown (the last read
    /// failed, so the next read is never "unchanged"). Its lock serialises reloads.
    last_seen: Mutex<Option<Option<Vec<u8>>>>,
    /// Counters for `/metrics`.
    metrics: ReloadMetrics,
    /// Announces each new live generation to those who build on the configuration (the
    /// identity provider task).
    changes: tokio::sync::watch::Sender<u64>,
    /// Told of every reload that applied or rejected a file (the audit trail).
    observer: std::sync::OnceLock<ReloadObserver>,
}

/// A function told of each reload that changed something or was rejected.
pub type ReloadObserver = Box<dyn Fn(Trigger, ReloadResult, &ReloadStatus) + Send + Sync>;

/// Parses `oidc.json` and reads the CA file it names (relative to `root`). Blocking.
fn parse_with_ca(bytes: &[u8], root: &Path) -> Result<OidcConfig, Vec<ConfigProblem>> {
    let mut config = parse_oidc_config(bytes)?;
    load_idp_ca(&mut config, root).map_err(|problem| vec![problem])?;
    Ok(config)
}

impl Reloader {
    /// Loads the configuration at start-up and checks git safety. Blocking.
    ///
    /// Fails when `oidc.json` exists but is invalid or unreadable; a missing file means SSO is
    /// disabled.
    pub fn load_initial(root: PathBuf) -> Result<Reloader, StartupError> {
        let path = root.join(OIDC_FILE);
        let content = read_oidc_file(&root)?;
        let git = ensure_oidc_ignored(&root);
        let oidc = match &content {
            None => None,
            Some(bytes) => {
                let config = parse_with_ca(bytes, &root).map_err(|problems| {
                    StartupError::InvalidConfig {
                        path: path.clone(),
                        problems,
                    }
                })?;
                warn_if_readable_by_others(&path);
                Some(config)
            }
        };
        log_applied(&path, 1, oidc.as_ref(), Trigger::Startup);
        let status = ReloadStatus {
            ok: true,
            generation: 1,
            loaded_at: now_rfc3339(),
            error: None,
            git,
            provider: ProviderStatus::default(),
        };
        Ok(Reloader {
            root,
            live: ArcSwap::from_pointee(LiveConfig {
                generation: 1,
                sha256: content_sha256(content.as_deref()),
                oidc,
            }),
            status: ArcSwap::from_pointee(status),
            last_seen: Mutex::new(Some(content)),
            metrics: ReloadMetrics {
                last_reload_unix_ms: AtomicU64::new(unix_ms()),
                ..ReloadMetrics::default()
            },
            changes: tokio::sync::watch::Sender::new(1),
            observer: std::sync::OnceLock::new(),
        })
    }

    /// The setup repository.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where `oidc.json` lives: the setup repository's root.
    pub fn oidc_path(&self) -> PathBuf {
        self.root.join(OIDC_FILE)
    }

    /// The live configuration. Load it once per request and keep the `Arc`.
    pub fn live(&self) -> Arc<LiveConfig> {
        self.live.load_full()
    }

    /// The status after the last reload.
    pub fn status(&self) -> Arc<ReloadStatus> {
        self.status.load_full()
    }

    /// Sets the function told of every applied or rejected reload (once; later calls are
    /// ignored).
    pub fn observe(&self, observer: ReloadObserver) {
        let _ = self.observer.set(observer);
    }

    /// A receiver that sees each new live generation.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// Reload counters.
    pub fn metrics(&self) -> &ReloadMetrics {
        &self.metrics
    }

    /// Reads `oidc.json` again and makes it live when it changed and is valid. Never fails: a
    /// rejected file is reported in the outcome, the log, the status and the metrics, and the last
    /// good configuration stays live.
    pub async fn reload(&self, trigger: Trigger) -> ReloadOutcome {
        let mut last_seen = self.last_seen.lock().await;
        let mut read = self.read().await;
        if trigger == Trigger::Watch
            && matches!(read.0, Ok(None))
            && matches!(*last_seen, Some(Some(_)))
        {
            // An editor's backup-and-rename save: the old file is gone, the new one not yet there.
            tokio::time::sleep(DELETE_GRACE).await;
            read = self.read().await;
        }
        if trigger == Trigger::Watch && matches!(&read.0, Ok(Some(bytes)) if bytes.is_empty()) {
            // An in-place save caught between its truncation and its write (a busy machine can
            // deliver the events late): the bytes are on their way.
            tokio::time::sleep(DELETE_GRACE).await;
            read = self.read().await;
        }
        let (content, git) = read;
        let path = self.root.join(OIDC_FILE);
        let result = match content {
            Err(e) => {
                *last_seen = None;
                self.reject(&path, vec![read_problem(&e)], git, trigger)
            }
            Ok(content) if last_seen.as_ref() == Some(&content) => {
                tracing::debug!(?trigger, "{OIDC_FILE} unchanged: not a reload");
                self.status.rcu(|s| ReloadStatus {
                    git,
                    ..(**s).clone()
                });
                ReloadResult::Unchanged
            }
            Ok(content) => {
                let root = self.root.clone();
                let sha256 = content_sha256(content.as_deref());
                let bytes = content.clone();
                let parsed = run_blocking(move || {
                    bytes
                        .as_deref()
                        .map(|b| parse_with_ca(b, &root))
                        .transpose()
                })
                .await;
                *last_seen = Some(content);
                match parsed {
                    Ok(oidc) => {
                        if oidc.is_some() {
                            warn_if_readable_by_others(&path);
                        }
                        self.apply(&path, oidc, sha256, git, trigger)
                    }
                    Err(problems) => self.reject(&path, problems, git, trigger),
                }
            }
        };
        let status = (*self.status()).clone();
        if result != ReloadResult::Unchanged {
            if let Some(observer) = self.observer.get() {
                observer(trigger, result, &status);
            }
        }
        ReloadOutcome { result, status }
    }

    async fn read(&self) -> (Result<Option<Vec<u8>>, SetupError>, GitState) {
        let root = self.root.clone();
        run_blocking(move || (read_oidc_file(&root), ensure_oidc_ignored(&root))).await
    }

    fn apply(
        &self,
        path: &Path,
        oidc: Option<OidcConfig>,
        sha256: String,
        git: GitState,
        trigger: Trigger,
    ) -> ReloadResult {
        let generation = self.live.load().generation + 1;
        log_applied(path, generation, oidc.as_ref(), trigger);
        self.live.store(Arc::new(LiveConfig {
            generation,
            oidc,
            sha256,
        }));
        self.changes.send_replace(generation);
        self.status.store(Arc::new(ReloadStatus {
            ok: true,
            generation,
            loaded_at: now_rfc3339(),
            error: None,
            git,
            provider: ProviderStatus::default(),
        }));
        self.metrics.success_total.fetch_add(1, Ordering::Relaxed);
        self.stamp();
        ReloadResult::Applied
    }

    fn reject(
        &self,
        path: &Path,
        problems: Vec<ConfigProblem>,
        git: GitState,
        trigger: Trigger,
    ) -> ReloadResult {
        let generation = self.live.load().generation;
        for problem in &problems {
            tracing::error!(
                file = %path.display(),
                line = problem.line,
                column = problem.column,
                pointer = problem.pointer.as_deref(),
                ?trigger,
                "{}: {problem}; keeping the last good configuration (generation {generation})",
                path.display()
            );
        }
        let first = problems.first().cloned();
        let error = ReloadError {
            message: describe_problems(path, &problems),
            line: first.as_ref().and_then(|p| p.line),
            column: first.as_ref().and_then(|p| p.column),
            pointer: first.and_then(|p| p.pointer),
            details: problems,
        };
        self.status.rcu(|s| ReloadStatus {
            ok: false,
            error: Some(error.clone()),
            git,
            ..(**s).clone()
        });
        self.metrics.failure_total.fetch_add(1, Ordering::Relaxed);
        self.stamp();
        ReloadResult::Rejected
    }

    fn stamp(&self) {
        self.metrics
            .last_reload_unix_ms
            .store(unix_ms(), Ordering::Relaxed);
    }
}

/// Reloads on every signal from the folder watch, after the events of one save have settled,
/// until shutdown.
pub async fn run_watch_reloads(
    reloader: Arc<Reloader>,
    mut signals: mpsc::UnboundedReceiver<WatchSignal>,
    mut shutdown: Shutdown,
) {
    loop {
        let first = tokio::select! {
            _ = shutdown.wait() => return,
            signal = signals.recv() => match signal {
                Some(signal) => signal,
                None => return,
            },
        };
        if !settle(first, &mut signals).await {
            return;
        }
        reloader.reload(Trigger::Watch).await;
    }
}

/// Waits until the events of one save have settled: [`DEBOUNCE`] without an event (capped at
/// [`MAX_DEBOUNCE`]), or, while a writer may still have the file open, until it closes it
/// (capped at [`MAX_WRITE_WAIT`]). Returns false when the watch has ended.
async fn settle(first: WatchSignal, signals: &mut mpsc::UnboundedReceiver<WatchSignal>) -> bool {
    let started = tokio::time::Instant::now();
    let mut writing = first == WatchSignal::Writing;
    loop {
        let cap = if writing {
            MAX_WRITE_WAIT
        } else {
            MAX_DEBOUNCE
        };
        let remaining = cap.saturating_sub(started.elapsed());
        if remaining.is_zero() {
            return true;
        }
        let wait = if writing {
            remaining
        } else {
            DEBOUNCE.min(remaining)
        };
        match tokio::time::timeout(wait, signals.recv()).await {
            Ok(Some(signal)) => writing = signal == WatchSignal::Writing,
            Ok(None) => return false,
            Err(_elapsed) => return true,
        }
    }
}

/// The file's bytes, `None` when it does not exist. Blocking.
fn read_oidc_file(root: &Path) -> Result<Option<Vec<u8>>, SetupError> {
    let path = root.join(OIDC_FILE);
    crate::fsutil::read_regular_file(&path, crate::setup::config::MAX_OIDC_FILE_BYTES)
        .map_err(|source| SetupError::Read { path, source })
}

/// The text of a rejected file's problems: one line each, prefixed with the file.
pub fn describe_problems(path: &Path, problems: &[ConfigProblem]) -> String {
    problems
        .iter()
        .map(|p| format!("{}: {p}", path.display()))
        .collect::<Vec<_>>()
        .join("\n")
}

fn log_applied(path: &Path, generation: u64, oidc: Option<&OidcConfig>, trigger: Trigger) {
    match oidc {
        None => tracing::info!(
            generation,
            ?trigger,
            "no {} in the setup repository: SSO disabled, local login allowed",
            OIDC_FILE
        ),
        Some(c) => tracing::info!(
            generation,
            ?trigger,
            file = %path.display(),
            sso_enabled = c.enabled,
            issuer = %c.issuer,
            client_id = %c.client_id,
            allow_local_auth = c.local_auth_allowed(),
            "SSO configuration loaded"
        ),
    }
}

fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path) {
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            tracing::warn!(
                file = %path.display(),
                "{OIDC_FILE} holds the client secret but other users may read it (mode {mode:o}); run `chmod 600 {OIDC_FILE}`"
            );
        }
    }
}

/// A file that could not be read, as a problem without a position.
fn read_problem(e: &SetupError) -> ConfigProblem {
    let message = match e {
        SetupError::Read { source, .. } => format!("cannot read: {source}"),
        other => error_chain(other),
    };
    ConfigProblem {
        message,
        line: None,
        column: None,
        pointer: None,
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sends `script` (milliseconds after the previous signal, signal) and measures how long
    /// `settle` takes from the first signal.
    async fn settled_after(script: &[(u64, WatchSignal)]) -> Duration {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let script = script.to_vec();
        tokio::spawn(async move {
            for (after_ms, signal) in script {
                tokio::time::sleep(Duration::from_millis(after_ms)).await;
                tx.send(signal).unwrap();
            }
            std::future::pending::<()>().await;
        });
        let first = rx.recv().await.unwrap();
        let start = tokio::time::Instant::now();
        assert!(settle(first, &mut rx).await);
        start.elapsed()
    }

    #[tokio::test(start_paused = true)]
    async fn a_rename_settles_after_the_debounce() {
        let took = settled_after(&[(0, WatchSignal::Settled)]).await;
        assert_eq!(took, DEBOUNCE);
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_writer_is_waited_for_until_it_closes_the_file() {
        // Truncate, 100 ms later the rest of the content, then close.
        let took = settled_after(&[
            (0, WatchSignal::Writing),
            (100, WatchSignal::Writing),
            (0, WatchSignal::Settled),
        ])
        .await;
        assert_eq!(took, Duration::from_millis(100) + DEBOUNCE);
    }

    #[tokio::test(start_paused = true)]
    async fn a_writer_that_never_closes_is_read_after_the_cap() {
        let took = settled_after(&[(0, WatchSignal::Writing)]).await;
        assert_eq!(took, MAX_WRITE_WAIT);
    }

    #[tokio::test(start_paused = true)]
    async fn a_stream_of_events_is_capped() {
        let stream: Vec<_> = (0..100).map(|_| (10, WatchSignal::Settled)).collect();
        let took = settled_after(&stream).await;
        assert_eq!(took, MAX_DEBOUNCE);
    }
}
