//! Other replicas' changes: a connection of its own (not from the pool) `LISTEN`s on
//! [`super::AUTH_CHANNEL`]; each notification moves the auth epoch. The connection is made again
//! with backoff whenever it drops, and the epoch moves on every reconnect (the full check after
//! a gap in which notifications may have been missed).

use std::sync::Weak;
use std::time::Duration;

use futures_util::FutureExt;
use tokio_postgres::AsyncMessage;

use super::{AUTH_CHANNEL, DatabaseUrl, Inner};

const FIRST_RETRY: Duration = Duration::from_millis(100);
const MAX_RETRY: Duration = Duration::from_secs(5);

/// Listens until the store is dropped.
pub(super) async fn run(store: Weak<Inner>, url: DatabaseUrl) {
    let mut retry = FIRST_RETRY;
    loop {
        let tls = match url.tls() {
            Ok(tls) => tls,
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for other replicas' changes");
                return;
            }
        };
        match url.config().connect(tls).await {
            Ok((client, mut connection)) => {
                let (notified, mut notifications) = tokio::sync::mpsc::unbounded_channel();
                // The connection delivers notifications only while it is polled.
                let driver = tokio::spawn(async move {
                    loop {
                        match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                            Some(Ok(AsyncMessage::Notification(_))) => {
                                if notified.send(()).is_err() {
                                    return;
                                }
                            }
                            Some(Ok(_)) => {}
                            Some(Err(e)) => {
                                tracing::warn!(error = %e, "the database connection for change notifications failed");
                                return;
                            }
                            None => return,
                        }
                    }
                });
                let listening = client
                    .batch_execute(&format!("LISTEN {AUTH_CHANNEL}"))
                    .await;
                match listening {
                    Ok(()) => {
                        let Some(inner) = store.upgrade() else { return };
                        inner.set_listening(true);
                        drop(inner);
                        tracing::info!("listening for other replicas' changes");
                        retry = FIRST_RETRY;
                        loop {
                            // Wakes at least once a second to end with the store.
                            let next =
                                tokio::time::timeout(Duration::from_secs(1), notifications.recv())
                                    .await;
                            let Some(inner) = store.upgrade() else {
                                driver.abort();
                                return;
                            };
                            match next {
                                Ok(Some(())) => {
                                    inner.changed_elsewhere();
                                    // Notifications that arrived together count once.
                                    while notifications.recv().now_or_never().flatten().is_some() {}
                                }
                                Ok(None) => break,
                                Err(_) => {}
                            }
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot listen for other replicas' changes");
                    }
                }
                driver.abort();
                drop(client);
                let Some(inner) = store.upgrade() else { return };
                inner.set_listening(false);
                tracing::warn!(
                    "lost the database connection for change notifications; reconnecting"
                );
            }
            Err(e) => {
                let Some(inner) = store.upgrade() else { return };
                inner.set_listening(false);
                tracing::warn!(error = %e, retry_in = ?retry, "cannot reach the database");
            }
        }
        tokio::time::sleep(retry).await;
        retry = (retry * 2).min(MAX_RETRY);
    }
}
