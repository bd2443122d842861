//! # cellblock
//!
//! Run and reap many isolated worker processes in Linux namespaces from an async (tokio)
//! program.
//!
//! A [`Container`] is a process started with `clone(CLONE_VM | CLONE_VFORK | CLONE_PIDFD |
//! CLONE_NEW*)` on a preallocated stack, from tokio's blocking pool. Its exit is awaited
//! through its pidfd on tokio's reactor and reaped with `waitid(P_PIDFD)`, so containers
//! coexist with `tokio::process` children and with any other child the program has.
//!
//! ```no_run
//! # #[tokio::main] async fn main() -> cellblock::Result<()> {
//! use cellblock::{Container, Namespaces, Stdio};
//!
//! let out = Container::builder("/bin/sh")
//!     .args(["-c", "hostname; echo $$; ps ax"])
//!     .namespaces(Namespaces::UTS | Namespaces::IPC | Namespaces::PID | Namespaces::MOUNT | Namespaces::NET)
//!     .hostname("container")
//!     .stdout(Stdio::piped())
//!     .output()
//!     .await?;
//! assert!(out.status.success());
//! print!("{}", String::from_utf8_lossy(&out.stdout));
//! # Ok(()) }
//! ```
//!
//! ## Limits and reports
//! cgroup limits ([`memory_limit`](ContainerBuilder::memory_limit),
//! [`pids_limit`](ContainerBuilder::pids_limit), [`cpu_limit`](ContainerBuilder::cpu_limit),
//! …) put the container in a cgroup of its own under the supervisor's, on v1 or v2
//! ([`CgroupLayout`]); [`rlimit`](ContainerBuilder::rlimit) sets rlimits in the child;
//! [`timeout`](ContainerBuilder::timeout) ends the whole container; and
//! [`Container::wait_with_report`] / [`ContainerBuilder::output_with_report`] say how the
//! run went ([`RunReport`]: exit, signal, timeout, OOM kill, CPU time, peak memory, …).
//!
//! ```no_run
//! # #[tokio::main] async fn main() -> cellblock::Result<()> {
//! use std::time::Duration;
//! use cellblock::{Container, EndReason, Resource};
//!
//! let (out, report) = Container::builder("/usr/bin/python3")
//!     .args(["-c", "print(sum(range(10**6)))"])
//!     .memory_limit(256 << 20)
//!     .pids_limit(64)
//!     .cpu_limit(1.0)
//!     .rlimit(Resource::Nofile, 64, 64)
//!     .timeout(Duration::from_secs(5))
//!     .output_with_report()
//!     .await?;
//! assert_eq!(report.reason, EndReason::Exited);
//! println!("{} in {:?} CPU, peak {:?} bytes", String::from_utf8_lossy(&out.stdout).trim(),
//!          report.cpu_time(), report.peak_memory);
//! # Ok(()) }
//! ```
//! ## Security
//!
//! Every container is hardened by default: all capabilities dropped, `no_new_privs`, a
//! seccomp filter denying what Docker's default profile denies, masked `/proc` and `/sys`
//! paths (with [`Namespaces::MOUNT`]), every descriptor but stdio closed, a new session
//! and umask `022`. Each has an opt-out on [`ContainerBuilder`] whose documentation names
//! the risk ([`ContainerBuilder::capabilities`], [`ContainerBuilder::seccomp`],
//! [`ContainerBuilder::pass_fd`], [`ContainerBuilder::nesting`], …). `tests/escape/escape.rs`
//! tries nine ways out against those defaults.
//!
//! ## Layout
//! One direction through the code, one file per concern in each layer:
//! configuration ([`ContainerBuilder`], `builder/`: plain data and the setters) → a prepared
//! plan (`plan/`: validation and every allocation, in the parent, each concern's
//! `prepare(config, ctx)` called in order from `plan/mod.rs`) → the child (`child/`: no
//! allocation; it borrows the plan, and every system call it makes is in `child/sys.rs`) →
//! the async handle (`handle/`: [`Container`], the spawn path, the background reaper,
//! stdio streams, the pty, signal forwarding, the watchdog and the [`RunReport`]). The
//! error-pipe protocol the child, the init and the parent share is in `protocol.rs`; raw
//! syscall wrappers for the parent are in `sys.rs`. The concerns have one name in every
//! layer: `fs`, `user`, `join`, `time`, `session`, `limits`, `security`, `stdio`.
//!
//! How the workload's process runs (`session`): with a new PID namespace, PID 1 is a
//! tiny built-in init (`init.rs`, `init/cellblock-init.c`) exec'd from a sealed memfd,
//! which forwards signals, reaps orphans and kills the namespace when the supervisor
//! process dies (a pidfd of the supervisor, its lifeline); without an init,
//! `PR_SET_PDEATHSIG` is armed from long-lived spawner threads (`handle/spawner.rs`).
//! Stdio arrives as streams of `Bytes` and leaves through a channel sender
//! (`handle/io.rs`); a container can get a pseudo-terminal (`handle/pty.rs`); host signals
//! are forwarded by a [`SignalForwarder`] (`handle/signals.rs`).

#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

mod builder;
mod cgroup;
mod child;
mod error;
mod handle;
mod idpool;
mod namespaces;
mod net;
mod plan;
mod protocol;
mod supervisor;
mod sys;

mod init;

pub use builder::fs::{DeviceNode, NodeKind, RootPropagation, MAX_TMPFS_SIZE};
pub use builder::limits::{
    Resource, CONTAINERS_CPU_WEIGHT, DEFAULT_KILL_GRACE, DEFAULT_PIDS_LIMIT, MAX_CPU_LIMIT,
    RLIM_INFINITY,
};
pub use builder::security::{
    default_denied_syscalls, ArgCmp, Capability, Seccomp, DEFAULT_MASKED_PATHS,
    DEFAULT_READONLY_PATHS, DEFAULT_UMASK, DENIED_IOCTLS, DENIED_SOCKET_FAMILIES,
    SECCOMP_ALWAYS_ALLOWED,
};
pub use builder::stdio::Stdio;
pub use builder::{ContainerBuilder, DEFAULT_PATH};
pub use cgroup::{CgroupLayout, CgroupVersion};
pub use error::{Errno, Error, Result, Stage};
pub use handle::container::{Container, Output};
pub use handle::create::Created;
pub use handle::detached::{Detached, DetachedState};
pub use handle::reaper::pending_orphans;
pub use handle::report::{EndReason, RunReport};
pub use idpool::{id_pool, set_id_pool, IdPool, ID_BLOCK};
pub use namespaces::{NamespaceIds, Namespaces};
pub use net::{
    leftovers as net_leftovers, loopback_pool_stats, pool_stats, set_loopback_pool,
    shutdown as net_shutdown, EgressConfig, Leftovers, Network, PoolStats, Proto,
};
pub use supervisor::{
    Backoff, Decision, Event, EventStream, ExitInfo, Hooks, RestartBudget, RestartPolicy, Summary,
    Supervisor, Worker, WorkerEnd, WorkerSummary,
};

pub use builder::session::DEFAULT_INIT_GRACE;
pub use handle::io::{
    ContainerStderr, ContainerStdin, ContainerStdout, Lines, StdinSender, MAX_LINE,
};
pub use handle::pty::{Pty, PtyChannels, PtyResizer, PtySize};
pub use handle::signals::{Forwarding, SignalForwarder, FORWARDED_SIGNALS};

/// The signal type accepted by [`Container::signal`] (re-exported from `nix`).
pub use nix::sys::signal::Signal;
/// Compiles the README's example as a doctest, so the README cannot drift from the API.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
