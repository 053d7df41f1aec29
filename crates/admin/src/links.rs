//! The pages a person reaches from a verification mail: `GET` and `POST /verify/{token}`,
//! served on the API listener (the one `--public-url` names, since the person's browser must
//! reach it) without an AWS signature: the 256-bit token in the path is the credential.
//!
//! A GET only shows: mail scanners and link previewers fetch every link in a message, and
//! must not verify an address its owner never looked at. The page's one button POSTs back to
//! the same URL, and only that verifies. A person clicks twice; a scanner that follows links
//! (GET) and does not submit forms verifies nothing.
//!
//! Only the answer to that POST redirects to a template's URLs, and only within the link's
//! time: Sesame's public URL must not become a redirector anyone can hand out.
//!
//! Every answer says `Cache-Control: no-store` and `Referrer-Policy: no-referrer` (the token
//! is in the URL: no cache may keep it, and the redirect after the click must not carry it to
//! the template's site), and a Content-Security-Policy that allows only the page's own
//! stylesheet. The token is never logged.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use maud::{DOCTYPE, Markup, PreEscaped, html};
use sesame_core::addresses::{Addresses, LinkView};
use sha2::{Digest, Sha256};
use std::sync::{Arc, LazyLock};

const STYLE: &str = r#"
body{margin:0;padding:0 .75rem;font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d2330;background:#f6f7f9}
main{max-width:34rem;margin:3rem auto;padding:1.5rem;background:#fff;border:1px solid #d9dde5;border-radius:8px}
h1{font-size:1.3rem;margin:0 0 1rem}
b{word-break:break-all}
button{font:inherit;padding:.55rem 1.1rem;border:1px solid #2456c6;border-radius:6px;background:#2456c6;color:#fff;cursor:pointer}
.muted{color:#5b6475;font-size:.9rem}
"#;

/// The page's own stylesheet, by hash, and nothing else; no `form-action`: Chrome applies it
/// to the redirect that follows the POST, and that goes to the template's own site.
static CSP: LazyLock<String> = LazyLock::new(|| {
    format!(
        "default-src 'none'; style-src 'sha256-{}'; frame-ancestors 'none'; base-uri 'none'",
        data_encoding::BASE64.encode(&Sha256::digest(STYLE.as_bytes()))
    )
});

/// The link pages over the address use cases, ready to merge into the API's router.
pub fn routes(addresses: Arc<Addresses>) -> Router {
    Router::new()
        .route("/verify/{token}", get(look).post(confirm))
        .with_state(addresses)
}

fn headers(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&CSP) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    resp
}

fn page(status: StatusCode, title: &str, body: Markup) -> Response {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="robots" content="noindex";
                title { (title) }
                style { (PreEscaped(STYLE)) }
            }
            body { main { h1 #title { (title) } (body) } }
        }
    };
    let mut resp = (status, markup.into_string()).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers(resp)
}

fn redirect(to: &str) -> Response {
    match HeaderValue::from_str(to) {
        Ok(v) => {
            let mut resp = StatusCode::SEE_OTHER.into_response();
            resp.headers_mut().insert(header::LOCATION, v);
            headers(resp)
        }
        // A stored URL was validated when the template was made; refuse rather than guess.
        Err(_) => unavailable(),
    }
}

fn unavailable() -> Response {
    page(
        StatusCode::SERVICE_UNAVAILABLE,
        "Try again in a moment",
        html! { p { "The service cannot check this link right now. Nothing was changed." } },
    )
}

fn unknown() -> Response {
    page(
        StatusCode::NOT_FOUND,
        "This link is not valid",
        html! {
            p #reason { "The link is incomplete, was replaced by a newer one, or its address was removed. Nothing was changed." }
            p.muted { "Copy the whole link from the latest verification message, or ask for a new one." }
        },
    )
}

fn expired(address: &str, to: Option<&str>) -> Response {
    match to {
        Some(url) => redirect(url),
        None => page(
            StatusCode::GONE,
            "This link has expired",
            html! {
                p #reason { "The link to verify " b { (address) } " worked for a limited time after it was sent, and that time is over. Nothing was changed." }
                p.muted { "Ask for a new verification message." }
            },
        ),
    }
}

fn verified(address: &str, to: Option<&str>) -> Response {
    match to {
        Some(url) => redirect(url),
        None => page(
            StatusCode::OK,
            "Address verified",
            html! { p #reason { "Thank you. " b { (address) } " is verified: mail can now be sent from it." } },
        ),
    }
}

fn show(view: Option<LinkView>, confirming: bool) -> Response {
    // Only the answer to the button's POST goes to a template's URL: a GET (a scanner, a
    // bookmark, a link pasted anywhere) shows Sesame's own page.
    let to = |redirect: Option<String>| redirect.filter(|_| confirming);
    match view {
        None => unavailable(),
        Some(LinkView::Unknown) => unknown(),
        Some(LinkView::Expired { address, redirect }) => {
            expired(address.as_str(), to(redirect).as_deref())
        }
        Some(LinkView::Verified { address, redirect }) => {
            verified(address.as_str(), to(redirect).as_deref())
        }
        // Only a GET sees an open link: a POST has just verified it or found it closed.
        Some(LinkView::Open { address, .. }) if !confirming => page(
            StatusCode::OK,
            "Verify your email address",
            html! {
                p { "Confirm that " b #address { (address.as_str()) } " is your address, so mail can be sent from it." }
                form #confirm method="post" {
                    button type="submit" { "Verify this address" }
                }
                p.muted { "If you did not ask for this, close this page: nothing happens unless you press the button." }
            },
        ),
        Some(LinkView::Open { .. }) => unavailable(),
    }
}

async fn run(addresses: Arc<Addresses>, token: String, confirming: bool) -> Option<LinkView> {
    let result = crate::blocking(move || {
        if confirming {
            addresses.confirm(&token)
        } else {
            addresses.look(&token)
        }
    })
    .await?;
    match result {
        Ok(view) => {
            let outcome = match &view {
                LinkView::Unknown => "unknown",
                LinkView::Open { .. } => "open",
                LinkView::Verified { .. } => "verified",
                LinkView::Expired { .. } => "expired",
            };
            tracing::info!(confirming, outcome, "verification link");
            Some(view)
        }
        Err(e) => {
            tracing::warn!(error = %e, "verification link: cannot answer");
            None
        }
    }
}

async fn look(State(addresses): State<Arc<Addresses>>, Path(token): Path<String>) -> Response {
    show(run(addresses, token, false).await, false)
}

async fn confirm(State(addresses): State<Arc<Addresses>>, Path(token): Path<String>) -> Response {
    show(run(addresses, token, true).await, true)
}
