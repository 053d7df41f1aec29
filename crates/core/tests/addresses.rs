//! Address verification end to end over the in-memory fakes, on an injected clock: the mail a
//! create sends, following its link, tampered and unknown tokens, the 24-hour expiry and the
//! FAILED status after it, SendCustomVerificationEmail with its template and redirects.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use sesame_core::addresses::LinkView;
use sesame_core::app::{Config, UseCases};
use sesame_core::error::{Error, Limit, Missing, Rejection};
use sesame_core::identities::CreateIdentity;
use sesame_core::model::{
    AccountId, DkimStatus, EmailAddress, IdentityName, RedirectUrl, TemplateContent, TemplateName,
    Timestamp,
};
use sesame_core::ports::Store;
use sesame_core::testing::{FakeVault, ManualClock, MemMailer, MemStore};
use sesame_core::verification::{Observation, RecordCheck};
use std::sync::Arc;

struct Svc {
    uc: UseCases,
    store: Arc<dyn Store>,
    clock: Arc<ManualClock>,
    mailer: Arc<MemMailer>,
    account: AccountId,
}

const PUBLIC: &str = "https://sesame.example:8443";

fn svc(max: u64) -> Svc {
    svc_as(max, false)
}

/// `operator`: the test's account is also the operator's (Sesame's own mail is signed with a
/// verified domain of it).
fn svc_as(max: u64, operator: bool) -> Svc {
    let account = AccountId::parse("123456789012").unwrap();
    let store: Arc<dyn Store> = Arc::new(MemStore::default());
    let clock = Arc::new(ManualClock::new(Timestamp(1_700_000_000_000)));
    let mailer = Arc::new(MemMailer::default());
    let mut config = Config::with_zone("dkim.sesame.test", max).unwrap();
    config.links.public_url = PUBLIC.into();
    if operator {
        config.links.operator = Some(account.clone());
    }
    let uc = UseCases::new(
        store.clone(),
        Arc::new(FakeVault::default()),
        clock.clone(),
        mailer.clone(),
        config,
    );
    Svc {
        uc,
        store,
        clock,
        mailer,
        account,
    }
}

impl Svc {
    fn create(&self, name: &str) -> Result<(), Error> {
        self.uc
            .identities
            .create_identity(
                &self.account,
                CreateIdentity {
                    name: IdentityName::parse(name).unwrap(),
                    tags: vec![],
                    dkim: None,
                    configuration_set: None,
                },
            )
            .map(|_| ())
    }

    fn status(&self, name: &str) -> DkimStatus {
        let n = IdentityName::parse(name).unwrap();
        self.uc
            .identities
            .get_identity(&self.account, &n)
            .unwrap()
            .identity
            .verification_status
    }

    /// The tokens of every link mailed so far to `to`, in order.
    fn tokens_to(&self, to: &str) -> Vec<String> {
        let prefix = format!("{PUBLIC}/verify/");
        self.mailer
            .delivered()
            .iter()
            .filter(|m| m.recipients == [to])
            .map(|m| {
                let text = String::from_utf8(m.message.clone()).unwrap();
                let at = text.find(&prefix).expect("a link in the mail") + prefix.len();
                text[at..at + 43].to_owned()
            })
            .collect()
    }

    /// Runs the verifier once over what is due, seeing no DNS records at all.
    fn sweep(&self) {
        for due in self.uc.checks.claim_due_checks(100).unwrap() {
            let seen = Observation {
                records: vec![RecordCheck::HostNotFound; due.records.len()],
                soa: None,
            };
            self.uc.checks.record_check(due.identity, &seen).unwrap();
        }
    }

    /// Makes `domain` a verified Easy DKIM domain of the account.
    fn verified_domain(&self, domain: &str) {
        self.create(domain).unwrap();
        for due in self.uc.checks.claim_due_checks(100).unwrap() {
            let seen = Observation {
                records: vec![RecordCheck::Valid; due.records.len()],
                soa: None,
            };
            self.uc.checks.record_check(due.identity, &seen).unwrap();
        }
        assert_eq!(self.status(domain), DkimStatus::Success);
    }

    fn template(&self, name: &str, from: &str) {
        self.uc
            .templates
            .create(
                &self.account,
                TemplateName::parse(name).unwrap(),
                TemplateContent::new(
                    EmailAddress::parse(from).unwrap(),
                    "Welcome to Example",
                    "<html><body><h1>Confirm your address</h1></body></html>",
                    RedirectUrl::parse("https://app.example/verified").unwrap(),
                    RedirectUrl::parse("https://app.example/too-late").unwrap(),
                )
                .unwrap(),
                vec![],
            )
            .unwrap();
    }

    fn send_custom(&self, to: &str, template: &str) -> Result<String, Error> {
        self.uc.addresses.send_custom(
            &self.account,
            &EmailAddress::parse(to).unwrap(),
            &TemplateName::parse(template).unwrap(),
            None,
        )
    }
}

fn addr(s: &str) -> EmailAddress {
    EmailAddress::parse(s).unwrap()
}

#[test]
fn a_create_mails_one_link_and_following_it_verifies() {
    let s = svc(10);
    s.create("owner@example.com").unwrap();
    let mail = s.mailer.delivered();
    assert_eq!(mail.len(), 1, "exactly one mail");
    assert_eq!(mail[0].recipients, ["owner@example.com"]);
    let text = String::from_utf8(mail[0].message.clone()).unwrap();
    assert!(text.contains("From: no-reply@dkim.sesame.test"), "{text}");
    let tokens = s.tokens_to("owner@example.com");
    assert_eq!(s.status("owner@example.com"), DkimStatus::Pending);

    // Looking changes nothing; confirming verifies; confirming again is harmless.
    let before = s
        .store
        .get_identity(
            &s.account,
            &IdentityName::parse("owner@example.com").unwrap(),
        )
        .unwrap();
    let open = s.uc.addresses.look(&tokens[0]).unwrap();
    assert!(
        matches!(open, LinkView::Open { ref address, .. } if *address == addr("owner@example.com"))
    );
    let after_look = s
        .store
        .get_identity(
            &s.account,
            &IdentityName::parse("owner@example.com").unwrap(),
        )
        .unwrap();
    assert_eq!(before, after_look, "a GET changes nothing");
    s.clock.advance_hours(23);
    let done = s.uc.addresses.confirm(&tokens[0]).unwrap();
    assert_eq!(
        done,
        LinkView::Verified {
            address: addr("owner@example.com"),
            redirect: None
        }
    );
    let id =
        s.uc.identities
            .get_identity(
                &s.account,
                &IdentityName::parse("owner@example.com").unwrap(),
            )
            .unwrap()
            .identity;
    assert_eq!(id.verification_status, DkimStatus::Success);
    assert!(id.verified_for_sending());
    assert_eq!(id.verification.last_success, Some(s.clock_now()));
    let version = id.version;
    assert_eq!(s.uc.addresses.confirm(&tokens[0]).unwrap(), done);
    let again = s
        .store
        .get_identity(
            &s.account,
            &IdentityName::parse("owner@example.com").unwrap(),
        )
        .unwrap()
        .unwrap();
    assert_eq!(again.version, version, "a second click writes nothing");

    // The verifier has nothing left to do for it, even after the link's window.
    s.clock.advance_hours(48);
    s.sweep();
    assert_eq!(s.status("owner@example.com"), DkimStatus::Success);
}

impl Svc {
    fn clock_now(&self) -> Timestamp {
        use sesame_core::ports::Clock;
        self.clock.now()
    }
}

#[test]
fn tampered_unknown_and_expired_tokens_change_nothing() {
    let s = svc(10);
    s.create("a@example.com").unwrap();
    s.create("b@example.com").unwrap();
    let (ta, tb) = (s.tokens_to("a@example.com"), s.tokens_to("b@example.com"));
    assert_ne!(ta, tb, "two addresses, two tokens");
    let snapshot = |s: &Svc| {
        ["a@example.com", "b@example.com"].map(|n| {
            s.store
                .get_identity(&s.account, &IdentityName::parse(n).unwrap())
                .unwrap()
        })
    };
    let before = snapshot(&s);
    // One character changed, one missing, garbage, a token of the right shape nobody holds.
    let mut tampered = ta[0].clone().into_bytes();
    tampered[5] = if tampered[5] == b'x' { b'y' } else { b'x' };
    let tampered = String::from_utf8(tampered).unwrap();
    for bad in [
        tampered.as_str(),
        &ta[0][..42],
        "../../etc/passwd",
        "",
        &"Q".repeat(43),
    ] {
        assert_eq!(
            s.uc.addresses.look(bad).unwrap(),
            LinkView::Unknown,
            "{bad}"
        );
        assert_eq!(
            s.uc.addresses.confirm(bad).unwrap(),
            LinkView::Unknown,
            "{bad}"
        );
    }
    assert_eq!(snapshot(&s), before);

    // At 24 hours the link no longer works, and confirming it changes nothing.
    s.clock.advance_hours(24);
    let expired = LinkView::Expired {
        address: addr("a@example.com"),
        redirect: None,
    };
    assert_eq!(s.uc.addresses.look(&ta[0]).unwrap(), expired);
    assert_eq!(s.uc.addresses.confirm(&ta[0]).unwrap(), expired);
    assert_eq!(snapshot(&s), before);
    assert_eq!(s.status("a@example.com"), DkimStatus::Pending);
    // The verifier's pass marks both FAILED.
    s.sweep();
    assert_eq!(s.status("a@example.com"), DkimStatus::Failed);
    assert_eq!(s.status("b@example.com"), DkimStatus::Failed);
    assert_eq!(
        s.uc.addresses.confirm(&tb[0]).unwrap(),
        LinkView::Expired {
            address: addr("b@example.com"),
            redirect: None,
        }
    );
    assert_eq!(s.status("b@example.com"), DkimStatus::Failed);
}

#[test]
fn the_link_expires_at_24_hours_not_before() {
    let s = svc(10);
    s.create("late@example.com").unwrap();
    let t = s.tokens_to("late@example.com");
    s.clock.advance_hours(23);
    s.sweep();
    assert_eq!(
        s.status("late@example.com"),
        DkimStatus::Pending,
        "not due yet"
    );
    s.clock.advance_hours(1);
    s.sweep();
    assert_eq!(s.status("late@example.com"), DkimStatus::Failed);
    assert!(matches!(
        s.uc.addresses.look(&t[0]).unwrap(),
        LinkView::Expired { .. }
    ));
}

#[test]
fn a_full_account_gets_no_mail_and_no_identity() {
    let s = svc(1);
    s.create("first@example.com").unwrap();
    assert_eq!(
        s.create("second@example.com"),
        Err(Error::LimitExceeded(Limit::Identities))
    );
    assert_eq!(
        s.mailer.delivered().len(),
        1,
        "no mail for the refused create"
    );
}

#[test]
fn send_custom_verification_email_uses_the_template_and_its_redirects() {
    let s = svc(10);
    // The template's sender must be verified: refused, with nothing stored and nothing sent.
    s.template("welcome", "hello@example.com");
    assert_eq!(
        s.send_custom("user@customer.test", "welcome"),
        Err(Error::MessageRejected(Rejection::NotVerified(vec![
            "hello@example.com".into()
        ])))
    );
    assert!(s.mailer.delivered().is_empty());
    assert!(
        s.store
            .get_identity(
                &s.account,
                &IdentityName::parse("user@customer.test").unwrap()
            )
            .unwrap()
            .is_none()
    );
    assert_eq!(
        s.send_custom("user@customer.test", "nope"),
        Err(Error::NotFound(Missing::Template("nope".into())))
    );

    s.verified_domain("example.com");
    let id = s.send_custom("user@customer.test", "welcome").unwrap();
    let mail = s.mailer.delivered();
    let last = mail.last().unwrap();
    assert_eq!(last.message_id, id);
    let text = String::from_utf8(last.message.clone()).unwrap();
    assert!(text.contains("Subject: Welcome to Example"), "{text}");
    assert!(text.contains("From: hello@example.com"), "{text}");
    assert!(
        text.contains("DKIM-Signature: fake; d=example.com"),
        "signed by its domain"
    );
    assert_eq!(s.status("user@customer.test"), DkimStatus::Pending);

    // Expired: the template's failure URL.
    let first = s.tokens_to("user@customer.test");
    s.clock.advance_hours(25);
    assert_eq!(
        s.uc.addresses.confirm(&first[0]).unwrap(),
        LinkView::Expired {
            address: addr("user@customer.test"),
            redirect: Some("https://app.example/too-late".into())
        }
    );
    s.sweep();
    assert_eq!(s.status("user@customer.test"), DkimStatus::Failed);

    // Asking again: a new link, PENDING again, the old link dead, the new one verifies and
    // sends the browser to the success URL.
    s.send_custom("user@customer.test", "welcome").unwrap();
    assert_eq!(s.status("user@customer.test"), DkimStatus::Pending);
    let tokens = s.tokens_to("user@customer.test");
    assert_eq!(tokens.len(), 2);
    assert_ne!(tokens[0], tokens[1]);
    assert_eq!(s.uc.addresses.look(&tokens[0]).unwrap(), LinkView::Unknown);
    assert_eq!(
        s.uc.addresses.confirm(&tokens[1]).unwrap(),
        LinkView::Verified {
            address: addr("user@customer.test"),
            redirect: Some("https://app.example/verified".into())
        }
    );
    assert_eq!(s.status("user@customer.test"), DkimStatus::Success);
}

#[test]
fn own_mail_is_signed_only_when_the_operator_verified_its_domain() {
    let s = svc(10);
    s.create("first@example.com").unwrap();
    let unsigned = String::from_utf8(s.mailer.delivered()[0].message.clone()).unwrap();
    assert!(!unsigned.contains("DKIM-Signature"), "{unsigned}");
    // The default sender is no-reply@dkim.sesame.test. Without an operator account, even a
    // verified domain of the caller's does not sign Sesame's own mail.
    s.verified_domain("dkim.sesame.test");
    s.create("second@example.com").unwrap();
    let mail = s.mailer.delivered();
    let still = String::from_utf8(mail.last().unwrap().message.clone()).unwrap();
    assert!(!still.contains("DKIM-Signature"), "{still}");

    // The operator's verified domain signs it.
    let s = svc_as(10, true);
    s.verified_domain("dkim.sesame.test");
    s.create("third@example.com").unwrap();
    let mail = s.mailer.delivered();
    let signed = String::from_utf8(mail.last().unwrap().message.clone()).unwrap();
    assert!(
        signed.contains("DKIM-Signature: fake; d=dkim.sesame.test"),
        "{signed}"
    );
}

#[test]
fn template_redirects_hold_only_within_the_links_time() {
    let s = svc(10);
    s.verified_domain("example.com");
    s.template("welcome", "hello@example.com");
    s.send_custom("early@customer.test", "welcome").unwrap();
    s.send_custom("never@customer.test", "welcome").unwrap();
    let early = s.tokens_to("early@customer.test");
    let never = s.tokens_to("never@customer.test");
    let verified = |redirect: Option<&str>| LinkView::Verified {
        address: addr("early@customer.test"),
        redirect: redirect.map(str::to_owned),
    };
    assert_eq!(
        s.uc.addresses.confirm(&early[0]).unwrap(),
        verified(Some("https://app.example/verified"))
    );
    // Past the link's 24 hours the verified link still says so, without the redirect.
    s.clock.advance_hours(24);
    assert_eq!(s.uc.addresses.confirm(&early[0]).unwrap(), verified(None));
    // An expired link sends the browser to the failure URL for as long again, then no more.
    let expired = |redirect: Option<&str>| LinkView::Expired {
        address: addr("never@customer.test"),
        redirect: redirect.map(str::to_owned),
    };
    assert_eq!(
        s.uc.addresses.confirm(&never[0]).unwrap(),
        expired(Some("https://app.example/too-late"))
    );
    s.clock.advance_hours(24);
    assert_eq!(s.uc.addresses.confirm(&never[0]).unwrap(), expired(None));
}

#[test]
fn an_address_with_a_mail_from_domain_fails_on_its_link_and_keeps_its_mail_from_rules() {
    let s = svc(10);
    s.create("owner@example.com").unwrap();
    let name = IdentityName::parse("owner@example.com").unwrap();
    s.uc.identities
        .put_mail_from_attributes(
            &s.account,
            &name,
            "bounce.example.com",
            sesame_core::model::MxFailure::UseDefaultValue,
        )
        .unwrap();
    // The MAIL FROM check runs at once (nothing found) and leaves the address PENDING.
    s.sweep();
    let id =
        s.uc.identities
            .get_identity(&s.account, &name)
            .unwrap()
            .identity;
    assert_eq!(id.verification_status, DkimStatus::Pending);
    assert_eq!(id.mail_from.as_ref().unwrap().status, DkimStatus::Pending);
    // At the link's expiry the address fails; its MAIL FROM domain follows its own 72 hours.
    s.clock.advance_hours(24);
    s.sweep();
    let id =
        s.uc.identities
            .get_identity(&s.account, &name)
            .unwrap()
            .identity;
    assert_eq!(id.verification_status, DkimStatus::Failed);
    assert_eq!(id.verification.next_check_at, None);
    assert_eq!(id.mail_from.as_ref().unwrap().status, DkimStatus::Pending);
    assert!(id.mail_from.unwrap().verification.next_check_at.is_some());
}
