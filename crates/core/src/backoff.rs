//! The one retry schedule every loop uses (the verifier's re-checks, the DNS publishers, the
//! SMTP relay's attempts): a first wait, doubled at each further failure, up to a cap.

/// `first_ms` doubled `doublings` times, at most `max_ms` (never overflowing).
pub fn doubling(first_ms: i64, max_ms: i64, doublings: u32) -> i64 {
    first_ms
        .saturating_mul(1i64 << doublings.min(62))
        .min(max_ms)
}

#[cfg(test)]
mod tests {
    use super::doubling;

    #[test]
    fn doubles_from_the_first_wait_up_to_the_cap() {
        let table = [
            (0, 1_000),
            (1, 2_000),
            (5, 32_000),
            (6, 60_000),
            (40, 60_000),
            (u32::MAX, 60_000),
        ];
        for (doublings, want) in table {
            assert_eq!(doubling(1_000, 60_000, doublings), want, "{doublings}");
        }
        assert_eq!(doubling(i64::MAX / 2, i64::MAX, 3), i64::MAX, "saturates");
    }
}
