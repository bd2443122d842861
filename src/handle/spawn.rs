//! The spawn path: prepare in the parent, clone on the blocking pool, wrap in a handle.

use std::future::Future;
use std::process::ExitStatus;

use crate::builder::{ContainerBuilder, Defaults};
use crate::error::{Error, Result};
#[cfg(doc)]
use crate::EndReason;
use crate::{plan, Container, Output, RunReport, Stdio};

/// Validates and prepares on the calling task, then runs the clone where it costs the
/// fewest thread hops without stalling the runtime: with `CLONE_VFORK` the cloning thread
/// sleeps until the child has exec'd, which must not hold up a runtime worker's queue.
///
/// Cancellation is safe: if this future is dropped while the clone runs, the child is
/// handed to the background reaper (killed and reaped) by `ChildGuard`'s drop.
pub(crate) async fn spawn(b: &ContainerBuilder, defaults: Defaults) -> Result<Container> {
    spawn_gated(b, defaults).await.map(|(c, _)| c)
}

/// [`spawn`], also returning what starting a created child (`create`) needs.
pub(crate) async fn spawn_gated(
    b: &ContainerBuilder,
    defaults: Defaults,
) -> Result<(Container, Option<crate::plan::Gated>)> {
    // The network (net/): namespaces made (or taken from the pool) and configured in the
    // parent, joined by the child like any other join. Before the spawn slot: making a
    // namespace may itself create a (helper) container, which takes a slot of its own.
    match crate::net::prepare::prepare(b).await? {
        Some((nb, attached)) => spawn_prepared(&nb, defaults, Some(attached)).await,
        None => spawn_prepared(b, defaults, None).await,
    }
}

/// [`spawn_gated`] once the network is prepared (`network`: what the container holds of
/// it until reaped).
pub(crate) async fn spawn_prepared(
    b: &ContainerBuilder,
    defaults: Defaults,
    network: Option<crate::net::prepare::Attached>,
) -> Result<(Container, Option<crate::plan::Gated>)> {
    // At most SPAWN_SLOTS spawns are prepared and waiting for a cloning thread at once. A
    // clone keeps a CPU busy until the child execs, so more in flight buys no speed; but
    // every waiting one holds a prepared plan (C strings, descriptors), and a supervisor
    // starting thousands of workers at once would otherwise keep thousands of plans
    // alive at the same time: freed afterwards, but the allocator keeps the high water
    // mark as RSS.
    static SPAWN_SLOTS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(64);
    let _slot = SPAWN_SLOTS.acquire().await.map_err(|e| Error::Io {
        context: "waiting for a spawn slot",
        source: std::io::Error::other(e),
    })?;
    let started = std::time::Instant::now();
    // The default identity (plan/user): the builder really spawned, and the block of host
    // ids its user namespace maps, held until the container has been reaped.
    let adjusted;
    let (b, identity) = match crate::plan::user::default_identity(b)? {
        Some((nb, lease)) => {
            adjusted = nb;
            (&adjusted, lease)
        }
        None => (b, None),
    };
    let (plan, pipes) = plan::prepare(b, defaults)?;
    // The spawner threads (one per CPU) start with the first spawn that needs them, not
    // before: a short-lived program whose containers need none (the OCI runtime's, which
    // outlive it) would pay for creating them at every call, one per CPU of the host.
    // Shared with the Container below; if we fail or are cancelled first, the plan's
    // reference and this one drop and the cgroup is killed and removed.
    let cgroup = plan.limits.cgroup.clone();
    let guard = if plan.session.needs_long_lived_thread() {
        // Armed with PR_SET_PDEATHSIG: must be cloned from a thread that never retires
        // (`spawner.rs`).
        if on_multi_thread_worker() {
            // Wait for the spawner thread synchronously, after handing this worker's run
            // queue to another thread: the spawner then wakes this thread directly instead
            // of waking the task through the scheduler, which saves context switches on
            // every spawn. The clone still happens on the spawner thread.
            tokio::task::block_in_place(move || super::spawner::run_blocking(plan))?
        } else {
            super::spawner::run(plan).await?
        }
    } else if on_multi_thread_worker() {
        // Clone right here, after handing this worker's run queue to another thread: the
        // clone sleeps (vfork) until the child execs, but the runtime's other tasks go on
        // meanwhile, and this task saves two cross-thread wakeups (to a blocking-pool
        // thread and back), each of which may have to wake an idle CPU.
        // Sound for these containers only: their init watches the lifeline, so it does
        // not matter that this thread may retire later (see spawner.rs for PDEATHSIG).
        tokio::task::block_in_place(move || plan.run())?
    } else {
        // A current_thread runtime (where block_in_place panics), or the thread of a
        // multi-thread runtime's `block_on`, which is not a worker.
        tokio::task::spawn_blocking(move || plan.run())
            .await
            .map_err(|e| Error::Io {
                context: "joining the spawn task",
                source: std::io::Error::other(e),
            })??
    };
    let mut guard = guard;
    let gated = guard.gated.take();
    let pid = guard.pid;
    let mut c = Container::new(pid, guard.into_pidfd(), b, pipes)
        .map_err(Error::io("registering the container"))?;
    c.run = super::report::RunState::start(started, cgroup, &b.limits, c.pidfd());
    c.run.hold_identity(identity);
    c.run.hold_network(network);
    tracing::debug!(pid, namespaces = %b.namespaces, program = ?b.program, "container spawned");
    Ok((c, gated))
}

/// Whether this is a worker thread of a multi-thread runtime, where
/// `tokio::task::block_in_place` hands the worker's queue to another thread and runs the
/// closure here. Anywhere else it either panics (current_thread runtimes, `LocalSet`s) or
/// gains nothing.
fn on_multi_thread_worker() -> bool {
    tokio::runtime::worker_index().is_some()
        && tokio::runtime::Handle::try_current()
            .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread)
}

/// The verbs that start a container live here, beside the code that starts it: the
/// builder itself (`builder/`) holds plain data and does not depend on the handle side.
impl ContainerBuilder {
    /// Validates the configuration and starts the container.
    ///
    /// Returns once the workload's program has been exec'd (or with the error that kept
    /// it from starting: bad configuration, the kernel refusing the namespaces, or a
    /// failed setup stage inside the child).
    ///
    /// Unlike tokio's `Command::spawn` this is async: the clone must not stall a runtime
    /// worker. **Cancellation:** dropping the future is safe (a half-made child is killed
    /// and reaped), but on a multi-thread runtime's worker the clone runs inside the poll
    /// that reaches it (`block_in_place`), so a `tokio::time::timeout` around `spawn()`
    /// cannot interrupt the clone itself; it fires at the next poll. Waiting for one of the
    /// 64 spawn slots is cancellable.
    pub async fn spawn(&mut self) -> Result<Container> {
        spawn(self, Defaults::Spawn).await
    }

    /// Runs the container to completion and returns its exit status. Stdio defaults to
    /// inherit.
    ///
    /// As in tokio, our ends of any piped stream are closed right after the spawn (nobody
    /// could read them): a workload writing to a piped stdout or stderr gets `EPIPE` (or
    /// SIGPIPE) instead of blocking forever on a full pipe, and one reading a piped stdin
    /// sees EOF.
    ///
    /// The future owns a copy of the configuration and does not borrow the builder, so
    /// it can be made from a temporary and awaited later (or spawned as a task):
    ///
    /// ```no_run
    /// # async fn demo() -> cellblock::Result<()> {
    /// use cellblock::Container;
    /// let fut = Container::builder("/bin/true").status();
    /// assert!(fut.await?.success());
    /// # Ok(()) }
    /// ```
    pub fn status(&mut self) -> impl Future<Output = Result<ExitStatus>> + Send + 'static {
        let b = self.clone();
        async move {
            let mut c = spawn(&b, Defaults::Spawn).await?;
            c.run.skip_report();
            drop(c.take_stdin());
            drop(c.take_stdout());
            drop(c.take_stderr());
            c.wait().await
        }
    }

    /// Runs the container to completion, collecting stdout and stderr.
    ///
    /// As in tokio, stdout and stderr are **always** piped and captured here, whatever
    /// [`stdout`](Self::stdout)/[`stderr`](Self::stderr) set; stdin defaults to null (a set
    /// stdin is kept). With [`merge_stderr`](crate::ContainerBuilder::merge_stderr) both
    /// streams arrive in `stdout`.
    ///
    /// The future owns a copy of the configuration and does not borrow the builder:
    ///
    /// ```no_run
    /// # async fn demo() -> cellblock::Result<()> {
    /// use cellblock::Container;
    /// let fut = Container::builder("/bin/echo").arg("x").output();
    /// assert_eq!(fut.await?.stdout, b"x\n");
    /// # Ok(()) }
    /// ```
    pub fn output(&mut self) -> impl Future<Output = Result<Output>> + Send + 'static {
        let mut b = self.clone();
        b.stdout = Some(Stdio::piped());
        b.stderr = Some(Stdio::piped());
        async move {
            let mut c = spawn(&b, Defaults::Output).await?;
            c.run.skip_report();
            c.wait_with_output().await
        }
    }

    /// [`output`](Self::output) with a [`RunReport`].
    ///
    /// A failure of the child's setup (between clone and execve) is reported here, not
    /// returned as an error: the report says [`EndReason::SetupFailed`] with the stage and
    /// errno, the status is exit code 127, the output is empty. Configuration errors, and
    /// anything else that kept the container from being created, are still `Err`.
    pub async fn output_with_report(&mut self) -> Result<(Output, RunReport)> {
        let started = std::time::Instant::now();
        match spawn(self, Defaults::Output).await {
            Ok(c) => c.wait_with_output_and_report().await,
            Err(Error::Setup { stage, errno }) => Ok(super::report::setup_failed(
                started,
                self.limits.wants_cgroup(),
                stage,
                errno,
            )),
            Err(e) => Err(e),
        }
    }
}
