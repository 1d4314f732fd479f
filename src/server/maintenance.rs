//! Housekeeping on a timer: expired records swept from the store, API key uses written in
//! batches. Runs once more at shutdown so no recorded use is lost.

use std::time::Duration;

use super::AppState;
use crate::shutdown::Shutdown;

/// Audit events kept at most, whatever their age.
const MAX_AUDIT_EVENTS: usize = 100_000;
/// How often unflushed writes are flushed.
const FLUSH_PERIOD: Duration = Duration::from_secs(1);
/// How often housekeeping runs.
const PERIOD: Duration = Duration::from_secs(30);

/// Sweeps and writes every [`PERIOD`] until shutdown, then once more.
pub(crate) async fn run(state: AppState, mut shutdown: Shutdown) {
    let mut tick = tokio::time::interval(PERIOD);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut flush_tick = tokio::time::interval(FLUSH_PERIOD);
    flush_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => once(&state).await,
            // Records that need not be durable at once (audit events, pending logins, key
            // uses) reach the disk within this; acknowledged changes were flushed already.
            _ = flush_tick.tick() => {
                if let Err(e) = state.store.flush().await {
                    tracing::error!(error = %e, "flushing the store failed");
                }
            }
            _ = shutdown.wait() => {
                once(&state).await;
                return;
            }
        }
    }
}

/// One round: sweep expired sessions (and the other timed records), persist key uses, flush.
pub(crate) async fn once(state: &AppState) {
    state.audit_throttle.flush(&state.store).await;
    let worker = state;
    let result = async {
        let now = crate::clock::unix_secs();
        let mut swept = worker.store.sweep_expired(now).await?;
        let cutoff = std::time::SystemTime::now()
            .checked_sub(worker.lifetimes.audit_retention)
            .map(|t| humantime::format_rfc3339_millis(t).to_string())
            .unwrap_or_default();
        swept += worker.store.sweep_audit(&cutoff, MAX_AUDIT_EVENTS).await?;
        let uses = worker.key_usage.persist(&worker.store).await?;
        Ok::<_, crate::store::StoreError>((swept, uses))
    }
    .await;
    // Hands memory freed since the last round back to the system (the daemon stays small after
    // bursts of requests).
    // SAFETY: malloc_trim only releases free heap pages; it is safe to call at any time.
    unsafe {
        libc::malloc_trim(0);
    }
    match result {
        Ok((swept, uses)) => {
            if swept > 0 || uses > 0 {
                tracing::debug!(swept, key_uses = uses, "housekeeping");
            }
            if let Err(e) = state.store.flush().await {
                tracing::error!(error = %e, "housekeeping: flushing the store failed");
            }
        }
        Err(e) => tracing::error!(error = %e, "housekeeping failed"),
    }
}
