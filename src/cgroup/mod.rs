//! cgroups: one interface over the v1 (`v1.rs`) and v2 (`v2.rs`) backends.
//!
//! Every container gets a cgroup of its own: for the default budget alone (`Mode::Budget`:
//! `pids` only), or with every controller when it asks for a limit or for accounting
//! (`Mode::Full`). It is `<base>/cellblock/<supervisor pid>-<counter>`, where `<base>` is
//! the supervisor's own cgroup for that hierarchy (read from `/proc/self/cgroup`) or a
//! delegated directory given with [`cgroup_parent`](crate::ContainerBuilder::cgroup_parent).
//! Nesting under our own cgroup respects the limits the supervisor itself runs under and
//! systemd's delegation.
//!
//! Lifecycle: [`Cgroup::create`] makes the directories and writes the limits in the parent,
//! before the clone; the child joins by writing `"0"` to the descriptors opened here
//! (`tasks` on v1, `cgroup.procs` on v2: see [`Cgroup::open_procs`]; the child's side is
//! `child/limits.rs`); after the container is reaped, [`Cgroup::release`] reads nothing
//! more, kills whatever is left inside and removes the directories. `Drop` does the same,
//! so every failure path (a bad limit, a failed setup, a cancelled spawn) removes what was
//! created.
//!
//! All of this runs in the parent, which may allocate; nothing here runs in the child.
//!
//! Files: `layout.rs` (how the host mounts its hierarchies, and where this process sits in
//! them), `leaf.rs` (one container's [`Cgroup`]), `parents.rs` (the shared `cellblock`
//! directories, and the sweep of dead supervisors' cgroups), `files.rs` (control-file
//! helpers the backends share), `v1.rs` and `v2.rs` (the backends).

mod files;
mod layout;
mod leaf;
mod parents;
pub(crate) mod v1;
pub(crate) mod v2;

pub(crate) use files::{cg_err, kill_pids, poll_until, read_pids};
pub use layout::CgroupLayout;
pub(crate) use leaf::{remove_dirs_retrying, Cgroup};

use std::time::Duration;

/// Which cgroup hierarchy to put containers in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum CgroupVersion {
    /// v2 on a unified host, v1 on a legacy or hybrid one.
    #[default]
    Auto,
    /// The v1 controllers' hierarchies.
    V1,
    /// The v2 hierarchy: `/sys/fs/cgroup` on a unified host, `/sys/fs/cgroup/unified`
    /// on a hybrid one. Limits need their controller enabled there.
    V2,
}

/// What the cgroup measured over the container's life.
#[derive(Debug, Clone, Default)]
pub(crate) struct Stats {
    pub(crate) user: Option<Duration>,
    pub(crate) system: Option<Duration>,
    pub(crate) memory_peak: Option<u64>,
    pub(crate) oom_kills: Option<u64>,
    pub(crate) pids_peak: Option<u64>,
    /// How many forks the pids controller refused.
    pub(crate) pids_refused: Option<u64>,
}

/// What a cgroup is made for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// The caller asked for limits or accounting: every accounting controller, the
    /// caller's limits, the default budget where the caller set no limit of its own.
    Full,
    /// The default budget only (`pids`).
    Budget,
}
