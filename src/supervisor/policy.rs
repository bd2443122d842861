//! Restart policies: when a worker that exited is started again, and after how long.
//!
//! Pure logic with no I/O, so it is tested directly (and with tokio's paused clock in the
//! supervisor tests).

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

/// Exponential backoff between restarts, with jitter.
///
/// The n-th restart (n from 0) waits `initial * multiplier^n`, capped at `max`, then
/// scaled by a random factor in `[1 - jitter, 1 + jitter]` so that many workers failing
/// together do not restart in lockstep.
///
/// ```
/// use std::time::Duration;
/// use cellblock::Backoff;
/// let b = Backoff::new(Duration::from_millis(100), Duration::from_secs(10)).jitter(0.0);
/// assert_eq!(b.delay(0), Duration::from_millis(100));
/// assert_eq!(b.delay(3), Duration::from_millis(800));
/// assert_eq!(b.delay(20), Duration::from_secs(10));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    /// Delay before the first restart.
    pub initial: Duration,
    /// Upper bound of the delay.
    pub max: Duration,
    /// Growth factor per restart (2.0 doubles).
    pub multiplier: f64,
    /// Relative jitter, 0.0 ..= 1.0.
    pub jitter: f64,
}

impl Backoff {
    /// Doubling backoff from `initial` up to `max`, with 10% jitter.
    pub fn new(initial: Duration, max: Duration) -> Backoff {
        Backoff {
            initial,
            max,
            multiplier: 2.0,
            jitter: 0.1,
        }
    }

    /// Sets the growth factor.
    pub fn multiplier(mut self, m: f64) -> Backoff {
        self.multiplier = m.max(1.0);
        self
    }

    /// Sets the relative jitter (clamped to 0.0 ..= 1.0).
    pub fn jitter(mut self, j: f64) -> Backoff {
        self.jitter = j.clamp(0.0, 1.0);
        self
    }

    /// The delay before restart number `n` (0-based), jitter applied.
    pub fn delay(&self, n: u32) -> Duration {
        let base = self.initial.as_secs_f64() * self.multiplier.powi(n.min(64) as i32);
        let capped = base.min(self.max.as_secs_f64());
        let factor = if self.jitter > 0.0 {
            1.0 + self.jitter * (fastrand::f64() * 2.0 - 1.0)
        } else {
            1.0
        };
        // `max` instead of a panic when a huge `max` (`Duration::MAX` for "no cap") times
        // the jitter factor is beyond what a `Duration` holds.
        Duration::try_from_secs_f64((capped * factor).max(0.0)).unwrap_or(self.max)
    }
}

impl Default for Backoff {
    /// 100 ms doubling up to 30 s, 10% jitter.
    fn default() -> Backoff {
        Backoff::new(Duration::from_millis(100), Duration::from_secs(30))
    }
}

/// When a worker is started again after it exits.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RestartPolicy {
    /// Run once.
    Never,
    /// Restart after a failure (non-zero exit, signal, setup failure), at most
    /// `max_restarts` times in a row; a success ends the worker.
    OnFailure {
        /// Restarts allowed before giving up.
        max_restarts: u32,
        /// Delay between restarts.
        backoff: Backoff,
    },
    /// Restart after every exit, successful or not (a service).
    Always {
        /// Delay between restarts.
        backoff: Backoff,
    },
}

/// At most `max_restarts` restarts within any window of `within`; one more and the
/// supervisor gives up on the worker (a crash loop is reported, not run forever).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestartBudget {
    /// Restarts allowed in the window.
    pub max_restarts: u32,
    /// The sliding window.
    pub within: Duration,
}

impl RestartBudget {
    /// `max_restarts` within `within`.
    pub fn new(max_restarts: u32, within: Duration) -> RestartBudget {
        RestartBudget {
            max_restarts,
            within,
        }
    }
}

/// What the policy says after an exit.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Next {
    /// Start again after this delay.
    Restart(Duration),
    /// The worker is done (policy satisfied).
    Done,
    /// Give up, with the reason.
    GiveUp(String),
}

/// Per-worker restart bookkeeping.
#[derive(Debug, Default)]
pub(crate) struct Tracker {
    /// Consecutive failures (reset by a success); drives the backoff.
    consecutive: u32,
    /// When recent restarts happened, for the budget window.
    recent: VecDeque<Instant>,
}

impl Tracker {
    /// Decides what follows an exit (`failed` = non-zero, signal or setup failure).
    pub(crate) fn next(
        &mut self,
        policy: &RestartPolicy,
        budget: Option<&RestartBudget>,
        failed: bool,
        now: Instant,
    ) -> Next {
        let backoff = match policy {
            RestartPolicy::Never => return Next::Done,
            RestartPolicy::OnFailure {
                max_restarts,
                backoff,
            } => {
                if !failed {
                    return Next::Done;
                }
                self.consecutive += 1;
                if self.consecutive > *max_restarts {
                    return Next::GiveUp(format!(
                        "failed {} times in a row (max_restarts {max_restarts})",
                        self.consecutive
                    ));
                }
                backoff
            }
            RestartPolicy::Always { backoff } => {
                if !failed {
                    self.consecutive = 0;
                }
                backoff
            }
        };
        if let Some(b) = budget {
            while self
                .recent
                .front()
                .is_some_and(|t| now.duration_since(*t) > b.within)
            {
                self.recent.pop_front();
            }
            if self.recent.len() as u32 >= b.max_restarts {
                return Next::GiveUp(format!(
                    "restart budget exhausted: {} restarts within {:?}",
                    self.recent.len(),
                    b.within
                ));
            }
            self.recent.push_back(now);
        }
        // A success under `Always` restarts from the initial delay.
        let n = if failed {
            self.consecutive.saturating_sub(1)
        } else {
            0
        };
        Next::Restart(backoff.delay(n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_jitter() -> Backoff {
        Backoff::new(Duration::from_millis(100), Duration::from_secs(1)).jitter(0.0)
    }

    #[test]
    fn never_is_done() {
        let mut t = Tracker::default();
        assert_eq!(
            t.next(&RestartPolicy::Never, None, true, Instant::now()),
            Next::Done
        );
    }

    #[test]
    fn on_failure_grows_then_gives_up() {
        let p = RestartPolicy::OnFailure {
            max_restarts: 4,
            backoff: no_jitter(),
        };
        let mut t = Tracker::default();
        let now = Instant::now();
        let delays: Vec<Next> = (0..5).map(|_| t.next(&p, None, true, now)).collect();
        assert_eq!(
            delays[..4],
            [100, 200, 400, 800].map(|ms| Next::Restart(Duration::from_millis(ms)))
        );
        assert!(matches!(&delays[4], Next::GiveUp(r) if r.contains("5 times")));
        // A success ends it.
        let mut t = Tracker::default();
        assert_eq!(t.next(&p, None, false, now), Next::Done);
    }

    #[test]
    fn backoff_caps_and_jitters_within_bounds() {
        let b = Backoff::new(Duration::from_millis(100), Duration::from_secs(1)).jitter(0.5);
        for n in 0..20 {
            let d = b.delay(n).as_secs_f64();
            let base = (0.1 * 2f64.powi(n as i32)).min(1.0);
            assert!(
                d >= base * 0.5 - 1e-9 && d <= base * 1.5 + 1e-9,
                "n={n} d={d} base={base}"
            );
        }
    }

    #[test]
    fn uncapped_backoff_does_not_overflow() {
        let b = Backoff::new(Duration::from_secs(1), Duration::MAX).jitter(1.0);
        for _ in 0..100 {
            assert!(b.delay(64) >= Duration::from_secs(1));
        }
    }

    #[test]
    fn budget_limits_restarts_in_a_window() {
        let p = RestartPolicy::Always {
            backoff: no_jitter(),
        };
        let budget = RestartBudget::new(3, Duration::from_secs(10));
        let mut t = Tracker::default();
        let t0 = Instant::now();
        for i in 0..3 {
            assert!(matches!(
                t.next(&p, Some(&budget), false, t0 + Duration::from_secs(i)),
                Next::Restart(_)
            ));
        }
        assert!(matches!(
            t.next(&p, Some(&budget), false, t0 + Duration::from_secs(3)),
            Next::GiveUp(_)
        ));
        // Outside the window the budget refills.
        let mut t = Tracker::default();
        for i in 0..10 {
            assert!(
                matches!(
                    t.next(&p, Some(&budget), false, t0 + Duration::from_secs(i * 5)),
                    Next::Restart(_)
                ),
                "{i}"
            );
        }
    }
}
