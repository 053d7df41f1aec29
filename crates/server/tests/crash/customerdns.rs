//! The customers' DNS in the crash trials, the verifier's `--resolver`: every token-shaped
//! `<token>._domainkey.<domain>` is a CNAME to `<token>.<dkim-zone>` (so each Easy DKIM
//! identity verifies as if its owner had published what SES asks for), and BYODKIM selectors'
//! TXT records come from a table the test fills. A domain's records can be withheld for a
//! while, and answers held back by a random delay, to spread a verifier sweep over a window a
//! kill can land in. Everything else is NXDOMAIN.
//! It runs on its own thread and runtime, so a test blocked in synchronous code never stalls it.

use hickory_server::net::runtime::Time;
use hickory_server::proto::op::{Header, HeaderCounts, Metadata, ResponseCode};
use hickory_server::proto::rr::rdata::{CNAME, TXT};
use hickory_server::proto::rr::{Name, RData, Record, RecordType};
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Default)]
struct Table {
    /// Lower-cased name without the trailing dot → TXT value.
    txt: Mutex<HashMap<String, String>>,
    /// Domains whose records are not published (yet): NXDOMAIN.
    blocked: Mutex<std::collections::HashSet<String>>,
    /// The longest delay before an answer, in ms (0: none).
    max_delay_ms: AtomicU64,
    counter: AtomicU64,
}

struct Customers {
    table: Arc<Table>,
    zone: String,
}

fn is_token(label: &str) -> bool {
    label.len() == 32
        && label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b))
}

impl Customers {
    fn answer(&self, qname: &str, qtype: RecordType) -> Option<Vec<Record>> {
        let name = qname.trim_end_matches('.').to_ascii_lowercase();
        let owner = Name::from_ascii(format!("{name}.")).ok()?;
        let (label, rest) = name.split_once('.')?;
        let domain = rest.strip_prefix("_domainkey.")?;
        if self.table.blocked.lock().unwrap().contains(domain) {
            return None;
        }
        if let Some(value) = self.table.txt.lock().unwrap().get(&name) {
            if qtype != RecordType::TXT {
                return Some(vec![]);
            }
            let strings = value
                .as_bytes()
                .chunks(255)
                .map(|c| String::from_utf8_lossy(c).into_owned())
                .collect();
            return Some(vec![Record::from_rdata(
                owner,
                60,
                RData::TXT(TXT::new(strings)),
            )]);
        }
        if is_token(label) {
            let target = Name::from_ascii(format!("{label}.{}.", self.zone)).ok()?;
            return Some(vec![Record::from_rdata(
                owner,
                60,
                RData::CNAME(CNAME(target)),
            )]);
        }
        None
    }
}

/// A well-spread function of the answer's number (splitmix64), for its delay: the same
/// numbers give the same delays, so a trial replays, and this file needs no other module.
fn spread(n: u64) -> u64 {
    let mut z = n.wrapping_add(1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[async_trait::async_trait]
impl RequestHandler for Customers {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut response_handle: R,
    ) -> ResponseInfo {
        let max = self.table.max_delay_ms.load(Ordering::Relaxed);
        if max > 0 {
            let n = self.table.counter.fetch_add(1, Ordering::Relaxed);
            let ms = spread(n) % (max + 1);
            tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
        }
        let mut meta = Metadata::response_from_request(&request.metadata);
        meta.authoritative = true;
        let answers = match request.request_info() {
            Ok(info) => self.answer(&info.query.name().to_string(), info.query.query_type()),
            Err(_) => None,
        };
        let answers = answers.unwrap_or_else(|| {
            meta.response_code = ResponseCode::NXDomain;
            vec![]
        });
        let response = MessageResponseBuilder::new(&request.queries, None).build(
            meta,
            answers.iter(),
            [],
            [],
            [],
        );
        match response_handle.send_response(response).await {
            Ok(info) => info,
            Err(_) => ResponseInfo::from(Header {
                metadata: meta,
                counts: HeaderCounts::default(),
            }),
        }
    }
}

/// The running server; stops when dropped.
pub struct CustomerDns {
    pub addr: SocketAddr,
    table: Arc<Table>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl CustomerDns {
    /// Answers Easy DKIM CNAMEs into `zone` (the server's `--dkim-zone`).
    pub fn start(zone: &str) -> CustomerDns {
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let table = Arc::new(Table::default());
        let handler = Customers {
            table: table.clone(),
            zone: zone.trim_end_matches('.').to_owned(),
        };
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let (udp, tcp) = crate::harness::bind_udp_and_tcp().await;
                let addr = udp.local_addr().unwrap();
                let mut server = hickory_server::Server::new(handler);
                server.register_socket(udp);
                server.register_listener(tcp, std::time::Duration::from_secs(5), 8);
                addr_tx.send(addr).unwrap();
                let _ = stopped.await;
                let _ = server.shutdown_gracefully().await;
            });
        });
        CustomerDns {
            addr: addr_rx.recv().unwrap(),
            table,
            _stop: stop,
        }
    }

    /// Publishes BYODKIM's `TXT <selector>._domainkey.<domain>` with `p=` the key.
    pub fn publish_key(&self, selector: &str, domain: &str, public_der: &[u8]) {
        let value = format!(
            "v=DKIM1; k=rsa; p={}",
            data_encoding::BASE64.encode(public_der)
        );
        self.table.txt.lock().unwrap().insert(
            format!("{selector}._domainkey.{domain}").to_ascii_lowercase(),
            value,
        );
    }

    /// Whether `domain`'s DKIM records are withheld (NXDOMAIN) or published.
    pub fn withhold(&self, domain: &str, withheld: bool) {
        let mut b = self.table.blocked.lock().unwrap();
        if withheld {
            b.insert(domain.to_ascii_lowercase());
        } else {
            b.remove(&domain.to_ascii_lowercase());
        }
    }

    /// Holds each answer back by up to `ms` milliseconds (0: answer at once).
    pub fn set_max_delay(&self, ms: u64) {
        self.table.max_delay_ms.store(ms, Ordering::Relaxed);
    }
}
