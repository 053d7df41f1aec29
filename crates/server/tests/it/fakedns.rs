//! A DNS server that knows nothing: every question gets an authoritative NXDOMAIN. The default
//! `--resolver` of test servers, so their verifiers get fast, deterministic answers instead of
//! whatever this machine's resolver does. It runs on its own thread and runtime, so a test
//! blocked in synchronous code never stalls it.

use hickory_server::net::runtime::Time;
use hickory_server::proto::op::{Header, HeaderCounts, Metadata, ResponseCode};
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

/// Questions asked, by lower-cased name.
pub type QueryCounts = Arc<Mutex<HashMap<String, usize>>>;

struct Nothing {
    counts: QueryCounts,
}

#[async_trait::async_trait]
impl RequestHandler for Nothing {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut response_handle: R,
    ) -> ResponseInfo {
        if let Ok(info) = request.request_info() {
            let name = info.query.name().to_string().to_ascii_lowercase();
            *self.counts.lock().unwrap().entry(name).or_default() += 1;
        }
        let mut meta = Metadata::response_from_request(&request.metadata);
        meta.response_code = ResponseCode::NXDomain;
        meta.authoritative = true;
        let response =
            MessageResponseBuilder::new(&request.queries, None).build(meta, [], [], [], []);
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
pub struct FakeDns {
    pub addr: SocketAddr,
    /// How often each name was asked about.
    pub counts: QueryCounts,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl FakeDns {
    pub fn start() -> FakeDns {
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let counts: QueryCounts = Default::default();
        let handler_counts = counts.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let (udp, tcp) = crate::harness::bind_udp_and_tcp().await;
                let addr = udp.local_addr().unwrap();
                let mut server = hickory_server::Server::new(Nothing {
                    counts: handler_counts,
                });
                server.register_socket(udp);
                server.register_listener(tcp, std::time::Duration::from_secs(5), 8);
                addr_tx.send(addr).unwrap();
                let _ = stopped.await;
                let _ = server.shutdown_gracefully().await;
            });
        });
        FakeDns {
            addr: addr_rx.recv().unwrap(),
            counts,
            _stop: stop,
        }
    }
}
