//! The admin socket: `<data-dir>/admin.sock`, through which `coder-server` commands talk to the
//! running daemon.
//!
//! The socket is a Unix stream socket with mode 0600 in a 0700 folder, and a peer must run as the
//! daemon's user (or root). One request per connection: a JSON line in, a JSON line out.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

use super::AppState;
use crate::audit::{Audit, AuditKind};
use crate::auth::Role;
use crate::auth::account::{NewUser, UserView, create_user, reset_password, set_role};
use crate::auth::credential::Password;
use crate::blocking::run_blocking;
use crate::reload::{ReloadOutcome, ReloadStatus, Trigger};
use crate::shutdown::Shutdown;
use crate::store::{Store, StoreSummary, UserSource};

/// The socket's file name in the data directory.
pub const ADMIN_SOCKET: &str = "admin.sock";
/// A request line longer than this is refused.
const MAX_REQUEST_BYTES: u64 = 64 * 1024;

/// What a command asks the daemon.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum AdminRequest {
    /// Reload `oidc.json` through the one reload path.
    Reload,
    /// The reload status, without reloading.
    Status,
    /// Create a user (`coder-server create-user`).
    CreateUser {
        username: String,
        email: String,
        name: String,
        role: Role,
        password: Option<Password>,
    },
    /// Set a user's password (`coder-server reset-password`).
    ResetPassword {
        username: String,
        password: Password,
        /// Keep the user's API keys (`--keep-keys`); by default they are revoked.
        #[serde(default)]
        keep_keys: bool,
    },
    /// Bind a user to exactly one role (`coder-server set-role`).
    SetRole { username: String, role: Role },
    /// Copy the store, consistently, into a new folder (`coder-server backup`).
    Backup { to: PathBuf },
}

/// The daemon's answer.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "answer", rename_all = "snake_case")]
pub enum AdminResponse {
    Reload(ReloadOutcome),
    Status(ReloadStatus),
    User(UserView),
    Backup(StoreSummary),
    Error { message: String },
}

/// Failures of the admin socket, on either side.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error(
        "no coder-server is running with data directory {} ({})",
        data_dir.display(),
        if socket.exists() {
            format!("no daemon answers on the admin socket {}: a daemon that stopped without cleaning up left it", socket.display())
        } else {
            format!("no admin socket at {}", socket.display())
        }
    )]
    NotRunning { data_dir: PathBuf, socket: PathBuf },
    #[error("another coder-server is already running with data directory {}", .0.display())]
    AlreadyRunning(PathBuf),
    #[error("admin socket {}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the daemon sent an answer this command does not understand")]
    Protocol(#[source] serde_json::Error),
}

/// Binds the admin socket in `data_dir`, replacing a stale one left by a crashed daemon.
///
/// Fails when another daemon answers on it, or the socket cannot be created.
pub async fn bind_admin_socket(data_dir: &Path) -> Result<UnixListener, AdminError> {
    let path = data_dir.join(ADMIN_SOCKET);
    let io = |source| AdminError::Io {
        path: path.clone(),
        source,
    };
    if path.exists() {
        if UnixStream::connect(&path).await.is_ok() {
            return Err(AdminError::AlreadyRunning(data_dir.to_owned()));
        }
        std::fs::remove_file(&path).map_err(io)?;
    }
    let listener = UnixListener::bind(&path).map_err(io)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
    Ok(listener)
}

/// Answers admin requests until shutdown, then removes the socket file.
pub async fn serve_admin_socket(
    listener: UnixListener,
    socket_path: PathBuf,
    state: AppState,
    mut shutdown: Shutdown,
) {
    let owner = std::fs::metadata(&socket_path).map(|m| m.uid()).ok();
    loop {
        tokio::select! {
            _ = shutdown.wait() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let allowed = stream
                        .peer_cred()
                        .map(|cred| cred.uid() == 0 || Some(cred.uid()) == owner)
                        .unwrap_or(false);
                    if !allowed {
                        tracing::warn!("refused an admin socket connection from another user");
                        continue;
                    }
                    let state = state.clone();
                    tokio::spawn(async move {
                        if let Err(e) = answer(stream, &state).await {
                            tracing::warn!(error = %e, "admin socket request failed");
                        }
                    });
                }
                Err(e) => tracing::warn!(error = %e, "admin socket accept failed"),
            },
        }
    }
    let _ = std::fs::remove_file(&socket_path);
}

async fn answer(stream: UnixStream, state: &AppState) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    BufReader::new(read.take(MAX_REQUEST_BYTES))
        .read_line(&mut line)
        .await?;
    let response = match serde_json::from_str::<AdminRequest>(&line) {
        Ok(AdminRequest::Reload) => AdminResponse::Reload(state.reload(Trigger::AdminSocket).await),
        Ok(AdminRequest::Status) => AdminResponse::Status(state.reload_status()),
        Ok(AdminRequest::Backup { to }) => {
            let store = state.store.clone();
            let path = to.clone();
            match run_blocking(move || store.backup_to(&path)).await {
                Ok(summary) => {
                    tracing::info!(to = %to.display(), users = summary.users, "store backed up");
                    AdminResponse::Backup(summary)
                }
                Err(e) => AdminResponse::Error {
                    message: format!("cannot back up into {}: {e}", to.display()),
                },
            }
        }
        Ok(account) => {
            let response = apply_account_request(&state.store, account).await;
            match (&response, state.store.flush().await) {
                (AdminResponse::User(user), Ok(())) => {
                    tracing::info!(username = %user.username, "account changed through the admin socket");
                    response
                }
                (AdminResponse::User(_), Err(e)) => AdminResponse::Error {
                    message: format!("the change could not be saved: {e}"),
                },
                _ => response,
            }
        }
        Err(e) => AdminResponse::Error {
            message: format!("bad request: {e}"),
        },
    };
    let mut bytes = serde_json::to_vec(&response).map_err(std::io::Error::other)?;
    bytes.push(b'\n');
    write.write_all(&bytes).await?;
    write.shutdown().await
}

/// Carries out an account request (create user, reset password, set role) on `store`: the one
/// implementation behind the admin socket and the commands run while no daemon is. Blocking;
/// the caller flushes the store before it reports success.
pub async fn apply_account_request(store: &Store, request: AdminRequest) -> AdminResponse {
    let (kind, mut what) = match &request {
        AdminRequest::CreateUser { role, .. } => (AuditKind::UserCreated, format!("role {role}")),
        AdminRequest::ResetPassword { .. } => (AuditKind::UserChanged, "password reset".to_owned()),
        AdminRequest::SetRole { role, .. } => (AuditKind::AccessChanged, format!("role {role}")),
        AdminRequest::Reload | AdminRequest::Status | AdminRequest::Backup { .. } => {
            (AuditKind::UserChanged, String::new())
        }
    };
    let result = match request {
        AdminRequest::CreateUser {
            username,
            email,
            name,
            role,
            password,
        } => {
            create_user(
                store,
                NewUser {
                    username,
                    email,
                    name,
                    role,
                    password,
                    source: UserSource::Local,
                },
            )
            .await
        }
        AdminRequest::ResetPassword {
            username,
            password,
            keep_keys,
        } => reset_password(store, &username, &password, keep_keys)
            .await
            .map(|(user, ended)| {
                if let Some(ended) = ended.describe() {
                    what = format!("{what}; {ended}");
                }
                user
            }),
        AdminRequest::SetRole { username, role } => set_role(store, &username, role).await,
        AdminRequest::Reload | AdminRequest::Status | AdminRequest::Backup { .. } => {
            return AdminResponse::Error {
                message: "not an account request".into(),
            };
        }
    };
    match result {
        Ok(user) => {
            Audit::success(kind)
                .actor("operator")
                .subject(&user.username)
                .reason(what)
                .record(store)
                .await;
            AdminResponse::User(UserView::from(&user))
        }
        Err(e) => AdminResponse::Error {
            message: e.to_string(),
        },
    }
}

/// Sends one request to the daemon running with `data_dir` and returns its answer.
///
/// Fails when no daemon runs there, or the connection breaks.
pub async fn admin_request(
    data_dir: &Path,
    request: &AdminRequest,
) -> Result<AdminResponse, AdminError> {
    let path = data_dir.join(ADMIN_SOCKET);
    let io = |source| AdminError::Io {
        path: path.clone(),
        source,
    };
    let stream = match UnixStream::connect(&path).await {
        Ok(stream) => stream,
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
            ) =>
        {
            return Err(AdminError::NotRunning {
                data_dir: data_dir.to_owned(),
                socket: path.clone(),
            });
        }
        Err(e) => return Err(io(e)),
    };
    let (read, mut write) = stream.into_split();
    let mut bytes = serde_json::to_vec(request).map_err(AdminError::Protocol)?;
    bytes.push(b'\n');
    write.write_all(&bytes).await.map_err(io)?;
    let mut line = String::new();
    BufReader::new(read)
        .read_line(&mut line)
        .await
        .map_err(io)?;
    serde_json::from_str(&line).map_err(AdminError::Protocol)
}
