//! The API's HTTP/1.1 listener: hyper under an accept loop of our own, because a client must
//! not be able to hold the server by being slow. `axum::serve` has no header, body or idle
//! timeout and no connection cap; here
//! - a connection gets `header_timeout` from its first byte (or from its start) to send a
//!   request's headers, and `idle_timeout` between requests;
//! - the body has the edge's body timeout (`ApiState::body_timeout`), enforced in the handler;
//! - at most `max_connections` are open: at the cap, a new connection displaces the stalest
//!   one that has no request in progress (an idle keep-alive or a half-sent header), and is
//!   refused only when every connection is busy with a request.

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use sesame_api::PeerAddr;
use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};
use tokio::time::Instant;
use tower::ServiceExt;

/// The listener's limits.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// From a connection's start, or the first byte of a request, to the end of its headers.
    pub header_timeout: Duration,
    /// How long a connection may sit between requests.
    pub idle_timeout: Duration,
    /// Open connections at most.
    pub max_connections: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for a request; the deadline is the idle (or, on a new connection, the header)
    /// timeout.
    Idle,
    /// Some of a request's headers arrived; the deadline is the header timeout.
    Head,
    /// A request is being handled; the handler bounds its body read.
    Busy,
}

struct State {
    phase: Phase,
    /// When the current phase ends the connection (not used while `Busy`).
    deadline: Instant,
    /// When the current phase began: at the cap, the oldest non-busy connection goes first.
    since: Instant,
}

/// One connection's shared state, seen by its I/O, its service and its watchdog.
struct Conn {
    state: Mutex<State>,
    changed: Notify,
    evicted: AtomicBool,
}

impl Conn {
    fn new(header_timeout: Duration) -> Conn {
        let now = Instant::now();
        Conn {
            state: Mutex::new(State {
                phase: Phase::Idle,
                deadline: now + header_timeout,
                since: now,
            }),
            changed: Notify::new(),
            evicted: AtomicBool::new(false),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere cannot leave `State` half-written (plain field stores).
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn enter(&self, phase: Phase, timeout: Duration) {
        let now = Instant::now();
        *self.lock() = State {
            phase,
            deadline: now + timeout,
            since: now,
        };
        self.changed.notify_one();
    }

    /// Resolves when the connection must be closed: a deadline passed outside `Busy`, or it was
    /// evicted.
    async fn expired(&self) {
        loop {
            if self.evicted.load(Ordering::Acquire) {
                return;
            }
            let (phase, deadline) = {
                let s = self.lock();
                (s.phase, s.deadline)
            };
            if phase == Phase::Busy {
                self.changed.notified().await;
                continue;
            }
            tokio::select! {
                () = tokio::time::sleep_until(deadline) => {
                    let s = self.lock();
                    if s.phase != Phase::Busy && s.deadline <= Instant::now() {
                        return;
                    }
                }
                () = self.changed.notified() => {}
            }
        }
    }
}

/// The socket, watched: the first byte of a request starts the header clock.
struct Watched<T> {
    io: T,
    conn: Arc<Conn>,
    header_timeout: Duration,
}

impl<T: AsyncRead + Unpin> AsyncRead for Watched<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        let out = Pin::new(&mut this.io).poll_read(cx, buf);
        if buf.filled().len() > before && this.conn.lock().phase == Phase::Idle {
            this.conn.enter(Phase::Head, this.header_timeout);
        }
        out
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Watched<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// Back to `Idle` when the handler is done, even if its future is dropped.
struct BusyGuard {
    conn: Arc<Conn>,
    idle_timeout: Duration,
}

impl Drop for BusyGuard {
    fn drop(&mut self) {
        self.conn.enter(Phase::Idle, self.idle_timeout);
    }
}

/// The open connections, for the cap and eviction.
#[derive(Default)]
struct Registry {
    conns: Mutex<HashMap<u64, Arc<Conn>>>,
}

impl Registry {
    fn lock(&self) -> MutexGuard<'_, HashMap<u64, Arc<Conn>>> {
        self.conns.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Makes room for one more: false if every open connection is busy with a request.
    fn make_room(&self, max: usize) -> bool {
        let conns = self.lock();
        let live = conns
            .values()
            .filter(|c| !c.evicted.load(Ordering::Acquire))
            .count();
        if live < max {
            return true;
        }
        let stalest = conns
            .values()
            .filter(|c| !c.evicted.load(Ordering::Acquire))
            .filter_map(|c| {
                let s = c.lock();
                (s.phase != Phase::Busy).then(|| (s.since, c.clone()))
            })
            .min_by_key(|(since, _)| *since);
        match stalest {
            Some((_, c)) => {
                c.evicted.store(true, Ordering::Release);
                c.changed.notify_one();
                true
            }
            None => false,
        }
    }
}

/// Serves `router` on `listener` until `shutdown` resolves, then lets open requests finish
/// (up to 30 s).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let registry = Arc::new(Registry::default());
    let (stop, stopping) = watch::channel(false);
    let mut tasks = tokio::task::JoinSet::new();
    let mut next_id = 0u64;
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of descriptors or a connection reset before accept: back off a
                    // little instead of spinning, and keep serving the connections we have.
                    tracing::warn!(error = %e, "accepting an API connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        while tasks.try_join_next().is_some() {}
        if !registry.make_room(limits.max_connections) {
            tracing::debug!(%peer, "connection refused: every connection is busy");
            drop(stream);
            continue;
        }
        let _ = stream.set_nodelay(true);
        next_id += 1;
        let id = next_id;
        let conn = Arc::new(Conn::new(limits.header_timeout));
        registry.lock().insert(id, conn.clone());
        let registry = registry.clone();
        let router = router.clone();
        let mut stopping = stopping.clone();
        tasks.spawn(async move {
            connection(stream, peer, router, conn, limits, &mut stopping).await;
            registry.lock().remove(&id);
        });
    }
    // Closed now, not after the drain: a client connecting during shutdown is refused at once
    // instead of waiting in the accept queue for a server that will never accept it.
    drop(listener);
    let _ = stop.send(true);
    let drain = async { while tasks.join_next().await.is_some() {} };
    if tokio::time::timeout(Duration::from_secs(30), drain)
        .await
        .is_err()
    {
        tracing::warn!("requests still open 30 s after shutdown began; closing them");
    }
    Ok(())
}

async fn connection(
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    router: Router,
    conn: Arc<Conn>,
    limits: Limits,
    stopping: &mut watch::Receiver<bool>,
) {
    let io = TokioIo::new(Watched {
        io: stream,
        conn: conn.clone(),
        header_timeout: limits.header_timeout,
    });
    let service_conn = conn.clone();
    let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        let guard = BusyGuard {
            conn: service_conn.clone(),
            idle_timeout: limits.idle_timeout,
        };
        service_conn.enter(Phase::Busy, limits.idle_timeout);
        req.extensions_mut().insert(PeerAddr(peer));
        let router = router.clone();
        async move {
            let response = router.oneshot(req).await;
            drop(guard);
            response
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    // Our own clock covers headers (`Watched`); hyper's would also start on idle connections.
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(None)
        .keep_alive(true);
    let served = builder.serve_connection(io, service);
    tokio::pin!(served);
    tokio::select! {
        result = served.as_mut() => {
            if let Err(e) = result {
                tracing::debug!(%peer, error = %e, "API connection ended with an error");
            }
        }
        () = conn.expired() => {
            tracing::debug!(%peer, "API connection closed: timed out or displaced");
        }
        () = async { drop(stopping.wait_for(|s| *s).await) } => {
            served.as_mut().graceful_shutdown();
            let _ = served.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_silent_connection_expires_and_a_busy_one_does_not() {
        let conn = Conn::new(Duration::from_secs(10));
        let t = Instant::now();
        conn.expired().await;
        assert_eq!(Instant::now() - t, Duration::from_secs(10));

        let conn = Arc::new(Conn::new(Duration::from_secs(10)));
        conn.enter(Phase::Busy, Duration::from_secs(60));
        let watcher = tokio::spawn({
            let conn = conn.clone();
            async move { conn.expired().await }
        });
        tokio::time::sleep(Duration::from_secs(3600)).await;
        assert!(
            !watcher.is_finished(),
            "a request in progress has no deadline here"
        );
        conn.enter(Phase::Idle, Duration::from_secs(60));
        let t = Instant::now();
        watcher.await.unwrap();
        assert_eq!(Instant::now() - t, Duration::from_secs(60));
    }

    #[test]
    fn at_the_cap_the_stalest_idle_connection_goes_and_busy_ones_stay() {
        let r = Registry::default();
        let old = Arc::new(Conn::new(Duration::from_secs(10)));
        let busy = Arc::new(Conn::new(Duration::from_secs(10)));
        r.lock().insert(1, old.clone());
        std::thread::sleep(Duration::from_millis(2));
        busy.enter(Phase::Busy, Duration::from_secs(60));
        r.lock().insert(2, busy.clone());
        assert!(r.make_room(3), "below the cap");
        assert!(!old.evicted.load(Ordering::Acquire));
        assert!(r.make_room(2));
        assert!(
            old.evicted.load(Ordering::Acquire),
            "the idle one is displaced"
        );
        assert!(!busy.evicted.load(Ordering::Acquire));
        assert!(!r.make_room(1), "only busy connections left: refuse");
    }
}
