//! DNS fault injection: the real `sesame` binary's verifier asks `faultdns::FaultDns`, which
//! misbehaves per name, and the DKIM status each fault leads to is read back through
//! `aws-sdk-sesv2`, as a customer sees it.
//!
//! All cases run at once against one server (one identity, one domain and one fault per case;
//! a case whose fault reaches past its own names gets a server of its own, see `ISOLATED`):
//! the first test to run starts the fleet and every test then reads its own case's outcome, so a
//! case that shows a product bug can be `#[ignore]`d alone while it still asserts the right
//! behaviour. The fleet prints its table (case → expected → observed) past the output capture.
//!
//! The expected outcomes, from README ("DNS: what to publish, and how Sesame checks it"),
//! ARCHITECTURE (`sesame-dns`) and `core::dkim::step`:
//! - all records right → SUCCESS; a chain of CNAMEs is followed, within the verifier's limit
//!   of hops (`MAX_CHAIN`, "as resolvers do"): beyond it, or in a loop, the record is wrong;
//! - missing or wrong → PENDING with HOST_NOT_FOUND / TYPE_NOT_FOUND / INVALID_VALUE (and FAILED
//!   after 72 h, out of reach here); a wrong value outranks a resolver failure elsewhere;
//! - a failing resolver (timeout, SERVFAIL, REFUSED, a dead TCP fallback) → TEMPORARY_FAILURE
//!   with DNS_SERVER_ERROR, retried, never FAILED for that alone;
//! - a BYODKIM TXT is compared by its decoded `p=`, so character-string splits and whitespace
//!   around tags do not matter; truncated UDP answers are asked again over TCP;
//! - Easy DKIM: where the resolver follows the CNAME into the key zone, the TXT it returns for
//!   `<token>._domainkey.<domain>` must carry Sesame's key (an impostor's key is INVALID_VALUE);
//!   where it returns no TXT there (authoritative only, or failing on that one question), this
//!   node's key-zone snapshot decides (ARCHITECTURE's key-zone gate).
//!
//! Never, in any case, a SUCCESS the DNS does not support.

#[allow(dead_code)]
#[path = "../it/fakedns.rs"]
mod fakedns;
mod faultdns;
#[allow(dead_code)]
#[path = "../it/harness.rs"]
mod harness;

use aws_sdk_sesv2::Client;
use aws_sdk_sesv2::types::{DkimSigningAttributes, DkimSigningKeyLength};
use faultdns::{FAULT_SOA_SERIAL, Fault, FaultDns, Node, Tcp, txt};
use hickory_server::proto::op::ResponseCode;
use hickory_server::proto::rr::{RData, RecordType};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Sesame's default Easy DKIM zone.
const KEY_ZONE: &str = "dkim.sesame.internal";
/// Every case's domain is `<case>.faults.test`.
const SUFFIX: &str = "faults.test";
/// The BYODKIM selector.
const SELECTOR: &str = "sel";
/// How long a case may take to settle, from its identity's creation (the slowest, a 3-second
/// lookup timeout seen on two checks, needs about 8 s at a 1 s verify interval).
const BOUND: Duration = Duration::from_secs(20);
/// NXDOMAIN for this many questions of each type, then the record.
const NX_FIRST: usize = 3;

const SUCCESS: &str = "SUCCESS";
const PENDING: &str = "PENDING";
const TEMPORARY_FAILURE: &str = "TEMPORARY_FAILURE";
const DNS_SERVER_ERROR: &str = "DNS_SERVER_ERROR";
const HOST_NOT_FOUND: &str = "HOST_NOT_FOUND";
const TYPE_NOT_FOUND: &str = "TYPE_NOT_FOUND";
const INVALID_VALUE: &str = "INVALID_VALUE";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Easy,
    Byo,
}

/// What a case must end in.
#[derive(Clone, Copy, Debug)]
enum Want {
    /// This status with one of these error types (none for SUCCESS), seen on two checks in a
    /// row for anything but SUCCESS, and never SUCCESS on the way unless SUCCESS is wanted.
    Steady(&'static str, &'static [&'static str]),
    /// PENDING with HOST_NOT_FOUND (and the zone's SOA) on the first checks, then SUCCESS.
    PendingThenSuccess,
}

use Kind::*;
use Want::*;

const NONE: &[&str] = &[];
const SERVER_ERROR: &[&str] = &[DNS_SERVER_ERROR];
const INVALID: &[&str] = &[INVALID_VALUE];
/// A chain that never reaches a record: missing (no TXT at its end) or wrong (the name holds
/// something else), both definite answers; not resolver trouble, which is never FAILED.
const BROKEN_CHAIN: &[&str] = &[TYPE_NOT_FOUND, INVALID_VALUE];

/// The fault table: case (also the domain's first label), identity kind, expected outcome, and
/// what the fault server does for it (the rules themselves are in `program`).
#[rustfmt::skip]
const CASES: &[(&str, Kind, Want, &str)] = &[
    // Easy DKIM: three CNAMEs `<token>._domainkey.<domain>` → `<token>.dkim.sesame.internal`.
    ("easy-ok", Easy, Steady(SUCCESS, NONE), "the three CNAMEs, authoritative only"),
    ("easy-recursive-ok", Easy, Steady(SUCCESS, NONE), "CNAMEs followed into the real key zone"),
    ("easy-chain-ok", Easy, Steady(SUCCESS, NONE), "each CNAME through 3 hops of the customer's"),
    ("easy-wrong-target", Easy, Steady(PENDING, INVALID), "CNAMEs to another zone"),
    ("easy-cname-loop", Easy, Steady(PENDING, INVALID), "a → b → a"),
    ("easy-long-chain", Easy, Steady(PENDING, INVALID), "20 hops, then the right target"),
    ("easy-timeout-one", Easy, Steady(TEMPORARY_FAILURE, SERVER_ERROR), "one name never answered, two right"),
    ("easy-servfail-one", Easy, Steady(TEMPORARY_FAILURE, SERVER_ERROR), "one name SERVFAIL, two right"),
    ("easy-wrong-and-timeout", Easy, Steady(PENDING, INVALID), "one silent, one wrong, one right"),
    ("easy-truncated-tcp", Easy, Steady(SUCCESS, NONE), "UDP TC=1 and empty, TCP answers"),
    ("easy-nx-then-record", Easy, PendingThenSuccess, "NXDOMAIN for 3 questions, then the CNAMEs"),
    ("easy-impostor-txt", Easy, Steady(PENDING, INVALID), "right CNAMEs, TXT at the token with another key"),
    // The key-zone gate (ARCHITECTURE, `sesame-dns`): the TXT at the chain's end is compared only
    // when the resolver returns one; otherwise this node's key-zone snapshot decides.
    ("easy-txt-servfail", Easy, Steady(SUCCESS, NONE), "right CNAMEs, TXT questions SERVFAIL"),
    ("easy-txt-timeout", Easy, Steady(SUCCESS, NONE), "right CNAMEs, TXT questions never answered"),
    // BYODKIM: TXT `v=DKIM1; k=rsa; p=…` at `sel._domainkey.<domain>`.
    ("byo-ok", Byo, Steady(SUCCESS, NONE), "the record as dns-records prints it"),
    ("byo-chain-ok", Byo, Steady(SUCCESS, NONE), "a CNAME to the customer's own TXT"),
    ("byo-timeout", Byo, Steady(TEMPORARY_FAILURE, SERVER_ERROR), "never answered (UDP and TCP)"),
    ("byo-servfail", Byo, Steady(TEMPORARY_FAILURE, SERVER_ERROR), "SERVFAIL"),
    ("byo-refused", Byo, Steady(TEMPORARY_FAILURE, SERVER_ERROR), "REFUSED"),
    ("byo-truncated-tcp-answers", Byo, Steady(SUCCESS, NONE), "UDP TC=1 and empty, TCP answers"),
    ("byo-truncated-tcp-silent", Byo, Steady(TEMPORARY_FAILURE, SERVER_ERROR), "UDP TC=1, TCP never answers"),
    ("byo-truncated-tcp-closes", Byo, Steady(TEMPORARY_FAILURE, SERVER_ERROR), "UDP TC=1, TCP closed unanswered"),
    ("byo-nx-then-record", Byo, PendingThenSuccess, "NXDOMAIN for 3 questions, then the TXT"),
    ("byo-split-1-byte", Byo, Steady(SUCCESS, NONE), "2048-bit key, one character-string per byte"),
    ("byo-split-inside-p", Byo, Steady(SUCCESS, NONE), "empty strings, splits at p|=, inside the base64"),
    ("byo-spaces", Byo, Steady(SUCCESS, NONE), "spaces and a tab around ; and =, a space in p="),
    ("byo-wrong-key", Byo, Steady(PENDING, INVALID), "another key's p="),
    ("byo-cname-loop", Byo, Steady(PENDING, BROKEN_CHAIN), "a → b → a, one answer"),
    ("byo-long-chain", Byo, Steady(PENDING, BROKEN_CHAIN), "20 hops in one answer, then the right TXT"),
    ("byo-long-chain-hops", Byo, Steady(PENDING, BROKEN_CHAIN), "20 hops, one per answer, then the right TXT"),
    ("byo-wrong-owner", Byo, Steady(PENDING, &[TYPE_NOT_FOUND]), "the right TXT under another owner name"),
];

fn domain(case: &str) -> String {
    format!("{case}.{SUFFIX}")
}

fn want_text(w: Want) -> String {
    match w {
        Steady(s, []) => s.to_owned(),
        Steady(s, errs) => format!("{s} ({})", errs.join("|")),
        PendingThenSuccess => format!("{PENDING} ({HOST_NOT_FOUND}) → {SUCCESS}"),
    }
}

/// The DKIM TXT value for a public key.
fn dkim_value(public_der: &[u8]) -> String {
    format!(
        "v=DKIM1; k=rsa; p={}",
        data_encoding::BASE64.encode(public_der)
    )
}

/// The record in 255-byte strings, as `sesame dns-records` prints it.
fn standard_txt(value: &str) -> RData {
    txt(&value.as_bytes().chunks(255).collect::<Vec<_>>())
}

fn public_der(private_b64: &str) -> Vec<u8> {
    let der = data_encoding::BASE64
        .decode(private_b64.as_bytes())
        .unwrap();
    let rsa = openssl::rsa::Rsa::private_key_from_der(&der).unwrap();
    openssl::pkey::PKey::from_rsa(rsa)
        .unwrap()
        .public_key_to_der()
        .unwrap()
}

/// The token of `<token>._domainkey`.
fn token(rel: &str) -> Option<&str> {
    rel.strip_suffix("._domainkey")
}

fn key_zone_target(token: &str) -> String {
    format!("{token}.{KEY_ZONE}")
}

/// Gives each Easy DKIM token a role by the order its names are first asked about, so one of a
/// domain's three (unknown in advance) tokens can misbehave while the others do not.
#[derive(Default)]
struct Roles(Mutex<Vec<String>>);

impl Roles {
    fn of(&self, token: &str) -> usize {
        let mut seen = self.0.lock().unwrap();
        match seen.iter().position(|t| t == token) {
            Some(i) => i,
            None => {
                seen.push(token.to_owned());
                seen.len() - 1
            }
        }
    }
}

/// `<token>._domainkey` → `h1.<token>` → … → `h<hops>.<token>` → `last(token)`, each hop a
/// node of its own (`chase`: an authoritative server puts the whole chain in one answer).
fn chain(
    rel: &str,
    dom: &str,
    hops: usize,
    chase: bool,
    last: impl Fn(&str) -> String,
) -> Option<Node> {
    let node = |target: String| {
        let n = Node::cname(&target);
        if chase { n.chased() } else { n }
    };
    if let Some(t) = token(rel) {
        return Some(node(format!("h1.{t}.{dom}")));
    }
    let (hop, t) = rel.split_once('.')?;
    let i: usize = hop.strip_prefix('h')?.parse().ok()?;
    if i < hops {
        Some(node(format!("h{}.{t}.{dom}", i + 1)))
    } else if i == hops {
        Some(node(last(t)))
    } else {
        None
    }
}

type BoxedRule = Box<dyn Fn(&str) -> Option<Node> + Send + Sync>;

/// Programs the fault server for `cases`. BYODKIM cases get their key's public half (and a
/// stranger's key) from `keys`.
fn program(
    dns: &FaultDns,
    cases: &[&str],
    keys: &HashMap<&str, (String, Vec<u8>)>,
    stranger: &[u8],
) {
    let wrong_value = dkim_value(stranger);
    for &(case, kind, _, _) in CASES.iter().filter(|c| cases.contains(&c.0)) {
        let dom = domain(case);
        let d = dom.clone();
        if kind == Easy {
            let roles = Roles::default();
            let wrong_value = wrong_value.clone();
            let right = |t: &str| Node::cname(&key_zone_target(t));
            let rule: BoxedRule = match case {
                "easy-ok" => Box::new(move |rel| token(rel).map(right)),
                "easy-recursive-ok" => Box::new(move |rel| token(rel).map(|t| right(t).chased())),
                "easy-chain-ok" => Box::new(move |rel| chain(rel, &d, 3, false, key_zone_target)),
                "easy-long-chain" => {
                    Box::new(move |rel| chain(rel, &d, 20, false, key_zone_target))
                }
                "easy-wrong-target" => Box::new(move |rel| {
                    token(rel).map(|t| Node::cname(&format!("{t}.dkim.elsewhere.test")))
                }),
                "easy-cname-loop" => Box::new(move |rel| match token(rel) {
                    Some(t) => Some(Node::cname(&format!("loop.{t}.{d}")).chased()),
                    None => {
                        let t = rel.strip_prefix("loop.")?;
                        Some(Node::cname(&format!("{t}._domainkey.{d}")).chased())
                    }
                }),
                "easy-timeout-one" => Box::new(move |rel| {
                    let t = token(rel)?;
                    let n = right(t);
                    Some(if roles.of(t) == 0 {
                        n.with_fault(Fault::Silent)
                    } else {
                        n
                    })
                }),
                "easy-servfail-one" => Box::new(move |rel| {
                    let t = token(rel)?;
                    let n = right(t);
                    Some(if roles.of(t) == 0 {
                        n.with_fault(Fault::Rcode(ResponseCode::ServFail))
                    } else {
                        n
                    })
                }),
                "easy-wrong-and-timeout" => Box::new(move |rel| {
                    let t = token(rel)?;
                    Some(match roles.of(t) {
                        0 => right(t).with_fault(Fault::Silent),
                        1 => Node::cname(&format!("{t}.dkim.elsewhere.test")),
                        _ => right(t),
                    })
                }),
                "easy-truncated-tcp" => Box::new(move |rel| {
                    token(rel).map(|t| right(t).with_fault(Fault::Truncate(Tcp::Answer)))
                }),
                "easy-nx-then-record" => Box::new(move |rel| {
                    token(rel).map(|t| right(t).with_fault(Fault::NxFirst(NX_FIRST)))
                }),
                "easy-txt-servfail" => Box::new(move |rel| {
                    token(rel).map(|t| {
                        // A recursive resolver (it follows CNAMEs) whose TXT questions fail.
                        right(t)
                            .chased()
                            .with_fault_on(RecordType::TXT, Fault::Rcode(ResponseCode::ServFail))
                    })
                }),
                "easy-txt-timeout" => Box::new(move |rel| {
                    token(rel).map(|t| {
                        right(t)
                            .chased()
                            .with_fault_on(RecordType::TXT, Fault::Silent)
                    })
                }),
                // A resolver that follows the right CNAME into an impostor's key zone.
                "easy-impostor-txt" => Box::new(move |rel| {
                    token(rel).map(|t| Node {
                        beyond: Some(vec![standard_txt(&wrong_value)]),
                        ..right(t)
                    })
                }),
                other => panic!("no rule for {other}"),
            };
            dns.serve(&dom, rule);
            continue;
        }

        let (_, public) = &keys[case];
        let value = dkim_value(public);
        let b64 = data_encoding::BASE64.encode(public);
        let at_selector = |rel: &str| rel == format!("{SELECTOR}._domainkey");
        let record = standard_txt(&value);
        let fault = |f: Fault| {
            let n = Node::records(vec![record.clone()]).with_fault(f);
            move |rel: &str| at_selector(rel).then(|| n.clone())
        };
        let rule: BoxedRule = match case {
            "byo-ok" => Box::new(fault(Fault::None)),
            "byo-timeout" => Box::new(fault(Fault::Silent)),
            "byo-servfail" => Box::new(fault(Fault::Rcode(ResponseCode::ServFail))),
            "byo-refused" => Box::new(fault(Fault::Rcode(ResponseCode::Refused))),
            "byo-truncated-tcp-answers" => Box::new(fault(Fault::Truncate(Tcp::Answer))),
            "byo-truncated-tcp-silent" => Box::new(fault(Fault::Truncate(Tcp::Silent))),
            "byo-truncated-tcp-closes" => Box::new(fault(Fault::Truncate(Tcp::Close))),
            "byo-nx-then-record" => Box::new(fault(Fault::NxFirst(NX_FIRST))),
            "byo-wrong-key" => {
                let n = Node::records(vec![standard_txt(&wrong_value)]);
                Box::new(move |rel| at_selector(rel).then(|| n.clone()))
            }
            "byo-split-1-byte" => {
                let n = Node::records(vec![txt(&value.as_bytes().chunks(1).collect::<Vec<_>>())]);
                Box::new(move |rel| at_selector(rel).then(|| n.clone()))
            }
            "byo-split-inside-p" => {
                let b = b64.as_bytes();
                let mut strings: Vec<&[u8]> = vec![
                    b"".as_slice(),
                    b"v=DKIM1; k=rsa; p".as_slice(),
                    b"=".as_slice(),
                    &b[..7],
                    b"".as_slice(),
                    &b[7..8],
                    &b[8..21],
                ];
                strings.extend(b[21..].chunks(101));
                let n = Node::records(vec![txt(&strings)]);
                Box::new(move |rel| at_selector(rel).then(|| n.clone()))
            }
            "byo-spaces" => {
                let spaced = format!(
                    " v = DKIM1 ;\tk = rsa ; p = {} {} ; ",
                    &b64[..40],
                    &b64[40..]
                );
                let n = Node::records(vec![standard_txt(&spaced)]);
                Box::new(move |rel| at_selector(rel).then(|| n.clone()))
            }
            "byo-chain-ok" => {
                let (sel, key) = (
                    Node::cname(&format!("key.{d}")).chased(),
                    Node::records(vec![record.clone()]),
                );
                Box::new(move |rel| match rel {
                    _ if at_selector(rel) => Some(sel.clone()),
                    "key" => Some(key.clone()),
                    _ => None,
                })
            }
            "byo-cname-loop" => {
                let (a, b) = (
                    Node::cname(&format!("loop.{d}")).chased(),
                    Node::cname(&format!("{SELECTOR}._domainkey.{d}")).chased(),
                );
                Box::new(move |rel| match rel {
                    _ if at_selector(rel) => Some(a.clone()),
                    "loop" => Some(b.clone()),
                    _ => None,
                })
            }
            "byo-long-chain" | "byo-long-chain-hops" => {
                let chase = case == "byo-long-chain";
                let key = Node::records(vec![record.clone()]);
                let d2 = d.clone();
                Box::new(move |rel| {
                    if rel == "key" {
                        return Some(key.clone());
                    }
                    // `sel._domainkey` is the chain's start: its "token" is the selector.
                    chain(rel, &d, 20, chase, |_| format!("key.{d2}"))
                })
            }
            "byo-wrong-owner" => {
                let n = Node {
                    owner: Some(format!("other.{d}")),
                    ..Node::records(vec![record.clone()])
                };
                Box::new(move |rel| at_selector(rel).then(|| n.clone()))
            }
            other => panic!("no rule for {other}"),
        };
        dns.serve(&dom, rule);
    }
    // Anything else under the suffix does not exist.
    dns.serve(SUFFIX, |_| None);
}

/// One observation of GetEmailIdentity.
#[derive(Clone, Debug, PartialEq)]
struct Seen {
    status: String,
    error: Option<String>,
    /// LastCheckedTimestamp (seconds, nanoseconds).
    checked: Option<(i64, u32)>,
    soa_serial: Option<i64>,
}

impl Seen {
    fn text(&self) -> String {
        match &self.error {
            Some(e) => format!("{} ({e})", self.status),
            None => self.status.clone(),
        }
    }

    fn is(&self, status: &str, errors: &[&str]) -> bool {
        self.status == status
            && match &self.error {
                None => errors.is_empty(),
                Some(e) => errors.contains(&e.as_str()),
            }
    }
}

/// What happened to one case.
#[derive(Clone, Debug)]
struct Outcome {
    /// Every distinct observation, in order.
    history: Vec<Seen>,
    /// Whether the case reached its end condition within `BOUND`.
    settled: bool,
    /// Questions the fault server got for the case's names, over UDP and TCP.
    udp: usize,
    tcp: usize,
    /// The server's log lines about the case's domain.
    log: String,
    /// Where the server's whole log is.
    log_path: std::path::PathBuf,
    /// The questions, in order: `name TYPE` (`/tcp` over TCP).
    questions: Vec<String>,
    /// Anything that went wrong before the case could be observed.
    setup_error: Option<String>,
}

impl Outcome {
    /// The states the checks produced, consecutive repeats merged.
    fn observed(&self) -> String {
        let mut states: Vec<String> = Vec::new();
        for s in self.history.iter().filter(|s| s.checked.is_some()) {
            let t = s.text();
            if states.last() != Some(&t) {
                states.push(t);
            }
        }
        if states.is_empty() {
            return "never checked".into();
        }
        states.join(" → ")
    }
}

fn settled(want: Want, history: &[Seen]) -> bool {
    let checked: Vec<&Seen> = history.iter().filter(|s| s.checked.is_some()).collect();
    if checked.iter().any(|s| s.status == SUCCESS) {
        return true; // wanted, or a false SUCCESS: nothing more to wait for either way
    }
    match want {
        Steady(SUCCESS, _) | PendingThenSuccess => false,
        Steady(status, errors) => {
            let mut times: Vec<(i64, u32)> = checked
                .iter()
                .filter(|s| s.is(status, errors))
                .filter_map(|s| s.checked)
                .collect();
            times.dedup();
            times.len() >= 2
        }
    }
}

async fn observe(c: &Client, name: &str, want: Want) -> (Vec<Seen>, bool) {
    let deadline = Instant::now() + BOUND;
    let mut history: Vec<Seen> = Vec::new();
    loop {
        if let Ok(got) = c.get_email_identity().email_identity(name).send().await {
            let info = got.verification_info();
            let seen = Seen {
                status: got
                    .dkim_attributes()
                    .and_then(|d| d.status())
                    .map_or("none".to_owned(), |s| s.as_str().to_owned()),
                error: info
                    .and_then(|v| v.error_type())
                    .map(|e| e.as_str().to_owned()),
                checked: info
                    .and_then(|v| v.last_checked_timestamp())
                    .map(|t| (t.secs(), t.subsec_nanos())),
                soa_serial: info.and_then(|v| v.soa_record()).map(|s| s.serial_number()),
            };
            if history.last() != Some(&seen) {
                history.push(seen);
            }
            if settled(want, &history) {
                return (history, true);
            }
        }
        if Instant::now() >= deadline {
            return (history, false);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn create(
    c: &Client,
    case: &str,
    kind: Kind,
    key: Option<&str>,
) -> Result<Vec<String>, String> {
    let attrs = match kind {
        Easy => DkimSigningAttributes::builder()
            .next_signing_key_length(DkimSigningKeyLength::Rsa1024Bit)
            .build(),
        Byo => DkimSigningAttributes::builder()
            .domain_signing_selector(SELECTOR)
            .domain_signing_private_key(key.unwrap())
            .build(),
    };
    let out = c
        .create_email_identity()
        .email_identity(domain(case))
        .dkim_signing_attributes(attrs)
        .send()
        .await
        .map_err(|e| format!("CreateEmailIdentity: {e:?}"))?;
    Ok(out
        .dkim_attributes()
        .map(|d| d.tokens().to_vec())
        .unwrap_or_default())
}

type Fleet = Result<HashMap<&'static str, Outcome>, String>;

/// Runs every case once, on one server, and prints the table.
fn fleet() -> &'static Fleet {
    static FLEET: OnceLock<Fleet> = OnceLock::new();
    FLEET.get_or_init(|| {
        std::panic::catch_unwind(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap()
                .block_on(run_fleet())
        })
        .map_err(|p| {
            p.downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_else(|| "the fleet panicked".into())
        })
    })
}

/// Cases whose fault reaches past their own names, each on a server of its own: a resolver sends
/// many questions down one TCP connection, so a server closing it fails the other questions on
/// it too (the resolver resends each once; when the resend shares a connection with the
/// closing case's resend, that one fails as well), and an unrelated case would see a
/// resolver failure it did not ask for.
const ISOLATED: &[&str] = &["byo-truncated-tcp-closes"];

async fn run_fleet() -> HashMap<&'static str, Outcome> {
    let started = Instant::now();
    let shared: Vec<&'static str> = CASES
        .iter()
        .map(|c| c.0)
        .filter(|c| !ISOLATED.contains(c))
        .collect();
    let mut groups = vec![("shared", shared)];
    groups.extend(ISOLATED.iter().map(|&c| (c, vec![c])));
    let runs = groups
        .into_iter()
        .map(|(name, cases)| tokio::spawn(run_group(name, cases)));
    let mut outcomes = HashMap::new();
    for run in runs.collect::<Vec<_>>() {
        outcomes.extend(run.await.unwrap());
    }
    harness::say(&format!(
        "DNS fault table ({} cases on {} servers, {:.1} s):",
        CASES.len(),
        1 + ISOLATED.len(),
        started.elapsed().as_secs_f64()
    ));
    for &(case, _, want, what) in CASES {
        let o = &outcomes[case];
        let mark = if verdict(case, want, o).is_ok() {
            "ok "
        } else {
            "BAD"
        };
        harness::say(&format!(
            "  {mark} fault {case:<26} → {:<44} expected {:<44} [{what}]",
            o.observed(),
            want_text(want),
        ));
    }
    outcomes
}

/// Runs `cases` at once on one fault server and one Sesame server.
async fn run_group(group: &'static str, cases: Vec<&'static str>) -> Vec<(&'static str, Outcome)> {
    let dns = Arc::new(FaultDns::start(KEY_ZONE));
    let mut keys = HashMap::new();
    for &(case, kind, _, _) in CASES.iter().filter(|c| cases.contains(&c.0)) {
        if kind == Byo {
            let bits = if case == "byo-split-1-byte" {
                2048
            } else {
                1024
            };
            let private = harness::rsa_key_b64(bits, false);
            let public = public_der(&private);
            keys.insert(case, (private, public));
        }
    }
    let stranger = public_der(&harness::rsa_key_b64(1024, false));
    program(&dns, &cases, &keys, &stranger);
    let impostor = standard_txt(&dkim_value(&stranger));

    let dir = tempfile::tempdir().unwrap();
    let resolver = dns.addr.to_string();
    let server = harness::Server::start_in(
        dir.path(),
        &[
            ("SESAME_RESOLVER", &resolver),
            ("SESAME_VERIFY_INTERVAL", "1s"),
        ],
    );
    dns.set_upstream(server.dns);
    let c = server.client();

    let mut tasks = Vec::new();
    for &(case, kind, want, _) in CASES.iter().filter(|c| cases.contains(&c.0)) {
        let c = c.clone();
        let dns = dns.clone();
        let key = keys.get(case).map(|(k, _)| k.clone());
        let impostor = impostor.clone();
        tasks.push((
            case,
            tokio::spawn(async move {
                let tokens = create(&c, case, kind, key.as_deref()).await?;
                if case == "easy-impostor-txt" {
                    // Asked directly, the impostor's key zone has the impostor's key too.
                    for t in &tokens {
                        dns.override_key_zone(t, Node::records(vec![impostor.clone()]));
                    }
                }
                Ok::<_, String>(observe(&c, &domain(case), want).await)
            }),
        ));
    }
    let mut results = Vec::new();
    for (case, task) in tasks {
        results.push((case, task.await.unwrap()));
    }
    let log = dns.log();
    let output = server.output();
    drop(server);
    // The whole log, for a failure's details (the assertion shows only the case's own lines).
    let _ = std::fs::write(server_log_path(group), &output);
    let mut outcomes = Vec::new();
    for (case, result) in results {
        let dom = domain(case);
        let ours = |n: &str| n == dom || n.ends_with(&format!(".{dom}"));
        let mine: Vec<_> = log.iter().filter(|q| ours(&q.name)).collect();
        let (history, settled, setup_error) = match result {
            Ok((h, s)) => (h, s, None),
            Err(e) => (Vec::new(), false, Some(e)),
        };
        let lines: Vec<&str> = output
            .lines()
            .filter(|l| l.contains(&dom) && !l.contains("DEBUG hickory"))
            .collect();
        outcomes.push((
            case,
            Outcome {
                history,
                settled,
                udp: mine.iter().filter(|q| !q.tcp).count(),
                tcp: mine.iter().filter(|q| q.tcp).count(),
                log: lines[lines.len().saturating_sub(40)..].join("\n"),
                log_path: server_log_path(group),
                questions: mine
                    .iter()
                    .map(|q| {
                        let via = if q.tcp { "/tcp" } else { "" };
                        format!("{} {}{via}", q.name, q.qtype)
                    })
                    .collect(),
                setup_error,
            },
        ));
    }
    outcomes
}

/// Where a group leaves its server's whole log.
fn server_log_path(group: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("faults-server-{group}.log"))
}

/// Whether an outcome is what the table wants; the reason if not.
fn verdict(case: &str, want: Want, o: &Outcome) -> Result<(), String> {
    if let Some(e) = &o.setup_error {
        return Err(e.clone());
    }
    let checked: Vec<&Seen> = o.history.iter().filter(|s| s.checked.is_some()).collect();
    let Some(last) = checked.last() else {
        return Err("never checked".into());
    };
    let success_wanted = matches!(want, Steady(SUCCESS, _) | PendingThenSuccess);
    if !success_wanted && checked.iter().any(|s| s.status == SUCCESS) {
        return Err("a false SUCCESS".into());
    }
    if !o.settled {
        return Err(format!("did not settle within {BOUND:?}"));
    }
    match want {
        Steady(status, errors) => {
            if !last.is(status, errors) {
                return Err(format!("ended in {}", last.text()));
            }
        }
        PendingThenSuccess => {
            let first_success = checked.iter().position(|s| s.status == SUCCESS).unwrap();
            let before = &checked[..first_success];
            let Some(nx) = before.iter().find(|s| s.is(PENDING, &[HOST_NOT_FOUND])) else {
                return Err("SUCCESS without a PENDING (HOST_NOT_FOUND) check before it".into());
            };
            if let Some(s) = before.iter().find(|s| s.status != PENDING) {
                return Err(format!("{} before SUCCESS", s.text()));
            }
            if nx.soa_serial != Some(i64::from(FAULT_SOA_SERIAL)) {
                return Err(format!("the NXDOMAIN's SOA was not kept: {nx:?}"));
            }
            if !last.is(SUCCESS, NONE) {
                return Err(format!("ended in {}", last.text()));
            }
        }
    }
    if o.udp + o.tcp == 0 {
        return Err("the verifier never asked the fault server".into());
    }
    if case.starts_with("easy-txt-") && !o.questions.iter().any(|q| q.contains(" TXT")) {
        return Err("the verifier never asked for the TXT at the chain's end".into());
    }
    if case.contains("truncated") && o.tcp == 0 {
        return Err("truncated over UDP, but never asked over TCP".into());
    }
    Ok(())
}

/// The test of one case: the fleet's outcome for it must be the table's.
fn check(case: &str) {
    let fleet = fleet().as_ref().expect("the fault fleet could not run");
    let &(_, _, want, what) = CASES.iter().find(|c| c.0 == case).unwrap();
    let o = &fleet[case];
    if let Err(why) = verdict(case, want, o) {
        panic!(
            "fault {case} ({what}): {why}\n  expected {}\n  observed {}\n  history {:#?}\n  questions: {} over UDP, {} over TCP: {:#?}\n  server log (all of it in {}):\n{}",
            want_text(want),
            o.observed(),
            o.history,
            o.udp,
            o.tcp,
            o.questions,
            o.log_path.display(),
            o.log
        );
    }
}

macro_rules! cases {
    ($($(#[$m:meta])* $f:ident => $case:literal,)*) => {
        $( $(#[$m])* #[test] fn $f() { check($case) } )*
        const TESTED: &[&str] = &[$($case),*];
    };
}

cases! {
    easy_ok => "easy-ok",
    easy_recursive_ok => "easy-recursive-ok",
    easy_chain_ok => "easy-chain-ok",
    easy_wrong_target => "easy-wrong-target",
    easy_cname_loop => "easy-cname-loop",
    easy_long_chain => "easy-long-chain",
    easy_timeout_one => "easy-timeout-one",
    easy_servfail_one => "easy-servfail-one",
    easy_wrong_and_timeout => "easy-wrong-and-timeout",
    easy_truncated_tcp => "easy-truncated-tcp",
    easy_nx_then_record => "easy-nx-then-record",
    easy_impostor_txt => "easy-impostor-txt",
    easy_txt_servfail => "easy-txt-servfail",
    easy_txt_timeout => "easy-txt-timeout",
    byo_ok => "byo-ok",
    byo_chain_ok => "byo-chain-ok",
    byo_timeout => "byo-timeout",
    byo_servfail => "byo-servfail",
    byo_refused => "byo-refused",
    byo_truncated_tcp_answers => "byo-truncated-tcp-answers",
    byo_truncated_tcp_silent => "byo-truncated-tcp-silent",
    byo_truncated_tcp_closes => "byo-truncated-tcp-closes",
    byo_nx_then_record => "byo-nx-then-record",
    byo_split_1_byte => "byo-split-1-byte",
    byo_split_inside_p => "byo-split-inside-p",
    byo_spaces => "byo-spaces",
    byo_wrong_key => "byo-wrong-key",
    byo_cname_loop => "byo-cname-loop",
    byo_long_chain => "byo-long-chain",
    byo_long_chain_hops => "byo-long-chain-hops",
    byo_wrong_owner => "byo-wrong-owner",
}

#[test]
fn every_case_has_a_test() {
    let table: Vec<&str> = CASES.iter().map(|c| c.0).collect();
    assert_eq!(table, TESTED);
}
