//! Replica heartbeats: with sled there is one daemon, so the list holds this one (and earlier
//! runs until they are swept).

use super::{SledStore, StoreError, decode, encode};
use crate::store::records::ReplicaRecord;

impl SledStore {
    pub(crate) fn record_replica(&self, replica: &ReplicaRecord) -> Result<(), StoreError> {
        let _write = self.write_gate();
        self.replicas
            .insert(replica.id.as_bytes(), encode(replica)?)?;
        Ok(())
    }

    pub(crate) fn remove_replica(&self, id: &str) -> Result<(), StoreError> {
        let _write = self.write_gate();
        self.replicas.remove(id.as_bytes())?;
        Ok(())
    }

    pub(crate) fn replicas(&self, seen_since: u64) -> Result<Vec<ReplicaRecord>, StoreError> {
        let mut found = Vec::new();
        for entry in self.replicas.iter() {
            let (_, bytes) = entry?;
            let replica: ReplicaRecord = decode(&bytes)?;
            if replica.last_seen >= seen_since {
                found.push(replica);
            }
        }
        Ok(found)
    }

    pub(crate) fn sweep_replicas(&self, seen_before: u64) -> Result<usize, StoreError> {
        let stale: Vec<ReplicaRecord> = self
            .replicas(0)?
            .into_iter()
            .filter(|r| r.last_seen < seen_before)
            .collect();
        let _write = self.write_gate();
        for replica in &stale {
            self.replicas.remove(replica.id.as_bytes())?;
        }
        Ok(stale.len())
    }
}
