//! The key-zone responder: authoritative answers for `<token>.<zone>` TXT records from an
//! in-memory snapshot that the server replaces when the store's keys change, so no query ever
//! waits on the database. A UDP answer that would not fit the client's payload size goes out
//! empty with TC set, and the client retries over TCP (RFC 1035 section 4.2.1, RFC 7766).

use crate::records::{dkim_txt_value, split_strings};
use hickory_server::net::runtime::Time;
use hickory_server::net::xfer::Protocol;
use hickory_server::proto::op::{Edns, Header, HeaderCounts, Metadata, OpCode, ResponseCode};
use hickory_server::proto::rr::rdata::{NS, SOA, TXT};
use hickory_server::proto::rr::{LowerName, Name, RData, Record, RecordType};
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// TTL of the key records: short, so rotations reach receivers quickly.
pub const KEY_TTL: u32 = 300;
/// TTL of the SOA and NS records.
pub const ZONE_TTL: u32 = 3600;
/// Negative-caching TTL (the SOA minimum, RFC 2308).
pub const NEGATIVE_TTL: u32 = 60;

/// An immutable view of the zone: apex records and one TXT per published token.
pub struct Snapshot {
    apex: LowerName,
    soa: Record,
    // The SOA as negative answers carry it (TTL = the negative-caching TTL), made once.
    negative_soa: Record,
    ns: Record,
    txt: HashMap<LowerName, Record>,
}

/// Why a zone could not be built.
#[derive(Debug)]
pub struct ZoneError(pub String);

impl std::fmt::Display for ZoneError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn name(s: &str) -> Result<Name, ZoneError> {
    Name::from_ascii(format!("{}.", s.trim_end_matches('.')))
        .map_err(|e| ZoneError(format!("'{s}' is not a valid DNS name: {e}")))
}

impl Snapshot {
    /// Builds the zone `zone` holding `keys` (`(token, DER SubjectPublicKeyInfo)`); `serial`
    /// should change whenever the keys do.
    pub fn build(
        zone: &str,
        keys: &[(String, Vec<u8>)],
        serial: u32,
    ) -> Result<Snapshot, ZoneError> {
        let apex = name(zone)?;
        let ns_name = name(&format!("ns.{zone}"))?;
        let admin = name(&format!("hostmaster.{zone}"))?;
        let soa = Record::from_rdata(
            apex.clone(),
            ZONE_TTL,
            RData::SOA(SOA::new(
                ns_name.clone(),
                admin,
                serial,
                3600,
                600,
                86_400,
                NEGATIVE_TTL,
            )),
        );
        let ns = Record::from_rdata(apex.clone(), ZONE_TTL, RData::NS(NS(ns_name)));
        let mut negative_soa = soa.clone();
        negative_soa.ttl = NEGATIVE_TTL;
        let mut txt = HashMap::with_capacity(keys.len());
        for (token, der) in keys {
            let owner = name(&format!("{token}.{zone}"))?;
            let strings = split_strings(&dkim_txt_value(der));
            let record = Record::from_rdata(owner.clone(), KEY_TTL, RData::TXT(TXT::new(strings)));
            txt.insert(LowerName::from(&owner), record);
        }
        Ok(Snapshot {
            apex: LowerName::from(&apex),
            soa,
            negative_soa,
            ns,
            txt,
        })
    }

    /// How many key records the snapshot serves.
    pub fn len(&self) -> usize {
        self.txt.len()
    }

    /// Whether it serves none.
    pub fn is_empty(&self) -> bool {
        self.txt.is_empty()
    }

    /// The answer to one question: (response code, answer, authority record, authoritative).
    /// Borrowed from the snapshot: a query copies no record.
    fn answer(
        &self,
        qname: &LowerName,
        qtype: RecordType,
    ) -> (ResponseCode, Option<&Record>, Option<&Record>, bool) {
        if !self.apex.zone_of(qname) {
            // Not our zone: we are no resolver.
            return (ResponseCode::Refused, None, None, false);
        }
        let negative = Some(&self.negative_soa);
        if *qname == self.apex {
            return match qtype {
                RecordType::SOA => (ResponseCode::NoError, Some(&self.soa), None, true),
                RecordType::NS => (ResponseCode::NoError, Some(&self.ns), None, true),
                _ => (ResponseCode::NoError, None, negative, true),
            };
        }
        match self.txt.get(qname) {
            Some(record) if qtype == RecordType::TXT || qtype == RecordType::ANY => {
                (ResponseCode::NoError, Some(record), None, true)
            }
            Some(_) => (ResponseCode::NoError, None, negative, true),
            None => (ResponseCode::NXDomain, None, negative, true),
        }
    }
}

/// A shared, replaceable snapshot; readers clone the `Arc` and never hold the lock long.
#[derive(Clone)]
pub struct SnapshotHandle(Arc<RwLock<Arc<Snapshot>>>);

impl SnapshotHandle {
    /// A handle serving `initial`.
    pub fn new(initial: Snapshot) -> SnapshotHandle {
        SnapshotHandle(Arc::new(RwLock::new(Arc::new(initial))))
    }

    /// Serves `next` from now on.
    pub fn replace(&self, next: Snapshot) {
        let mut guard = self.0.write().unwrap_or_else(|p| p.into_inner());
        *guard = Arc::new(next);
    }

    /// The snapshot being served.
    pub fn current(&self) -> Arc<Snapshot> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// The hickory-server handler over a [`SnapshotHandle`].
pub struct KeyZoneHandler {
    /// The zone being served.
    pub zone: SnapshotHandle,
}

/// An upper bound of the records' wire size (no name compression assumed).
fn wire_size(records: Option<&Record>) -> usize {
    records
        .iter()
        .map(|r| {
            let rdata = match &r.data {
                RData::TXT(t) => t.txt_data.iter().map(|s| 1 + s.len()).sum(),
                RData::SOA(s) => s.mname.len() + s.rname.len() + 4 + 20,
                RData::NS(NS(n)) => n.len() + 2,
                _ => 512,
            };
            r.name.len() + 2 + 10 + rdata
        })
        .sum()
}

/// The largest UDP answer we offer to EDNS clients (the DNS Flag Day 2020 recommendation).
const MAX_UDP_PAYLOAD: u16 = 1232;

#[async_trait::async_trait]
impl RequestHandler for KeyZoneHandler {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut response_handle: R,
    ) -> ResponseInfo {
        // hickory-server truncates UDP answers to the payload size of the response's EDNS
        // (512 without one), so mirror the client's, within the Flag Day limit.
        let edns: Option<Edns> = request.edns.as_ref().map(|q| {
            let mut e = Edns::new();
            e.set_max_payload(q.max_payload().clamp(512, MAX_UDP_PAYLOAD));
            e.set_version(0);
            e
        });
        let mut meta = Metadata::response_from_request(&request.metadata);
        let snapshot = self.zone.current();
        let (answers, authority) = match request.request_info() {
            _ if request.metadata.op_code != OpCode::Query => {
                meta.response_code = ResponseCode::NotImp;
                (None, None)
            }
            Ok(info) => {
                let (code, answers, authority, aa) =
                    snapshot.answer(info.query.name(), info.query.query_type());
                meta.response_code = code;
                meta.authoritative = aa;
                let limit = edns.as_ref().map_or(512, |e| usize::from(e.max_payload()));
                let size = 12
                    + info.query.name().len()
                    + 6
                    + wire_size(answers)
                    + wire_size(authority)
                    + 11;
                if info.protocol == Protocol::Udp && size > limit {
                    // hickory-server would truncate too, but it leaves the dropped records'
                    // bytes behind the header ("trailing data"); an empty TC answer is clean.
                    meta.truncation = true;
                    (None, None)
                } else {
                    (answers, authority)
                }
            }
            Err(_) => {
                meta.response_code = ResponseCode::FormErr;
                (None, None)
            }
        };
        let response = MessageResponseBuilder::new(&request.queries, edns.as_ref()).build(
            meta,
            answers,
            authority,
            [],
            [],
        );
        match response_handle.send_response(response).await {
            Ok(info) => info,
            Err(e) => {
                tracing::warn!(error = %e, "could not send a DNS response");
                let mut m = Metadata::response_from_request(&request.metadata);
                m.response_code = ResponseCode::ServFail;
                ResponseInfo::from(Header {
                    metadata: m,
                    counts: HeaderCounts::default(),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lower(s: &str) -> LowerName {
        LowerName::from(Name::from_ascii(s).unwrap())
    }

    #[test]
    fn answers_from_the_snapshot() {
        let keys = vec![("abc".to_owned(), vec![1u8; 294])];
        let z = Snapshot::build("dkim.example.test", &keys, 7).unwrap();
        let (code, ans, auth, aa) = z.answer(&lower("ABC.dkim.example.test."), RecordType::TXT);
        assert_eq!(
            (code, ans.is_some(), auth.is_some(), aa),
            (ResponseCode::NoError, true, false, true)
        );
        let RData::TXT(txt) = &ans.unwrap().data else {
            panic!()
        };
        assert_eq!(
            txt.txt_data.len(),
            2,
            "a 2048-bit key's value needs two strings"
        );
        assert!(txt.txt_data.iter().all(|s| s.len() <= 255));
        let (code, _, auth, _) = z.answer(&lower("nope.dkim.example.test."), RecordType::TXT);
        assert_eq!((code, auth.is_some()), (ResponseCode::NXDomain, true));
        let (code, ans, auth, _) = z.answer(&lower("abc.dkim.example.test."), RecordType::A);
        assert_eq!(
            (code, ans.is_some(), auth.map(|a| a.ttl)),
            (ResponseCode::NoError, false, Some(NEGATIVE_TTL))
        );
        let (code, ans, _, _) = z.answer(&lower("dkim.example.test."), RecordType::SOA);
        assert_eq!((code, ans.is_some()), (ResponseCode::NoError, true));
        let (code, _, _, aa) = z.answer(&lower("example.com."), RecordType::TXT);
        assert_eq!((code, aa), (ResponseCode::Refused, false));
    }
}
