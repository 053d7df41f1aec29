//! Resource tags and the rule that merges them.

use crate::error::Invalid;

/// A resource tag. Limits from the SES tagging documentation (the model states none): key
/// 1..128, value 0..256 characters of Unicode letters, digits, whitespace and `_.:/=+-@`;
/// the `aws:` prefix is reserved.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Tag {
    key: String,
    value: String,
}

/// The most tags one resource may carry.
pub const MAX_TAGS: usize = 50;

fn tag_chars_ok(s: &str) -> bool {
    s.chars()
        .all(|c| c.is_alphanumeric() || c.is_whitespace() || "_.:/=+-@".contains(c))
}

impl Tag {
    /// Validates a key and a value.
    pub fn parse(key: &str, value: &str) -> Result<Tag, Invalid> {
        Ok(Tag {
            key: Self::parse_key(key)?,
            value: Self::parse_value(value)?,
        })
    }

    /// Validates a tag key on its own (UntagResource takes bare keys).
    pub fn parse_key(key: &str) -> Result<String, Invalid> {
        let n = key.chars().count();
        if n == 0 || n > 128 {
            return Err(Invalid::TagKeyLength);
        }
        if !tag_chars_ok(key) {
            return Err(Invalid::TagKeyChars(key.to_owned()));
        }
        if key.to_ascii_lowercase().starts_with("aws:") {
            return Err(Invalid::TagKeyReserved);
        }
        Ok(key.to_owned())
    }

    fn parse_value(value: &str) -> Result<String, Invalid> {
        if value.chars().count() > 256 {
            return Err(Invalid::TagValueLength);
        }
        if !tag_chars_ok(value) {
            return Err(Invalid::TagValueChars(value.to_owned()));
        }
        Ok(value.to_owned())
    }

    /// The key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The value.
    pub fn value(&self) -> &str {
        &self.value
    }
}

/// Merges `incoming` into `existing` (same key: value replaced) and enforces [`MAX_TAGS`].
/// Keys repeated within `incoming` are a client mistake, as in AWS tagging APIs.
pub fn merge_tags(existing: &[Tag], incoming: &[Tag]) -> Result<Vec<Tag>, Invalid> {
    for (i, t) in incoming.iter().enumerate() {
        if incoming[..i].iter().any(|u| u.key == t.key) {
            return Err(Invalid::TagKeyRepeated(t.key.clone()));
        }
    }
    let mut out: Vec<Tag> = existing
        .iter()
        .filter(|t| !incoming.iter().any(|u| u.key == t.key))
        .cloned()
        .collect();
    out.extend(incoming.iter().cloned());
    if out.len() > MAX_TAGS {
        return Err(Invalid::TooManyTags(MAX_TAGS));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_merge_and_limits() {
        let a = Tag::parse("a", "1").unwrap();
        let a2 = Tag::parse("a", "2").unwrap();
        let b = Tag::parse("b", "").unwrap();
        let merged = merge_tags(&[a.clone(), b.clone()], std::slice::from_ref(&a2)).unwrap();
        assert_eq!(merged, vec![b, a2.clone()]);
        assert!(merge_tags(&[], &[a.clone(), a2]).is_err());
        assert!(Tag::parse("aws:x", "v").is_err());
        assert!(Tag::parse("", "v").is_err());
        assert!(Tag::parse(&"k".repeat(129), "v").is_err());
        assert!(Tag::parse("k", &"v".repeat(257)).is_err());
        assert!(Tag::parse("k!", "v").is_err());
        let many: Vec<Tag> = (0..51)
            .map(|i| Tag::parse(&format!("k{i}"), "").unwrap())
            .collect();
        assert!(merge_tags(&[], &many).is_err());
        assert!(merge_tags(&[], &many[..50]).is_ok());
    }
}
