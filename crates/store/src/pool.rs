//! The one connection-pool shape both backends use: at most `max` connections, opened lazily
//! by the caller that needs one, a caller waiting for a free one when all are lent, and a
//! connection that is no longer fit for reuse dropped (its slot freed) instead of pooled.
//!
//! Hand-written rather than r2d2: r2d2 opens connections on its own threads and a checkout
//! waits for one until a timeout, so with PostgreSQL refusing connections every request would
//! hang for that timeout before its 503 (here the caller's own connect fails at once), and a
//! request waiting behind a busy pool would fail at the timeout instead of being served.

use sesame_core::StoreError;
use std::ops::Deref;
use std::sync::{Condvar, Mutex, MutexGuard};

/// How a pool opens connections and tells whether one can be lent again.
pub trait Connector: Send + Sync {
    type Conn: Send;
    /// Opens a new connection; its error is the caller's (`Unavailable`, typically).
    fn connect(&self) -> Result<Self::Conn, StoreError>;
    /// Whether the connection may go back to the pool (checked on return and on checkout).
    fn reusable(conn: &Self::Conn) -> bool;
}

/// The idle connections, and how many exist (idle or lent).
struct Slots<T> {
    idle: Vec<T>,
    open: usize,
}

pub struct Pool<C: Connector> {
    connector: C,
    max: usize,
    slots: Mutex<Slots<C::Conn>>,
    // Signalled when a connection (or the slot of one that was dropped) is handed back.
    freed: Condvar,
}

/// A lent connection: gives it back (or, if it is unfit or was never opened, its slot) on
/// drop, whatever happens to the caller, a panic included.
pub struct Lease<'a, C: Connector> {
    pool: &'a Pool<C>,
    conn: Option<C::Conn>,
}

fn poisoned<T>(_: T) -> StoreError {
    StoreError::Unavailable("a store lock was poisoned by a panic".into())
}

impl<C: Connector> Pool<C> {
    pub fn new(connector: C, max: usize) -> Pool<C> {
        Pool {
            connector,
            max,
            slots: Mutex::new(Slots {
                idle: Vec::new(),
                open: 0,
            }),
            freed: Condvar::new(),
        }
    }

    /// What makes this pool's connections.
    pub fn connector(&self) -> &C {
        &self.connector
    }

    /// Adds an already-open connection (one the caller opened before the pool existed) as
    /// idle; it counts against `max` like any other.
    #[cfg(feature = "postgres")]
    pub fn adopt(&self, conn: C::Conn) -> Result<(), StoreError> {
        let mut slots = self.slots.lock().map_err(poisoned)?;
        slots.open += 1;
        slots.idle.push(conn);
        drop(slots);
        self.freed.notify_one();
        Ok(())
    }

    /// An idle connection, a new one while under `max`, or the next one handed back.
    pub fn get(&self) -> Result<Lease<'_, C>, StoreError> {
        let pooled = {
            let mut slots = self.slots.lock().map_err(poisoned)?;
            loop {
                if let Some(c) = Self::take_idle(&mut slots) {
                    break Some(c);
                }
                if slots.open < self.max {
                    slots.open += 1;
                    break None;
                }
                slots = self.freed.wait(slots).map_err(poisoned)?;
            }
        };
        // From here the slot is ours: the lease gives it back whatever happens.
        let mut lease = Lease {
            pool: self,
            conn: pooled,
        };
        if lease.conn.is_none() {
            // Connecting happens outside the lock, so a slow connect holds up nobody else.
            lease.conn = Some(self.connector.connect()?);
        }
        Ok(lease)
    }

    /// The newest idle connection that is still fit; unfit ones give up their slots.
    fn take_idle(slots: &mut MutexGuard<'_, Slots<C::Conn>>) -> Option<C::Conn> {
        while let Some(c) = slots.idle.pop() {
            if C::reusable(&c) {
                return Some(c);
            }
            slots.open -= 1;
        }
        None
    }
}

impl<C: Connector> Deref for Lease<'_, C> {
    type Target = C::Conn;

    fn deref(&self) -> &C::Conn {
        // Set before `get` hands the lease out, and taken only in `drop`.
        self.conn
            .as_ref()
            .unwrap_or_else(|| unreachable!("a lease without a connection"))
    }
}

impl<C: Connector> Lease<'_, C> {
    /// The connection, mutably (PostgreSQL's client needs `&mut` to start a transaction).
    #[cfg(feature = "postgres")]
    pub fn get_mut(&mut self) -> &mut C::Conn {
        self.conn
            .as_mut()
            .unwrap_or_else(|| unreachable!("a lease without a connection"))
    }
}

impl<C: Connector> Drop for Lease<'_, C> {
    fn drop(&mut self) {
        let mut slots = self.pool.slots.lock().unwrap_or_else(|p| p.into_inner());
        match self.conn.take() {
            Some(c) if C::reusable(&c) => slots.idle.push(c),
            _ => slots.open -= 1,
        }
        drop(slots);
        self.pool.freed.notify_one();
    }
}
