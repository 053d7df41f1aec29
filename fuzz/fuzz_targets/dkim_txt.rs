//! The verifier's reading of published DKIM TXT records: `records::dkim_tags` and
//! `records::published_key` on arbitrary text split into character-strings at NUL bytes, and
//! the round trip of any bytes through `dkim_txt_value` and `split_strings`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sesame_dns::records::{MAX_STRING, dkim_tags, dkim_txt_value, published_key, split_strings};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let strings: Vec<String> = text.split('\0').map(str::to_owned).collect();
    let key = published_key(&strings);
    // Receivers concatenate the strings (RFC 6376 section 3.6.2.2): the split is invisible.
    assert_eq!(key, published_key(&[strings.concat()]));
    for (k, v) in dkim_tags(&text) {
        assert!(!k.contains(';') && !v.contains(';'), "{k:?}={v:?}");
        assert_eq!(k.trim(), k, "tag names are trimmed");
        assert!(
            !v.chars().any(char::is_whitespace),
            "{v:?} keeps whitespace"
        );
    }
    // What we publish for any key bytes reads back as those bytes.
    let published = split_strings(&dkim_txt_value(data));
    assert!(published.iter().all(|s| s.len() <= MAX_STRING));
    assert_eq!(published_key(&published).as_deref(), Some(data));
});
