//! A DNS server that misbehaves on purpose. It speaks raw DNS over UDP and TCP (hickory-proto
//! messages, no server framework in between), so each answer is exactly what a test asked for:
//! silence, a response code, TC=1, NXDOMAIN for the first few questions, CNAME loops and long
//! chains, TXT records split anywhere, records under the wrong owner name, and a recursive
//! resolver's view of a CNAME's target (the real key zone, forwarded, or an impostor's key).
//!
//! Names live in per-domain rules: a closure from the name relative to the domain to a `Node`
//! (computed per question, so Easy DKIM's tokens need not be known in advance). Names under
//! the key zone are forwarded to Sesame's own responder once `set_upstream` was called, unless
//! `override_key_zone` gave a token a node of its own; anything else is REFUSED, as an
//! authoritative-only server (NSD) answers for zones it does not serve.
//!
//! It runs on its own thread and runtime, like `fakedns.rs`.

use hickory_resolver::config::{NameServerConfig, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::{Resolver, TokioResolver};
use hickory_server::proto::op::{Message, MessageType, ResponseCode};
use hickory_server::proto::rr::rdata::{CNAME, SOA, TXT};
use hickory_server::proto::rr::{Name, RData, Record, RecordType};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What the server does with a question whose name is this node's.
#[derive(Clone, Debug, Default)]
pub enum Fault {
    /// Answer from the zone.
    #[default]
    None,
    /// Never answer, over UDP or TCP (a TCP connection is held open, unanswered).
    Silent,
    /// Answer with this response code and no records.
    Rcode(ResponseCode),
    /// Over UDP: TC=1 and no records. Over TCP: as the `Tcp` says.
    Truncate(Tcp),
    /// NXDOMAIN (with the SOA) for the first `n` questions of each type, then the zone's answer.
    NxFirst(usize),
}

/// What a truncating server does over TCP.
#[derive(Clone, Copy, Debug)]
pub enum Tcp {
    /// Answers in full.
    Answer,
    /// Accepts and reads, never answers.
    Silent,
    /// Reads the question and closes the connection.
    Close,
}

/// The records at one name and how the server treats questions for it.
#[derive(Clone, Debug, Default)]
pub struct Node {
    pub fault: Fault,
    /// Only questions of this type meet the fault (all types when `None`).
    pub fault_on: Option<RecordType>,
    /// The records at this name (a CNAME among them makes it an alias).
    pub records: Vec<RData>,
    /// Follow the CNAME in the same answer, as an authoritative server does for a target in its
    /// own zones and a recursive resolver does for any target.
    pub chase: bool,
    /// The records a recursive resolver found at the CNAME's target (owned by the target),
    /// put into the answer instead of looking the target up: an impostor's zone.
    pub beyond: Option<Vec<RData>>,
    /// Owner name for this node's records when it is not the question's (a broken server).
    pub owner: Option<String>,
}

impl Node {
    pub fn records(records: Vec<RData>) -> Node {
        Node {
            records,
            ..Node::default()
        }
    }

    pub fn cname(target: &str) -> Node {
        Node::records(vec![cname(target)])
    }

    pub fn with_fault(mut self, fault: Fault) -> Node {
        self.fault = fault;
        self
    }

    /// The fault for questions of type `qtype` only.
    pub fn with_fault_on(mut self, qtype: RecordType, fault: Fault) -> Node {
        self.fault = fault;
        self.fault_on = Some(qtype);
        self
    }

    /// The fault a question of `qtype` meets.
    fn fault_for(&self, qtype: RecordType) -> &Fault {
        match self.fault_on {
            Some(t) if t != qtype => &Fault::None,
            _ => &self.fault,
        }
    }

    pub fn chased(mut self) -> Node {
        self.chase = true;
        self
    }

    fn cname_target(&self) -> Option<&Name> {
        self.records.iter().find_map(|r| match r {
            RData::CNAME(CNAME(t)) => Some(t),
            _ => None,
        })
    }
}

pub fn cname(target: &str) -> RData {
    RData::CNAME(CNAME(fqdn(target)))
}

/// A TXT record made of exactly these character-strings.
pub fn txt(strings: &[&[u8]]) -> RData {
    RData::TXT(TXT::from_bytes(strings.to_vec()))
}

fn fqdn(name: &str) -> Name {
    Name::from_ascii(format!("{}.", name.trim_end_matches('.'))).unwrap()
}

/// A domain's names: the name relative to the domain ("" for the apex) → its node.
pub type Rule = Arc<dyn Fn(&str) -> Option<Node> + Send + Sync>;

/// One question the server received.
#[derive(Clone, Debug)]
pub struct Query {
    /// Lower case, no trailing dot.
    pub name: String,
    pub qtype: RecordType,
    pub tcp: bool,
}

#[derive(Default)]
struct State {
    rules: Vec<(String, Rule)>,
    key_zone: String,
    key_zone_nodes: HashMap<String, Node>,
    upstream: Option<TokioResolver>,
    asked: HashMap<(String, RecordType), usize>,
    log: Vec<Query>,
}

/// The running server; stops when dropped.
pub struct FaultDns {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

enum Action {
    Reply(Vec<u8>),
    /// No answer (UDP) or a held connection (TCP).
    Ignore,
    /// TCP only: close the connection.
    Close,
}

fn lower(name: &Name) -> String {
    name.to_string().trim_end_matches('.').to_ascii_lowercase()
}

/// `name` relative to `domain` if it is `domain` or under it.
fn relative<'a>(name: &'a str, domain: &str) -> Option<&'a str> {
    if name == domain {
        return Some("");
    }
    name.strip_suffix(domain)?.strip_suffix('.')
}

/// Where a name belongs.
enum Place {
    /// In a domain this server serves: the domain and the node (None: no such name).
    Served(String, Option<Node>),
    /// In the key zone, not overridden: ask the upstream, if any.
    KeyZone,
    /// Nowhere we know.
    Elsewhere,
}

impl State {
    fn place(&self, name: &str) -> Place {
        // The longest domain that contains the name.
        let best = self
            .rules
            .iter()
            .filter_map(|(d, r)| relative(name, d).map(|rel| (d, r, rel)))
            .max_by_key(|(d, _, _)| d.len());
        if let Some((d, rule, rel)) = best {
            return Place::Served(d.clone(), rule(rel));
        }
        if !self.key_zone.is_empty() && relative(name, &self.key_zone).is_some() {
            let token = name.split('.').next().unwrap_or_default();
            return match self.key_zone_nodes.get(token) {
                Some(n) => Place::Served(self.key_zone.clone(), Some(n.clone())),
                None => Place::KeyZone,
            };
        }
        Place::Elsewhere
    }
}

fn soa_record(domain: &str) -> Record {
    Record::from_rdata(
        fqdn(domain),
        60,
        RData::SOA(SOA::new(
            fqdn(&format!("ns1.{domain}")),
            fqdn(&format!("hostmaster.{domain}")),
            FAULT_SOA_SERIAL,
            3600,
            600,
            86400,
            60,
        )),
    )
}

/// The serial of every SOA this server hands out.
pub const FAULT_SOA_SERIAL: u32 = 2026120201;

fn owned(owner: &Name, records: &[RData], qtype: RecordType) -> Vec<Record> {
    records
        .iter()
        .filter(|r| r.record_type() == qtype)
        .map(|r| Record::from_rdata(owner.clone(), 60, r.clone()))
        .collect()
}

impl FaultDns {
    /// Starts the server. `key_zone` is the Easy DKIM zone (`<token>.<key_zone>`).
    pub fn start(key_zone: &str) -> FaultDns {
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let state = Arc::new(Mutex::new(State {
            key_zone: key_zone.to_ascii_lowercase(),
            ..State::default()
        }));
        let server_state = state.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let (udp, tcp) = crate::harness::bind_udp_and_tcp().await;
                addr_tx.send(udp.local_addr().unwrap()).unwrap();
                let udp = Arc::new(udp);
                let s = server_state.clone();
                let udp_loop = async move {
                    let mut buf = vec![0u8; 65535];
                    loop {
                        let Ok((n, peer)) = udp.recv_from(&mut buf).await else {
                            continue;
                        };
                        let packet = buf[..n].to_vec();
                        let (s, udp) = (s.clone(), udp.clone());
                        tokio::spawn(async move {
                            if let Action::Reply(bytes) = handle(&s, &packet, false).await {
                                let _ = udp.send_to(&bytes, peer).await;
                            }
                        });
                    }
                };
                let s = server_state;
                let tcp_loop = async move {
                    loop {
                        let Ok((stream, _)) = tcp.accept().await else {
                            continue;
                        };
                        tokio::spawn(serve_tcp(s.clone(), stream));
                    }
                };
                tokio::select! {
                    _ = udp_loop => {}
                    _ = tcp_loop => {}
                    _ = stopped => {}
                }
            });
        });
        FaultDns {
            addr: addr_rx.recv().unwrap(),
            state,
            _stop: stop,
        }
    }

    /// Serves `domain` (and every name under it) from `rule`.
    pub fn serve(&self, domain: &str, rule: impl Fn(&str) -> Option<Node> + Send + Sync + 'static) {
        self.state
            .lock()
            .unwrap()
            .rules
            .push((domain.to_ascii_lowercase(), Arc::new(rule)));
    }

    /// Forwards key-zone questions to Sesame's own responder at `addr`.
    pub fn set_upstream(&self, addr: SocketAddr) {
        let mut nsc = NameServerConfig::udp_and_tcp(addr.ip());
        for c in nsc.connections.iter_mut() {
            c.port = addr.port();
        }
        let mut b = Resolver::builder_with_config(
            ResolverConfig::from_name_servers(vec![nsc]),
            TokioRuntimeProvider::default(),
        );
        b.options_mut().cache_size = 0;
        self.state.lock().unwrap().upstream = Some(b.build().unwrap());
    }

    /// Answers `<token>.<key_zone>` from `node` instead of the upstream.
    pub fn override_key_zone(&self, token: &str, node: Node) {
        self.state
            .lock()
            .unwrap()
            .key_zone_nodes
            .insert(token.to_ascii_lowercase(), node);
    }

    /// Every question received so far.
    pub fn log(&self) -> Vec<Query> {
        self.state.lock().unwrap().log.clone()
    }
}

/// One TCP connection. A resolver sends many questions down one connection, so each is
/// handled on its own: a silent name leaves the others answered. `Tcp::Close` closes the
/// connection once the questions already being answered on it got their answers (a question
/// that raced the close is resent on a new connection by the resolver).
async fn serve_tcp(state: Arc<Mutex<State>>, stream: tokio::net::TcpStream) {
    let (mut rd, wr) = stream.into_split();
    let wr = Arc::new(tokio::sync::Mutex::new(wr));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Vec<u8>>();
    let reader = tokio::spawn(async move {
        loop {
            let mut len = [0u8; 2];
            if rd.read_exact(&mut len).await.is_err() {
                return;
            }
            let mut packet = vec![0u8; usize::from(u16::from_be_bytes(len))];
            if rd.read_exact(&mut packet).await.is_err() || tx.send(packet).is_err() {
                return;
            }
        }
    });
    let mut handlers = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            packet = rx.recv() => {
                let Some(packet) = packet else { break };
                let (state, wr) = (state.clone(), wr.clone());
                handlers.spawn(async move {
                    match handle(&state, &packet, true).await {
                        Action::Reply(bytes) => {
                            let mut framed = (bytes.len() as u16).to_be_bytes().to_vec();
                            framed.extend(bytes);
                            let _ = wr.lock().await.write_all(&framed).await;
                            false
                        }
                        // No answer to this question; the connection stays open.
                        Action::Ignore => false,
                        Action::Close => true,
                    }
                });
            }
            Some(done) = handlers.join_next() => {
                if done.unwrap_or(false) {
                    reader.abort();
                    while handlers.join_next().await.is_some() {}
                    let _ = wr.lock().await.shutdown().await;
                    return;
                }
            }
        }
    }
    reader.abort();
}

async fn handle(state: &Mutex<State>, packet: &[u8], tcp: bool) -> Action {
    let Ok(request) = Message::from_vec(packet) else {
        return Action::Ignore;
    };
    if request.metadata.message_type != MessageType::Query {
        return Action::Ignore;
    }
    let mut response = Message::response(request.metadata.id, request.metadata.op_code);
    response.metadata.recursion_desired = request.metadata.recursion_desired;
    response.metadata.authoritative = true;
    response.add_queries(request.queries.clone());
    let Some(query) = request.queries.first() else {
        response.metadata.response_code = ResponseCode::FormErr;
        return Action::Reply(response.to_vec().unwrap());
    };
    let qname = lower(query.name());
    let qtype = query.query_type();

    // The first name's fault decides whether and how to answer.
    let (place, nx_now) = {
        let mut s = state.lock().unwrap();
        s.log.push(Query {
            name: qname.clone(),
            qtype,
            tcp,
        });
        let asked = s.asked.entry((qname.clone(), qtype)).or_default();
        *asked += 1;
        let asked = *asked;
        let place = s.place(&qname);
        let nx_now = match &place {
            Place::Served(_, Some(node)) => {
                matches!(node.fault_for(qtype), Fault::NxFirst(n) if asked <= *n)
            }
            _ => false,
        };
        (place, nx_now)
    };
    if let Place::Served(_, Some(node)) = &place {
        match node.fault_for(qtype) {
            Fault::None | Fault::NxFirst(_) => {}
            Fault::Silent => return Action::Ignore,
            Fault::Rcode(code) => {
                response.metadata.response_code = *code;
                return Action::Reply(response.to_vec().unwrap());
            }
            Fault::Truncate(mode) => match (tcp, mode) {
                (false, _) => {
                    response.metadata.truncation = true;
                    return Action::Reply(response.to_vec().unwrap());
                }
                (true, Tcp::Answer) => {}
                (true, Tcp::Silent) => return Action::Ignore,
                (true, Tcp::Close) => return Action::Close,
            },
        }
    }
    if nx_now {
        let Place::Served(domain, _) = &place else {
            unreachable!()
        };
        response.metadata.response_code = ResponseCode::NXDomain;
        response.add_authority(soa_record(domain));
        return Action::Reply(response.to_vec().unwrap());
    }

    // Walk the chain from the question's name.
    let mut name = query.name().clone();
    let mut place = place;
    let mut visited = Vec::new();
    let mut first = true;
    loop {
        let here = lower(&name);
        if visited.contains(&here) {
            break; // a loop: answer with the chain so far
        }
        visited.push(here.clone());
        match place {
            Place::Served(domain, None) => {
                if first {
                    response.metadata.response_code = ResponseCode::NXDomain;
                    response.add_authority(soa_record(&domain));
                }
                break;
            }
            Place::Served(domain, Some(node)) => {
                // A node that follows CNAMEs beyond its own data plays a recursive resolver,
                // and says so as one does (RA), which is how the verifier tells them apart.
                if node.chase || node.beyond.is_some() {
                    response.metadata.recursion_available = true;
                }
                let owner = node.owner.as_deref().map(fqdn).unwrap_or(name.clone());
                if qtype == RecordType::SOA && relative(&here, &domain) == Some("") {
                    response.add_answer(soa_record(&domain));
                    break;
                }
                let exact = owned(&owner, &node.records, qtype);
                if !exact.is_empty() {
                    response.add_answers(exact);
                    break;
                }
                let target = match node.cname_target() {
                    Some(t) if qtype != RecordType::CNAME => t.clone(),
                    _ => {
                        // NODATA.
                        if response.answers.is_empty() {
                            response.add_authority(soa_record(&domain));
                        }
                        break;
                    }
                };
                response.add_answers(owned(&owner, &node.records, RecordType::CNAME));
                if let Some(beyond) = &node.beyond {
                    response.add_answers(owned(&target, beyond, qtype));
                    break;
                }
                if !node.chase {
                    break;
                }
                name = target;
                place = state.lock().unwrap().place(&lower(&name));
            }
            Place::KeyZone => {
                let upstream = state.lock().unwrap().upstream.clone();
                match upstream {
                    Some(r) => {
                        if let Ok(l) = r.lookup(name.clone(), qtype).await {
                            response.add_answers(l.answers().iter().cloned());
                        } else if first {
                            response.metadata.response_code = ResponseCode::NXDomain;
                        }
                    }
                    None if first => response.metadata.response_code = ResponseCode::Refused,
                    None => {}
                }
                break;
            }
            Place::Elsewhere => {
                if first {
                    response.metadata.response_code = ResponseCode::Refused;
                }
                break;
            }
        }
        first = false;
    }
    let bytes = response.to_vec().unwrap();
    let limit = request
        .edns
        .as_ref()
        .map_or(512, |e| usize::from(e.max_payload()).max(512));
    if !tcp && bytes.len() > limit {
        // Does not fit: empty, with TC, so the client asks again over TCP.
        response.answers.clear();
        response.authorities.clear();
        response.additionals.clear();
        response.metadata.truncation = true;
        return Action::Reply(response.to_vec().unwrap());
    }
    Action::Reply(bytes)
}
