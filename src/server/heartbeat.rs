//! The replica's heartbeat: every [`PERIOD`] and after every reload, this daemon records in the
//! store who it is and which configuration it runs, so the settings page of any replica can
//! show the replicas whose `oidc.json` differs from its own. At shutdown it removes itself.

use std::time::Duration;

use crate::shutdown::Shutdown;
use crate::state::AppState;
use crate::store::ReplicaRecord;

/// How often a replica records itself.
const PERIOD: Duration = crate::state::REPLICA_HEARTBEAT;

/// Records this replica now, every [`PERIOD`] and after each reload, until shutdown.
pub(crate) async fn run(state: AppState, listen: String, mut shutdown: Shutdown) {
    let mut changes = state.reloader.subscribe();
    let mut tick = tokio::time::interval(PERIOD);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            changed = changes.changed() => {
                if changed.is_err() {
                    return;
                }
            }
            _ = shutdown.wait() => {
                // A stopped replica is not listed until it would have been swept.
                if let Err(e) = state.store.remove_replica(&state.replica_id).await {
                    tracing::debug!(error = %e, "removing the replica's heartbeat failed");
                }
                return;
            }
        }
        beat(&state, &listen).await;
    }
}

/// Records this replica once.
pub(crate) async fn beat(state: &AppState, listen: &str) {
    let live = state.reloader.live();
    let record = ReplicaRecord {
        id: state.replica_id.to_string(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        listen: listen.to_owned(),
        config_generation: live.generation,
        config_sha256: live.sha256.clone(),
        last_seen: crate::clock::unix_secs(),
    };
    if let Err(e) = state.store.record_replica(&record).await {
        tracing::debug!(error = %e, "recording the replica's heartbeat failed");
    }
}
