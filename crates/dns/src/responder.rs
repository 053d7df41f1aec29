//! The key-zone responder: authoritative answers for `<token>.<zone>` TXT records from an
//! in-memory snapshot that the server replaces when the store's keys change, so no query ever
//! waits on the database. `respond` turns one query's bytes into the answer's bytes; the
//! sockets, TCP framing and rate limiting are `listener`'s. A UDP answer that would not fit
//! the client's payload size goes out empty with TC set, and the client retries over TCP
//! (RFC 1035 section 4.2.1, RFC 7766).

use crate::records::{dkim_txt_value, split_strings};
use hickory_proto::op::{Edns, Message, OpCode, ResponseCode, emit_message_parts};
use hickory_proto::rr::rdata::{MX, NS, SOA, TXT};
use hickory_proto::rr::{LowerName, Name, RData, Record, RecordType};
use hickory_proto::serialize::binary::BinEncoder;
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
    hosts: HashMap<LowerName, HostAnswers>,
    // The sandbox's zones (`sesame dev`): none outside the sandbox.
    sandbox: Option<crate::sandbox::SandboxZones>,
}

/// Records the zone serves at a name of its own beside the keys: the SPF domain's TXT, the
/// default MAIL FROM domain's MX and TXT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostRecord {
    /// The owner name, inside the zone.
    pub name: String,
    /// A TXT value, if any.
    pub txt: Option<String>,
    /// An MX record (preference, exchange), if any.
    pub mx: Option<(u16, String)>,
}

#[derive(Default)]
struct HostAnswers {
    txt: Option<Record>,
    mx: Option<Record>,
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
            hosts: HashMap::new(),
            sandbox: None,
        })
    }

    /// Also answers, authoritatively, for the sandbox's zones (`sesame dev` only).
    pub fn with_sandbox(mut self, zones: crate::sandbox::SandboxZones) -> Snapshot {
        self.sandbox = Some(zones);
        self
    }

    /// Also serves `records`; each name must be inside the zone and not a key's.
    pub fn with_hosts(mut self, records: &[HostRecord]) -> Result<Snapshot, ZoneError> {
        for r in records {
            let owner = name(&r.name)?;
            let lower = LowerName::from(&owner);
            if !self.apex.zone_of(&lower) || lower == self.apex {
                return Err(ZoneError(format!(
                    "{} is not a name inside the zone {}",
                    r.name, self.apex
                )));
            }
            let entry = self.hosts.entry(lower).or_default();
            if let Some(value) = &r.txt {
                entry.txt = Some(Record::from_rdata(
                    owner.clone(),
                    ZONE_TTL,
                    RData::TXT(TXT::new(split_strings(value))),
                ));
            }
            if let Some((preference, exchange)) = &r.mx {
                entry.mx = Some(Record::from_rdata(
                    owner.clone(),
                    ZONE_TTL,
                    RData::MX(MX::new(*preference, name(exchange)?)),
                ));
            }
        }
        Ok(self)
    }

    /// How many key records the snapshot serves.
    pub fn len(&self) -> usize {
        self.txt.len()
    }

    /// Whether it serves none.
    pub fn is_empty(&self) -> bool {
        self.txt.is_empty()
    }

    /// The public key (DER) the zone serves at `name` (`<token>.<zone>`), if any.
    pub fn served_key(&self, name: &str) -> Option<Vec<u8>> {
        let owner = LowerName::from(self::name(name).ok()?);
        let RData::TXT(txt) = &self.txt.get(&owner)?.data else {
            return None;
        };
        let strings: Vec<String> = txt
            .txt_data
            .iter()
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .collect();
        crate::records::published_key(&strings)
    }

    /// The answer to one question: (response code, answer, authority record, authoritative).
    /// Borrowed from the snapshot: a query copies no record.
    fn answer(
        &self,
        qname: &LowerName,
        qtype: RecordType,
    ) -> (ResponseCode, Option<&Record>, Option<&Record>, bool) {
        if !self.apex.zone_of(qname) {
            if let Some(answer) = self.sandbox.as_ref().and_then(|s| s.answer(qname, qtype)) {
                return answer;
            }
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
        if let Some(h) = self.hosts.get(qname) {
            let found = match qtype {
                RecordType::TXT => h.txt.as_ref(),
                RecordType::MX => h.mx.as_ref(),
                RecordType::ANY => h.txt.as_ref().or(h.mx.as_ref()),
                _ => None,
            };
            return match found {
                Some(record) => (ResponseCode::NoError, Some(record), None, true),
                None => (ResponseCode::NoError, None, negative, true),
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

/// An upper bound of the records' wire size (no name compression assumed).
fn wire_size(records: Option<&Record>) -> usize {
    records
        .iter()
        .map(|r| {
            let rdata = match &r.data {
                RData::TXT(t) => t.txt_data.iter().map(|s| 1 + s.len()).sum(),
                RData::SOA(s) => s.mname.len() + s.rname.len() + 4 + 20,
                RData::NS(NS(n)) => n.len() + 2,
                RData::MX(mx) => mx.exchange.len() + 4,
                RData::CNAME(c) => c.0.len() + 2,
                _ => 512,
            };
            r.name.len() + 2 + 10 + rdata
        })
        .sum()
}

/// The largest UDP answer we offer to EDNS clients (the DNS Flag Day 2020 recommendation).
const MAX_UDP_PAYLOAD: u16 = 1232;

/// The EDNS version we speak (RFC 6891).
const EDNS_VERSION: u8 = 0;

/// An error answer that echoes only the header's id and opcode: nothing of a malformed query
/// is parsed further or copied back.
fn bare_error(query: &[u8], code: ResponseCode) -> Option<Vec<u8>> {
    let id = u16::from_be_bytes([query[0], query[1]]);
    let op_code = OpCode::from_u8((query[2] >> 3) & 0x0f);
    Message::error_msg(id, op_code, code).to_vec().ok()
}

/// Answers one DNS message from `snapshot`: the bytes to send back, or `None` when nothing
/// should be sent (a response, or fewer bytes than a header). Pure: no I/O, no logging, so a
/// flood of malformed packets costs a parse and an answer, never a log line.
///
/// - malformed, or not exactly one question: FORMERR;
/// - an opcode other than QUERY: NOTIMP;
/// - EDNS of a version other than 0: BADVERS with our OPT (RFC 6891 section 6.1.3);
/// - over UDP, an answer that would not fit the client's payload size (512 without EDNS, at most
///   1232 with it) goes out empty with TC set, so the client retries over TCP.
pub fn respond(snapshot: &Snapshot, query: &[u8], tcp: bool) -> Option<Vec<u8>> {
    if query.len() < 12 || query[2] & 0x80 != 0 {
        return None;
    }
    let Ok(request) = Message::from_vec(query) else {
        return bare_error(query, ResponseCode::FormErr);
    };
    let mut response = Message::response(request.metadata.id, request.metadata.op_code);
    response.metadata.recursion_desired = request.metadata.recursion_desired;
    response.metadata.checking_disabled = request.metadata.checking_disabled;
    let mut limit = 512;
    if let Some(q) = &request.edns {
        let mut e = Edns::new();
        e.set_max_payload(MAX_UDP_PAYLOAD);
        e.set_version(EDNS_VERSION);
        response.set_edns(e);
        if q.version() != EDNS_VERSION {
            response.metadata.response_code = ResponseCode::BADVERS;
            return response.to_vec().ok();
        }
        limit = usize::from(q.max_payload().clamp(512, MAX_UDP_PAYLOAD));
    }
    if request.metadata.op_code != OpCode::Query {
        response.metadata.response_code = ResponseCode::NotImp;
        return response.to_vec().ok();
    }
    let [question] = request.queries.as_slice() else {
        response.metadata.response_code = ResponseCode::FormErr;
        return response.to_vec().ok();
    };
    let qname = LowerName::from(question.name());
    let (code, answer, authority, aa) = snapshot.answer(&qname, question.query_type());
    response.metadata.response_code = code;
    response.metadata.authoritative = aa;
    let size = 12 + qname.len() + 6 + wire_size(answer) + wire_size(authority) + 11;
    let (answer, authority) = if !tcp && size > limit {
        response.metadata.truncation = true;
        (None, None)
    } else {
        (answer, authority)
    };
    // Encoded straight from the snapshot's records: no record is copied per query.
    let mut out = Vec::with_capacity(size);
    emit_message_parts(
        &response.metadata,
        &mut std::iter::once(question),
        &mut answer.into_iter(),
        &mut authority.into_iter(),
        &mut std::iter::empty::<&Record>(),
        response.edns.as_ref(),
        None,
        &mut BinEncoder::new(&mut out),
    )
    .ok()?;
    Some(out)
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

#[cfg(test)]
mod host_tests {
    use super::*;

    #[test]
    fn host_records_answer_their_types_and_nodata_for_others() {
        let z = Snapshot::build("dkim.example.test", &[], 1)
            .unwrap()
            .with_hosts(&[
                HostRecord {
                    name: "spf.dkim.example.test".into(),
                    txt: Some("v=spf1 ip4:192.0.2.1 -all".into()),
                    mx: None,
                },
                HostRecord {
                    name: "bounce.dkim.example.test".into(),
                    txt: Some("v=spf1 include:spf.dkim.example.test -all".into()),
                    mx: Some((10, "feedback.example.test".into())),
                },
            ])
            .unwrap();
        let lower = |s: &str| LowerName::from(Name::from_ascii(s).unwrap());
        let (code, ans, _, _) = z.answer(&lower("SPF.dkim.example.test."), RecordType::TXT);
        let RData::TXT(txt) = &ans.unwrap().data else {
            panic!()
        };
        assert_eq!(code, ResponseCode::NoError);
        assert_eq!(txt.txt_data[0].as_ref(), b"v=spf1 ip4:192.0.2.1 -all");
        let (_, ans, _, _) = z.answer(&lower("bounce.dkim.example.test."), RecordType::MX);
        let RData::MX(mx) = &ans.unwrap().data else {
            panic!()
        };
        assert_eq!(mx.exchange.to_string(), "feedback.example.test.");
        let (code, ans, auth, _) = z.answer(&lower("spf.dkim.example.test."), RecordType::MX);
        assert_eq!(
            (code, ans.is_none(), auth.is_some()),
            (ResponseCode::NoError, true, true)
        );
        let outside = Snapshot::build("dkim.example.test", &[], 1)
            .unwrap()
            .with_hosts(&[HostRecord {
                name: "spf.example.test".into(),
                txt: Some("v=spf1 -all".into()),
                mx: None,
            }]);
        assert!(outside.is_err(), "a name outside the zone is refused");
    }
}

#[cfg(test)]
mod respond_tests {
    use super::*;
    use hickory_proto::op::{MessageType, Query};

    fn zone() -> Snapshot {
        // Bigger than a 2048-bit key, so the answer does not fit 512 bytes.
        Snapshot::build(
            "dkim.example.test",
            &[("abc".to_owned(), vec![7u8; 600])],
            1,
        )
        .unwrap()
    }

    fn query(name: &str, qtype: RecordType, edns: Option<(u8, u16)>) -> Message {
        let mut m = Message::new(4242, MessageType::Query, OpCode::Query);
        m.add_query(Query::query(Name::from_ascii(name).unwrap(), qtype));
        if let Some((version, payload)) = edns {
            let mut e = Edns::new();
            e.set_version(version);
            e.set_max_payload(payload);
            m.set_edns(e);
        }
        m
    }

    fn answer(z: &Snapshot, m: &Message, tcp: bool) -> Message {
        Message::from_vec(&respond(z, &m.to_vec().unwrap(), tcp).unwrap()).unwrap()
    }

    #[test]
    fn keys_over_tcp_and_big_udp_truncated_over_plain_udp() {
        let z = zone();
        let q = query("abc.dkim.example.test.", RecordType::TXT, None);
        let udp = answer(&z, &q, false);
        assert_eq!(udp.metadata.id, 4242);
        assert!(udp.metadata.truncation && udp.answers.is_empty());
        let tcp = answer(&z, &q, true);
        assert!(!tcp.metadata.truncation && tcp.answers.len() == 1);
        let edns = answer(
            &z,
            &query("abc.dkim.example.test.", RecordType::TXT, Some((0, 1232))),
            false,
        );
        assert_eq!(edns.answers.len(), 1);
        assert_eq!(edns.edns.as_ref().map(Edns::version), Some(0));
        assert_eq!(
            z.served_key("ABC.dkim.example.test"),
            Some(vec![7u8; 600]),
            "the key a verifier checks is the key the zone serves"
        );
        assert_eq!(z.served_key("xyz.dkim.example.test"), None);
    }

    /// The probe's packets: 100 questions, EDNS version 1, another opcode, and garbage; each
    /// gets its error, quietly (the function cannot log).
    #[test]
    fn malformed_queries_get_formerr_badvers_or_notimp() {
        let z = zone();
        let mut many = query("abc.dkim.example.test.", RecordType::TXT, None);
        for i in 0..99 {
            many.add_query(Query::query(
                Name::from_ascii(format!("q{i}.dkim.example.test.")).unwrap(),
                RecordType::TXT,
            ));
        }
        let r = answer(&z, &many, false);
        assert_eq!(r.metadata.response_code, ResponseCode::FormErr);
        assert!(r.answers.is_empty() && r.queries.is_empty());

        let r = answer(
            &z,
            &query("abc.dkim.example.test.", RecordType::TXT, Some((1, 1232))),
            false,
        );
        // 16 is both BADVERS and BADSIG; hickory reads it back as the latter.
        assert_eq!(u16::from(r.metadata.response_code), 16);
        assert_eq!(r.edns.as_ref().map(Edns::version), Some(0));
        assert!(r.answers.is_empty());

        let mut notify = query("dkim.example.test.", RecordType::SOA, None);
        notify.metadata.op_code = OpCode::Notify;
        assert_eq!(
            answer(&z, &notify, false).metadata.response_code,
            ResponseCode::NotImp
        );

        let mut garbage = vec![0x12, 0x34, 0x01, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0, 0];
        garbage.extend_from_slice(&[0xff; 40]);
        let r = Message::from_vec(&respond(&z, &garbage, false).unwrap()).unwrap();
        assert_eq!(r.metadata.id, 0x1234);
        assert_eq!(r.metadata.response_code, ResponseCode::FormErr);

        assert_eq!(
            respond(&z, &garbage[..11], false),
            None,
            "shorter than a header"
        );
        let mut reply = query("abc.dkim.example.test.", RecordType::TXT, None);
        reply.metadata.message_type = MessageType::Response;
        assert_eq!(
            respond(&z, &reply.to_vec().unwrap(), false),
            None,
            "responses are never answered (no reflection loops)"
        );
    }
}
