//! Device login records (RFC 8628): a device code stored by its SHA-256, its user code indexed
//! for the browser, and the transitions pending -> approved|denied -> issued, each in one
//! transaction so concurrent polls yield at most one API key.

use sled::Transactional;
use sled::transaction::ConflictableTransactionError;

use super::keys::owner_key;
use super::{
    ApiKeyRecord, DeviceRecord, DeviceStatus, PollOutcome, PollStep, SledStore, StoreError, decode,
    encode, unwrap_tx,
};
use crate::store::records::EXPIRED_KEPT_SECS;

fn abort(e: StoreError) -> ConflictableTransactionError<StoreError> {
    ConflictableTransactionError::Abort(e)
}

impl SledStore {
    /// Stores a new device login; false (nothing written) when its user code is already used
    /// by a live code.
    pub(crate) fn create_device_code(
        &self,
        device_hash: &[u8],
        record: &DeviceRecord,
    ) -> Result<bool, StoreError> {
        let _write = self.write_gate();
        let bytes = encode(record)?;
        (&self.device_codes, &self.device_user_codes)
            .transaction(|(codes, user_codes)| {
                if user_codes.get(record.user_code.as_bytes())?.is_some() {
                    return Ok(false);
                }
                user_codes.insert(record.user_code.as_bytes(), device_hash)?;
                codes.insert(device_hash, bytes.as_slice())?;
                Ok(true)
            })
            .map_err(unwrap_tx)
    }

    /// The device login stored under `device_hash`.
    pub(crate) fn device_code(
        &self,
        device_hash: &[u8],
    ) -> Result<Option<DeviceRecord>, StoreError> {
        self.device_codes
            .get(device_hash)?
            .map(|bytes| decode(&bytes))
            .transpose()
    }

    /// The live device login whose (normalised) user code is `user_code`, with its hash.
    pub(crate) fn device_by_user_code(
        &self,
        user_code: &str,
        now_unix: u64,
    ) -> Result<Option<(Vec<u8>, DeviceRecord)>, StoreError> {
        let Some(hash) = self.device_user_codes.get(user_code.as_bytes())? else {
            return Ok(None);
        };
        let Some(bytes) = self.device_codes.get(&hash)? else {
            return Ok(None);
        };
        let record: DeviceRecord = decode(&bytes)?;
        Ok((record.expires_unix > now_unix).then(|| (hash.to_vec(), record)))
    }

    /// Changes a device login with `change` when `allowed` holds for it; answers the record
    /// after the change, or `None` (nothing written) when it is gone or `allowed` refused.
    pub(crate) fn update_device(
        &self,
        device_hash: &[u8],
        allowed: impl Fn(&DeviceRecord) -> bool,
        change: impl Fn(&mut DeviceRecord),
    ) -> Result<Option<DeviceRecord>, StoreError> {
        let _write = self.write_gate();
        self.device_codes
            .transaction(|codes| {
                let Some(bytes) = codes.get(device_hash)? else {
                    return Ok(None);
                };
                let mut record: DeviceRecord = decode(&bytes).map_err(abort)?;
                if !allowed(&record) {
                    return Ok(None);
                }
                change(&mut record);
                codes.insert(device_hash, encode(&record).map_err(abort)?)?;
                Ok(Some(record))
            })
            .map_err(unwrap_tx)
    }

    /// One poll of a device code at `now_ms`. When the code is approved, stores `key` (under
    /// `key_hash`, owned by the approving user) and marks the code spent, in one transaction.
    ///
    /// A poll's pacing (the last poll, the interval that `slow_down` raises) is kept in memory:
    /// a poll that changes no status writes nothing, so it never waits behind the write gate
    /// and another request's flush. Only a change of status (issued, or denied because the
    /// approver was disabled since) goes through the transaction. A restart forgets the pacing:
    /// the first poll after it is never too fast.
    pub(crate) fn poll_device(
        &self,
        device_hash: &[u8],
        now_ms: u64,
        key_hash: &[u8],
        key: &ApiKeyRecord,
    ) -> Result<PollOutcome, StoreError> {
        let Some(stored) = self.device_code(device_hash)? else {
            return Ok(PollOutcome::Invalid);
        };
        let approver_enabled = self.approver_enabled(&stored)?;
        {
            let mut pacing = self.poll_pacing.lock().unwrap_or_else(|e| e.into_inner());
            let paced = pacing
                .entry(device_hash.to_vec())
                .or_insert((stored.last_poll_ms, stored.interval_secs));
            let mut probe = stored.clone();
            (probe.last_poll_ms, probe.interval_secs) = *paced;
            let step = probe.poll(now_ms, approver_enabled);
            *paced = (probe.last_poll_ms, probe.interval_secs);
            match step {
                PollStep::Keep(outcome) => return Ok(outcome),
                PollStep::Store(outcome) if probe.status == stored.status => return Ok(outcome),
                // A change of status: written below.
                PollStep::Store(_) | PollStep::Issue { .. } => {}
            }
        }
        let _write = self.write_gate();
        // Read again under the gate, which disabling a user takes too, so it stays true until
        // the end (a read inside the transaction would wait for the transaction's own lock).
        let approver_enabled = match self.device_code(device_hash)? {
            Some(record) => self.approver_enabled(&record)?,
            None => true,
        };
        (&self.device_codes, &self.api_keys, &self.api_keys_by_user)
            .transaction(|(codes, keys, owners)| {
                let Some(bytes) = codes.get(device_hash)? else {
                    return Ok(PollOutcome::Invalid);
                };
                let mut record: DeviceRecord = decode(&bytes).map_err(abort)?;
                // The pacing was decided in memory above; this decides the status only.
                record.last_poll_ms = 0;
                let outcome = match record.poll(now_ms, approver_enabled) {
                    PollStep::Keep(outcome) => return Ok(outcome),
                    PollStep::Store(outcome) => outcome,
                    PollStep::Issue { username } => {
                        let mut key = key.clone();
                        key.username = username;
                        keys.insert(key_hash, encode(&key).map_err(abort)?)?;
                        owners.insert(owner_key(&key.username, &key.id), key_hash)?;
                        PollOutcome::Issued(key)
                    }
                };
                codes.insert(device_hash, encode(&record).map_err(abort)?)?;
                Ok(outcome)
            })
            .map_err(unwrap_tx)
    }

    /// Whether the user who approved `record` (if it is approved) is still enabled.
    fn approver_enabled(&self, record: &DeviceRecord) -> Result<bool, StoreError> {
        Ok(match &record.status {
            DeviceStatus::Approved { username } => self.user(username)?.is_none_or(|u| !u.disabled),
            _ => true,
        })
    }

    /// Removes device logins expired at `now_unix` and their user codes; returns how many.
    pub(crate) fn sweep_device_codes(&self, now_unix: u64) -> Result<usize, StoreError> {
        let _write = self.write_gate();
        let mut removed = 0;
        for entry in self.device_codes.iter() {
            let (hash, bytes) = entry?;
            let record = decode::<DeviceRecord>(&bytes).ok();
            // Kept a while after expiry, so late polls still hear `expired_token`.
            if record
                .as_ref()
                .is_none_or(|r| r.expires_unix + EXPIRED_KEPT_SECS <= now_unix)
            {
                self.device_codes.remove(&hash)?;
                if let Some(record) = record {
                    self.device_user_codes
                        .compare_and_swap(record.user_code.as_bytes(), Some(hash), None::<&[u8]>)?
                        .ok();
                }
                removed += 1;
            }
        }
        if removed > 0 {
            let mut pacing = self.poll_pacing.lock().unwrap_or_else(|e| e.into_inner());
            pacing.retain(|hash, _| self.device_codes.contains_key(hash).unwrap_or(false));
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sled_store::test_store;

    fn record(user_code: &str) -> DeviceRecord {
        DeviceRecord {
            user_code: user_code.into(),
            client_name: "coder CLI".into(),
            requester_ip: "127.0.0.1".into(),
            requester_agent: "test".into(),
            created_at: String::new(),
            expires_unix: 1_000,
            interval_secs: 5,
            last_poll_ms: 0,
            claimed_by: None,
            status: DeviceStatus::Pending,
        }
    }

    fn key() -> ApiKeyRecord {
        ApiKeyRecord {
            id: "k".into(),
            username: String::new(),
            name: "coder CLI".into(),
            prefix: "cf_abcdef".into(),
            created_at: String::new(),
            last_used_unix: None,
            expires_unix: None,
            from_device: false,
        }
    }

    #[test]
    fn user_codes_are_unique_among_live_codes() {
        let (_dir, store) = test_store();
        assert!(
            store
                .create_device_code(b"d1", &record("BCDFGHJK"))
                .unwrap()
        );
        assert!(
            !store
                .create_device_code(b"d2", &record("BCDFGHJK"))
                .unwrap()
        );
        let (hash, _) = store.device_by_user_code("BCDFGHJK", 10).unwrap().unwrap();
        assert_eq!(hash, b"d1");
        assert!(
            store
                .device_by_user_code("BCDFGHJK", 1_000)
                .unwrap()
                .is_none(),
            "expired"
        );
        assert_eq!(
            store.sweep_device_codes(1_000).unwrap(),
            0,
            "kept to answer expired_token"
        );
        assert_eq!(store.sweep_device_codes(1_600).unwrap(), 1);
        assert!(
            store
                .create_device_code(b"d3", &record("BCDFGHJK"))
                .unwrap(),
            "free again"
        );
    }

    #[test]
    fn polls_slow_down_then_issue_exactly_one_key() {
        let (_dir, store) = test_store();
        store.create_device_code(b"d", &record("BCDFGHJK")).unwrap();
        assert_eq!(
            store.poll_device(b"d", 10_000, b"k1", &key()).unwrap(),
            PollOutcome::Pending
        );
        assert_eq!(
            store.poll_device(b"d", 11_000, b"k1", &key()).unwrap(),
            PollOutcome::SlowDown(10)
        );
        assert_eq!(
            store.poll_device(b"d", 22_000, b"k1", &key()).unwrap(),
            PollOutcome::Pending
        );
        store
            .update_device(
                b"d",
                |r| r.status == DeviceStatus::Pending,
                |r| {
                    r.status = DeviceStatus::Approved {
                        username: "ann".into(),
                    }
                },
            )
            .unwrap()
            .unwrap();
        let PollOutcome::Issued(issued) = store.poll_device(b"d", 40_000, b"k1", &key()).unwrap()
        else {
            panic!("approved code issues a key");
        };
        assert_eq!(issued.username, "ann");
        assert_eq!(
            store.api_key_by_hash(b"k1").unwrap().unwrap().username,
            "ann"
        );
        assert_eq!(
            store.poll_device(b"d", 60_000, b"k2", &key()).unwrap(),
            PollOutcome::Invalid
        );
        assert!(store.api_key_by_hash(b"k2").unwrap().is_none());
        assert_eq!(
            store.poll_device(b"nope", 60_000, b"k3", &key()).unwrap(),
            PollOutcome::Invalid
        );
        assert_eq!(
            store.poll_device(b"d", 1_000_000, b"k3", &key()).unwrap(),
            PollOutcome::Expired
        );
    }
}
