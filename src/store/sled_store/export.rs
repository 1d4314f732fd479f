//! Everything `migrate-store` copies out of a sled store.

use super::{ApiKeyRecord, AuditEvent, SledStore, StoreError, UserRecord, decode};
use crate::store::StoreExport;

impl SledStore {
    /// Users, identities, API keys (with their hashes) and audit events, as stored.
    pub(crate) fn export(&self) -> Result<StoreExport, StoreError> {
        let _write = self.write_gate();
        let users = self
            .users
            .iter()
            .values()
            .map(|bytes| decode::<UserRecord>(&bytes?))
            .collect::<Result<_, _>>()?;
        let mut identities = Vec::new();
        for entry in self.identities.iter() {
            let (key, username) = entry?;
            let Some(split) = key.iter().position(|b| *b == 0) else {
                return Err(StoreError::CorruptKey("identities"));
            };
            identities.push((
                String::from_utf8_lossy(&key[..split]).into_owned(),
                String::from_utf8_lossy(&key[split + 1..]).into_owned(),
                String::from_utf8_lossy(&username).into_owned(),
            ));
        }
        let mut api_keys = Vec::new();
        for entry in self.api_keys.iter() {
            let (hash, bytes) = entry?;
            api_keys.push((hash.to_vec(), decode::<ApiKeyRecord>(&bytes)?));
        }
        let audit = self
            .audit
            .iter()
            .values()
            .map(|bytes| decode::<AuditEvent>(&bytes?))
            .collect::<Result<_, _>>()?;
        Ok(StoreExport {
            users,
            identities,
            api_keys,
            audit,
        })
    }
}
