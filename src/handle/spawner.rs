//! Long-lived spawner threads, for containers that die with the supervisor through
//! `PR_SET_PDEATHSIG`.
//!
//! The parent-death signal fires when the *thread* that cloned the child exits, not the
//! process. tokio's blocking-pool threads retire after ~10 s idle (and its worker threads
//! end with their runtime, or hand their role to a blocking thread in `block_in_place`),
//! so a container cloned from one and armed with PDEATHSIG would be killed at a random
//! later time. Containers without an init (no PID namespace, or `init(false)`) are
//! therefore cloned by a few threads that are started once and never exit: their death is
//! the process's death. Containers with an init are cloned from the spawning task's own
//! thread or tokio's blocking pool (`spawn.rs`); their init watches its lifeline instead,
//! a pidfd of the supervisor process (`init.rs`).
//!
//! Cost: one hop to a parked thread and back. The queue is a mutex-protected deque with a
//! condition variable, so a job wakes exactly one idle thread. (Not a shared
//! `std::sync::mpsc::Receiver` behind a mutex: the thread blocked in `recv` would hold the
//! mutex, and every job would also wake a second spawner thread queued on that mutex.)

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, OnceLock};

use tokio::sync::oneshot;

use super::reaper::ChildGuard;
use crate::error::{Error, Result};
use crate::plan::Plan;

type Job = (Plan, Reply);

/// Where a spawner thread sends the result.
enum Reply {
    /// To an awaiting task.
    Task(oneshot::Sender<Result<ChildGuard>>),
    /// To a thread blocked in [`run_blocking`].
    Thread(std::sync::mpsc::SyncSender<Result<ChildGuard>>),
}

struct Queue {
    jobs: Mutex<VecDeque<Job>>,
    ready: Condvar,
    /// How many spawner threads could be started (0: none, every `run` fails).
    threads: AtomicUsize,
}

/// Runs `plan` on a thread that lives as long as the process.
///
/// Cancellation is safe: if the caller stops waiting, the `ChildGuard` is dropped with the
/// unsent result, which kills and reaps the child.
pub(crate) async fn run(plan: Plan) -> Result<ChildGuard> {
    let (tx, rx) = oneshot::channel();
    submit(plan, Reply::Task(tx))?;
    rx.await.map_err(|_| dropped())?
}

/// [`run`] for a thread that may block (inside `tokio::task::block_in_place`): the
/// spawner thread wakes this one directly when the child has exec'd, instead of going
/// through the runtime's scheduler to wake a task.
pub(crate) fn run_blocking(plan: Plan) -> Result<ChildGuard> {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    submit(plan, Reply::Thread(tx))?;
    rx.recv().map_err(|_| dropped())?
}

fn submit(plan: Plan, reply: Reply) -> Result<()> {
    let q = queue();
    if q.threads.load(Ordering::Relaxed) == 0 {
        return Err(Error::Io {
            context: "handing the spawn to a spawner thread",
            source: std::io::Error::other("no spawner thread could be started"),
        });
    }
    q.jobs
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push_back((plan, reply));
    q.ready.notify_one();
    Ok(())
}

fn dropped() -> Error {
    Error::Io {
        context: "joining the spawner thread",
        source: std::io::Error::other("spawner thread dropped the spawn"),
    }
}

fn queue() -> &'static Queue {
    static QUEUE: OnceLock<Queue> = OnceLock::new();
    static STARTED: OnceLock<()> = OnceLock::new();
    let q = QUEUE.get_or_init(|| Queue {
        jobs: Mutex::new(VecDeque::new()),
        ready: Condvar::new(),
        threads: AtomicUsize::new(0),
    });
    STARTED.get_or_init(|| {
        // As many cloning threads as CPUs (at least 2): a clone keeps its thread asleep
        // only until the child execs, so more would not add throughput.
        let n = std::thread::available_parallelism()
            .map_or(2, |n| n.get())
            .max(2);
        for i in 0..n {
            if std::thread::Builder::new()
                .name(format!("cellblock-spawner-{i}"))
                .spawn(move || serve(q))
                .is_ok()
            {
                q.threads.fetch_add(1, Ordering::Relaxed);
            }
        }
    });
    q
}

fn serve(q: &'static Queue) -> ! {
    loop {
        let (plan, reply) = {
            let mut jobs = q.jobs.lock().unwrap_or_else(|e| e.into_inner());
            loop {
                if let Some(job) = jobs.pop_front() {
                    break job;
                }
                jobs = q.ready.wait(jobs).unwrap_or_else(|e| e.into_inner());
            }
        };
        let result = plan.run();
        // A receiver that is gone drops the result, whose ChildGuard kills and reaps.
        match reply {
            Reply::Task(tx) => drop(tx.send(result)),
            Reply::Thread(tx) => drop(tx.send(result)),
        }
    }
}
