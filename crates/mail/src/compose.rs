//! MIME composition of SendEmail's `Simple` content with mail-builder: From, To, Cc, Reply-To,
//! Subject, Date, Message-ID and MIME-Version always; a text part, an HTML part, or both as
//! `multipart/alternative`; custom headers after those.

use crate::MailError;
use mail_builder::MessageBuilder;
use mail_builder::headers::raw::Raw;

/// A simple message as SendEmail describes it (recipients already validated), borrowed from
/// the core's `SimpleMessage` and `Destination`.
pub struct Simple<'a> {
    pub from: &'a str,
    pub to: Vec<&'a str>,
    pub cc: Vec<&'a str>,
    pub reply_to: Vec<&'a str>,
    pub subject: &'a str,
    pub text: Option<&'a str>,
    pub html: Option<&'a str>,
    pub headers: Vec<(&'a str, &'a str)>,
    /// Without angle brackets.
    pub message_id: &'a str,
    /// Unix seconds.
    pub date: i64,
}

/// `Name <addr>` or a bare address, as mail-builder wants it.
fn address(s: &str) -> mail_builder::headers::address::Address<'_> {
    match (s.rfind('<'), s.rfind('>')) {
        (Some(open), Some(close)) if open < close => {
            let name = s[..open].trim().trim_matches('"').trim();
            let addr = s[open + 1..close].trim();
            if name.is_empty() {
                addr.into()
            } else {
                (name, addr).into()
            }
        }
        _ => s.trim().into(),
    }
}

fn addresses<'a>(list: &[&'a str]) -> mail_builder::headers::address::Address<'a> {
    list.iter().map(|&s| address(s)).collect::<Vec<_>>().into()
}

/// Renders the message; Bcc recipients are never written into it.
pub fn build(m: &Simple<'_>) -> Result<Vec<u8>, MailError> {
    let mut b = MessageBuilder::new()
        .from(address(m.from))
        .subject(m.subject)
        .message_id(m.message_id)
        .date(m.date);
    if !m.to.is_empty() {
        b = b.to(addresses(&m.to));
    }
    if !m.cc.is_empty() {
        b = b.cc(addresses(&m.cc));
    }
    if !m.reply_to.is_empty() {
        b = b.reply_to(addresses(&m.reply_to));
    }
    for (name, value) in &m.headers {
        b = b.header(*name, Raw::new(*value));
    }
    if let Some(t) = m.text {
        b = b.text_body(t);
    }
    if let Some(h) = m.html {
        b = b.html_body(h);
    }
    b.write_to_vec()
        .map_err(|e| MailError::Format(format!("building the message: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_headers_and_alternative_bodies() {
        let m = Simple {
            from: "Sender <sender@example.com>",
            to: vec!["a@example.net", "b@example.net"],
            cc: vec!["c@example.net"],
            reply_to: vec!["r@example.com"],
            subject: "Hello ünïcode",
            text: Some("plain"),
            html: Some("<p>html</p>"),
            headers: vec![("X-Campaign", "42")],
            message_id: "id-1@example.com",
            date: 1_700_000_000,
        };
        let text = String::from_utf8(build(&m).unwrap()).unwrap();
        for needle in [
            "From: \"Sender\" <sender@example.com>",
            "To: <a@example.net>, <b@example.net>",
            "Cc: <c@example.net>",
            "Reply-To: <r@example.com>",
            "Message-ID: <id-1@example.com>",
            "MIME-Version: 1.0",
            "X-Campaign: 42",
            "multipart/alternative",
            "Date: ",
            "Subject: =?utf-8?",
        ] {
            assert!(text.contains(needle), "{needle} missing in:\n{text}");
        }
    }
}

#[cfg(test)]
mod injection_tests {
    use super::*;

    /// Issue 12: a CR or LF in a value we write must not start a header field of its own.
    #[test]
    fn line_breaks_in_the_subject_or_a_name_do_not_make_new_header_fields() {
        let m = Simple {
            from: "Eve\r\nBcc: victim@example.org <eve@example.com>",
            to: vec!["a@example.net"],
            cc: vec![],
            reply_to: vec![],
            subject: "hello\r\nBcc: victim@example.org\nX-Injected: 1",
            text: Some("plain"),
            html: None,
            headers: vec![],
            message_id: "id-1@example.com",
            date: 1_700_000_000,
        };
        let bytes = build(&m).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        let head = text.split("\r\n\r\n").next().unwrap();
        for line in head.split("\r\n") {
            assert!(
                !line.starts_with("Bcc") && !line.starts_with("X-Injected"),
                "{line:?} in\n{head}"
            );
        }
    }
}
