//! One shutdown signal that every task selects on.

use tokio::sync::watch;

/// Fires shutdown for every [`Shutdown`] made from it.
pub(crate) struct ShutdownTrigger(watch::Sender<bool>);

/// A task's view of the shutdown signal; cheap to clone.
#[derive(Clone)]
pub struct Shutdown(watch::Receiver<bool>);

/// A new, not yet fired, shutdown signal.
pub(crate) fn shutdown_channel() -> (ShutdownTrigger, Shutdown) {
    let (tx, rx) = watch::channel(false);
    (ShutdownTrigger(tx), Shutdown(rx))
}

impl ShutdownTrigger {
    /// Asks every task to stop. Idempotent.
    pub(crate) fn fire(&self) {
        self.0.send_replace(true);
    }
}

impl Shutdown {
    /// Completes once shutdown has been asked for (at once if it already has been, or if the
    /// trigger is gone).
    pub async fn wait(&mut self) {
        let _ = self.0.wait_for(|fired| *fired).await;
    }
}
