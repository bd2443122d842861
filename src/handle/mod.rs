//! The handle: the async side of a container, everything after the clone.
//!
//! A [`Container`](container::Container) owns the child's pidfd: awaited on tokio's reactor
//! (readable = exited), reaped with `waitid(P_PIDFD)`, signalled with `pidfd_send_signal`,
//! so it never touches anybody else's child. Around it:
//!
//! - `spawn.rs`: the spawn path (prepare the plan, clone on the right thread, wrap the
//!   child in a `Container`); `spawner.rs`: the long-lived threads that clone containers
//!   armed with `PR_SET_PDEATHSIG`.
//! - `create.rs`: create-then-start ([`Created`](create::Created)), and `detached.rs`:
//!   containers that outlive the process that made them ([`Detached`](detached::Detached)).
//! - `reaper.rs`: the background reaper for children nobody awaits any more (a dropped
//!   `Container`, a cancelled spawn).
//! - `io.rs`: stdio as channels and streams of `Bytes`; `pty.rs`: the pty master;
//!   `signals.rs`: host signals forwarded to containers.
//! - `watchdog.rs`: what kills a container from the outside (its timeout, its output cap);
//!   `report.rs`: the [`RunReport`](report::RunReport) of how the run went.

pub(crate) mod container;
pub(crate) mod create;
pub(crate) mod detached;
pub(crate) mod io;
pub(crate) mod pty;
pub(crate) mod reaper;
pub(crate) mod report;
pub(crate) mod session;
pub(crate) mod signals;
pub(crate) mod spawn;
pub(crate) mod spawner;
pub(crate) mod watchdog;
