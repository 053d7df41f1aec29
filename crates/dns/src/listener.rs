//! The key zone's sockets: UDP with response-rate limiting, and TCP with idle timeouts and a
//! connection cap. Answers come from `responder::respond`; nothing here logs per packet, so
//! nobody on the network can flood the log.
//!
//! Response-rate limiting (as BIND's RRL): a UDP answer costs a token of its destination's
//! bucket (per IPv4 /24 or IPv6 /56: a spoofed victim is a prefix, not one address). Past the
//! rate, every `slip`-th answer goes out as an empty TC=1 response (no bigger than the query,
//! so no amplification, and a real resolver retries over TCP, which cannot be spoofed); the
//! others are dropped. TCP is never rate-limited.

use crate::responder::{SnapshotHandle, respond};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use sesame_metrics::Metrics;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{Semaphore, watch};

/// How the key zone limits its answers.
#[derive(Debug, Clone, Copy)]
pub struct RrlConfig {
    /// UDP answers per second per client prefix (0: no limit).
    pub responses_per_second: u32,
    /// Of the answers over the limit, every `slip`-th goes out truncated (0: drop them all).
    pub slip: u32,
    /// Whether loopback clients are limited too (off by default: local tools and benchmarks).
    pub loopback: bool,
}

impl Default for RrlConfig {
    fn default() -> Self {
        RrlConfig {
            responses_per_second: 50,
            slip: 2,
            loopback: false,
        }
    }
}

/// What RRL decided for one answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Send the answer.
    Send,
    /// Send an empty TC=1 answer instead.
    Slip,
    /// Send nothing.
    Drop,
}

/// The per-prefix buckets.
pub struct Rrl {
    config: RrlConfig,
    limiter: Option<DefaultKeyedRateLimiter<IpAddr>>,
    over: AtomicU64,
    checks: AtomicU64,
}

/// Every this many checks, the buckets of quiet prefixes are dropped if there are many: often
/// enough to bound the map under spoofed source variety, rarely enough that the scan costs a
/// packet nothing on average (a scan per packet would be a cheap way to burn our CPU).
const SWEEP_EVERY: u64 = 4096;
/// Buckets kept before a sweep drops the quiet ones.
const SWEEP_ABOVE: usize = 65_536;

impl Rrl {
    /// A limiter with `config`.
    pub fn new(config: RrlConfig) -> Rrl {
        let limiter = NonZeroU32::new(config.responses_per_second)
            .map(|rate| RateLimiter::keyed(Quota::per_second(rate).allow_burst(rate)));
        Rrl {
            config,
            limiter,
            over: AtomicU64::new(0),
            checks: AtomicU64::new(0),
        }
    }

    fn prefix(ip: IpAddr) -> IpAddr {
        match ip {
            IpAddr::V4(v4) => {
                let [a, b, c, _] = v4.octets();
                IpAddr::from([a, b, c, 0])
            }
            IpAddr::V6(v6) => {
                let bits = u128::from(v6) & !((1u128 << 72) - 1);
                IpAddr::V6(Ipv6Addr::from(bits))
            }
        }
    }

    /// Whether an answer to `client` may go out.
    pub fn check(&self, client: IpAddr) -> Verdict {
        let Some(limiter) = &self.limiter else {
            return Verdict::Send;
        };
        if client.is_loopback() && !self.config.loopback {
            return Verdict::Send;
        }
        if self
            .checks
            .fetch_add(1, Ordering::Relaxed)
            .is_multiple_of(SWEEP_EVERY)
            && limiter.len() > SWEEP_ABOVE
        {
            limiter.retain_recent();
        }
        if limiter.check_key(&Self::prefix(client)).is_ok() {
            return Verdict::Send;
        }
        let n = self.over.fetch_add(1, Ordering::Relaxed) + 1;
        if self.config.slip != 0 && n.is_multiple_of(u64::from(self.config.slip)) {
            Verdict::Slip
        } else {
            Verdict::Drop
        }
    }

    /// Answers refused or truncated so far.
    pub fn limited(&self) -> u64 {
        self.over.load(Ordering::Relaxed)
    }
}

/// Where the question section of a message with one question ends.
fn question_end(msg: &[u8]) -> Option<usize> {
    let mut i = 12;
    loop {
        let label = usize::from(*msg.get(i)?);
        if label == 0 {
            return Some(i + 1 + 4).filter(|&end| end <= msg.len());
        }
        if label & 0xc0 != 0 {
            return None;
        }
        i += 1 + label;
    }
}

/// The empty TC=1 form of `answer`: its header and question, nothing else, so never bigger
/// than the query it answers.
fn slipped(answer: &[u8]) -> Vec<u8> {
    let one_question = answer.get(4..6) == Some(&[0, 1]);
    let end = if one_question {
        question_end(answer).unwrap_or(12)
    } else {
        12
    };
    let mut out = answer[..end.min(answer.len())].to_vec();
    if out.len() >= 12 {
        out[2] |= 0x02; // TC
        if end == 12 {
            out[4..6].fill(0);
        }
        // No answer, authority or additional records.
        out[6..12].fill(0);
    }
    out
}

/// Most TCP connections open at once; more wait in the listen backlog.
pub const MAX_TCP_CONNECTIONS: usize = 256;
/// A TCP connection idle this long, or this slow to send a query, is closed (RFC 7766
/// suggests seconds).
pub const TCP_IDLE: Duration = Duration::from_secs(10);

/// The RCODE of an answer, from the low four bits of its header's fourth byte.
fn rcode(answer: &[u8]) -> u8 {
    answer.get(3).map_or(0, |b| b & 0x0f)
}

async fn serve_udp(socket: UdpSocket, zone: SnapshotHandle, rrl: Arc<Rrl>, metrics: Arc<Metrics>) {
    let mut buf = vec![0u8; 65_535];
    loop {
        let Ok((n, peer)) = socket.recv_from(&mut buf).await else {
            continue;
        };
        let snapshot = zone.current();
        let Some(answer) = respond(&snapshot, &buf[..n], false) else {
            continue;
        };
        let out = match rrl.check(peer.ip()) {
            Verdict::Send => answer,
            Verdict::Slip => slipped(&answer),
            Verdict::Drop => continue,
        };
        metrics.dns_response(rcode(&out));
        let _ = socket.send_to(&out, peer).await;
    }
}

async fn serve_tcp_connection(mut stream: TcpStream, zone: SnapshotHandle, metrics: Arc<Metrics>) {
    loop {
        let mut len = [0u8; 2];
        let read = async {
            stream.read_exact(&mut len).await?;
            let mut query = vec![0u8; usize::from(u16::from_be_bytes(len))];
            stream.read_exact(&mut query).await?;
            Ok::<_, std::io::Error>(query)
        };
        let Ok(Ok(query)) = tokio::time::timeout(TCP_IDLE, read).await else {
            return;
        };
        let Some(answer) = respond(&zone.current(), &query, true) else {
            return;
        };
        let Ok(n) = u16::try_from(answer.len()) else {
            return;
        };
        metrics.dns_response(rcode(&answer));
        let mut framed = Vec::with_capacity(answer.len() + 2);
        framed.extend_from_slice(&n.to_be_bytes());
        framed.extend_from_slice(&answer);
        let write = stream.write_all(&framed);
        if !matches!(tokio::time::timeout(TCP_IDLE, write).await, Ok(Ok(()))) {
            return;
        }
    }
}

async fn serve_tcp(listener: TcpListener, zone: SnapshotHandle, metrics: Arc<Metrics>) {
    let slots = Arc::new(Semaphore::new(MAX_TCP_CONNECTIONS));
    loop {
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        let stream = match listener.accept().await {
            Ok((s, _)) => s,
            Err(_) => {
                // Out of descriptors, most likely: let connections finish.
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let zone = zone.clone();
        let metrics = metrics.clone();
        tokio::spawn(async move {
            serve_tcp_connection(stream, zone, metrics).await;
            drop(permit);
        });
    }
}

/// Serves the key zone on the bound sockets until `shutdown` turns true.
pub async fn serve(
    udp: Vec<UdpSocket>,
    tcp: TcpListener,
    zone: SnapshotHandle,
    rrl: RrlConfig,
    metrics: Arc<Metrics>,
    mut shutdown: watch::Receiver<bool>,
) {
    let rrl = Arc::new(Rrl::new(rrl));
    let mut tasks = tokio::task::JoinSet::new();
    for socket in udp {
        tasks.spawn(serve_udp(
            socket,
            zone.clone(),
            rrl.clone(),
            metrics.clone(),
        ));
    }
    tasks.spawn(serve_tcp(tcp, zone, metrics));
    let _ = shutdown.wait_for(|stop| *stop).await;
    tasks.abort_all();
    tracing::info!(limited = rrl.limited(), "key-zone DNS stopped");
}

/// Where a UDP answer goes, for tests of the limiter.
pub fn client_prefix(addr: SocketAddr) -> IpAddr {
    Rrl::prefix(addr.ip())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn over_the_rate_every_second_answer_slips_and_the_rest_drop() {
        let rrl = Rrl::new(RrlConfig {
            responses_per_second: 5,
            slip: 2,
            loopback: false,
        });
        let victim: IpAddr = "198.51.100.7".parse().unwrap();
        let neighbour: IpAddr = "198.51.100.200".parse().unwrap();
        let verdicts: Vec<Verdict> = (0..9).map(|_| rrl.check(victim)).collect();
        assert!(verdicts[..5].iter().all(|v| *v == Verdict::Send));
        assert_eq!(
            &verdicts[5..],
            [Verdict::Drop, Verdict::Slip, Verdict::Drop, Verdict::Slip]
        );
        assert_eq!(
            rrl.check(neighbour),
            Verdict::Drop,
            "a /24 shares one bucket"
        );
        assert_eq!(rrl.check("203.0.113.1".parse().unwrap()), Verdict::Send);
        assert_eq!(
            rrl.check("127.0.0.1".parse().unwrap()),
            Verdict::Send,
            "loopback is exempt unless asked"
        );
        assert_eq!(
            client_prefix("[2001:db8:1:2ff:3::1]:53".parse().unwrap()),
            "2001:db8:1:200::".parse::<IpAddr>().unwrap()
        );
    }

    /// Spoofed sources cannot grow the buckets without bound, and a sweep is not per packet.
    #[test]
    fn quiet_prefixes_are_swept_now_and_then() {
        let rrl = Rrl::new(RrlConfig {
            responses_per_second: 1000,
            slip: 2,
            loopback: false,
        });
        // Up to just before the first sweep that finds more than SWEEP_ABOVE buckets.
        let many = (SWEEP_ABOVE as u64 / SWEEP_EVERY + 1) * SWEEP_EVERY;
        let many = u32::try_from(many).unwrap();
        for i in 0..many {
            rrl.check(IpAddr::from(std::net::Ipv4Addr::from(
                0x0a00_0000 + (i << 8),
            )));
        }
        let limiter = rrl.limiter.as_ref().unwrap();
        assert!(limiter.len() > SWEEP_ABOVE, "no sweep on every check");
        // A bucket used once is indistinguishable from a fresh one a millisecond later.
        std::thread::sleep(std::time::Duration::from_millis(20));
        for _ in 0..SWEEP_EVERY {
            rrl.check("203.0.113.1".parse().unwrap());
        }
        assert!(limiter.len() < 100, "swept: {}", limiter.len());
    }

    #[test]
    fn a_slipped_answer_is_no_bigger_than_the_query() {
        let zone = crate::responder::Snapshot::build(
            "dkim.example.test",
            &[("abc".to_owned(), vec![7u8; 294])],
            1,
        )
        .unwrap();
        let mut q = hickory_proto::op::Message::query();
        q.add_query(hickory_proto::op::Query::query(
            hickory_proto::rr::Name::from_ascii("abc.dkim.example.test.").unwrap(),
            hickory_proto::rr::RecordType::TXT,
        ));
        let mut e = hickory_proto::op::Edns::new();
        e.set_max_payload(1232);
        q.set_edns(e);
        let query = q.to_vec().unwrap();
        let answer = respond(&zone, &query, false).unwrap();
        assert!(
            answer.len() > 4 * query.len(),
            "the amplification RRL bounds"
        );
        let slip = slipped(&answer);
        assert!(slip.len() <= query.len());
        let m = hickory_proto::op::Message::from_vec(&slip).unwrap();
        assert!(m.metadata.truncation && m.answers.is_empty());
        assert_eq!(m.queries.len(), 1);
    }
}
