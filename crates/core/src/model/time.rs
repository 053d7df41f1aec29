//! Time as the core sees it: handed in by the injected clock, never read from the system.

/// Milliseconds since the Unix epoch. The core never reads the system clock; it is handed one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// One hour in milliseconds.
    pub const HOUR: i64 = 3_600_000;

    /// The timestamp `hours` later.
    pub fn plus_hours(self, hours: i64) -> Timestamp {
        Timestamp(self.0 + hours * Self::HOUR)
    }
}
