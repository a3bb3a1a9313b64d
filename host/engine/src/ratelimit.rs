//! The global write rate limit: a token bucket shared by every plugin (QPS and burst configurable), so
//! the host as a whole never floods the API server, plus a server-imposed pause of one resource's
//! writes when the API server answers a write of it 429 with Retry-After.
//!
//! A 429 pauses the writes of its resource (group and plural), every plugin's, not the whole host:
//! kube-apiserver's priority and fairness can classify requests by resource, so a 429 on one says
//! nothing of the others, and pausing them all would let one throttled resource stall every other
//! plugin. When the whole host's flow is throttled, each resource meets its own 429 and pauses.

use std::collections::HashMap;
use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimitConfig {
    /// Sustained writes per second.
    pub qps: f64,
    /// Writes allowed at once after a quiet period.
    pub burst: u32,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        RateLimitConfig {
            qps: 50.0,
            burst: 100,
        }
    }
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    updated: Instant,
    /// No writes of a resource before its instant (the API server said Retry-After).
    paused: HashMap<String, Instant>,
}

/// A token bucket on tokio's clock.
#[derive(Debug)]
pub struct TokenBucket {
    config: RateLimitConfig,
    bucket: Mutex<Bucket>,
}

impl TokenBucket {
    pub fn new(config: RateLimitConfig) -> Self {
        let config = RateLimitConfig {
            qps: config.qps.max(0.001),
            burst: config.burst.max(1),
        };
        TokenBucket {
            config,
            bucket: Mutex::new(Bucket {
                tokens: f64::from(config.burst),
                updated: Instant::now(),
                paused: HashMap::new(),
            }),
        }
    }

    /// Waits until writes of `resource` are not paused, then for one write token.
    pub async fn acquire(&self, resource: &str) {
        loop {
            let wait = {
                let mut b = self.bucket.lock().await;
                let now = Instant::now();
                b.paused.retain(|_, until| *until > now);
                if let Some(until) = b.paused.get(resource) {
                    *until - now
                } else {
                    let elapsed = now.duration_since(b.updated).as_secs_f64();
                    b.tokens = (b.tokens + elapsed * self.config.qps).min(f64::from(self.config.burst));
                    b.updated = now;
                    if b.tokens >= 1.0 {
                        b.tokens -= 1.0;
                        return;
                    }
                    Duration::from_secs_f64((1.0 - b.tokens) / self.config.qps)
                }
            };
            tokio::time::sleep(wait).await;
        }
    }

    /// Holds every write of `resource` for `delay` (a 429's Retry-After).
    pub async fn pause_for(&self, resource: &str, delay: Duration) {
        let mut b = self.bucket.lock().await;
        let until = Instant::now() + delay;
        let paused = b.paused.entry(resource.to_string()).or_insert(until);
        *paused = (*paused).max(until);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn burst_then_steady_rate() {
        let bucket = TokenBucket::new(RateLimitConfig { qps: 10.0, burst: 5 });
        let start = Instant::now();
        for _ in 0..5 {
            bucket.acquire("configmaps").await;
        }
        assert_eq!(start.elapsed(), Duration::ZERO, "the burst is immediate");
        for _ in 0..10 {
            bucket.acquire("configmaps").await;
        }
        let elapsed = start.elapsed().as_secs_f64();
        assert!(
            (0.99..=1.01).contains(&elapsed),
            "10 more writes at 10 qps take 1 s, took {elapsed}"
        );
    }

    /// What the API server sees (`tests/it/engine_write_faults.rs`): however many writers contend
    /// and however often a 429 pauses them, no window of T seconds holds more than
    /// burst + qps × T acquisitions, and none falls inside a pause.
    #[tokio::test(start_paused = true)]
    async fn contending_writers_and_pauses_never_exceed_the_bucket() {
        const QPS: f64 = 5.0;
        const BURST: u32 = 5;
        let bucket = std::sync::Arc::new(TokenBucket::new(RateLimitConfig {
            qps: QPS,
            burst: BURST,
        }));
        let start = Instant::now();
        let taken = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let pauses = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut writers = Vec::new();
        for w in 0..8u32 {
            let (bucket, taken, pauses) = (bucket.clone(), taken.clone(), pauses.clone());
            writers.push(tokio::spawn(async move {
                for i in 0..15u32 {
                    bucket.acquire("configmaps").await;
                    let now = Instant::now();
                    taken.lock().unwrap().push(now);
                    // Every 7th write of writer 0 and 3 is "answered 429, Retry-After: 2".
                    if (w == 0 || w == 3) && i % 7 == 6 {
                        bucket.pause_for("configmaps", Duration::from_secs(2)).await;
                        pauses.lock().unwrap().push(now);
                    }
                }
            }));
        }
        for w in writers {
            w.await.unwrap();
        }
        let mut taken = taken.lock().unwrap().clone();
        taken.sort();
        assert_eq!(taken.len(), 120);
        for secs in [0.5, 1.0, 5.0] {
            let window = Duration::from_secs_f64(secs);
            let limit = f64::from(BURST) + QPS * secs;
            for (i, t) in taken.iter().enumerate() {
                let within = taken[i..].iter().take_while(|u| **u - *t < window).count();
                assert!(
                    within as f64 <= limit,
                    "{within} acquisitions within {secs} s from {:?}, at most {limit}",
                    *t - start
                );
            }
        }
        let pauses = pauses.lock().unwrap().clone();
        assert_eq!(pauses.len(), 4);
        for p in &pauses {
            let inside = taken
                .iter()
                .filter(|t| **t > *p && **t < *p + Duration::from_secs(2))
                .count();
            assert_eq!(inside, 0, "acquired during the pause from {:?}", *p - start);
        }
        // 120 writes at 5/s after a burst of 5, plus four 2-second pauses (each followed by a burst).
        let elapsed = start.elapsed().as_secs_f64();
        assert!((23.0..=31.0).contains(&elapsed), "took {elapsed} s");
    }

    #[tokio::test(start_paused = true)]
    async fn retry_after_pauses_the_writes_of_its_resource_only() {
        let bucket = TokenBucket::new(RateLimitConfig {
            qps: 1000.0,
            burst: 10,
        });
        bucket.pause_for("configmaps", Duration::from_secs(3)).await;
        let start = Instant::now();
        bucket.acquire("policy/poddisruptionbudgets").await;
        assert_eq!(start.elapsed(), Duration::ZERO, "another resource writes on");
        bucket.acquire("configmaps").await;
        assert_eq!(start.elapsed(), Duration::from_secs(3));
        bucket.acquire("configmaps").await;
        assert_eq!(
            start.elapsed(),
            Duration::from_secs(3),
            "after the pause writes flow again"
        );
        // A shorter Retry-After does not shorten a pause under way.
        bucket.pause_for("configmaps", Duration::from_secs(2)).await;
        bucket.pause_for("configmaps", Duration::from_secs(1)).await;
        bucket.acquire("configmaps").await;
        assert_eq!(start.elapsed(), Duration::from_secs(5));
    }
}
