//! The spawn path: prepare in the parent, clone on the blocking pool, wrap in a handle.

use crate::builder::{ContainerBuilder, Defaults};
use crate::error::{Error, Result};
use crate::{plan, Container};

/// Validates and prepares on the calling task, then runs the clone where it costs the
/// fewest thread hops without stalling the runtime: with `CLONE_VFORK` the cloning thread
/// sleeps until the child has exec'd, which must not hold up a runtime worker's queue.
///
/// Cancellation is safe: if this future is dropped while the clone runs, the child is
/// handed to the background reaper (killed and reaped) by `ChildGuard`'s drop.
pub(crate) async fn spawn(b: &ContainerBuilder, defaults: Defaults) -> Result<Container> {
    // At most SPAWN_SLOTS spawns are prepared and waiting for a cloning thread at once. A
    // clone keeps a CPU busy until the child execs, so more in flight buys no speed; but
    // every waiting one holds a prepared plan (C strings, descriptors), and a supervisor
    // starting thousands of workers at once would otherwise keep thousands of plans
    // alive at the same time: freed afterwards, but the allocator keeps the high water
    // mark as RSS (measured with 3,000 sleeping containers started at once under a Supervisor:
    // 17.9 KiB of supervisor RSS per container without this bound, 12.4 KiB with it).
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
    // Shared with the Container below; if we fail or are cancelled first, the plan's
    // reference and this one drop and the cgroup is killed and removed.
    let cgroup = plan.limits.cgroup.clone();
    let guard = if plan.session.needs_long_lived_thread() {
        // Armed with PR_SET_PDEATHSIG: must be cloned from a thread that never retires
        // (`spawner.rs`).
        if on_multi_thread_worker() {
            // Wait for the spawner thread synchronously, after handing this worker's run
            // queue to another thread: the spawner then wakes this thread directly instead
            // of waking the task through the scheduler (with the spawner queue waking one
            // thread per job: ~2 context switches fewer per spawn, 24.1k -> 19.9k over
            // 1,800 bare spawns + 1,800 raw clones). The clone still happens on the spawner
            // thread.
            tokio::task::block_in_place(move || crate::spawner::run_blocking(plan))?
        } else {
            crate::spawner::run(plan).await?
        }
    } else if on_multi_thread_worker() {
        // Clone right here, after handing this worker's run queue to another thread: the
        // clone sleeps (vfork) until the child execs, but the runtime's other tasks go on
        // meanwhile, and this task saves two cross-thread wakeups (to a blocking-pool
        // thread and back), which on an idle VM CPU cost tens of microseconds each.
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
    let pid = guard.pid;
    let mut c = Container::new(pid, guard.into_pidfd(), b, pipes)
        .map_err(Error::io("registering the container"))?;
    c.run = crate::report::RunState::start(started, cgroup, &b.limits, c.pidfd());
    c.run.hold_identity(identity);
    tracing::debug!(pid, namespaces = %b.namespaces, program = ?b.program, "container spawned");
    Ok(c)
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
