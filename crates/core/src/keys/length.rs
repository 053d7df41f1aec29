//! The once-a-day rule of Easy DKIM key-length changes, as pure functions of the history and
//! `now`.

use crate::error::Invalid;
use crate::model::{KeyLength, KeyLengthHistory, Timestamp};

/// How long after a key-length change another change is refused.
pub const KEY_LENGTH_CHANGE_WINDOW_HOURS: i64 = 24;

/// Decides whether `requested` may become the new key length at `now`.
///
/// SES developer guide, "Easy DKIM": the length cannot be switched to the length already
/// configured, and cannot be changed more than once in 24 hours, except that the first
/// downgrade to 1024 bits in that period is allowed. Both answer "the input you provided is
/// invalid", i.e. a BadRequestException.
pub fn check_key_length_change(
    history: KeyLengthHistory,
    requested: KeyLength,
    now: Timestamp,
) -> Result<(), Invalid> {
    if requested == history.next_length {
        return Err(Invalid::KeyLengthUnchanged(requested.bits()));
    }
    let within = |t: Option<Timestamp>| {
        t.is_some_and(|t| now < t.plus_hours(KEY_LENGTH_CHANGE_WINDOW_HOURS))
    };
    if within(history.changed_at) {
        let first_downgrade = requested == KeyLength::Rsa1024 && !within(history.downgraded_at);
        if !first_downgrade {
            return Err(Invalid::KeyLengthChangedRecently);
        }
    }
    Ok(())
}

/// The history after a permitted change to `requested` at `now`.
pub fn record_key_length_change(
    history: KeyLengthHistory,
    requested: KeyLength,
    now: Timestamp,
) -> KeyLengthHistory {
    KeyLengthHistory {
        next_length: requested,
        changed_at: Some(now),
        downgraded_at: if requested == KeyLength::Rsa1024 {
            Some(now)
        } else {
            history.downgraded_at
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use KeyLength::*;

    const T0: Timestamp = Timestamp(1_700_000_000_000);

    fn h(next: KeyLength, changed: Option<i64>, down: Option<i64>) -> KeyLengthHistory {
        KeyLengthHistory {
            next_length: next,
            changed_at: changed.map(|x| T0.plus_hours(x)),
            downgraded_at: down.map(|x| T0.plus_hours(x)),
        }
    }

    /// (history, requested, now in hours after T0, allowed?)
    #[test]
    fn key_length_change_table() {
        let cases = [
            (h(Rsa2048, None, None), Rsa2048, 0, false), // same length
            (h(Rsa2048, None, None), Rsa1024, 0, true),  // first change ever
            (h(Rsa1024, None, None), Rsa2048, 0, true),
            (h(Rsa1024, Some(0), None), Rsa2048, 1, false), // second change within 24 h
            (h(Rsa1024, Some(0), None), Rsa2048, 23, false),
            (h(Rsa1024, Some(0), None), Rsa2048, 24, true), // window over
            (h(Rsa2048, Some(0), None), Rsa1024, 1, true),  // first downgrade is the exception
            (h(Rsa2048, Some(2), Some(0)), Rsa1024, 3, false), // a second downgrade is not
            (h(Rsa2048, Some(2), Some(0)), Rsa1024, 24, true), // downgrade window over
            (h(Rsa1024, Some(1), Some(1)), Rsa1024, 30, false), // same length, any time
        ];
        for (i, (hist, req, at, ok)) in cases.into_iter().enumerate() {
            let got = check_key_length_change(hist, req, T0.plus_hours(at));
            assert_eq!(got.is_ok(), ok, "case {i}: {got:?}");
        }
    }

    #[test]
    fn recording_tracks_downgrades() {
        let after = record_key_length_change(h(Rsa2048, None, None), Rsa1024, T0);
        assert_eq!(after, h(Rsa1024, Some(0), Some(0)));
        let up = record_key_length_change(after, Rsa2048, T0.plus_hours(25));
        assert_eq!(up, h(Rsa2048, Some(25), Some(0)));
    }
}
