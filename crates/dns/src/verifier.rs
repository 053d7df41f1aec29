//! The verifier's eyes: looks up each expected record through hickory-resolver (caching off, so
//! every check sees what the DNS says now) and reports what it found as an `Observation`. The
//! core's state machine decides what that means.

use crate::records::{published_key, same_name};
use hickory_resolver::Resolver;
use hickory_resolver::TokioResolver;
use hickory_resolver::config::{NameServerConfig, ResolveHosts, ResolverConfig};
use hickory_resolver::lookup::Lookup;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::rdata::CNAME;
use hickory_resolver::proto::rr::{RData, RecordType};
use sesame_core::dkim::{Expect, ExpectedRecord, Observation, RecordCheck};
use sesame_core::model::SoaRecord;
use std::net::SocketAddr;
use std::time::Duration;

/// How many CNAME hops a customer's chain may have before we give up (as resolvers do).
const MAX_CHAIN: usize = 8;

/// Looks up customers' DKIM records.
pub struct Verifier {
    resolver: TokioResolver,
}

/// What one lookup gave.
enum Answer {
    Found(Lookup),
    NxDomain(Option<SoaRecord>),
    NoData(Option<SoaRecord>),
    Failed(String),
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
        Ok(Verifier { resolver })
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

    /// Easy DKIM: `name` must be a CNAME to `target`, directly or through a chain.
    async fn check_cname(&self, name: &str, target: &str) -> (RecordCheck, Option<SoaRecord>) {
        let first = match self.lookup(name, RecordType::CNAME).await {
            Answer::Found(l) => Self::cname_targets(&l),
            Answer::NxDomain(soa) => return (RecordCheck::HostNotFound, soa),
            Answer::NoData(soa) => return (RecordCheck::TypeNotFound, soa),
            Answer::Failed(why) => return (RecordCheck::ServerError(why), None),
        };
        let Some(mut hop) = first.first().cloned() else {
            return (RecordCheck::TypeNotFound, None);
        };
        for _ in 0..MAX_CHAIN {
            if same_name(&hop, target) {
                return (RecordCheck::Valid, None);
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
        let lookup = match self.lookup(name, RecordType::TXT).await {
            Answer::Found(l) => l,
            Answer::NxDomain(soa) => return (RecordCheck::HostNotFound, soa),
            Answer::NoData(soa) => return (RecordCheck::TypeNotFound, soa),
            Answer::Failed(why) => return (RecordCheck::ServerError(why), None),
        };
        let mut seen = Vec::new();
        for r in lookup.answers() {
            if let RData::TXT(txt) = &r.data {
                let strings: Vec<String> = txt
                    .txt_data
                    .iter()
                    .map(|s| String::from_utf8_lossy(s).into_owned())
                    .collect();
                // Compare the decoded key, not the text: spacing and string splits may differ.
                if published_key(&strings).as_deref() == Some(public_der) {
                    return (RecordCheck::Valid, None);
                }
                seen.push(strings.concat());
            }
        }
        if seen.is_empty() {
            (RecordCheck::TypeNotFound, None)
        } else {
            (
                RecordCheck::Wrong(format!("TXT \"{}\"", seen.join("\" \""))),
                None,
            )
        }
    }

    /// Looks at every expected record (concurrently) and reports what it saw.
    pub async fn observe(&self, records: &[ExpectedRecord]) -> Observation {
        let checks = records.iter().map(|r| async move {
            match &r.expect {
                Expect::Cname { target } => self.check_cname(&r.name, target).await,
                Expect::DkimKey { public_der } => self.check_key(&r.name, public_der).await,
            }
        });
        let results = futures_util::future::join_all(checks).await;
        let soa = results.iter().find_map(|(_, soa)| soa.clone());
        Observation {
            records: results.into_iter().map(|(c, _)| c).collect(),
            soa,
        }
    }
}
