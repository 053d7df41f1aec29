//! The verifier's eyes: looks up each expected record through hickory-resolver (caching off, so
//! every check sees what the DNS says now) and reports what it found as an `Observation`. The
//! core's state machine decides what that means.

use crate::records::{published_key, same_name};
use crate::responder::SnapshotHandle;
use hickory_resolver::Resolver;
use hickory_resolver::TokioResolver;
use hickory_resolver::config::{NameServerConfig, ResolveHosts, ResolverConfig};
use hickory_resolver::lookup::Lookup;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::rdata::CNAME;
use hickory_resolver::proto::rr::{RData, RecordType};
use sesame_core::mail_from::{self, DmarcFinding, DmarcPolicy, SpfFinding};
use sesame_core::model::SoaRecord;
use sesame_core::verification::{Expect, ExpectedRecord, Observation, Purpose, RecordCheck};
use std::net::SocketAddr;
use std::time::Duration;

/// How many CNAME hops a customer's chain may have before we give up (as resolvers do).
const MAX_CHAIN: usize = 8;

/// Looks up customers' DKIM records.
pub struct Verifier {
    resolver: TokioResolver,
    /// This node's own key zone, when the verifier runs beside it: an Easy DKIM record is
    /// right only once the zone serves its key.
    key_zone: Option<SnapshotHandle>,
}

/// How long a check waits for this node's key zone to serve a key just written: the zone
/// follows the store every 200 ms and rebuilds in well under a second.
const KEY_ZONE_WAIT: Duration = Duration::from_secs(3);

/// What one lookup gave.
enum Answer {
    Found(Lookup),
    NxDomain(Option<SoaRecord>),
    NoData(Option<SoaRecord>),
    Failed(String),
    /// An answer whose CNAME chain is longer than `MAX_CHAIN` (a resolver stops there).
    ChainTooLong(usize),
}

fn soa_of(nr: &hickory_resolver::net::NoRecords) -> Option<SoaRecord> {
    nr.soa.as_ref().map(|s| SoaRecord {
        primary_name_server: s.data.mname.to_string().trim_end_matches('.').to_owned(),
        admin_email: s.data.rname.to_string().trim_end_matches('.').to_owned(),
        serial: u64::from(s.data.serial),
    })
}

impl Verifier {
    /// A verifier asking `nameserver` (UDP, TCP on truncation), or the system's resolvers
    /// from `/etc/resolv.conf` when `None`. Each lookup gets one try of `timeout`.
    pub fn new(nameserver: Option<SocketAddr>, timeout: Duration) -> Result<Verifier, String> {
        let mut builder = match nameserver {
            Some(ns) => {
                let mut nsc = NameServerConfig::udp_and_tcp(ns.ip());
                for c in nsc.connections.iter_mut() {
                    c.port = ns.port();
                }
                Resolver::builder_with_config(
                    ResolverConfig::from_name_servers(vec![nsc]),
                    TokioRuntimeProvider::default(),
                )
            }
            None => TokioResolver::builder_tokio()
                .map_err(|e| format!("reading the system's resolver configuration: {e}"))?,
        };
        let o = builder.options_mut();
        // Verification must see the DNS as it is now, not a cached past.
        o.cache_size = 0;
        o.timeout = timeout;
        // `attempts` counts retries after the first try; the backoff schedule is our retry.
        o.attempts = 0;
        o.use_hosts_file = ResolveHosts::Never;
        let resolver = builder
            .build()
            .map_err(|e| format!("building the resolver: {e}"))?;
        Ok(Verifier {
            resolver,
            key_zone: None,
        })
    }

    /// Also requires, for Easy DKIM, that `zone` (this node's key zone) serves each key.
    pub fn with_key_zone(mut self, zone: SnapshotHandle) -> Verifier {
        self.key_zone = Some(zone);
        self
    }

    /// Whether this node's key zone serves `public_der` at `target`, waiting briefly for a
    /// snapshot that is being rebuilt; true when there is no zone to ask.
    async fn key_zone_serves(&self, target: &str, public_der: &[u8]) -> bool {
        let Some(zone) = &self.key_zone else {
            return true;
        };
        let deadline = tokio::time::Instant::now() + KEY_ZONE_WAIT;
        loop {
            if zone.current().served_key(target).as_deref() == Some(public_der) {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The TXT records a lookup at `name` returned (after any CNAMEs the resolver followed):
    /// each one's decoded `p=` key, if it has one, and its text. Empty when the resolver gave
    /// no TXT at all.
    async fn txt_records(&self, name: &str) -> Result<Vec<(Option<Vec<u8>>, String)>, Answer> {
        let lookup = match self.lookup(name, RecordType::TXT).await {
            Answer::Found(l) => l,
            other => return Err(other),
        };
        // hickory follows a chain given whole in one answer however long it is; receivers'
        // resolvers stop, so we do too.
        let hops = lookup
            .answers()
            .iter()
            .filter(|r| matches!(r.data, RData::CNAME(_)))
            .count();
        if hops > MAX_CHAIN {
            return Err(Answer::ChainTooLong(hops));
        }
        Ok(lookup
            .answers()
            .iter()
            .filter_map(|r| match &r.data {
                RData::TXT(txt) => {
                    let strings: Vec<String> = txt
                        .txt_data
                        .iter()
                        .map(|s| String::from_utf8_lossy(s).into_owned())
                        .collect();
                    // Compared by the decoded key, not the text: spacing and string splits
                    // may differ.
                    Some((published_key(&strings), strings.concat()))
                }
                _ => None,
            })
            .collect())
    }

    /// Easy DKIM: the CNAME chain is right; now what a receiver would find at its end. Through
    /// a `recursive` resolver (its answers say recursion is available), which follows the
    /// chain, a TXT that comes back must carry our key. An authoritative-only server cannot
    /// follow it (asking would only make hickory chase the target there and be REFUSED), so
    /// the key zone's own snapshot must serve the key in any case.
    async fn check_chain_end(
        &self,
        name: &str,
        target: &str,
        public_der: &[u8],
        recursive: bool,
    ) -> RecordCheck {
        if recursive
            && let Ok(found) = self.txt_records(name).await
            && !found.is_empty()
        {
            if found.iter().any(|(k, _)| k.as_deref() == Some(public_der)) {
                return RecordCheck::Valid;
            }
            let texts: Vec<&str> = found.iter().map(|(_, t)| t.as_str()).collect();
            return RecordCheck::Wrong(format!(
                "CNAME to {target}, but the resolver finds TXT \"{}\" at its end, not this identity's key",
                texts.join("\" \"")
            ));
        }
        if self.key_zone_serves(target, public_der).await {
            RecordCheck::Valid
        } else {
            RecordCheck::ServerError(format!("Sesame's key zone does not serve {target} yet"))
        }
    }

    async fn lookup(&self, name: &str, rtype: RecordType) -> Answer {
        // A trailing dot keeps search domains out of it.
        let fqdn = format!("{}.", name.trim_end_matches('.'));
        match self.resolver.lookup(fqdn.as_str(), rtype).await {
            Ok(l) => Answer::Found(l),
            Err(NetError::Dns(DnsError::NoRecordsFound(nr))) => match nr.response_code {
                ResponseCode::NXDomain => Answer::NxDomain(soa_of(&nr)),
                ResponseCode::NoError => Answer::NoData(soa_of(&nr)),
                code => Answer::Failed(format!("{code}")),
            },
            Err(NetError::Dns(DnsError::ResponseCode(code))) => Answer::Failed(format!("{code}")),
            Err(e) => Answer::Failed(e.to_string()),
        }
    }

    fn cname_targets(l: &Lookup) -> Vec<String> {
        l.answers()
            .iter()
            .filter_map(|r| match &r.data {
                RData::CNAME(CNAME(t)) => Some(t.to_string()),
                _ => None,
            })
            .collect()
    }

    /// Easy DKIM: `name` must be a CNAME to `target`, directly or through a chain, and the
    /// chain must end at `public_der`.
    async fn check_cname(
        &self,
        name: &str,
        target: &str,
        public_der: &[u8],
    ) -> (RecordCheck, Option<SoaRecord>) {
        let (first, recursive) = match self.lookup(name, RecordType::CNAME).await {
            Answer::Found(l) => (
                Self::cname_targets(&l),
                l.message().metadata.recursion_available,
            ),
            Answer::NxDomain(soa) => return (RecordCheck::HostNotFound, soa),
            Answer::NoData(soa) => return (RecordCheck::TypeNotFound, soa),
            Answer::Failed(why) => return (RecordCheck::ServerError(why), None),
            Answer::ChainTooLong(hops) => {
                return (
                    RecordCheck::Wrong(format!("a CNAME chain of {hops} hops")),
                    None,
                );
            }
        };
        let Some(mut hop) = first.first().cloned() else {
            return (RecordCheck::TypeNotFound, None);
        };
        for _ in 0..MAX_CHAIN {
            if same_name(&hop, target) {
                return (
                    self.check_chain_end(name, target, public_der, recursive)
                        .await,
                    None,
                );
            }
            // The customer may alias through a name of their own: follow it.
            match self.lookup(&hop, RecordType::CNAME).await {
                Answer::Found(l) => match Self::cname_targets(&l).first() {
                    Some(next) => hop = next.clone(),
                    None => break,
                },
                _ => break,
            }
        }
        let seen = first.first().cloned().unwrap_or_default();
        (RecordCheck::Wrong(format!("CNAME {seen}")), None)
    }

    /// BYODKIM: the TXT at `name` (after any CNAMEs) must publish `public_der` in `p=`.
    async fn check_key(&self, name: &str, public_der: &[u8]) -> (RecordCheck, Option<SoaRecord>) {
        let found = match self.txt_records(name).await {
            Ok(found) => found,
            Err(other) => return Self::absent(other),
        };
        if found.iter().any(|(k, _)| k.as_deref() == Some(public_der)) {
            (RecordCheck::Valid, None)
        } else if found.is_empty() {
            (RecordCheck::TypeNotFound, None)
        } else {
            let texts: Vec<&str> = found.iter().map(|(_, t)| t.as_str()).collect();
            (
                RecordCheck::Wrong(format!("TXT \"{}\"", texts.join("\" \""))),
                None,
            )
        }
    }

    /// MAIL FROM: the domain's MX records must name `exchange` (any preference), as SES
    /// decides it.
    async fn check_mx(&self, name: &str, exchange: &str) -> (RecordCheck, Option<SoaRecord>) {
        match self.lookup(name, RecordType::MX).await {
            Answer::Found(l) => {
                let seen: Vec<(u16, String)> = l
                    .answers()
                    .iter()
                    .filter_map(|r| match &r.data {
                        RData::MX(mx) => Some((mx.preference, mx.exchange.to_string())),
                        _ => None,
                    })
                    .collect();
                let hosts: Vec<String> = seen.iter().map(|(_, h)| h.clone()).collect();
                if seen.is_empty() {
                    (RecordCheck::TypeNotFound, None)
                } else if mail_from::mx_points_at(&hosts, exchange) {
                    (RecordCheck::Valid, None)
                } else {
                    let shown: Vec<String> =
                        seen.iter().map(|(p, h)| format!("MX {p} {h}")).collect();
                    (RecordCheck::Wrong(shown.join(", ")), None)
                }
            }
            other => Self::absent(other),
        }
    }

    /// What a lookup that found nothing usable means for a record.
    fn absent(answer: Answer) -> (RecordCheck, Option<SoaRecord>) {
        match answer {
            Answer::NxDomain(soa) => (RecordCheck::HostNotFound, soa),
            Answer::NoData(soa) => (RecordCheck::TypeNotFound, soa),
            Answer::Failed(why) => (RecordCheck::ServerError(why), None),
            Answer::Found(_) => (RecordCheck::TypeNotFound, None),
            Answer::ChainTooLong(hops) => (
                RecordCheck::Wrong(format!(
                    "a CNAME chain of {hops} hops (resolvers follow at most {MAX_CHAIN})"
                )),
                None,
            ),
        }
    }

    /// MAIL FROM SPF: exactly one SPF record, including `include` (core's `spf_check`).
    async fn check_spf(&self, name: &str, include: &str) -> (RecordCheck, Option<SoaRecord>) {
        let texts = match self.txt_records(name).await {
            Ok(found) => found.into_iter().map(|(_, t)| t).collect::<Vec<_>>(),
            Err(other) => return Self::absent(other),
        };
        let check = match mail_from::spf_check(&texts, include) {
            SpfFinding::Found => RecordCheck::Valid,
            SpfFinding::Missing => RecordCheck::TypeNotFound,
            SpfFinding::Wrong(record) => RecordCheck::Wrong(format!(
                "TXT \"{record}\", which does not include:{include}"
            )),
            SpfFinding::Multiple(n) => RecordCheck::Several(n),
        };
        (check, None)
    }

    /// DMARC at `name` (`_dmarc.<domain>`): a record with a policy; `p=none` is weak.
    async fn check_dmarc(&self, name: &str) -> (RecordCheck, Option<SoaRecord>) {
        let texts = match self.txt_records(name).await {
            Ok(found) => found.into_iter().map(|(_, t)| t).collect::<Vec<_>>(),
            Err(other) => return Self::absent(other),
        };
        let check = match mail_from::dmarc_check(&texts) {
            DmarcFinding::Policy(DmarcPolicy::None) => {
                RecordCheck::Weak("p=none: receivers only report failures".into())
            }
            DmarcFinding::Policy(_) => RecordCheck::Valid,
            DmarcFinding::Missing => RecordCheck::TypeNotFound,
            DmarcFinding::Unparsable(record) => {
                RecordCheck::Wrong(format!("TXT \"{record}\", which has no valid p= policy"))
            }
        };
        // The SOA of `_dmarc.<domain>` is the domain's zone's: not a DKIM finding.
        (check, None)
    }

    /// Looks at every expected record (concurrently) and reports what it saw.
    pub async fn observe(&self, records: &[ExpectedRecord]) -> Observation {
        let checks = records.iter().map(|r| async move {
            match &r.expect {
                Expect::Cname { target, public_der } => {
                    self.check_cname(&r.name, target, public_der).await
                }
                Expect::DkimKey { public_der } => self.check_key(&r.name, public_der).await,
                Expect::Mx { exchange } => self.check_mx(&r.name, exchange).await,
                Expect::Spf { include } => self.check_spf(&r.name, include).await,
                Expect::Dmarc => self.check_dmarc(&r.name).await,
            }
        });
        let results = futures_util::future::join_all(checks).await;
        // The SOA shown is the identity's zone's, as a DKIM record's answer carried it.
        let soa = results
            .iter()
            .zip(records)
            .filter(|(_, r)| r.purpose() == Purpose::Dkim)
            .find_map(|((_, soa), _)| soa.clone());
        Observation {
            records: results.into_iter().map(|(c, _)| c).collect(),
            soa,
        }
    }
}
