//! Login rate limiting: fixed windows of attempts per key (an account's email, a client
//! address), in memory.
//!
//! Written here rather than taken from a crate: the limiter counts attempts *before* the password
//! check (so parallel guesses cannot overshoot), clears an account's count on success, and reports
//! when the window ends (`Retry-After`); general-purpose limiters (GCRA token buckets) do not
//! forget on success. State is per process: behind several instances each enforces its own limit.

use crate::config::RateLimit;
use std::collections::HashMap;
use std::sync::Mutex;
#[cfg(test)]
use std::time::Duration;
use std::time::Instant;

/// Keys kept before expired windows are first swept.
const SWEEP_AT: usize = 10_000;

#[derive(Debug, Clone, Copy)]
struct Window {
    start: Instant,
    count: u32,
}

/// Attempts per key in fixed windows.
#[derive(Debug)]
pub(crate) struct Limiter {
    limit: RateLimit,
    windows: Mutex<Windows>,
}

/// The windows, and the size at which they are next swept: twice what a sweep left (at least
/// [`SWEEP_AT`]), so that with many live keys (an attacker spraying addresses) sweeping costs
/// O(1) per attempt on average, not O(keys) every time.
#[derive(Debug, Default)]
struct Windows {
    map: HashMap<String, Window>,
    sweep_at: usize,
    #[cfg(test)]
    sweeps: usize,
}

impl Limiter {
    pub(crate) fn new(limit: RateLimit) -> Self {
        Self {
            limit,
            windows: Mutex::new(Windows {
                sweep_at: SWEEP_AT,
                ..Windows::default()
            }),
        }
    }

    /// Counts an attempt for `key`; `Err(seconds)` when the key has used its window up (the
    /// attempt is then not counted).
    pub(crate) fn attempt(&self, key: &str) -> Result<(), u64> {
        self.attempt_at(key, Instant::now())
    }

    fn attempt_at(&self, key: &str, now: Instant) -> Result<(), u64> {
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        if windows.map.len() >= windows.sweep_at {
            let window = self.limit.window;
            windows
                .map
                .retain(|_, w| now.duration_since(w.start) < window);
            windows.sweep_at = (windows.map.len() * 2).max(SWEEP_AT);
            #[cfg(test)]
            {
                windows.sweeps += 1;
            }
        }
        let w = windows.map.entry(key.to_owned()).or_insert(Window {
            start: now,
            count: 0,
        });
        if now.duration_since(w.start) >= self.limit.window {
            *w = Window {
                start: now,
                count: 0,
            };
        }
        if w.count >= self.limit.max {
            let left = self
                .limit
                .window
                .saturating_sub(now.duration_since(w.start));
            return Err(left.as_secs().max(1));
        }
        w.count += 1;
        Ok(())
    }

    /// Forgets `key`'s attempts (a successful login).
    pub(crate) fn clear(&self, key: &str) {
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        windows.map.remove(key);
    }

    #[cfg(test)]
    fn window(&self) -> Duration {
        self.limit.window
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_per_key_and_resets_after_the_window() {
        let l = Limiter::new(RateLimit {
            max: 3,
            window: Duration::from_secs(60),
        });
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(l.attempt_at("a", t0).is_ok());
        }
        assert_eq!(l.attempt_at("a", t0 + Duration::from_secs(10)), Err(50));
        assert!(l.attempt_at("b", t0).is_ok(), "keys are independent");
        assert!(l.attempt_at("a", t0 + l.window()).is_ok(), "a new window");
        l.clear("a");
        for _ in 0..3 {
            assert!(l.attempt_at("a", t0).is_ok());
        }
    }

    #[test]
    fn many_live_keys_are_swept_rarely() {
        let l = Limiter::new(RateLimit {
            max: 3,
            window: Duration::from_secs(60),
        });
        let t0 = Instant::now();
        // 50,000 keys in one window, none expired: a sweep on every attempt past 10,000 would be
        // 40,000 sweeps of the whole map.
        for i in 0..50_000 {
            assert!(
                l.attempt_at(&format!("10.0.{}.{}", i / 256, i % 256), t0)
                    .is_ok()
            );
        }
        let w = l.windows.lock().unwrap();
        assert!(w.sweeps <= 3, "{} sweeps", w.sweeps);
        assert_eq!(w.map.len(), 50_000);
    }
}
