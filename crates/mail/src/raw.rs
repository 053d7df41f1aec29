//! Reading a whole MIME message (SendEmail's `Raw` content): who it says it is from and whom it
//! is for. Every mailbox a receiver could show as the author (each `From:` mailbox and the
//! `Sender:`) is returned, so the caller can check each one; a header section a receiver could
//! read differently from us (no or several `From:` fields, mixed line endings, a mailbox we
//! cannot read) is refused here rather than signed.

use mail_parser::{Address, HeaderName, HeaderValue, MessageParser};

/// The addresses a raw message names.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Envelope {
    /// Every mailbox of the one `From:` field, in order.
    pub from: Vec<String>,
    /// The mailbox of the `Sender:` field, if there is one.
    pub sender: Option<String>,
    /// To, Cc and Bcc addresses, in that order.
    pub recipients: Vec<String>,
}

/// Why a raw message's headers are refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum RawError {
    /// No header section could be parsed at all.
    #[error("the raw message has no parsable headers")]
    Unparsable,
    /// The header section mixes CRLF with bare LF or has a bare CR: parsers split such a
    /// section into different fields, so what we check may not be what a receiver shows.
    #[error("the raw message's header section has a bare CR or mixes CRLF and bare LF line ends")]
    LineEnds,
    /// A header section must have exactly one `From:` field (RFC 5322 section 3.6).
    #[error("the raw message has {count} From headers{}; exactly one is required", listed(.addresses))]
    FromCount {
        /// How many there are.
        count: usize,
        /// Every address they name.
        addresses: Vec<String>,
    },
    /// At most one `Sender:` field.
    #[error("the raw message has {count} Sender headers{}; at most one is allowed", listed(.addresses))]
    SenderCount {
        /// How many there are.
        count: usize,
        /// Every address they name.
        addresses: Vec<String>,
    },
    /// A `From:` or `Sender:` field that does not read as mailboxes.
    #[error("the raw message's {field} header does not name a valid mailbox: '{text}'")]
    Mailbox {
        /// `From` or `Sender`.
        field: &'static str,
        /// The field's text as written.
        text: String,
    },
}

fn listed(addresses: &[String]) -> String {
    if addresses.is_empty() {
        String::new()
    } else {
        format!(" ({})", addresses.join(", "))
    }
}

fn addresses(a: Option<&Address<'_>>) -> Vec<String> {
    a.map(|a| {
        a.iter()
            .filter_map(|addr| addr.address().map(str::to_owned))
            .collect()
    })
    .unwrap_or_default()
}

/// The header section: everything before the first empty line.
fn header_section(message: &[u8]) -> &[u8] {
    let mut start = 0;
    while let Some(i) = message[start..].iter().position(|&b| b == b'\n') {
        let line_end = start + i;
        let line = &message[start..line_end];
        if line.is_empty() || line == b"\r" {
            return &message[..start];
        }
        start = line_end + 1;
    }
    message
}

/// A section ends its lines all with CRLF or all with LF, and has no other CR.
fn consistent_line_ends(headers: &[u8]) -> bool {
    let mut crlf = false;
    let mut lf = false;
    for (i, &b) in headers.iter().enumerate() {
        match b {
            b'\n' if i > 0 && headers[i - 1] == b'\r' => crlf = true,
            b'\n' => lf = true,
            b'\r' if headers.get(i + 1) != Some(&b'\n') => return false,
            _ => {}
        }
    }
    !(crlf && lf)
}

/// The mailboxes of one `From:`/`Sender:` field; every one must have an address.
fn mailboxes(
    field: &'static str,
    value: &HeaderValue<'_>,
    raw: &str,
) -> Result<Vec<String>, RawError> {
    let bad = || RawError::Mailbox {
        field,
        text: raw.trim().to_owned(),
    };
    let HeaderValue::Address(a) = value else {
        return Err(bad());
    };
    let mut out = Vec::new();
    for addr in a.iter() {
        match addr.address() {
            Some(s) if !s.trim().is_empty() => out.push(s.to_owned()),
            _ => return Err(bad()),
        }
    }
    if out.is_empty() {
        return Err(bad());
    }
    Ok(out)
}

/// Parses the headers of `message`.
pub fn envelope(message: &[u8]) -> Result<Envelope, RawError> {
    if !consistent_line_ends(header_section(message)) {
        return Err(RawError::LineEnds);
    }
    let parsed = MessageParser::default()
        .parse_headers(message)
        .ok_or(RawError::Unparsable)?;
    let raw_text = |offset_start: u32, offset_end: u32| {
        message
            .get(offset_start as usize..offset_end as usize)
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_default()
    };
    let mut from = Vec::new();
    let mut senders = Vec::new();
    for h in parsed.headers() {
        let field = match h.name {
            HeaderName::From => "From",
            HeaderName::Sender => "Sender",
            _ => continue,
        };
        let text = raw_text(h.offset_start, h.offset_end);
        let list = mailboxes(field, &h.value, &text);
        if field == "From" {
            from.push(list);
        } else {
            senders.push(list);
        }
    }
    let named = |fields: &[Result<Vec<String>, RawError>]| -> Vec<String> {
        fields
            .iter()
            .flat_map(|f| f.iter().flatten().cloned())
            .collect()
    };
    if from.len() != 1 {
        return Err(RawError::FromCount {
            count: from.len(),
            addresses: named(&from),
        });
    }
    if senders.len() > 1 {
        return Err(RawError::SenderCount {
            count: senders.len(),
            addresses: named(&senders),
        });
    }
    let from = from.swap_remove(0)?;
    let sender = match senders.pop() {
        None => None,
        Some(list) => {
            let list = list?;
            if list.len() != 1 {
                return Err(RawError::SenderCount {
                    count: list.len(),
                    addresses: list,
                });
            }
            list.into_iter().next()
        }
    };
    let mut recipients = addresses(parsed.to());
    recipients.extend(addresses(parsed.cc()));
    recipients.extend(addresses(parsed.bcc()));
    Ok(Envelope {
        from,
        sender,
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
        assert_eq!(e.from, ["jane@example.com"]);
        assert_eq!(e.sender, None);
        assert_eq!(
            e.recipients,
            ["a@example.net", "c@example.net", "d@example.net"]
        );
    }

    #[test]
    fn every_author_mailbox_is_reported() {
        let msg = b"From: a@example.com, \"Bank\" <security@bigbank.example>\r\nSender: a@example.com\r\nTo: x@example.net\r\n\r\nbody\r\n";
        let e = envelope(msg).unwrap();
        assert_eq!(e.from, ["a@example.com", "security@bigbank.example"]);
        assert_eq!(e.sender.as_deref(), Some("a@example.com"));
        let group = b"From: Team: a@example.com, b@evil.example;\r\nTo: x@example.net\r\n\r\nb\r\n";
        assert_eq!(
            envelope(group).unwrap().from,
            ["a@example.com", "b@evil.example"]
        );
    }

    #[test]
    fn header_sections_a_receiver_could_read_differently_are_refused() {
        let cases: &[(&[u8], &str)] = &[
            (b"To: x@example.net\r\n\r\nb\r\n", "0 From"),
            (
                b"From: a@example.com\r\nFrom: security@bigbank.example\r\nTo: x@example.net\r\n\r\nb\r\n",
                "2 From headers (a@example.com, security@bigbank.example)",
            ),
            (
                b"From: a@example.com\r\nSender: a@example.com\r\nSender: b@evil.example\r\n\r\nb\r\n",
                "2 Sender",
            ),
            (
                b"From: a@example.com\r\nSender: a@example.com, b@evil.example\r\n\r\nb\r\n",
                "Sender",
            ),
            (
                b"From: a@example.com\r\nX-A: 1\nFrom: b@evil.example\r\n\r\nb\r\n",
                "bare CR or mixes",
            ),
            (
                b"From: a@example.com\rFrom: b@evil.example\r\n\r\nb\r\n",
                "bare CR or mixes",
            ),
            (b"From: not an address\r\n\r\nb\r\n", "valid mailbox"),
            (b"From: Undisclosed:;\r\n\r\nb\r\n", "valid mailbox"),
        ];
        for (msg, needle) in cases {
            let err = envelope(msg).unwrap_err().to_string();
            assert!(
                err.contains(needle),
                "{:?}: {err}",
                String::from_utf8_lossy(msg)
            );
        }
    }

    #[test]
    fn lf_only_messages_and_lf_in_the_body_are_fine() {
        let msg = b"From: a@example.com\nTo: x@example.net\n\nline\r\nline\n";
        assert_eq!(envelope(msg).unwrap().from, ["a@example.com"]);
        let crlf = b"From: a@example.com\r\nTo: x@example.net\r\n\r\nmixed\nbody\r\n";
        assert_eq!(envelope(crlf).unwrap().from, ["a@example.com"]);
    }
}
