//! Easy DKIM key rules, pure: the once-a-day key-length rule and the rotation planner.

mod length;
mod plan;

pub use length::{
    KEY_LENGTH_CHANGE_WINDOW_HOURS, check_key_length_change, record_key_length_change,
};
pub use plan::{Plan, RotationPolicy, Trigger, plan};
