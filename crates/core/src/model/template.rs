//! Custom verification email templates (`CreateCustomVerificationEmailTemplate` and its
//! siblings): the mail an address identity's owner receives, branded by the account, with
//! where the browser goes after the click.

use super::names::{AccountId, EmailAddress};
use super::tags::Tag;
use super::time::Timestamp;
use crate::error::Invalid;

/// SES's quota of custom verification email templates per account.
pub const MAX_TEMPLATES: u64 = 50;
/// SES: the whole template must be under 10 MB.
pub const MAX_TEMPLATE_CONTENT: usize = 10 * 1024 * 1024;
/// The longest subject line kept (RFC 5322's line limit, folding aside).
pub const MAX_TEMPLATE_SUBJECT: usize = 998;
/// The longest redirection URL accepted (what browsers reliably follow).
pub const MAX_REDIRECT_URL: usize = 2048;
/// The longest template name (SES's template names: 64 characters).
pub const MAX_TEMPLATE_NAME: usize = 64;

/// A template's name: 1 to 64 letters, digits, `_` or `-`, as SES names templates.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TemplateName(String);

impl TemplateName {
    /// Validates a name.
    pub fn parse(s: &str) -> Result<TemplateName, Invalid> {
        let ok = !s.is_empty()
            && s.len() <= MAX_TEMPLATE_NAME
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if ok {
            Ok(TemplateName(s.to_owned()))
        } else {
            Err(Invalid::TemplateName(s.to_owned()))
        }
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An absolute `http` or `https` URL a browser is sent to after a click.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedirectUrl(String);

impl RedirectUrl {
    /// Validates a URL: `http://` or `https://`, a host, no spaces or control characters.
    pub fn parse(s: &str) -> Result<RedirectUrl, Invalid> {
        let rest = s
            .strip_prefix("https://")
            .or_else(|| s.strip_prefix("http://"));
        let host_present = rest.is_some_and(|r| {
            r.split(['/', '?', '#'])
                .next()
                .is_some_and(|h| !h.is_empty())
        });
        let clean = !s.chars().any(|c| c.is_whitespace() || c.is_control());
        if host_present && clean && s.len() <= MAX_REDIRECT_URL {
            Ok(RedirectUrl(s.to_owned()))
        } else {
            Err(Invalid::RedirectUrl(s.chars().take(100).collect()))
        }
    }

    /// The URL.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What a template says: everything but its name, account and tags (Update replaces these).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateContent {
    /// `FromEmailAddress`: who the verification mail is from.
    pub from: EmailAddress,
    /// `TemplateSubject`.
    pub subject: String,
    /// `TemplateContent`: the HTML body.
    pub content: String,
    /// `SuccessRedirectionURL`.
    pub success_url: RedirectUrl,
    /// `FailureRedirectionURL`.
    pub failure_url: RedirectUrl,
}

impl TemplateContent {
    /// Checks the subject and the content's size (the addresses and URLs are checked when
    /// parsed).
    pub fn new(
        from: EmailAddress,
        subject: &str,
        content: &str,
        success_url: RedirectUrl,
        failure_url: RedirectUrl,
    ) -> Result<TemplateContent, Invalid> {
        if subject.is_empty()
            || subject.chars().count() > MAX_TEMPLATE_SUBJECT
            || subject.chars().any(|c| c == '\r' || c == '\n')
        {
            return Err(Invalid::TemplateSubject);
        }
        if content.is_empty() || content.len() > MAX_TEMPLATE_CONTENT {
            return Err(Invalid::TemplateContentSize {
                max: MAX_TEMPLATE_CONTENT,
                got: content.len(),
            });
        }
        Ok(TemplateContent {
            from,
            subject: subject.to_owned(),
            content: content.to_owned(),
            success_url,
            failure_url,
        })
    }
}

/// A stored template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerificationTemplate {
    /// The owning account.
    pub account: AccountId,
    /// `TemplateName`, unique in the account.
    pub name: TemplateName,
    /// What it says.
    pub content: TemplateContent,
    /// Tags given at creation.
    pub tags: Vec<Tag>,
    /// When it was created.
    pub created_at: Timestamp,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_urls_subjects_and_sizes() {
        assert!(TemplateName::parse("Welcome_v2-final").is_ok());
        for bad in ["", "with space", "dot.ted", "ü", &"a".repeat(65)] {
            assert!(TemplateName::parse(bad).is_err(), "{bad}");
        }
        assert!(TemplateName::parse(&"a".repeat(64)).is_ok());
        for ok in [
            "https://app.example.com/ok",
            "http://localhost:3000/x?y=1#z",
        ] {
            assert!(RedirectUrl::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "example.com",
            "ftp://x.example",
            "https://",
            "https:///path",
            "https://a b",
            "javascript:alert(1)",
        ] {
            assert!(RedirectUrl::parse(bad).is_err(), "{bad}");
        }
        let url = || RedirectUrl::parse("https://x.example/").unwrap();
        let from = || EmailAddress::parse("a@example.com").unwrap();
        assert!(TemplateContent::new(from(), "Hi", "<p>x</p>", url(), url()).is_ok());
        for subject in ["", "a\r\nBcc: x@evil.example", &"s".repeat(999)] {
            assert_eq!(
                TemplateContent::new(from(), subject, "x", url(), url()),
                Err(Invalid::TemplateSubject)
            );
        }
        let big = "x".repeat(MAX_TEMPLATE_CONTENT + 1);
        assert!(matches!(
            TemplateContent::new(from(), "Hi", &big, url(), url()),
            Err(Invalid::TemplateContentSize { .. })
        ));
        assert!(TemplateContent::new(from(), "Hi", "", url(), url()).is_err());
    }
}
