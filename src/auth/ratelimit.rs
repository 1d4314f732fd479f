//! Fixed-window rate limits kept in memory: login attempts per username and per IP, device
//! code requests and wrong user-code entries.
//!
//! With PostgreSQL, password failures count in the store instead, shared by every replica
//! ([`RateLimits::password_refused`]); the other limits stay per replica.
//!
//! A limiter never blocks and never does I/O. Its memory is bounded: expired windows are dropped
//! when the table grows past [`MAX_KEYS`], and when every window is live the ones with the
//! fewest hits go first, so flooding the table with new keys never resets a key that has been
//! failing.
//!
//! The limits slow attackers without letting them lock others out: password failures count per
//! (username, address), so guessing someone's password from one address never locks the right
//! password out from another; wrong user codes count per user before per address, so one
//! user's typos never block their neighbours; addresses are IPv6 /64 blocks, and the real
//! client behind a trusted proxy (`--trusted-proxies`).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::store::{Store, StoreError};

/// Keys a limiter remembers before it prunes.
const MAX_KEYS: usize = 100_000;

/// At most `limit` hits per `window` for each key.
#[derive(Debug)]
pub struct RateLimiter {
    limit: u32,
    window: Duration,
    /// key -> (window start, hits in it).
    windows: Mutex<HashMap<String, (Instant, u32)>>,
}

/// Refused: try again after this long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryAfter(pub Duration);

impl RateLimiter {
    pub fn new(limit: u32, window: Duration) -> RateLimiter {
        RateLimiter {
            limit,
            window,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// Whether `key` is still under its limit, without counting a hit.
    pub fn check(&self, key: &str) -> Result<(), RetryAfter> {
        self.check_at(key, Instant::now())
    }

    /// Counts a hit for `key`; refused when the limit was already reached in this window.
    pub fn hit(&self, key: &str) -> Result<(), RetryAfter> {
        self.hit_at(key, Instant::now())
    }

    /// The hits allowed per window.
    pub fn limit(&self) -> u32 {
        self.limit
    }

    /// The window's length.
    pub fn window(&self) -> Duration {
        self.window
    }

    /// Forgets `key` (a successful login clears its failures).
    pub fn reset(&self, key: &str) {
        self.table().remove(key);
    }

    fn check_at(&self, key: &str, now: Instant) -> Result<(), RetryAfter> {
        match self.table().get(key) {
            Some(&(start, hits)) if now < start + self.window && hits >= self.limit => {
                Err(RetryAfter(start + self.window - now))
            }
            _ => Ok(()),
        }
    }

    fn hit_at(&self, key: &str, now: Instant) -> Result<(), RetryAfter> {
        let mut table = self.table();
        if table.len() >= MAX_KEYS && !table.contains_key(key) {
            prune(&mut table, self.window, now);
        }
        let entry = table.entry(key.to_owned()).or_insert((now, 0));
        if now >= entry.0 + self.window {
            *entry = (now, 0);
        }
        if entry.1 >= self.limit {
            return Err(RetryAfter(entry.0 + self.window - now));
        }
        entry.1 += 1;
        Ok(())
    }

    fn table(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Instant, u32)>> {
        // A panic while holding this lock cannot leave the map inconsistent: recover it.
        self.windows.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Frees room in a full table: expired windows first; then, when every window is live, the
/// half with the fewest hits (oldest first among equals). A flood of new keys has one hit each,
/// so it evicts itself, never a key that has been failing (whose count is what protects it).
fn prune(table: &mut HashMap<String, (Instant, u32)>, window: Duration, now: Instant) {
    table.retain(|_, (start, _)| now < *start + window);
    if table.len() >= MAX_KEYS {
        let mut ranked: Vec<(u32, Instant)> = table.values().map(|&(s, h)| (h, s)).collect();
        ranked.sort_unstable();
        let cutoff = ranked[ranked.len() / 2];
        table.retain(|_, &mut (start, hits)| (hits, start) > cutoff);
    }
}

/// Every limit the daemon applies, documented in the README's "Rate limits".
#[derive(Debug)]
pub struct RateLimits {
    /// Failed password logins per (username, client address): 10 per 15 minutes.
    pub login_failures_per_user: RateLimiter,
    /// Password login attempts per client address: 30 per minute.
    pub logins_per_ip: RateLimiter,
    /// SSO logins started per client address: 300 per minute (each keeps a pending login; a
    /// whole office behind one address signs in at 9 o'clock).
    pub sso_starts_per_ip: RateLimiter,
    /// Device code requests per client address: 20 per minute.
    pub device_codes_per_ip: RateLimiter,
    /// Wrong user-code entries per signed-in user: 5 per 5 minutes.
    pub user_code_failures: RateLimiter,
    /// Wrong user-code entries per client address: 30 per 5 minutes.
    pub user_code_failures_per_ip: RateLimiter,
}

impl RateLimits {
    /// Whether `key` (a [`RateLimits::login_failure_key`]) may try a password: `Some` wait when
    /// it failed [`RateLimits::login_failures_per_user`]'s limit in the window. Kept in memory
    /// with one daemon; in the store when replicas share it, so spreading guesses over replicas
    /// gains nothing.
    ///
    /// Fails when the shared store cannot be read.
    pub async fn password_refused(
        &self,
        store: &Store,
        key: &str,
    ) -> Result<Option<RetryAfter>, StoreError> {
        let limiter = &self.login_failures_per_user;
        if !store.is_shared() {
            return Ok(limiter.check(key).err());
        }
        let now = crate::clock::unix_secs();
        Ok(store
            .password_failures(key, now)
            .await?
            .filter(|w| w.failures >= limiter.limit())
            .map(|w| RetryAfter(Duration::from_secs(w.ends_unix.saturating_sub(now)))))
    }

    /// Counts a failed password of `key`.
    ///
    /// Fails when the shared store cannot be written.
    pub async fn password_failed(&self, store: &Store, key: &str) -> Result<(), StoreError> {
        let limiter = &self.login_failures_per_user;
        if !store.is_shared() {
            let _ = limiter.hit(key);
            return Ok(());
        }
        let now = crate::clock::unix_secs();
        store
            .record_password_failure(key, now, limiter.window().as_secs())
            .await?;
        Ok(())
    }

    /// Forgets the failures of `key` (its password was right).
    ///
    /// Fails when the shared store cannot be written.
    pub async fn password_succeeded(&self, store: &Store, key: &str) -> Result<(), StoreError> {
        if store.is_shared() {
            store.clear_password_failures(key).await
        } else {
            self.login_failures_per_user.reset(key);
            Ok(())
        }
    }

    /// The key of password failures of `username` from `address` (a
    /// [`crate::http::client::limit_key`]).
    pub fn login_failure_key(username: &str, address: &str) -> String {
        format!("{username}\0{address}")
    }
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits {
            login_failures_per_user: RateLimiter::new(10, Duration::from_secs(15 * 60)),
            logins_per_ip: RateLimiter::new(30, Duration::from_secs(60)),
            sso_starts_per_ip: RateLimiter::new(300, Duration::from_secs(60)),
            device_codes_per_ip: RateLimiter::new(20, Duration::from_secs(60)),
            user_code_failures: RateLimiter::new(5, Duration::from_secs(5 * 60)),
            user_code_failures_per_ip: RateLimiter::new(30, Duration::from_secs(5 * 60)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_past_the_limit_until_the_window_ends() {
        let limiter = RateLimiter::new(3, Duration::from_secs(60));
        let t0 = Instant::now();
        for _ in 0..3 {
            limiter.hit_at("ann", t0).unwrap();
        }
        let refused = limiter.hit_at("ann", t0 + Duration::from_secs(10));
        assert_eq!(refused, Err(RetryAfter(Duration::from_secs(50))));
        assert!(limiter.check_at("ann", t0).is_err());
        assert!(limiter.hit_at("bob", t0).is_ok(), "keys are independent");
        let later = t0 + Duration::from_secs(61);
        assert!(limiter.check_at("ann", later).is_ok());
        assert!(limiter.hit_at("ann", later).is_ok());
    }

    #[test]
    fn reset_clears_a_key() {
        let limiter = RateLimiter::new(1, Duration::from_secs(60));
        limiter.hit("ann").unwrap();
        assert!(limiter.check("ann").is_err());
        limiter.reset("ann");
        assert!(limiter.check("ann").is_ok());
    }

    #[test]
    fn the_table_stays_bounded() {
        let limiter = RateLimiter::new(1, Duration::from_secs(60));
        let t0 = Instant::now();
        for i in 0..(MAX_KEYS + 10) {
            limiter
                .hit_at(&i.to_string(), t0 + Duration::from_nanos(i as u64))
                .unwrap();
        }
        assert!(limiter.table().len() <= MAX_KEYS);
    }

    #[test]
    fn a_flood_of_new_keys_never_resets_a_failing_key() {
        let limiter = RateLimiter::new(10, Duration::from_secs(900));
        let t0 = Instant::now();
        for _ in 0..9 {
            limiter.hit_at("victim", t0).unwrap();
        }
        for i in 0..(2 * MAX_KEYS) {
            let _ = limiter.hit_at(&format!("flood{i}"), t0 + Duration::from_millis(1));
        }
        limiter.hit_at("victim", t0).unwrap();
        assert!(
            limiter.hit_at("victim", t0).is_err(),
            "the victim's nine earlier failures still count"
        );
    }
}
