//! The request log, written off the request thread: a request appends its line's fields to a
//! queue, and one thread takes the whole queue every few milliseconds and turns each line into
//! the `info` event (target `sesame_api`, message `request`) that the subscriber formats and
//! writes. Formatting a line (the time stamp, every field) cost an eighth of a
//! GetEmailIdentity on the request's thread; waking a thread for each line (a channel) cost
//! more than that, so the thread is not woken: it looks every `TICK`. Lines keep their order;
//! nothing is dropped; what is queued when the log is dropped is written then.

use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How often the writing thread takes the queue: the longest a line waits.
const TICK: Duration = Duration::from_millis(5);

/// The request log keeps the crate's target it had when the pipeline lived in `lib.rs`, so
/// log filters and the tools that read the log see the same lines.
pub(crate) const LOG_TARGET: &str = "sesame_api";

/// One request's line.
pub(crate) struct Line {
    pub request_id: String,
    pub account: String,
    pub operation: &'static str,
    pub status: u16,
    pub error: &'static str,
    pub member: &'static str,
    pub duration_ms: f64,
    /// A source past its budget of failed authentications: `debug`, with fewer fields.
    pub quiet: bool,
}

/// The queue, and whether the writing thread should stop.
#[derive(Default)]
struct Queue {
    lines: Vec<Line>,
    stop: bool,
}

/// The request side of the log; dropping it writes what is queued and ends the thread.
pub struct AccessLog {
    /// `None`: lines are written on the request's thread.
    queue: Option<Arc<Mutex<Queue>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

fn lock(q: &Mutex<Queue>) -> std::sync::MutexGuard<'_, Queue> {
    q.lock().unwrap_or_else(|e| e.into_inner())
}

impl AccessLog {
    /// Starts the writing thread.
    pub fn start() -> AccessLog {
        let queue = Arc::new(Mutex::new(Queue::default()));
        let q = queue.clone();
        let spawned = std::thread::Builder::new()
            .name("sesame-access-log".into())
            .spawn(move || {
                let mut batch = Vec::new();
                loop {
                    let stop = {
                        let mut g = lock(&q);
                        std::mem::swap(&mut batch, &mut g.lines);
                        g.stop
                    };
                    for l in batch.drain(..) {
                        emit(&l);
                    }
                    if stop {
                        return;
                    }
                    std::thread::sleep(TICK);
                }
            });
        match spawned {
            Ok(t) => AccessLog {
                queue: Some(queue),
                thread: Some(t),
            },
            Err(e) => {
                tracing::error!(error = %e, "could not start the request log's thread; logging in place");
                AccessLog::inline()
            }
        }
    }

    /// A log written on each request's own thread (tests, the fuzzer).
    pub fn inline() -> AccessLog {
        AccessLog {
            queue: None,
            thread: None,
        }
    }

    /// Logs `line`.
    pub(crate) fn log(&self, line: Line) {
        match &self.queue {
            Some(q) => lock(q).lines.push(line),
            None => emit(&line),
        }
    }
}

impl Drop for AccessLog {
    fn drop(&mut self) {
        if let Some(q) = &self.queue {
            lock(q).stop = true;
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn emit(l: &Line) {
    if l.quiet {
        tracing::debug!(target: LOG_TARGET, request_id = %l.request_id, operation = %l.operation, status = l.status, duration_ms = l.duration_ms, "request");
    } else {
        tracing::info!(
            target: LOG_TARGET,
            request_id = %l.request_id,
            account = %l.account,
            operation = %l.operation,
            status = l.status,
            error = %l.error,
            member = %l.member,
            duration_ms = l.duration_ms,
            "request"
        );
    }
}
