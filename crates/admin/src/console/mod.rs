//! The web console: server-rendered pages under `/console/` on the admin listener, for the
//! people who run Sesame. No page is served without a session (GETs are sent to sign-in,
//! POSTs refused 401), every form carries the session's CSRF token (403 without it), and
//! every page carries a Content-Security-Policy that allows only its own inline style and
//! script, by hash: nothing is fetched from anywhere.

pub mod auth;
mod pages;
mod view;

pub use auth::Auth;

use crate::AdminState;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use std::sync::Arc;

/// The largest form the console accepts (a sign-in, a CSRF token).
const MAX_FORM_BYTES: usize = 16 * 1024;

pub(crate) fn routes() -> Router<Arc<AdminState>> {
    Router::new()
        .route("/console", get(pages::home))
        .route("/console/", get(pages::home))
        .route("/console/login", get(pages::login_page).post(pages::login))
        .route("/console/logout", post(pages::logout))
        .route("/console/identities", get(pages::identities))
        .route("/console/identities/{account}/{name}", get(pages::identity))
        .route(
            "/console/identities/{account}/{name}/check",
            post(pages::check_now),
        )
        .route("/console/verifications", get(pages::verifications))
        .route("/console/accounts", get(pages::accounts))
        .layer(DefaultBodyLimit::max(MAX_FORM_BYTES))
}
