//! The daemon: start-up, shared state, signals, the admin socket and shutdown.
//!
//! Start-up order matters: the setup repository and the configuration are loaded (an invalid
//! `oidc.json` is fatal here, exit code 2) before any socket is bound, so a daemon that listens
//! always has a good configuration.

pub mod admin;
mod heartbeat;
pub(crate) mod listen;
pub(crate) mod maintenance;

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::signal::unix::{SignalKind, signal};

use crate::audit::{Audit, AuditKind};
use crate::auth::account::{AccountError, INITIAL_ADMIN, ensure_initial_admin};
use crate::blocking::run_blocking;
use crate::oidc::ProviderHandle;
use crate::oidc::http::ProviderHttp;
use crate::oidc::provider::run_provider;
use crate::reload::{ReloadResult, Reloader, StartupError, Trigger, run_watch_reloads};
use crate::setup::SetupError;
use crate::setup::template::create_setup_repo;
use crate::setup::watcher::FolderWatch;
use crate::shutdown::{Shutdown, ShutdownTrigger, shutdown_channel};
pub use crate::state::{AppState, Lifetimes, SharedState};
use crate::store::{Store, StoreError};

/// How long in-flight requests may run after shutdown begins.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// How the daemon runs; built from `coder-server serve`'s flags.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// The setup repository; created from the template when missing.
    pub setup_repo: PathBuf,
    /// Where the store and the admin socket live; created (mode 0700) when missing.
    pub data_dir: PathBuf,
    /// Address to listen on; port 0 picks a free port.
    pub listen: SocketAddr,
    /// The URL users reach the server at; `http://<listen address>` when not given.
    pub public_url: Option<url::Url>,
    /// Lifetimes of login state, device codes and sessions.
    pub lifetimes: Lifetimes,
    /// How long one request to the identity provider may take.
    pub idp_timeout: Duration,
    /// Header and idle timeouts, and how many connections are served at once.
    pub connections: listen::ConnectionLimits,
    /// Proxies whose `X-Forwarded-For` names the client (`--trusted-proxies`).
    pub trusted_proxies: crate::http::client::TrustedProxies,
    /// PostgreSQL shared by every replica; `None`: sled in `<data_dir>/store`.
    pub database_url: Option<crate::store::DatabaseUrl>,
    /// Poll `oidc.json` this often instead of watching for file events (`--watch-poll`).
    pub watch_poll: Option<Duration>,
}

/// Why the daemon could not start or run.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// `oidc.json` is invalid or unreadable at start-up (exit code 2).
    #[error(transparent)]
    InvalidConfig(StartupError),
    #[error(transparent)]
    Setup(#[from] SetupError),
    #[error("{} exists but is not a folder", .0.display())]
    SetupRepoNotAFolder(PathBuf),
    #[error("cannot create the data directory {}", path.display())]
    DataDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Admin(#[from] admin::AdminError),
    #[error("cannot listen on {addr}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot create the first admin")]
    InitialAdmin(#[source] AccountError),
    #[error("cannot install a signal handler")]
    Signal(#[source] std::io::Error),
    #[error(
        "invalid --public-url `{0}`: use an absolute http:// or https:// URL without query or fragment"
    )]
    PublicUrl(String),
}

/// Runs the daemon until SIGTERM or SIGINT.
///
/// Fails when start-up fails: an invalid `oidc.json` ([`ServeError::InvalidConfig`]), an
/// unusable setup repository or data directory, a busy address, or another daemon already using
/// the data directory.
pub async fn serve(options: ServeOptions) -> Result<(), ServeError> {
    let setup_repo = prepare_setup_repo(options.setup_repo.clone()).await?;
    prepare_data_dir(&options.data_dir)?;
    // Watch before the first load, so a save during start-up is not missed: its event waits in
    // the channel, and the first watch reload finds the bytes changed (or not).
    let (watch_tx, watch_rx) = tokio::sync::mpsc::unbounded_channel();
    let watcher = FolderWatch::start(&setup_repo, watch_tx.clone(), options.watch_poll)?;
    let root = setup_repo.clone();
    let reloader = run_blocking(move || Reloader::load_initial(root))
        .await
        .map_err(ServeError::InvalidConfig)?;
    let reloader = Arc::new(reloader);

    let socket_path = options.data_dir.join(admin::ADMIN_SOCKET);
    // The socket first: a live one means another daemon owns this data directory (and its
    // store's lock), which deserves that message rather than a lock error.
    let admin_listener = admin::bind_admin_socket(&options.data_dir).await?;
    let store = match open_store(&options.data_dir, options.database_url.as_ref()).await {
        Ok(store) => store,
        Err(e) => {
            let _ = std::fs::remove_file(&socket_path);
            return Err(e);
        }
    };
    let listener = tokio::net::TcpListener::bind(options.listen)
        .await
        .map_err(|source| ServeError::Listen {
            addr: options.listen,
            source,
        })?;
    let local_addr = listener.local_addr().map_err(|source| ServeError::Listen {
        addr: options.listen,
        source,
    })?;
    let public_url = public_url(options.public_url.as_ref(), local_addr)?;
    let audit_store = store.clone();
    // Reloads are reported from the runtime's threads or its blocking pool; the event is written
    // by a task of its own.
    let runtime = tokio::runtime::Handle::current();
    reloader.observe(Box::new(move |trigger, result, status| {
        let actor = match trigger {
            Trigger::Watch => "file",
            Trigger::Signal => "signal",
            Trigger::AdminSocket => "operator",
            Trigger::Api => "api",
            Trigger::Startup => "startup",
        };
        let audit = match (result, &status.error) {
            (ReloadResult::Rejected, Some(error)) => {
                let first = error
                    .details
                    .first()
                    .map_or(error.message.as_str(), |p| p.message.as_str());
                Audit::failure(AuditKind::SettingsReloaded, first)
            }
            _ => Audit::success(AuditKind::SettingsReloaded)
                .reason(format!("generation {}", status.generation)),
        };
        let store = audit_store.clone();
        runtime.spawn(async move { audit.actor(actor).subject("oidc.json").record(&store).await });
    }));
    let provider = ProviderHandle::new(ProviderHttp::new(options.idp_timeout));
    let state = AppState::new(
        reloader.clone(),
        store.clone(),
        &public_url,
        options.lifetimes,
        provider.clone(),
    );

    let (trigger, shutdown) = shutdown_channel();
    let signals = spawn_signal_handler(trigger, reloader.clone(), shutdown.clone())?;
    let watch_task = tokio::spawn(run_watch_reloads(
        reloader.clone(),
        watch_rx,
        shutdown.clone(),
    ));
    let provider_task = tokio::spawn(run_provider(provider, reloader.clone(), shutdown.clone()));
    let rewatch_task = tokio::spawn(watcher.run(setup_repo.clone(), watch_tx, shutdown.clone()));
    let maintenance_task = tokio::spawn(maintenance::run(state.clone(), shutdown.clone()));
    heartbeat::beat(&state, &local_addr.to_string()).await;
    let heartbeat_task = tokio::spawn(heartbeat::run(
        state.clone(),
        local_addr.to_string(),
        shutdown.clone(),
    ));
    let admin_task = tokio::spawn(admin::serve_admin_socket(
        admin_listener,
        socket_path,
        state.clone(),
        shutdown.clone(),
    ));

    tracing::info!(
        setup_repo = %setup_repo.display(),
        data_dir = %options.data_dir.display(),
        "coder-server {} listening on http://{local_addr}",
        env!("CARGO_PKG_VERSION")
    );
    tracing::info!(
        "redirect URI to register at the identity provider: {}",
        state.redirect_uri()
    );

    let server = listen::serve_http(
        listener,
        crate::http::routes(state),
        options.connections,
        Arc::new(options.trusted_proxies.clone()),
        shutdown.clone(),
    );
    let mut drain_deadline = shutdown.clone();
    tokio::select! {
        () = server => {}
        () = async move {
            drain_deadline.wait().await;
            tokio::time::sleep(DRAIN_TIMEOUT).await;
        } => tracing::warn!("requests still running {DRAIN_TIMEOUT:?} after shutdown began: closing them"),
    }

    for task in [
        watch_task,
        admin_task,
        signals,
        maintenance_task,
        heartbeat_task,
        provider_task,
        rewatch_task,
    ] {
        let _ = task.await;
    }
    tracing::info!("coder-server stopped");
    Ok(())
}

/// Opens the store: PostgreSQL at `database_url`, else sled in `<data-dir>/store`. On a store
/// without users, creates the first admin and prints its password once, on a stderr line of its
/// own (never to the log); of replicas starting together on an empty database, only the one that
/// created it does.
async fn open_store(
    data_dir: &std::path::Path,
    database_url: Option<&crate::store::DatabaseUrl>,
) -> Result<Store, ServeError> {
    let store = match database_url {
        Some(url) => {
            let store = Store::connect(url).await?;
            tracing::info!(database = %url, "store: PostgreSQL");
            store
        }
        None => {
            let dir = data_dir.join("store");
            run_blocking(move || Store::open(&dir)).await?
        }
    };
    let password = ensure_initial_admin(&store)
        .await
        .map_err(ServeError::InitialAdmin)?;
    if let Some(password) = password {
        store.flush().await?;
        print_initial_password(&password);
        tracing::warn!(
            "created user `{INITIAL_ADMIN}` (server_admin); its password was printed once above"
        );
    }
    Ok(store)
}

/// The setup repository's canonical path, creating it from the template when missing.
async fn prepare_setup_repo(path: PathBuf) -> Result<PathBuf, ServeError> {
    if !path.exists() {
        let create = path.clone();
        run_blocking(move || create_setup_repo(&create)).await?;
        tracing::info!(
            setup_repo = %path.display(),
            "created the setup repository from the template (git init); copy oidc.example.json to oidc.json to configure SSO"
        );
    } else if !path.is_dir() {
        return Err(ServeError::SetupRepoNotAFolder(path));
    }
    path.canonicalize().map_err(|source| {
        ServeError::Setup(SetupError::Read {
            path: path.clone(),
            source,
        })
    })
}

/// Creates the data directory, readable by the daemon's user only.
fn prepare_data_dir(path: &std::path::Path) -> Result<(), ServeError> {
    let io = |source| ServeError::DataDir {
        path: path.to_owned(),
        source,
    };
    if !path.exists() {
        std::fs::create_dir_all(path).map_err(io)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700)).map_err(io)?;
    } else {
        let mode = std::fs::metadata(path).map_err(io)?.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            tracing::warn!(
                data_dir = %path.display(),
                "the data directory is open to other users (mode {mode:o}); run `chmod 700` on it"
            );
        }
    }
    Ok(())
}

fn public_url(configured: Option<&url::Url>, local_addr: SocketAddr) -> Result<String, ServeError> {
    let Some(url) = configured else {
        return Ok(format!("http://{local_addr}"));
    };
    let valid = matches!(url.scheme(), "http" | "https")
        && url.host_str().is_some()
        && url.query().is_none()
        && url.fragment().is_none()
        && url.username().is_empty()
        && url.password().is_none();
    if !valid {
        return Err(ServeError::PublicUrl(url.to_string()));
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

/// SIGTERM and SIGINT shut down gracefully; SIGHUP reloads `oidc.json`.
fn spawn_signal_handler(
    trigger: ShutdownTrigger,
    reloader: Arc<Reloader>,
    mut shutdown: Shutdown,
) -> Result<tokio::task::JoinHandle<()>, ServeError> {
    let mut term = signal(SignalKind::terminate()).map_err(ServeError::Signal)?;
    let mut int = signal(SignalKind::interrupt()).map_err(ServeError::Signal)?;
    let mut hup = signal(SignalKind::hangup()).map_err(ServeError::Signal)?;
    Ok(tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = term.recv() => {
                    tracing::info!("SIGTERM: shutting down");
                    trigger.fire();
                }
                _ = int.recv() => {
                    tracing::info!("SIGINT: shutting down");
                    trigger.fire();
                }
                _ = hup.recv() => {
                    // In a task of its own, so a slow reload never delays SIGTERM.
                    let reloader = reloader.clone();
                    tokio::spawn(async move {
                        let outcome = reloader.reload(Trigger::Signal).await;
                        tracing::info!(result = ?outcome.result, generation = outcome.status.generation, "SIGHUP: reloaded");
                    });
                }
                _ = shutdown.wait() => return,
            }
        }
    }))
}

/// The first-start password, printed once on a stderr line of its own and never logged (the
/// contract's first-start line).
#[allow(clippy::print_stderr, reason = "the one line the contract prints")]
fn print_initial_password(password: &crate::auth::credential::Password) {
    eprintln!(
        "initial admin password (user \"{INITIAL_ADMIN}\"): {}",
        password.expose()
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_url_defaults_to_the_bound_address_and_drops_a_trailing_slash() {
        let addr: SocketAddr = "127.0.0.1:4567".parse().unwrap();
        assert_eq!(public_url(None, addr).unwrap(), "http://127.0.0.1:4567");
        let url = url::Url::parse("https://code.example.com/").unwrap();
        assert_eq!(
            public_url(Some(&url), addr).unwrap(),
            "https://code.example.com"
        );
        let url = url::Url::parse("https://code.example.com/coder/").unwrap();
        assert_eq!(
            public_url(Some(&url), addr).unwrap(),
            "https://code.example.com/coder"
        );
        for bad in [
            "ftp://x.example.com",
            "https://x.example.com/?a=b",
            "mailto:a@b.c",
        ] {
            let url = url::Url::parse(bad).unwrap();
            assert!(public_url(Some(&url), addr).is_err(), "{bad}");
        }
    }
}
