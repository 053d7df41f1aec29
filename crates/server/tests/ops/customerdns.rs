//! The customers' DNS for the rotation test, the verifier's `--resolver`: every token-shaped
//! `<token>._domainkey.<domain>` is a CNAME to `<token>.<dkim-zone>` (what SES asks a customer
//! to publish), authoritative and not recursive, unless the domain is withheld (NXDOMAIN).
//! Everything else is NXDOMAIN. It runs on its own thread and runtime.

use hickory_server::net::runtime::Time;
use hickory_server::proto::op::{Header, HeaderCounts, Metadata, ResponseCode};
use hickory_server::proto::rr::rdata::CNAME;
use hickory_server::proto::rr::{Name, RData, Record};
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;
use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

struct Customers {
    withheld: Arc<Mutex<HashSet<String>>>,
    zone: String,
}

fn is_token(label: &str) -> bool {
    label.len() == 32
        && label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b))
}

impl Customers {
    fn answer(&self, qname: &str) -> Option<Vec<Record>> {
        let name = qname.trim_end_matches('.').to_ascii_lowercase();
        let (label, rest) = name.split_once('.')?;
        let domain = rest.strip_prefix("_domainkey.")?;
        if !is_token(label) || self.withheld.lock().unwrap().contains(domain) {
            return None;
        }
        let owner = Name::from_ascii(format!("{name}.")).ok()?;
        let target = Name::from_ascii(format!("{label}.{}.", self.zone)).ok()?;
        Some(vec![Record::from_rdata(
            owner,
            60,
            RData::CNAME(CNAME(target)),
        )])
    }
}

#[async_trait::async_trait]
impl RequestHandler for Customers {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut response_handle: R,
    ) -> ResponseInfo {
        let mut meta = Metadata::response_from_request(&request.metadata);
        meta.authoritative = true;
        let answers = request
            .request_info()
            .ok()
            .and_then(|info| self.answer(&info.query.name().to_string()));
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
    withheld: Arc<Mutex<HashSet<String>>>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl CustomerDns {
    /// Answers Easy DKIM CNAMEs into `zone` (the server's `--dkim-zone`).
    pub fn start(zone: &str) -> CustomerDns {
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let withheld: Arc<Mutex<HashSet<String>>> = Default::default();
        let handler = Customers {
            withheld: withheld.clone(),
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
            withheld,
            _stop: stop,
        }
    }

    /// Whether `domain`'s DKIM records are withheld (NXDOMAIN) or published.
    pub fn withhold(&self, domain: &str, withheld: bool) {
        let mut w = self.withheld.lock().unwrap();
        if withheld {
            w.insert(domain.to_ascii_lowercase());
        } else {
            w.remove(&domain.to_ascii_lowercase());
        }
    }
}
