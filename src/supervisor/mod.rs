//! `Supervisor`: many named workers in one process, each a container plus a restart policy.
//!
//! Each worker is a small tokio task that spawns its container, awaits it, reports what
//! happened as [`Event`]s, and asks its [`RestartPolicy`] (and the [`Hooks`]) what comes
//! next. A worker costs a task and the container's pidfd: no thread, so thousands fit.

mod hooks;
mod policy;

use std::collections::HashMap;
use std::fmt;
use std::pin::Pin;
use std::process::ExitStatus;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::Instrument;

pub use hooks::{Decision, Hooks};
pub use policy::{Backoff, RestartBudget, RestartPolicy};

use crate::{Container, ContainerBuilder, Error, RunReport, Signal};
use policy::{Next, Tracker};

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

/// How a worker's run ended, as passed to [`Hooks::after_exit`].
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
    /// Whether this counts as a failure for [`RestartPolicy::OnFailure`].
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

/// What [`Supervisor::wait_all`], [`stop_all`](Supervisor::stop_all) and
/// [`run_until_signal`](Supervisor::run_until_signal) return.
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
    name: Arc<str>,
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

struct Shared {
    events: Option<mpsc::UnboundedSender<Event>>,
    hooks: Option<Arc<dyn Hooks>>,
    grace: Duration,
    /// Set by a hook's [`Decision::Escalate`]: every worker stops.
    escalate: watch::Sender<bool>,
    /// Bounds how many containers run at once (see [`Supervisor::max_concurrent`]).
    slots: Option<Arc<tokio::sync::Semaphore>>,
}

impl Shared {
    fn emit(&self, ev: Event) {
        if let Some(tx) = &self.events {
            let _ = tx.send(ev);
        }
    }
}

struct Entry {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

/// Runs many containers from one process, with restart policies and graceful shutdown.
///
/// ```no_run
/// # async fn demo() -> cellblock::Result<()> {
/// use cellblock::{Backoff, Container, Namespaces, RestartPolicy, Supervisor, Worker};
/// use futures::StreamExt;
///
/// let mut sup = Supervisor::new();
/// let mut events = sup.events();
/// let mut b = Container::builder("/bin/sh");
/// b.args(["-c", "echo working; sleep 1"]).namespaces(Namespaces::PID);
/// sup.add(Worker::new("w1", b).policy(RestartPolicy::OnFailure { max_restarts: 3, backoff: Backoff::default() }))?;
/// tokio::spawn(async move {
///     while let Some(ev) = events.next().await {
///         println!("{ev:?}");
///     }
/// });
/// let summary = sup.run_until_signal().await; // all done, or SIGTERM/SIGINT stops everything
/// print!("{summary}");
/// # Ok(()) }
/// ```
pub struct Supervisor {
    shared: Option<Arc<Shared>>,
    events: Option<mpsc::UnboundedSender<Event>>,
    events_rx: Option<mpsc::UnboundedReceiver<Event>>,
    hooks: Option<Arc<dyn Hooks>>,
    grace: Duration,
    escalate: watch::Sender<bool>,
    slots: Option<Arc<tokio::sync::Semaphore>>,
    workers: HashMap<Arc<str>, Entry>,
    done_tx: mpsc::UnboundedSender<WorkerSummary>,
    done_rx: mpsc::UnboundedReceiver<WorkerSummary>,
    pending: usize,
}

impl Default for Supervisor {
    fn default() -> Self {
        Self::new()
    }
}

impl Supervisor {
    /// An empty supervisor with a 10 s grace period.
    pub fn new() -> Supervisor {
        let (tx, rx) = mpsc::unbounded_channel();
        let (done_tx, done_rx) = mpsc::unbounded_channel();
        Supervisor {
            shared: None,
            events: Some(tx),
            events_rx: Some(rx),
            hooks: None,
            grace: Duration::from_secs(10),
            escalate: watch::channel(false).0,
            slots: None,
            workers: HashMap::new(),
            done_tx,
            done_rx,
            pending: 0,
        }
    }

    /// How long a stopped worker gets between SIGTERM and SIGKILL. Set before adding.
    pub fn grace_period(&mut self, grace: Duration) -> &mut Self {
        self.grace = grace;
        self.shared = None;
        self
    }

    /// At most `n` containers of this supervisor run at once; further starts wait for a
    /// slot (a job queue). A worker holds its slot while its container runs, not while it
    /// waits out a backoff. Set before adding.
    pub fn max_concurrent(&mut self, n: usize) -> &mut Self {
        self.slots = Some(Arc::new(tokio::sync::Semaphore::new(n.max(1))));
        self.shared = None;
        self
    }

    /// Hooks run before each start and after each exit. Set before adding.
    pub fn hooks(&mut self, hooks: impl Hooks) -> &mut Self {
        self.hooks = Some(Arc::new(hooks));
        self.shared = None;
        self
    }

    /// The stream of [`Event`]s. Take it before adding workers (events are only recorded
    /// once it was taken, and only for the first taker). Dropping it is fine.
    pub fn events(&mut self) -> EventStream {
        self.shared = None;
        EventStream(
            self.events_rx
                .take()
                .unwrap_or_else(|| mpsc::unbounded_channel().1),
        )
    }

    fn shared(&mut self) -> Arc<Shared> {
        if self.shared.is_none() {
            let events = if self.events_rx.is_none() {
                self.events.clone()
            } else {
                None
            };
            self.shared = Some(Arc::new(Shared {
                events,
                hooks: self.hooks.clone(),
                grace: self.grace,
                escalate: self.escalate.clone(),
                slots: self.slots.clone(),
            }));
        }
        self.shared.clone().expect("set above")
    }

    /// Adds and starts a worker. Names must be unique among running workers.
    pub fn add(&mut self, worker: Worker) -> crate::Result<()> {
        if self
            .workers
            .get(&worker.name)
            .is_some_and(|e| !e.task.is_finished())
        {
            return Err(Error::Unsupported(format!(
                "a worker named {:?} is already running",
                worker.name
            )));
        }
        let shared = self.shared();
        let (stop_tx, stop_rx) = watch::channel(false);
        let done = self.done_tx.clone();
        let escalate_rx = self.escalate.subscribe();
        let span = tracing::info_span!("worker", name = %worker.name);
        let name = worker.name.clone();
        let task = tokio::spawn(
            async move {
                let summary = run_worker(worker, shared, stop_rx, escalate_rx).await;
                let _ = done.send(summary);
            }
            .instrument(span),
        );
        self.workers.insert(
            name,
            Entry {
                stop: stop_tx,
                task,
            },
        );
        self.pending += 1;
        Ok(())
    }

    /// Number of workers that have not ended yet (or whose end was not yet returned by
    /// [`wait_any`](Self::wait_any) / [`wait_all`](Self::wait_all)).
    pub fn pending(&self) -> usize {
        self.pending
    }

    /// Waits until some worker ends for good; `None` when none is left.
    pub async fn wait_any(&mut self) -> Option<WorkerSummary> {
        if self.pending == 0 {
            return None;
        }
        let s = self.done_rx.recv().await?;
        self.pending -= 1;
        // Forget the entry, unless the name was reused by a worker added since (the name's
        // Arc, shared by the entry key and the summary, tells the generations apart).
        if self
            .workers
            .get_key_value(&s.name)
            .is_some_and(|(k, _)| Arc::ptr_eq(k, &s.name))
        {
            self.workers.remove(&s.name);
        }
        Some(s)
    }

    /// Waits until every worker has ended for good.
    pub async fn wait_all(&mut self) -> Summary {
        let mut summary = Summary::default();
        while let Some(s) = self.wait_any().await {
            summary.workers.push(s);
        }
        summary
    }

    /// Stops one worker: SIGTERM, the grace period, SIGKILL; returns once it is reaped.
    /// Its summary is still returned by `wait_any`/`wait_all`.
    pub async fn stop(&mut self, name: &str) -> bool {
        let Some(entry) = self.workers.get_mut(name) else {
            return false;
        };
        let _ = entry.stop.send(true);
        let _ = (&mut entry.task).await;
        true
    }

    /// Stops every worker concurrently and waits for all of them.
    pub async fn stop_all(&mut self) -> Summary {
        tracing::info!(workers = self.workers.len(), "stopping all workers");
        for e in self.workers.values() {
            let _ = e.stop.send(true);
        }
        self.wait_all().await
    }

    /// Runs until every worker has ended, or until the process receives SIGTERM or SIGINT,
    /// which stops every worker gracefully. Returns the summary either way.
    pub async fn run_until_signal(&mut self) -> Summary {
        use tokio::signal::unix::{signal, SignalKind};
        let (mut term, mut int) = match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            (Ok(t), Ok(i)) => (t, i),
            _ => return self.wait_all().await,
        };
        let mut summary = Summary::default();
        loop {
            let sig = tokio::select! {
                s = self.wait_any() => {
                    let Some(s) = s else { return summary };
                    summary.workers.push(s);
                    continue;
                }
                _ = term.recv() => "SIGTERM",
                _ = int.recv() => "SIGINT",
            };
            tracing::info!(signal = sig, "shutdown signal received");
            let rest = self.stop_all().await;
            summary.workers.extend(rest.workers);
            return summary;
        }
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        // Workers hold their containers; stopping them lets each task kill and reap its
        // container. Without a runtime left to run them, the containers' own drop reaps.
        for e in self.workers.values() {
            let _ = e.stop.send(true);
        }
    }
}

/// The supervisor's events as a [`futures::Stream`].
#[derive(Debug)]
pub struct EventStream(mpsc::UnboundedReceiver<Event>);

impl futures::Stream for EventStream {
    type Item = Event;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        self.0.poll_recv(cx)
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

async fn run_worker(
    mut w: Worker,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
    mut escalate: watch::Receiver<bool>,
) -> WorkerSummary {
    let mut tracker = Tracker::default();
    let mut summary = WorkerSummary {
        name: w.name.clone(),
        starts: 0,
        restarts: 0,
        last: None,
        end: WorkerEnd::Completed,
    };
    let name = w.name.clone();
    let stop_set =
        |stop: &watch::Receiver<bool>, esc: &watch::Receiver<bool>| *stop.borrow() || *esc.borrow();
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        if stop_set(&stop, &escalate) {
            return stopped(&shared, summary, None);
        }
        if let Some(h) = &shared.hooks {
            if let Err(reason) = h.before_start(&name, attempt, &mut w.builder).await {
                tracing::warn!(%reason, "before_start hook refused the start");
                shared.emit(Event::GaveUp {
                    name: name.clone(),
                    reason: reason.clone(),
                });
                summary.end = WorkerEnd::GaveUp(reason);
                return summary;
            }
        }
        // Wait for a slot if the supervisor bounds concurrency (stop still works meanwhile).
        let _slot = match &shared.slots {
            None => None,
            Some(sem) => tokio::select! {
                p = sem.clone().acquire_owned() => p.ok(),
                _ = stop_requested(&mut stop, &mut escalate) => None,
            },
        };
        if stop_set(&stop, &escalate) {
            return stopped(&shared, summary, None);
        }
        let started = Instant::now();
        let info = match w.builder.spawn().await {
            Err(e) => {
                tracing::warn!(attempt, error = %e, "setup failed");
                let e = Arc::new(e);
                shared.emit(Event::SetupFailed {
                    name: name.clone(),
                    attempt,
                    error: e.clone(),
                });
                ExitInfo::SetupFailed(e)
            }
            Ok(mut c) => {
                summary.starts += 1;
                let pid = c.pid();
                let span = tracing::info_span!("container", name = %name, id = attempt, pid);
                let _enter = span.enter();
                tracing::info!("spawned");
                shared.emit(Event::Started {
                    name: name.clone(),
                    attempt,
                    pid,
                });
                drop(_enter);
                let status = tokio::select! {
                    s = c.wait_with_report() => s,
                    _ = stop_requested(&mut stop, &mut escalate) => {
                        let status = terminate(&mut c, shared.grace).instrument(span.clone()).await;
                        span.in_scope(|| tracing::info!(?status, "stopped"));
                        summary.last = status.map(|status| ExitInfo::Exited { status, duration: started.elapsed(), report: None });
                        return stopped(&shared, summary, status);
                    }
                };
                let duration = started.elapsed();
                match status {
                    Ok(report) => {
                        let status = report.status;
                        let report = Arc::new(report);
                        span.in_scope(|| {
                            tracing::info!(
                                code = status.code(),
                                signal = std::os::unix::process::ExitStatusExt::signal(&status),
                                ?duration,
                                "exited"
                            )
                        });
                        shared.emit(Event::Exited {
                            name: name.clone(),
                            attempt,
                            status,
                            duration,
                            report: report.clone(),
                        });
                        ExitInfo::Exited {
                            status,
                            duration,
                            report: Some(report),
                        }
                    }
                    Err(e) => {
                        let e = Arc::new(e);
                        shared.emit(Event::SetupFailed {
                            name: name.clone(),
                            attempt,
                            error: e.clone(),
                        });
                        ExitInfo::SetupFailed(e)
                    }
                }
            }
        };
        drop(_slot);
        let failed = info.failed();
        let decision = match &shared.hooks {
            Some(h) => h.after_exit(&name, &info).await,
            None => Decision::FollowPolicy,
        };
        summary.last = Some(info);
        let next = match decision {
            Decision::FollowPolicy => {
                tracker.next(&w.policy, w.budget.as_ref(), failed, Instant::now())
            }
            Decision::Restart(delay) => Next::Restart(delay),
            Decision::Stop => Next::Done,
            Decision::Escalate(reason) => {
                tracing::error!(%reason, "hook escalated: stopping every worker");
                let _ = shared.escalate.send(true);
                Next::GiveUp(format!("escalated: {reason}"))
            }
        };
        match next {
            Next::Done => {
                summary.end = WorkerEnd::Completed;
                return summary;
            }
            Next::GiveUp(reason) => {
                tracing::warn!(%reason, "giving up");
                shared.emit(Event::GaveUp {
                    name: name.clone(),
                    reason: reason.clone(),
                });
                summary.end = WorkerEnd::GaveUp(reason);
                return summary;
            }
            Next::Restart(delay) => {
                summary.restarts += 1;
                tracing::info!(attempt = attempt + 1, ?delay, "restarting");
                shared.emit(Event::Restarting {
                    name: name.clone(),
                    attempt: attempt + 1,
                    delay,
                });
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = stop_requested(&mut stop, &mut escalate) => {}
                }
            }
        }
    }
}
