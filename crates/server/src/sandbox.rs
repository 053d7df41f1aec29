//! The sandbox (`sesame dev`, `serve --sandbox`): Sesame's DNS listener also serves, for each
//! identity's domain, the records `sesame dns-records` prints for it, and the verifier asks
//! that listener, so identities verify in seconds by real DNS lookups, with nothing to set up.
//! A developer breaks a record on purpose, or switches the sandbox DNS off (SERVFAIL), through
//! `/sandbox/dns` on the API listener, which needs no signature here; the sandbox is never on
//! unless asked.

mod messages;

pub use messages::Catcher;

use anyhow::Context;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use sesame_core::model::{IdentityFilter, IdentityName};
use sesame_core::ports::Store;
use sesame_core::verification::Checks;
use sesame_dns::records::update_record;
use sesame_dns::sandbox::{QueryLog, SandboxZones};
use sesame_dns::update::UpdateRecord;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// A record broken on purpose: removed (`None`) or given another value.
type Overrides = BTreeMap<(String, String), Option<String>>;

/// The sandbox's state: what it reads identities from, the records broken on purpose and the
/// outage switch (in memory: a sandbox restarts clean), and the query log.
pub struct Sandbox {
    store: Arc<dyn Store>,
    checks: Arc<Checks>,
    overrides: Mutex<Overrides>,
    outage: AtomicBool,
    /// What the sandbox DNS was asked.
    pub log: Arc<QueryLog>,
    /// Requests for zones built after them (`caught_up`, before the verifier checks what it
    /// claimed), the latest request the zones being built answer, and the latest the zones
    /// served answer.
    changes: AtomicU64,
    building: AtomicU64,
    served: AtomicU64,
}

/// One page of identities at a time when the zones are rebuilt.
const PAGE: usize = 1000;

impl Sandbox {
    pub fn new(store: Arc<dyn Store>, checks: Arc<Checks>) -> Sandbox {
        Sandbox {
            store,
            checks,
            overrides: Mutex::default(),
            outage: AtomicBool::new(false),
            log: Arc::default(),
            changes: AtomicU64::new(0),
            building: AtomicU64::new(0),
            served: AtomicU64::new(0),
        }
    }

    /// The zones last built are being served now.
    pub fn mark_served(&self) {
        self.served
            .fetch_max(self.building.load(Ordering::Acquire), Ordering::AcqRel);
    }

    /// Breaks the record `key` (`value` `None`: removed), or, with `restore`, undoes that.
    fn set_override(&self, key: &(String, String), value: Option<String>, restore: bool) {
        let mut overrides = self.overrides.lock().unwrap_or_else(|p| p.into_inner());
        if restore {
            overrides.remove(key);
        } else {
            overrides.insert(key.clone(), value);
        }
    }

    fn changed(&self) -> u64 {
        self.changes.fetch_add(1, Ordering::AcqRel) + 1
    }

    /// Waits (at most 2 s) until the zones served were built after this call: they then hold
    /// every identity that existed when it was made.
    pub async fn caught_up(&self) {
        let change = self.changed();
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(2);
        while self.served.load(Ordering::Acquire) < change && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }

    /// Every domain identity and the records it needs (a BYODKIM key's TXT included; no DMARC
    /// record, whose policy is the developer's to choose), with the overrides applied.
    pub fn records(&self) -> anyhow::Result<(Vec<String>, Vec<UpdateRecord>)> {
        let (domains, records) = self.identities()?;
        Ok((
            domains
                .into_iter()
                .map(|(_, n)| n.as_str().to_owned())
                .collect(),
            records,
        ))
    }

    /// Makes the checks of the domains whose zone holds `name` (every domain when `None`)
    /// due now: the sandbox knows its DNS changed, where a real zone's owner would wait for
    /// the next scheduled check.
    pub fn recheck(&self, name: Option<&str>) -> anyhow::Result<()> {
        let (domains, _) = self.identities()?;
        for (account, domain) in domains {
            let d = domain.as_str();
            let inside = name.is_none_or(|n| {
                let n = n.trim_end_matches('.').to_ascii_lowercase();
                n == d || n.ends_with(&format!(".{d}"))
            });
            if inside {
                self.checks.check_now(&account, &domain)?;
            }
        }
        Ok(())
    }

    #[allow(clippy::type_complexity)]
    fn identities(
        &self,
    ) -> anyhow::Result<(
        Vec<(sesame_core::model::AccountId, IdentityName)>,
        Vec<UpdateRecord>,
    )> {
        let mut domains = Vec::new();
        let mut records = Vec::new();
        for account in self.store.list_accounts()? {
            let mut after: Option<String> = None;
            loop {
                let page = self.store.list_identities(
                    &account.id,
                    &IdentityFilter::default(),
                    after.as_deref(),
                    PAGE,
                )?;
                for s in &page {
                    if !matches!(s.name, IdentityName::Domain(_)) {
                        continue;
                    }
                    let Some(id) = self.store.get_identity(&account.id, &s.name)? else {
                        continue;
                    };
                    domains.push((account.id.clone(), id.name.clone()));
                    records.extend(
                        self.checks
                            .records_of(&id)
                            .iter()
                            .filter_map(|r| update_record(r, true)),
                    );
                }
                if page.len() < PAGE {
                    break;
                }
                after = page.last().map(|s| s.name.as_str().to_owned());
            }
        }
        let overrides = self
            .overrides
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let key = |r: &UpdateRecord| {
            (
                r.name().trim_end_matches('.').to_ascii_lowercase(),
                r.rtype().to_owned(),
            )
        };
        records.retain(|r| !overrides.contains_key(&key(r)));
        for ((name, rtype), value) in &overrides {
            if let Some(v) = value
                && let Some(r) = UpdateRecord::from_parts(name, rtype, v)
            {
                records.push(r);
            }
        }
        Ok((domains, records))
    }

    /// The zones to serve now.
    pub fn zones(&self) -> anyhow::Result<SandboxZones> {
        self.building
            .store(self.changes.load(Ordering::Acquire), Ordering::Release);
        let (domains, records) = self.records()?;
        Ok(SandboxZones::build(
            &domains,
            &records,
            self.outage.load(Ordering::Acquire),
            self.log.clone(),
        ))
    }
}

/// A JSON answer (axum's `json` feature is not in the build; serde_json is).
pub(crate) fn json_answer(status: StatusCode, value: &Value) -> Response {
    (
        status,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        value.to_string(),
    )
        .into_response()
}

fn refused(status: StatusCode, message: &str) -> Response {
    json_answer(status, &json!({"message": message}))
}

/// `GET /sandbox/dns`: the records served, the overrides, the outage switch, recent queries.
async fn show(State(sb): State<Arc<Sandbox>>) -> Response {
    let s = sb.clone();
    let Ok(Ok((domains, records))) = tokio::task::spawn_blocking(move || s.records()).await else {
        return refused(
            StatusCode::SERVICE_UNAVAILABLE,
            "the store could not be read",
        );
    };
    let overrides: Vec<Value> = sb
        .overrides
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .map(|((n, t), v)| json!({"Name": n, "Type": t, "Value": v}))
        .collect();
    json_answer(
        StatusCode::OK,
        &json!({
            "Zones": domains,
            "Records": records.iter().map(|r| json!({"Name": r.name(), "Type": r.rtype(), "Value": r.value()})).collect::<Vec<_>>(),
            "Overrides": overrides,
            "Outage": sb.outage.load(Ordering::Acquire),
            "Queries": sb.log.recent().iter().map(|q| json!({"Name": q.name, "Type": q.qtype, "Rcode": q.rcode})).collect::<Vec<_>>(),
        }),
    )
}

/// `POST /sandbox/dns` `{"Action": "remove"|"set"|"restore", "Name", "Type", "Value"}`: break
/// a record on purpose, or undo that. Served from the next rebuild (within the key zone poll).
async fn change(State(sb): State<Arc<Sandbox>>, body: axum::body::Bytes) -> Response {
    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
        return refused(StatusCode::BAD_REQUEST, "the body is not JSON");
    };
    let text = |k: &str| v.get(k).and_then(Value::as_str);
    let (Some(action), Some(name), Some(rtype)) = (text("Action"), text("Name"), text("Type"))
    else {
        return refused(
            StatusCode::BAD_REQUEST,
            "Action, Name and Type are required",
        );
    };
    let rtype = rtype.to_ascii_uppercase();
    if !matches!(rtype.as_str(), "CNAME" | "TXT" | "MX") {
        return refused(StatusCode::BAD_REQUEST, "Type is CNAME, TXT or MX");
    }
    let key = (
        name.trim_end_matches('.').to_ascii_lowercase(),
        rtype.clone(),
    );
    let value = match action {
        "remove" => None,
        "set" => {
            let Some(value) = text("Value") else {
                return refused(StatusCode::BAD_REQUEST, "set needs a Value");
            };
            if UpdateRecord::from_parts(&key.0, &rtype, value).is_none() {
                return refused(
                    StatusCode::BAD_REQUEST,
                    "Value is `target.` (CNAME), `\"string\" …` (TXT) or `10 host.` (MX)",
                );
            }
            Some(value.to_owned())
        }
        "restore" => {
            sb.set_override(&key, None, true);
            return recheck(sb, Some(key.0)).await;
        }
        _ => return refused(StatusCode::BAD_REQUEST, "Action is remove, set or restore"),
    };
    sb.set_override(&key, value, false);
    recheck(sb, Some(key.0)).await
}

/// Makes the affected domains' checks due now. The verifier claims them on its next pass and
/// waits, as for every sandbox check, until the zones served include the change
/// (`Sandbox::caught_up`).
async fn recheck(sb: Arc<Sandbox>, name: Option<String>) -> Response {
    match tokio::task::spawn_blocking(move || sb.recheck(name.as_deref())).await {
        Ok(Ok(())) => StatusCode::NO_CONTENT.into_response(),
        _ => refused(
            StatusCode::SERVICE_UNAVAILABLE,
            "the checks could not be queued",
        ),
    }
}

/// `POST /sandbox/dns/outage` `{"Enabled": bool}`: every sandbox name answers SERVFAIL while
/// on, as a resolver outage would (TEMPORARY_FAILURE).
async fn outage(State(sb): State<Arc<Sandbox>>, body: axum::body::Bytes) -> Response {
    let enabled = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v.get("Enabled").and_then(Value::as_bool));
    let Some(enabled) = enabled else {
        return refused(
            StatusCode::BAD_REQUEST,
            "the body is {\"Enabled\": true|false}",
        );
    };
    sb.outage.store(enabled, Ordering::Release);
    recheck(sb, None).await
}

/// The sandbox's endpoints, to merge into the API listener's router (sandbox only).
pub fn routes(sandbox: Arc<Sandbox>, catcher: Arc<Catcher>) -> Router {
    let mail = Router::new()
        .route(
            "/sandbox/messages",
            get(messages::list).delete(messages::clear),
        )
        .route("/sandbox/messages/{id}", get(messages::read))
        .with_state(catcher);
    Router::new()
        .route("/sandbox/dns", get(show).post(change))
        .route("/sandbox/dns/outage", post(outage))
        .with_state(sandbox)
        .merge(mail)
}

/// The default account's credentials, for the ready-to-paste lines: those given in the
/// environment, else the generated credentials file.
pub fn credentials(data_dir: &std::path::Path) -> anyhow::Result<(String, String)> {
    if let (Ok(id), Ok(secret)) = (
        std::env::var("SESAME_ACCESS_KEY_ID"),
        std::env::var("SESAME_SECRET_ACCESS_KEY"),
    ) {
        return Ok((id, secret));
    }
    let path = data_dir.join("credentials");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("reading {} for the sandbox's credentials", path.display()))?;
    let field = |k: &str| {
        text.lines()
            .find_map(|l| l.split_once('=').filter(|(a, _)| a.trim() == k))
            .map(|(_, v)| v.trim().to_owned())
            .with_context(|| format!("{} has no {k}", path.display()))
    };
    Ok((field("aws_access_key_id")?, field("aws_secret_access_key")?))
}
