//! Stages 4 and 5, throttle and dispatch: the account's token bucket, taken after
//! authentication (the bucket is the account's) and before any work, so a throttled request has
//! changed nothing and a retry is safe; then the handler.

use super::auth::Authenticated;
use crate::errors::{ApiError, EdgeError};
use crate::handlers::{self, Ctx, Input};
use crate::routes::Route;
use crate::state::ApiState;
use crate::throttle::Throttle;
use sesame_core::model::AccountId;

/// An authenticated caller with a token from its bucket. Only `admit` makes one, so nothing is
/// dispatched without both.
pub struct Admitted {
    account: AccountId,
}

/// Takes one token of the caller's bucket.
pub fn admit(throttle: &Throttle, who: Authenticated) -> Result<Admitted, EdgeError> {
    if throttle.admit(&who.account) {
        Ok(Admitted {
            account: who.account,
        })
    } else {
        Err(EdgeError::Throttled)
    }
}

impl Admitted {
    /// Runs the route's operation and returns the JSON body of its 200 response.
    pub fn dispatch(
        &self,
        st: &ApiState,
        route: &Route,
        query: &[(String, String)],
        body: &[u8],
    ) -> Result<Vec<u8>, ApiError> {
        let ctx = Ctx {
            service: &st.service,
            account: &self.account,
            region: &st.region,
            pages: st.pages.as_ref(),
        };
        handlers::dispatch(&ctx, &Input { route, query, body })
    }
}
