//! Reading the admin listener from tests: a plain HTTP/1.1 GET (or form POST) over a fresh
//! connection, and the value of one series in a `/metrics` scrape.

use crate::harness::{RawResponse, send};
use std::net::SocketAddr;

/// `GET path` on the admin listener with extra header lines (each `Name: value`).
pub fn get(admin: SocketAddr, path: &str, headers: &[&str]) -> RawResponse {
    let mut head = format!("GET {path} HTTP/1.1\r\nHost: {admin}\r\nConnection: close\r\n");
    for h in headers {
        head.push_str(h);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    send(admin, head.as_bytes(), b"")
}

/// Signs in to the console with the server's admin token; the `Cookie: …` header line that
/// carries the session.
pub fn console_session(server: &crate::harness::Server) -> String {
    let token = std::fs::read_to_string(server.data_dir.join("admin-token")).unwrap();
    let signed_in = post_form(
        server.admin,
        "/console/login",
        &[],
        &format!("token={}", token.trim()),
    );
    let session = signed_in
        .header("set-cookie")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    format!("Cookie: {session}")
}

/// `POST path` with a form body.
pub fn post_form(admin: SocketAddr, path: &str, headers: &[&str], form: &str) -> RawResponse {
    let mut head = format!(
        "POST {path} HTTP/1.1\r\nHost: {admin}\r\nConnection: close\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n",
        form.len()
    );
    for h in headers {
        head.push_str(h);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    send(admin, head.as_bytes(), form.as_bytes())
}

/// The `/metrics` text.
pub fn scrape(admin: SocketAddr) -> String {
    let r = get(admin, "/metrics", &[]);
    assert_eq!(r.status, 200, "{r:?}");
    assert!(
        r.header("content-type")
            .is_some_and(|c| c.contains("openmetrics-text")),
        "{r:?}"
    );
    r.body
}

/// The value of the series `name{labels}` (labels as the scrape spells them, in order), or
/// `None` if the scrape has no such series.
pub fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| v.trim().parse().unwrap())
}

/// Every series of a metric with its labels, e.g. `("{operation=\"X\",status=\"200\"}", 3.0)`.
pub fn series<'a>(text: &'a str, name: &str) -> Vec<(&'a str, f64)> {
    text.lines()
        .filter_map(|l| {
            let rest = l.strip_prefix(name)?;
            if !rest.starts_with('{') {
                return None;
            }
            let (labels, v) = rest.rsplit_once(' ')?;
            Some((labels, v.parse().unwrap()))
        })
        .collect()
}

/// The non-zero `sesame_identities` gauges of a scrape, by their labels.
pub fn identity_gauges(text: &str) -> std::collections::BTreeMap<String, f64> {
    series(text, "sesame_identities")
        .into_iter()
        .filter(|(_, v)| *v != 0.0)
        .map(|(l, v)| (l.to_owned(), v))
        .collect()
}

/// What those gauges must be for a ListEmailIdentities answer: identities counted by type and
/// status, in the gauges' labels (an address's DKIM status is `NONE`).
pub fn gauges_of_listed(
    listed: &[aws_sdk_sesv2::types::IdentityInfo],
) -> std::collections::BTreeMap<String, f64> {
    let mut out = std::collections::BTreeMap::new();
    for i in listed {
        let t = i.identity_type().unwrap().as_str().to_owned();
        let s = if t == "EMAIL_ADDRESS" {
            "NONE".to_owned()
        } else {
            i.verification_status().unwrap().as_str().to_owned()
        };
        *out.entry(format!("{{type=\"{t}\",dkim_status=\"{s}\"}}"))
            .or_default() += 1.0;
    }
    out
}
