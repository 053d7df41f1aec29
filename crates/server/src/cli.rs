//! The management commands: `sesame account create|list`, `sesame key create|disable|list`,
//! `sesame dns-records` and `sesame sign`.
//! They open the same store as a running server (SQLite allows it, and the server reads keys
//! from the store on every request), so changes take effect at once. Output is JSON on stdout.

use crate::Opened;
use crate::adapters::SystemClock;
use crate::bootstrap::new_key;
use crate::config::{AccountCommand, DnsRecordsArgs, KeyCommand};
use anyhow::{Context, bail};
use serde_json::json;
use sesame_core::model::AccountId;
use sesame_core::ports::{Account, Clock, Store};
use sesame_crypto::random;

/// Prints one JSON document; the commands' output is meant for scripts.
#[allow(clippy::print_stdout)]
fn emit(value: serde_json::Value) {
    println!("{value}");
}

fn valid_name(name: &str) -> anyhow::Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if !ok {
        bail!("an account name has 1 to 64 letters, digits, '.', '_' or '-'; got {name:?}");
    }
    Ok(())
}

/// An account by name, or by id.
fn find_account(store: &dyn Store, name_or_id: &str) -> anyhow::Result<Account> {
    if let Some(a) = store.account_by_name(name_or_id)? {
        return Ok(a);
    }
    store
        .list_accounts()?
        .into_iter()
        .find(|a| a.id.as_str() == name_or_id)
        .with_context(|| format!("no account named or numbered {name_or_id:?}"))
}

/// Makes and stores a fresh access key, returning its id and secret.
fn issue_key(
    opened: &Opened,
    account: &AccountId,
    clock: &dyn Clock,
) -> anyhow::Result<(String, String)> {
    let id = random::access_key_id()?;
    let secret = random::secret_access_key()?;
    let key = new_key(account, id.clone(), &secret, &opened.sealer, clock.now())?;
    opened.store.put_access_key(&key)?;
    Ok((id, secret))
}

pub fn account(cmd: AccountCommand, opened: &Opened, clock: &dyn Clock) -> anyhow::Result<()> {
    let store = opened.store.as_ref();
    match cmd {
        AccountCommand::Create { name } => {
            valid_name(&name)?;
            if store.account_by_name(&name)?.is_some() {
                bail!("an account named {name:?} already exists");
            }
            let account = Account {
                id: AccountId::parse(&random::account_id()?)?,
                name,
                created_at: clock.now(),
            };
            store.insert_account(&account)?;
            let (id, secret) = issue_key(opened, &account.id, clock)?;
            emit(json!({
                "AccountId": account.id.as_str(),
                "AccessKeyId": id,
                "SecretAccessKey": secret,
            }));
        }
        AccountCommand::List => {
            let accounts: Vec<_> = store
                .list_accounts()?
                .into_iter()
                .map(|a| json!({"AccountId": a.id.as_str(), "Name": a.name, "CreatedAt": a.created_at.0 / 1000}))
                .collect();
            emit(json!(accounts));
        }
    }
    Ok(())
}

pub fn key(cmd: KeyCommand, opened: &Opened, clock: &dyn Clock) -> anyhow::Result<()> {
    let store = opened.store.as_ref();
    match cmd {
        KeyCommand::Create { account } => {
            let account = find_account(store, &account)?;
            let (id, secret) = issue_key(opened, &account.id, clock)?;
            emit(json!({
                "AccountId": account.id.as_str(),
                "AccessKeyId": id,
                "SecretAccessKey": secret,
            }));
        }
        KeyCommand::Disable { access_key_id } => {
            let mut key = store
                .access_key(&access_key_id)?
                .with_context(|| format!("no access key {access_key_id}"))?;
            key.enabled = false;
            store.put_access_key(&key)?;
            emit(
                json!({"AccessKeyId": key.id, "AccountId": key.account.as_str(), "Enabled": false}),
            );
        }
        KeyCommand::List => {
            let mut keys = Vec::new();
            for account in store.list_accounts()? {
                for k in store.access_keys_of(&account.id)? {
                    keys.push(json!({
                        "AccessKeyId": k.id,
                        "AccountId": k.account.as_str(),
                        "AccountName": account.name,
                        "Enabled": k.enabled,
                        "CreatedAt": k.created_at.0 / 1000,
                    }));
                }
            }
            emit(json!(keys));
        }
    }
    Ok(())
}

/// Prints the records an identity needs as zone-file lines; with `--check`, a comment line
/// under each says what the DNS shows for it right now.
#[allow(clippy::print_stdout)]
pub fn dns_records(args: DnsRecordsArgs, opened: &Opened) -> anyhow::Result<()> {
    use sesame_core::model::IdentityName;
    use sesame_core::verification::{DnsRecords, Observation};
    let account = find_account(opened.store.as_ref(), &args.account)?;
    let name = match IdentityName::parse(&args.identity).map_err(refused)? {
        // An address signs with its domain's key, so its domain's records are the ones.
        IdentityName::Email(e) => IdentityName::Domain(e.domain()),
        d => d,
    };
    let zone = args.dkim_zone.trim_end_matches('.').to_ascii_lowercase();
    let hosts = args.mail_from.hosts(&zone)?;
    let records = DnsRecords::new(opened.store.clone(), zone, hosts)
        .expected_records(&account.id, &name)
        .map_err(refused)?;
    if records.is_empty() {
        bail!("{name} has no DKIM set-up and no MAIL FROM domain, so it needs no records");
    }
    let observation = if args.check {
        let resolver = args
            .resolver
            .as_deref()
            .map(crate::background::resolver_addr)
            .transpose()?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        Some(runtime.block_on(async {
            let v =
                sesame_dns::verifier::Verifier::new(resolver, std::time::Duration::from_secs(3))
                    .map_err(|e| anyhow::anyhow!(e))?;
            anyhow::Ok(v.observe(&records).await)
        })?)
    } else {
        None
    };
    println!("; DNS records for {name} (account {})", account.name);
    for (i, record) in records.iter().enumerate() {
        println!("; {}", sesame_dns::records::purpose(record));
        println!("{}", sesame_dns::records::zone_line(record));
        if let Some(Observation {
            records: checks, ..
        }) = &observation
        {
            println!(";   {}", sesame_dns::records::describe(&checks[i]));
        }
    }
    if let Some(observation) = &observation {
        // The same findings ListRecommendations reports, from this lookup.
        let identity = opened
            .store
            .get_identity(&account.id, &name)?
            .context("the identity was deleted meanwhile")?;
        let assessed = sesame_core::advice::assess(&identity, &records, &observation.records);
        let open: Vec<_> = assessed.iter().filter(|(_, open)| **open).collect();
        if open.is_empty() {
            println!("; recommendations: none");
        }
        for (kind, _) in open {
            println!(
                "; recommendation {} {}: {}",
                kind.area().name(),
                kind.impact().name(),
                advice_words(*kind)
            );
        }
    }
    Ok(())
}

/// What a recommendation is about, in `dns-records --check`'s words (ListRecommendations
/// words them with the records to publish).
fn advice_words(kind: sesame_core::model::AdviceKind) -> &'static str {
    use sesame_core::model::AdviceKind::*;
    match kind {
        DkimFailed => {
            "DKIM verification FAILED: mail is not signed; publish the DKIM records and set DKIM up again"
        }
        DkimWeakKey => "the signing key is 1024 bits; switch to 2048",
        MailFromMissing => "no custom MAIL FROM domain, so SPF cannot align with the From: domain",
        MailFromMx => "the MAIL FROM domain's MX record is missing or names another host",
        SpfMissing => "the MAIL FROM domain has no SPF record",
        SpfWrong => "the MAIL FROM domain's SPF record does not include Sesame's SPF domain",
        SpfMultiple => {
            "the MAIL FROM domain has more than one SPF record: every receiver's SPF check fails"
        }
        DmarcMissing => "no DMARC record",
        DmarcUnparsable => "the DMARC record has no valid policy",
        DmarcPolicyNone => "the DMARC policy is p=none",
    }
}

/// `sesame sign`: stdin → DKIM-signed → stdout.
pub fn sign(account: &str, identity: &str, opened: &Opened) -> anyhow::Result<()> {
    use sesame_core::model::IdentityName;
    use sesame_core::ports::KeyVault;
    use std::io::{Read, Write};
    // Only what signing needs: the store for the key, the vault to sign with it.
    let account = find_account(opened.store.as_ref(), account)?;
    let name = IdentityName::parse(identity).map_err(refused)?;
    let choice = sesame_core::sending::signing_key(opened.store.clone(), &account.id, &name)
        .map_err(refused)?;
    let mut message = Vec::new();
    std::io::stdin().read_to_end(&mut message)?;
    let vault = sesame_crypto::OpenSslVault::new(opened.sealer.clone());
    let signed = vault.sign(
        &choice.sealed_private,
        &message,
        &choice.domain,
        &choice.selector,
        SystemClock.now(),
    )?;
    let mut out = std::io::stdout().lock();
    out.write_all(&signed)?;
    out.flush()?;
    Ok(())
}

/// The DKIM use cases over the store, with the plain vault (no key pool) and the system clock.
fn dkim_control(
    opened: &Opened,
    rotation: sesame_core::keys::RotationPolicy,
) -> sesame_core::dkim::DkimControl {
    use std::sync::Arc;
    sesame_core::dkim::DkimControl::new(
        opened.store.clone(),
        Arc::new(sesame_crypto::OpenSslVault::new(opened.sealer.clone())),
        Arc::new(SystemClock),
        rotation,
    )
}

/// `sesame rotate`: stages a new Easy DKIM key; it starts signing once the verifier has seen the
/// domain's records after it was published and the activation delay has passed.
#[allow(clippy::print_stdout)]
pub fn rotate(
    account: &str,
    identity: &str,
    rotation: sesame_core::keys::RotationPolicy,
    opened: &Opened,
) -> anyhow::Result<()> {
    use sesame_core::model::IdentityName;
    let account = find_account(opened.store.as_ref(), account)?;
    // Only the retention matters here (which tokens are free); the activation is the
    // verifying node's, under its own policy.
    let dkim = dkim_control(opened, rotation);
    let name = IdentityName::parse(identity).map_err(refused)?;
    let rotated = dkim.rotate(&account.id, &name).map_err(refused)?;
    let keys = rotated.dkim.context("no DKIM set-up")?.keys;
    let (_, staged) = keys.staged().context("no key was staged")?;
    println!(
        "{}",
        json!({
            "Identity": identity,
            "StagedToken": staged.selector.as_str(),
            "KeyBits": staged.bits,
            "SigningToken": keys.signing().selector.as_str(),
        })
    );
    Ok(())
}

/// A domain refusal as the operator reads it: the same sentence an API client gets.
fn refused(e: impl Into<sesame_core::Error>) -> anyhow::Error {
    anyhow::anyhow!(sesame_api::errors::ApiError::from(e.into()).message)
}

/// The TSIG secret in `text`: a bare base64 value, or the `secret "…";` of a BIND key file.
fn tsig_secret(text: &str) -> anyhow::Result<Vec<u8>> {
    let value = match text.find("secret") {
        Some(at) => text[at + "secret".len()..]
            .split('"')
            .nth(1)
            .context("the key file's secret is not quoted")?,
        None => text.trim(),
    };
    let secret = data_encoding::BASE64
        .decode(value.trim().as_bytes())
        .map_err(|_| anyhow::anyhow!("the TSIG secret is not base64"))?;
    if secret.len() < 16 {
        bail!(
            "the TSIG secret has {} bytes; use at least 16 (tsig-keygen makes 32)",
            secret.len()
        );
    }
    Ok(secret)
}

/// What a publisher shows: never its secret.
fn publisher_json(p: &sesame_core::model::Publisher) -> serde_json::Value {
    use crate::publisher::secs;
    let s = &p.state;
    json!({
        "Domain": p.domain.as_str(),
        "AccountId": p.account.as_str(),
        "Server": p.server,
        "Zone": p.zone.as_str(),
        "TsigKeyName": p.key_name,
        "TsigAlgorithm": p.algorithm,
        "PublishByodkim": p.byodkim,
        "Published": s.published.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "Retiring": s.retiring.iter().map(|r| json!({"Record": r.record.to_string(), "RemoveAt": r.remove_at.0 / 1000})).collect::<Vec<_>>(),
        "Conflicts": s.conflicts,
        "LastAttempt": secs(s.last_attempt_at),
        "LastSuccess": secs(s.last_success_at),
        "LastError": s.last_error,
        "Failures": s.failures,
        "RetryAt": secs(s.retry_at),
    })
}

/// `sesame dns-publisher set|show|remove`.
pub fn dns_publisher(
    cmd: crate::config::DnsPublisherCommand,
    opened: &Opened,
    clock: &dyn Clock,
) -> anyhow::Result<()> {
    use crate::config::DnsPublisherCommand as C;
    use sesame_core::model::{DomainName, Publisher};
    let store = opened.store.as_ref();
    let domain_of = |d: &str| DomainName::parse(d).map_err(refused);
    match cmd {
        C::Set {
            domain,
            account,
            rfc2136,
            zone,
            tsig_name,
            tsig_algorithm,
            tsig_secret_file,
            byodkim,
        } => {
            let account = find_account(store, &account)?;
            let domain = domain_of(&domain)?;
            let zone = domain_of(zone.trim_end_matches('.'))?;
            if !(domain == zone || domain.as_str().ends_with(&format!(".{}", zone.as_str()))) {
                bail!("{} is not in the zone {}", domain.as_str(), zone.as_str());
            }
            if !rfc2136.contains(':') {
                bail!("--rfc2136 takes HOST:PORT (e.g. ns1.example.com:53), not {rfc2136:?}");
            }
            let text = std::fs::read_to_string(&tsig_secret_file)
                .with_context(|| format!("reading {}", tsig_secret_file.display()))?;
            let secret = tsig_secret(&text)?;
            let sealed_secret = opened
                .sealer
                .seal(crate::publisher::TSIG_PURPOSE, &secret)?;
            let old = store.publisher(&account.id, &domain)?;
            let publisher = Publisher {
                account: account.id.clone(),
                domain: domain.clone(),
                server: rfc2136,
                zone,
                key_name: tsig_name.trim_end_matches('.').to_owned(),
                algorithm: tsig_algorithm,
                sealed_secret,
                byodkim,
                // What was published is still there; the next attempt is now.
                state: old
                    .map(|o| sesame_core::model::PublishState {
                        failures: 0,
                        retry_at: None,
                        ..o.state
                    })
                    .unwrap_or_default(),
                version: 0,
                created_at: clock.now(),
            };
            store.put_publisher(&publisher)?;
            let stored = store
                .publisher(&account.id, &domain)?
                .context("the publisher was not stored")?;
            emit(publisher_json(&stored));
        }
        C::Show { domain, account } => {
            let account = find_account(store, &account)?;
            let domain = domain_of(&domain)?;
            let p = store
                .publisher(&account.id, &domain)?
                .with_context(|| format!("{} has no DNS publisher", domain.as_str()))?;
            emit(publisher_json(&p));
        }
        C::Remove { domain, account } => {
            let account = find_account(store, &account)?;
            let domain = domain_of(&domain)?;
            let p = store
                .publisher(&account.id, &domain)?
                .with_context(|| format!("{} has no DNS publisher", domain.as_str()))?;
            store.delete_publisher(&account.id, &domain)?;
            emit(json!({
                "Domain": domain.as_str(),
                "Removed": true,
                "LeftInZone": p.state.published.iter().map(ToString::to_string).collect::<Vec<_>>(),
            }));
        }
    }
    Ok(())
}

/// `sesame revoke`.
pub fn revoke(
    account: &str,
    identity: &str,
    token: Option<&str>,
    by: &str,
    rotation: sesame_core::keys::RotationPolicy,
    opened: &Opened,
) -> anyhow::Result<()> {
    use sesame_core::model::IdentityName;
    let account = find_account(opened.store.as_ref(), account)?;
    let dkim = dkim_control(opened, rotation);
    let name = IdentityName::parse(identity).map_err(refused)?;
    let (stored, revocation) = dkim
        .revoke(&account.id, &name, token, by)
        .map_err(refused)?;
    let keys = &stored.dkim.context("no DKIM set-up")?.keys;
    // The one line an incident log wants; the trail itself is in the store.
    tracing::warn!(
        identity = %identity,
        token = %revocation.selector.as_str(),
        by = %revocation.by,
        "DKIM key revoked"
    );
    emit(json!({
        "Identity": identity,
        "RevokedToken": revocation.selector.as_str(),
        "RevokedAt": revocation.at.0 / 1000,
        "By": revocation.by,
        "StagedToken": keys.staged().map(|(_, k)| k.selector.as_str().to_owned()),
        "Signing": keys.signing_key().map(|k| k.selector.as_str().to_owned()),
    }));
    Ok(())
}

/// `sesame revoke --history`: the identity's revocations, oldest first.
pub fn revocations(account: &str, identity: &str, opened: &Opened) -> anyhow::Result<()> {
    use sesame_core::model::IdentityName;
    let account = find_account(opened.store.as_ref(), account)?;
    let name = IdentityName::parse(identity).map_err(refused)?;
    let id = opened
        .store
        .get_identity(&account.id, &name)?
        .with_context(|| format!("no identity {identity}"))?;
    let trail: Vec<_> = id
        .dkim
        .iter()
        .flat_map(|d| d.revocations.iter())
        .map(|r| json!({"Token": r.selector.as_str(), "RevokedAt": r.at.0 / 1000, "By": r.by}))
        .collect();
    emit(json!(trail));
    Ok(())
}
