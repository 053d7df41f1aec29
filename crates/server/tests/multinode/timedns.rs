//! A verifier's resolver that remembers when each question arrived: UDP only, every question
//! answered with an authoritative NXDOMAIN after a chosen delay, or never answered at all. The
//! multi-node tests give each node one, so what a node checked, and when, is counted here rather
//! than read from its log. Runs on its own thread and runtime, like `fakedns`.
//!
//! One lookup can arrive more than once: hickory resends an unanswered UDP query (same message
//! id, a new socket) every retry interval, at least 333 ms (`DEFAULT_RETRY_FLOOR`), up to three
//! sends within the lookup's timeout. So a lookup is counted once per name and message id, at
//! its first arrival.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// How the server answers.
#[derive(Clone, Copy)]
pub enum Answer {
    /// NXDOMAIN, sent this long after the question arrived.
    NxDomainAfter(Duration),
    /// Nothing: every lookup of the node runs into its timeout.
    Silent,
}

/// The running server; stops when dropped.
pub struct TimedDns {
    pub addr: SocketAddr,
    /// Every question, as (lower-cased name, message id, arrival time), in arrival order.
    queries: Arc<Mutex<Vec<(String, u16, SystemTime)>>>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

/// The question name of a DNS query (`None` for responses and anything malformed), in the
/// presentation form hickory prints (`a.example.`), and the offset where the question ends.
fn question(msg: &[u8]) -> Option<(String, usize)> {
    if msg.len() < 12 || msg[2] & 0x80 != 0 || u16::from_be_bytes([msg[4], msg[5]]) != 1 {
        return None;
    }
    let mut off = 12;
    let mut name = String::new();
    loop {
        let len = *msg.get(off)? as usize;
        off += 1;
        if len == 0 {
            break;
        }
        // A query's name is never compressed (RFC 1035 4.1.4 pointers point backwards).
        if len > 63 {
            return None;
        }
        let label = msg.get(off..off + len)?;
        name.push_str(&String::from_utf8_lossy(label).to_ascii_lowercase());
        name.push('.');
        off += len;
    }
    if name.is_empty() {
        name.push('.');
    }
    // QTYPE and QCLASS.
    (msg.len() >= off + 4).then_some((name, off + 4))
}

/// The header and question of `query` turned into an authoritative NXDOMAIN with no records
/// (RFC 1035 4.1.1: QR, the query's opcode and RD, AA, RCODE 3; no OPT record).
fn nxdomain(query: &[u8], question_end: usize) -> Vec<u8> {
    let mut r = query[..question_end].to_vec();
    r[2] = 0x80 | (query[2] & 0x78) | 0x04 | (query[2] & 0x01);
    r[3] = 0x03;
    r[6..12].fill(0);
    r
}

/// A loopback UDP socket with a receive buffer for a few thousand queries: a node sends up to
/// 256 at once, and a query the kernel drops would look like a check that never happened.
fn bind() -> tokio::net::UdpSocket {
    let s = socket2::Socket::new(
        socket2::Domain::IPV4,
        socket2::Type::DGRAM,
        Some(socket2::Protocol::UDP),
    )
    .unwrap();
    // Capped by net.core.rmem_max (4 MiB here), which is plenty.
    s.set_recv_buffer_size(4 << 20).unwrap();
    s.set_nonblocking(true).unwrap();
    s.bind(&std::net::SocketAddr::from(([127, 0, 0, 1], 0)).into())
        .unwrap();
    tokio::net::UdpSocket::from_std(s.into()).unwrap()
}

impl TimedDns {
    pub fn start(answer: Answer) -> TimedDns {
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let queries: Arc<Mutex<Vec<(String, u16, SystemTime)>>> = Default::default();
        let log = queries.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let socket = Arc::new(bind());
                addr_tx.send(socket.local_addr().unwrap()).unwrap();
                let mut buf = vec![0u8; 4096];
                loop {
                    let (n, from) = tokio::select! {
                        _ = &mut stopped => return,
                        got = socket.recv_from(&mut buf) => match got {
                            Ok(got) => got,
                            Err(_) => continue,
                        },
                    };
                    let at = SystemTime::now();
                    let msg = &buf[..n];
                    let Some((name, end)) = question(msg) else {
                        continue;
                    };
                    let id = u16::from_be_bytes([msg[0], msg[1]]);
                    log.lock().unwrap().push((name, id, at));
                    if let Answer::NxDomainAfter(delay) = answer {
                        let reply = nxdomain(msg, end);
                        let socket = socket.clone();
                        tokio::spawn(async move {
                            tokio::time::sleep(delay).await;
                            let _ = socket.send_to(&reply, from).await;
                        });
                    }
                }
            });
        });
        TimedDns {
            addr: addr_rx.recv().unwrap(),
            queries,
            _stop: stop,
        }
    }

    /// Every lookup so far, as (name, first arrival), in arrival order; resends of a lookup
    /// (the same name and message id) are not counted again.
    pub fn lookups(&self) -> Vec<(String, SystemTime)> {
        let mut seen = std::collections::HashSet::new();
        self.queries
            .lock()
            .unwrap()
            .iter()
            .filter(|(name, id, _)| seen.insert((name.clone(), *id)))
            .map(|(name, _, at)| (name.clone(), *at))
            .collect()
    }

    /// How many lookups of each name arrived at or after `since`.
    pub fn counts_since(&self, since: SystemTime) -> std::collections::HashMap<String, usize> {
        let mut counts = std::collections::HashMap::new();
        for (name, at) in self.lookups() {
            if at >= since {
                *counts.entry(name).or_default() += 1;
            }
        }
        counts
    }
}
