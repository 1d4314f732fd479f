//! The last SSO login failures, with their causes, for the administrator: the person at the
//! browser gets a short reference and a page saying whether trying again can help; the settings
//! page (`GET /api/settings/sso`'s `recent_failures`), the log and the audit trail carry the
//! same reference with the precise cause and what to change at the provider.

use std::collections::VecDeque;
use std::sync::Mutex;

use serde::Serialize;

/// Failures kept.
const KEPT: usize = 20;

/// One failed login as the administrator sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LoginFailure {
    /// RFC 3339.
    pub at: String,
    /// What the person at the browser was given, e.g. `SSO-7K3F9Q`.
    pub reference: String,
    /// `transient`, `configuration`, `rejected` or `refused` (a rule of ours said no).
    pub kind: &'static str,
    /// The precise cause (never a token or a secret).
    pub cause: String,
    /// What to change, when known.
    pub hint: Option<String>,
}

/// The last [`KEPT`] failures, newest first.
#[derive(Debug, Default)]
pub struct RecentFailures(Mutex<VecDeque<LoginFailure>>);

impl RecentFailures {
    /// Records a failure; answers the reference to show.
    pub fn record(&self, kind: &'static str, cause: &str, hint: Option<&str>) -> String {
        let reference = new_reference();
        let failure = LoginFailure {
            at: crate::clock::now_rfc3339(),
            reference: reference.clone(),
            kind,
            cause: cause.chars().take(500).collect(),
            hint: hint.map(str::to_owned),
        };
        let mut kept = self.0.lock().unwrap_or_else(|e| e.into_inner());
        kept.push_front(failure);
        kept.truncate(KEPT);
        reference
    }

    /// The kept failures, newest first.
    pub fn list(&self) -> Vec<LoginFailure> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .cloned()
            .collect()
    }
}

/// `SSO-` and six characters that read unambiguously aloud and on a phone.
fn new_reference() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";
    let mut bytes = [0u8; 6];
    rand::fill(&mut bytes[..]);
    let code: String = bytes
        .iter()
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect();
    format!("SSO-{code}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_newest_failures_with_distinct_references() {
        let failures = RecentFailures::default();
        let first = failures.record("configuration", "HS256", Some("use RS256"));
        assert!(first.starts_with("SSO-") && first.len() == 10, "{first}");
        for i in 0..30 {
            failures.record("rejected", &format!("cause {i}"), None);
        }
        let list = failures.list();
        assert_eq!(list.len(), KEPT);
        assert_eq!(list[0].cause, "cause 29");
        assert!(list.iter().all(|f| f.reference != first));
    }
}
