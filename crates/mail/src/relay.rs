//! Delivery through an SMTP relay with lettre: the signed message is sent byte for byte (so the
//! signature survives) with an envelope of the sender and every recipient, over a pool of
//! reused connections. `send` makes one attempt and says whether a failure may pass; the
//! retries, their backoff and the report of a message that cannot be delivered are
//! `crate::relayed`'s. lettre does not pipeline (RFC 2920): each command waits for its reply.

use crate::MailError;
use lettre::address::{Address, Envelope};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{SmtpTransport, Transport};
use std::time::Duration;

/// How the connection to the relay is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelayTls {
    /// Plain SMTP (a relay on the same host or a trusted network).
    None,
    /// STARTTLS when the relay offers it.
    Opportunistic,
    /// STARTTLS, or fail.
    Required,
    /// TLS from the first byte (SMTPS, port 465).
    Wrapper,
}

impl std::str::FromStr for RelayTls {
    type Err = String;
    fn from_str(s: &str) -> Result<RelayTls, String> {
        match s {
            "none" => Ok(RelayTls::None),
            "opportunistic" => Ok(RelayTls::Opportunistic),
            "required" | "starttls" => Ok(RelayTls::Required),
            "wrapper" | "smtps" => Ok(RelayTls::Wrapper),
            other => Err(format!(
                "unknown TLS mode {other:?}: none, opportunistic, required or wrapper"
            )),
        }
    }
}

/// Why an attempt failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// It may pass later (a 4xx reply, a connection that failed or timed out).
    Temporary(String),
    /// It never will (a 5xx reply, an address the envelope cannot carry).
    Permanent(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Temporary(s) => write!(f, "temporary failure: {s}"),
            Failure::Permanent(s) => write!(f, "refused: {s}"),
        }
    }
}

/// A configured relay.
pub struct SmtpRelay {
    transport: SmtpTransport,
}

impl SmtpRelay {
    /// A relay at `host:port`, with up to `connections` connections kept open.
    pub fn new(
        host: &str,
        port: u16,
        tls: RelayTls,
        credentials: Option<(String, String)>,
        connections: u32,
    ) -> Result<SmtpRelay, MailError> {
        let params = || {
            TlsParameters::new(host.to_owned())
                .map_err(|e| MailError::Format(format!("TLS for {host}: {e}")))
        };
        let tls = match tls {
            RelayTls::None => Tls::None,
            // With credentials, a relay (or a man in the middle) that does not offer STARTTLS
            // must not get the password in clear: TLS becomes required.
            RelayTls::Opportunistic if credentials.is_some() => Tls::Required(params()?),
            RelayTls::Opportunistic => Tls::Opportunistic(params()?),
            RelayTls::Required => Tls::Required(params()?),
            RelayTls::Wrapper => Tls::Wrapper(params()?),
        };
        let mut builder = SmtpTransport::builder_dangerous(host)
            .port(port)
            .tls(tls)
            .timeout(Some(Duration::from_secs(30)))
            .pool_config(
                lettre::transport::smtp::PoolConfig::new()
                    .max_size(connections.max(1))
                    .idle_timeout(Duration::from_secs(30)),
            );
        if let Some((user, pass)) = credentials {
            builder = builder.credentials(Credentials::new(user, pass));
        }
        Ok(SmtpRelay {
            transport: builder.build(),
        })
    }

    /// One attempt to send `message` as it is, from `from` to `recipients`.
    pub fn send(&self, from: &str, recipients: &[&str], message: &[u8]) -> Result<(), Failure> {
        let parse = |a: &str| {
            a.parse::<Address>()
                .map_err(|e| Failure::Permanent(format!("address {a}: {e}")))
        };
        let to = recipients
            .iter()
            .map(|r| parse(r))
            .collect::<Result<Vec<_>, _>>()?;
        let envelope = Envelope::new(Some(parse(from)?), to)
            .map_err(|e| Failure::Permanent(format!("envelope: {e}")))?;
        match self.transport.send_raw(&envelope, message) {
            Ok(_) => Ok(()),
            // A permanent refusal (5xx) will not change on retry.
            Err(e) if e.is_permanent() => Err(Failure::Permanent(e.to_string())),
            Err(e) => Err(Failure::Temporary(e.to_string())),
        }
    }
}
