//! `Supervisor`: many named workers in one process, each a container plus a restart policy.
//!
//! Each worker is a small tokio task that spawns its container, awaits it, reports what
//! happened as [`Event`]s, and asks its [`RestartPolicy`] (and the [`Hooks`]) what comes
//! next. A worker costs a task and the container's pidfd: no thread, so thousands fit.

mod events;
mod hooks;
mod policy;
mod worker;

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tracing::Instrument;

pub use events::{Event, ExitInfo, Summary, WorkerEnd, WorkerSummary};
pub use hooks::{Decision, Hooks};
pub use policy::{Backoff, RestartBudget, RestartPolicy};
pub use worker::Worker;

use crate::Error;
use worker::{run_worker, Shared};

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
    /// Built from the settings below by the first `add` after a change of one of them
    /// ([`settings_changed`](Self::settings_changed)).
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
        self.settings_changed();
        self
    }

    /// At most `n` containers of this supervisor run at once; further starts wait for a
    /// slot (a job queue). A worker holds its slot while its container runs, not while it
    /// waits out a backoff. Set before adding.
    pub fn max_concurrent(&mut self, n: usize) -> &mut Self {
        self.slots = Some(Arc::new(tokio::sync::Semaphore::new(n.max(1))));
        self.settings_changed();
        self
    }

    /// Hooks run before each start and after each exit. Set before adding.
    pub fn hooks(&mut self, hooks: impl Hooks) -> &mut Self {
        self.hooks = Some(Arc::new(hooks));
        self.settings_changed();
        self
    }

    /// The stream of [`Event`]s. Take it before adding workers (events are only recorded
    /// once it was taken, and only for the first taker). Dropping it is fine.
    pub fn events(&mut self) -> EventStream {
        self.settings_changed();
        EventStream(
            self.events_rx
                .take()
                .unwrap_or_else(|| mpsc::unbounded_channel().1),
        )
    }

    /// A setting the workers read (grace period, slots, hooks, events) changed: workers
    /// added from now on get a new [`Shared`]; those added before keep the one they have.
    /// Every setter calls this.
    fn settings_changed(&mut self) {
        self.shared = None;
    }

    /// The [`Shared`] for a worker being added: the one built since the last change of a
    /// setting, or a new one from the current settings.
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
