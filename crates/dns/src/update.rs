//! RFC 2136 dynamic updates to a customer's authoritative server, signed with TSIG (RFC 8945):
//! how Sesame publishes the records an identity needs into a zone it does not serve.
//!
//! Messages are built by hickory-proto (`op::update_message`) and signed by its `TSigner`;
//! this module only carries them over TCP (no spoofing window, no size limit; servers accept
//! updates over both) and reads the answer. The answer is parsed before its signature is
//! checked: a server refusing our key answers NOTAUTH with an unsigned TSIG carrying the
//! reason (BADSIG, BADKEY, BADTIME), which a signature check would only report as a bad MAC.

use hickory_proto::op::{Message, MessageType, Query, ResponseCode, UpdateMessage, update_message};
use hickory_proto::rr::rdata::tsig::{TsigAlgorithm, TsigError};
use hickory_proto::rr::rdata::{CNAME, MX, TXT};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordSet, RecordType, TSigner};
use std::fmt;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Where and how to send updates for one zone. Its `Debug` never shows the secret.
#[derive(Clone)]
pub struct UpdateTarget {
    /// The primary server that accepts updates (`HOST:PORT`).
    pub server: SocketAddr,
    /// The zone the records are in.
    pub zone: String,
    /// The TSIG key's name, as the server knows it.
    pub key_name: String,
    /// The TSIG key's secret (raw bytes, not base64).
    pub secret: Vec<u8>,
    /// How long one exchange may take.
    pub timeout: Duration,
}

impl fmt::Debug for UpdateTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpdateTarget")
            .field("server", &self.server)
            .field("zone", &self.zone)
            .field("key_name", &self.key_name)
            .finish_non_exhaustive()
    }
}

/// One record to publish or remove.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpdateRecord {
    /// `name CNAME target` (Easy DKIM).
    Cname {
        /// The owner name.
        name: String,
        /// The target.
        target: String,
    },
    /// `name TXT "…"` (a BYODKIM key, SPF), its strings as given.
    Txt {
        /// The owner name.
        name: String,
        /// The character strings.
        strings: Vec<String>,
    },
    /// `name MX preference exchange` (a custom MAIL FROM domain).
    Mx {
        /// The owner name.
        name: String,
        /// The preference.
        preference: u16,
        /// The exchange.
        exchange: String,
    },
}

impl UpdateRecord {
    /// The owner name.
    pub fn name(&self) -> &str {
        match self {
            UpdateRecord::Cname { name, .. }
            | UpdateRecord::Txt { name, .. }
            | UpdateRecord::Mx { name, .. } => name,
        }
    }

    /// The type's mnemonic.
    pub fn rtype(&self) -> &'static str {
        match self {
            UpdateRecord::Cname { .. } => "CNAME",
            UpdateRecord::Txt { .. } => "TXT",
            UpdateRecord::Mx { .. } => "MX",
        }
    }

    /// The value in zone-file form (`target.`, `"s1" "s2"`, `10 host.`); [`from_parts`]
    /// reads it back.
    ///
    /// [`from_parts`]: UpdateRecord::from_parts
    pub fn value(&self) -> String {
        match self {
            UpdateRecord::Cname { target, .. } => format!("{}.", target.trim_end_matches('.')),
            UpdateRecord::Txt { strings, .. } => strings
                .iter()
                .map(|s| format!("\"{s}\""))
                .collect::<Vec<_>>()
                .join(" "),
            UpdateRecord::Mx {
                preference,
                exchange,
                ..
            } => format!("{preference} {}.", exchange.trim_end_matches('.')),
        }
    }

    /// The record of a name, type and [`value`](UpdateRecord::value); `None` for any other
    /// form.
    pub fn from_parts(name: &str, rtype: &str, value: &str) -> Option<UpdateRecord> {
        let name = name.to_owned();
        match rtype {
            "CNAME" => Some(UpdateRecord::Cname {
                name,
                target: value.trim_end_matches('.').to_owned(),
            }),
            "TXT" => {
                let inner = value.strip_prefix('"')?.strip_suffix('"')?;
                Some(UpdateRecord::Txt {
                    name,
                    strings: inner.split("\" \"").map(str::to_owned).collect(),
                })
            }
            "MX" => {
                let (preference, exchange) = value.split_once(' ')?;
                Some(UpdateRecord::Mx {
                    name,
                    preference: preference.parse().ok()?,
                    exchange: exchange.trim_end_matches('.').to_owned(),
                })
            }
            _ => None,
        }
    }
}

/// Why an update did not happen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpdateError {
    /// A name or the zone cannot be used (not a domain name, or outside the zone).
    BadName(String),
    /// The server refused our key: NOTAUTH, with the TSIG error it gave (BADSIG, BADKEY,
    /// BADTIME), or none.
    NotAuthorized(Option<String>),
    /// The server answered this response code (REFUSED, NOTZONE, SERVFAIL…).
    Refused(String),
    /// The answer's signature does not verify: it is not the server's answer to us.
    BadAnswer(String),
    /// No answer: the connection failed or timed out.
    Unreachable(String),
}

impl fmt::Display for UpdateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UpdateError::BadName(n) => write!(f, "not a name this zone can hold: {n}"),
            UpdateError::NotAuthorized(Some(e)) => {
                write!(f, "NOTAUTH: the server refused the TSIG key ({e})")
            }
            UpdateError::NotAuthorized(None) => {
                write!(f, "NOTAUTH: the server refused the TSIG key")
            }
            UpdateError::Refused(code) => write!(f, "the server answered {code}"),
            UpdateError::BadAnswer(e) => write!(f, "the answer does not verify: {e}"),
            UpdateError::Unreachable(e) => write!(f, "no answer from the server: {e}"),
        }
    }
}

impl std::error::Error for UpdateError {}

fn fqdn(s: &str) -> Result<Name, UpdateError> {
    let mut name = Name::from_ascii(s).map_err(|_| UpdateError::BadName(s.to_owned()))?;
    name.set_fqdn(true);
    Ok(name)
}

fn record(r: &UpdateRecord, ttl: u32) -> Result<Record, UpdateError> {
    Ok(match r {
        UpdateRecord::Cname { name, target } => {
            Record::from_rdata(fqdn(name)?, ttl, RData::CNAME(CNAME(fqdn(target)?)))
        }
        UpdateRecord::Txt { name, strings } => {
            Record::from_rdata(fqdn(name)?, ttl, RData::TXT(TXT::new(strings.clone())))
        }
        UpdateRecord::Mx {
            name,
            preference,
            exchange,
        } => Record::from_rdata(
            fqdn(name)?,
            ttl,
            RData::MX(MX::new(*preference, fqdn(exchange)?)),
        ),
    })
}

/// What the zone already holds that `wanted` would clash with, for each record that clashes:
/// a CNAME at the name of any other record or a CNAME elsewhere; a TXT with another value
/// (for an SPF record only another SPF record, since other TXT records live beside it); an
/// MX naming another host. The same record already there is no clash (adding it is a no-op).
/// Asked of the primary itself over TCP, so the answer is the zone as it is now.
pub async fn conflicts(
    target: &UpdateTarget,
    wanted: &[UpdateRecord],
) -> Result<Vec<(UpdateRecord, String)>, UpdateError> {
    let mut out = Vec::new();
    for r in wanted {
        let name = fqdn(r.name())?;
        // ANY over TCP: an authoritative server answers every RRset at the name (RFC 8482's
        // minimal answers are for UDP), and a CNAME clashes with data of any type.
        let found = query(target, &name, RecordType::ANY).await?;
        let own = r.name().trim_end_matches('.');
        let clash = found
            .into_iter()
            .filter(|x| x.name.eq_ignore_ascii_case(own))
            .find(|x| match &x.record {
                Some(t) => clashes(r, t),
                // A type Sesame does not publish (A, AAAA…): only a CNAME cannot live beside it.
                None => matches!(r, UpdateRecord::Cname { .. }),
            });
        if let Some(t) = clash {
            out.push((r.clone(), t.shown));
        }
    }
    Ok(out)
}

fn is_spf(strings: &[String]) -> bool {
    strings
        .concat()
        .trim_start()
        .to_ascii_lowercase()
        .starts_with("v=spf1")
}

/// Whether `theirs`, found at `ours`'s name, keeps `ours` from being added.
fn clashes(ours: &UpdateRecord, theirs: &UpdateRecord) -> bool {
    if theirs.value().eq_ignore_ascii_case(&ours.value()) && theirs.rtype() == ours.rtype() {
        return false;
    }
    match (ours, theirs) {
        (_, UpdateRecord::Cname { .. }) | (UpdateRecord::Cname { .. }, _) => true,
        (UpdateRecord::Txt { strings: o, .. }, UpdateRecord::Txt { strings: t, .. }) => {
            !is_spf(o) || is_spf(t)
        }
        (UpdateRecord::Mx { .. }, UpdateRecord::Mx { .. }) => true,
        _ => false,
    }
}

/// One answer record: its owner, how it reads, and, when it is of a kind Sesame publishes,
/// its content.
struct Found {
    name: String,
    shown: String,
    record: Option<UpdateRecord>,
}

async fn query(
    target: &UpdateTarget,
    name: &Name,
    rtype: RecordType,
) -> Result<Vec<Found>, UpdateError> {
    let mut msg = Message::query();
    msg.add_query(Query::query(name.clone(), rtype));
    let wire = msg
        .to_vec()
        .map_err(|e| UpdateError::BadName(format!("encoding: {e}")))?;
    let answer = exchange(target.server, &wire, target.timeout).await?;
    let parsed = Message::from_vec(&answer)
        .map_err(|e| UpdateError::BadAnswer(format!("unreadable: {e}")))?;
    if parsed.id != msg.id {
        return Err(UpdateError::BadAnswer("not the answer to our query".into()));
    }
    if !matches!(
        parsed.response_code,
        ResponseCode::NoError | ResponseCode::NXDomain
    ) {
        return Err(UpdateError::Refused(
            format!("{:?}", parsed.response_code).to_ascii_uppercase(),
        ));
    }
    Ok(parsed
        .answers
        .iter()
        .map(|a| {
            let owner = a.name.to_ascii();
            let owner = owner.trim_end_matches('.').to_owned();
            let record = match &a.data {
                RData::CNAME(c) => Some(UpdateRecord::Cname {
                    name: owner.clone(),
                    target: c.0.to_ascii().trim_end_matches('.').to_owned(),
                }),
                RData::TXT(t) => Some(UpdateRecord::Txt {
                    name: owner.clone(),
                    strings: t
                        .txt_data
                        .iter()
                        .map(|s| String::from_utf8_lossy(s).into_owned())
                        .collect(),
                }),
                RData::MX(m) => Some(UpdateRecord::Mx {
                    name: owner.clone(),
                    preference: m.preference,
                    exchange: m.exchange.to_ascii().trim_end_matches('.').to_owned(),
                }),
                _ => None,
            };
            let shown = match &record {
                Some(r) => format!("{} {}", r.rtype(), r.value()),
                None => format!("{} {}", a.record_type(), a.data),
            };
            Found {
                name: owner,
                shown,
                record,
            }
        })
        .collect())
}

/// What to do with the records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    Add,
    Remove,
}

/// Adds `records` (with `ttl`) in one transaction. Adding what is already there changes
/// nothing, so a retry is harmless.
pub async fn publish(
    target: &UpdateTarget,
    records: &[UpdateRecord],
    ttl: u32,
) -> Result<(), UpdateError> {
    send(target, records, ttl, Change::Add).await
}

/// Removes exactly `records` (those with this data; another value at the same name stays) in
/// one transaction. Removing what is not there changes nothing.
pub async fn remove(target: &UpdateTarget, records: &[UpdateRecord]) -> Result<(), UpdateError> {
    send(target, records, 0, Change::Remove).await
}

async fn send(
    target: &UpdateTarget,
    records: &[UpdateRecord],
    ttl: u32,
    change: Change,
) -> Result<(), UpdateError> {
    let zone = fqdn(&target.zone)?;
    let mut recs = Vec::with_capacity(records.len());
    for r in records {
        let rec = record(r, ttl)?;
        // update_message asserts this; a name outside the zone is our refusal, not a panic.
        if !zone.zone_of(&rec.name) {
            return Err(UpdateError::BadName(format!(
                "{} (outside {})",
                rec.name, zone
            )));
        }
        recs.push(rec);
    }
    let mut recs = recs.into_iter();
    let Some(first) = recs.next() else {
        return Ok(());
    };
    let mut msg = match change {
        Change::Add => update_message::append(RecordSet::from(first), zone.clone(), false, false),
        Change::Remove => {
            update_message::delete_by_rdata(RecordSet::from(first), zone.clone(), false)
        }
    };
    for mut rec in recs {
        // As update_message writes the first: a deletion of one RR is class NONE, TTL 0
        // (RFC 2136 2.5.4).
        if change == Change::Remove {
            rec.dns_class = DNSClass::NONE;
            rec.ttl = 0;
        }
        msg.add_update(rec);
    }
    let signer = TSigner::new(
        target.secret.clone(),
        TsigAlgorithm::HmacSha256,
        fqdn(&target.key_name)?,
        300,
    )
    .map_err(|e| UpdateError::BadName(format!("TSIG key: {e}")))?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut verifier = msg
        .finalize(&signer, now)
        .map_err(|e| UpdateError::BadName(format!("signing: {e}")))?;
    let wire = msg
        .to_vec()
        .map_err(|e| UpdateError::BadName(format!("encoding: {e}")))?;
    let answer = exchange(target.server, &wire, target.timeout).await?;
    let parsed = Message::from_vec(&answer)
        .map_err(|e| UpdateError::BadAnswer(format!("unreadable: {e}")))?;
    if parsed.id != msg.id || parsed.message_type != MessageType::Response {
        return Err(UpdateError::BadAnswer(
            "not the answer to our update".into(),
        ));
    }
    match parsed.response_code {
        ResponseCode::NoError => {
            if let Some(v) = verifier.as_mut() {
                v.verify(&answer)
                    .map_err(|e| UpdateError::BadAnswer(e.to_string()))?;
            }
            Ok(())
        }
        ResponseCode::NotAuth => Err(UpdateError::NotAuthorized(
            parsed
                .signature()
                .and_then(|s| s.data.error.as_ref())
                .map(tsig_error),
        )),
        // The RFC's mnemonic (REFUSED, NOTZONE, SERVFAIL, NXRRSET…).
        other => Err(UpdateError::Refused(
            format!("{other:?}").to_ascii_uppercase(),
        )),
    }
}

fn tsig_error(e: &TsigError) -> String {
    match e {
        TsigError::BadSig => "BADSIG: the secret is wrong".into(),
        TsigError::BadKey => "BADKEY: the server has no such key".into(),
        TsigError::BadTime => "BADTIME: the clocks differ by more than 5 minutes".into(),
        other => format!("{other:?}"),
    }
}

/// One request and its answer over TCP (two-byte length prefixes, RFC 1035 4.2.2).
async fn exchange(
    server: SocketAddr,
    wire: &[u8],
    timeout: Duration,
) -> Result<Vec<u8>, UpdateError> {
    let len = u16::try_from(wire.len())
        .map_err(|_| UpdateError::BadName("an update of more than 64 KiB".into()))?;
    let talk = async {
        let mut s = tokio::net::TcpStream::connect(server).await?;
        let mut out = len.to_be_bytes().to_vec();
        out.extend_from_slice(wire);
        s.write_all(&out).await?;
        let n = usize::from(s.read_u16().await?);
        let mut answer = vec![0; n];
        s.read_exact(&mut answer).await?;
        Ok::<_, std::io::Error>(answer)
    };
    match tokio::time::timeout(timeout, talk).await {
        Ok(Ok(answer)) => Ok(answer),
        Ok(Err(e)) => Err(UpdateError::Unreachable(format!("{server}: {e}"))),
        Err(_) => Err(UpdateError::Unreachable(format!(
            "{server}: no answer within {} s",
            timeout.as_secs()
        ))),
    }
}
