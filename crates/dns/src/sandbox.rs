//! The sandbox's zones (`sesame dev`): for each identity's domain, an authoritative zone
//! holding exactly the records `sesame dns-records` prints for it, served by the key zone's
//! listener beside the key zone, so a verifier that asks this listener finds them by a real
//! DNS lookup. Records can be broken on purpose (removed, or given another value), and an
//! outage switch answers SERVFAIL for every sandbox name. Names outside the identities'
//! domains are refused, as outside the sandbox.

use crate::update::UpdateRecord;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::rdata::{CNAME, MX, SOA, TXT};
use hickory_proto::rr::{LowerName, Name, RData, Record, RecordType};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

/// How many queries the log keeps.
const LOGGED: usize = 1024;

/// One query to a sandbox name, as logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedQuery {
    /// The name asked, lower case, without the trailing dot.
    pub name: String,
    /// The type asked.
    pub qtype: String,
    /// The response code answered.
    pub rcode: String,
}

/// The sandbox's recent queries (a developer sees what the verifier asked), and a log line
/// each: in the sandbox only, where the traffic is a developer's own.
#[derive(Debug, Default)]
pub struct QueryLog {
    recent: Mutex<VecDeque<LoggedQuery>>,
}

impl QueryLog {
    /// The queries kept, oldest first.
    pub fn recent(&self) -> Vec<LoggedQuery> {
        self.recent
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .cloned()
            .collect()
    }

    fn record(&self, qname: &LowerName, qtype: RecordType, rcode: ResponseCode) {
        let name = qname.to_string();
        let q = LoggedQuery {
            name: name.trim_end_matches('.').to_owned(),
            qtype: qtype.to_string(),
            rcode: format!("{rcode:?}").to_ascii_uppercase(),
        };
        tracing::info!(name = %q.name, qtype = %q.qtype, rcode = %q.rcode, "sandbox DNS query");
        let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        if recent.len() == LOGGED {
            recent.pop_front();
        }
        recent.push_back(q);
    }
}

/// TTL of the sandbox's records: short, so a broken record shows at once.
const SANDBOX_TTL: u32 = 5;

/// The sandbox's zones, immutable; rebuilt when identities or overrides change.
pub struct SandboxZones {
    /// Each zone's apex and its SOA (as negative answers carry it).
    zones: Vec<(LowerName, Record)>,
    /// Records by owner and type.
    records: HashMap<(LowerName, RecordType), Record>,
    /// Owners that hold any record (a name without the asked type is NODATA, not NXDOMAIN).
    owners: std::collections::HashSet<LowerName>,
    outage: bool,
    log: Arc<QueryLog>,
}

fn name(s: &str) -> Option<Name> {
    Name::from_ascii(format!("{}.", s.trim_end_matches('.'))).ok()
}

fn rdata(r: &UpdateRecord) -> Option<RData> {
    Some(match r {
        UpdateRecord::Cname { target, .. } => RData::CNAME(CNAME(name(target)?)),
        UpdateRecord::Txt { strings, .. } => RData::TXT(TXT::new(strings.clone())),
        UpdateRecord::Mx {
            preference,
            exchange,
            ..
        } => RData::MX(MX::new(*preference, name(exchange)?)),
    })
}

fn rtype(r: &UpdateRecord) -> RecordType {
    match r {
        UpdateRecord::Cname { .. } => RecordType::CNAME,
        UpdateRecord::Txt { .. } => RecordType::TXT,
        UpdateRecord::Mx { .. } => RecordType::MX,
    }
}

impl SandboxZones {
    /// Zones for `domains` holding `records` (each inside one of them; others are skipped),
    /// answering SERVFAIL for everything while `outage`.
    /// Every answer is recorded in `log`.
    pub fn build(
        domains: &[String],
        records: &[UpdateRecord],
        outage: bool,
        log: Arc<QueryLog>,
    ) -> SandboxZones {
        let mut zones = Vec::new();
        for d in domains {
            let Some(apex) = name(d) else { continue };
            let soa = Record::from_rdata(
                apex.clone(),
                SANDBOX_TTL,
                RData::SOA(SOA::new(
                    name(&format!("ns.{d}")).unwrap_or_else(|| apex.clone()),
                    name(&format!("hostmaster.{d}")).unwrap_or_else(|| apex.clone()),
                    1,
                    3600,
                    600,
                    86_400,
                    SANDBOX_TTL,
                )),
            );
            zones.push((LowerName::from(&apex), soa));
        }
        // The most specific zone first, so a subdomain identity answers for its own names.
        zones.sort_by_key(|(apex, _)| std::cmp::Reverse(apex.num_labels()));
        let mut out = SandboxZones {
            zones,
            records: HashMap::new(),
            owners: Default::default(),
            outage,
            log,
        };
        for r in records {
            let (Some(owner), Some(data)) = (name(r.name()), rdata(r)) else {
                continue;
            };
            let lower = LowerName::from(&owner);
            if out.zone_of(&lower).is_none() {
                continue;
            }
            out.owners.insert(lower.clone());
            out.records.insert(
                (lower, rtype(r)),
                Record::from_rdata(owner, SANDBOX_TTL, data),
            );
        }
        out
    }

    fn zone_of(&self, qname: &LowerName) -> Option<&Record> {
        self.zones
            .iter()
            .find(|(apex, _)| apex.zone_of(qname))
            .map(|(_, soa)| soa)
    }

    /// The answer for a name inside a sandbox zone; `None` outside every one.
    /// (response code, answer, authority, authoritative), as the responder's own.
    pub(crate) fn answer(
        &self,
        qname: &LowerName,
        qtype: RecordType,
    ) -> Option<(ResponseCode, Option<&Record>, Option<&Record>, bool)> {
        let answer = self.find(qname, qtype)?;
        self.log.record(qname, qtype, answer.0);
        Some(answer)
    }

    fn find(
        &self,
        qname: &LowerName,
        qtype: RecordType,
    ) -> Option<(ResponseCode, Option<&Record>, Option<&Record>, bool)> {
        let soa = self.zone_of(qname)?;
        if self.outage {
            return Some((ResponseCode::ServFail, None, None, false));
        }
        if qtype == RecordType::SOA && *qname == LowerName::from(&soa.name) {
            return Some((ResponseCode::NoError, Some(soa), None, true));
        }
        // A CNAME answers every type at its name (the resolver follows it).
        let found = self
            .records
            .get(&(qname.clone(), RecordType::CNAME))
            .or_else(|| self.records.get(&(qname.clone(), qtype)));
        Some(match found {
            Some(r) => (ResponseCode::NoError, Some(r), None, true),
            None if self.owners.contains(qname) || *qname == LowerName::from(&soa.name) => {
                (ResponseCode::NoError, None, Some(soa), true)
            }
            None => (ResponseCode::NXDomain, None, Some(soa), true),
        })
    }

    /// How many records the sandbox serves.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether it serves none.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lower(s: &str) -> LowerName {
        LowerName::from(Name::from_ascii(s).unwrap())
    }

    #[test]
    fn answers_its_identities_names_only() {
        let zones = SandboxZones::build(
            &["example.com".into(), "sub.example.com".into()],
            &[
                UpdateRecord::Cname {
                    name: "t._domainkey.example.com".into(),
                    target: "t.dkim.sesame.internal".into(),
                },
                UpdateRecord::Mx {
                    name: "mail.sub.example.com".into(),
                    preference: 10,
                    exchange: "feedback-smtp.dkim.sesame.internal".into(),
                },
                UpdateRecord::Txt {
                    name: "elsewhere.example.org".into(),
                    strings: vec!["skipped".into()],
                },
            ],
            false,
            Arc::default(),
        );
        assert_eq!(zones.len(), 2, "a record outside every zone is skipped");
        let (code, answer, _, aa) = zones
            .answer(&lower("T._domainkey.example.com."), RecordType::TXT)
            .unwrap();
        assert_eq!(code, ResponseCode::NoError);
        assert!(aa);
        assert_eq!(answer.unwrap().record_type(), RecordType::CNAME);
        let (code, answer, soa, _) = zones
            .answer(&lower("mail.sub.example.com."), RecordType::TXT)
            .unwrap();
        assert_eq!(
            (code, answer.is_none()),
            (ResponseCode::NoError, true),
            "NODATA"
        );
        assert_eq!(
            soa.unwrap().name,
            Name::from_ascii("sub.example.com.").unwrap()
        );
        let (code, ..) = zones
            .answer(&lower("nothing.example.com."), RecordType::TXT)
            .unwrap();
        assert_eq!(code, ResponseCode::NXDomain);
        assert!(
            zones
                .answer(&lower("example.org."), RecordType::TXT)
                .is_none()
        );
        let log = Arc::new(QueryLog::default());
        let down = SandboxZones::build(&["example.com".into()], &[], true, log.clone());
        let (code, ..) = down
            .answer(&lower("x.example.com."), RecordType::TXT)
            .unwrap();
        assert_eq!(code, ResponseCode::ServFail);
        assert_eq!(
            log.recent(),
            vec![LoggedQuery {
                name: "x.example.com".into(),
                qtype: "TXT".into(),
                rcode: "SERVFAIL".into()
            }]
        );
    }
}
