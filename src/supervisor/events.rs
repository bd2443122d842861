//! What a supervisor reports: the [`Event`]s of its workers, and the [`Summary`] of how
//! each ended.

use std::fmt;
use std::process::ExitStatus;
use std::sync::Arc;
use std::time::Duration;

use crate::{Error, RunReport};

/// What the supervisor reports about its workers, in order, per worker.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Event {
    /// A worker's container started.
    Started {
        /// The worker.
        name: Arc<str>,
        /// 1 for the first start, 2 for the first restart, …
        attempt: u32,
        /// Host pid of the container.
        pid: i32,
    },
    /// A worker's container exited (and was reaped).
    Exited {
        /// The worker.
        name: Arc<str>,
        /// Which start this was.
        attempt: u32,
        /// How it ended.
        status: ExitStatus,
        /// How long it ran.
        duration: Duration,
        /// The full account of the run: why it ended (exit, signal, timeout, OOM kill,
        /// output limit), CPU time, peak memory, …
        report: Arc<RunReport>,
    },
    /// The container could not be started: bad configuration or a failed setup stage.
    SetupFailed {
        /// The worker.
        name: Arc<str>,
        /// Which start this was.
        attempt: u32,
        /// Why.
        error: Arc<Error>,
    },
    /// The worker will be started again after `delay`.
    Restarting {
        /// The worker.
        name: Arc<str>,
        /// The attempt that will start.
        attempt: u32,
        /// The backoff delay.
        delay: Duration,
    },
    /// The restart policy or budget ran out: the worker will not be started again.
    GaveUp {
        /// The worker.
        name: Arc<str>,
        /// Why.
        reason: String,
    },
    /// The worker was stopped by the supervisor (stop, shutdown, or a hook's escalation).
    Stopped {
        /// The worker.
        name: Arc<str>,
        /// How its last container ended, if one was running.
        status: Option<ExitStatus>,
    },
}

/// How a worker's run ended, as passed to [`Hooks::after_exit`](crate::Hooks::after_exit).
#[derive(Debug, Clone)]
pub enum ExitInfo {
    /// The container ran and exited.
    Exited {
        /// Its exit status.
        status: ExitStatus,
        /// How long it ran.
        duration: Duration,
        /// The full account of the run (`None` when the supervisor stopped it and the
        /// report could not be taken).
        report: Option<Arc<RunReport>>,
    },
    /// It could not be started.
    SetupFailed(Arc<Error>),
}

impl ExitInfo {
    /// Whether this counts as a failure for [`RestartPolicy::OnFailure`](crate::RestartPolicy::OnFailure).
    pub fn failed(&self) -> bool {
        match self {
            ExitInfo::Exited { status, .. } => !status.success(),
            ExitInfo::SetupFailed(_) => true,
        }
    }
}

/// Why a worker is no longer running.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkerEnd {
    /// Its policy was satisfied (it exited and is not to be restarted).
    Completed,
    /// It was stopped by the supervisor.
    Stopped,
    /// The policy or budget gave up, or a hook refused to start it.
    GaveUp(String),
}

/// The record of one worker, once it has ended.
#[derive(Debug, Clone)]
pub struct WorkerSummary {
    /// The worker's name.
    pub name: Arc<str>,
    /// How many times a container was started (successful spawns).
    pub starts: u32,
    /// How many restarts were made.
    pub restarts: u32,
    /// How the last run ended, if there was one.
    pub last: Option<ExitInfo>,
    /// Why it ended.
    pub end: WorkerEnd,
}

impl WorkerSummary {
    /// Completed, and the last run exited successfully.
    pub fn succeeded(&self) -> bool {
        self.end == WorkerEnd::Completed && self.last.as_ref().is_some_and(|l| !l.failed())
    }
}

/// What [`Supervisor::wait_all`](crate::Supervisor::wait_all),
/// [`stop_all`](crate::Supervisor::stop_all) and
/// [`run_until_signal`](crate::Supervisor::run_until_signal) return.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// One entry per worker, in the order they ended.
    pub workers: Vec<WorkerSummary>,
}

impl Summary {
    /// Whether every worker completed successfully.
    pub fn all_succeeded(&self) -> bool {
        self.workers.iter().all(WorkerSummary::succeeded)
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for w in &self.workers {
            let last = match &w.last {
                Some(ExitInfo::Exited {
                    status,
                    duration,
                    report,
                }) => match report {
                    Some(r) => format!("{status} after {duration:.2?} ({})", r.message),
                    None => format!("{status} after {duration:.2?}"),
                },
                Some(ExitInfo::SetupFailed(e)) => format!("setup failed: {e}"),
                None => "never ran".into(),
            };
            writeln!(
                f,
                "{:<20} {:?} starts={} restarts={} last: {last}",
                w.name, w.end, w.starts, w.restarts
            )?;
        }
        Ok(())
    }
}
