//! Per-key exponential backoff with jitter: the delay doubles with every consecutive failure of a key,
//! from `base` up to `cap`, with "equal jitter" (half fixed, half random) so keys that failed together
//! do not retry together; a success resets the key.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::Duration;

use rand::Rng;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BackoffConfig {
    pub base: Duration,
    pub cap: Duration,
}

impl Default for BackoffConfig {
    fn default() -> Self {
        BackoffConfig {
            base: Duration::from_millis(200),
            cap: Duration::from_secs(300),
        }
    }
}

/// Failure counts per key.
#[derive(Debug)]
pub struct Backoff<K> {
    config: BackoffConfig,
    failures: HashMap<K, u32>,
}

impl<K: Hash + Eq + Clone> Backoff<K> {
    pub fn new(config: BackoffConfig) -> Self {
        Backoff {
            config,
            failures: HashMap::new(),
        }
    }

    /// The un-jittered delay for the n-th consecutive failure (n >= 1).
    pub fn ceiling(&self, n: u32) -> Duration {
        let factor = 2u32.saturating_pow(n.saturating_sub(1).min(31));
        self.config.base.saturating_mul(factor).min(self.config.cap)
    }

    /// Records a failure of `key` and returns how long to wait before retrying it.
    pub fn failure(&mut self, key: &K) -> Duration {
        let n = self.failures.entry(key.clone()).or_insert(0);
        *n = n.saturating_add(1);
        let n = *n;
        let ceiling = self.ceiling(n);
        let half = ceiling / 2;
        half + rand::rng().random_range(Duration::ZERO..=half)
    }

    /// Consecutive failures of `key` so far.
    pub fn attempts(&self, key: &K) -> u32 {
        self.failures.get(key).copied().unwrap_or(0)
    }

    /// A success: the next failure starts from `base` again.
    pub fn reset(&mut self, key: &K) {
        self.failures.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_cap_with_jitter_and_reset_on_success() {
        let mut b = Backoff::new(BackoffConfig {
            base: Duration::from_millis(100),
            cap: Duration::from_secs(1),
        });
        let k = "ns/a";
        let mut previous_ceiling = Duration::ZERO;
        for n in 1..=8 {
            let d = b.failure(&k);
            let ceiling = b.ceiling(n);
            assert!(
                d >= ceiling / 2 && d <= ceiling,
                "attempt {n}: {d:?} outside [{:?}, {ceiling:?}]",
                ceiling / 2
            );
            assert!(ceiling >= previous_ceiling);
            previous_ceiling = ceiling;
        }
        assert_eq!(b.ceiling(8), Duration::from_secs(1), "capped");
        assert_eq!(b.attempts(&k), 8);
        b.reset(&k);
        assert_eq!(b.attempts(&k), 0);
        assert!(b.failure(&k) <= Duration::from_millis(100));
    }

    #[test]
    fn keys_back_off_independently() {
        let mut b = Backoff::new(BackoffConfig::default());
        for _ in 0..5 {
            b.failure(&"a");
        }
        assert_eq!(b.attempts(&"b"), 0);
        assert!(b.failure(&"b") <= BackoffConfig::default().base);
    }
}
