//! What a crash trial checks after the restart: every identity the ledger knows (and every one
//! the store holds) looks like its acknowledged writes left it, or additionally like the one
//! request the kill cut off; each is internally whole (keys open and match, selectors, tokens,
//! the rotation slots, the key zone serving every Easy DKIM key); acknowledged rotations and
//! sends are there; every outbox message is complete, signed and verifies.

use crate::harness::Server;
use crate::load::{Dk, Ledger, Shape, State, admits};
use aws_sdk_sesv2::Client;
use aws_sdk_sesv2::error::{ProvideErrorMetadata, SdkError};
use sesame_core::model::{AccountId, DkimOrigin, DkimStatus, Identity, IdentityName, SlotState};
use sesame_core::ports::IdentityStore;
use std::collections::{BTreeMap, BTreeSet};

/// What one check found.
#[derive(Debug, Default)]
pub struct Report {
    pub identities: u64,
    /// Acknowledged writes missing or different after the restart.
    pub lost: Vec<String>,
    /// Inconsistent state: half of a write, or a broken identity, key or message.
    pub half: Vec<String>,
    pub outbox_checked: u64,
    pub outbox_verified: u64,
    /// Temporary outbox files left by writes the kill cut off (not messages).
    pub temp_files: u64,
    pub keys_served: u64,
}

fn key_zone_resolver(server: &Server) -> hickory_resolver::TokioResolver {
    use hickory_resolver::config::{NameServerConfig, ResolverConfig};
    use hickory_resolver::net::runtime::TokioRuntimeProvider;
    let mut nsc = NameServerConfig::tcp(server.dns.ip());
    for c in nsc.connections.iter_mut() {
        c.port = server.dns.port();
    }
    let mut b = hickory_resolver::Resolver::builder_with_config(
        ResolverConfig::from_name_servers(vec![nsc]),
        TokioRuntimeProvider::default(),
    );
    b.options_mut().cache_size = 0;
    b.build().unwrap()
}

/// The key behind `p=` of the TXT at `<token>.<zone>`, or why there is none.
async fn served_key(
    r: &hickory_resolver::TokioResolver,
    token: &str,
    zone: &str,
) -> Result<Vec<u8>, String> {
    use hickory_resolver::proto::rr::{RData, RecordType};
    let fqdn = format!("{token}.{zone}.");
    let l = r
        .lookup(fqdn.as_str(), RecordType::TXT)
        .await
        .map_err(|e| e.to_string())?;
    for rec in l.answers() {
        if let RData::TXT(txt) = &rec.data {
            let value: String = txt
                .txt_data
                .iter()
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .collect();
            let p = value
                .split("p=")
                .nth(1)
                .ok_or_else(|| format!("no p= in {value}"))?;
            return data_encoding::BASE64
                .decode(p.trim().as_bytes())
                .map_err(|e| e.to_string());
        }
    }
    Err("no TXT in the answer".into())
}

/// The identity as GetEmailIdentity shows it (plus the BYODKIM selector and key, which only
/// the store knows).
async fn observe(c: &Client, name: &str, stored: Option<&Identity>) -> Result<State, String> {
    let got = match c.get_email_identity().email_identity(name).send().await {
        Ok(g) => g,
        Err(SdkError::ServiceError(se)) if se.err().code() == Some("NotFoundException") => {
            return Ok(None);
        }
        Err(e) => return Err(format!("GetEmailIdentity {name}: {e:?}")),
    };
    let tags: BTreeMap<String, String> = got
        .tags()
        .iter()
        .map(|t| (t.key().to_owned(), t.value().to_owned()))
        .collect();
    if name.contains('@') {
        return Ok(Some(Shape {
            dkim: None,
            signing: true,
            tags,
        }));
    }
    let d = got
        .dkim_attributes()
        .ok_or_else(|| format!("{name}: a domain without DkimAttributes"))?;
    let dkim = match d.signing_attributes_origin().map(|o| o.as_str()) {
        Some("AWS_SES") => Dk::Easy {
            tokens: Some(d.tokens().to_vec()),
            next_len: d
                .next_signing_key_length()
                .map(|l| l.as_str().to_owned())
                .unwrap_or_default(),
        },
        Some("EXTERNAL") => {
            let Some(Identity { dkim: Some(dk), .. }) = stored else {
                return Err(format!("{name}: the API shows it, the store does not"));
            };
            let DkimOrigin::External { selector } = &dk.origin else {
                return Err(format!(
                    "{name}: EXTERNAL in the API, Easy DKIM in the store"
                ));
            };
            Dk::Byo {
                selector: selector.as_str().to_owned(),
                public_der: dk.keys.signing().public_der.clone(),
            }
        }
        other => return Err(format!("{name}: SigningAttributesOrigin {other:?}")),
    };
    Ok(Some(Shape {
        dkim: Some(dkim),
        signing: d.signing_enabled(),
        tags,
    }))
}

/// An identity's own consistency: what a half-applied write would break.
fn whole(id: &Identity, vault: &sesame_crypto::OpenSslVault) -> Vec<String> {
    let mut bad = Vec::new();
    let name = id.name.to_string();
    let mut say = |what: String| bad.push(format!("{name}: {what}"));
    let mut keys_seen = BTreeSet::new();
    for t in &id.tags {
        if !keys_seen.insert(t.key().to_owned()) {
            say(format!("tag key {} twice", t.key()));
        }
    }
    if id.tags.len() > 50 {
        say(format!("{} tags", id.tags.len()));
    }
    match (&id.name, &id.dkim) {
        (IdentityName::Email(_), None) => {}
        (IdentityName::Email(_), Some(_)) => say("an address with DKIM keys".into()),
        (IdentityName::Domain(_), None) => say("a domain without DKIM".into()),
        (IdentityName::Domain(_), Some(dkim)) => {
            for (i, k) in dkim.keys.keys().enumerate() {
                if k.bits != 1024 && k.bits != 2048 {
                    say(format!("key {i} has {} bits", k.bits));
                }
                match vault.public_key_of(&k.sealed_private) {
                    Ok(p) if p == k.public_der => {}
                    Ok(_) => say(format!("key {i}: the private key is not the public key's")),
                    Err(e) => say(format!("key {i}: the private key does not open: {e}")),
                }
            }
            match &dkim.origin {
                DkimOrigin::Easy { tokens, .. } => {
                    if tokens.len() != 3 || dkim.keys.len() != 3 {
                        say(format!(
                            "{} tokens and {} keys",
                            tokens.len(),
                            dkim.keys.len()
                        ));
                        return bad;
                    }
                    for (i, (t, k)) in tokens.iter().zip(dkim.keys.keys()).enumerate() {
                        if k.selector.as_str() != t.as_str() {
                            say(format!(
                                "key {i} under {} for token {}",
                                k.selector.as_str(),
                                t.as_str()
                            ));
                        }
                    }
                    // One signing slot and at most one staged are the type's (`DkimKeys`);
                    // what a half-applied write could still break is checked here.
                    let active = dkim.keys.signing();
                    let retired = || {
                        dkim.keys.slots().filter_map(|(_, s)| match s {
                            SlotState::Retired(at) => Some(at),
                            _ => None,
                        })
                    };
                    // A key that replaced another signs only after DNS was seen leading to it.
                    let rotated_in = retired().next().is_some();
                    if rotated_in
                        && id
                            .verification
                            .last_success
                            .is_none_or(|t| t < active.created_at)
                    {
                        say(format!(
                            "the signing key (created {}) activated without a successful check after it (last success {:?})",
                            active.created_at.0, id.verification.last_success
                        ));
                    }
                    // The latest retirement is the current key's activation: not before the
                    // rotation delay since it was published.
                    let activated = retired().max();
                    if let Some(at) = activated
                        && at.0 < active.created_at.0 + crate::ROTATION_DELAY_MS
                    {
                        say(format!(
                            "the signing key (created {}) activated at {}, before the {} ms delay",
                            active.created_at.0,
                            at.0,
                            crate::ROTATION_DELAY_MS
                        ));
                    }
                    for (k, state) in dkim.keys.slots() {
                        if let SlotState::Retired(r) = state
                            && r < k.created_at
                        {
                            say(format!(
                                "a key retired ({}) before it was made ({})",
                                r.0, k.created_at.0
                            ));
                        }
                    }
                    if rotated_in && id.verification_status != DkimStatus::Success {
                        // Activation needs SUCCESS; the status may have moved since, which the
                        // load never provokes (the customers' DNS always answers right).
                        say(format!("rotated while {:?}", id.verification_status));
                    }
                }
                DkimOrigin::External { selector } => {
                    if dkim.keys.len() != 1 {
                        say(format!("BYODKIM with {} keys", dkim.keys.len()));
                    } else if dkim.keys.signing().selector.as_str() != selector.as_str() {
                        say(format!(
                            "BYODKIM selector {} but its key under {}",
                            selector.as_str(),
                            dkim.keys.signing().selector.as_str()
                        ));
                    }
                    if dkim.keys.staged().is_some() {
                        say("BYODKIM with a staged key".into());
                    }
                }
            }
        }
    }
    bad
}

/// Everything the ledger can check on the restarted `server`; then the ledger's acknowledged
/// state becomes what was found (one of the allowed states), for the next trial.
pub async fn check(
    server: &Server,
    client: &Client,
    ledger: &mut Ledger,
    outbox_seen: &mut BTreeSet<String>,
    known_tokens: &mut BTreeSet<String>,
    customers: std::net::SocketAddr,
) -> Report {
    let mut report = Report::default();
    let master = std::fs::read_to_string(server.data_dir.join("master.key")).unwrap();
    let vault = sesame_crypto::OpenSslVault::new(sesame_crypto::Sealer::new(
        sesame_crypto::MasterKey::parse(&master).unwrap(),
    ));
    let store = sesame_store::SqliteStore::open(&server.data_dir.join("sesame.db")).unwrap();
    let account = AccountId::parse(&server.account).unwrap();
    let stored_names: BTreeSet<String> = store
        .list_identities(&account, &Default::default(), None, 1_000_000)
        .unwrap()
        .into_iter()
        .map(|s| s.name.to_string())
        .collect();
    // ListEmailIdentities shows what the store holds.
    let mut listed = BTreeSet::new();
    let mut token = None;
    loop {
        let page = client
            .list_email_identities()
            .page_size(1000)
            .set_next_token(token)
            .send()
            .await;
        let Ok(page) = page else {
            report.half.push(format!("ListEmailIdentities: {page:?}"));
            break;
        };
        listed.extend(
            page.email_identities()
                .iter()
                .filter_map(|i| i.identity_name().map(str::to_owned)),
        );
        token = page.next_token().map(str::to_owned);
        if token.is_none() {
            break;
        }
    }
    if listed != stored_names {
        report.half.push(format!(
            "ListEmailIdentities shows {:?} beyond the store, and lacks {:?}",
            listed.difference(&stored_names).collect::<Vec<_>>(),
            stored_names.difference(&listed).collect::<Vec<_>>()
        ));
    }
    let names: BTreeSet<String> = ledger
        .names
        .keys()
        .cloned()
        .chain(stored_names.iter().cloned())
        .collect();
    let mut stored_by_name = BTreeMap::new();
    for name in &names {
        let parsed = IdentityName::parse(name).unwrap();
        let stored = store.get_identity(&account, &parsed).unwrap();
        report.identities += 1;
        let observed = match observe(client, name, stored.as_ref()).await {
            Ok(o) => o,
            Err(e) => {
                report.half.push(e);
                continue;
            }
        };
        if observed.is_some() != stored.is_some() {
            report.half.push(format!(
                "{name}: the API and the store disagree on existence"
            ));
        }
        if let Some(id) = &stored {
            report.half.extend(whole(id, &vault));
            if let (
                Some(Some(Dk::Easy {
                    tokens: Some(t), ..
                })),
                Some(dk),
            ) = (observed.as_ref().map(|s| s.dkim.clone()), &id.dkim)
                && let DkimOrigin::Easy { tokens, .. } = &dk.origin
                && tokens
                    .iter()
                    .map(|x| x.as_str())
                    .ne(t.iter().map(String::as_str))
            {
                report
                    .half
                    .push(format!("{name}: API tokens {t:?}, store tokens {tokens:?}"));
            }
        }
        match ledger.names.get_mut(name) {
            None => report
                .half
                .push(format!("{name}: in the store, but the load never wrote it")),
            Some(track) => {
                let mut allowed = vec![track.ack.clone()];
                if let Some((_, s)) = &track.pending {
                    allowed.push(s.clone());
                }
                if !allowed.iter().any(|a| admits(a, &observed)) {
                    report.lost.push(format!(
                        "{name}: found {observed:?}; acknowledged {:?}; cut off: {:?}; this trial's acknowledged writes: {:?}",
                        track.ack, track.pending, track.history
                    ));
                }
                track.ack = observed;
                track.pending = None;
                track.history.clear();
            }
        }
        if let Some(id) = stored {
            stored_by_name.insert(name.clone(), id);
        }
    }

    // The key zone serves every Easy DKIM key (signing, staged and retired), and nothing of
    // deleted or replaced identities.
    let resolver = key_zone_resolver(server);
    let zone = "dkim.sesame.internal";
    let mut live = BTreeSet::new();
    for (name, id) in &stored_by_name {
        let Some(dk) = &id.dkim else { continue };
        let DkimOrigin::Easy { tokens, .. } = &dk.origin else {
            continue;
        };
        for (t, (k, state)) in tokens.iter().zip(dk.keys.slots()) {
            live.insert(t.as_str().to_owned());
            let role = match state {
                SlotState::Signing => "signing",
                SlotState::Staged => "staged",
                _ => "other",
            };
            match served_key(&resolver, t.as_str(), zone).await {
                Ok(der) if der == k.public_der => report.keys_served += 1,
                Ok(_) => report.half.push(format!(
                    "{name}: the key zone serves another key for {role} token {}",
                    t.as_str()
                )),
                Err(e) => report.half.push(format!(
                    "{name}: the key zone serves no key for {role} token {}: {e}",
                    t.as_str()
                )),
            }
        }
    }
    for (_, track) in ledger.names.iter() {
        if let Some(Shape {
            dkim: Some(Dk::Easy {
                tokens: Some(t), ..
            }),
            ..
        }) = &track.ack
        {
            known_tokens.extend(t.iter().cloned());
        }
    }
    for t in known_tokens.iter().filter(|t| !live.contains(*t)) {
        if served_key(&resolver, t, zone).await.is_ok() {
            report.half.push(format!(
                "the key zone still serves token {t}, which no identity has"
            ));
        }
    }
    *known_tokens = live;

    // Acknowledged rotations: the staged key is there, staged or already signing (or, after a
    // later rotation, retired).
    for r in std::mem::take(&mut ledger.rotations) {
        let found = stored_by_name.get(&r.domain).and_then(|id| {
            let dk = id.dkim.as_ref()?;
            let DkimOrigin::Easy { tokens, .. } = &dk.origin else {
                return None;
            };
            let s = tokens.iter().position(|t| t.as_str() == r.staged_token)?;
            let k = dk.keys.key(s)?;
            // Staged, signing or retired: any state but never-signed free.
            let placed = dk.keys.state(s) != Some(SlotState::Free);
            Some(placed && k.created_at.0 >= r.started_ms)
        });
        if found != Some(true) {
            report.lost.push(format!(
                "{}: the acknowledged rotation to token {} (started {}) is not there: {:?}",
                r.domain,
                r.staged_token,
                r.started_ms,
                stored_by_name.get(&r.domain).and_then(|i| i.dkim.clone())
            ));
        }
    }
    drop(store);

    // The outbox: acknowledged messages are there and whole; every message is complete, signed
    // and verifies through the DNS (customers' zone, then the key zone).
    let outbox = server.data_dir.join("outbox");
    let sends = std::mem::take(&mut ledger.sends);
    for s in &sends {
        let path = outbox.join(format!("{}.eml", s.id));
        match std::fs::read(&path) {
            Err(e) => report.lost.push(format!(
                "acknowledged message {} ({}) is not in the outbox: {e}",
                s.id, s.marker
            )),
            Ok(bytes) => {
                let text = String::from_utf8_lossy(&bytes);
                let whole_raw = s.raw.as_ref().is_none_or(|r| bytes.ends_with(r));
                if !whole_raw || !text.contains(&format!("END {}", s.marker)) {
                    report.lost.push(format!(
                        "acknowledged message {} ({}) is not whole in the outbox",
                        s.id, s.marker
                    ));
                }
            }
        }
    }
    let forward = crate::forwarddns::ForwardDns::start(customers, server.dns, zone);
    let mut entries: Vec<_> = std::fs::read_dir(&outbox)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    entries.sort();
    for f in entries {
        if f.starts_with('.') {
            if f.ends_with(".tmp") {
                report.temp_files += 1;
            } else {
                report.half.push(format!("outbox: unexpected file {f}"));
            }
            continue;
        }
        if !f.ends_with(".eml") {
            report.half.push(format!("outbox: unexpected file {f}"));
            continue;
        }
        if !outbox_seen.insert(f.clone()) {
            continue;
        }
        report.outbox_checked += 1;
        let bytes = std::fs::read(outbox.join(&f)).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        let marker = text
            .lines()
            .find_map(|l| l.strip_prefix("Subject: crash trial "))
            .map(|m| m.trim().to_owned());
        if text
            .lines()
            .any(|l| l.starts_with("Subject: Email address verification request"))
        {
            // Sesame's own mail to an address a trial created: whole (its MIME ends with the
            // closing boundary) and carrying its link; unsigned, as no operator domain is
            // verified here.
            let closed = text
                .trim_end()
                .lines()
                .last()
                .is_some_and(|l| l.starts_with("--") && l.ends_with("--"));
            if !closed || !text.contains("/verify/") {
                report.half.push(format!(
                    "outbox {f}: an incomplete verification mail ({} bytes)",
                    bytes.len()
                ));
            }
            continue;
        }
        let Some(marker) = marker else {
            report.half.push(format!("outbox {f}: no subject line"));
            continue;
        };
        if !text.contains(&format!("END {marker}")) {
            report
                .half
                .push(format!("outbox {f}: incomplete ({} bytes)", bytes.len()));
            continue;
        }
        let Some(signed) = text
            .strip_prefix("Return-Path: <")
            .and_then(|t| t.split_once(">\r\n"))
            .map(|(_, rest)| rest)
        else {
            report
                .half
                .push(format!("outbox {f}: no Return-Path line first"));
            continue;
        };
        if !signed.starts_with("DKIM-Signature: v=1; a=rsa-sha256;") {
            report.half.push(format!("outbox {f}: not signed"));
            continue;
        }
        // Signed with a key that had activated: never with one that is still staged (which
        // the key zone publishes too, so the signature alone would verify).
        let tag = |t: &str| {
            text.split_once("\r\n\r\n")
                .map_or(&text[..], |(h, _)| h)
                .split(';')
                .find_map(|p| p.trim().strip_prefix(t).map(str::to_owned))
        };
        if let (Some(d), Some(sel)) = (tag("d="), tag("s="))
            && let Some(id) = stored_by_name.get(&d)
            && let Some(dk) = &id.dkim
            && let DkimOrigin::Easy { tokens, .. } = &dk.origin
            && let Some(slot) = tokens.iter().position(|t| t.as_str() == sel)
            && dk.keys.state(slot) == Some(SlotState::Staged)
        {
            report.half.push(format!(
                "outbox {f}: signed by {d}'s staged key {sel}, which never signed"
            ));
        }
        match crate::forwarddns::mail_auth_verifies(forward.addr, &bytes).await {
            Ok(()) => report.outbox_verified += 1,
            Err(e) => {
                let sig = text.lines().take(3).collect::<Vec<_>>().join(" ");
                report
                    .half
                    .push(format!("outbox {f}: does not verify: {e}: {sig}"))
            }
        }
    }
    report
}
