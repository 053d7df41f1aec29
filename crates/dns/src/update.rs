//! RFC 2136 dynamic updates to a customer's authoritative server, signed with TSIG (RFC 8945):
//! how Sesame publishes the records an identity needs into a zone it does not serve.
//!
//! Messages are built by hickory-proto (`op::update_message`) and signed by its `TSigner`;
//! this module only carries them over TCP (no spoofing window, no size limit; servers accept
//! updates over both) and reads the answer. The answer is parsed before its signature is
//! checked: a server refusing our key answers NOTAUTH with an unsigned TSIG carrying the
//! reason (BADSIG, BADKEY, BADTIME), which a signature check would only report as a bad MAC.

use hickory_proto::op::{Message, MessageType, ResponseCode, UpdateMessage, update_message};
use hickory_proto::rr::rdata::tsig::{TsigAlgorithm, TsigError};
use hickory_proto::rr::rdata::{CNAME, TXT};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordSet, TSigner};
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
    })
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
