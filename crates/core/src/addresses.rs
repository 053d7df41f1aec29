//! Address identities verified the way SES verifies them: a link mailed to the address, which
//! its owner follows within 24 hours. `Invitations` makes and mails a link (Sesame's own letter,
//! or an account's custom verification template); `Addresses` is the use case around it:
//! SendCustomVerificationEmail, and what a followed link shows (`look`) and does (`confirm`).
//! The rules (`judge`, `invited`, `confirmed`, `expire`) are pure and table-tested.

use crate::error::{Error, Limit, Missing};
use crate::identities::new_identity;
use crate::model::{
    AccountId, DkimStatus, EmailAddress, Identity, IdentityName, LinkToken, Mailbox, SimpleMessage,
    TemplateName, Timestamp, VerificationLink, VerificationTemplate,
};
use crate::ports::{Clock, IdentityStore, KeyVault, TemplateStore};
use crate::sending::{Content, Draft, Sending};
use crate::shared::{Records, bulk_err};
use std::sync::Arc;

/// How verification mail is made.
#[derive(Debug, Clone)]
pub struct LinkSettings {
    /// The base URL people's browsers reach Sesame at (`--public-url`), without a trailing
    /// `/`; a link is `<public_url>/verify/<token>`.
    pub public_url: String,
    /// Who Sesame's own verification mail is from (`--verification-from`).
    pub from: Mailbox,
    /// The operator's account: Sesame's own mail is DKIM-signed when `from`'s domain is a
    /// verified identity of it.
    pub operator: Option<AccountId>,
    /// How long a link works (SES: 24 hours).
    pub lifetime_ms: i64,
    /// The region Sesame's own mail names.
    pub region: String,
}

/// What a link is worth now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    /// Following it verifies the address.
    Open,
    /// The address is verified (by this link or an earlier one); following it again is
    /// harmless.
    Verified,
    /// Too late: it expired, or the identity is FAILED.
    Expired,
}

/// The state of `identity`'s link at `now`.
pub fn judge(identity: &Identity, now: Timestamp) -> LinkState {
    match (&identity.link, identity.verification_status) {
        (_, DkimStatus::Success) => LinkState::Verified,
        (Some(link), DkimStatus::Pending) if now < link.expires_at => LinkState::Open,
        _ => LinkState::Expired,
    }
}

/// `identity` after `link` was mailed to it: PENDING again until it is followed (a verified
/// address stays verified), its schedule due when the link expires.
pub fn invited(identity: &mut Identity, link: VerificationLink) {
    let v = &mut identity.verification;
    if identity.verification_status != DkimStatus::Success {
        identity.verification_status = DkimStatus::Pending;
        v.pending_since = Some(link.sent_at);
        v.next_check_at = Some(link.expires_at);
        v.attempts = 0;
        v.error = None;
    }
    identity.link = Some(link);
}

/// `identity` after its open link was followed at `now`: verified, nothing more to wait for.
pub fn confirmed(identity: &mut Identity, now: Timestamp) {
    identity.verification_status = DkimStatus::Success;
    let v = &mut identity.verification;
    v.last_checked = Some(now);
    v.last_success = Some(now);
    v.next_check_at = None;
    v.error = None;
    v.attempts = 0;
}

/// What the verifier does when an address's schedule comes due: a PENDING address whose link
/// expired unfollowed is FAILED (its owner may ask again); one that is not due yet (a write
/// moved its schedule) waits for its link's expiry; anything else has nothing to wait for.
pub fn expire(identity: &mut Identity, now: Timestamp) {
    let v = &mut identity.verification;
    match (&identity.link, identity.verification_status) {
        (Some(link), DkimStatus::Pending) if now >= link.expires_at => {
            identity.verification_status = DkimStatus::Failed;
            v.last_checked = Some(now);
            v.next_check_at = None;
        }
        (Some(link), DkimStatus::Pending) => v.next_check_at = Some(link.expires_at),
        _ => v.next_check_at = None,
    }
}

/// A mailed link, and the id of the message that carries it.
#[derive(Debug, Clone)]
pub struct Invited {
    /// What the identity keeps of the link.
    pub link: VerificationLink,
    /// The verification mail's `MessageId`.
    pub message_id: String,
}

/// Makes verification links and mails them.
pub struct Invitations {
    vault: Arc<dyn KeyVault>,
    clock: Arc<dyn Clock>,
    sending: Arc<Sending>,
    settings: LinkSettings,
}

impl Invitations {
    /// Mails through `sending`, with tokens from `vault`.
    pub fn new(
        vault: Arc<dyn KeyVault>,
        clock: Arc<dyn Clock>,
        sending: Arc<Sending>,
        settings: LinkSettings,
    ) -> Invitations {
        Invitations {
            vault,
            clock,
            sending,
            settings,
        }
    }

    /// Mails a fresh link to `address`: Sesame's own letter from the operator's sender, or
    /// `template`'s from its `FromEmailAddress`, which must be a verified identity of
    /// `account` (as SendEmail requires; else `MessageRejected`).
    pub fn mail(
        &self,
        account: &AccountId,
        address: &EmailAddress,
        template: Option<&VerificationTemplate>,
    ) -> Result<Invited, Error> {
        let new = self.vault.new_link()?;
        let url = format!("{}/verify/{}", self.settings.public_url, new.token.expose());
        let to = Mailbox::parse(address.as_str())?;
        let sent_at = self.clock.now();
        let link = VerificationLink {
            hash: new.hash,
            sent_at,
            expires_at: Timestamp(sent_at.0.saturating_add(self.settings.lifetime_ms)),
            success_url: template.map(|t| t.content.success_url.as_str().to_owned()),
            failure_url: template.map(|t| t.content.failure_url.as_str().to_owned()),
        };
        let (message, own) = match template {
            Some(t) => (templated_letter(t, address, &url)?, false),
            None => (own_letter(&self.settings, address, &url), true),
        };
        let draft = Draft {
            destination: crate::model::Destination {
                to: vec![to],
                ..Default::default()
            },
            content: Content::Simple(message),
        };
        let message_id = if own {
            self.sending
                .send_as_operator(self.settings.operator.as_ref(), draft)?
        } else {
            self.sending.send_email(account, draft)?
        };
        Ok(Invited { link, message_id })
    }

    /// How long a link works.
    pub fn lifetime_ms(&self) -> i64 {
        self.settings.lifetime_ms
    }
}

/// `&`, `<`, `>`, `"` and `'` escaped, for text put into HTML.
fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Sesame's own verification mail, a text and an HTML part.
fn own_letter(settings: &LinkSettings, address: &EmailAddress, url: &str) -> SimpleMessage {
    let hours = settings.lifetime_ms / Timestamp::HOUR;
    let within = if hours >= 1 {
        format!("{hours} hours")
    } else {
        format!("{} minutes", (settings.lifetime_ms / 60_000).max(1))
    };
    let region = &settings.region;
    let text = format!(
        "Someone asked to send email as {address} through Sesame, in region {region}.\r\n\
         \r\n\
         If it was you, confirm that you own this address by opening this link within {within}:\r\n\
         \r\n\
         {url}\r\n\
         \r\n\
         If it was not you, ignore this message: nothing is sent as {address} unless the link is followed.\r\n",
        address = address.as_str(),
    );
    let a = escape_html(address.as_str());
    let html = format!(
        "<!DOCTYPE html><html><body>\
         <p>Someone asked to send email as <b>{a}</b> through Sesame, in region {r}.</p>\
         <p>If it was you, confirm that you own this address by opening this link within {within}:</p>\
         <p><a href=\"{u}\">{u}</a></p>\
         <p>If it was not you, ignore this message: nothing is sent as {a} unless the link is followed.</p>\
         </body></html>",
        r = escape_html(region),
        u = escape_html(url),
    );
    SimpleMessage {
        from: settings.from.clone(),
        reply_to: vec![],
        subject: format!("Email address verification request in region {region}"),
        text: Some(text),
        html: Some(html),
        headers: vec![],
    }
}

/// A template's verification mail: its subject, its HTML with the link added at the end of the
/// body (as SES adds it), and a text part with the link.
fn templated_letter(
    t: &VerificationTemplate,
    address: &EmailAddress,
    url: &str,
) -> Result<SimpleMessage, Error> {
    let u = escape_html(url);
    let link = format!("<p><a href=\"{u}\">{u}</a></p>");
    let content = &t.content.content;
    let html = match content.to_ascii_lowercase().rfind("</body>") {
        Some(at) => format!("{}{link}{}", &content[..at], &content[at..]),
        None => format!("{content}{link}"),
    };
    let text = format!(
        "To confirm that {} is your address, open this link:\r\n\r\n{url}\r\n",
        address.as_str()
    );
    Ok(SimpleMessage {
        from: Mailbox::parse(t.content.from.as_str())?,
        reply_to: vec![],
        subject: t.content.subject.clone(),
        text: Some(text),
        html: Some(html),
        headers: vec![],
    })
}

/// What a followed link shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkView {
    /// No such link: unknown, mistyped, replaced by a newer one, or its identity deleted.
    Unknown,
    /// It verifies `address` when confirmed, until `expires_at`.
    Open {
        /// The address it verifies.
        address: EmailAddress,
        /// When it stops working.
        expires_at: Timestamp,
    },
    /// `address` is verified; the browser goes to `redirect` if the template named one.
    Verified {
        /// The address.
        address: EmailAddress,
        /// The template's success URL.
        redirect: Option<String>,
    },
    /// Too late for `address`; the browser goes to `redirect` if the template named one.
    Expired {
        /// The address.
        address: EmailAddress,
        /// The template's failure URL.
        redirect: Option<String>,
    },
}

fn view(identity: &Identity, now: Timestamp) -> LinkView {
    let IdentityName::Email(address) = &identity.name else {
        return LinkView::Unknown;
    };
    let Some(link) = &identity.link else {
        return LinkView::Unknown;
    };
    let address = address.clone();
    // A template's redirects hold only within the link's own time (and as long again after
    // it expired): a link that keeps working forever would make Sesame's public URL an open
    // redirector to wherever an account pointed its template.
    let lifetime = link.expires_at.0.saturating_sub(link.sent_at.0);
    match judge(identity, now) {
        LinkState::Open => LinkView::Open {
            address,
            expires_at: link.expires_at,
        },
        LinkState::Verified => LinkView::Verified {
            address,
            redirect: link.success_url.clone().filter(|_| now < link.expires_at),
        },
        LinkState::Expired => LinkView::Expired {
            address,
            redirect: link
                .failure_url
                .clone()
                .filter(|_| now.0 < link.expires_at.0.saturating_add(lifetime)),
        },
    }
}

/// The address verification use cases.
pub struct Addresses {
    records: Records,
    templates: Arc<dyn TemplateStore>,
    vault: Arc<dyn KeyVault>,
    clock: Arc<dyn Clock>,
    invitations: Arc<Invitations>,
    max_identities: u64,
}

impl Addresses {
    /// Wires the use cases to their ports; a new identity counts towards `max_identities`.
    pub fn new(
        store: Arc<dyn IdentityStore>,
        templates: Arc<dyn TemplateStore>,
        vault: Arc<dyn KeyVault>,
        clock: Arc<dyn Clock>,
        invitations: Arc<Invitations>,
        max_identities: u64,
    ) -> Addresses {
        Addresses {
            records: Records::new(store),
            templates,
            vault,
            clock,
            invitations,
            max_identities,
        }
    }

    /// SendCustomVerificationEmail: mails `template`'s verification mail with a fresh link to
    /// `address`, creating the address identity if the account has none (a link mailed
    /// earlier stops working). Returns the message id.
    pub fn send_custom(
        &self,
        account: &AccountId,
        address: &EmailAddress,
        template: &TemplateName,
        configuration_set: Option<String>,
    ) -> Result<String, Error> {
        let t = self
            .templates
            .get_template(account, template)
            .map_err(bulk_err)?
            .ok_or_else(|| Error::NotFound(Missing::Template(template.as_str().to_owned())))?;
        if let Some(set) = configuration_set {
            // Configuration sets are not (yet) part of Sesame, so no name can refer to one.
            return Err(Error::NotFound(Missing::ConfigurationSet(set)));
        }
        let name = IdentityName::Email(address.clone());
        match self.records.load(account, &name)? {
            Some(current) => {
                let sent = self.invitations.mail(account, address, Some(&t))?;
                // `save_modified` may apply the change to a fresher copy: the same link each time.
                self.records.save_modified(current, |id| {
                    invited(id, sent.link.clone());
                    Ok(())
                })?;
                Ok(sent.message_id)
            }
            None => {
                self.room_for_one(account)?;
                let sent = self.invitations.mail(account, address, Some(&t))?;
                let mut id = new_identity(account.clone(), name, vec![], None, self.clock.now());
                invited(&mut id, sent.link);
                self.records.insert(&id, self.max_identities)?;
                Ok(sent.message_id)
            }
        }
    }

    /// Refuses before any mail is sent when the account cannot take one more identity (the
    /// insert checks again, atomically).
    fn room_for_one(&self, account: &AccountId) -> Result<(), Error> {
        room_for_one(&self.records, account, self.max_identities)
    }

    /// What the link with `token` shows now (a GET: changes nothing).
    pub fn look(&self, token: &str) -> Result<LinkView, Error> {
        Ok(match self.find(token)? {
            Some(id) => view(&id, self.clock.now()),
            None => LinkView::Unknown,
        })
    }

    /// Follows the link with `token`: an open link verifies its address; any other changes
    /// nothing. Returns what the link shows afterwards.
    pub fn confirm(&self, token: &str) -> Result<LinkView, Error> {
        let Some(current) = self.find(token)? else {
            return Ok(LinkView::Unknown);
        };
        let hash = current.link.as_ref().map(|l| l.hash.clone());
        let now = self.clock.now();
        let saved = self.records.save_modified(current, |id| {
            // Judged again on the fresh copy: a newer link may have replaced this one.
            if id.link.as_ref().map(|l| &l.hash) == hash.as_ref()
                && judge(id, now) == LinkState::Open
            {
                confirmed(id, now);
            }
            Ok(())
        });
        match saved {
            Ok(id) if id.link.as_ref().map(|l| &l.hash) == hash.as_ref() => Ok(view(&id, now)),
            Ok(_) | Err(Error::NotFound(_)) => Ok(LinkView::Unknown),
            Err(e) => Err(e),
        }
    }

    fn find(&self, token: &str) -> Result<Option<Identity>, Error> {
        let Ok(token) = LinkToken::parse(token) else {
            return Ok(None);
        };
        let hash = self.vault.link_hash(&token);
        self.records
            .store()
            .identity_by_link(&hash)
            .map_err(bulk_err)
    }
}

/// Whether `account` holds fewer than `max` identities.
pub(crate) fn room_for_one(records: &Records, account: &AccountId, max: u64) -> Result<(), Error> {
    let held: u64 = records
        .store()
        .count_identities(Some(account))
        .map_err(bulk_err)?
        .iter()
        .map(|c| c.count)
        .sum();
    if held >= max {
        return Err(Error::LimitExceeded(Limit::Identities));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::model::{AccountId, LinkHash};

    const H: i64 = Timestamp::HOUR;

    fn address(status: DkimStatus, link: Option<(i64, i64)>) -> Identity {
        let mut id = new_identity(
            AccountId::parse("000000000001").unwrap(),
            IdentityName::parse("a@example.com").unwrap(),
            vec![],
            None,
            Timestamp(0),
        );
        id.verification_status = status;
        id.link = link.map(|(sent, expires)| VerificationLink {
            hash: LinkHash::parse(&"a".repeat(64)).unwrap(),
            sent_at: Timestamp(sent),
            expires_at: Timestamp(expires),
            success_url: None,
            failure_url: None,
        });
        id
    }

    #[test]
    fn judge_table() {
        use DkimStatus::*;
        use LinkState::*;
        let cases = [
            // status, link (sent, expires), now, expected
            (Pending, Some((0, 24 * H)), 0, Open),
            (Pending, Some((0, 24 * H)), 24 * H - 1, Open),
            (Pending, Some((0, 24 * H)), 24 * H, Expired),
            (Pending, None, 0, Expired),
            (Failed, Some((0, 24 * H)), H, Expired),
            (Success, Some((0, 24 * H)), H, Verified),
            (Success, Some((0, 24 * H)), 100 * H, Verified),
            (Success, None, 0, Verified),
            (TemporaryFailure, Some((0, 24 * H)), H, Expired),
        ];
        for (status, link, now, want) in cases {
            let id = address(status, link);
            assert_eq!(
                judge(&id, Timestamp(now)),
                want,
                "{status:?} {link:?} at {now}"
            );
        }
    }

    #[test]
    fn expire_table() {
        use DkimStatus::*;
        let cases = [
            // status, link, now, expected status, expected next check
            (Pending, Some((0, 24 * H)), 24 * H, Failed, None),
            (Pending, Some((0, 24 * H)), 30 * H, Failed, None),
            (Pending, Some((0, 24 * H)), 23 * H, Pending, Some(24 * H)),
            (Success, Some((0, 24 * H)), 30 * H, Success, None),
            (Pending, None, 30 * H, Pending, None),
            (Failed, Some((0, 24 * H)), 30 * H, Failed, None),
        ];
        for (status, link, now, want, next) in cases {
            let mut id = address(status, link);
            id.verification.next_check_at = Some(Timestamp(now));
            expire(&mut id, Timestamp(now));
            assert_eq!(id.verification_status, want, "{status:?} {link:?} at {now}");
            assert_eq!(id.verification.next_check_at, next.map(Timestamp));
        }
    }

    #[test]
    fn a_new_link_reopens_all_but_a_verified_address() {
        use DkimStatus::*;
        for (status, want, next) in [
            (Pending, Pending, Some(30 * H)),
            (Failed, Pending, Some(30 * H)),
            (Success, Success, None),
        ] {
            let mut id = address(status, Some((0, 24 * H)));
            let link = VerificationLink {
                hash: LinkHash::parse(&"b".repeat(64)).unwrap(),
                sent_at: Timestamp(6 * H),
                expires_at: Timestamp(30 * H),
                success_url: Some("https://app.example/ok".into()),
                failure_url: None,
            };
            invited(&mut id, link.clone());
            assert_eq!(id.verification_status, want);
            assert_eq!(id.verification.next_check_at, next.map(Timestamp));
            assert_eq!(id.link, Some(link), "the newer link replaces the older");
        }
    }

    #[test]
    fn confirming_verifies_and_stops_the_schedule() {
        let mut id = address(DkimStatus::Pending, Some((0, 24 * H)));
        id.verification.next_check_at = Some(Timestamp(24 * H));
        confirmed(&mut id, Timestamp(H));
        assert_eq!(id.verification_status, DkimStatus::Success);
        assert!(id.verified_for_sending());
        assert_eq!(id.verification.last_success, Some(Timestamp(H)));
        assert_eq!(id.verification.next_check_at, None);
    }

    #[test]
    fn html_is_escaped_and_the_link_goes_inside_the_body() {
        assert_eq!(escape_html("a&b<c>\"d'"), "a&amp;b&lt;c&gt;&quot;d&#39;");
        let t = VerificationTemplate {
            account: AccountId::parse("000000000001").unwrap(),
            name: TemplateName::parse("t").unwrap(),
            content: crate::model::TemplateContent::new(
                EmailAddress::parse("from@example.com").unwrap(),
                "Welcome",
                "<html><BODY><h1>Hi</h1></BODY></html>",
                crate::model::RedirectUrl::parse("https://app.example/ok").unwrap(),
                crate::model::RedirectUrl::parse("https://app.example/no").unwrap(),
            )
            .unwrap(),
            tags: vec![],
            created_at: Timestamp(0),
        };
        let to = EmailAddress::parse("o'neil@example.com").unwrap();
        let m = templated_letter(&t, &to, "http://x/verify/T").unwrap();
        assert_eq!(
            m.html.as_deref(),
            Some(
                "<html><BODY><h1>Hi</h1><p><a href=\"http://x/verify/T\">http://x/verify/T</a></p></BODY></html>"
            )
        );
        assert!(m.text.unwrap().contains("http://x/verify/T"));
        assert_eq!(m.subject, "Welcome");
    }
}
