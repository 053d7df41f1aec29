//! Custom MAIL FROM domains and the records around them, as pure rules (issue 16): which domain
//! an identity may use as its envelope sender, whether an MX answer is the one SES would accept,
//! and what a domain's SPF and DMARC records say. Nothing here does a lookup: the verifier
//! observes, these functions judge, so every rule is table-tested without a DNS server.

use crate::error::Invalid;
use crate::model::{DomainName, IdentityName};

/// The MAIL FROM domain an identity asks for, checked as SES checks it: a valid host name that
/// is a subdomain of the identity's domain (of the address's domain for an address), never the
/// domain itself. Empty means "turn custom MAIL FROM off" (`None`).
pub fn mail_from_domain(
    identity: &IdentityName,
    requested: &str,
) -> Result<Option<DomainName>, Invalid> {
    if requested.is_empty() {
        return Ok(None);
    }
    let parent = match identity {
        IdentityName::Domain(d) => d.clone(),
        IdentityName::Email(e) => e.domain(),
    };
    let domain = DomainName::parse(requested)?;
    let is_sub = domain
        .as_str()
        .strip_suffix(parent.as_str())
        .is_some_and(|head| head.len() > 1 && head.ends_with('.'));
    if !is_sub {
        return Err(Invalid::MailFromNotSubdomain {
            mail_from: domain.as_str().to_owned(),
            domain: parent.as_str().to_owned(),
        });
    }
    Ok(Some(domain))
}

/// Whether `exchange` (an MX record's host) names `expected`: case-insensitive, a trailing
/// dot or none.
fn same_host(exchange: &str, expected: &str) -> bool {
    let norm = |s: &str| s.trim_end_matches('.').to_ascii_lowercase();
    norm(exchange) == norm(expected)
}

/// Whether the MAIL FROM domain's MX answer points at `expected` (where bounces are received):
/// SES calls the domain verified when one of its MX records names that host, whatever the
/// preference.
pub fn mx_points_at(exchanges: &[String], expected: &str) -> bool {
    exchanges.iter().any(|e| same_host(e, expected))
}

/// The DMARC record Sesame recommends where a domain has none: quarantine what fails, with
/// relaxed alignment (DKIM and the MAIL FROM subdomain both align under it).
pub const DMARC_RECOMMENDED: &str = "v=DMARC1; p=quarantine; adkim=r; aspf=r";

/// The TXT value a customer publishes on the MAIL FROM domain.
pub fn spf_record(spf_domain: &str) -> String {
    format!("v=spf1 include:{spf_domain} ~all")
}

/// What a domain's SPF record (RFC 7208) says about Sesame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpfFinding {
    /// One SPF record, and it includes the SPF domain.
    Found,
    /// No TXT record starts with `v=spf1`.
    Missing,
    /// One SPF record, without `include:<spf-domain>` (the record, as seen).
    Wrong(String),
    /// More than one SPF record: every receiver's check is a permanent error (RFC 7208
    /// section 4.5).
    Multiple(usize),
}

/// Whether a TXT value is an SPF record: `v=spf1` alone or followed by a space (RFC 7208
/// section 4.5; case-insensitive).
fn is_spf(txt: &str) -> bool {
    let t = txt.trim_start();
    t.len() >= 6
        && t[..6].eq_ignore_ascii_case("v=spf1")
        && t[6..].chars().next().is_none_or(|c| c == ' ')
}

/// Judges the TXT values of a domain against `include:<spf_domain>`.
pub fn spf_check(txts: &[String], spf_domain: &str) -> SpfFinding {
    let spf: Vec<&String> = txts.iter().filter(|t| is_spf(t)).collect();
    match spf.as_slice() {
        [] => SpfFinding::Missing,
        [one] => {
            let included = one.split_ascii_whitespace().any(|term| {
                // `include:`, with the default `+` qualifier or an explicit one.
                let term = term.strip_prefix('+').unwrap_or(term);
                term.len() > 8
                    && term[..8].eq_ignore_ascii_case("include:")
                    && same_host(&term[8..], spf_domain)
            });
            if included {
                SpfFinding::Found
            } else {
                SpfFinding::Wrong((*one).clone())
            }
        }
        many => SpfFinding::Multiple(many.len()),
    }
}

/// A DMARC policy (`p=`, RFC 7489 section 6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DmarcPolicy {
    /// `p=none`: reports only.
    None,
    /// `p=quarantine`.
    Quarantine,
    /// `p=reject`.
    Reject,
}

/// What `_dmarc.<domain>` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DmarcFinding {
    /// No record starts with `v=DMARC1` (or more than one does, which receivers treat as
    /// none: RFC 7489 section 6.6.3).
    Missing,
    /// A DMARC record without a valid `p=` (the record, as seen).
    Unparsable(String),
    /// A valid record and its policy.
    Policy(DmarcPolicy),
}

/// Judges the TXT values at `_dmarc.<domain>`.
pub fn dmarc_check(txts: &[String]) -> DmarcFinding {
    let records: Vec<&String> = txts
        .iter()
        .filter(|t| {
            let first = t.split(';').next().unwrap_or("").replace(' ', "");
            first == "v=DMARC1"
        })
        .collect();
    let [record] = records.as_slice() else {
        return DmarcFinding::Missing;
    };
    // `v=` must come first and `p=` right after it (RFC 7489 section 6.4).
    let mut tags = record
        .split(';')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .skip(1);
    let policy = tags.next().and_then(|t| {
        let (k, v) = t.split_once('=')?;
        if k.trim() != "p" {
            return None;
        }
        match v.trim().to_ascii_lowercase().as_str() {
            "none" => Some(DmarcPolicy::None),
            "quarantine" => Some(DmarcPolicy::Quarantine),
            "reject" => Some(DmarcPolicy::Reject),
            _ => None,
        }
    });
    match policy {
        Some(p) => DmarcFinding::Policy(p),
        None => DmarcFinding::Unparsable((*record).clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> IdentityName {
        IdentityName::parse(s).unwrap()
    }

    #[test]
    fn a_mail_from_domain_is_a_proper_subdomain_of_the_identitys_domain() {
        let ok = |id: &str, mf: &str| {
            mail_from_domain(&name(id), mf)
                .unwrap()
                .map(|d| d.as_str().to_owned())
        };
        assert_eq!(
            ok("example.com", "bounce.example.com").as_deref(),
            Some("bounce.example.com")
        );
        assert_eq!(
            ok("example.com", "A.B.Example.COM.").as_deref(),
            Some("a.b.example.com")
        );
        assert_eq!(
            ok("me@example.com", "mail.example.com").as_deref(),
            Some("mail.example.com")
        );
        assert_eq!(ok("example.com", ""), None, "empty turns it off");
        let not_sub = |id: &str, mf: &str| {
            matches!(
                mail_from_domain(&name(id), mf),
                Err(Invalid::MailFromNotSubdomain { .. })
            )
        };
        assert!(not_sub("example.com", "example.com"), "the domain itself");
        assert!(
            not_sub("example.com", "badexample.com"),
            "a suffix is not a subdomain"
        );
        assert!(not_sub("example.com", "example.org"));
        assert!(
            not_sub("sub.example.com", "example.com"),
            "a parent is not a subdomain"
        );
        assert!(not_sub("me@example.com", "bounce.other.com"));
        assert!(matches!(
            mail_from_domain(&name("example.com"), "bad_label.example.com"),
            Err(Invalid::DomainLabel(_))
        ));
        assert!(matches!(
            mail_from_domain(&name("example.com"), "-x.example.com"),
            Err(Invalid::DomainLabel(_))
        ));
    }

    #[test]
    fn an_mx_answer_counts_when_one_exchange_is_the_bounce_host() {
        let mx = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert!(mx_points_at(
            &mx(&["feedback.sesame.example."]),
            "feedback.sesame.example"
        ));
        assert!(mx_points_at(
            &mx(&["other.example", "FEEDBACK.sesame.example"]),
            "feedback.sesame.example."
        ));
        assert!(!mx_points_at(&mx(&[]), "feedback.sesame.example"));
        assert!(!mx_points_at(
            &mx(&["feedback.sesame.example.evil"]),
            "feedback.sesame.example"
        ));
    }

    #[test]
    fn spf_records_are_found_missing_wrong_or_too_many() {
        let t = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let d = "spf.dkim.sesame.example";
        assert_eq!(spf_check(&t(&[&spf_record(d)]), d), SpfFinding::Found);
        assert_eq!(
            spf_check(&t(&["V=SPF1 +include:SPF.dkim.sesame.example. -all"]), d),
            SpfFinding::Found
        );
        assert_eq!(
            spf_check(&t(&["google-site-verification=x"]), d),
            SpfFinding::Missing
        );
        assert_eq!(
            spf_check(&t(&["v=spf10 include:spf.dkim.sesame.example"]), d),
            SpfFinding::Missing
        );
        assert_eq!(
            spf_check(&t(&["v=spf1 include:amazonses.com ~all"]), d),
            SpfFinding::Wrong("v=spf1 include:amazonses.com ~all".into())
        );
        assert_eq!(
            spf_check(&t(&["v=spf1 -include:spf.dkim.sesame.example"]), d),
            SpfFinding::Wrong("v=spf1 -include:spf.dkim.sesame.example".into())
        );
        assert_eq!(
            spf_check(&t(&[&spf_record(d), "v=spf1 mx -all", "other"]), d),
            SpfFinding::Multiple(2)
        );
    }

    #[test]
    fn dmarc_records_give_a_policy_or_say_why_not() {
        let t = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(
            dmarc_check(&t(&["v=DMARC1; p=reject; rua=mailto:d@example.com"])),
            DmarcFinding::Policy(DmarcPolicy::Reject)
        );
        assert_eq!(
            dmarc_check(&t(&["v=DMARC1;p=none"])),
            DmarcFinding::Policy(DmarcPolicy::None)
        );
        assert_eq!(
            dmarc_check(&t(&["v=DMARC1; p=Quarantine"])),
            DmarcFinding::Policy(DmarcPolicy::Quarantine)
        );
        assert_eq!(dmarc_check(&t(&[])), DmarcFinding::Missing);
        assert_eq!(dmarc_check(&t(&["v=spf1 -all"])), DmarcFinding::Missing);
        assert_eq!(
            dmarc_check(&t(&["v=DMARC1; p=reject", "v=DMARC1; p=none"])),
            DmarcFinding::Missing,
            "two records are none"
        );
        assert_eq!(
            dmarc_check(&t(&["v=DMARC1; rua=mailto:x@example.com"])),
            DmarcFinding::Unparsable("v=DMARC1; rua=mailto:x@example.com".into())
        );
        assert_eq!(
            dmarc_check(&t(&["v=DMARC1; p=block"])),
            DmarcFinding::Unparsable("v=DMARC1; p=block".into())
        );
        assert_eq!(
            dmarc_check(&t(&["v=DMARC1 p=reject"])),
            DmarcFinding::Missing,
            "a provider that stripped the ';'"
        );
    }
}
