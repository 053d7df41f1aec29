//! The key-zone responder's packet handling, `sesame_dns::responder::respond`, on arbitrary
//! bytes over UDP and TCP (first input byte, bit 0). Every answer must parse back with
//! hickory-proto, carry the query's id and opcode, be a response, fit the client's UDP payload
//! size (512 without EDNS, at most 1232 with it), never be truncated over TCP, echo the one
//! question of a well-formed query, and serve exactly the snapshot's record for its name.
#![no_main]

use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::{LowerName, RData, RecordType};
use libfuzzer_sys::fuzz_target;
use sesame_dns::records::published_key;
use sesame_dns::responder::{Snapshot, respond};
use std::str::FromStr;
use std::sync::OnceLock;

const ZONE: &str = "dkim.sesame.test";

/// Tokens and key sizes of the seeds: an RSA-1024 SubjectPublicKeyInfo (162 bytes, fits 512
/// bytes over UDP) and an RSA-2048 one (294 bytes, needs EDNS or TCP).
fn keys() -> &'static [(String, Vec<u8>)] {
    static KEYS: OnceLock<Vec<(String, Vec<u8>)>> = OnceLock::new();
    KEYS.get_or_init(|| {
        vec![
            (
                "abcdefghijabcdefghijabcdefghijab".to_owned(),
                vec![0x11; 162],
            ),
            (
                "ffffffffffffffffffffffffffffffff".to_owned(),
                vec![0x22; 294],
            ),
        ]
    })
}

fn snapshot() -> &'static Snapshot {
    static SNAPSHOT: OnceLock<Snapshot> = OnceLock::new();
    SNAPSHOT.get_or_init(|| Snapshot::build(ZONE, keys(), 7).expect("the seeds' zone builds"))
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, query)) = data.split_first() else {
        return;
    };
    let tcp = mode & 1 == 1;
    let answer = respond(snapshot(), query, tcp);
    if query.len() < 12 || query[2] & 0x80 != 0 {
        assert!(answer.is_none(), "answered a response or a runt: {query:?}");
        return;
    }
    let bytes = answer.expect("every query is answered");
    let response = Message::from_vec(&bytes)
        .unwrap_or_else(|e| panic!("the answer does not parse ({e}): {bytes:?}"));
    assert_eq!(
        response.metadata.id,
        u16::from_be_bytes([query[0], query[1]])
    );
    assert_eq!(response.metadata.message_type, MessageType::Response);
    assert_eq!(
        (bytes[2] >> 3) & 0x0f,
        (query[2] >> 3) & 0x0f,
        "opcode not echoed"
    );
    let request = Message::from_vec(query).ok();
    let limit = match request.as_ref().and_then(|r| r.edns.as_ref()) {
        Some(e) => usize::from(e.max_payload().clamp(512, 1232)),
        None => 512,
    };
    if tcp {
        assert!(!response.metadata.truncation, "truncated over TCP");
        assert!(bytes.len() <= usize::from(u16::MAX));
    } else {
        assert!(
            bytes.len() <= limit,
            "a {}-byte UDP answer over the {limit}-byte limit",
            bytes.len()
        );
    }
    if response.metadata.truncation {
        assert!(response.answers.is_empty() && response.authorities.is_empty());
    }
    let Some(request) = request else {
        assert_eq!(response.metadata.response_code, ResponseCode::FormErr);
        return;
    };
    if response.metadata.response_code == ResponseCode::NoError && !response.queries.is_empty() {
        let [question] = request.queries.as_slice() else {
            panic!("answered a query with {} questions", request.queries.len());
        };
        // Byte for byte, case included: resolvers using 0x20 randomisation check the case.
        let [echoed] = response.queries.as_slice() else {
            panic!("{} questions echoed", response.queries.len());
        };
        assert_eq!(
            (
                echoed.name().to_ascii(),
                echoed.query_type(),
                echoed.query_class()
            ),
            (
                question.name().to_ascii(),
                question.query_type(),
                question.query_class()
            ),
            "question not echoed"
        );
        let qname = LowerName::from(question.name());
        for record in &response.answers {
            assert_eq!(
                LowerName::from(&record.name),
                qname,
                "an answer for another name"
            );
            if let RData::TXT(txt) = &record.data {
                assert!(matches!(
                    question.query_type(),
                    RecordType::TXT | RecordType::ANY
                ));
                let strings: Vec<String> = txt
                    .txt_data
                    .iter()
                    .map(|s| String::from_utf8_lossy(s).into_owned())
                    .collect();
                let key = published_key(&strings).expect("a served TXT has a p= key");
                let expected = keys().iter().find(|(token, _)| {
                    LowerName::from_str(&format!("{token}.{ZONE}."))
                        .ok()
                        .as_ref()
                        == Some(&qname)
                });
                assert_eq!(
                    Some(&key),
                    expected.map(|(_, der)| der),
                    "served another key"
                );
            }
        }
    }
});
