//! Fault injection for tests: answer a share of requests with 429 + Retry-After or 500, add latency,
//! and end every open watch — switchable at run time, off unless the server was started with it, so
//! engine tests can exercise backoff, Retry-After handling and relists against the real server.

use std::sync::Mutex;
use std::time::Duration;

use rand::Rng;

use crate::error::ApiError;

/// The faults to inject now.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FaultSettings {
    /// Share (0.0–1.0) of API requests answered 429 TooManyRequests with this Retry-After.
    pub too_many_requests: f64,
    pub retry_after_seconds: u64,
    /// Share (0.0–1.0) of API requests answered 500 InternalError.
    pub internal_errors: f64,
    /// Added to every API request.
    pub latency: Duration,
}

/// The switchboard: settings plus a signal that ends open watches.
#[derive(Debug)]
pub struct Faults {
    enabled: bool,
    settings: Mutex<FaultSettings>,
    close_watches: tokio::sync::watch::Sender<u64>,
}

impl Faults {
    pub fn new(enabled: bool) -> Faults {
        Faults {
            enabled,
            settings: Mutex::default(),
            close_watches: tokio::sync::watch::channel(0).0,
        }
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Replaces the settings; ignored (returns false) when fault injection is not enabled.
    pub fn set(&self, settings: FaultSettings) -> bool {
        if self.enabled {
            *self.settings.lock().expect("faults lock") = settings;
        }
        self.enabled
    }

    pub fn settings(&self) -> FaultSettings {
        self.settings.lock().expect("faults lock").clone()
    }

    /// Ends every open watch (clients see the stream close and re-watch).
    pub fn close_watches(&self) {
        self.close_watches.send_modify(|n| *n += 1);
    }

    pub fn watch_closer(&self) -> tokio::sync::watch::Receiver<u64> {
        self.close_watches.subscribe()
    }

    /// Applies latency and maybe fails the request.
    pub async fn before_request(&self) -> Result<(), ApiError> {
        if !self.enabled {
            return Ok(());
        }
        let s = self.settings();
        if !s.latency.is_zero() {
            tokio::time::sleep(s.latency).await;
        }
        let roll: f64 = rand::rng().random();
        if roll < s.too_many_requests {
            return Err(ApiError::too_many_requests(s.retry_after_seconds.max(1)));
        }
        if roll < s.too_many_requests + s.internal_errors {
            return Err(ApiError::internal("injected fault"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn disabled_faults_never_fire_and_enabled_ones_do() {
        let off = Faults::new(false);
        assert!(!off.set(FaultSettings {
            internal_errors: 1.0,
            ..Default::default()
        }));
        assert!(off.before_request().await.is_ok());
        let on = Faults::new(true);
        on.set(FaultSettings {
            too_many_requests: 1.0,
            retry_after_seconds: 3,
            ..Default::default()
        });
        let e = on.before_request().await.unwrap_err();
        assert_eq!((e.code, e.retry_after), (429, Some(3)));
    }
}
