//! `/metrics` and the health probes: no session needed, nothing secret shown (counts and
//! statuses only), so a scraper or a load balancer reaches them without the console's token.

use crate::{AdminState, blocking};
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sesame_metrics::IdentityGauge;
use std::sync::Arc;
use std::time::Duration;

/// How long the readiness probe waits for the store before it says it does not answer.
const STORE_DEADLINE: Duration = Duration::from_secs(2);

pub(crate) fn routes() -> Router<Arc<AdminState>> {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/health/live", get(live))
        .route("/health/ready", get(ready))
}

async fn metrics(State(st): State<Arc<AdminState>>) -> Response {
    let _one = st.scrape.lock().await;
    let identities = st.use_cases.identities.clone();
    let counts = tokio::time::timeout(
        STORE_DEADLINE,
        blocking(move || identities.count_identities(None)),
    )
    .await;
    match counts {
        Ok(Some(Ok(counts))) => {
            let gauges: Vec<IdentityGauge> = counts
                .iter()
                .map(|c| IdentityGauge {
                    identity_type: c.identity_type.name(),
                    dkim_status: c.dkim_status.map_or("NONE", |s| s.name()),
                    count: c.count,
                })
                .collect();
            // Domains and addresses with the same status are one gauge each; sum the rows
            // that differ only in the verification status.
            let mut merged: Vec<IdentityGauge> = Vec::new();
            for g in gauges {
                match merged
                    .iter_mut()
                    .find(|m| m.identity_type == g.identity_type && m.dkim_status == g.dkim_status)
                {
                    Some(m) => m.count += g.count,
                    None => merged.push(g),
                }
            }
            st.metrics.set_identities(&merged);
        }
        // The counters are still worth scraping; the gauges keep their last values.
        _ => tracing::warn!("metrics: the store did not answer; identity gauges not refreshed"),
    }
    for (length, available) in st.node.key_pool() {
        st.metrics.set_key_pool(length, available);
    }
    (
        [(header::CONTENT_TYPE, sesame_metrics::CONTENT_TYPE)],
        st.metrics.encode(),
    )
        .into_response()
}

async fn live() -> Response {
    json(StatusCode::OK, serde_json::json!({"status": "live"}))
}

async fn ready(State(st): State<Arc<AdminState>>) -> Response {
    if !st.node.key_zone_loaded() {
        return unavailable("the key-zone snapshot is not loaded");
    }
    let node = st.node.clone();
    match tokio::time::timeout(STORE_DEADLINE, blocking(move || node.store_answers())).await {
        Ok(Some(Ok(()))) => json(StatusCode::OK, serde_json::json!({"status": "ready"})),
        Ok(Some(Err(e))) => unavailable(&format!("the store does not answer: {e}")),
        Ok(None) => unavailable("the store check failed"),
        Err(_) => unavailable(&format!(
            "the store did not answer within {} s",
            STORE_DEADLINE.as_secs()
        )),
    }
}

fn unavailable(reason: &str) -> Response {
    json(
        StatusCode::SERVICE_UNAVAILABLE,
        serde_json::json!({"status": "unavailable", "reason": reason}),
    )
}

fn json(status: StatusCode, body: serde_json::Value) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body.to_string(),
    )
        .into_response()
}
