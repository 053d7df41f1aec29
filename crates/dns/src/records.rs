//! DKIM record text: the `v=DKIM1; k=rsa; p=…` value and its split into DNS character-strings,
//! zone-file lines for `sesame dns-records`, and the tag parsing the verifier uses to compare a
//! published key with the expected one (RFC 6376 section 3.6.1).

use crate::update::UpdateRecord;
use sesame_core::mail_from;
use sesame_core::verification::{Expect, ExpectedRecord, RecordCheck};

/// The longest DNS character-string (RFC 1035 section 3.3: one length octet).
pub const MAX_STRING: usize = 255;

/// The TXT value that publishes a DKIM public key.
pub fn dkim_txt_value(public_der: &[u8]) -> String {
    format!(
        "v=DKIM1; k=rsa; p={}",
        data_encoding::BASE64.encode(public_der)
    )
}

/// Splits a TXT value into character-strings of at most 255 bytes; receivers concatenate them
/// (RFC 6376 section 3.6.2.2). The value is ASCII, so any byte boundary is a char boundary.
pub fn split_strings(value: &str) -> Vec<String> {
    value
        .as_bytes()
        .chunks(MAX_STRING)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect()
}

/// TTL suggested for the customer's records.
pub const RECORD_TTL: u32 = 1800;

/// One zone-file line for an expected record, e.g.
/// `abc._domainkey.example.com. 1800 IN CNAME abc.dkim.sesame.internal.`.
pub fn zone_line(record: &ExpectedRecord) -> String {
    let (name, rtype, value) = record_parts(record);
    let value = match &record.expect {
        // Host names in a zone file are absolute.
        Expect::Cname { .. } | Expect::Mx { .. } => format!("{value}."),
        _ => value,
    };
    format!("{name}. {RECORD_TTL} IN {rtype} {value}")
}

/// The preference of the MX record a MAIL FROM domain publishes (SES's documentation uses 10;
/// any preference is accepted).
pub const MX_PREFERENCE: u16 = 10;

fn quoted(value: &str) -> String {
    let strings: Vec<String> = split_strings(value)
        .into_iter()
        .map(|s| format!("\"{s}\""))
        .collect();
    strings.join(" ")
}

/// A record's parts as a person publishes them: the owner name, the type and the value (a
/// TXT value as its quoted character-strings, as zone files and DNS consoles take it).
pub fn record_parts(record: &ExpectedRecord) -> (String, &'static str, String) {
    let name = record.name.clone();
    match &record.expect {
        Expect::Cname { target, .. } => (name, "CNAME", target.clone()),
        Expect::DkimKey { public_der } => (name, "TXT", quoted(&dkim_txt_value(public_der))),
        Expect::Mx { exchange } => (name, "MX", format!("{MX_PREFERENCE} {exchange}")),
        Expect::Spf { include } => (name, "TXT", quoted(&mail_from::spf_record(include))),
        Expect::Dmarc => (name, "TXT", quoted(mail_from::DMARC_RECOMMENDED)),
    }
}

/// The record a DNS publisher adds for `record`: each kind `dns-records` prints, except a
/// BYODKIM key unless `byodkim` (the key is the customer's, published only when asked) and the
/// DMARC record (its policy is the customer's decision; it stays a recommendation).
pub fn update_record(record: &ExpectedRecord, byodkim: bool) -> Option<UpdateRecord> {
    let name = record.name.clone();
    Some(match &record.expect {
        Expect::Cname { target, .. } => UpdateRecord::Cname {
            name,
            target: target.clone(),
        },
        Expect::DkimKey { public_der } if byodkim => UpdateRecord::Txt {
            name,
            strings: split_strings(&dkim_txt_value(public_der)),
        },
        Expect::Mx { exchange } => UpdateRecord::Mx {
            name,
            preference: MX_PREFERENCE,
            exchange: exchange.clone(),
        },
        Expect::Spf { include } => UpdateRecord::Txt {
            name,
            strings: vec![mail_from::spf_record(include)],
        },
        Expect::DkimKey { .. } | Expect::Dmarc => return None,
    })
}

/// What a record is for, in `sesame dns-records`' words.
pub fn purpose(record: &ExpectedRecord) -> &'static str {
    match &record.expect {
        Expect::Cname { .. } | Expect::DkimKey { .. } => "DKIM",
        Expect::Mx { .. } => "MAIL FROM (decides MailFromDomainStatus)",
        Expect::Spf { .. } => "MAIL FROM SPF (recommended)",
        Expect::Dmarc => "DMARC (recommended)",
    }
}

/// Whether a record was found as it must be, for a person: `found`, `missing: …`,
/// `wrong value: …`, `weak: …` or `unknown: …` (the words of `sesame dns-records --check` and
/// the console).
pub fn describe(check: &RecordCheck) -> String {
    match check {
        RecordCheck::Valid => "found".to_owned(),
        RecordCheck::HostNotFound => "missing: the name does not exist (NXDOMAIN)".to_owned(),
        RecordCheck::TypeNotFound => "missing: the name has no record of this type".to_owned(),
        RecordCheck::Wrong(seen) => format!("wrong value: found {seen}"),
        RecordCheck::Several(n) => {
            format!("wrong value: {n} records of this kind, where receivers allow one")
        }
        RecordCheck::Weak(seen) => format!("weak: found {seen}"),
        RecordCheck::ServerError(why) => format!("unknown: the resolver failed ({why})"),
    }
}

/// The tags of a DKIM key record (`tag=value` separated by `;`, whitespace ignored).
pub fn dkim_tags(value: &str) -> Vec<(String, String)> {
    value
        .split(';')
        .filter_map(|t| {
            let (k, v) = t.split_once('=')?;
            let v: String = v.chars().filter(|c| !c.is_whitespace()).collect();
            Some((k.trim().to_owned(), v))
        })
        .collect()
}

/// The decoded `p=` key of a DKIM TXT value given as its character-strings, if any.
pub fn published_key(strings: &[String]) -> Option<Vec<u8>> {
    let joined: String = strings.concat();
    let tags = dkim_tags(&joined);
    let p = tags.iter().find(|(k, _)| k == "p")?;
    data_encoding::BASE64.decode(p.1.as_bytes()).ok()
}

/// Compares names as DNS does: case-insensitively, with or without the trailing dot.
pub fn same_name(a: &str, b: &str) -> bool {
    a.trim_end_matches('.')
        .eq_ignore_ascii_case(b.trim_end_matches('.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_2048_bit_key_is_split_into_255_byte_strings() {
        let der = vec![7u8; 294]; // the size of an RSA-2048 SubjectPublicKeyInfo
        let value = dkim_txt_value(&der);
        assert_eq!(value.len(), 18 + 392);
        let parts = split_strings(&value);
        assert_eq!(
            parts.iter().map(String::len).collect::<Vec<_>>(),
            [255, 155]
        );
        assert_eq!(parts.concat(), value);
        assert_eq!(published_key(&parts), Some(der));
    }

    #[test]
    fn tags_tolerate_whitespace_and_order() {
        let s = vec!["k=rsa; p=AAE C".to_owned(), "; v=DKIM1".to_owned()];
        assert_eq!(published_key(&s), Some(vec![0, 1, 2]));
        assert_eq!(published_key(&["v=DKIM1; k=rsa".to_owned()]), None);
        assert!(same_name("A.Example.COM.", "a.example.com"));
    }

    #[test]
    fn zone_lines() {
        let cname = ExpectedRecord {
            name: "tok._domainkey.example.com".into(),
            expect: Expect::Cname {
                target: "tok.dkim.example.net".into(),
                public_der: vec![1, 2, 3],
            },
        };
        assert_eq!(
            zone_line(&cname),
            "tok._domainkey.example.com. 1800 IN CNAME tok.dkim.example.net."
        );
        let txt = ExpectedRecord {
            name: "sel._domainkey.example.com".into(),
            expect: Expect::DkimKey {
                public_der: vec![0, 1, 2],
            },
        };
        assert_eq!(
            zone_line(&txt),
            "sel._domainkey.example.com. 1800 IN TXT \"v=DKIM1; k=rsa; p=AAEC\""
        );
    }
}
