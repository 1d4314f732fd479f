//! What the audit trail records, and the one function that records it. Recording never fails a
//! request: a store error is logged and the request goes on.
//!
//! Anyone can make a sign-in fail, so failures of unauthenticated requests go through an
//! [`AuditThrottle`]: within each minute, the first [`THROTTLE_PER_ADDRESS`] from one address
//! and the first [`THROTTLE_TOTAL`] in all are recorded one by one, and the rest are counted
//! into one `audit.suppressed` event when the minute ends. A flood then adds at most about
//! [`THROTTLE_TOTAL`] events a minute, so the trail's 100,000 events hold more than a day of
//! one, and real evidence is not pushed out by a script. Every failure is still logged.

use crate::store::{AuditEvent, Store};

/// Longest actor or subject kept.
pub const MAX_NAME_CHARS: usize = 128;
/// Longest reason kept.
pub const MAX_REASON_CHARS: usize = 500;

/// `text` cut to `max` characters, control characters replaced (they would garble a log view).
fn bounded(text: String, max: usize) -> String {
    let cut = text.chars().count() > max;
    let mut kept: String = text
        .chars()
        .take(if cut { max - 1 } else { max })
        .map(|c| if c.is_control() { '\u{fffd}' } else { c })
        .collect();
    if cut {
        kept.push('…');
    }
    kept
}

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
    /// A signed-out SSO session sent on to the provider's logout (`idp_logout`).
    LogoutProvider,
    /// The provider ended sessions through back-channel logout.
    LogoutBackchannel,
    ApiKeyCreated,
    ApiKeyRevoked,
    /// An expired API key was presented (throttled per user).
    ApiKeyExpired,
    /// `oidc.json` saved or removed through the API, or changed on disk (every reload).
    SettingsSaved,
    SettingsRemoved,
    SettingsReloaded,
    UserCreated,
    UserChanged,
    /// Access bindings (roles) changed.
    AccessChanged,
    /// Unauthenticated failures past the throttle, counted instead of recorded one by one.
    Suppressed,
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
            AuditKind::LogoutProvider => "logout.provider",
            AuditKind::LogoutBackchannel => "logout.backchannel",
            AuditKind::ApiKeyCreated => "api_key.created",
            AuditKind::ApiKeyRevoked => "api_key.revoked",
            AuditKind::ApiKeyExpired => "api_key.expired",
            AuditKind::SettingsSaved => "settings.saved",
            AuditKind::SettingsRemoved => "settings.removed",
            AuditKind::SettingsReloaded => "settings.reloaded",
            AuditKind::UserCreated => "user.created",
            AuditKind::UserChanged => "user.changed",
            AuditKind::AccessChanged => "access.changed",
            AuditKind::Suppressed => "audit.suppressed",
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

    /// Who did it; at most [`MAX_NAME_CHARS`] characters are kept (an unauthenticated actor is
    /// whatever a client typed).
    pub fn actor(mut self, actor: impl Into<String>) -> Audit {
        self.event.actor = Some(bounded(actor.into(), MAX_NAME_CHARS));
        self
    }

    /// What it was done to; at most [`MAX_NAME_CHARS`] characters are kept.
    pub fn subject(mut self, subject: impl Into<String>) -> Audit {
        self.event.subject = Some(bounded(subject.into(), MAX_NAME_CHARS));
        self
    }

    /// Why; at most [`MAX_REASON_CHARS`] characters are kept.
    pub fn reason(mut self, reason: impl Into<String>) -> Audit {
        self.event.reason = Some(bounded(reason.into(), MAX_REASON_CHARS));
        self
    }

    pub fn ip(mut self, ip: Option<std::net::IpAddr>) -> Audit {
        self.event.ip = ip.map(|ip| ip.to_string());
        self
    }

    /// Stores the event; a failure is logged, never returned.
    pub async fn record(self, store: &Store) {
        if let Err(e) = store.record_audit(&self.event).await {
            tracing::error!(error = %e, kind = %self.event.kind, "cannot record an audit event");
        }
    }
}

/// Unauthenticated failures recorded one by one per address and minute.
pub const THROTTLE_PER_ADDRESS: u32 = 10;
/// Unauthenticated failures recorded one by one per minute in all.
pub const THROTTLE_TOTAL: u32 = 60;
/// The throttle's window.
const THROTTLE_WINDOW: std::time::Duration = std::time::Duration::from_secs(60);
/// Addresses counted per window; beyond, new addresses share the total only.
const THROTTLE_ADDRESSES: usize = 10_000;

/// Decides which unauthenticated failures are recorded one by one (see the module doc).
#[derive(Debug, Default)]
pub struct AuditThrottle(std::sync::Mutex<Option<ThrottleWindow>>);

#[derive(Debug)]
struct ThrottleWindow {
    start: std::time::Instant,
    recorded: u32,
    suppressed: u32,
    /// Address key -> (recorded, suppressed) in this window.
    per_address: std::collections::HashMap<String, (u32, u32)>,
}

impl AuditThrottle {
    /// Records `audit` about a request from `address` (a [`crate::http::client::limit_key`])
    /// unless the throttle counts it instead.
    pub async fn record(&self, audit: Audit, address: &str, store: &Store) {
        let (admitted, summary) = self.admit(address, std::time::Instant::now());
        if let Some(summary) = summary {
            summary.record(store).await;
        }
        if admitted {
            audit.record(store).await;
        }
    }

    /// Writes the count of an ended window (housekeeping calls this, so a flood that stopped is
    /// still summed up).
    pub async fn flush(&self, store: &Store) {
        let summary = {
            let mut window = self.window();
            match window.as_ref() {
                Some(w) if w.start.elapsed() >= THROTTLE_WINDOW => {
                    window.take().and_then(ThrottleWindow::summary)
                }
                _ => None,
            }
        };
        if let Some(summary) = summary {
            summary.record(store).await;
        }
    }

    fn window(&self) -> std::sync::MutexGuard<'_, Option<ThrottleWindow>> {
        // Plain counters inside: a panic elsewhere cannot leave them inconsistent.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether an event from `address` is recorded now, and the summary of a window that just
    /// ended.
    fn admit(&self, address: &str, now: std::time::Instant) -> (bool, Option<Audit>) {
        let mut slot = self.window();
        let mut summary = None;
        if slot
            .as_ref()
            .is_none_or(|w| now.duration_since(w.start) >= THROTTLE_WINDOW)
        {
            summary = slot.take().and_then(ThrottleWindow::summary);
            *slot = Some(ThrottleWindow {
                start: now,
                recorded: 0,
                suppressed: 0,
                per_address: std::collections::HashMap::new(),
            });
        }
        let Some(window) = slot.as_mut() else {
            return (false, summary);
        };
        let known = window.per_address.len() < THROTTLE_ADDRESSES
            || window.per_address.contains_key(address);
        let mut own = (0, 0);
        let counts = if known {
            window.per_address.entry(address.to_owned()).or_default()
        } else {
            &mut own
        };
        let admitted = window.recorded < THROTTLE_TOTAL && counts.0 < THROTTLE_PER_ADDRESS;
        if admitted {
            counts.0 += 1;
            window.recorded += 1;
        } else {
            counts.1 += 1;
            window.suppressed += 1;
        }
        (admitted, summary)
    }
}

impl ThrottleWindow {
    /// The `audit.suppressed` event of this window, if it suppressed anything.
    fn summary(self) -> Option<Audit> {
        if self.suppressed == 0 {
            return None;
        }
        let addresses = self.per_address.values().filter(|c| c.1 > 0).count();
        let top = self
            .per_address
            .iter()
            .max_by_key(|(_, c)| c.1)
            .filter(|(_, c)| c.1 > 0)
            .map(|(address, c)| format!("; most from {address} ({})", c.1))
            .unwrap_or_default();
        Some(
            Audit::failure(
                AuditKind::Suppressed,
                format!(
                    "{} unauthenticated failures in one minute were not recorded one by one ({addresses} addresses{top})",
                    self.suppressed
                ),
            )
            .actor("throttle"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_bounded_and_control_characters_replaced() {
        let audit = Audit::failure(AuditKind::LoginLocal, "r".repeat(10_000))
            .actor("a".repeat(15_000))
            .subject("x\u{1b}[2Jy");
        assert_eq!(
            audit.event.actor.as_ref().unwrap().chars().count(),
            MAX_NAME_CHARS
        );
        assert!(audit.event.actor.as_ref().unwrap().ends_with('…'));
        assert_eq!(
            audit.event.reason.as_ref().unwrap().chars().count(),
            MAX_REASON_CHARS
        );
        assert_eq!(audit.event.subject.as_deref(), Some("x\u{fffd}[2Jy"));
    }

    #[test]
    fn a_flood_is_counted_not_recorded() {
        let throttle = AuditThrottle::default();
        let t0 = std::time::Instant::now();
        let admitted = (0..1000)
            .filter(|_| throttle.admit("198.51.100.1", t0).0)
            .count();
        assert_eq!(admitted, THROTTLE_PER_ADDRESS as usize);
        // Another address still gets its own share, within the total.
        let others = (0..1000)
            .filter(|i| throttle.admit(&format!("203.0.113.{}", i % 200), t0).0)
            .count();
        assert_eq!(others + admitted, THROTTLE_TOTAL as usize);
        // The next window starts afresh and sums the last one up.
        let (admitted, summary) = throttle.admit("198.51.100.1", t0 + THROTTLE_WINDOW);
        assert!(admitted);
        let summary = summary.expect("a summary of the flood");
        assert_eq!(summary.event.kind, "audit.suppressed");
        let reason = summary.event.reason.unwrap();
        assert!(
            reason.starts_with("1940 unauthenticated failures"),
            "{reason}"
        );
        assert!(reason.contains("most from 198.51.100.1 (990)"), "{reason}");
    }
}
