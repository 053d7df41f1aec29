//! Sesame's metrics, in one registry encoded in the Prometheus/OpenMetrics text format by
//! `prometheus-client`. The hot paths (an API request, a DNS answer) touch only atomics and,
//! for requests, one read-locked map lookup: DNS answers count into counters made up front,
//! one per RCODE, so a query never hashes or allocates a label set.
//!
//! The gauges that describe stored state (identities by status, keys ready in the pool) are
//! set by the scraper just before encoding, from the store and the pool, so every node
//! reports what the shared database holds rather than what it saw happen.
#![warn(missing_docs)]

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::fmt::Write as _;

/// The content type of [`Metrics::encode`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A label value that is a `&'static str` (an operation name, a status), so recording one
/// never allocates.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
struct Name(&'static str);

impl EncodeLabelValue for Name {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        encoder.write_str(self.0)
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    operation: Name,
    status: u32,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabels {
    operation: Name,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct IdentityLabels {
    r#type: Name,
    dkim_status: Name,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: Name,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KeyLengthLabels {
    key_length: Name,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RcodeLabels {
    rcode: Name,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: Name,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VersionLabels {
    version: Name,
}

/// RFC 1035 and RFC 6895 names of the RCODEs a 4-bit header field carries; `None` for the
/// unassigned values, which count as `OTHER`.
fn rcode_name(rcode: u8) -> Option<&'static str> {
    Some(match rcode {
        0 => "NOERROR",
        1 => "FORMERR",
        2 => "SERVFAIL",
        3 => "NXDOMAIN",
        4 => "NOTIMP",
        5 => "REFUSED",
        6 => "YXDOMAIN",
        7 => "YXRRSET",
        8 => "NXRRSET",
        9 => "NOTAUTH",
        10 => "NOTZONE",
        _ => return None,
    })
}

/// What became of a SendEmail request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmailResult {
    /// Signed and handed to the outbox or the relay.
    Sent,
    /// Refused for the caller's mistake (a 4xx: unverified sender, bad message, throttled).
    Rejected,
    /// Sesame or the relay failed (a 5xx).
    Failed,
}

impl EmailResult {
    /// The result a SendEmail answer with this HTTP status stands for.
    pub fn of_status(status: u16) -> EmailResult {
        match status {
            200..=299 => EmailResult::Sent,
            400..=499 => EmailResult::Rejected,
            _ => EmailResult::Failed,
        }
    }

    fn label(self) -> &'static str {
        match self {
            EmailResult::Sent => "sent",
            EmailResult::Rejected => "rejected",
            EmailResult::Failed => "failed",
        }
    }
}

/// One identity count for [`Metrics::set_identities`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdentityGauge {
    /// `DOMAIN` or `EMAIL_ADDRESS`.
    pub identity_type: &'static str,
    /// The SES DKIM status, or `NONE`.
    pub dkim_status: &'static str,
    /// How many.
    pub count: u64,
}

/// Every metric Sesame exports.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    durations: Family<OperationLabels, Histogram>,
    identities: Family<IdentityLabels, Gauge>,
    /// The identity label sets set so far, zeroed before each refresh.
    identity_labels: std::sync::Mutex<Vec<IdentityLabels>>,
    checks: Family<OutcomeLabels, Counter>,
    key_pool: Family<KeyLengthLabels, Gauge>,
    dns: [Counter; 16],
    emails: Family<ResultLabels, Counter>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

fn duration_histogram() -> Histogram {
    // 250 µs to about 4 s: a read from the page cache to a 2048-bit key generated on request.
    Histogram::new(exponential_buckets(0.000_25, 2.0, 15))
}

impl Metrics {
    /// A registry with every metric, `sesame_build_info` set for `version`.
    pub fn new(version: &'static str) -> Metrics {
        let mut registry = Registry::with_prefix("sesame");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "API requests answered, by SES operation (unknown before routing) and HTTP status",
            requests.clone(),
        );
        let durations = Family::<OperationLabels, Histogram>::new_with_constructor(
            duration_histogram as fn() -> Histogram,
        );
        registry.register(
            "http_request_duration_seconds",
            "Time from a request's arrival to its answer, by SES operation",
            durations.clone(),
        );
        let identities = Family::<IdentityLabels, Gauge>::default();
        registry.register(
            "identities",
            "Identities in the store, by type and DKIM status (NONE for addresses)",
            identities.clone(),
        );
        let checks = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "verification_checks",
            "DNS verification checks done by this node, by the status they left (stale: the identity changed meanwhile; error: not recorded)",
            checks.clone(),
        );
        let key_pool = Family::<KeyLengthLabels, Gauge>::default();
        registry.register(
            "key_pool_available",
            "Easy DKIM key pairs generated and ready, by key length",
            key_pool.clone(),
        );
        let dns_family = Family::<RcodeLabels, Counter>::default();
        let dns = std::array::from_fn(|i| {
            let name = u8::try_from(i).ok().and_then(rcode_name).unwrap_or("OTHER");
            dns_family
                .get_or_create(&RcodeLabels { rcode: Name(name) })
                .clone()
        });
        registry.register(
            "dns_queries",
            "Queries the key-zone responder answered, by RCODE",
            dns_family,
        );
        let emails = Family::<ResultLabels, Counter>::default();
        for r in [
            EmailResult::Sent,
            EmailResult::Rejected,
            EmailResult::Failed,
        ] {
            let _ = emails.get_or_create(&ResultLabels {
                result: Name(r.label()),
            });
        }
        registry.register(
            "emails",
            "SendEmail requests, by result: sent, rejected (the caller's mistake), failed",
            emails.clone(),
        );
        let build = Family::<VersionLabels, Gauge>::default();
        build
            .get_or_create(&VersionLabels {
                version: Name(version),
            })
            .set(1);
        registry.register("build_info", "The running version (always 1)", build);
        Metrics {
            registry,
            requests,
            durations,
            identities,
            identity_labels: std::sync::Mutex::new(Vec::new()),
            checks,
            key_pool,
            dns,
            emails,
        }
    }

    /// Counts an answered API request.
    pub fn http_request(&self, operation: &'static str, status: u16, seconds: f64) {
        let operation = Name(operation);
        self.requests
            .get_or_create(&RequestLabels {
                operation,
                status: u32::from(status),
            })
            .inc();
        self.durations
            .get_or_create(&OperationLabels { operation })
            .observe(seconds);
    }

    /// Counts a SendEmail result.
    pub fn email(&self, result: EmailResult) {
        self.emails
            .get_or_create(&ResultLabels {
                result: Name(result.label()),
            })
            .inc();
    }

    /// Counts a key-zone answer by the RCODE in its header (the low 4 bits of byte 3).
    pub fn dns_response(&self, rcode: u8) {
        self.dns[usize::from(rcode & 0x0f)].inc();
    }

    /// Counts a verification check by the status it left, `stale` or `error`.
    pub fn verification_check(&self, outcome: &'static str) {
        self.checks
            .get_or_create(&OutcomeLabels {
                outcome: Name(outcome),
            })
            .inc();
    }

    /// Replaces the identity gauges with `counts` (a status that has none left reads 0
    /// rather than vanishing, once it was seen).
    pub fn set_identities(&self, counts: &[IdentityGauge]) {
        let mut seen = self
            .identity_labels
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for labels in seen.iter() {
            self.identities.get_or_create(labels).set(0);
        }
        for c in counts {
            let labels = IdentityLabels {
                r#type: Name(c.identity_type),
                dkim_status: Name(c.dkim_status),
            };
            self.identities
                .get_or_create(&labels)
                .inc_by(i64::try_from(c.count).unwrap_or(i64::MAX));
            if !seen.contains(&labels) {
                seen.push(labels);
            }
        }
    }

    /// Sets the key pool's gauge for `key_length` (`1024`, `2048`).
    pub fn set_key_pool(&self, key_length: &'static str, available: usize) {
        self.key_pool
            .get_or_create(&KeyLengthLabels {
                key_length: Name(key_length),
            })
            .set(i64::try_from(available).unwrap_or(i64::MAX));
    }

    /// Every metric in the text format, ending in `# EOF`.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
        text.lines().find(|l| l.starts_with(prefix))
    }

    #[test]
    fn every_metric_is_named_as_documented_and_counts() {
        let m = Metrics::new("1.2.3");
        m.http_request("GetEmailIdentity", 200, 0.001);
        m.http_request("GetEmailIdentity", 200, 0.002);
        m.http_request("unknown", 403, 0.0001);
        m.email(EmailResult::of_status(200));
        m.email(EmailResult::of_status(400));
        m.dns_response(0);
        m.dns_response(3);
        m.dns_response(3);
        m.dns_response(15);
        m.verification_check("success");
        m.set_identities(&[IdentityGauge {
            identity_type: "DOMAIN",
            dkim_status: "PENDING",
            count: 7,
        }]);
        m.set_key_pool("2048", 5);
        let t = m.encode();
        let want = [
            "sesame_http_requests_total{operation=\"GetEmailIdentity\",status=\"200\"} 2",
            "sesame_http_requests_total{operation=\"unknown\",status=\"403\"} 1",
            "sesame_http_request_duration_seconds_count{operation=\"GetEmailIdentity\"} 2",
            "sesame_emails_total{result=\"sent\"} 1",
            "sesame_emails_total{result=\"rejected\"} 1",
            "sesame_emails_total{result=\"failed\"} 0",
            "sesame_dns_queries_total{rcode=\"NOERROR\"} 1",
            "sesame_dns_queries_total{rcode=\"NXDOMAIN\"} 2",
            "sesame_dns_queries_total{rcode=\"OTHER\"} 1",
            "sesame_verification_checks_total{outcome=\"success\"} 1",
            "sesame_identities{type=\"DOMAIN\",dkim_status=\"PENDING\"} 7",
            "sesame_key_pool_available{key_length=\"2048\"} 5",
            "sesame_build_info{version=\"1.2.3\"} 1",
        ];
        for w in want {
            assert!(t.lines().any(|l| l == w), "missing {w:?} in\n{t}");
        }
        assert!(t.ends_with("# EOF\n"));
        // A status that emptied reads 0.
        m.set_identities(&[]);
        let t = m.encode();
        assert_eq!(
            line(&t, "sesame_identities{"),
            Some("sesame_identities{type=\"DOMAIN\",dkim_status=\"PENDING\"} 0")
        );
    }
}
