//! cgroup v2 backend: one directory in the unified hierarchy.
//!
//! The controllers a limit needs (`memory`, `pids`, `cpu`, `cpuset`) are enabled in
//! `cgroup.subtree_control` of the base directory and of `cellblock`; `memory` and `pids`
//! are also enabled without a limit when available, for the report. Without them, what v2
//! gives every cgroup still works: `cgroup.procs`, `cgroup.kill`, `cgroup.freeze`,
//! `cgroup.events` and `cpu.stat` (CPU time), which is what a hybrid host such as the
//! test machine offers.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::files::{
    cg_err, kill_pids, poll_until, read_keyed, read_pids, read_u64, write, write_setting,
};
use super::layout::{base_dir, joined_dir, path_start, v2_hierarchy};
use super::parents::{acquire_parent, create_leaf, release_parent};
use super::{Mode, Stats};
use crate::builder::limits::{LimitsConfig, CONTAINERS_CPU_WEIGHT};
use crate::error::{Error, Result};

/// A container's cgroup on v2.
#[derive(Debug, Clone)]
pub(crate) struct V2Cgroup {
    dir: PathBuf,
}

impl V2Cgroup {
    /// Creates the directory, enabling the controllers it needs, and writes the limits.
    /// On error, removes what it made.
    pub(crate) fn create(limits: &LimitsConfig, name: &str, mode: Mode) -> Result<V2Cgroup> {
        let (mount, own) = v2_hierarchy()
            .map_err(|e| Error::CgroupUnavailable(format!("cannot read the cgroup mounts: {e}")))?
            .ok_or_else(|| {
                Error::CgroupUnavailable("no cgroup2 hierarchy is mounted on this host".into())
            })?;
        let base = match &limits.cgroup_path {
            Some(p) => path_start(p, &mount, &own).to_path_buf(),
            None if limits.placed() => mount.clone(),
            None => base_dir(&mount, &own, limits.cgroup_parent.as_deref()),
        };
        let available = fs::read_to_string(base.join("cgroup.controllers"))
            .map_err(|e| cg_err("read", &base.join("cgroup.controllers"), e))?;
        let available: Vec<&str> = available.split_whitespace().collect();
        let enable = controllers_to_enable(limits, mode, &available).map_err(|ctrl| {
            Error::CgroupUnavailable(format!(
                "the cgroup v2 {ctrl} controller is not available in {} (cgroup.controllers: {:?}); \
                 on a hybrid host use the v1 hierarchy (CgroupVersion::Auto or V1)",
                base.display(),
                available.join(" ")
            ))
        })?;
        if limits.cgroup_join {
            let dir = joined_dir(
                limits.cgroup_path.as_deref(),
                limits.cgroup_of,
                &mount,
                &own,
                None,
            )?;
            return Ok(V2Cgroup { dir });
        }
        if let Some(path) = &limits.cgroup_path {
            return V2Cgroup::create_explicit(limits, &base, path, &enable);
        }
        let weigh = limits.wants_cpu() && available.contains(&"cpu");
        let parent = base.join("cellblock");
        let init_base = base.clone();
        let init = move |dir: &Path| {
            if weigh {
                weigh_containers(&init_base, dir);
            }
            Ok(())
        };
        acquire_parent(&parent, &init)?;
        let made = enable_controllers(&base, &parent, &enable)
            .and_then(|()| create_leaf(&parent, name, &init));
        let cg = match made {
            Ok(dir) => V2Cgroup { dir },
            Err(e) => {
                release_parent(&parent);
                return Err(e);
            }
        };
        // From here `cg` owns the directory: on error, remove it before returning.
        match cg.write_limits(limits) {
            Ok(()) => Ok(cg),
            Err(e) => {
                let _ = fs::remove_dir(&cg.dir);
                release_parent(&parent);
                Err(e)
            }
        }
    }

    /// The explicit cgroup `path` (`ContainerBuilder::cgroup_path`) from `start` (the root,
    /// or the supervisor's own cgroup for a relative path): each ancestor from `start` down
    /// enables `enable` for its children, missing ones are created (and left afterwards),
    /// the leaf is created or joined.
    fn create_explicit(
        limits: &LimitsConfig,
        start: &Path,
        path: &Path,
        enable: &[&str],
    ) -> Result<V2Cgroup> {
        // As `layout::explicit_dir`: a parent removed under us (ENOENT) restarts the walk.
        let mut attempts = 0;
        let dir = 'walk: loop {
            let mut dir = start.to_path_buf();
            for part in path
                .components()
                .filter(|c| matches!(c, std::path::Component::Normal(_)))
            {
                if let Err(e) = enable_controllers(&dir, &dir, enable) {
                    if !dir.exists() && attempts < 64 {
                        attempts += 1;
                        continue 'walk;
                    }
                    return Err(e);
                }
                dir.push(part);
                match fs::create_dir(&dir) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound && attempts < 64 => {
                        attempts += 1;
                        continue 'walk;
                    }
                    Err(e) => return Err(cg_err("create", &dir, e)),
                }
            }
            break dir;
        };
        let cg = V2Cgroup { dir };
        match cg.write_limits(limits) {
            Ok(()) => Ok(cg),
            Err(e) => {
                let _ = fs::remove_dir(&cg.dir);
                Err(e)
            }
        }
    }

    fn write_limits(&self, l: &LimitsConfig) -> Result<()> {
        let d = &self.dir;
        if let Some(mem) = l.memory {
            write_setting(d, "memory.max", &mem.to_string())?;
        }
        if let Some(swap) = l.memory_swap {
            write_setting(d, "memory.swap.max", &swap.to_string())?;
        }
        if let Some(n) = l.effective_pids() {
            // A `pids` limit of the caller's made sure the controller is enabled; the
            // default budget's is written only where it is.
            if l.pids.is_some() || d.join("pids.max").exists() {
                write_setting(d, "pids.max", &n.to_string())?;
            }
        }
        if let Some(quota) = l.cpu_quota_us() {
            write_setting(d, "cpu.max", &format!("{quota} {}", l.cpu_period_us()))?;
        }
        if let Some(w) = l.cpu_weight {
            write_setting(d, "cpu.weight", &w.to_string())?;
        }
        if let Some(cpus) = &l.cpuset {
            write_setting(d, "cpuset.cpus", cpus)?;
        }
        if let Some(mems) = &l.cpuset_mems {
            write_setting(d, "cpuset.mems", mems)?;
        }
        Ok(())
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether any process is in the cgroup (`populated` of `cgroup.events`).
    pub(crate) fn populated(&self) -> bool {
        read_keyed(&self.dir.join("cgroup.events"), "populated").is_some_and(|v| v != 0)
    }

    /// `cgroup.kill` (Linux 5.14+): the kernel SIGKILLs every process in the cgroup and
    /// any it forks meanwhile. Older kernels: freeze, kill each, thaw.
    pub(crate) fn kill_all(&self) -> io::Result<()> {
        match write(&self.dir.join("cgroup.kill"), "1") {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) && self.dir.exists() => {
                for _ in 0..50 {
                    self.freeze(true);
                    let pids = read_pids(&self.dir.join("cgroup.procs"))?;
                    kill_pids(&pids, libc::SIGKILL);
                    self.freeze(false);
                    if pids.is_empty() {
                        break;
                    }
                }
            }
            Err(e) => return Err(e),
        }
        poll_until(Duration::from_secs(1), || !self.populated());
        Ok(())
    }

    pub(crate) fn signal_all(&self, sig: libc::c_int) -> io::Result<()> {
        self.freeze(true);
        let res = read_pids(&self.dir.join("cgroup.procs")).map(|pids| kill_pids(&pids, sig));
        self.freeze(false);
        res
    }

    fn freeze(&self, frozen: bool) {
        if write(
            &self.dir.join("cgroup.freeze"),
            if frozen { "1" } else { "0" },
        )
        .is_err()
        {
            return;
        }
        if frozen {
            poll_until(Duration::from_millis(200), || {
                read_keyed(&self.dir.join("cgroup.events"), "frozen").is_none_or(|v| v == 1)
            });
        }
    }

    pub(crate) fn stats(&self) -> Stats {
        let d = &self.dir;
        let usec = |key| read_keyed(&d.join("cpu.stat"), key).map(Duration::from_micros);
        Stats {
            user: usec("user_usec"),
            system: usec("system_usec"),
            memory_peak: read_u64(&d.join("memory.peak")),
            oom_kills: read_keyed(&d.join("memory.events"), "oom_kill"),
            pids_peak: read_u64(&d.join("pids.peak")),
            pids_refused: read_keyed(&d.join("pids.events"), "max"),
        }
    }
}

/// The controllers to enable for the container's cgroup, given those `available` in the
/// base directory; `Err(controller)` if a limit needs one that is missing. Everything the
/// caller set needs its controller; the default budget needs `pids`; `memory` and `pids`
/// are enabled for the report when available.
pub(crate) fn controllers_to_enable(
    limits: &LimitsConfig,
    mode: Mode,
    available: &[&str],
) -> std::result::Result<Vec<&'static str>, &'static str> {
    let full = mode == Mode::Full;
    let budget = limits.effective_pids().is_some() && mode == Mode::Budget;
    let needed = [
        (
            "memory",
            limits.memory.is_some() || limits.memory_swap.is_some(),
            full,
        ),
        (
            "pids",
            limits.pids.is_some() || budget,
            full || limits.effective_pids().is_some(),
        ),
        ("cpu", limits.wants_cpu(), false),
        ("cpuset", limits.wants_cpuset(), false),
    ];
    let mut enable = Vec::new();
    for (ctrl, needed, wanted) in needed {
        let here = available.contains(&ctrl);
        if needed && !here {
            return Err(ctrl);
        }
        if here && (needed || wanted) {
            enable.push(ctrl);
        }
    }
    Ok(enable)
}

/// Gives the shared `cellblock` directory the CPU weight [`CONTAINERS_CPU_WEIGHT`]
/// against its siblings (the supervisor's leaf, on a host set up as the docs say), unless
/// someone set another weight than the kernel's default; done when the first container
/// with a CPU limit or weight of the caller's needs `cpu`. Best effort, like v1's.
fn weigh_containers(base: &Path, dir: &Path) {
    let file = base.join("cgroup.subtree_control");
    let enabled = fs::read_to_string(&file)
        .map(|s| s.split_whitespace().any(|c| c == "cpu"))
        .unwrap_or(false);
    if !enabled {
        if let Err(e) = write(&file, "+cpu") {
            tracing::debug!(path = %file.display(), error = %e, "cannot enable cpu to weigh the containers");
            return;
        }
    }
    let weight = dir.join("cpu.weight");
    if read_u64(&weight) == Some(100) {
        if let Err(e) = write(&weight, &CONTAINERS_CPU_WEIGHT.to_string()) {
            tracing::debug!(path = %weight.display(), error = %e, "cannot weigh the containers");
        }
    }
}

/// Enables `ctrls` in `base`'s and `parent`'s `cgroup.subtree_control` where missing.
fn enable_controllers(base: &Path, parent: &Path, ctrls: &[&str]) -> Result<()> {
    for dir in [base, parent] {
        let file = dir.join("cgroup.subtree_control");
        let current = fs::read_to_string(&file).map_err(|e| cg_err("read", &file, e))?;
        let current: Vec<&str> = current.split_whitespace().collect();
        for c in ctrls.iter().filter(|c| !current.contains(c)) {
            write(&file, &format!("+{c}")).map_err(|e| match e.raw_os_error() {
                Some(libc::EBUSY) => Error::CgroupUnavailable(format!(
                    "cannot enable the {c} controller below {}: it holds processes (cgroup v2 \
                     allows controllers only for cgroups without member processes). Move the \
                     supervisor into a leaf cgroup of its own and give the parent with \
                     cgroup_parent(), or delegate an empty subtree to it",
                    dir.display()
                )),
                _ => cg_err("enable controllers in", &file, e),
            })?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(f: impl FnOnce(&mut LimitsConfig)) -> LimitsConfig {
        let mut l = LimitsConfig::default();
        f(&mut l);
        l
    }

    #[test]
    fn the_default_budget_needs_pids_and_falls_back_without_it() {
        let all = ["cpuset", "cpu", "io", "memory", "pids"];
        let none: [&str; 0] = [];
        let defaults = limits(|_| {});
        // Budget alone: pids needed; memory (accounting) not wanted.
        assert_eq!(
            controllers_to_enable(&defaults, Mode::Budget, &all),
            Ok(vec!["pids"])
        );
        assert_eq!(
            controllers_to_enable(&defaults, Mode::Budget, &none),
            Err("pids")
        );
        // Full (accounting or a limit): memory and pids when there, never an error for them.
        assert_eq!(
            controllers_to_enable(&defaults, Mode::Full, &all),
            Ok(vec!["memory", "pids"])
        );
        assert_eq!(
            controllers_to_enable(&defaults, Mode::Full, &none),
            Ok(vec![])
        );
        // The caller's limits need their controller, budget or not.
        let own = limits(|l| {
            l.pids = Some(5);
            l.cpu_weight = Some(50);
            l.no_default_budget = true;
        });
        assert_eq!(
            controllers_to_enable(&own, Mode::Full, &all),
            Ok(vec!["memory", "pids", "cpu"])
        );
        assert_eq!(
            controllers_to_enable(&own, Mode::Full, &["memory", "cpu"]),
            Err("pids")
        );
        // Opted out, no limit: the pids controller is still enabled for the report.
        let off = limits(|l| l.no_default_budget = true);
        assert_eq!(
            controllers_to_enable(&off, Mode::Full, &all),
            Ok(vec!["memory", "pids"])
        );
    }

    #[test]
    fn the_default_pids_limit_yields_to_the_callers() {
        assert_eq!(
            limits(|_| {}).effective_pids(),
            Some(crate::DEFAULT_PIDS_LIMIT)
        );
        assert_eq!(limits(|l| l.pids = Some(9)).effective_pids(), Some(9));
        assert_eq!(
            limits(|l| l.no_default_budget = true).effective_pids(),
            None
        );
        let both = limits(|l| {
            l.no_default_budget = true;
            l.pids = Some(3);
        });
        assert_eq!(both.effective_pids(), Some(3));
    }
}
