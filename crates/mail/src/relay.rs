//! Delivery through an SMTP relay with lettre: the signed message is sent byte for byte (so the
//! signature survives) with an envelope of the sender and every recipient. A failed attempt is
//! retried a few times, then reported: a message is never dropped silently.

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

/// Attempts per message before the error goes back to the caller.
const ATTEMPTS: u32 = 3;

/// A configured relay.
pub struct SmtpRelay {
    transport: SmtpTransport,
}

impl SmtpRelay {
    /// A relay at `host:port`.
    pub fn new(
        host: &str,
        port: u16,
        tls: RelayTls,
        credentials: Option<(String, String)>,
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
            .timeout(Some(Duration::from_secs(30)));
        if let Some((user, pass)) = credentials {
            builder = builder.credentials(Credentials::new(user, pass));
        }
        Ok(SmtpRelay {
            transport: builder.build(),
        })
    }

    /// Sends `message` as it is, from `from` to `recipients`.
    pub fn deliver(
        &self,
        from: &str,
        recipients: &[&str],
        message: &[u8],
    ) -> Result<(), MailError> {
        let parse = |a: &str| {
            a.parse::<Address>()
                .map_err(|e| MailError::Format(format!("address {a}: {e}")))
        };
        let to = recipients
            .iter()
            .map(|r| parse(r))
            .collect::<Result<Vec<_>, _>>()?;
        let envelope = Envelope::new(Some(parse(from)?), to)
            .map_err(|e| MailError::Format(format!("envelope: {e}")))?;
        let mut last = String::new();
        for attempt in 0..ATTEMPTS {
            match self.transport.send_raw(&envelope, message) {
                Ok(_) => return Ok(()),
                // A permanent refusal (5xx) will not change on retry.
                Err(e) if e.is_permanent() => {
                    return Err(MailError::Io(std::io::Error::other(format!(
                        "relay refused the message: {e}"
                    ))));
                }
                Err(e) => {
                    last = e.to_string();
                    std::thread::sleep(Duration::from_millis(200 << attempt));
                }
            }
        }
        Err(MailError::Io(std::io::Error::other(format!(
            "relay failed after {ATTEMPTS} attempts: {last}"
        ))))
    }
}
