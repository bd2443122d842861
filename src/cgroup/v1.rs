//! cgroup v1 backend: one directory per hierarchy the container joins.
//!
//! With limits or accounting ([`Mode::Full`]) the container gets a directory of its own
//! in every hierarchy that is mounted (and writable) of: `memory` (peak usage, OOM kills),
//! `cpuacct` (user and system CPU time), `pids` (peak process count, refused forks, the
//! default budget) and `freezer` (to kill a whole tree without racing forks); and where a
//! limit needs them, `cpu` (quota, shares) and `cpuset`. Only a hierarchy a limit of the
//! caller's needs is an error when it cannot be had. Co-mounted controllers
//! (`cpu,cpuacct`) share one directory.
//!
//! The default budget alone ([`Mode::Budget`]) makes one: `pids`, with `pids.max`. A
//! `cpu` directory is made only for a CPU limit or weight of the caller's; it goes under
//! the `cpu` hierarchy's `cellblock` directory, which is weighted below the supervisor's
//! threads ([`CONTAINERS_CPU_WEIGHT`]).

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::files::{
    cg_err, kill_pids, poll_until, read_keyed, read_pids, read_u64, write, write_setting,
};
use super::layout::{base_dir, joined_dir, v1_hierarchy};
use super::parents::{acquire_parent, create_leaf, release_parent};
use super::{Mode, Stats};
use crate::builder::limits::{LimitsConfig, CONTAINERS_CPU_WEIGHT};
use crate::error::{Error, Result};

/// One hierarchy's directory of this container.
#[derive(Debug, Clone)]
struct Dir {
    /// The controllers of ours it serves.
    controllers: Vec<&'static str>,
    mount: PathBuf,
    path: PathBuf,
    /// Made at a path of the caller's (`cgroup_path`): no shared parent to release.
    explicit: bool,
}

/// A container's cgroup on v1.
#[derive(Debug, Clone)]
pub(crate) struct V1Cgroup {
    dirs: Vec<Dir>,
}

/// Where a controller goes, and why.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Want {
    /// Not at all.
    No,
    /// A directory of the container's own, needed by a limit of the caller's: an error
    /// if it cannot be had.
    Needed,
    /// A directory of its own, for accounting or the default budget: skipped if the
    /// controller is not mounted or the directory cannot be made.
    Optional,
}

impl V1Cgroup {
    /// Creates one directory per hierarchy and writes the limits. On error, removes what
    /// it made.
    pub(crate) fn create(limits: &LimitsConfig, name: &str, mode: Mode) -> Result<V1Cgroup> {
        let mut cg = V1Cgroup { dirs: Vec::new() };
        match cg.fill(limits, name, mode) {
            Ok(()) => Ok(cg),
            Err(e) => {
                cg.discard();
                Err(e)
            }
        }
    }

    fn fill(&mut self, limits: &LimitsConfig, name: &str, mode: Mode) -> Result<()> {
        let full = mode == Mode::Full;
        let need_or = |needed: bool, otherwise: Want| if needed { Want::Needed } else { otherwise };
        let opt_if = |b: bool| if b { Want::Optional } else { Want::No };
        let wanted = [
            (
                "memory",
                need_or(
                    limits.memory.is_some() || limits.memory_swap.is_some(),
                    opt_if(full),
                ),
            ),
            ("cpuacct", opt_if(full)),
            (
                "pids",
                need_or(
                    limits.pids.is_some(),
                    opt_if(full || limits.effective_pids().is_some()),
                ),
            ),
            ("freezer", opt_if(full)),
            ("cpu", need_or(limits.wants_cpu(), opt_if(limits.placed()))),
            ("cpuset", need_or(limits.wants_cpuset(), Want::No)),
            // An explicit path is the OCI runtime's case: its callers expect the device
            // cgroup too (they write its rules).
            ("devices", opt_if(limits.placed())),
        ];
        let mut first_err = None;
        for (ctrl, want) in wanted {
            if want == Want::No {
                continue;
            }
            let found = v1_hierarchy(ctrl).map_err(|e| {
                Error::CgroupUnavailable(format!("cannot read the cgroup mounts: {e}"))
            })?;
            let Some((mount, own)) = found else {
                if want == Want::Needed {
                    return Err(Error::CgroupUnavailable(format!(
                        "the cgroup v1 {ctrl} controller is not mounted on this host"
                    )));
                }
                continue;
            };
            if let Some(d) = self.dirs.iter_mut().find(|d| d.mount == mount) {
                // Co-mounted (`cpu,cpuacct`): one directory serves both.
                d.controllers.push(ctrl);
                continue;
            }
            let is_cpuset = fs::metadata(mount.join("cpuset.cpus")).is_ok();
            // The containers' weight below the supervisor goes on our own `cellblock`
            // directory, not on the ancestors of a caller's explicit path.
            let is_cpu = fs::metadata(mount.join("cpu.shares")).is_ok() && !limits.placed();
            let init = move |dir: &Path| {
                if is_cpuset {
                    inherit_cpuset(dir)?;
                }
                if is_cpu {
                    weigh_containers(dir);
                }
                Ok(())
            };
            let made = match limits.placed() {
                true => self.add_explicit(ctrl, &mount, &own, limits, &init),
                false => {
                    let base = base_dir(&mount, &own, limits.cgroup_parent.as_deref());
                    self.add_dir(ctrl, &mount, &base.join("cellblock"), name, &init)
                }
            };
            match made {
                Ok(()) => {}
                Err(e) if want == Want::Needed => return Err(e),
                Err(e) => {
                    // Only what the caller asked for may fail a spawn. A rootless
                    // supervisor with a delegated subtree of some controllers but not
                    // others gets what it can.
                    tracing::debug!(controller = ctrl, error = %e, "skipping an optional cgroup");
                    first_err.get_or_insert(e);
                    continue;
                }
            }
            if is_cpuset {
                // A new v1 cpuset starts with no CPUs and no memory nodes, and a task
                // cannot join it until both are set.
                let leaf = &self.dirs[self.dirs.len() - 1].path;
                inherit_cpuset(leaf)?;
            }
        }
        if self.dirs.is_empty() {
            if let Some(e) = first_err {
                return Err(e);
            }
            return Err(Error::CgroupUnavailable(
                "no cgroup v1 hierarchy is mounted (or writable) here (use CgroupVersion::Auto or V2)"
                    .into(),
            ));
        }
        if limits.cgroup_join {
            // Another container's cgroup: its limits stay as they are.
            return Ok(());
        }
        self.write_limits(limits)
    }

    /// Acquires `parent` and makes the container's leaf in it.
    fn add_dir(
        &mut self,
        ctrl: &'static str,
        mount: &Path,
        parent: &Path,
        name: &str,
        init: &dyn Fn(&Path) -> Result<()>,
    ) -> Result<()> {
        acquire_parent(parent, init)?;
        let path = match create_leaf(parent, name, init) {
            Ok(l) => l,
            Err(e) => {
                release_parent(parent);
                return Err(e);
            }
        };
        self.dirs.push(Dir {
            controllers: vec![ctrl],
            mount: mount.to_path_buf(),
            path,
            explicit: false,
        });
        Ok(())
    }

    /// Makes (or joins) the caller's cgroup (`cgroup_path`, `join_cgroup_path`,
    /// `join_cgroup_of`) in this hierarchy, creating missing ancestors of a path (left in
    /// place afterwards; see `ContainerBuilder::cgroup_path`).
    fn add_explicit(
        &mut self,
        ctrl: &'static str,
        mount: &Path,
        own: &Path,
        limits: &LimitsConfig,
        init: &dyn Fn(&Path) -> Result<()>,
    ) -> Result<()> {
        let leaf = match (&limits.cgroup_path, limits.cgroup_join) {
            (Some(path), false) => super::layout::explicit_dir(mount, own, path, init)?,
            (path, _) => joined_dir(path.as_deref(), limits.cgroup_of, mount, own, Some(ctrl))?,
        };
        self.dirs.push(Dir {
            controllers: vec![ctrl],
            mount: mount.to_path_buf(),
            path: leaf,
            explicit: true,
        });
        Ok(())
    }

    fn write_limits(&self, l: &LimitsConfig) -> Result<()> {
        if let Some(dir) = self.own_dir_of("memory") {
            if let Some(mem) = l.memory {
                write_setting(dir, "memory.limit_in_bytes", &mem.to_string())?;
            }
            if let (Some(mem), Some(swap)) = (l.memory, l.memory_swap) {
                // v1 limits memory+swap together; ours is swap on top of memory (v2's
                // meaning), so the sum goes here.
                write_setting(
                    dir,
                    "memory.memsw.limit_in_bytes",
                    &mem.saturating_add(swap).to_string(),
                )
                .map_err(|e| match e {
                    Error::CgroupUnavailable(_) => Error::CgroupUnavailable(
                        "memory_swap_limit needs swap accounting (memory.memsw.* files; boot \
                         with swapaccount=1)"
                            .into(),
                    ),
                    e => e,
                })?;
            }
        }
        if let (Some(dir), Some(n)) = (self.own_dir_of("pids"), l.effective_pids()) {
            write_setting(dir, "pids.max", &n.to_string())?;
        }
        if let Some(dir) = self.own_dir_of("cpu") {
            if let Some(quota) = l.cpu_quota_us() {
                write_setting(dir, "cpu.cfs_period_us", &l.cpu_period_us().to_string())?;
                write_setting(dir, "cpu.cfs_quota_us", &quota.to_string())?;
            }
            if let Some(w) = l.cpu_weight {
                write_setting(dir, "cpu.shares", &weight_to_shares(w).to_string())?;
            }
        }
        if let Some(dir) = self.own_dir_of("cpuset") {
            if let Some(cpus) = &l.cpuset {
                write_setting(dir, "cpuset.cpus", cpus)?;
            }
            if let Some(mems) = &l.cpuset_mems {
                write_setting(dir, "cpuset.mems", mems)?;
            }
        }
        Ok(())
    }

    /// The container's directory serving `ctrl`.
    fn own_dir_of(&self, ctrl: &str) -> Option<&Path> {
        self.dirs
            .iter()
            .find(|d| d.controllers.contains(&ctrl))
            .map(|d| d.path.as_path())
    }

    /// The directory whose `cgroup.procs` lists the container's processes (every
    /// directory does; the freezer's is the one we can also freeze).
    fn procs_dir(&self) -> Option<&Path> {
        self.own_dir_of("freezer")
            .or_else(|| self.dirs.first().map(|d| d.path.as_path()))
    }

    pub(crate) fn dirs(&self) -> Vec<PathBuf> {
        self.dirs.iter().map(|d| d.path.clone()).collect()
    }

    /// Removes what `create` made so far (nothing can be inside yet).
    fn discard(&mut self) {
        for d in self.dirs.drain(..) {
            let _ = fs::remove_dir(&d.path);
            match d.path.parent() {
                Some(p) if !d.explicit => release_parent(p),
                _ => {}
            }
        }
    }

    fn freeze(&self, dir: &Path, frozen: bool) {
        let state = if frozen { "FROZEN" } else { "THAWED" };
        if write(&dir.join("freezer.state"), state).is_err() {
            return;
        }
        if frozen {
            // FREEZING until every task has stopped. A task that cannot be frozen (stuck
            // in uninterruptible sleep) keeps it there; we go on and signal anyway.
            poll_until(Duration::from_millis(200), || {
                fs::read_to_string(dir.join("freezer.state"))
                    .map(|s| s.trim() == "FROZEN")
                    .unwrap_or(true)
            });
        }
    }

    /// Freeze, SIGKILL each task, thaw, until the cgroup is empty. Frozen tasks cannot
    /// fork, so a fork bomb cannot outrun the loop; SIGKILL is delivered on thaw.
    pub(crate) fn kill_all(&self) -> std::io::Result<()> {
        let Some(dir) = self.procs_dir() else {
            return Ok(());
        };
        let procs = dir.join("cgroup.procs");
        let freezer = self.own_dir_of("freezer");
        for _ in 0..50 {
            if let Some(f) = freezer {
                self.freeze(f, true);
            }
            let pids = read_pids(&procs)?;
            kill_pids(&pids, libc::SIGKILL);
            if let Some(f) = freezer {
                self.freeze(f, false);
            }
            if pids.is_empty()
                || poll_until(Duration::from_millis(100), || {
                    read_pids(&procs).map(|p| p.is_empty()).unwrap_or(true)
                })
            {
                return Ok(());
            }
        }
        Err(std::io::Error::other(
            "processes keep appearing in the cgroup",
        ))
    }

    pub(crate) fn signal_all(&self, sig: libc::c_int) -> std::io::Result<()> {
        let Some(dir) = self.procs_dir() else {
            return Ok(());
        };
        let freezer = self.own_dir_of("freezer");
        if let Some(f) = freezer {
            self.freeze(f, true);
        }
        let res = read_pids(&dir.join("cgroup.procs")).map(|pids| kill_pids(&pids, sig));
        if let Some(f) = freezer {
            self.freeze(f, false);
        }
        res
    }

    pub(crate) fn stats(&self) -> Stats {
        let mut s = Stats::default();
        if let Some(d) = self.own_dir_of("cpuacct") {
            s.user = read_u64(&d.join("cpuacct.usage_user")).map(Duration::from_nanos);
            s.system = read_u64(&d.join("cpuacct.usage_sys")).map(Duration::from_nanos);
        }
        if let Some(d) = self.own_dir_of("memory") {
            s.memory_peak = read_u64(&d.join("memory.max_usage_in_bytes"));
            s.oom_kills = read_keyed(&d.join("memory.oom_control"), "oom_kill");
        }
        if let Some(d) = self.own_dir_of("pids") {
            s.pids_peak = read_u64(&d.join("pids.peak"));
            s.pids_refused = read_keyed(&d.join("pids.events"), "max");
        }
        s
    }
}

/// Gives the shared `cellblock` directory of the `cpu` hierarchy the weight
/// [`CONTAINERS_CPU_WEIGHT`] against the supervisor's threads, its siblings, unless
/// someone set another weight than the kernel's default. Best effort: the budget's other
/// parts do not depend on it.
fn weigh_containers(dir: &Path) {
    let shares = dir.join("cpu.shares");
    if read_u64(&shares) == Some(1024) {
        let value = weight_to_shares(CONTAINERS_CPU_WEIGHT).to_string();
        if let Err(e) = write(&shares, &value) {
            tracing::debug!(path = %shares.display(), error = %e, "cannot weigh the containers");
        }
    }
}

/// Copies `cpuset.cpus` and `cpuset.mems` from the parent directory if `dir`'s are empty.
fn inherit_cpuset(dir: &Path) -> Result<()> {
    let Some(parent) = dir.parent() else {
        return Ok(());
    };
    for file in ["cpuset.cpus", "cpuset.mems"] {
        let mine = fs::read_to_string(dir.join(file)).unwrap_or_default();
        if mine.trim().is_empty() {
            let theirs = fs::read_to_string(parent.join(file))
                .map_err(|e| cg_err("read", &parent.join(file), e))?;
            write_setting(dir, file, theirs.trim())?;
        }
    }
    Ok(())
}

/// v2's `cpu.weight` (1..=10000, default 100) to v1's `cpu.shares` (2..=262144, default
/// 1024), proportionally, so that the default maps to the default.
pub(crate) fn weight_to_shares(weight: u64) -> u64 {
    (weight * 1024 / 100).clamp(2, 262_144)
}
