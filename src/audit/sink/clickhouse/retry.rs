//! When a failed batch is tried again: exponential backoff with jitter for
//! errors that pass on their own, one quick retry and then a long pause for
//! errors that need a person (see `errors` for how they are told apart).

use std::time::{Duration, Instant};

const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// Between attempts after an error that needs a person.
const PERMANENT_BACKOFF: Duration = Duration::from_secs(30);

/// Consecutive failed attempts of one batch, and the pause each calls for.
#[derive(Debug, Default)]
pub(super) struct Retry {
    failures: u32,
}

impl Retry {
    /// Failed attempts since the last acknowledged batch.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// Counts a failed attempt.
    pub fn failed(&mut self) {
        self.failures += 1;
    }

    /// Counts an acknowledged batch; returns the failed attempts before it.
    pub fn succeeded(&mut self) -> u32 {
        std::mem::take(&mut self.failures)
    }

    /// The pause after the failure just counted. An error that needs a
    /// person is tried again soon once (the next attempt re-applies the
    /// schema first, which heals a dropped table), then every 30 s.
    pub fn pause(&self, permanent: bool) -> Duration {
        if !permanent {
            backoff(self.failures)
        } else if self.failures == 1 {
            backoff(1)
        } else {
            PERMANENT_BACKOFF
        }
    }
}

/// Sleeps `d`, waking early once `stopping` says shutdown has begun
/// (only from a pause longer than the longest backoff).
pub(super) fn sleep(d: Duration, stopping: impl Fn() -> bool) {
    let until = Instant::now() + d;
    while Instant::now() < until {
        if stopping() && d > BACKOFF_MAX {
            return;
        }
        std::thread::sleep(
            until
                .saturating_duration_since(Instant::now())
                .min(BACKOFF_MIN),
        );
    }
}

/// 100 ms doubling to 5 s, minus up to a quarter at random.
fn backoff(failures: u32) -> Duration {
    let base = BACKOFF_MIN
        .saturating_mul(1u32 << failures.saturating_sub(1).min(6))
        .min(BACKOFF_MAX);
    let mut b = [0u8; 1];
    let jitter = if getrandom::fill(&mut b).is_ok() {
        base / 4 * u32::from(b[0]) / 255
    } else {
        Duration::ZERO
    };
    base - jitter
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        assert!(backoff(1) <= BACKOFF_MIN && backoff(1) >= BACKOFF_MIN * 3 / 4);
        assert!(backoff(3) >= Duration::from_millis(300));
        assert!(backoff(50) <= BACKOFF_MAX);
    }
}
