//! A tiny forwarding DNS server for mail-auth's verifier: it answers the way a recursive
//! resolver would over two authoritative servers, the customer's (NSD) and Sesame's key zone,
//! following a customer CNAME into the key zone. It runs on its own thread and runtime.

use hickory_resolver::config::{NameServerConfig, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::rdata::CNAME;
use hickory_resolver::proto::rr::{RData, Record, RecordType};
use hickory_resolver::{Resolver, TokioResolver};
use hickory_server::net::runtime::Time;
use hickory_server::proto::op::{Header, HeaderCounts, Metadata, ResponseCode};
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;
use std::net::SocketAddr;

fn resolver(ns: SocketAddr) -> TokioResolver {
    let mut nsc = NameServerConfig::udp_and_tcp(ns.ip());
    for c in nsc.connections.iter_mut() {
        c.port = ns.port();
    }
    let mut b = Resolver::builder_with_config(
        ResolverConfig::from_name_servers(vec![nsc]),
        TokioRuntimeProvider::default(),
    );
    b.options_mut().cache_size = 0;
    b.build().unwrap()
}

struct Forward {
    customer: TokioResolver,
    keyzone: TokioResolver,
    zone: String,
}

impl Forward {
    async fn answer(&self, name: &str, qtype: RecordType) -> Vec<Record> {
        let mut out = Vec::new();
        let mut target = name.to_owned();
        if let Ok(l) = self.customer.lookup(name, RecordType::CNAME).await {
            for r in l.answers() {
                if let RData::CNAME(CNAME(t)) = &r.data {
                    out.push(r.clone());
                    target = t.to_string();
                }
            }
        }
        let in_zone = target
            .trim_end_matches('.')
            .to_ascii_lowercase()
            .ends_with(&self.zone);
        let r = if in_zone {
            &self.keyzone
        } else {
            &self.customer
        };
        if let Ok(l) = r.lookup(target.as_str(), qtype).await {
            out.extend(
                l.answers()
                    .iter()
                    .filter(|r| r.record_type() == qtype)
                    .cloned(),
            );
        }
        out
    }
}

#[async_trait::async_trait]
impl RequestHandler for Forward {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut response_handle: R,
    ) -> ResponseInfo {
        let mut meta = Metadata::response_from_request(&request.metadata);
        let answers = match request.request_info() {
            Ok(info) => {
                self.answer(&info.query.name().to_string(), info.query.query_type())
                    .await
            }
            Err(_) => vec![],
        };
        if answers.is_empty() {
            meta.response_code = ResponseCode::NXDomain;
        }
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

/// The running forwarder; stops when dropped.
pub struct ForwardDns {
    pub addr: SocketAddr,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl ForwardDns {
    pub fn start(customer: SocketAddr, keyzone: SocketAddr, zone: &str) -> ForwardDns {
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let zone = zone.to_owned();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let (udp, tcp) = crate::harness::bind_udp_and_tcp().await;
                let addr = udp.local_addr().unwrap();
                let mut server = hickory_server::Server::new(Forward {
                    customer: resolver(customer),
                    keyzone: resolver(keyzone),
                    zone,
                });
                server.register_socket(udp);
                server.register_listener(tcp, std::time::Duration::from_secs(5), 8);
                addr_tx.send(addr).unwrap();
                let _ = stopped.await;
                let _ = server.shutdown_gracefully().await;
            });
        });
        ForwardDns {
            addr: addr_rx.recv().unwrap(),
            _stop: stop,
        }
    }
}

/// Verifies `message`'s DKIM signatures with mail-auth, resolving through `dns`.
pub async fn mail_auth_verifies(dns: SocketAddr, message: &[u8]) -> Result<(), String> {
    use mail_auth::hickory_resolver::config::ResolverOpts;
    let mut nsc = NameServerConfig::udp_and_tcp(dns.ip());
    for c in nsc.connections.iter_mut() {
        c.port = dns.port();
    }
    let mut opts = ResolverOpts::default();
    opts.cache_size = 0;
    let auth =
        mail_auth::MessageAuthenticator::new(ResolverConfig::from_name_servers(vec![nsc]), opts)
            .map_err(|e| e.to_string())?;
    let parsed = mail_auth::AuthenticatedMessage::parse(message).ok_or("unparsable message")?;
    let results = auth.verify_dkim(&parsed).await;
    if results.is_empty() {
        return Err("no DKIM signature found".into());
    }
    for r in &results {
        if r.result() != &mail_auth::DkimResult::Pass {
            return Err(format!("{:?}", r.result()));
        }
    }
    Ok(())
}
