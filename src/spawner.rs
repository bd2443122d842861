//! Long-lived spawner threads, for containers that die with the supervisor through
//! `PR_SET_PDEATHSIG`.
//!
//! The parent-death signal fires when the *thread* that cloned the child exits, not the
//! process. tokio's blocking-pool threads retire after ~10 s idle, so a container cloned
//! from one and armed with PDEATHSIG would be killed at a random later time. Containers
//! without an init (no PID namespace, or `init(false)`) are therefore cloned by a few
//! threads that are started once and never exit: their death is the process's death.
//! Containers with an init are cloned from tokio's blocking pool as before; their init
//! watches the lifeline pipe instead (`init.rs`).
//!
//! Cost: one channel hop to a parked thread and back, the same kind of hop as
//! `spawn_blocking` (see benches/init.rs for the figures).

use std::sync::mpsc as std_mpsc;
use std::sync::{Mutex, OnceLock};

use tokio::sync::oneshot;

use crate::error::{Error, Result};
use crate::plan::Plan;
use crate::reaper::ChildGuard;

type Job = (Plan, oneshot::Sender<Result<ChildGuard>>);

/// Runs `plan` on a thread that lives as long as the process.
///
/// Cancellation is safe: if the caller stops waiting, the `ChildGuard` is dropped with the
/// unsent result, which kills and reaps the child.
pub(crate) async fn run(plan: Plan) -> Result<ChildGuard> {
    let (tx, rx) = oneshot::channel();
    queue()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .send((plan, tx))
        .map_err(|_| Error::Io {
            context: "handing the spawn to a spawner thread",
            source: std::io::Error::other("spawner threads are gone"),
        })?;
    rx.await.map_err(|_| Error::Io {
        context: "joining the spawner thread",
        source: std::io::Error::other("spawner thread dropped the spawn"),
    })?
}

/// Starts the spawner threads if they are not running yet.
pub(crate) fn start() {
    queue();
}

fn queue() -> &'static Mutex<std_mpsc::Sender<Job>> {
    static QUEUE: OnceLock<Mutex<std_mpsc::Sender<Job>>> = OnceLock::new();
    QUEUE.get_or_init(|| {
        let (tx, rx) = std_mpsc::channel::<Job>();
        let rx = std::sync::Arc::new(Mutex::new(rx));
        // As many cloning threads as CPUs (at least 2): a clone keeps its thread asleep
        // only until the child execs, so more would not add throughput.
        let n = std::thread::available_parallelism()
            .map_or(2, |n| n.get())
            .max(2);
        for i in 0..n {
            let rx = rx.clone();
            let _ = std::thread::Builder::new()
                .name(format!("cellblock-spawner-{i}"))
                .spawn(move || loop {
                    let job = rx.lock().unwrap_or_else(|e| e.into_inner()).recv();
                    let Ok((plan, reply)) = job else { return };
                    let _ = reply.send(plan.run());
                })
                // If no thread can be started, the receiver is dropped with the last
                // clone and `run` reports the failure as an error instead of a panic.
                .ok();
        }
        Mutex::new(tx)
    })
}
