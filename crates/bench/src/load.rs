//! A closed-loop HTTP/1.1 load generator and the SigV4 signing of the requests it replays.
//!
//! Hand-written rather than wrk or a hyper client: the generator shares the two cores with the
//! server under test, so it must spend as little CPU per request as possible. It replays
//! requests signed once, up front, with the real `aws-sigv4` signer (a signature stays valid
//! for the 15 minutes of allowed clock skew), writes their bytes on keep-alive connections and
//! reads each response by its Content-Length, recording the latency of every request.

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Signs requests as an AWS SDK would.
#[derive(Clone)]
pub struct Signer {
    /// The access key id.
    pub key_id: String,
    /// Its secret.
    pub secret: String,
    /// The signing region.
    pub region: String,
}

impl Signer {
    /// The bytes of a SigV4-signed `method path` request to `addr` with a JSON `body`.
    pub fn request(&self, addr: SocketAddr, method: &str, path: &str, body: &[u8]) -> Vec<u8> {
        let host = addr.to_string();
        let url = format!("http://{host}{path}");
        let identity = Credentials::new(&self.key_id, &self.secret, None, None, "bench").into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name("ses")
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .expect("signing parameters")
            .into();
        let base = [
            ("host", host.as_str()),
            ("content-type", "application/json"),
        ];
        let signable = SignableRequest::new(
            method,
            &url,
            base.iter().copied(),
            SignableBody::Bytes(body),
        )
        .expect("signable request");
        let (instructions, _) = sign(signable, &params).expect("sign").into_parts();
        let mut req = format!("{method} {path} HTTP/1.1\r\n");
        for (k, v) in base.iter().copied().chain(instructions.headers()) {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str(&format!("content-length: {}\r\n\r\n", body.len()));
        let mut bytes = req.into_bytes();
        bytes.extend_from_slice(body);
        bytes
    }
}

/// What to send, how, and for how long.
pub struct Plan {
    /// The server.
    pub addr: SocketAddr,
    /// Requests, taken in turn by all connections.
    pub requests: Arc<Vec<Vec<u8>>>,
    /// Concurrent connections, each with one request in flight.
    pub conns: usize,
    /// Responses completed before this are not counted.
    pub warmup: Duration,
    /// The measured window (in `once` mode: the most it may take).
    pub duration: Duration,
    /// Send each request exactly once and stop when all were answered (unique creates).
    pub once: bool,
}

/// What a run measured.
pub struct Outcome {
    /// 2xx responses in the window.
    pub ok: u64,
    /// Other responses and connection failures in the window.
    pub failed: u64,
    /// The measured window.
    pub elapsed: Duration,
    /// Latency of every counted request, in µs, sorted.
    pub latencies_us: Vec<u32>,
    /// The first failure, for the report.
    pub first_failure: Option<String>,
    /// 2xx responses of the whole run, warm-up and the window's edges included.
    pub ok_all: u64,
}

impl Outcome {
    /// Successful requests per second.
    pub fn rate(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64()
    }

    /// A report table row: `what`, then req/s, p50 and p99 in ms.
    pub fn row(&self, what: &str) -> String {
        format!(
            "| {what} | {:.0} | {:.2} | {:.2} |",
            self.rate(),
            self.percentile_ms(50.0),
            self.percentile_ms(99.0)
        )
    }

    /// The `p`-th percentile latency in ms.
    pub fn percentile_ms(&self, p: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return f64::NAN;
        }
        let i = ((self.latencies_us.len() - 1) as f64 * p / 100.0).round() as usize;
        f64::from(self.latencies_us[i]) / 1000.0
    }

    /// Panics with the first failure if more than a trace of the requests failed: a benchmark
    /// of error responses would measure the wrong thing.
    pub fn expect_ok(&self, what: &str) {
        if self.ok == 0 || self.failed * 100 > self.ok {
            panic!(
                "{what}: {} ok, {} failed; first failure: {}",
                self.ok,
                self.failed,
                self.first_failure.as_deref().unwrap_or("-")
            );
        }
    }
}

/// Runs `plan` on one thread (as `wrk -t1` would), so the server keeps most of the CPU.
pub fn run(plan: Plan) -> Outcome {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(run_async(plan))
}

/// One request, its status and body.
pub fn once(addr: SocketAddr, request: &[u8]) -> (u16, Vec<u8>) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let mut s = TcpStream::connect(addr).await.expect("connect");
        s.write_all(request).await.expect("write");
        let mut buf = Vec::new();
        let (status, body, _) = read_response(&mut s, &mut buf).await.expect("response");
        (status, body)
    })
}

struct ConnResult {
    ok: u64,
    ok_all: u64,
    failed: u64,
    latencies: Vec<u32>,
    first_failure: Option<String>,
    last_done: Instant,
}

async fn run_async(plan: Plan) -> Outcome {
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let from = start + plan.warmup;
    let end = from + plan.duration;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..plan.conns {
        tasks.spawn(connection(
            plan.addr,
            plan.requests.clone(),
            next.clone(),
            plan.once,
            from,
            end,
        ));
    }
    let mut out = Outcome {
        ok: 0,
        failed: 0,
        elapsed: plan.duration,
        latencies_us: Vec::new(),
        first_failure: None,
        ok_all: 0,
    };
    let mut last = start;
    while let Some(r) = tasks.join_next().await {
        let r = r.expect("connection task");
        out.ok += r.ok;
        out.ok_all += r.ok_all;
        out.failed += r.failed;
        out.latencies_us.extend(r.latencies);
        out.first_failure = out.first_failure.or(r.first_failure);
        last = last.max(r.last_done);
    }
    if plan.once {
        out.elapsed = last.saturating_duration_since(from);
    }
    out.latencies_us.sort_unstable();
    out
}

async fn connection(
    addr: SocketAddr,
    requests: Arc<Vec<Vec<u8>>>,
    next: Arc<AtomicUsize>,
    once: bool,
    from: Instant,
    end: Instant,
) -> ConnResult {
    let mut r = ConnResult {
        ok: 0,
        ok_all: 0,
        failed: 0,
        latencies: Vec::with_capacity(1 << 16),
        first_failure: None,
        last_done: Instant::now(),
    };
    let mut stream: Option<TcpStream> = None;
    let mut buf = Vec::with_capacity(16 * 1024);
    loop {
        let t0 = Instant::now();
        if t0 >= end {
            break;
        }
        let i = next.fetch_add(1, Ordering::Relaxed);
        if once && i >= requests.len() {
            break;
        }
        let req = &requests[i % requests.len()];
        if stream.is_none() {
            match TcpStream::connect(addr).await {
                Ok(s) => {
                    let _ = s.set_nodelay(true);
                    stream = Some(s);
                }
                Err(e) => {
                    r.failed += 1;
                    r.first_failure
                        .get_or_insert_with(|| format!("connect: {e}"));
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            }
        }
        let Some(s) = stream.as_mut() else { continue };
        buf.clear();
        // A bound on every exchange, so a peer that stops answering cannot hang the run.
        let result = tokio::time::timeout(Duration::from_secs(30), async {
            s.write_all(req).await?;
            read_response(s, &mut buf).await
        })
        .await
        .unwrap_or_else(|_| Err(std::io::Error::other("no response within 30 s")));
        let t1 = Instant::now();
        let counted = once || (t0 >= from && t1 <= end);
        match result {
            Ok((status, body, close)) => {
                if (200..300).contains(&status) {
                    r.ok_all += 1;
                }
                if close {
                    // moto's server (werkzeug) answers `Connection: close`.
                    stream = None;
                }
                if counted {
                    r.latencies
                        .push(u32::try_from(t1.duration_since(t0).as_micros()).unwrap_or(u32::MAX));
                    if (200..300).contains(&status) {
                        r.ok += 1;
                    } else {
                        r.failed += 1;
                        r.first_failure.get_or_insert_with(|| {
                            format!("HTTP {status}: {}", String::from_utf8_lossy(&body))
                        });
                    }
                    r.last_done = t1;
                }
            }
            Err(e) => {
                stream = None;
                if counted {
                    r.failed += 1;
                    r.first_failure.get_or_insert_with(|| format!("I/O: {e}"));
                }
            }
        }
    }
    r
}

/// Reads one response (status line, headers, Content-Length body) into `buf`.
/// Returns the status, the body and whether the server will close the connection.
async fn read_response(
    s: &mut TcpStream,
    buf: &mut Vec<u8>,
) -> std::io::Result<(u16, Vec<u8>, bool)> {
    let mut chunk = [0u8; 16 * 1024];
    let head_end = loop {
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
        let n = s.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::Error::other("connection closed"));
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| std::io::Error::other("bad status line"))?;
    let length = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse::<usize>().ok())
        .ok_or_else(|| std::io::Error::other("no content-length"))?;
    while buf.len() < head_end + length {
        let n = s.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::Error::other("connection closed mid-body"));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let close = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .any(|(k, v)| {
            k.trim().eq_ignore_ascii_case("connection") && v.trim().eq_ignore_ascii_case("close")
        });
    let body = buf[head_end..head_end + length].to_vec();
    buf.drain(..head_end + length);
    Ok((status, body, close))
}
