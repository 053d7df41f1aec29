//! The SendEmail use case: a validated `Draft` becomes a message (composed or read by the
//! `Mailer`), every sender it claims is authorised, the first author's domain key signs it (in
//! the `KeyVault`, which alone unseals keys), and the `Mailer` delivers it. Also `signing_key`,
//! the key that signs for an identity (`sesame sign`).

use crate::error::{Error, Invalid, MessageProblem, Rejection};
use crate::model::{
    AccountId, Destination, DkimStatus, DomainName, EmailAddress, Identity, IdentityName, Mailbox,
    MxFailure, SimpleMessage, Timestamp,
};
use crate::ports::{Clock, IdentityStore, KeyVault, Mailer};
use crate::shared::{Records, not_found};
use std::sync::Arc;

/// SES's per-message recipient limit (To + Cc + Bcc).
pub const MAX_RECIPIENTS: usize = 50;

/// A SendEmail request after the edge validated it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Draft {
    /// The recipients the request names; empty for a whole message whose own headers name
    /// them.
    pub destination: Destination,
    /// What to send.
    pub content: Content,
}

/// A message made from parts, or a whole message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    /// Composed here (SendEmail's `Simple` content); the request must name recipients.
    Simple(SimpleMessage),
    /// Sent as it is (SendEmail's `Raw` content).
    Raw(RawMessage),
}

/// A whole MIME message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawMessage {
    /// The envelope sender the request names; `None`: the message's own author.
    pub from: Option<EmailAddress>,
    /// The message, as the client wrote it.
    pub data: Vec<u8>,
}

/// Which key signs mail from a sender, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningChoice {
    /// `d=`
    pub domain: String,
    /// `s=`
    pub selector: String,
    /// The sealed private key.
    pub sealed_private: Vec<u8>,
}

fn not_verified(addresses: &[&str]) -> Error {
    Error::MessageRejected(Rejection::NotVerified(
        addresses.iter().map(|a| (*a).to_owned()).collect(),
    ))
}

/// The domain and its parents that can be identities (`a.b.example.com`, `b.example.com`,
/// `example.com`), most specific first.
fn domain_chain(domain: &DomainName) -> Vec<IdentityName> {
    let labels: Vec<&str> = domain.as_str().split('.').collect();
    (0..labels.len().saturating_sub(1))
        .filter_map(|i| DomainName::parse(&labels[i..].join(".")).ok())
        .map(IdentityName::Domain)
        .collect()
}

/// What happens to mail from a domain whose signing key was revoked before a replacement signs
/// (`--revoked-key-mail`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RevokedKeyMail {
    /// Refused with MessageRejected naming the revocation: a receiver that enforces DMARC
    /// would reject it unsigned anyway, and the sender learns why at once.
    #[default]
    Refuse,
    /// Sent unsigned.
    Unsigned,
}

/// The key a domain identity signs with now: its DKIM enabled and verified (SUCCESS) and its
/// signing key not revoked (else `revoked` decides: refused, or `None`, unsigned).
fn signing_choice(d: &Identity, revoked: RevokedKeyMail) -> Result<Option<SigningChoice>, Error> {
    let Some(dkim) = d.dkim.as_ref() else {
        return Ok(None);
    };
    if !dkim.signing_enabled || d.verification_status != DkimStatus::Success {
        return Ok(None);
    }
    let Some(key) = dkim.keys.signing_key() else {
        return match revoked {
            RevokedKeyMail::Unsigned => Ok(None),
            RevokedKeyMail::Refuse => Err(Error::MessageRejected(Rejection::KeyRevoked {
                domain: d.name.as_str().to_owned(),
                selector: dkim.keys.signing().selector.as_str().to_owned(),
            })),
        };
    };
    Ok(Some(SigningChoice {
        domain: d.name.as_str().to_owned(),
        selector: key.selector.as_str().to_owned(),
        sealed_private: key.sealed_private.clone(),
    }))
}

/// The key that signs for `name` (a domain, or an address: its most specific domain
/// identity), for `sesame sign`. The domain's DKIM must be enabled and verified.
pub fn signing_key(
    store: Arc<dyn IdentityStore>,
    account: &AccountId,
    name: &IdentityName,
) -> Result<SigningChoice, Error> {
    let records = Records::new(store);
    let chain = match name {
        IdentityName::Domain(d) => domain_chain(d),
        IdentityName::Email(e) => domain_chain(&e.domain()),
    };
    for candidate in chain {
        let Some(d) = records.load(account, &candidate)? else {
            continue;
        };
        return signing_choice(&d, RevokedKeyMail::Refuse)?.ok_or_else(|| {
            Error::MessageRejected(Rejection::DoesNotSign(d.name.as_str().to_owned()))
        });
    }
    Err(not_found(name))
}

/// Who vouches for a message's senders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Authority {
    /// A client: each sender must be a verified identity of its account.
    Caller,
    /// Sesame itself, from the operator's configured sender: signed when that can be done.
    Operator,
}

/// A message as it will leave: who sends it, who it claims wrote it, whom it is for.
struct Outgoing {
    /// The envelope sender (FromEmailAddress, or the message's own sender).
    from: EmailAddress,
    /// Every address the message itself claims as its author: each mailbox of its `From:`
    /// header, then its `Sender:`. The first one's domain signs (receivers align DKIM with the
    /// `From:` domain). Each, like `from`, must be an identity the caller may send as.
    authors: Vec<EmailAddress>,
    /// Every recipient, Bcc included (the SMTP envelope).
    recipients: Vec<EmailAddress>,
    /// The whole MIME message.
    message: Vec<u8>,
}

/// SendEmail, over the ports it needs: identities to authorise senders, the vault for ids and
/// signatures, the clock for `Date:` and `t=`, and the mail system.
pub struct Sending {
    records: Records,
    vault: Arc<dyn KeyVault>,
    clock: Arc<dyn Clock>,
    mailer: Arc<dyn Mailer>,
    envelope_domain: DomainName,
    revoked: RevokedKeyMail,
}

impl Sending {
    /// Wires the use case to its ports; mail without a verified custom MAIL FROM domain goes
    /// out with an envelope sender in `envelope_domain` (`--default-mail-from-domain`).
    pub fn new(
        store: Arc<dyn IdentityStore>,
        vault: Arc<dyn KeyVault>,
        clock: Arc<dyn Clock>,
        mailer: Arc<dyn Mailer>,
        envelope_domain: DomainName,
    ) -> Sending {
        Sending {
            records: Records::new(store),
            vault,
            clock,
            mailer,
            envelope_domain,
            revoked: RevokedKeyMail::Refuse,
        }
    }

    /// What to do with mail from a domain whose signing key is revoked (default: refuse).
    pub fn with_revoked_key_mail(mut self, revoked: RevokedKeyMail) -> Sending {
        self.revoked = revoked;
        self
    }

    /// The envelope sender (SMTP `MAIL FROM`, the `Return-Path:`) of a message from `from`, as
    /// SES chooses it: `<message id>@<MAIL FROM domain>` when the sending identity (the
    /// address's own, else its most specific domain's) has a verified custom MAIL FROM domain;
    /// otherwise in the default envelope domain, or refused when the identity says
    /// REJECT_MESSAGE.
    fn envelope_sender(
        &self,
        account: Option<&AccountId>,
        from: &EmailAddress,
        message_id: &str,
    ) -> Result<EmailAddress, Error> {
        let mut configured = None;
        if let Some(account) = account {
            let mut chain = vec![IdentityName::Email(from.clone())];
            chain.extend(domain_chain(&from.domain()));
            for name in chain {
                if let Some(id) = self.records.load(account, &name)?
                    && let Some(mf) = id.mail_from
                {
                    configured = Some((mf, id.mx_failure));
                    break;
                }
            }
        }
        let domain = match configured {
            Some((mf, _)) if mf.status == DkimStatus::Success => mf.domain,
            Some((mf, MxFailure::RejectMessage)) => {
                return Err(Error::MessageRejected(Rejection::MailFromNotVerified {
                    mail_from: mf.domain.as_str().to_owned(),
                    status: mf.status.name(),
                }));
            }
            _ => self.envelope_domain.clone(),
        };
        EmailAddress::parse(&format!("{message_id}@{}", domain.as_str()))
            .map_err(|e| Error::Internal(format!("envelope sender: {e}")))
    }

    /// Decides whether `from` may send, and with which key it is signed. The address identity
    /// or its (most specific) domain identity must be verified for sending (SES: otherwise
    /// MessageRejected); signing needs the domain's DKIM enabled and verified (SUCCESS), and no
    /// signing override switched off on the address. `None` inside: sent unsigned.
    fn sender(
        &self,
        account: &AccountId,
        from: &EmailAddress,
    ) -> Result<Option<Option<SigningChoice>>, Error> {
        let address = self
            .records
            .load(account, &IdentityName::Email(from.clone()))?;
        let mut domain = None;
        for name in domain_chain(&from.domain()) {
            if let Some(d) = self.records.load(account, &name)? {
                domain = Some(d);
                break;
            }
        }
        let verified = address.as_ref().is_some_and(Identity::verified_for_sending)
            || domain.as_ref().is_some_and(Identity::verified_for_sending);
        if !verified {
            return Ok(None);
        }
        if address.as_ref().and_then(|a| a.signing_override) == Some(false) {
            return Ok(Some(None));
        }
        match domain {
            Some(d) => Ok(Some(signing_choice(&d, self.revoked)?)),
            None => Ok(Some(None)),
        }
    }

    /// SendEmail: make the message, authorise the sender, sign, deliver; returns the message
    /// id.
    pub fn send_email(&self, account: &AccountId, draft: Draft) -> Result<String, Error> {
        self.send(Some(account), draft, Authority::Caller)
    }

    /// Mail Sesame itself sends (the verification mail) from a sender of the operator's
    /// account: never refused for an unverified sender, signed only when the sender's domain
    /// is a verified identity of `operator` (no operator: unsigned).
    pub fn send_as_operator(
        &self,
        operator: Option<&AccountId>,
        draft: Draft,
    ) -> Result<String, Error> {
        self.send(operator, draft, Authority::Operator)
    }

    fn send(
        &self,
        account: Option<&AccountId>,
        draft: Draft,
        authority: Authority,
    ) -> Result<String, Error> {
        let message_id = self.vault.new_message_id()?;
        // One reading of the clock: the Date header and the signature's t= agree.
        let now = self.clock.now();
        let out = self.outgoing(draft, &message_id, now)?;
        if out.recipients.len() > MAX_RECIPIENTS {
            return Err(Invalid::TooManyRecipients {
                max: MAX_RECIPIENTS,
                got: out.recipients.len(),
            }
            .into());
        }
        // Every claimed sender is checked, not just the first: a message must not carry a
        // signature of ours next to a From: mailbox that is someone else's.
        let author = out.authors.first().unwrap_or(&out.from);
        let mut claimed = vec![author];
        for a in out.authors.iter().chain(std::iter::once(&out.from)) {
            if !claimed.contains(&a) {
                claimed.push(a);
            }
        }
        let mut refused: Vec<&str> = Vec::new();
        let mut key = None;
        for (i, addr) in claimed.into_iter().enumerate() {
            let verdict = match account {
                Some(account) => self.sender(account, addr)?,
                None => None,
            };
            match verdict {
                Some(choice) if i == 0 => key = choice,
                Some(_) => {}
                None => refused.push(addr.as_str()),
            }
        }
        if !refused.is_empty() && authority == Authority::Caller {
            return Err(not_verified(&refused));
        }
        let envelope = self.envelope_sender(account, &out.from, &message_id)?;
        let message = match key {
            Some(k) => {
                self.vault
                    .sign(&k.sealed_private, &out.message, &k.domain, &k.selector, now)?
            }
            None => out.message,
        };
        self.mailer
            .deliver(&message_id, &envelope, &out.recipients, &message)?;
        Ok(message_id)
    }

    /// The message of `draft` with its envelope: composed (`Message-ID: <id@from-domain>`),
    /// or a whole message whose headers name its authors and, when the request names no
    /// recipients, its recipients.
    fn outgoing(&self, draft: Draft, message_id: &str, now: Timestamp) -> Result<Outgoing, Error> {
        let Draft {
            destination,
            content,
        } = draft;
        let mut recipients = destination.recipients();
        let raw = match content {
            Content::Simple(simple) => {
                let header_id = format!("{message_id}@{}", simple.from.address.domain().as_str());
                let message = self
                    .mailer
                    .compose(&simple, &destination, &header_id, now)?;
                let from = simple.from.address;
                return Ok(Outgoing {
                    from: from.clone(),
                    authors: vec![from],
                    recipients,
                    message,
                });
            }
            Content::Raw(raw) => raw,
        };
        let headers = self.mailer.read_headers(&raw.data)?;
        let refused = |p: MessageProblem| Error::MessageRejected(Rejection::Message(p));
        let mut authors = Vec::new();
        for a in headers.from.iter().chain(&headers.sender) {
            authors.push(
                EmailAddress::parse(a)
                    .map_err(|_| refused(MessageProblem::SenderAddress(a.clone())))?,
            );
        }
        // RFC 5322: with several From: mailboxes the Sender: is the one who sent it.
        let own = match (headers.from.len(), &headers.sender) {
            (1, _) => authors.first(),
            (_, Some(_)) => authors.last(),
            _ => None,
        };
        let from = match raw.from {
            Some(f) => f,
            None => own
                .cloned()
                .ok_or_else(|| refused(MessageProblem::NoOwnSender(headers.from.len())))?,
        };
        if recipients.is_empty() {
            for r in &headers.recipients {
                recipients.push(Mailbox::parse(r)?.address);
            }
        }
        if recipients.is_empty() {
            return Err(Invalid::NoRecipients.into());
        }
        Ok(Outgoing {
            from,
            authors,
            recipients,
            message: raw.data,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{HeaderAddresses, Verification};
    use crate::testing::{FakeVault, ManualClock, MemMailer, MemStore};

    const NOW_MS: i64 = 1_700_000_000_000;

    struct Fixture {
        sending: Sending,
        store: Arc<MemStore>,
        mailer: Arc<MemMailer>,
        account: AccountId,
    }

    fn fixture() -> Fixture {
        let store = Arc::new(MemStore::default());
        let mailer = Arc::new(MemMailer::default());
        Fixture {
            sending: Sending::new(
                store.clone(),
                Arc::new(FakeVault::default()),
                Arc::new(ManualClock::new(Timestamp(NOW_MS))),
                mailer.clone(),
                DomainName::parse("mail.sesame.test").unwrap(),
            ),
            store,
            mailer,
            account: AccountId::parse("123456789012").unwrap(),
        }
    }

    impl Fixture {
        /// A verified address identity (it sends, unsigned).
        fn verified(&self, address: &str) {
            self.verified_with(address, None, MxFailure::UseDefaultValue);
        }

        /// A verified identity with a custom MAIL FROM domain in `status`.
        fn verified_with(&self, name: &str, mail_from: Option<(&str, DkimStatus)>, mx: MxFailure) {
            let address = name;
            let identity = Identity {
                account: self.account.clone(),
                name: IdentityName::parse(address).unwrap(),
                version: 0,
                created_at: Timestamp(NOW_MS),
                feedback_forwarding: true,
                dkim: None,
                signing_override: None,
                verification_status: DkimStatus::Success,
                tags: Vec::new(),
                verification: Verification::default(),
                mail_from: mail_from.map(|(d, status)| crate::model::MailFrom {
                    domain: DomainName::parse(d).unwrap(),
                    status,
                    verification: Verification::default(),
                }),
                mx_failure: mx,
                recommendations: Default::default(),
                link: None,
            };
            self.store.insert_identity(&identity, 100).unwrap();
        }

        fn send(&self, draft: Draft) -> Result<String, Error> {
            self.sending.send_email(&self.account, draft)
        }
    }

    fn mailbox(s: &str) -> Mailbox {
        Mailbox::parse(s).unwrap()
    }

    fn simple(from: &str, to: &[&str]) -> Draft {
        Draft {
            destination: Destination {
                to: to.iter().map(|t| mailbox(t)).collect(),
                ..Destination::default()
            },
            content: Content::Simple(SimpleMessage {
                from: mailbox(from),
                reply_to: Vec::new(),
                subject: "hi".into(),
                text: Some("body".into()),
                html: None,
                headers: Vec::new(),
            }),
        }
    }

    fn raw(from: Option<&str>, headers: HeaderAddresses) -> (Draft, Vec<u8>) {
        // MemMailer reads these headers back instead of parsing MIME.
        let data = MemMailer::encode_headers(&headers);
        (
            Draft {
                destination: Destination::default(),
                content: Content::Raw(RawMessage {
                    from: from.map(|f| EmailAddress::parse(f).unwrap()),
                    data: data.clone(),
                }),
            },
            data,
        )
    }

    #[test]
    fn a_verified_sender_sends_under_a_fresh_uuid_with_a_message_id_of_its_domain() {
        let f = fixture();
        f.verified("news@example.com");
        let id = f
            .send(simple("News <news@example.com>", &["a@example.net"]))
            .unwrap();
        assert_eq!(id.len(), 36);
        assert_eq!(id.as_bytes()[14], b'4', "UUID version 4: {id}");
        let sent = f.mailer.delivered();
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].message_id, id);
        assert_eq!(
            sent[0].from,
            format!("{id}@mail.sesame.test"),
            "the default envelope"
        );
        assert_eq!(sent[0].recipients, ["a@example.net"]);
        let text = String::from_utf8_lossy(&sent[0].message).into_owned();
        assert!(
            text.contains(&format!("Message-ID: <{id}@example.com>")),
            "{text}"
        );
        assert!(text.contains(&format!("Date: {}", NOW_MS / 1000)), "{text}");
        assert!(!text.contains("DKIM-Signature"), "no DKIM: unsigned");
    }

    #[test]
    fn the_envelope_sender_is_in_a_verified_mail_from_domain_else_the_default_or_refused() {
        let f = fixture();
        // The domain's MAIL FROM serves its addresses; an address's own wins over it.
        f.verified_with(
            "example.com",
            Some(("bounce.example.com", DkimStatus::Success)),
            MxFailure::RejectMessage,
        );
        f.verified_with(
            "own@example.com",
            Some(("own.example.com", DkimStatus::Success)),
            MxFailure::UseDefaultValue,
        );
        f.verified_with(
            "pending.org",
            Some(("mf.pending.org", DkimStatus::Pending)),
            MxFailure::UseDefaultValue,
        );
        f.verified_with(
            "strict.org",
            Some(("mf.strict.org", DkimStatus::TemporaryFailure)),
            MxFailure::RejectMessage,
        );
        let envelope = |from: &str| {
            let id = f.send(simple(from, &["a@example.net"]))?;
            let sent = f.mailer.delivered();
            let last = sent.last().unwrap();
            assert_eq!(last.message_id, id);
            Ok::<_, Error>(last.from.replace(&id, "ID"))
        };
        assert_eq!(
            envelope("news@example.com").unwrap(),
            "ID@bounce.example.com"
        );
        assert_eq!(envelope("own@example.com").unwrap(), "ID@own.example.com");
        assert_eq!(envelope("x@pending.org").unwrap(), "ID@mail.sesame.test");
        let before = f.mailer.delivered().len();
        assert_eq!(
            envelope("x@strict.org").unwrap_err(),
            Error::MessageRejected(Rejection::MailFromNotVerified {
                mail_from: "mf.strict.org".into(),
                status: "TEMPORARY_FAILURE",
            })
        );
        assert_eq!(f.mailer.delivered().len(), before, "nothing sent");
    }

    #[test]
    fn an_unverified_sender_is_refused_and_nothing_leaves() {
        let f = fixture();
        let e = f
            .send(simple("news@example.com", &["a@example.net"]))
            .unwrap_err();
        assert_eq!(
            e,
            Error::MessageRejected(Rejection::NotVerified(vec!["news@example.com".into()]))
        );
        assert!(f.mailer.delivered().is_empty());
    }

    #[test]
    fn every_claimed_author_of_a_raw_message_is_checked() {
        let f = fixture();
        f.verified("me@example.com");
        let (draft, _) = raw(
            None,
            HeaderAddresses {
                from: vec!["me@example.com".into(), "boss@example.org".into()],
                sender: Some("me@example.com".into()),
                recipients: vec!["a@example.net".into()],
            },
        );
        let e = f.send(draft).unwrap_err();
        assert!(
            e == Error::MessageRejected(Rejection::NotVerified(vec!["boss@example.org".into()])),
            "{e:?}"
        );
        assert!(f.mailer.delivered().is_empty());
    }

    #[test]
    fn a_raw_message_goes_to_its_own_recipients_when_the_request_names_none() {
        let f = fixture();
        f.verified("me@example.com");
        let (draft, data) = raw(
            None,
            HeaderAddresses {
                from: vec!["me@example.com".into()],
                sender: None,
                recipients: vec!["a@example.net".into(), "b@example.net".into()],
            },
        );
        let id = f.send(draft).unwrap();
        let sent = f.mailer.delivered();
        assert_eq!(sent[0].recipients, ["a@example.net", "b@example.net"]);
        assert_eq!(sent[0].from, format!("{id}@mail.sesame.test"));
        assert_eq!(sent[0].message, data, "a raw message is sent as it is");

        let (draft, _) = raw(
            Some("me@example.com"),
            HeaderAddresses {
                from: vec!["me@example.com".into()],
                ..HeaderAddresses::default()
            },
        );
        assert_eq!(f.send(draft), Err(Error::Invalid(Invalid::NoRecipients)));
    }

    #[test]
    fn refusals_of_a_raw_message_say_why() {
        let f = fixture();
        f.verified("me@example.com");
        let (mut draft, _) = raw(
            None,
            HeaderAddresses {
                from: vec!["a@example.com".into(), "b@example.com".into()],
                sender: None,
                recipients: vec!["r@example.net".into()],
            },
        );
        let e = f.send(draft.clone()).unwrap_err();
        assert!(
            e == Error::MessageRejected(Rejection::Message(MessageProblem::NoOwnSender(2))),
            "{e:?}"
        );
        draft.content = Content::Raw(RawMessage {
            from: None,
            data: b"malformed".to_vec(),
        });
        assert_eq!(f.send(draft), Err(Error::Invalid(Invalid::RawUnparsable)));
    }

    #[test]
    fn at_most_fifty_recipients() {
        let f = fixture();
        f.verified("me@example.com");
        let to: Vec<String> = (0..=MAX_RECIPIENTS)
            .map(|i| format!("r{i}@example.net"))
            .collect();
        let to: Vec<&str> = to.iter().map(String::as_str).collect();
        let e = f.send(simple("me@example.com", &to)).unwrap_err();
        assert!(
            e == Error::Invalid(Invalid::TooManyRecipients { max: 50, got: 51 }),
            "{e:?}"
        );
        assert!(f.send(simple("me@example.com", &to[1..])).is_ok());
    }

    #[test]
    fn the_domain_chain_is_most_specific_first_and_stops_short_of_the_tld() {
        let chain = domain_chain(&DomainName::parse("a.b.example.com").unwrap());
        let names: Vec<String> = chain.iter().map(ToString::to_string).collect();
        assert_eq!(names, ["a.b.example.com", "b.example.com", "example.com"]);
    }

    #[test]
    fn signing_key_of_an_unknown_name_is_not_found() {
        let f = fixture();
        let e = signing_key(
            f.store.clone(),
            &f.account,
            &IdentityName::parse("example.com").unwrap(),
        )
        .unwrap_err();
        assert_eq!(
            e,
            Error::NotFound(crate::error::Missing::Identity("example.com".into()))
        );
    }
}
