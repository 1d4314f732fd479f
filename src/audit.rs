//! What the audit trail records, and the one function that records it. Recording never fails a
//! request: a store error is logged and the request goes on.

use crate::store::{AuditEvent, Store};

/// Every kind of audited event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditKind {
    /// A password sign-in (form or `POST /api/auth/login`).
    LoginLocal,
    /// An SSO sign-in (callback).
    LoginSso,
    /// A device login that handed out its key.
    LoginDevice,
    /// A device code approved or denied in the browser.
    DeviceApproved,
    DeviceDenied,
    /// A browser session ended.
    Logout,
    ApiKeyCreated,
    ApiKeyRevoked,
    /// `oidc.json` saved or removed through the API, or changed on disk (every reload).
    SettingsSaved,
    SettingsRemoved,
    SettingsReloaded,
    UserCreated,
    UserChanged,
    /// Access bindings (roles) changed.
    AccessChanged,
}

impl AuditKind {
    /// The name stored and shown: `area.event`.
    pub fn as_str(self) -> &'static str {
        match self {
            AuditKind::LoginLocal => "login.local",
            AuditKind::LoginSso => "login.sso",
            AuditKind::LoginDevice => "login.device",
            AuditKind::DeviceApproved => "device.approved",
            AuditKind::DeviceDenied => "device.denied",
            AuditKind::Logout => "logout",
            AuditKind::ApiKeyCreated => "api_key.created",
            AuditKind::ApiKeyRevoked => "api_key.revoked",
            AuditKind::SettingsSaved => "settings.saved",
            AuditKind::SettingsRemoved => "settings.removed",
            AuditKind::SettingsReloaded => "settings.reloaded",
            AuditKind::UserCreated => "user.created",
            AuditKind::UserChanged => "user.changed",
            AuditKind::AccessChanged => "access.changed",
        }
    }
}

/// An event being described.
#[derive(Debug, Clone)]
pub struct Audit {
    event: AuditEvent,
}

impl Audit {
    /// A successful `kind`.
    pub fn success(kind: AuditKind) -> Audit {
        Audit::new(kind, "success")
    }

    /// A failed `kind`, with why.
    pub fn failure(kind: AuditKind, reason: impl Into<String>) -> Audit {
        Audit::new(kind, "failure").reason(reason)
    }

    fn new(kind: AuditKind, outcome: &str) -> Audit {
        Audit {
            event: AuditEvent {
                id: 0,
                at: crate::clock::now_rfc3339(),
                kind: kind.as_str().to_owned(),
                outcome: outcome.to_owned(),
                actor: None,
                subject: None,
                reason: None,
                ip: None,
            },
        }
    }

    pub fn actor(mut self, actor: impl Into<String>) -> Audit {
        self.event.actor = Some(actor.into());
        self
    }

    pub fn subject(mut self, subject: impl Into<String>) -> Audit {
        self.event.subject = Some(subject.into());
        self
    }

    pub fn reason(mut self, reason: impl Into<String>) -> Audit {
        let reason: String = reason.into();
        self.event.reason = Some(reason.chars().take(500).collect());
        self
    }

    pub fn ip(mut self, ip: Option<std::net::SocketAddr>) -> Audit {
        self.event.ip = ip.map(|a| a.ip().to_string());
        self
    }

    /// Stores the event; a failure is logged, never returned.
    pub fn record(self, store: &Store) {
        if let Err(e) = store.record_audit(&self.event) {
            tracing::error!(error = %e, kind = %self.event.kind, "cannot record an audit event");
        }
    }
}
