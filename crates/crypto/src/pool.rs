//! `PooledVault`: a `KeyVault` that keeps Easy DKIM keys generated ahead of time, so that
//! CreateEmailIdentity and key-length changes take ready keys instead of waiting 50..400 ms
//! per RSA-2048 key generation.
//!
//! One pool per key length, each with a target size, holds keys that are already sealed (the
//! pool never holds a plaintext private key). Background threads refill the pools one key at
//! a time and sleep on a condition variable while every pool is full; taking a key wakes them.
//! A key is removed from its pool when it is handed out, so it is used once. The pools live in
//! memory only: their keys were never issued, so losing them at a restart loses nothing.
//!
//! An empty pool (a burst larger than it, or a target of 0) costs what no pool costs: the
//! missing keys are generated inline by the wrapped vault, in parallel.
//!
//! The refill threads run in Linux's SCHED_IDLE class (through the `thread-priority` crate,
//! since std has no thread priorities and our crates forbid `unsafe`), so they use only CPU
//! time that requests leave; they are also few (one per two cores, at most two) and make one
//! key at a time each.

use sesame_core::Error;
use sesame_core::model::{DkimToken, KeyLength, LinkHash, LinkToken, NewLink, Timestamp};
use sesame_core::ports::{KeyVault, NewKey, PrivateKeyInput};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The name prefix of the refill threads.
pub const WORKER_NAME: &str = "sesame-keypool";

/// How many keys of each length to keep ready, and how many threads refill them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolConfig {
    /// Ready RSA-2048 keys (the Easy DKIM default length); 0 disables this pool.
    pub rsa2048: usize,
    /// Ready RSA-1024 keys; 0 disables this pool.
    pub rsa1024: usize,
    /// Refill threads (none are started when both targets are 0).
    pub workers: usize,
}

impl PoolConfig {
    /// One refill thread per two cores, at least one and at most two.
    pub fn default_workers() -> usize {
        std::thread::available_parallelism()
            .map_or(1, |n| n.get() / 2)
            .clamp(1, 2)
    }
}

/// The key lengths, in pool order.
const LENGTHS: [KeyLength; 2] = [KeyLength::Rsa2048, KeyLength::Rsa1024];

fn slot(length: KeyLength) -> usize {
    match length {
        KeyLength::Rsa2048 => 0,
        KeyLength::Rsa1024 => 1,
    }
}

/// A `KeyVault` handing out keys generated in the background by `inner`; `import` and
/// `new_token` go straight to `inner`. Dropping it stops and joins its threads.
pub struct PooledVault<V: KeyVault + 'static> {
    shared: Arc<Shared<V>>,
    workers: Vec<JoinHandle<()>>,
}

struct Shared<V> {
    inner: Arc<V>,
    state: Mutex<State>,
    /// Refill threads wait here for room in a pool, or for `stop`.
    room: Condvar,
    /// Signalled whenever a key is added (for `wait_filled`).
    added: Condvar,
}

struct State {
    pools: [Pool; 2],
    stop: bool,
    // Whether the pools were ever all full (announced once, at info level).
    ready: bool,
}

struct Pool {
    /// Sealed keys, never handed out yet.
    keys: Vec<NewKey>,
    target: usize,
    /// Keys being generated for this pool right now.
    making: usize,
}

impl State {
    /// The pool furthest below its target (relative to the target; RSA-2048 on a tie), if
    /// any needs a key that is not already being made.
    fn neediest(&self) -> Option<usize> {
        let mut best: Option<(usize, usize, usize)> = None; // (slot, missing, target)
        for (i, pool) in self.pools.iter().enumerate() {
            let missing = pool.target.saturating_sub(pool.keys.len() + pool.making);
            if missing == 0 {
                continue;
            }
            // missing / target > best_missing / best_target, without division.
            if best.is_none_or(|(_, m, t)| missing * t > m * pool.target) {
                best = Some((i, missing, pool.target));
            }
        }
        best.map(|(i, _, _)| i)
    }

    fn full(&self) -> bool {
        self.pools.iter().all(|p| p.keys.len() >= p.target)
    }
}

/// Puts the calling thread in Linux's SCHED_IDLE class: it runs only on CPU time no request
/// wants, so a refill never delays a request (measured before: with a refill running on one of
/// two cores, a warm-pool CreateEmailIdentity took 1.7 ms at the median instead of well under
/// one). Where the policy cannot be set, the thread keeps normal priority and says so once.
fn idle_priority() {
    #[cfg(target_os = "linux")]
    {
        use thread_priority::unix::{
            NormalThreadSchedulePolicy, ThreadSchedulePolicy, set_thread_priority_and_policy,
            thread_native_id,
        };
        if let Err(e) = set_thread_priority_and_policy(
            thread_native_id(),
            thread_priority::ThreadPriority::Min,
            ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Idle),
        ) {
            tracing::info!(error = ?e, "key pool: refill threads keep normal priority");
        }
    }
}

impl<V: KeyVault + 'static> Shared<V> {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A refill thread: make the neediest pool's next key, outside the lock, until stopped.
    fn refill(&self) {
        loop {
            let slot = {
                let mut state = self.lock();
                loop {
                    if state.stop {
                        return;
                    }
                    if let Some(slot) = state.neediest() {
                        state.pools[slot].making += 1;
                        break slot;
                    }
                    state = self
                        .room
                        .wait(state)
                        .unwrap_or_else(PoisonError::into_inner);
                }
            };
            let made = self.inner.generate(LENGTHS[slot]);
            let mut state = self.lock();
            state.pools[slot].making -= 1;
            match made {
                Ok(key) => {
                    state.pools[slot].keys.push(key);
                    self.added.notify_all();
                    if !state.ready && state.full() {
                        state.ready = true;
                        tracing::info!(
                            rsa2048 = state.pools[0].keys.len(),
                            rsa1024 = state.pools[1].keys.len(),
                            "key pool ready"
                        );
                    }
                }
                Err(e) => {
                    // Inline generation still works (or fails the request, as without a
                    // pool); back off instead of spinning on a broken backend.
                    tracing::warn!(error = %e, "key pool: key generation failed; retrying in 1 s");
                    let _ = self
                        .room
                        .wait_timeout_while(state, Duration::from_secs(1), |s| !s.stop);
                }
            }
        }
    }
}

impl<V: KeyVault + 'static> PooledVault<V> {
    /// Wraps `inner` and starts the refill threads, which fill the pools right away.
    pub fn start(inner: Arc<V>, config: PoolConfig) -> std::io::Result<PooledVault<V>> {
        let pool = |target| Pool {
            keys: Vec::with_capacity(target),
            target,
            making: 0,
        };
        let shared = Arc::new(Shared {
            inner,
            state: Mutex::new(State {
                pools: [pool(config.rsa2048), pool(config.rsa1024)],
                stop: false,
                ready: false,
            }),
            room: Condvar::new(),
            added: Condvar::new(),
        });
        let mut vault = PooledVault {
            shared,
            workers: Vec::new(),
        };
        let workers = if config.rsa2048 + config.rsa1024 == 0 {
            0
        } else {
            config.workers.max(1)
        };
        for i in 0..workers {
            let shared = vault.shared.clone();
            // On failure `vault` drops here, which stops the threads already started.
            vault.workers.push(
                std::thread::Builder::new()
                    .name(format!("{WORKER_NAME}-{i}"))
                    .spawn(move || {
                        idle_priority();
                        shared.refill()
                    })?,
            );
        }
        Ok(vault)
    }

    /// The number of refill threads.
    pub fn workers(&self) -> usize {
        self.workers.len()
    }

    /// Keys of `length` ready now.
    pub fn available(&self, length: KeyLength) -> usize {
        self.shared.lock().pools[slot(length)].keys.len()
    }

    /// Waits until every pool holds its target (`true`), or `timeout` passed or the pool
    /// stopped (`false`).
    pub fn wait_filled(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut state = self.shared.lock();
        loop {
            if state.full() {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if state.stop || left.is_zero() {
                return false;
            }
            state = self
                .shared
                .added
                .wait_timeout(state, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// Stops refilling (keys already made are still handed out); threads busy with a key
    /// finish it and exit. `Drop` also stops, and joins the threads.
    pub fn stop(&self) {
        self.shared.lock().stop = true;
        self.shared.room.notify_all();
        self.shared.added.notify_all();
    }

    /// Up to `n` ready keys of `length`, removed from the pool.
    fn take(&self, length: KeyLength, n: usize) -> Vec<NewKey> {
        let mut state = self.shared.lock();
        let keys = &mut state.pools[slot(length)].keys;
        let taken = keys.split_off(keys.len().saturating_sub(n));
        drop(state);
        if !taken.is_empty() {
            self.shared.room.notify_all();
        }
        taken
    }
}

impl<V: KeyVault + 'static> Drop for PooledVault<V> {
    fn drop(&mut self) {
        self.stop();
        for worker in self.workers.drain(..) {
            let _ = worker.join();
        }
    }
}

impl<V: KeyVault + 'static> KeyVault for PooledVault<V> {
    fn generate(&self, length: KeyLength) -> Result<NewKey, Error> {
        if let Some(key) = self.take(length, 1).pop() {
            return Ok(key);
        }
        tracing::debug!(bits = length.bits(), "key pool empty: generating inline");
        self.shared.inner.generate(length)
    }

    fn generate_many(&self, length: KeyLength, n: usize) -> Result<Vec<NewKey>, Error> {
        let mut keys = self.take(length, n);
        if keys.len() < n {
            tracing::debug!(
                bits = length.bits(),
                missing = n - keys.len(),
                "key pool short: generating inline"
            );
            keys.extend(self.shared.inner.generate_many(length, n - keys.len())?);
        }
        Ok(keys)
    }

    fn import(&self, key: &PrivateKeyInput) -> Result<NewKey, Error> {
        self.shared.inner.import(key)
    }

    fn new_token(&self) -> Result<DkimToken, Error> {
        self.shared.inner.new_token()
    }

    fn new_message_id(&self) -> Result<String, Error> {
        self.shared.inner.new_message_id()
    }

    fn new_link(&self) -> Result<NewLink, Error> {
        self.shared.inner.new_link()
    }

    fn link_hash(&self, token: &LinkToken) -> LinkHash {
        self.shared.inner.link_hash(token)
    }

    fn sign(
        &self,
        sealed_private: &[u8],
        message: &[u8],
        domain: &str,
        selector: &str,
        now: Timestamp,
    ) -> Result<Vec<u8>, Error> {
        self.shared
            .inner
            .sign(sealed_private, message, domain, selector, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

    /// Counts `generate` calls made on refill threads and elsewhere; refill threads can be
    /// held at a closed gate (for at most 30 s, so a failing test cannot hang its drop).
    #[derive(Default)]
    struct Fake {
        next: AtomicU64,
        on_workers: AtomicUsize,
        inline: AtomicUsize,
        closed: Mutex<bool>,
        opened: Condvar,
    }

    impl Fake {
        fn set_closed(&self, closed: bool) {
            *self.closed.lock().unwrap() = closed;
            self.opened.notify_all();
        }
        fn inline(&self) -> usize {
            self.inline.load(Ordering::SeqCst)
        }
    }

    impl KeyVault for Fake {
        fn generate(&self, length: KeyLength) -> Result<NewKey, Error> {
            let on_worker = std::thread::current()
                .name()
                .is_some_and(|n| n.starts_with(WORKER_NAME));
            if on_worker {
                self.on_workers.fetch_add(1, Ordering::SeqCst);
                let closed = self.closed.lock().unwrap();
                let _ = self
                    .opened
                    .wait_timeout_while(closed, Duration::from_secs(30), |c| *c)
                    .unwrap();
            } else {
                self.inline.fetch_add(1, Ordering::SeqCst);
            }
            let n = self.next.fetch_add(1, Ordering::SeqCst);
            Ok(NewKey {
                bits: length.bits(),
                public_der: n.to_be_bytes().to_vec(),
                sealed_private: format!("sealed-{n}").into_bytes(),
            })
        }
        fn import(&self, _: &PrivateKeyInput) -> Result<NewKey, Error> {
            Err(Error::Invalid(sesame_core::error::Invalid::PrivateKey(
                sesame_core::error::KeyProblem::NotDer,
            )))
        }
        fn new_token(&self) -> Result<DkimToken, Error> {
            Ok(DkimToken::parse(&"a".repeat(32))?)
        }
        fn new_message_id(&self) -> Result<String, Error> {
            Err(Error::Internal("fake".into()))
        }
        fn new_link(&self) -> Result<NewLink, Error> {
            Err(Error::Internal("fake".into()))
        }
        fn link_hash(&self, _: &LinkToken) -> LinkHash {
            unreachable!("not used")
        }
        fn sign(
            &self,
            _: &[u8],
            _: &[u8],
            _: &str,
            _: &str,
            _: Timestamp,
        ) -> Result<Vec<u8>, Error> {
            Err(Error::Internal("fake".into()))
        }
    }

    fn start(fake: &Arc<Fake>, rsa2048: usize, rsa1024: usize) -> PooledVault<Fake> {
        PooledVault::start(
            fake.clone(),
            PoolConfig {
                rsa2048,
                rsa1024,
                workers: 2,
            },
        )
        .unwrap()
    }

    const WAIT: Duration = Duration::from_secs(60);

    #[test]
    fn after_warm_up_keys_come_from_the_pool_without_calling_the_inner_vault() {
        let fake = Arc::new(Fake::default());
        let pool = start(&fake, 4, 3);
        assert!(pool.wait_filled(WAIT));
        assert_eq!(pool.available(KeyLength::Rsa2048), 4);
        assert_eq!(pool.available(KeyLength::Rsa1024), 3);
        // Refills may land in between, but the pool never runs dry within its target.
        for _ in 0..4 {
            assert_eq!(pool.generate(KeyLength::Rsa2048).unwrap().bits, 2048);
        }
        let keys = pool.generate_many(KeyLength::Rsa1024, 3).unwrap();
        assert_eq!(keys.len(), 3);
        assert!(keys.iter().all(|k| k.bits == 1024));
        assert_eq!(fake.inline(), 0);
        // Taking keys woke the refill threads.
        assert!(pool.wait_filled(WAIT));
        assert!(fake.on_workers.load(Ordering::SeqCst) >= 4 + 3 + 4 + 3);
        assert_eq!(fake.inline(), 0);
    }

    #[test]
    fn an_empty_pool_generates_inline() {
        let fake = Arc::new(Fake::default());
        fake.set_closed(true);
        let pool = start(&fake, 2, 0);
        assert_eq!(pool.generate(KeyLength::Rsa2048).unwrap().bits, 2048);
        assert_eq!(fake.inline(), 1);
        assert_eq!(pool.generate_many(KeyLength::Rsa2048, 3).unwrap().len(), 3);
        assert_eq!(fake.inline(), 4);
        // A length without a pool.
        assert_eq!(pool.generate(KeyLength::Rsa1024).unwrap().bits, 1024);
        assert_eq!(fake.inline(), 5);
        fake.set_closed(false);
    }

    #[test]
    fn a_short_pool_gives_what_it_has_and_generates_the_rest_inline() {
        let fake = Arc::new(Fake::default());
        let pool = start(&fake, 1, 0);
        assert!(pool.wait_filled(WAIT));
        fake.set_closed(true);
        let keys = pool.generate_many(KeyLength::Rsa2048, 3).unwrap();
        assert_eq!(keys.len(), 3);
        assert_eq!(fake.inline(), 2);
        let distinct: HashSet<_> = keys.iter().map(|k| k.public_der.clone()).collect();
        assert_eq!(distinct.len(), 3);
        fake.set_closed(false);
    }

    #[test]
    fn a_key_is_handed_out_once() {
        let fake = Arc::new(Fake::default());
        let pool = start(&fake, 8, 8);
        assert!(pool.wait_filled(WAIT));
        let handed: Vec<Vec<u8>> = std::thread::scope(|s| {
            let threads: Vec<_> = (0..4)
                .map(|t| {
                    let pool = &pool;
                    s.spawn(move || {
                        let mut keys = Vec::new();
                        for i in 0..40 {
                            let length = if (t + i) % 2 == 0 {
                                KeyLength::Rsa2048
                            } else {
                                KeyLength::Rsa1024
                            };
                            if i % 3 == 0 {
                                keys.extend(pool.generate_many(length, 3).unwrap());
                            } else {
                                keys.push(pool.generate(length).unwrap());
                            }
                        }
                        keys
                    })
                })
                .collect();
            threads
                .into_iter()
                .flat_map(|t| t.join().unwrap())
                .map(|k| k.public_der)
                .collect()
        });
        let distinct: HashSet<_> = handed.iter().collect();
        assert_eq!(distinct.len(), handed.len());
        // And none of them is still in a pool.
        let state = pool.shared.lock();
        for key in state.pools.iter().flat_map(|p| &p.keys) {
            assert!(!distinct.contains(&key.public_der));
        }
    }

    #[test]
    fn dropping_the_pool_stops_its_threads() {
        let fake = Arc::new(Fake::default());
        let pool = start(&fake, 3, 1);
        assert_eq!(pool.workers(), 2);
        assert!(pool.wait_filled(WAIT));
        drop(pool);
        // The threads held the only other references to the inner vault.
        assert_eq!(Arc::strong_count(&fake), 1);
        let none = start(&fake, 0, 0);
        assert_eq!(none.workers(), 0);
        assert!(none.wait_filled(WAIT));
    }

    #[test]
    fn stop_halts_refilling_but_keys_already_made_are_still_handed_out() {
        let fake = Arc::new(Fake::default());
        let pool = start(&fake, 2, 0);
        assert!(pool.wait_filled(WAIT));
        pool.stop();
        let made = fake.on_workers.load(Ordering::SeqCst);
        assert_eq!(pool.generate_many(KeyLength::Rsa2048, 2).unwrap().len(), 2);
        assert_eq!(fake.inline(), 0);
        assert!(!pool.wait_filled(WAIT));
        drop(pool);
        assert_eq!(fake.on_workers.load(Ordering::SeqCst), made);
    }

    #[test]
    fn the_emptiest_pool_is_refilled_first() {
        let pool = |len, target| Pool {
            keys: (0..len)
                .map(|_| NewKey {
                    bits: 0,
                    public_der: Vec::new(),
                    sealed_private: Vec::new(),
                })
                .collect(),
            target,
            making: 0,
        };
        let state = |a: (usize, usize), b: (usize, usize)| State {
            pools: [pool(a.0, a.1), pool(b.0, b.1)],
            stop: false,
            ready: false,
        };
        assert_eq!(state((0, 24), (0, 6)).neediest(), Some(0));
        assert_eq!(state((1, 24), (0, 6)).neediest(), Some(1));
        assert_eq!(state((12, 24), (4, 6)).neediest(), Some(0));
        assert_eq!(state((24, 24), (5, 6)).neediest(), Some(1));
        assert_eq!(state((24, 24), (6, 6)).neediest(), None);
        assert_eq!(state((0, 0), (0, 0)).neediest(), None);
    }
}
