//! The console's handlers: each checks the session, reads through the use cases (off the
//! async workers) and hands plain values to `view`.

use super::auth::{self, Auth};
use super::view;
use crate::{AdminState, blocking};
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use sesame_core::model::{AccountId, DkimStatus, IdentityFilter, IdentityName};
use sesame_core::verification::RecordCheck;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// Rows the identities page shows at most; past it, the filter narrows.
pub(crate) const ROW_LIMIT: usize = 500;
/// How long the identity page waits for the DNS before it says so.
const DNS_DEADLINE: Duration = Duration::from_secs(8);

fn session(st: &AdminState, headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(auth::session_of)
        .filter(|id| st.auth.valid(id))
        .map(str::to_owned)
}

fn to_sign_in() -> Response {
    Redirect::to("/console/login").into_response()
}

/// Why a POST was refused: 401 without a session, 403 with a wrong or missing CSRF token.
struct Refusal(StatusCode, &'static str);

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        view::refused(self.0, self.1)
    }
}

/// A POST's session, once its session and CSRF token are checked.
fn post_guard(st: &AdminState, headers: &HeaderMap, body: &[u8]) -> Result<String, Refusal> {
    let Some(id) = session(st, headers) else {
        return Err(Refusal(
            StatusCode::UNAUTHORIZED,
            "Sign in first: this form needs a console session.",
        ));
    };
    let form = parse_form(body);
    let given = form.get("csrf").map(String::as_str).unwrap_or("");
    if !st.auth.csrf_ok(&id, given) {
        return Err(Refusal(
            StatusCode::FORBIDDEN,
            "This form's CSRF token is missing or not this session's; reload the page and try again.",
        ));
    }
    Ok(id)
}

fn unavailable(what: &str) -> Response {
    view::refused(
        StatusCode::SERVICE_UNAVAILABLE,
        &format!("{what}: the store did not answer. Try again in a moment."),
    )
}

/// A form body's fields; anything unparsable reads as no fields (the checks then refuse it).
fn parse_form(body: &[u8]) -> HashMap<String, String> {
    serde_urlencoded::from_bytes(body).unwrap_or_default()
}

pub(crate) async fn home() -> Response {
    Redirect::to("/console/identities").into_response()
}

pub(crate) async fn login_page(State(st): State<Arc<AdminState>>, headers: HeaderMap) -> Response {
    if session(&st, &headers).is_some() {
        return Redirect::to("/console/identities").into_response();
    }
    view::login(None, StatusCode::OK)
}

pub(crate) async fn login(State(st): State<Arc<AdminState>>, body: Bytes) -> Response {
    let form = parse_form(&body);
    let given = form.get("token").map(String::as_str).unwrap_or("");
    match st.auth.sign_in(given.trim()) {
        Some(id) => {
            tracing::info!("console: signed in");
            (
                [(header::SET_COOKIE, Auth::cookie(&id))],
                Redirect::to("/console/identities"),
            )
                .into_response()
        }
        None => {
            tracing::warn!("console: a sign-in with a wrong token");
            view::login(
                Some("That is not the admin token."),
                StatusCode::UNAUTHORIZED,
            )
        }
    }
}

pub(crate) async fn logout(
    State(st): State<Arc<AdminState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let id = match post_guard(&st, &headers, &body) {
        Ok(id) => id,
        Err(refused) => return refused.into_response(),
    };
    st.auth.sign_out(&id);
    (
        [(header::SET_COOKIE, Auth::expired_cookie())],
        Redirect::to("/console/login"),
    )
        .into_response()
}

/// The identities page's query: each field empty or absent for "any".
#[derive(Debug, Default, serde::Deserialize)]
pub(crate) struct ListQuery {
    status: Option<String>,
    account: Option<String>,
    name: Option<String>,
}

fn given(s: &Option<String>) -> Option<&str> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

pub(crate) async fn identities(
    State(st): State<Arc<AdminState>>,
    headers: HeaderMap,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Response {
    let Some(id) = session(&st, &headers) else {
        return to_sign_in();
    };
    let q = query.map(|Query(q)| q).unwrap_or_default();
    let mut notes = Vec::new();
    let status = given(&q.status).and_then(|s| {
        let parsed = DkimStatus::from_name(s);
        if parsed.is_none() {
            notes.push(format!("There is no status {s:?}; showing every status."));
        }
        parsed
    });
    let name = given(&q.name).map(str::to_owned);
    let account = given(&q.account).map(str::to_owned);
    let (accounts, identities) = (st.accounts.clone(), st.use_cases.identities.clone());
    let wanted = account.clone();
    let read = blocking(move || -> Result<_, String> {
        let all = accounts.list_accounts().map_err(|e| e.to_string())?;
        let chosen: Vec<_> = all
            .iter()
            .filter(|a| wanted.as_deref().is_none_or(|w| a.id.as_str() == w))
            .cloned()
            .collect();
        let filter = IdentityFilter {
            name_contains: name,
            identity_type: None,
            verification_status: status,
        };
        let mut rows = Vec::new();
        let mut more = false;
        'accounts: for a in &chosen {
            let mut after: Option<String> = None;
            loop {
                let page = identities
                    .list_identities(&a.id, &filter, after.as_deref(), 100)
                    .map_err(|e| e.to_string())?;
                for item in page.items {
                    if rows.len() == ROW_LIMIT {
                        more = true;
                        break 'accounts;
                    }
                    rows.push(view::Row {
                        account_id: a.id.as_str().to_owned(),
                        account_name: a.name.clone(),
                        name: item.name.as_str().to_owned(),
                        identity_type: item.name.kind().name(),
                        status: item.verification_status.name(),
                    });
                }
                match page.continue_after {
                    Some(next) => after = Some(next),
                    None => break,
                }
            }
        }
        let scope = match (&wanted, chosen.first()) {
            (Some(_), Some(a)) => Some(a.id.clone()),
            _ => None,
        };
        let unknown_account = wanted.is_some() && chosen.is_empty();
        let counts = if unknown_account {
            Vec::new()
        } else {
            identities
                .count_identities(scope.as_ref())
                .map_err(|e| e.to_string())?
        };
        Ok((all, rows, more, counts, unknown_account))
    })
    .await;
    let Some(Ok((all, rows, more, counts, unknown_account))) = read else {
        return unavailable("The identities could not be listed");
    };
    if unknown_account {
        notes.push("There is no such account.".to_owned());
    }
    let mut by_status: Vec<(&'static str, u64)> =
        DkimStatus::NAMES.iter().map(|s| (*s, 0)).collect();
    for c in &counts {
        if let Some(entry) = by_status
            .iter_mut()
            .find(|(s, _)| *s == c.verification_status.name())
        {
            entry.1 += c.count;
        }
    }
    view::identities(&view::ListPage {
        csrf: st.auth.csrf(&id),
        accounts: all
            .iter()
            .map(|a| (a.id.as_str().to_owned(), a.name.clone()))
            .collect(),
        chosen_account: account,
        chosen_status: status.map(DkimStatus::name),
        name: given(&q.name).map(str::to_owned),
        counts: by_status,
        rows,
        more,
        notes,
    })
}

fn parse_target(account: &str, name: &str) -> Option<(AccountId, IdentityName)> {
    Some((
        AccountId::parse(account).ok()?,
        IdentityName::parse(name).ok()?,
    ))
}

/// `?queued=1` after "check now".
#[derive(Debug, Default, serde::Deserialize)]
pub(crate) struct IdentityQuery {
    queued: Option<String>,
}

pub(crate) async fn identity(
    State(st): State<Arc<AdminState>>,
    headers: HeaderMap,
    Path((account, name)): Path<(String, String)>,
    query: Result<Query<IdentityQuery>, QueryRejection>,
) -> Response {
    let Some(id) = session(&st, &headers) else {
        return to_sign_in();
    };
    let Some((account_id, identity_name)) = parse_target(&account, &name) else {
        return view::refused(StatusCode::NOT_FOUND, "There is no such identity.");
    };
    let (identities, checks) = (st.use_cases.identities.clone(), st.use_cases.checks.clone());
    let (a, n) = (account_id.clone(), identity_name.clone());
    let read = blocking(move || {
        identities.get_identity(&a, &n).map(|v| {
            let records = checks.records_of(&v.identity);
            (v, records)
        })
    })
    .await;
    let (identity_view, records) = match read {
        Some(Ok(found)) => found,
        Some(Err(sesame_core::Error::NotFound(_))) => {
            return view::refused(StatusCode::NOT_FOUND, "There is no such identity.");
        }
        _ => return unavailable("The identity could not be read"),
    };
    let seen: Vec<RecordCheck> = if records.is_empty() {
        Vec::new()
    } else {
        match tokio::time::timeout(DNS_DEADLINE, st.verifier.observe(&records)).await {
            Ok(observation) => observation.records,
            Err(_) => vec![
                RecordCheck::ServerError(format!(
                    "no answer within {} s",
                    DNS_DEADLINE.as_secs()
                ));
                records.len()
            ],
        }
    };
    let queued = query.is_ok_and(|Query(q)| q.queued.is_some());
    view::identity(&view::IdentityPage {
        csrf: st.auth.csrf(&id),
        view: &identity_view,
        records: &records,
        seen: &seen,
        queued,
        dkim_zone: &st.use_cases.config.dkim_zone,
    })
}

pub(crate) async fn check_now(
    State(st): State<Arc<AdminState>>,
    headers: HeaderMap,
    Path((account, name)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    if let Err(refused) = post_guard(&st, &headers, &body) {
        return refused.into_response();
    }
    let Some((account_id, identity_name)) = parse_target(&account, &name) else {
        return view::refused(StatusCode::NOT_FOUND, "There is no such identity.");
    };
    let checks = st.use_cases.checks.clone();
    let n = identity_name.clone();
    match blocking(move || checks.check_now(&account_id, &n)).await {
        Some(Ok(true)) => {
            tracing::info!(account, identity = name, "console: check queued");
            Redirect::to(&format!(
                "{}?queued=1",
                view::identity_href(&account, &name)
            ))
            .into_response()
        }
        Some(Ok(false)) => view::refused(
            StatusCode::CONFLICT,
            "An address has no DNS records of its own to check; check its domain.",
        ),
        Some(Err(sesame_core::Error::NotFound(_))) => {
            view::refused(StatusCode::NOT_FOUND, "There is no such identity.")
        }
        _ => unavailable("The check could not be queued"),
    }
}

/// Address identities still PENDING, across accounts, with their links' times.
pub(crate) async fn verifications(
    State(st): State<Arc<AdminState>>,
    headers: HeaderMap,
) -> Response {
    let Some(id) = session(&st, &headers) else {
        return to_sign_in();
    };
    let (accounts, identities) = (st.accounts.clone(), st.use_cases.identities.clone());
    let read = blocking(move || -> Result<_, sesame_core::Error> {
        let all = accounts
            .list_accounts()
            .map_err(|e| sesame_core::Error::Unavailable(e.to_string()))?;
        let filter = IdentityFilter {
            name_contains: None,
            identity_type: Some(sesame_core::model::IdentityType::EmailAddress),
            verification_status: Some(DkimStatus::Pending),
        };
        let mut rows = Vec::new();
        for a in &all {
            let mut after: Option<String> = None;
            loop {
                let page = identities.list_identities(&a.id, &filter, after.as_deref(), 100)?;
                for item in page.items {
                    if rows.len() == ROW_LIMIT {
                        return Ok((rows, true));
                    }
                    let link = identities
                        .get_identity(&a.id, &item.name)
                        .ok()
                        .and_then(|v| v.identity.link);
                    rows.push(view::PendingRow {
                        account_id: a.id.as_str().to_owned(),
                        account_name: a.name.clone(),
                        name: item.name.as_str().to_owned(),
                        sent_at: link.as_ref().map(|l| l.sent_at),
                        expires_at: link.as_ref().map(|l| l.expires_at),
                    });
                }
                match page.continue_after {
                    Some(next) => after = Some(next),
                    None => break,
                }
            }
        }
        Ok((rows, false))
    })
    .await;
    match read {
        Some(Ok((rows, more))) => view::verifications(&st.auth.csrf(&id), &rows, more),
        _ => unavailable("The pending verifications could not be listed"),
    }
}

pub(crate) async fn accounts(State(st): State<Arc<AdminState>>, headers: HeaderMap) -> Response {
    let Some(id) = session(&st, &headers) else {
        return to_sign_in();
    };
    let store = st.accounts.clone();
    let read = blocking(move || -> Result<_, String> {
        let accounts = store.list_accounts().map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        for a in accounts {
            let keys = store.access_keys_of(&a.id).map_err(|e| e.to_string())?;
            out.push(view::AccountRow {
                id: a.id.as_str().to_owned(),
                name: a.name,
                created_at: a.created_at,
                // Ids and whether they work: never a secret, sealed or not.
                keys: keys.into_iter().map(|k| (k.id, k.enabled)).collect(),
            });
        }
        Ok(out)
    })
    .await;
    match read {
        Some(Ok(rows)) => view::accounts(&st.auth.csrf(&id), &rows),
        _ => unavailable("The accounts could not be listed"),
    }
}
