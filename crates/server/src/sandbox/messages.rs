//! The sandbox's mail catcher: the outbox listed, read (raw, headers, and the DKIM result as
//! mail-auth verifies it against the sandbox's own DNS) and cleared over JSON, in the shape
//! MailHog and Mailpit users know. SES's mailbox simulator addresses get the outcome SES
//! would report recorded with the message.

use super::json_answer;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use mail_auth::common::verify::VerifySignature;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

/// Where the catcher reads, and the DNS it verifies signatures against.
pub struct Catcher {
    pub outbox: PathBuf,
    pub dns: SocketAddr,
}

/// SES's mailbox simulator (developer guide, "Using the mailbox simulator"): what SES reports
/// for mail to each address.
fn simulated(address: &str) -> Option<&'static str> {
    let (local, domain) = address.rsplit_once('@')?;
    if !domain.eq_ignore_ascii_case("simulator.amazonses.com") {
        return None;
    }
    // SES accepts `+label` on the simulator addresses to tell tests apart.
    let base = local
        .split('+')
        .next()
        .unwrap_or(local)
        .to_ascii_lowercase();
    Some(match base.as_str() {
        "success" => "delivered",
        "bounce" => "bounce",
        "ooto" => "out of the office (delivered, with an automatic reply)",
        "complaint" => "complaint",
        "suppressionlist" => "bounce (on the suppression list)",
        _ => "unknown simulator address: delivered",
    })
}

/// A message id as the outbox names files: a UUID, nothing that walks the directory.
fn valid_id(id: &str) -> bool {
    id.len() == 36 && id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
}

/// The outbox's messages, oldest first: (id, path).
fn listed(outbox: &std::path::Path) -> Vec<(String, PathBuf)> {
    let mut files: Vec<(std::time::SystemTime, String, PathBuf)> = std::fs::read_dir(outbox)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let path = e.path();
            let id = path.file_name()?.to_str()?.strip_suffix(".eml")?.to_owned();
            let at = e.metadata().ok()?.modified().ok()?;
            valid_id(&id).then_some((at, id, path))
        })
        .collect();
    files.sort();
    files.into_iter().map(|(_, id, p)| (id, p)).collect()
}

/// The envelope sender line the outbox writes first, and the message after it.
fn split(bytes: &[u8]) -> (Option<String>, &[u8]) {
    let Some(end) = bytes.iter().position(|b| *b == b'\n') else {
        return (None, bytes);
    };
    let first = String::from_utf8_lossy(&bytes[..end]);
    match first
        .trim_end_matches('\r')
        .strip_prefix("Return-Path: <")
        .and_then(|s| s.strip_suffix('>'))
    {
        Some(sender) => (Some(sender.to_owned()), &bytes[end + 1..]),
        None => (None, bytes),
    }
}

fn addresses(
    message: &mail_parser::Message<'_>,
    header: mail_parser::HeaderName<'_>,
) -> Vec<String> {
    message
        .header(header)
        .and_then(|h| h.as_address())
        .map(|a| {
            a.iter()
                .filter_map(|x| x.address.as_ref().map(|s| s.to_string()))
                .collect()
        })
        .unwrap_or_default()
}

fn summary(id: &str, message: &[u8]) -> Value {
    let parsed = mail_parser::MessageParser::default().parse(message);
    let (from, to, cc, subject) = match &parsed {
        Some(m) => (
            addresses(m, mail_parser::HeaderName::From),
            addresses(m, mail_parser::HeaderName::To),
            addresses(m, mail_parser::HeaderName::Cc),
            m.subject().map(str::to_owned),
        ),
        None => (vec![], vec![], vec![], None),
    };
    let simulator: Vec<Value> = to
        .iter()
        .chain(&cc)
        .filter_map(|r| simulated(r).map(|o| json!({"Recipient": r, "Outcome": o})))
        .collect();
    json!({
        "MessageId": id,
        "From": from,
        "To": to,
        "Cc": cc,
        "Subject": subject,
        "Size": message.len(),
        "Simulator": simulator,
    })
}

/// `GET /sandbox/messages`.
pub async fn list(State(c): State<Arc<Catcher>>) -> Response {
    let outbox = c.outbox.clone();
    let read = tokio::task::spawn_blocking(move || {
        listed(&outbox)
            .into_iter()
            .filter_map(|(id, path)| {
                let bytes = std::fs::read(path).ok()?;
                Some(summary(&id, split(&bytes).1))
            })
            .collect::<Vec<_>>()
    })
    .await
    .unwrap_or_default();
    json_answer(StatusCode::OK, &json!({"Messages": read}))
}

/// `GET /sandbox/messages/{id}`: the message with its headers and the DKIM result.
pub async fn read(State(c): State<Arc<Catcher>>, Path(id): Path<String>) -> Response {
    if !valid_id(&id) {
        return not_found();
    }
    let path = c.outbox.join(format!("{id}.eml"));
    let Ok(Ok(bytes)) = tokio::task::spawn_blocking(move || std::fs::read(path)).await else {
        return not_found();
    };
    let (envelope, message) = split(&bytes);
    let headers: Vec<Value> = mail_parser::MessageParser::default()
        .parse(message)
        .map(|m| {
            m.headers()
                .iter()
                .map(|h| {
                    let raw = message
                        .get(h.offset_start as usize..h.offset_end as usize)
                        .map(|v| String::from_utf8_lossy(v).trim().to_owned())
                        .unwrap_or_default();
                    json!([h.name.as_str(), raw])
                })
                .collect()
        })
        .unwrap_or_default();
    let dkim = dkim_result(c.dns, message).await;
    let mut out = summary(&id, message);
    out["EnvelopeFrom"] = json!(envelope);
    out["Headers"] = json!(headers);
    out["Dkim"] = dkim;
    out["Raw"] = json!(String::from_utf8_lossy(message));
    json_answer(StatusCode::OK, &out)
}

/// `DELETE /sandbox/messages`.
pub async fn clear(State(c): State<Arc<Catcher>>) -> Response {
    let outbox = c.outbox.clone();
    let _ = tokio::task::spawn_blocking(move || {
        for (_, path) in listed(&outbox) {
            let _ = std::fs::remove_file(path);
        }
    })
    .await;
    StatusCode::NO_CONTENT.into_response()
}

fn not_found() -> Response {
    json_answer(
        StatusCode::NOT_FOUND,
        &json!({"message": "no such message in the outbox"}),
    )
}

/// What a receiver asking the sandbox's DNS would conclude of the message's signatures.
async fn dkim_result(dns: SocketAddr, message: &[u8]) -> Value {
    use mail_auth::hickory_resolver::config::{NameServerConfig, ResolverConfig, ResolverOpts};
    let mut nsc = NameServerConfig::udp_and_tcp(dns.ip());
    for c in nsc.connections.iter_mut() {
        c.port = dns.port();
    }
    let mut opts = ResolverOpts::default();
    opts.cache_size = 0;
    let Ok(auth) =
        mail_auth::MessageAuthenticator::new(ResolverConfig::from_name_servers(vec![nsc]), opts)
    else {
        return json!({"Result": "temperror", "Detail": "no resolver"});
    };
    let Some(parsed) = mail_auth::AuthenticatedMessage::parse(message) else {
        return json!({"Result": "permerror", "Detail": "the message cannot be parsed"});
    };
    let results = auth.verify_dkim(&parsed).await;
    let Some(first) = results.first() else {
        return json!({"Result": "none", "Detail": "no DKIM-Signature"});
    };
    let text = first.result().to_string();
    let (result, detail) = text.split_once("; ").unwrap_or((text.as_str(), ""));
    json!({
        "Result": result.replace(' ', ""),
        "Detail": detail,
        "Domain": first.signature().map(|s| s.domain().to_owned()),
        "Selector": first.signature().map(|s| s.selector().to_owned()),
    })
}
