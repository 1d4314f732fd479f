//! The records the store keeps, the same for every backend, and the rules that decide a change
//! without touching storage (a device poll's transition), so both backends apply them alike.

use serde::{Deserialize, Serialize};

use crate::vocab::{Role, UserView, UserViewRef};

pub use crate::vocab::{AccessBinding, UserSource};

/// How long a replica that stopped sending heartbeats stays listed before it is swept.
pub const REPLICA_KEPT_SECS: u64 = 3600;

/// A replica's heartbeat: who it is and which configuration it runs (several replicas on one
/// database compare `config_sha256`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaRecord {
    /// Unique per process: the host name and a random suffix.
    pub id: String,
    /// The binary's version.
    pub version: String,
    /// The address it listens on.
    pub listen: String,
    /// The generation of its live configuration (counts its reloads).
    pub config_generation: u64,
    /// SHA-256 (hex) of the bytes of the `oidc.json` it runs; empty without one.
    pub config_sha256: String,
    /// Unix seconds of its last heartbeat.
    pub last_seen: u64,
}

/// Failed password logins of one key (username and client address) in the current window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureWindow {
    /// Failures counted in this window.
    pub failures: u32,
    /// Unix seconds when the window ends (and the count starts again).
    pub ends_unix: u64,
}

/// A user as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRecord {
    pub username: String,
    pub email: String,
    pub name: String,
    pub source: UserSource,
    pub disabled: bool,
    /// RFC 3339.
    pub created_at: String,
    pub access: Vec<AccessBinding>,
    /// Argon2id PHC string; `None` for SSO-only users.
    pub password_hash: Option<String>,
}

impl UserRecord {
    /// Whether this user is an enabled server_admin (bound at server scope): the role that must
    /// never be left without a holder.
    pub fn is_enabled_server_admin(&self) -> bool {
        !self.disabled
            && self
                .access
                .iter()
                .any(|b| b.role == Role::ServerAdmin && b.scope == Role::ServerAdmin.scope())
    }
}

impl<'a> From<&'a UserRecord> for UserViewRef<'a> {
    fn from(u: &'a UserRecord) -> Self {
        UserViewRef {
            username: &u.username,
            email: &u.email,
            name: &u.name,
            source: u.source,
            disabled: u.disabled,
            created_at: &u.created_at,
            access: &u.access,
        }
    }
}

impl From<&UserRecord> for UserView {
    fn from(u: &UserRecord) -> Self {
        UserView {
            username: u.username.clone(),
            email: u.email.clone(),
            name: u.name.clone(),
            source: u.source,
            disabled: u.disabled,
            created_at: u.created_at.clone(),
            access: u.access.clone(),
        }
    }
}

/// An API key as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKeyRecord {
    /// Public identifier, used to list and revoke.
    pub id: String,
    /// The owner; the key carries exactly this user's permissions.
    pub username: String,
    /// A name the owner chose (or the device flow's client and time).
    pub name: String,
    /// The key's first characters, to recognise it in a list.
    pub prefix: String,
    /// RFC 3339.
    pub created_at: String,
    /// Unix seconds of the last use, written in batches.
    pub last_used_unix: Option<u64>,
    /// Unix seconds from which the key no longer works (contract section 9); `None`: never.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_unix: Option<u64>,
    /// Issued by a device login (`coder login --sso`, the VS Code extension): revoked by a
    /// back-channel logout when `backchannel_logout_revokes_keys` is on.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub from_device: bool,
}

/// A browser session as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRecord {
    pub username: String,
    /// Unix seconds.
    pub created_unix: u64,
    /// Unix seconds after which the session is gone.
    pub expires_unix: u64,
    /// The form token that proves a POST came from our own page.
    pub csrf_token: String,
    /// For a session started by an SSO login: what logout at the provider needs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sso: Option<SsoSession>,
}

/// What an SSO session keeps of its login, server-side only: the ID token (the hint of a logout
/// at the provider, never shown) and the provider's session id (`sid`, for back-channel logout).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SsoSession {
    pub issuer: String,
    pub id_token: crate::secret::Secret,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
}

/// A login in progress, kept server-side from `/auth/oidc/login` to the callback. Its `Debug`
/// leaves out the nonce and the PKCE verifier.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PendingLogin {
    /// SHA-256 (base64url) of the browser-binding cookie the login started with.
    pub binding_hash: String,
    /// The nonce the ID token must carry.
    pub nonce: String,
    /// The PKCE verifier whose S256 challenge was sent.
    pub pkce_verifier: String,
    /// Where the browser goes after signing in (already checked to be a local path).
    pub return_to: String,
    /// The issuer and client the login started with; a callback under another configuration
    /// is refused.
    pub issuer: String,
    pub client_id: String,
    /// Unix seconds after which the login is void.
    pub expires_unix: u64,
    /// A preview started by this server_admin ("Check with my account"): the callback shows
    /// what the configuration decides and signs nobody in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preview_by: Option<String>,
}

/// Where a device login stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum DeviceStatus {
    /// Waiting for a signed-in browser to approve or deny.
    Pending,
    /// Approved by `username`; the next poll gets a key.
    Approved { username: String },
    /// Denied: final.
    Denied,
    /// The key was handed out: the code is spent.
    Issued,
}

/// A device login as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceRecord {
    /// The normalised user code (8 letters, no dash).
    pub user_code: String,
    /// What the client called itself ("coder CLI", "VS Code").
    pub client_name: String,
    /// IP address and user agent of the code request, shown on the confirm page.
    pub requester_ip: String,
    pub requester_agent: String,
    /// RFC 3339.
    pub created_at: String,
    /// Unix seconds after which the code is void.
    pub expires_unix: u64,
    /// Seconds a client must wait between polls; grows by 5 with each `slow_down`.
    pub interval_secs: u64,
    /// Unix milliseconds of the last poll (0: never polled).
    pub last_poll_ms: u64,
    /// The session (SHA-256, base64url) that opened the code first; only it may decide.
    pub claimed_by: Option<String>,
    pub status: DeviceStatus,
}

/// What a poll found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PollOutcome {
    /// No such device code, or already spent.
    Invalid,
    Expired,
    /// Polled too fast: the new interval.
    SlowDown(u64),
    Pending,
    Denied,
    /// Approved: this poll created the key (and only this one).
    Issued(ApiKeyRecord),
}

/// How long an expired device login is kept to answer `expired_token`.
pub(crate) const EXPIRED_KEPT_SECS: u64 = 600;

/// One audited event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// Increasing; pages of the trail are read backwards from an id.
    #[serde(default)]
    pub id: u64,
    /// RFC 3339.
    pub at: String,
    /// What happened, e.g. `login.local`, `api_key.revoked` (see `crate::audit::AuditKind`).
    pub kind: String,
    /// `success` or `failure`.
    pub outcome: String,
    /// Who did it: a username, `file` for a change of `oidc.json` on disk, or `operator` for the
    /// admin socket.
    pub actor: Option<String>,
    /// What it was done to: a username, an API key id, `oidc.json`.
    pub subject: Option<String>,
    /// Why it failed, or what changed.
    pub reason: Option<String>,
    /// The client's IP address.
    pub ip: Option<String>,
}

impl std::fmt::Debug for PendingLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingLogin")
            .field("return_to", &self.return_to)
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("expires_unix", &self.expires_unix)
            .field("preview_by", &self.preview_by)
            .finish_non_exhaustive()
    }
}

/// What one poll does to a device login ([`DeviceRecord::poll`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PollStep {
    /// Answer this; the record stays as it was.
    Keep(PollOutcome),
    /// Store the changed record, then answer this.
    Store(PollOutcome),
    /// Store the changed record (now [`DeviceStatus::Issued`]) and an API key owned by
    /// `username`, in one transaction.
    Issue { username: String },
}

impl DeviceRecord {
    /// One poll at `now_ms`, decided without storage: changes the record (the poll's time, the
    /// interval after a `slow_down`, the status) and says what to store and answer. A user
    /// disabled since approving (`approver_enabled` false) gets a denial, never a key.
    pub(crate) fn poll(&mut self, now_ms: u64, approver_enabled: bool) -> PollStep {
        if self.expires_unix * 1000 <= now_ms {
            return PollStep::Keep(PollOutcome::Expired);
        }
        if self.status == DeviceStatus::Issued {
            return PollStep::Keep(PollOutcome::Invalid);
        }
        let too_fast =
            self.last_poll_ms > 0 && now_ms < self.last_poll_ms + self.interval_secs * 1000;
        self.last_poll_ms = now_ms;
        if too_fast {
            self.interval_secs += 5;
            return PollStep::Store(PollOutcome::SlowDown(self.interval_secs));
        }
        match &self.status {
            DeviceStatus::Pending => PollStep::Store(PollOutcome::Pending),
            DeviceStatus::Denied => PollStep::Store(PollOutcome::Denied),
            DeviceStatus::Issued => PollStep::Keep(PollOutcome::Invalid),
            DeviceStatus::Approved { .. } if !approver_enabled => {
                self.status = DeviceStatus::Denied;
                PollStep::Store(PollOutcome::Denied)
            }
            DeviceStatus::Approved { username } => {
                let username = username.clone();
                self.status = DeviceStatus::Issued;
                PollStep::Issue { username }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending() -> DeviceRecord {
        DeviceRecord {
            user_code: "BCDFGHJK".into(),
            client_name: "cli".into(),
            requester_ip: String::new(),
            requester_agent: String::new(),
            created_at: String::new(),
            expires_unix: 100,
            interval_secs: 5,
            last_poll_ms: 0,
            claimed_by: None,
            status: DeviceStatus::Pending,
        }
    }

    #[test]
    fn a_poll_waits_slows_down_and_issues_once() {
        let mut record = pending();
        assert_eq!(
            record.poll(1_000, true),
            PollStep::Store(PollOutcome::Pending)
        );
        assert_eq!(
            record.poll(2_000, true),
            PollStep::Store(PollOutcome::SlowDown(10))
        );
        record.status = DeviceStatus::Approved {
            username: "ann".into(),
        };
        assert_eq!(
            record.poll(13_000, true),
            PollStep::Issue {
                username: "ann".into()
            }
        );
        assert_eq!(record.status, DeviceStatus::Issued);
        assert_eq!(
            record.poll(30_000, true),
            PollStep::Keep(PollOutcome::Invalid)
        );
        assert_eq!(
            record.poll(100_000, true),
            PollStep::Keep(PollOutcome::Expired)
        );
    }

    #[test]
    fn a_disabled_approver_gets_a_denial() {
        let mut record = pending();
        record.status = DeviceStatus::Approved {
            username: "ann".into(),
        };
        assert_eq!(
            record.poll(1_000, false),
            PollStep::Store(PollOutcome::Denied)
        );
        assert_eq!(record.status, DeviceStatus::Denied);
    }

    #[test]
    fn a_pending_login_debug_hides_its_secrets() {
        let login = PendingLogin {
            binding_hash: "b".into(),
            nonce: "nonce-secret".into(),
            pkce_verifier: "pkce-secret".into(),
            return_to: "/".into(),
            issuer: "https://idp".into(),
            client_id: "c".into(),
            expires_unix: 1,
            preview_by: None,
        };
        let shown = format!("{login:?}");
        assert!(!shown.contains("secret"), "{shown}");
    }
}
