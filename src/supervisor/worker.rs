//! A worker: one container, started again and again as its restart policy (and the hooks)
//! say, as one tokio task ([`run_worker`]).

use std::process::ExitStatus;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch, OwnedSemaphorePermit};
use tokio::time::Instant;
use tracing::Instrument;

use super::policy::{Next, Tracker};
use super::{
    Decision, Event, ExitInfo, Hooks, RestartBudget, RestartPolicy, WorkerEnd, WorkerSummary,
};
use crate::{Container, ContainerBuilder, Signal};

/// A worker to add: a container configuration, a restart policy, an optional budget.
///
/// ```
/// use std::time::Duration;
/// use cellblock::{Backoff, Container, RestartBudget, RestartPolicy, Worker};
/// let w = Worker::new("api", Container::builder("/bin/sleep").arg("100").clone())
///     .policy(RestartPolicy::Always { backoff: Backoff::default() })
///     .budget(RestartBudget::new(5, Duration::from_secs(60)));
/// ```
#[derive(Debug, Clone)]
pub struct Worker {
    pub(super) name: Arc<str>,
    builder: ContainerBuilder,
    policy: RestartPolicy,
    budget: Option<RestartBudget>,
}

impl Worker {
    /// A worker named `name` running `builder`, started once ([`RestartPolicy::Never`]).
    pub fn new(name: impl Into<String>, builder: ContainerBuilder) -> Worker {
        Worker {
            name: name.into().into(),
            builder,
            policy: RestartPolicy::Never,
            budget: None,
        }
    }

    /// The restart policy.
    pub fn policy(mut self, policy: RestartPolicy) -> Worker {
        self.policy = policy;
        self
    }

    /// A restart budget: give up after more than N restarts within T.
    pub fn budget(mut self, budget: RestartBudget) -> Worker {
        self.budget = Some(budget);
        self
    }
}

/// What every worker of a supervisor reads: its settings and where to report. Built from
/// the supervisor's settings when a worker is added; workers added under the same settings
/// share one (see `Supervisor::settings_changed`).
pub(super) struct Shared {
    pub(super) events: Option<mpsc::UnboundedSender<Event>>,
    pub(super) hooks: Option<Arc<dyn Hooks>>,
    pub(super) grace: Duration,
    /// Set by a hook's [`Decision::Escalate`]: every worker stops.
    pub(super) escalate: watch::Sender<bool>,
    /// Bounds how many containers run at once (see [`Supervisor::max_concurrent`](super::Supervisor::max_concurrent)).
    pub(super) slots: Option<Arc<tokio::sync::Semaphore>>,
}

impl Shared {
    pub(super) fn emit(&self, ev: Event) {
        if let Some(tx) = &self.events {
            let _ = tx.send(ev);
        }
    }
}

/// Resolves once the flag is set (or its sender is gone, which also means "stop").
async fn set(flag: &mut watch::Receiver<bool>) {
    let _ = flag.wait_for(|s| *s).await;
}

/// Resolves once this worker is to stop: its own stop flag, or a hook's escalation.
async fn stop_requested(stop: &mut watch::Receiver<bool>, escalate: &mut watch::Receiver<bool>) {
    tokio::select! {
        _ = set(stop) => {}
        _ = set(escalate) => {}
    }
}

/// Ends a worker that was stopped: emits [`Event::Stopped`] with `status` (that of the
/// container it stopped, if one was running).
fn stopped(
    shared: &Shared,
    mut summary: WorkerSummary,
    status: Option<ExitStatus>,
) -> WorkerSummary {
    shared.emit(Event::Stopped {
        name: summary.name.clone(),
        status,
    });
    summary.end = WorkerEnd::Stopped;
    summary
}

/// Sends SIGTERM, waits up to `grace`, then SIGKILL; reaps. Returns the exit status.
async fn terminate(c: &mut Container, grace: Duration) -> Option<ExitStatus> {
    let _ = c.signal(Signal::SIGTERM);
    match tokio::time::timeout(grace, c.wait()).await {
        Ok(r) => r.ok(),
        Err(_) => {
            tracing::debug!(pid = c.pid(), "grace period over, SIGKILL");
            let _ = c.start_kill();
            c.wait().await.ok()
        }
    }
}

/// A worker's task: starts its container, awaits it, asks the hooks and the policy what
/// next, until the policy is done, gives up, or the worker is stopped. Returns its summary.
pub(super) async fn run_worker(
    w: Worker,
    shared: Arc<Shared>,
    stop: watch::Receiver<bool>,
    escalate: watch::Receiver<bool>,
) -> WorkerSummary {
    let summary = WorkerSummary {
        name: w.name.clone(),
        starts: 0,
        restarts: 0,
        last: None,
        end: WorkerEnd::Completed,
    };
    let mut run = Run {
        w,
        shared,
        stop,
        escalate,
        tracker: Tracker::default(),
        summary,
        attempt: 0,
    };
    loop {
        run.attempt += 1;
        if run.stop_is_set() {
            return run.stopped(None);
        }
        if let Err(reason) = run.before_start().await {
            tracing::warn!(%reason, "before_start hook refused the start");
            return run.give_up(reason);
        }
        // Held while the container runs, not while a backoff is waited out.
        let slot = run.wait_for_slot().await;
        if run.stop_is_set() {
            return run.stopped(None);
        }
        let info = match run.start_and_wait().await {
            Ok(info) => info,
            Err(StoppedWhileRunning(status)) => return run.stopped(status),
        };
        drop(slot);
        match run.next(info).await {
            Next::Done => {
                run.summary.end = WorkerEnd::Completed;
                return run.summary;
            }
            Next::GiveUp(reason) => {
                tracing::warn!(%reason, "giving up");
                return run.give_up(reason);
            }
            Next::Restart(delay) => run.restart_after(delay).await,
        }
    }
}

/// The state of one worker's task.
struct Run {
    w: Worker,
    shared: Arc<Shared>,
    stop: watch::Receiver<bool>,
    escalate: watch::Receiver<bool>,
    tracker: Tracker,
    summary: WorkerSummary,
    /// 1 for the first start, 2 for the first restart, …
    attempt: u32,
}

/// The worker was stopped while its container ran: how the container ended, if it was
/// reaped.
struct StoppedWhileRunning(Option<ExitStatus>);

impl Run {
    fn stop_is_set(&self) -> bool {
        *self.stop.borrow() || *self.escalate.borrow()
    }

    /// Ends the worker as stopped (see [`stopped`]).
    fn stopped(self, status: Option<ExitStatus>) -> WorkerSummary {
        stopped(&self.shared, self.summary, status)
    }

    /// Ends the worker as given up: emits [`Event::GaveUp`].
    fn give_up(mut self, reason: String) -> WorkerSummary {
        self.shared.emit(Event::GaveUp {
            name: self.w.name.clone(),
            reason: reason.clone(),
        });
        self.summary.end = WorkerEnd::GaveUp(reason);
        self.summary
    }

    /// The `before_start` hook, if any: it may change the builder, or refuse the start.
    async fn before_start(&mut self) -> Result<(), String> {
        match &self.shared.hooks {
            Some(h) => {
                h.before_start(&self.w.name, self.attempt, &mut self.w.builder)
                    .await
            }
            None => Ok(()),
        }
    }

    /// A slot, if the supervisor bounds concurrency (stop still works meanwhile).
    async fn wait_for_slot(&mut self) -> Option<OwnedSemaphorePermit> {
        match &self.shared.slots {
            None => None,
            Some(sem) => tokio::select! {
                p = sem.clone().acquire_owned() => p.ok(),
                _ = stop_requested(&mut self.stop, &mut self.escalate) => None,
            },
        }
    }

    /// Spawns the container and waits for it, emitting `Started` and then `Exited` (or
    /// `SetupFailed`). A stop meanwhile terminates it (SIGTERM, grace, SIGKILL).
    async fn start_and_wait(&mut self) -> Result<ExitInfo, StoppedWhileRunning> {
        let name = self.w.name.clone();
        let attempt = self.attempt;
        let started = Instant::now();
        let mut c = match self.w.builder.spawn().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(attempt, error = %e, "setup failed");
                return Ok(self.setup_failed(Arc::new(e)));
            }
        };
        self.summary.starts += 1;
        let pid = c.pid();
        let span = tracing::info_span!("container", name = %name, id = attempt, pid);
        let _enter = span.enter();
        tracing::info!("spawned");
        self.shared.emit(Event::Started {
            name: name.clone(),
            attempt,
            pid,
        });
        drop(_enter);
        let status = tokio::select! {
            s = c.wait_with_report() => s,
            _ = stop_requested(&mut self.stop, &mut self.escalate) => {
                let status = terminate(&mut c, self.shared.grace).instrument(span.clone()).await;
                span.in_scope(|| tracing::info!(?status, "stopped"));
                self.summary.last = status.map(|status| ExitInfo::Exited { status, duration: started.elapsed(), report: None });
                return Err(StoppedWhileRunning(status));
            }
        };
        let duration = started.elapsed();
        let report = match status {
            Ok(report) => Arc::new(report),
            Err(e) => return Ok(self.setup_failed(Arc::new(e))),
        };
        let status = report.status;
        span.in_scope(|| {
            tracing::info!(
                code = status.code(),
                signal = std::os::unix::process::ExitStatusExt::signal(&status),
                ?duration,
                "exited"
            )
        });
        self.shared.emit(Event::Exited {
            name,
            attempt,
            status,
            duration,
            report: report.clone(),
        });
        Ok(ExitInfo::Exited {
            status,
            duration,
            report: Some(report),
        })
    }

    /// Emits [`Event::SetupFailed`]; the run's [`ExitInfo`].
    fn setup_failed(&self, e: Arc<crate::Error>) -> ExitInfo {
        self.shared.emit(Event::SetupFailed {
            name: self.w.name.clone(),
            attempt: self.attempt,
            error: e.clone(),
        });
        ExitInfo::SetupFailed(e)
    }

    /// What comes after a run: the `after_exit` hook's decision, or else the policy's
    /// (within the budget). A hook's escalation stops every worker of the supervisor.
    async fn next(&mut self, info: ExitInfo) -> Next {
        let failed = info.failed();
        let decision = match &self.shared.hooks {
            Some(h) => h.after_exit(&self.w.name, &info).await,
            None => Decision::FollowPolicy,
        };
        self.summary.last = Some(info);
        match decision {
            Decision::FollowPolicy => self.tracker.next(
                &self.w.policy,
                self.w.budget.as_ref(),
                failed,
                Instant::now(),
            ),
            Decision::Restart(delay) => Next::Restart(delay),
            Decision::Stop => Next::Done,
            Decision::Escalate(reason) => {
                tracing::error!(%reason, "hook escalated: stopping every worker");
                let _ = self.shared.escalate.send(true);
                Next::GiveUp(format!("escalated: {reason}"))
            }
        }
    }

    /// Emits [`Event::Restarting`] and waits out the backoff (a stop cuts it short).
    async fn restart_after(&mut self, delay: Duration) {
        self.summary.restarts += 1;
        tracing::info!(attempt = self.attempt + 1, ?delay, "restarting");
        self.shared.emit(Event::Restarting {
            name: self.w.name.clone(),
            attempt: self.attempt + 1,
            delay,
        });
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = stop_requested(&mut self.stop, &mut self.escalate) => {}
        }
    }
}
