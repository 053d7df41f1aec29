//! Mail as SendEmail hands it over: mailboxes as written, destinations, the parts of a message
//! to compose, and the addresses a whole message names.

use super::names::EmailAddress;
use crate::error::Invalid;

/// A mailbox as a client wrote it (`"Name" <addr>` or a bare address) with its address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mailbox {
    /// The text as given, display name included; written into the message as it is.
    pub written: String,
    /// The address inside it.
    pub address: EmailAddress,
}

impl Mailbox {
    /// Reads `written`.
    pub fn parse(written: &str) -> Result<Mailbox, Invalid> {
        // A control character in a display name would end up inside a header we write (CR or
        // LF start a new field: header injection).
        if written.chars().any(char::is_control) {
            return Err(Invalid::MailboxControl(written.to_owned()));
        }
        let inner = match (written.rfind('<'), written.rfind('>')) {
            (Some(o), Some(c)) if o < c => written[o + 1..c].trim(),
            _ => written.trim(),
        };
        let address =
            EmailAddress::parse(inner).map_err(|_| Invalid::Mailbox(written.to_owned()))?;
        Ok(Mailbox {
            written: written.to_owned(),
            address,
        })
    }
}

/// Whom a message goes to, as the request names them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Destination {
    /// `To:` recipients.
    pub to: Vec<Mailbox>,
    /// `Cc:` recipients.
    pub cc: Vec<Mailbox>,
    /// Recipients of the envelope only, never written into the message.
    pub bcc: Vec<Mailbox>,
}

impl Destination {
    /// Every recipient's address, To then Cc then Bcc (the SMTP envelope).
    pub fn recipients(&self) -> Vec<EmailAddress> {
        self.to
            .iter()
            .chain(&self.cc)
            .chain(&self.bcc)
            .map(|m| m.address.clone())
            .collect()
    }
}

/// A message to compose from its parts (SendEmail's `Simple` content), validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimpleMessage {
    /// The author, also the envelope sender.
    pub from: Mailbox,
    /// `Reply-To:` mailboxes.
    pub reply_to: Vec<Mailbox>,
    /// The subject line.
    pub subject: String,
    /// The text part.
    pub text: Option<String>,
    /// The HTML part.
    pub html: Option<String>,
    /// Extra header fields (name, value), none of those the composer writes itself.
    pub headers: Vec<(String, String)>,
}

/// The addresses a whole message names in its header section.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeaderAddresses {
    /// Every mailbox of its one `From:` field, in order.
    pub from: Vec<String>,
    /// The mailbox of its `Sender:` field, if any.
    pub sender: Option<String>,
    /// Its To, Cc and Bcc addresses, in that order.
    pub recipients: Vec<String>,
}
