//! A DNS server under which every Easy DKIM domain of one suffix is correctly set up: a CNAME
//! question for `<token>._domainkey.<domain>` with `<domain>` under the suffix is answered with
//! `<token>.<key zone>`, everything else with NXDOMAIN. It lets the matrix have a verified
//! sender (a valid SendEmail) without NSD, because the tokens need not be known in advance.

use hickory_server::net::runtime::Time;
use hickory_server::proto::op::{Header, HeaderCounts, Metadata, ResponseCode};
use hickory_server::proto::rr::rdata::CNAME;
use hickory_server::proto::rr::{Name, RData, Record, RecordType};
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;
use std::net::SocketAddr;

struct Verifying {
    /// Lower-case, no dots at either end.
    suffix: String,
    key_zone: String,
}

impl Verifying {
    fn answer(&self, name: &str, qtype: RecordType) -> Option<Record> {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        let (token, domain) = name.split_once("._domainkey.")?;
        let under = domain == self.suffix || domain.ends_with(&format!(".{}", self.suffix));
        if !under || token.contains('.') || qtype != RecordType::CNAME {
            return None;
        }
        let target = Name::from_ascii(format!("{token}.{}.", self.key_zone)).ok()?;
        let owner = Name::from_ascii(format!("{name}.")).ok()?;
        Some(Record::from_rdata(owner, 60, RData::CNAME(CNAME(target))))
    }
}

#[async_trait::async_trait]
impl RequestHandler for Verifying {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut response_handle: R,
    ) -> ResponseInfo {
        let mut meta = Metadata::response_from_request(&request.metadata);
        meta.authoritative = true;
        let answer = request
            .request_info()
            .ok()
            .and_then(|info| self.answer(&info.query.name().to_string(), info.query.query_type()));
        if answer.is_none() {
            meta.response_code = ResponseCode::NXDomain;
        }
        let response = MessageResponseBuilder::new(&request.queries, None).build(
            meta,
            answer.iter(),
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
pub struct VerifyingDns {
    pub addr: SocketAddr,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl VerifyingDns {
    pub fn start(suffix: &str, key_zone: &str) -> VerifyingDns {
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let handler = Verifying {
            suffix: suffix.trim_matches('.').to_ascii_lowercase(),
            key_zone: key_zone.trim_matches('.').to_ascii_lowercase(),
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
        VerifyingDns {
            addr: addr_rx.recv().unwrap(),
            _stop: stop,
        }
    }
}
