//! The HTTP listener: how connections are accepted, how long they may take, and how many there
//! may be. warp answers the requests; this module owns the connections.
//!
//! - HTTP/1.1 only. The daemon does not speak HTTP/2 (neither cleartext `h2c` nor with prior
//!   knowledge): a reverse proxy speaks HTTP/1.1 to it, and one protocol means one place where
//!   body caps and timeouts hold. An HTTP/2 preface is answered as a malformed request.
//! - A client must send a complete request head within the header timeout, counted from the
//!   connection's start or from the first byte of a later request; a kept-alive connection
//!   that sends nothing for the idle timeout is closed. Slow-header clients (slowloris) are cut
//!   off after the header timeout whatever their pace. Bodies have their own limit
//!   ([`crate::http::body::BODY_TIMEOUT`]).
//! - At most `max_connections` connections at once; further ones wait in the kernel's accept
//!   queue until one closes, so a flood of idle connections cannot exhaust file descriptors.
//! - Each request carries the connection's peer address and the trusted proxies as a
//!   [`Peer`] extension, from which [`crate::http::client`] tells the client's address.
//!
//! Shutdown: the listener closes at once; open connections finish the request they are in and
//! close (the caller bounds how long that may take).

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use warp::filters::BoxedFilter;
use warp::reply::Response;

use crate::http::client::{Peer, TrustedProxies};
use crate::shutdown::Shutdown;

/// How long connections may take, and how many there may be (`serve`'s flags).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Time to receive a request head, from the connection's start or a request's first byte.
    pub header_timeout: Duration,
    /// Time a kept-alive connection may wait for its next request.
    pub idle_timeout: Duration,
    /// Connections served at once.
    pub max_connections: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(75),
            max_connections: 1024,
        }
    }
}

/// Serves `routes` on `listener` until `shutdown` fires, then waits for open connections to
/// finish their current request.
pub(crate) async fn serve_http(
    listener: TcpListener,
    routes: BoxedFilter<(Response,)>,
    limits: ConnectionLimits,
    trusted: Arc<TrustedProxies>,
    mut shutdown: Shutdown,
) {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_connections.max(1)));
    loop {
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
            () = shutdown.wait() => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    accept_failed(e).await;
                    continue;
                }
            },
            () = shutdown.wait() => break,
        };
        let _ = stream.set_nodelay(true);
        let watcher = graceful.watcher();
        let routes = routes.clone();
        let peer = Peer {
            addr: peer,
            trusted: trusted.clone(),
        };
        tokio::spawn(async move {
            serve_connection(stream, peer, routes, limits, watcher).await;
            drop(slot);
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// Accept errors are mostly a peer that gave up (ignored) or no file descriptors left (wait a
/// little for some to close).
async fn accept_failed(e: std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        e.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %e, "cannot accept a connection");
    tokio::time::sleep(Duration::from_millis(100)).await;
}

async fn serve_connection(
    stream: TcpStream,
    peer: Peer,
    routes: BoxedFilter<(Response,)>,
    limits: ConnectionLimits,
    watcher: hyper_util::server::graceful::Watcher,
) {
    let peer_addr = peer.addr;
    let clock = Arc::new(ConnectionClock::new());
    let io = TokioIo::new(Tracked {
        inner: stream,
        clock: clock.clone(),
    });
    let service_clock = clock.clone();
    let warp_service = warp::service(routes);
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        request.extensions_mut().insert(peer.clone());
        service_clock.set(Phase::Busy);
        let clock = service_clock.clone();
        let mut warp_service = warp_service.clone();
        async move {
            let mut response = tower_service::Service::call(&mut warp_service, request).await;
            clock.set(Phase::Waiting(Instant::now()));
            // A body refused before it was read (too large, too slow) leaves the connection
            // unusable: say so, so the client opens a new one instead of reusing it.
            if let Ok(response) = &mut response {
                if matches!(response.status().as_u16(), 408 | 413) {
                    response.headers_mut().insert(
                        warp::http::header::CONNECTION,
                        warp::http::HeaderValue::from_static("close"),
                    );
                }
            }
            response
        }
    });
    let connection = hyper::server::conn::http1::Builder::new()
        .header_read_timeout(None)
        .max_buf_size(64 * 1024)
        .serve_connection(io, service);
    tokio::select! {
        result = watcher.watch(connection) => {
            if let Err(e) = result {
                tracing::debug!(error = %e, peer = %peer_addr, "connection ended with an error");
            }
        }
        () = clock.expired(limits) => {
            tracing::debug!(peer = %peer_addr, "connection closed: too slow or idle too long");
        }
    }
}

/// Where a connection is in its request cycle.
#[derive(Debug, Clone, Copy)]
enum Phase {
    /// Accepted; the first request has not begun.
    Opened(Instant),
    /// Between requests, since the last answer.
    Waiting(Instant),
    /// A request head is arriving, since its first byte.
    Receiving(Instant),
    /// A request is being answered.
    Busy,
}

/// A connection's phase, shared by its reader and its service.
struct ConnectionClock(Mutex<Phase>);

impl ConnectionClock {
    fn new() -> ConnectionClock {
        ConnectionClock(Mutex::new(Phase::Opened(Instant::now())))
    }

    fn phase(&self) -> std::sync::MutexGuard<'_, Phase> {
        // Only plain values inside: a panic elsewhere cannot leave it inconsistent.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn set(&self, phase: Phase) {
        *self.phase() = phase;
    }

    /// Bytes arrived: a request begins, unless one is already being read or answered.
    fn bytes_read(&self) {
        let mut phase = self.phase();
        if let Phase::Waiting(_) = *phase {
            *phase = Phase::Receiving(Instant::now());
        }
    }

    /// When the connection must be closed if its phase does not change; `None` while busy.
    fn deadline(&self, limits: ConnectionLimits) -> Option<Instant> {
        match *self.phase() {
            Phase::Opened(since) | Phase::Receiving(since) => Some(since + limits.header_timeout),
            Phase::Waiting(since) => Some(since + limits.idle_timeout),
            Phase::Busy => None,
        }
    }

    /// Completes once the connection has been too slow or idle too long.
    async fn expired(&self, limits: ConnectionLimits) {
        loop {
            match self.deadline(limits) {
                Some(deadline) if deadline <= Instant::now() => return,
                Some(deadline) => tokio::time::sleep_until(deadline.into()).await,
                None => tokio::time::sleep(limits.header_timeout).await,
            }
        }
    }
}

/// A socket that tells its connection's clock when bytes arrive.
struct Tracked {
    inner: TcpStream,
    clock: Arc<ConnectionClock>,
}

impl AsyncRead for Tracked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.clock.bytes_read();
        }
        polled
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_follow_the_phase() {
        let limits = ConnectionLimits::default();
        let clock = ConnectionClock::new();
        let opened = clock.deadline(limits).unwrap();
        assert!(opened <= Instant::now() + limits.header_timeout);
        clock.set(Phase::Busy);
        assert_eq!(clock.deadline(limits), None);
        clock.bytes_read();
        assert_eq!(clock.deadline(limits), None, "a body read while busy");
        let answered = Instant::now();
        clock.set(Phase::Waiting(answered));
        assert_eq!(clock.deadline(limits), Some(answered + limits.idle_timeout));
        clock.bytes_read();
        let receiving = clock.deadline(limits).unwrap();
        assert!(receiving < answered + limits.idle_timeout);
        clock.bytes_read();
        assert_eq!(
            clock.deadline(limits),
            Some(receiving),
            "the first byte counts"
        );
    }
}
