//! Who may use the console: one admin token, given at sign-in, trades for a session cookie
//! (`HttpOnly`, `SameSite=Strict`, path `/console`), and every form carries a CSRF token
//! derived from the session, so a page from elsewhere can neither read the console nor post
//! to it.
//!
//! The token is compared through HMACs under a per-process key, so the comparison takes the
//! same time whatever the guess; sessions live in memory (a restart signs everyone out) and
//! are bounded in number and age.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

type HmacSha256 = Hmac<Sha256>;

/// The session cookie's name.
pub const COOKIE: &str = "sesame_console";
/// How long a session lasts after sign-in.
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
/// Sessions kept at most; past it the oldest goes.
const MAX_SESSIONS: usize = 1024;

/// The admin token, the sessions and the key CSRF tokens and comparisons are made with.
pub struct Auth {
    token_mac: Vec<u8>,
    key: Vec<u8>,
    new_id: Box<dyn Fn() -> Option<String> + Send + Sync>,
    sessions: Mutex<HashMap<String, Instant>>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Auth(<redacted>)")
    }
}

impl Auth {
    /// Sign-in with `token`; `key` (random, per process) keys the HMACs; `new_id` draws an
    /// unguessable session id.
    pub fn new(
        token: &str,
        key: Vec<u8>,
        new_id: impl Fn() -> Option<String> + Send + Sync + 'static,
    ) -> Auth {
        let token_mac = mac(&key, b"token", token.as_bytes());
        Auth {
            token_mac,
            key,
            new_id: Box::new(new_id),
            sessions: Mutex::new(HashMap::new()),
        }
    }

    fn sessions(&self) -> std::sync::MutexGuard<'_, HashMap<String, Instant>> {
        self.sessions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A new session's id if `given` is the admin token.
    pub fn sign_in(&self, given: &str) -> Option<String> {
        let mut check = HmacSha256::new_from_slice(&self.key).ok()?;
        check.update(b"token");
        check.update(given.as_bytes());
        check.verify_slice(&self.token_mac).ok()?;
        let id = (self.new_id)()?;
        let now = Instant::now();
        let mut sessions = self.sessions();
        sessions.retain(|_, started| now.duration_since(*started) < SESSION_TTL);
        if sessions.len() >= MAX_SESSIONS
            && let Some(oldest) = sessions
                .iter()
                .min_by_key(|(_, started)| **started)
                .map(|(id, _)| id.clone())
        {
            sessions.remove(&oldest);
        }
        sessions.insert(id.clone(), now);
        Some(id)
    }

    /// Whether `id` is a live session.
    pub fn valid(&self, id: &str) -> bool {
        self.sessions()
            .get(id)
            .is_some_and(|started| started.elapsed() < SESSION_TTL)
    }

    /// Ends a session.
    pub fn sign_out(&self, id: &str) {
        self.sessions().remove(id);
    }

    /// The CSRF token of a session's forms.
    pub fn csrf(&self, session: &str) -> String {
        data_encoding::HEXLOWER.encode(&mac(&self.key, b"csrf", session.as_bytes()))
    }

    /// Whether `given` is the CSRF token of `session` (compared in constant time).
    pub fn csrf_ok(&self, session: &str, given: &str) -> bool {
        let Ok(given) = data_encoding::HEXLOWER.decode(given.as_bytes()) else {
            return false;
        };
        let Ok(mut check) = HmacSha256::new_from_slice(&self.key) else {
            return false;
        };
        check.update(b"csrf");
        check.update(session.as_bytes());
        check.verify_slice(&given).is_ok()
    }

    /// The `Set-Cookie` value that starts a session.
    pub fn cookie(id: &str) -> String {
        format!(
            "{COOKIE}={id}; Path=/console; HttpOnly; SameSite=Strict; Max-Age={}",
            SESSION_TTL.as_secs()
        )
    }

    /// The `Set-Cookie` value that ends one.
    pub fn expired_cookie() -> String {
        format!("{COOKIE}=; Path=/console; HttpOnly; SameSite=Strict; Max-Age=0")
    }
}

fn mac(key: &[u8], purpose: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC takes a key of any length.
    let Ok(mut m) = HmacSha256::new_from_slice(key) else {
        return Vec::new();
    };
    m.update(purpose);
    m.update(data);
    m.finalize().into_bytes().to_vec()
}

/// The session id in a `Cookie` header, if any.
pub fn session_of(cookie_header: &str) -> Option<&str> {
    cookie_header
        .split(';')
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v)
        .filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn auth() -> Auth {
        let n = AtomicU32::new(0);
        Auth::new("the-admin-token-123", vec![7; 32], move || {
            Some(format!("session-{}", n.fetch_add(1, Ordering::Relaxed)))
        })
    }

    #[test]
    fn only_the_token_signs_in_and_csrf_tokens_are_per_session() {
        let a = auth();
        assert_eq!(a.sign_in("wrong"), None);
        assert_eq!(a.sign_in("the-admin-token-12"), None);
        assert_eq!(a.sign_in(""), None);
        let s = a.sign_in("the-admin-token-123").unwrap();
        assert!(a.valid(&s));
        assert!(!a.valid("session-99"));
        let csrf = a.csrf(&s);
        assert!(a.csrf_ok(&s, &csrf));
        assert!(!a.csrf_ok(&s, ""));
        assert!(!a.csrf_ok(&s, "zz"));
        let other = a.sign_in("the-admin-token-123").unwrap();
        assert!(
            !a.csrf_ok(&other, &csrf),
            "another session's token is refused"
        );
        a.sign_out(&s);
        assert!(!a.valid(&s));
        assert!(a.valid(&other));
    }

    #[test]
    fn the_cookie_is_found_among_others() {
        assert_eq!(session_of("a=1; sesame_console=abc; b=2"), Some("abc"));
        assert_eq!(session_of("sesame_console="), None);
        assert_eq!(session_of("other=abc"), None);
    }

    #[test]
    fn sessions_are_bounded() {
        let a = auth();
        let first = a.sign_in("the-admin-token-123").unwrap();
        for _ in 0..MAX_SESSIONS {
            a.sign_in("the-admin-token-123").unwrap();
        }
        assert!(!a.valid(&first), "the oldest made room");
        assert_eq!(a.sessions().len(), MAX_SESSIONS);
    }
}
