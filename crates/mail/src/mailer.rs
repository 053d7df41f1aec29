//! `Mail`, the core's `Mailer` port: Simple content composed by `compose`, whole messages read
//! by `raw`, and signed messages handed to one `Delivery` back end (the outbox directory or an
//! SMTP relay behind the spool; the server picks one).

use crate::compose;
use crate::raw::{self, RawError};
use crate::relayed::SpooledRelay;
use crate::spooled::SpooledOutbox;
use sesame_core::Error;
use sesame_core::error::{Invalid, MessageProblem, Rejection};
use sesame_core::model::{Destination, EmailAddress, HeaderAddresses, SimpleMessage, Timestamp};
use sesame_core::ports::Mailer;

/// Where signed messages go; `Ok` means the message is safe.
pub trait Delivery: Send + Sync {
    /// Delivers `message` under `message_id` from `from` to `recipients` (the SMTP envelope).
    fn deliver(
        &self,
        message_id: &str,
        from: &EmailAddress,
        recipients: &[EmailAddress],
        message: &[u8],
    ) -> Result<(), Error>;
}

/// The outbox keeps the message under its id, with the envelope sender as its `Return-Path:`;
/// the spool holds it durably, recipients and all.
impl Delivery for SpooledOutbox {
    fn deliver(
        &self,
        message_id: &str,
        from: &EmailAddress,
        recipients: &[EmailAddress],
        message: &[u8],
    ) -> Result<(), Error> {
        let to: Vec<&str> = recipients.iter().map(|r| r.as_str()).collect();
        SpooledOutbox::deliver(self, message_id, from.as_str(), &to, message)
            .map_err(|e| Error::Unavailable(e.to_string()))
    }
}

/// The relay's spool takes the message; a spool that cannot (a full disk, a relay down so
/// long the queue is full) is a service that is unavailable (503), not a bug: it may recover.
impl Delivery for SpooledRelay {
    fn deliver(
        &self,
        message_id: &str,
        from: &EmailAddress,
        recipients: &[EmailAddress],
        message: &[u8],
    ) -> Result<(), Error> {
        let to: Vec<&str> = recipients.iter().map(|r| r.as_str()).collect();
        SpooledRelay::deliver(self, message_id, from.as_str(), &to, message)
            .map_err(|e| Error::Unavailable(format!("queueing message {message_id}: {e}")))
    }
}

/// The mail system over one delivery back end.
pub struct Mail {
    delivery: Box<dyn Delivery>,
}

impl Mail {
    /// Mail delivered through `delivery`.
    pub fn new(delivery: impl Delivery + 'static) -> Mail {
        Mail {
            delivery: Box::new(delivery),
        }
    }
}

fn written(list: &[sesame_core::model::Mailbox]) -> Vec<&str> {
    list.iter().map(|m| m.written.as_str()).collect()
}

impl Mailer for Mail {
    fn compose(
        &self,
        m: &SimpleMessage,
        destination: &Destination,
        message_id: &str,
        now: Timestamp,
    ) -> Result<Vec<u8>, Error> {
        compose::build(&compose::Simple {
            from: &m.from.written,
            to: written(&destination.to),
            cc: written(&destination.cc),
            reply_to: written(&m.reply_to),
            subject: &m.subject,
            text: m.text.as_deref(),
            html: m.html.as_deref(),
            headers: m
                .headers
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_str()))
                .collect(),
            message_id,
            date: now.0 / 1000,
        })
        .map_err(|e| Error::Internal(e.to_string()))
    }

    fn read_headers(&self, message: &[u8]) -> Result<HeaderAddresses, Error> {
        let refused = |p: MessageProblem| Error::MessageRejected(Rejection::Message(p));
        match raw::envelope(message) {
            Ok(e) => Ok(HeaderAddresses {
                from: e.from,
                sender: e.sender,
                recipients: e.recipients,
            }),
            // Headers that do not read the same everywhere are a malformed request; headers
            // that read but name no checkable author are a message we refuse to send.
            Err(RawError::Unparsable) => Err(Invalid::RawUnparsable.into()),
            Err(RawError::LineEnds) => Err(Invalid::RawLineEnds.into()),
            Err(RawError::FromCount { count, addresses }) => {
                Err(refused(MessageProblem::FromCount { count, addresses }))
            }
            Err(RawError::SenderCount { count, addresses }) => {
                Err(refused(MessageProblem::SenderCount { count, addresses }))
            }
            Err(RawError::Mailbox { field, text }) => {
                Err(refused(MessageProblem::Mailbox { field, text }))
            }
        }
    }

    fn deliver(
        &self,
        message_id: &str,
        from: &EmailAddress,
        recipients: &[EmailAddress],
        message: &[u8],
    ) -> Result<(), Error> {
        self.delivery.deliver(message_id, from, recipients, message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sesame_core::model::Mailbox;

    fn mail_in(dir: &std::path::Path) -> Mail {
        let every = std::time::Duration::from_secs(3600);
        Mail::new(
            SpooledOutbox::open(dir, &dir.join("spool"), every)
                .unwrap()
                .0,
        )
    }

    #[test]
    fn composes_with_the_given_message_id_and_date_and_no_bcc() {
        let d = tempfile::tempdir().unwrap();
        let mailbox = |s: &str| Mailbox::parse(s).unwrap();
        let message = SimpleMessage {
            from: mailbox("News <news@example.com>"),
            reply_to: vec![mailbox("r@example.com")],
            subject: "hi".into(),
            text: Some("body".into()),
            html: None,
            headers: vec![("X-Campaign".into(), "7".into())],
        };
        let destination = Destination {
            to: vec![mailbox("a@example.net")],
            cc: vec![mailbox("c@example.net")],
            bcc: vec![mailbox("hidden@example.net")],
        };
        let bytes = mail_in(d.path())
            .compose(
                &message,
                &destination,
                "id-1@example.com",
                Timestamp(1_796_194_800_999),
            )
            .unwrap();
        let text = String::from_utf8(bytes).unwrap();
        for needle in [
            "From: \"News\" <news@example.com>",
            "To: <a@example.net>",
            "Cc: <c@example.net>",
            "Reply-To: <r@example.com>",
            "Message-ID: <id-1@example.com>",
            "Date: Wed, 2 Dec 2026 07:00:00 +0000",
            "X-Campaign: 7",
        ] {
            assert!(text.contains(needle), "{needle} missing in:\n{text}");
        }
        assert!(!text.contains("hidden"), "Bcc written:\n{text}");
    }

    #[test]
    fn header_faults_are_malformed_or_refused() {
        let d = tempfile::tempdir().unwrap();
        let mail = mail_in(d.path());
        assert!(matches!(
            mail.read_headers(b"From: a@example.com\r\nTo: b@example.net\nX: y\r\n\r\n"),
            Err(Error::Invalid(Invalid::RawLineEnds))
        ));
        assert!(matches!(
            mail.read_headers(b"To: b@example.net\r\n\r\nbody\r\n"),
            Err(Error::MessageRejected(Rejection::Message(
                MessageProblem::FromCount { count: 0, .. }
            )))
        ));
        let read = mail
            .read_headers(
                b"From: a@example.com\r\nTo: b@example.net\r\nBcc: c@example.net\r\n\r\nbody\r\n",
            )
            .unwrap();
        assert_eq!(read.from, ["a@example.com"]);
        assert_eq!(read.recipients, ["b@example.net", "c@example.net"]);
    }

    #[test]
    fn the_outbox_delivery_writes_the_message_under_its_id() {
        let d = tempfile::tempdir().unwrap();
        let a = EmailAddress::parse("a@example.com").unwrap();
        mail_in(d.path())
            .deliver("abc-1", &a, std::slice::from_ref(&a), b"message")
            .unwrap();
        assert_eq!(
            std::fs::read(d.path().join("abc-1.eml")).unwrap(),
            b"Return-Path: <a@example.com>\r\nmessage"
        );
        let unsafe_id = mail_in(d.path()).deliver("../x", &a, &[], b"m");
        assert!(matches!(unsafe_id, Err(Error::Unavailable(_))));
    }
}
