//! The console's HTML (maud: escaped by construction), one function per page, with the one
//! stylesheet and script every page carries inline. Element ids and classes are the pages'
//! interface for the browser test and for anyone scripting the console.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, Markup, PreEscaped, html};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use sesame_core::identities::IdentityView;
use sesame_core::model::{DkimOrigin, IdentityName, SlotState, Timestamp};
use sesame_core::verification::{ExpectedRecord, RecordCheck};
use sha2::{Digest, Sha256};
use std::sync::LazyLock;

const STYLE: &str = r#"
:root{--fg:#1d2330;--muted:#5b6475;--line:#d9dde5;--bg:#f6f7f9;--ok:#17803d;--warn:#9a6700;--bad:#c0262d;--accent:#2456c6}
*{box-sizing:border-box}
body{margin:0;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg)}
header{display:flex;flex-wrap:wrap;gap:.5rem 1.25rem;align-items:center;padding:.6rem 1rem;background:#fff;border-bottom:1px solid var(--line)}
header .brand{font-weight:700}
header nav{display:flex;gap:1rem;flex-wrap:wrap}
header form{margin-left:auto}
main{max-width:72rem;margin:0 auto;padding:1rem}
a{color:var(--accent)}
h1{font-size:1.35rem;margin:.25rem 0 1rem;word-break:break-all}
h2{font-size:1.1rem;margin:1.5rem 0 .5rem}
.card{background:#fff;border:1px solid var(--line);border-radius:8px;padding:1rem;margin-bottom:1rem}
.scroll{overflow-x:auto}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:.45rem .5rem;border-bottom:1px solid var(--line);vertical-align:top}
th{font-size:.8rem;text-transform:uppercase;letter-spacing:.03em;color:var(--muted)}
code{font:13px/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;word-break:break-all}
.status{font-weight:600}
.s-SUCCESS{color:var(--ok)}.s-PENDING,.s-TEMPORARY_FAILURE{color:var(--warn)}.s-FAILED{color:var(--bad)}.s-NOT_STARTED{color:var(--muted)}
.dns-found{color:var(--ok)}.dns-missing,.dns-wrong{color:var(--bad)}.dns-unknown{color:var(--warn)}
#counts{display:flex;flex-wrap:wrap;gap:.5rem;margin:0 0 1rem;padding:0;list-style:none}
#counts li{background:#fff;border:1px solid var(--line);border-radius:6px;padding:.35rem .7rem}
#counts .count{font-weight:700;margin-left:.35rem}
form.inline{display:inline}
#filter{display:flex;flex-wrap:wrap;gap:.5rem;align-items:end;margin-bottom:1rem}
label{display:flex;flex-direction:column;font-size:.8rem;color:var(--muted);gap:.2rem}
input,select,button{font:inherit;padding:.4rem .55rem;border:1px solid var(--line);border-radius:6px;background:#fff;color:var(--fg)}
button{cursor:pointer;background:var(--accent);border-color:var(--accent);color:#fff}
button.copy,button.quiet{background:#fff;color:var(--accent);padding:.15rem .5rem;font-size:.8rem;margin-left:.35rem}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.3rem 1rem;margin:0}
dt{color:var(--muted)}dd{margin:0;word-break:break-word}
.note{background:#eef3ff;border:1px solid #c9d7ff;border-radius:6px;padding:.5rem .75rem;margin-bottom:1rem}
.error{background:#fff0f0;border-color:#f3c1c3}
@media (max-width:40rem){
 table.stack thead{display:none}
 table.stack tr{display:block;border-bottom:1px solid var(--line);padding:.4rem 0}
 table.stack td{display:block;border:0;padding:.15rem .25rem}
 table.stack td[data-label]::before{content:attr(data-label) ": ";color:var(--muted);font-size:.8rem}
 dl{grid-template-columns:1fr}dt{margin-top:.4rem}
}
"#;

const SCRIPT: &str = r#"
function sesameCopy(text){var t=document.createElement('textarea');t.value=text;t.setAttribute('readonly','');t.style.position='fixed';t.style.opacity='0';document.body.appendChild(t);t.select();try{document.execCommand('copy')}catch(e){}document.body.removeChild(t)}
document.querySelectorAll('button.copy').forEach(function(b){b.addEventListener('click',function(){var v=b.getAttribute('data-copy');var done=function(){b.textContent='Copied';setTimeout(function(){b.textContent='Copy'},1500)};if(navigator.clipboard&&window.isSecureContext){navigator.clipboard.writeText(v).then(done,function(){sesameCopy(v);done()})}else{sesameCopy(v);done()}})});
"#;

fn csp_hash(text: &str) -> String {
    format!(
        "'sha256-{}'",
        data_encoding::BASE64.encode(&Sha256::digest(text.as_bytes()))
    )
}

/// Only this page's own style and script run, by hash; nothing loads from anywhere, and
/// forms post only back here.
static CSP: LazyLock<String> = LazyLock::new(|| {
    format!(
        "default-src 'none'; style-src {}; script-src {}; img-src 'self' data:; \
         form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        csp_hash(STYLE),
        csp_hash(SCRIPT)
    )
});

fn respond(status: StatusCode, markup: Markup) -> Response {
    let mut resp = (status, markup.into_string()).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(&CSP) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

fn layout(title: &str, csrf: Option<&str>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Sesame console" }
                style { (PreEscaped(STYLE)) }
            }
            body {
                header {
                    span.brand { "Sesame" }
                    @if let Some(csrf) = csrf {
                        nav {
                            a #nav-identities href="/console/identities" { "Identities" }
                            a #nav-verifications href="/console/verifications" { "Pending verifications" }
                            a #nav-accounts href="/console/accounts" { "Accounts" }
                        }
                        form.inline #sign-out method="post" action="/console/logout" {
                            input type="hidden" name="csrf" value=(csrf);
                            button.quiet type="submit" { "Sign out" }
                        }
                    }
                }
                main { (body) }
                script { (PreEscaped(SCRIPT)) }
            }
        }
    }
}

/// Letters, digits and `-._~` stay; everything else (`@`, `+`, `/`) is escaped in a path.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The console address of one identity.
pub(crate) fn identity_href(account: &str, name: &str) -> String {
    format!(
        "/console/identities/{}/{}",
        utf8_percent_encode(account, SEGMENT),
        utf8_percent_encode(name, SEGMENT)
    )
}

/// A page that says why a request was refused.
pub(crate) fn refused(status: StatusCode, why: &str) -> Response {
    respond(
        status,
        layout(
            status.canonical_reason().unwrap_or("Refused"),
            None,
            html! {
                h1 { (status.as_u16()) " " (status.canonical_reason().unwrap_or("")) }
                p.note.error #refusal { (why) }
                p { a href="/console/identities" { "Back to the identities" } }
            },
        ),
    )
}

pub(crate) fn login(error: Option<&str>, status: StatusCode) -> Response {
    respond(
        status,
        layout(
            "Sign in",
            None,
            html! {
                h1 { "Sign in" }
                @if let Some(e) = error { p.note.error #sign-in-error { (e) } }
                form.card #sign-in method="post" action="/console/login" {
                    p { "The admin token is in " code { "<data-dir>/admin-token" } " unless the server was given " code { "--admin-token" } "." }
                    label for="token" { "Admin token"
                        input #token type="password" name="token" autocomplete="current-password" required autofocus;
                    }
                    p { button #sign-in-button type="submit" { "Sign in" } }
                }
            },
        ),
    )
}

/// One row of the identities page.
pub(crate) struct Row {
    pub account_id: String,
    pub account_name: String,
    pub name: String,
    pub identity_type: &'static str,
    pub status: &'static str,
}

/// The identities page.
pub(crate) struct ListPage {
    pub csrf: String,
    pub accounts: Vec<(String, String)>,
    pub chosen_account: Option<String>,
    pub chosen_status: Option<&'static str>,
    pub name: Option<String>,
    pub counts: Vec<(&'static str, u64)>,
    pub rows: Vec<Row>,
    pub more: bool,
    pub notes: Vec<String>,
}

pub(crate) fn identities(p: &ListPage) -> Response {
    let body = html! {
        h1 { "Identities" }
        @for n in &p.notes { p.note { (n) } }
        ul #counts {
            @for (status, count) in &p.counts {
                li data-status=(status) { span.status.{"s-" (status)} { (status) } span.count { (count) } }
            }
        }
        form #filter method="get" action="/console/identities" {
            label { "Status"
                select #filter-status name="status" {
                    option value="" { "any" }
                    @for s in sesame_core::model::DkimStatus::NAMES {
                        option value=(s) selected[p.chosen_status == Some(*s)] { (s) }
                    }
                }
            }
            label { "Account"
                select #filter-account name="account" {
                    option value="" { "any" }
                    @for (id, name) in &p.accounts {
                        option value=(id) selected[p.chosen_account.as_deref() == Some(id.as_str())] { (name) " (" (id) ")" }
                    }
                }
            }
            label { "Name contains"
                input #filter-name type="search" name="name" value=[p.name.as_deref()];
            }
            button #filter-button type="submit" { "Filter" }
        }
        div.card.scroll {
            @if p.rows.is_empty() {
                p #no-identities { "No identity matches." }
            } @else {
                table.stack #identities {
                    thead { tr { th { "Identity" } th { "Type" } th { "Status" } th { "Account" } } }
                    tbody {
                        @for r in &p.rows {
                            tr.identity {
                                td.name data-label="Identity" { a.identity-link href=(identity_href(&r.account_id, &r.name)) { (r.name) } }
                                td.type data-label="Type" { (r.identity_type) }
                                td.status.{"s-" (r.status)} data-label="Status" { (r.status) }
                                td.account data-label="Account" { (r.account_name) " " code { (r.account_id) } }
                            }
                        }
                    }
                }
            }
            @if p.more { p.note #more { "Showing the first " (super::pages::ROW_LIMIT) "; narrow the filter to see the rest." } }
        }
    };
    respond(StatusCode::OK, layout("Identities", Some(&p.csrf), body))
}

fn rfc3339(t: Timestamp) -> String {
    let at =
        std::time::UNIX_EPOCH + std::time::Duration::from_millis(u64::try_from(t.0).unwrap_or(0));
    humantime::format_rfc3339_seconds(at).to_string()
}

/// A time and how far it is from now, for a person.
fn when(t: Option<Timestamp>, never: &str) -> String {
    let Some(t) = t else {
        return never.to_owned();
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    let delta = (t.0 - now) / 1000;
    let span = humantime::format_duration(std::time::Duration::from_secs(delta.unsigned_abs()));
    match delta {
        0 => format!("{} (now)", rfc3339(t)),
        d if d > 0 => format!("{} (in {span})", rfc3339(t)),
        _ => format!("{} ({span} ago)", rfc3339(t)),
    }
}

fn slot_state(s: SlotState) -> String {
    match s {
        SlotState::Signing => "signing".to_owned(),
        SlotState::Staged => "staged: published, signs once seen in DNS".to_owned(),
        SlotState::Retired(at) => format!("retired {}", when(Some(at), "")),
        SlotState::Free => "spare".to_owned(),
    }
}

/// What the DNS shows, as a class: found, missing, wrong or unknown.
fn dns_class(seen: &RecordCheck) -> &'static str {
    match seen {
        RecordCheck::Valid => "dns-found",
        RecordCheck::HostNotFound | RecordCheck::TypeNotFound => "dns-missing",
        RecordCheck::Wrong(_) | RecordCheck::Several(_) => "dns-wrong",
        RecordCheck::Weak(_) => "dns-weak",
        RecordCheck::ServerError(_) => "dns-unknown",
    }
}

/// The identity page.
pub(crate) struct IdentityPage<'a> {
    pub csrf: String,
    pub view: &'a IdentityView,
    pub records: &'a [ExpectedRecord],
    pub seen: &'a [RecordCheck],
    pub queued: bool,
    pub dkim_zone: &'a str,
}

pub(crate) fn identity(p: &IdentityPage<'_>) -> Response {
    let id = &p.view.identity;
    let account = id.account.as_str();
    let status = id.verification_status.name();
    let v = &id.verification;
    let body = html! {
        p { a href="/console/identities" { "← Identities" } }
        h1 #identity-name { (id.name.as_str()) }
        @if p.queued { p.note #queued { "A check is queued: the verifier takes it on its next pass (within a second or so). Reload to see the result." } }
        div.card {
            dl #facts {
                dt { "Type" } dd #identity-type { (id.name.kind().name()) }
                dt { "Account" } dd #identity-account { code { (account) } }
                dt { "Verification status" } dd #verification-status .status.{"s-" (status)} { (status) }
                dt { "Verified for sending" } dd { (if id.verified_for_sending() { "yes" } else { "no" }) }
                dt { "Created" } dd { (when(Some(id.created_at), "")) }
                @if let Some(link) = &id.link {
                    dt { "Verification link" } dd #link {
                        "sent " (when(Some(link.sent_at), ""))
                        @if id.verification_status == sesame_core::model::DkimStatus::Pending { ", works until " (when(Some(link.expires_at), "")) }
                        @else if id.verified_for_sending() { ", followed " (when(v.last_success, "")) }
                        @else { ", expired " (when(Some(link.expires_at), "")) }
                    }
                    @if let Some(url) = &link.success_url { dt { "After the click" } dd #link-redirect { code { (url) } } }
                }
                dt { "MAIL FROM domain" } dd #mail-from-domain {
                    @match &id.mail_from {
                        Some(mf) => { code { (mf.domain.as_str()) } " " span #mail-from-status .status.{"s-" (mf.status.name())} { (mf.status.name()) } }
                        None => { "none: the default envelope domain" }
                    }
                }
                dt { "On MX failure" } dd #mail-from-behavior { (id.mx_failure.name()) }
                @let open: Vec<_> = id.recommendations.items.iter().filter(|a| a.status == sesame_core::model::AdviceStatus::Open).collect();
                dt { "Open recommendations" } dd #recommendations {
                    @if open.is_empty() { "none" }
                    @for a in &open { span.recommendation { (a.kind.area().name()) " " (a.kind.impact().name()) ": " (a.kind.name()) } " " }
                }
                @if let Some(dkim) = &id.dkim {
                    dt { "DKIM origin" } dd #dkim-origin { (match dkim.origin { DkimOrigin::Easy { .. } => "AWS_SES (Easy DKIM)", DkimOrigin::External { .. } => "EXTERNAL (BYODKIM)" }) }
                    dt { "DKIM status" } dd #dkim-status .status.{"s-" (status)} { (status) }
                    dt { "DKIM signing" } dd #dkim-signing { (if dkim.signing_enabled { "enabled" } else { "disabled" }) }
                    dt { "Signing key" } dd #signing-key {
                        code { (dkim.keys.signing().selector.as_str()) } ", " (dkim.keys.signing().bits) " bits"
                        @if dkim.keys.signing().is_revoked() { " " span.status.s-FAILED #signing-revoked { "REVOKED" } ": nothing signs until the replacement does" }
                    }
                    @if let DkimOrigin::Easy { lengths, .. } = &dkim.origin {
                        dt { "Next key length" } dd #next-key-length { (lengths.next_length.bits()) " bits" }
                    }
                    dt { "Rotation" } dd #rotation {
                        @match dkim.keys.staged() {
                            Some((_, k)) => { "a new key " code { (k.selector.as_str()) } " is staged and signs once the DNS shows it" }
                            None => { "no rotation in progress" }
                        }
                    }
                    dt { "Last check" } dd #last-check { (when(v.last_checked, "not yet")) }
                    dt { "Last success" } dd #last-success { (when(v.last_success, "never")) }
                    dt { "Error" } dd #verification-error { (v.error.map_or("none", |e| e.name())) }
                    dt { "Next check" } dd #next-check { (when(v.next_check_at, "none: a FAILED identity waits for a new DKIM set-up")) }
                    @if let Some(soa) = &v.soa {
                        dt { "Zone SOA" } dd { code { (soa.primary_name_server) " " (soa.admin_email) " " (soa.serial) } }
                    }
                }
            }
        }
        @if let Some(dkim) = &id.dkim {
            h2 { "Records to publish" }
            p { "Publish these in the DNS of " code { (id.name.as_str()) } "."
                @if matches!(dkim.origin, DkimOrigin::Easy { .. }) { " Each CNAME points at a key Sesame serves from its zone " code { (p.dkim_zone) } "." } }
            div.card.scroll {
                table.stack #records {
                    thead { tr { th { "For" } th { "Name" } th { "Type" } th { "Value" } th { "What the DNS shows now" } } }
                    tbody {
                        @for (i, r) in p.records.iter().enumerate() {
                            @let (name, rtype, value) = sesame_dns::records::record_parts(r);
                            @let (seen, class) = p.seen.get(i).map_or(("not looked up".to_owned(), "dns-unknown"), |c| (sesame_dns::records::describe(c), dns_class(c)));
                            tr.record {
                                td.record-purpose data-label="For" { (sesame_dns::records::purpose(r)) }
                                td.record-name data-label="Name" { code { (name) } button.copy type="button" data-copy=(name) { "Copy" } }
                                td.record-type data-label="Type" { (rtype) }
                                td.record-value data-label="Value" { code { (value) } button.copy type="button" data-copy=(value) { "Copy" } }
                                td.record-dns.(class) data-label="DNS now" { (seen) }
                            }
                        }
                    }
                }
            }
            @if let Some(publisher) = &p.view.publisher {
                @let s = &publisher.state;
                h2 { "DNS publisher" }
                div.card #publisher {
                    dl {
                        dt { "Server" } dd #publisher-server { code { (publisher.server) } " zone " code { (publisher.zone.as_str()) } ", TSIG key " code { (publisher.key_name) } }
                        dt { "Published" } dd #publisher-published { (s.published.len()) " records" @if !s.retiring.is_empty() { ", " (s.retiring.len()) " waiting for removal after the key retention" } }
                        dt { "Last update" } dd #publisher-last { (when(s.last_success_at, "never")) }
                        dt { "Error" } dd #publisher-error .(if s.last_error.is_some() { "error" } else { "" }) {
                            @match &s.last_error {
                                Some(e) => { (e) ", retried " (when(s.retry_at, "soon")) }
                                None => { "none" }
                            }
                        }
                        @for c in &s.conflicts { dt { "Conflict" } dd.publisher-conflict { (c) } }
                    }
                }
            }
            @if !dkim.revocations.is_empty() {
                h2 { "Revocations" }
                div.card.scroll {
                    table.stack #revocations {
                        thead { tr { th { "Token" } th { "When" } th { "By" } } }
                        tbody {
                            @for r in &dkim.revocations {
                                tr { td data-label="Token" { code { (r.selector.as_str()) } } td data-label="When" { (when(Some(r.at), "")) } td data-label="By" { (r.by) } }
                            }
                        }
                    }
                }
            }
            h2 { "Keys" }
            div.card.scroll {
                table.stack #keys {
                    thead { tr { th { "Selector" } th { "Length" } th { "State" } th { "Made" } } }
                    tbody {
                        @for (k, s) in dkim.keys.slots() {
                            tr.key {
                                td data-label="Selector" { code { (k.selector.as_str()) } }
                                td data-label="Length" { (k.bits) " bits" }
                                td data-label="State" { (slot_state(s)) @if k.is_revoked() { ", revoked" } }
                                td data-label="Made" { (when(Some(k.created_at), "")) }
                            }
                        }
                    }
                }
            }
            form.card #check-now method="post" action=(format!("{}/check", identity_href(account, id.name.as_str()))) {
                input type="hidden" name="csrf" value=(p.csrf);
                p { "The verifier re-checks on its own schedule; this makes the check due now." }
                button #check-now-button type="submit" { "Check now" }
            }
        } @else {
            div.card #inherited {
                @if let IdentityName::Email(addr) = &id.name {
                    @let domain = addr.domain();
                    @match &p.view.inherited_dkim {
                        Some(d) => {
                            p { "An address signs with its domain's DKIM key: "
                                a href=(identity_href(account, domain.as_str())) { (domain.as_str()) }
                                " is " span.status.{"s-" (d.status.name())} { (d.status.name()) } "." }
                        }
                        None => {
                            p { "An address signs with its domain's DKIM key, and " code { (domain.as_str()) } " is not an identity of this account." }
                        }
                    }
                }
            }
        }
    };
    respond(
        StatusCode::OK,
        layout(id.name.as_str(), Some(&p.csrf), body),
    )
}

/// One row of the accounts page.
pub(crate) struct AccountRow {
    pub id: String,
    pub name: String,
    pub created_at: Timestamp,
    pub keys: Vec<(String, bool)>,
}

pub(crate) fn accounts(csrf: &str, rows: &[AccountRow]) -> Response {
    let body = html! {
        h1 { "Accounts" }
        p { "Access keys by id; their secrets are sealed and never shown." }
        div.card.scroll {
            table.stack #accounts {
                thead { tr { th { "Name" } th { "Account id" } th { "Created" } th { "Access keys" } } }
                tbody {
                    @for a in rows {
                        tr.account {
                            td.account-name data-label="Name" { a href=(format!("/console/identities?account={}", a.id)) { (a.name) } }
                            td.account-id data-label="Account id" { code { (a.id) } }
                            td data-label="Created" { (when(Some(a.created_at), "")) }
                            td.keys data-label="Access keys" {
                                @for (key, enabled) in &a.keys {
                                    div.key { code { (key) } @if !enabled { " (disabled)" } }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    respond(StatusCode::OK, layout("Accounts", Some(csrf), body))
}

/// One address waiting for its owner to follow the mailed link.
pub(crate) struct PendingRow {
    pub account_id: String,
    pub account_name: String,
    pub name: String,
    pub sent_at: Option<Timestamp>,
    pub expires_at: Option<Timestamp>,
}

pub(crate) fn verifications(csrf: &str, rows: &[PendingRow], more: bool) -> Response {
    let body = html! {
        h1 { "Pending verifications" }
        p { "Address identities whose owners have not yet followed the link mailed to them. A link works for 24 hours; after it the address is FAILED until its owner asks again." }
        div.card.scroll {
            @if rows.is_empty() {
                p #no-verifications { "No address is waiting." }
            } @else {
                table.stack #verifications {
                    thead { tr { th { "Address" } th { "Account" } th { "Mailed" } th { "Link works until" } } }
                    tbody {
                        @for r in rows {
                            tr.pending {
                                td.name data-label="Address" { a.identity-link href=(identity_href(&r.account_id, &r.name)) { (r.name) } }
                                td.account data-label="Account" { (r.account_name) " " code { (r.account_id) } }
                                td.sent data-label="Mailed" { (when(r.sent_at, "no mail sent")) }
                                td.expires data-label="Link works until" { (when(r.expires_at, "")) }
                            }
                        }
                    }
                }
            }
            @if more { p.note #more { "Showing the first " (super::pages::ROW_LIMIT) "." } }
        }
    };
    respond(
        StatusCode::OK,
        layout("Pending verifications", Some(csrf), body),
    )
}
