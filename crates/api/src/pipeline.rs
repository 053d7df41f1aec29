//! The request pipeline, one typed stage after another: `read` (route, bounded body) →
//! `auth::precheck` (the signature parsed and checked without I/O) → `auth::verify` (the one
//! credential lookup) → `admit::admit` (the account's bucket) → `Admitted::dispatch` (the
//! handler) → `render::render`. Each stage takes what only the one before it makes, so the
//! order is the types', not the lines'.

mod admit;
mod auth;
mod read;
mod render;
#[cfg(test)]
mod tests;

pub use auth::SIGNING_NAME;

use crate::errors::ApiError;
use crate::routes;
use crate::state::{ApiState, PeerAddr};
use axum::extract::{Request, State};
use axum::response::Response;
use sesame_core::Error;
use std::sync::Arc;
use std::time::Instant;

/// The HTTP application: every request goes through one handler, since routing follows the
/// model's templates on the raw path rather than axum's router.
pub fn app(state: Arc<ApiState>) -> axum::Router {
    axum::Router::new().fallback(handle).with_state(state)
}

async fn handle(State(st): State<Arc<ApiState>>, req: Request) -> Response {
    let started = Instant::now();
    let request_id = uuid::Uuid::new_v4().to_string();
    let peer = req.extensions().get::<PeerAddr>().map(|p| p.0.ip());
    let mut op = "-";
    let mut account = String::new();
    let result: Result<Vec<u8>, ApiError> = async {
        let (parts, body) = req.into_parts();
        let received = read::read(&parts, body, st.body_timeout).await?;
        let now = st.clock.now().0.div_euclid(1000);
        let pre = auth::precheck(&received, &st.region, now)?;
        if let Ok(r) = &received.route {
            op = r.operation.name();
        }
        let query = routes::parse_query(received.raw_query.as_deref())?;
        let inline = st.inline_reads
            && received
                .route
                .as_ref()
                .is_ok_and(|r| r.operation.is_read_only());
        let st = st.clone();
        let work = move || {
            let _scope = st.request_scope.map(|enter| enter());
            let who = auth::verify(pre, &received, st.credentials.as_ref(), &st.signing_keys)?;
            let account = who.account.as_str().to_owned();
            // Only an authenticated caller learns whether the route exists (AWS answers an
            // unsigned request for an unknown path 403, not 404).
            let out = received.route.map_err(ApiError::from).and_then(|route| {
                admit::admit(&st.throttle, who)?.dispatch(&st, &route, &query, &received.body)
            });
            Ok::<_, ApiError>((account, out))
        };
        // The blocking pool's hand-off (a queue and two thread wake-ups) costs more than a
        // read from the page cache, so such reads run right here; anything that may wait on an
        // fsync, key generation or the network goes to the blocking pool.
        let (who, out) = if inline {
            work()?
        } else {
            tokio::task::spawn_blocking(work).await.map_err(|e| {
                ApiError::from(Error::Internal(format!("handler task failed: {e}")))
            })??
        };
        account = who;
        out
    }
    .await;
    render::render(
        &st,
        render::Outcome {
            request_id,
            op,
            account,
            peer,
            started,
            result,
        },
    )
}
