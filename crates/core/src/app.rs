//! The use cases wired together for a server: one place that builds each from the ports it
//! needs. A command that needs one use case (the CLI) builds that one alone.

use crate::addresses::{Addresses, Invitations, LinkSettings};
use crate::dkim::DkimControl;
use crate::error::Invalid;
use crate::identities::Identities;
use crate::keys::RotationPolicy;
use crate::model::{DomainName, LINK_LIFETIME_MS, Mailbox};
use crate::ports::{Clock, KeyVault, Mailer, Store};
use crate::sending::{RevokedKeyMail, Sending};
use crate::templates::Templates;
use crate::verification::{Checks, DnsRecords, MailFromHosts, VerifyPolicy};
use std::sync::Arc;

/// Settings of the use cases that are not per request.
#[derive(Debug, Clone)]
pub struct Config {
    /// The most identities one account may hold (SES: 10,000 per region).
    pub max_identities: u64,
    /// The zone under which Easy DKIM public keys are published (`SigningHostedZone`).
    pub dkim_zone: String,
    /// The DNS verifier's timing rules.
    pub verify: VerifyPolicy,
    /// Easy DKIM key rotation.
    pub rotation: RotationPolicy,
    /// What custom MAIL FROM domains' records point at.
    pub mail_from: MailFromHosts,
    /// The envelope domain of mail without a verified custom MAIL FROM domain.
    pub envelope_domain: DomainName,
    /// How address identities' verification mail is made.
    pub links: LinkSettings,
    /// What happens to mail whose signing key was revoked before a replacement signs.
    pub revoked_key_mail: RevokedKeyMail,
}

impl Config {
    /// The defaults a test needs, with keys published under `dkim_zone`: SES's quota, the
    /// default timing rules, and MAIL FROM records pointing at names under the zone.
    pub fn with_zone(dkim_zone: &str, max_identities: u64) -> Result<Config, Invalid> {
        Ok(Config {
            max_identities,
            dkim_zone: dkim_zone.to_owned(),
            verify: VerifyPolicy::default(),
            rotation: RotationPolicy::default(),
            mail_from: MailFromHosts::under(dkim_zone),
            envelope_domain: DomainName::parse(&format!("mail.{dkim_zone}"))?,
            links: LinkSettings {
                public_url: "http://127.0.0.1".to_owned(),
                from: Mailbox::parse(&format!("no-reply@{dkim_zone}"))?,
                operator: None,
                lifetime_ms: LINK_LIFETIME_MS,
                region: "us-east-1".to_owned(),
            },
            revoked_key_mail: RevokedKeyMail::Refuse,
        })
    }
}

/// Every use case of a serving node.
pub struct UseCases {
    /// Identities, their feedback setting and tags.
    pub identities: Arc<Identities>,
    /// DKIM signing attributes and rotation.
    pub dkim: Arc<DkimControl>,
    /// DNS verification.
    pub checks: Arc<Checks>,
    /// SendEmail.
    pub sending: Arc<Sending>,
    /// Custom verification email templates.
    pub templates: Arc<Templates>,
    /// Address verification: SendCustomVerificationEmail and followed links.
    pub addresses: Arc<Addresses>,
    /// The configuration they were built with.
    pub config: Config,
}

impl UseCases {
    /// Builds every use case over the same ports, each given only the ones it uses.
    pub fn new(
        store: Arc<dyn Store>,
        vault: Arc<dyn KeyVault>,
        clock: Arc<dyn Clock>,
        mailer: Arc<dyn Mailer>,
        config: Config,
    ) -> UseCases {
        let sending = Arc::new(
            Sending::new(
                store.clone(),
                vault.clone(),
                clock.clone(),
                mailer,
                config.envelope_domain.clone(),
            )
            .with_revoked_key_mail(config.revoked_key_mail),
        );
        let invitations = Arc::new(Invitations::new(
            vault.clone(),
            clock.clone(),
            sending.clone(),
            config.links.clone(),
        ));
        UseCases {
            identities: Arc::new(
                Identities::new(
                    store.clone(),
                    vault.clone(),
                    clock.clone(),
                    config.max_identities,
                )
                .with_invitations(invitations.clone())
                .with_publishers(store.clone()),
            ),
            addresses: Arc::new(Addresses::new(
                store.clone(),
                store.clone(),
                vault.clone(),
                clock.clone(),
                invitations,
                config.max_identities,
            )),
            dkim: Arc::new(DkimControl::new(
                store.clone(),
                vault.clone(),
                clock.clone(),
                config.rotation,
            )),
            sending,
            templates: Arc::new(Templates::new(store.clone(), clock.clone())),
            checks: Arc::new(Checks::new(
                store.clone(),
                store.clone(),
                vault,
                clock,
                config.verify,
                config.rotation,
                DnsRecords::new(store, config.dkim_zone.clone(), config.mail_from.clone()),
            )),
            config,
        }
    }
}
