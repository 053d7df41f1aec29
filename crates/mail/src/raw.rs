//! Reading a whole MIME message (SendEmail's `Raw` content): its From address and recipients,
//! used when the request does not give them.

use crate::MailError;
use mail_parser::{Address, MessageParser};

/// The addresses a raw message names.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Envelope {
    /// The first From address.
    pub from: Option<String>,
    /// To, Cc and Bcc addresses, in that order.
    pub recipients: Vec<String>,
}

fn addresses(a: Option<&Address<'_>>) -> Vec<String> {
    a.map(|a| {
        a.iter()
            .filter_map(|addr| addr.address().map(str::to_owned))
            .collect()
    })
    .unwrap_or_default()
}

/// Parses the headers of `message`.
pub fn envelope(message: &[u8]) -> Result<Envelope, MailError> {
    let parsed = MessageParser::default()
        .parse_headers(message)
        .ok_or_else(|| MailError::Format("the raw message has no parsable headers".into()))?;
    let mut recipients = addresses(parsed.to());
    recipients.extend(addresses(parsed.cc()));
    recipients.extend(addresses(parsed.bcc()));
    Ok(Envelope {
        from: addresses(parsed.from()).into_iter().next(),
        recipients,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_from_and_recipients_with_display_names() {
        let msg = b"From: \"Doe, Jane\" <jane@example.com>\r\nTo: \"A, B\" <a@example.net>, c@example.net\r\nCc: d@example.net\r\nSubject: x\r\n\r\nbody\r\n";
        let e = envelope(msg).unwrap();
        assert_eq!(e.from.as_deref(), Some("jane@example.com"));
        assert_eq!(
            e.recipients,
            ["a@example.net", "c@example.net", "d@example.net"]
        );
    }
}
