//! The audit trail: sign-ins and their failures, API keys, settings and access changes, in
//! order of arrival, with retention. Events never hold a secret: callers pass names, ids and
//! reasons, never passwords, keys, codes or tokens.

use super::{AuditEvent, SledStore, StoreError, decode, encode};

impl SledStore {
    /// Appends an event (not flushed: it is written with the change it records, or within the
    /// next flush).
    pub(crate) fn record_audit(&self, event: &AuditEvent) -> Result<u64, StoreError> {
        let _write = self.write_gate();
        // Consecutive ids let the sweep know the count from the first and last keys alone.
        let id = match self.audit.last()? {
            Some((key, _)) => event_id(&key)? + 1,
            // An emptied trail goes on after the ids it had (kept by the sweep that emptied
            // it), so ids never repeat.
            None => {
                let after_swept = match self.db.get(AUDIT_NEXT_ID)? {
                    Some(bytes) => event_id(&bytes)?,
                    None => 0,
                };
                self.db.generate_id()?.max(after_swept)
            }
        };
        let mut event = event.clone();
        event.id = id;
        self.audit.insert(id.to_be_bytes(), encode(&event)?)?;
        Ok(id)
    }

    /// Up to `limit` events older than `before` (newest first), those of `kind` only when given.
    pub(crate) fn audit_events(
        &self,
        before: Option<u64>,
        limit: usize,
        kind: Option<&str>,
    ) -> Result<Vec<AuditEvent>, StoreError> {
        let end = before.unwrap_or(u64::MAX).to_be_bytes();
        let mut events = Vec::new();
        for entry in self.audit.range(..end).rev() {
            let (_, bytes) = entry?;
            let event: AuditEvent = decode(&bytes)?;
            if kind.is_none_or(|k| event.kind == k || event.kind.starts_with(&format!("{k}."))) {
                events.push(event);
                if events.len() >= limit {
                    break;
                }
            }
        }
        Ok(events)
    }

    /// Drops events recorded before `cutoff_rfc3339` and beyond the newest `max_events`;
    /// returns how many.
    pub(crate) fn sweep_audit(
        &self,
        cutoff_rfc3339: &str,
        max_events: usize,
    ) -> Result<usize, StoreError> {
        let _write = self.write_gate();
        let mut removed = 0;
        // Counting reads the whole trail into memory: only when the ids span more than the cap
        // (ids are consecutive, but events stored before they were may have gaps).
        let span = match (self.audit.first()?, self.audit.last()?) {
            (Some((first, _)), Some((last, _))) => event_id(&last)? - event_id(&first)? + 1,
            _ => 0,
        };
        let excess = if span <= max_events as u64 {
            0
        } else {
            self.audit.len().saturating_sub(max_events)
        };
        let mut last_removed = None;
        for entry in self.audit.iter() {
            let (key, bytes) = entry?;
            let old = decode::<AuditEvent>(&bytes).map_or(true, |e| e.at.as_str() < cutoff_rfc3339);
            if removed < excess || old {
                self.audit.remove(&key)?;
                removed += 1;
                last_removed = Some(key);
            } else {
                break;
            }
        }
        if let Some(key) = last_removed.filter(|_| self.audit.is_empty()) {
            let next = event_id(&key)? + 1;
            self.db.insert(AUDIT_NEXT_ID, &next.to_be_bytes())?;
        }
        Ok(removed)
    }
}

/// Where the sweep that empties the trail keeps the id the next event gets (in the default tree).
const AUDIT_NEXT_ID: &[u8] = b"audit.v1.next_id";

/// The id of an event from its key (big-endian).
fn event_id(key: &[u8]) -> Result<u64, StoreError> {
    key.try_into()
        .map(u64::from_be_bytes)
        .map_err(|_| StoreError::CorruptKey("audit"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sled_store::test_store;

    fn event(kind: &str, at: &str) -> AuditEvent {
        AuditEvent {
            id: 0,
            at: at.into(),
            kind: kind.into(),
            outcome: "success".into(),
            actor: Some("ann".into()),
            subject: None,
            reason: None,
            ip: None,
        }
    }

    #[test]
    fn events_page_backwards_filter_by_kind_and_expire() {
        let (_dir, store) = test_store();
        for (i, kind) in ["login.local", "api_key.created", "login.sso", "login.local"]
            .iter()
            .enumerate()
        {
            store
                .record_audit(&event(kind, &format!("2026-11-2{i}T00:00:00Z")))
                .unwrap();
        }
        let all = store.audit_events(None, 10, None).unwrap();
        assert_eq!(all.len(), 4);
        assert_eq!(all[0].at, "2026-11-23T00:00:00Z", "newest first");
        let page = store.audit_events(Some(all[1].id), 10, None).unwrap();
        assert_eq!(page.len(), 2);
        let logins = store.audit_events(None, 10, Some("login")).unwrap();
        assert_eq!(logins.len(), 3);
        assert_eq!(store.sweep_audit("2026-11-22T00:00:00Z", 100).unwrap(), 2);
        assert_eq!(
            store.sweep_audit("2000-01-01T00:00:00Z", 1).unwrap(),
            1,
            "count cap"
        );
        assert_eq!(store.audit_events(None, 10, None).unwrap().len(), 1);
    }

    #[test]
    fn the_count_cap_is_exact_when_older_ids_have_gaps() {
        let (_dir, store) = test_store();
        // Events stored before ids were consecutive: 3 events spanning 5,000 ids.
        for id in [7u64, 1_000, 5_006] {
            let mut old = event("login.local", "2026-11-20T00:00:00Z");
            old.id = id;
            store
                .audit
                .insert(id.to_be_bytes(), encode(&old).unwrap())
                .unwrap();
        }
        let next = store
            .record_audit(&event("login.sso", "2026-11-21T00:00:00Z"))
            .unwrap();
        assert_eq!(next, 5_007, "new ids follow the last one");
        assert_eq!(store.sweep_audit("2000-01-01T00:00:00Z", 100).unwrap(), 0);
        assert_eq!(store.sweep_audit("2000-01-01T00:00:00Z", 3).unwrap(), 1);
        let kept: Vec<u64> = store
            .audit_events(None, 10, None)
            .unwrap()
            .iter()
            .map(|e| e.id)
            .collect();
        assert_eq!(kept, [5_007, 5_006, 1_000]);
    }

    #[test]
    fn ids_never_repeat_after_the_trail_is_emptied() {
        let (_dir, store) = test_store();
        let mut last = 0;
        for _ in 0..50 {
            last = store
                .record_audit(&event("login.local", "2026-11-20T00:00:00Z"))
                .unwrap();
        }
        assert_eq!(store.sweep_audit("2026-12-01T00:00:00Z", 100).unwrap(), 50);
        assert!(store.audit_events(None, 10, None).unwrap().is_empty());
        let next = store
            .record_audit(&event("login.sso", "2026-12-02T00:00:00Z"))
            .unwrap();
        assert!(next > last, "{next} after {last}");
    }
}
