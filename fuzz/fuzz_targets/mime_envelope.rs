//! Raw MIME sender extraction (`sesame_mail::raw::envelope`, SendEmail's `Raw` content) on
//! arbitrary bytes. The result is only read through `Debug`, so this target survives changes
//! to `Envelope`; beyond not panicking, the extraction must be deterministic, and a message
//! whose header section plainly has two `From:` fields must be refused (RFC 5322 section 3.6
//! allows one, and receivers disagree on which one they show).
#![no_main]

use libfuzzer_sys::fuzz_target;

/// `From:` fields among the leading well-formed header lines: a field name of printable
/// ASCII without `:` (trailing blanks allowed, RFC 5322's obsolete syntax) and a colon, or a
/// folded continuation; counting stops at the first line that is neither.
fn plain_from_fields(message: &[u8]) -> usize {
    let mut count = 0;
    for line in message.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            break;
        }
        if line[0] == b' ' || line[0] == b'\t' {
            continue;
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            break;
        };
        let name = &line[..colon];
        let trimmed = name.trim_ascii_end();
        if trimmed.is_empty() || !trimmed.iter().all(|b| (33..=126).contains(b)) {
            break;
        }
        if trimmed.eq_ignore_ascii_case(b"from") {
            count += 1;
        }
    }
    count
}

fuzz_target!(|data: &[u8]| {
    let first = format!("{:?}", sesame_mail::raw::envelope(data));
    let second = format!("{:?}", sesame_mail::raw::envelope(data));
    assert_eq!(first, second, "envelope is not deterministic");
    if first.starts_with("Ok(") && plain_from_fields(data) >= 2 {
        panic!("accepted a message with several From fields: {first}");
    }
});
