//! Per-object exponential backoff with jitter, reset on success. kube-runtime retries
//! failed objects on a fixed schedule only (kube-rs/kube#1916).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Failure counts per object.
#[derive(Debug)]
pub struct Backoff {
    base: Duration,
    max: Duration,
    failures: Mutex<HashMap<String, u32>>,
}

impl Backoff {
    pub fn new(base: Duration, max: Duration) -> Backoff {
        Backoff {
            base,
            max,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// Records a failure of `object` and returns how long to wait: base·2ⁿ capped at max,
    /// ±20 % jitter so that objects failing together do not retry together.
    pub fn next(&self, object: &str) -> Duration {
        let attempt = match self.failures.lock() {
            Ok(mut failures) => {
                let count = failures.entry(object.to_string()).or_insert(0);
                *count = count.saturating_add(1);
                *count
            }
            Err(_) => 1,
        };
        let exponent = attempt.saturating_sub(1).min(20);
        let delay = self.base.saturating_mul(1 << exponent).min(self.max);
        delay.mul_f64(0.8 + 0.4 * jitter_fraction(object, attempt))
    }

    /// Forgets the failures of `object` after a success.
    pub fn reset(&self, object: &str) {
        if let Ok(mut failures) = self.failures.lock() {
            failures.remove(object);
        }
    }
}

/// A number in [0, 1) that differs per object, attempt and moment (no RNG dependency).
fn jitter_fraction(object: &str, attempt: u32) -> f64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325 ^ u64::from(nanos) ^ (u64::from(attempt) << 32);
    for byte in object.bytes() {
        hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
    }
    (hash >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_exponentially_to_the_cap_and_reset_on_success() {
        let backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
        let delays: Vec<Duration> = (0..10).map(|_| backoff.next("ns/a")).collect();
        for (attempt, delay) in delays.iter().enumerate() {
            let nominal = Duration::from_secs(1 << attempt.min(6)).min(Duration::from_secs(60));
            assert!(
                *delay >= nominal.mul_f64(0.8) && *delay <= nominal.mul_f64(1.2),
                "attempt {attempt}: {delay:?}"
            );
        }
        assert!(
            backoff.next("ns/b") <= Duration::from_millis(1200),
            "objects back off independently"
        );
        backoff.reset("ns/a");
        assert!(backoff.next("ns/a") <= Duration::from_millis(1200));
    }
}
