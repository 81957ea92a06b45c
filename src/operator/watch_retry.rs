//! How soon the controllers' watches try again after an error.

use std::time::Duration;

/// How soon the controllers' watches try again after an error: 250 ms doubling to 2 s.
/// kube's default (0.8 s doubling to 30 s, reset only after 2 minutes) left the
/// operator blind for 82 s after a deleted CRD came back; a list every 2 s while a CRD
/// is missing costs next to nothing.
pub(super) struct WatchRetry {
    next: Duration,
}

const WATCH_RETRY_FIRST: Duration = Duration::from_millis(250);
const WATCH_RETRY_MAX: Duration = Duration::from_secs(2);

impl Default for WatchRetry {
    fn default() -> Self {
        WatchRetry {
            next: WATCH_RETRY_FIRST,
        }
    }
}

impl Iterator for WatchRetry {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let delay = self.next;
        self.next = (delay * 2).min(WATCH_RETRY_MAX);
        Some(delay)
    }
}

impl kube::runtime::utils::Backoff for WatchRetry {
    fn reset(&mut self) {
        self.next = WATCH_RETRY_FIRST;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watches_retry_within_two_seconds_and_start_over_after_a_success() {
        use kube::runtime::utils::Backoff as _;
        let mut retry = WatchRetry::default();
        let delays: Vec<u64> = retry
            .by_ref()
            .take(6)
            .map(|d| d.as_millis() as u64)
            .collect();
        assert_eq!(delays, [250, 500, 1000, 2000, 2000, 2000]);
        retry.reset();
        assert_eq!(retry.next(), Some(Duration::from_millis(250)));
    }
}
