//! The spawn path: prepare in the parent, clone on the blocking pool, wrap in a handle.

use crate::builder::{ContainerBuilder, Defaults};
use crate::error::{Error, Result};
use crate::{plan, Container};

/// Validates and prepares on the calling task, then runs the clone on tokio's blocking
/// pool: with `CLONE_VFORK` the cloning thread sleeps until the child has exec'd, which
/// must not stall a runtime worker.
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
    let (plan, pipes) = plan::prepare(b, defaults)?;
    // Shared with the Container below; if we fail or are cancelled first, the plan's
    // reference and this one drop and the cgroup is killed and removed.
    let cgroup = plan.resources.cgroup.clone();
    let guard = if plan.session.needs_long_lived_thread() {
        // Armed with PR_SET_PDEATHSIG: must be cloned from a thread that never retires
        // (`spawner.rs`).
        crate::spawner::run(plan).await?
    } else {
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
    tracing::debug!(pid, namespaces = %b.namespaces, program = ?b.program, "container spawned");
    Ok(c)
}
