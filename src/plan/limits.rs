//! Limits: validates the settings, creates the container's cgroup, opens the files the
//! child joins it through, and builds the rlimit table.
//!
//! The settings are in `builder/limits.rs`, the cgroup mechanics in `cgroup/`, the child's
//! steps in `child/limits.rs`.

use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Arc;
use std::time::Duration;

use crate::builder::limits::{LimitsConfig, MAX_CPU_LIMIT};
use crate::cgroup::Cgroup;
use crate::child::limits::{LimitsSpec, RawRlimit};
use crate::error::{Error, Result};
use crate::plan::Ctx;
use crate::Namespaces;

/// The limits part of a prepared plan: the cgroup (shared with the `Container` once it
/// exists) and the storage the child's [`LimitsSpec`] borrows.
pub(crate) struct PreparedLimits {
    pub(crate) cgroup: Option<Arc<Cgroup>>,
    /// Keeps the descriptors `procs_raw` names open until the plan is dropped.
    _procs_fds: Vec<OwnedFd>,
    procs_raw: Vec<libc::c_int>,
    rlimits: Vec<RawRlimit>,
    /// `CLONE_NEWCGROUP` is deferred to the child (after it joined its cgroup), so that
    /// the container's cgroup namespace is rooted at its own cgroup.
    defer_cgroupns: bool,
}

/// Validates the limits and prepares everything the child needs: creates the cgroup,
/// opens the files the child joins it through, builds the rlimit table. Nothing is left
/// behind on error (the cgroup's `Drop` removes it).
pub(crate) fn prepare(l: &LimitsConfig, ctx: &Ctx) -> Result<PreparedLimits> {
    validate(l)?;
    let rlimits = rlimit_table(l);
    let cgroup = if l.wants_cgroup() {
        Some(Arc::new(Cgroup::create(l)?))
    } else if l.default_budget() {
        // Best effort: a supervisor that may not create cgroups (rootless without a
        // delegated subtree, a read-only cgroupfs, a v2 cgroup that holds processes) spawns
        // as it did before, without the budget; see `default_budget` for what that leaves
        // unprotected.
        match Cgroup::create_budget(l) {
            Ok(cg) => Some(Arc::new(cg)),
            Err(e) => {
                budget_unavailable(&e);
                None
            }
        }
    } else {
        None
    };
    if let (Some(cg), Some(setup)) = (&cgroup, &l.setup) {
        // Before any process can be in it: the child joins through the files opened next.
        // On error the cgroup's `Drop` removes it.
        (setup.0)(&cg.dirs()).map_err(Error::io("in the cgroup_setup callback"))?;
    }
    let procs_fds = match &cgroup {
        Some(cg) => cg.open_procs()?,
        None => Vec::new(),
    };
    let procs_raw = procs_fds.iter().map(|f| f.as_raw_fd()).collect();
    // A joined cgroup (`join_cgroup_path`) is another container's: once its files are
    // open, this container keeps no handle on it, so nothing of ours (a timeout, kill_all,
    // the end of the container) ever signals, freezes or removes it.
    let cgroup = cgroup.filter(|_| !l.cgroup_join);
    Ok(PreparedLimits {
        defer_cgroupns: !procs_fds.is_empty() && ctx.namespaces.contains(Namespaces::CGROUP),
        cgroup,
        _procs_fds: procs_fds,
        procs_raw,
        rlimits,
    })
}

/// Says once per process why containers run without the default budget.
fn budget_unavailable(e: &Error) {
    static SAID: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if !SAID.swap(true, std::sync::atomic::Ordering::Relaxed) {
        tracing::warn!(
            error = %e,
            "containers run without the default pids budget and CPU weight (their processes \
             count against the supervisor's own); give a delegated cgroup with cgroup_parent() \
             to get them"
        );
    } else {
        tracing::debug!(error = %e, "no default budget for this container");
    }
}

impl PreparedLimits {
    /// The child's view.
    pub(crate) fn spec(&self) -> LimitsSpec<'_> {
        LimitsSpec {
            cgroup_procs: &self.procs_raw,
            unshare_cgroupns: self.defer_cgroupns,
            rlimits: &self.rlimits,
        }
    }

    /// Clone flags to leave out of `clone()` because the child creates them itself.
    pub(crate) fn deferred_clone_flags(&self) -> libc::c_int {
        if self.defer_cgroupns {
            libc::CLONE_NEWCGROUP
        } else {
            0
        }
    }
}

/// The `prlimit64` calls the child makes, in the order they were set.
fn rlimit_table(l: &LimitsConfig) -> Vec<RawRlimit> {
    l.rlimits
        .iter()
        .map(|&(res, soft, hard)| RawRlimit {
            resource: res.raw(),
            soft,
            hard,
        })
        .collect()
}

/// Checks every limit, naming the option of the first that is wrong.
fn validate(l: &LimitsConfig) -> Result<()> {
    let bad = |option: &'static str, reason: String| Err(Error::InvalidLimit { option, reason });
    if let Some(m) = l.memory {
        if m < 4096 {
            return bad("memory_limit", format!("{m} bytes is less than one page"));
        }
    }
    if l.memory_swap.is_some() && l.memory.is_none() {
        return bad(
            "memory_swap_limit",
            "needs memory_limit too (the swap limit is on top of the memory limit)".into(),
        );
    }
    if let Some(p) = &l.cgroup_path {
        let bad_path = |why: &str| bad("cgroup_path", format!("{}: {why}", p.display()));
        if !p
            .components()
            .any(|c| matches!(c, std::path::Component::Normal(_)))
        {
            return bad_path(if p.is_absolute() {
                "the hierarchy's root cannot be a container's cgroup"
            } else {
                "empty"
            });
        }
        if p.components().any(|c| {
            !matches!(
                c,
                std::path::Component::RootDir | std::path::Component::Normal(_)
            )
        }) {
            return bad_path("has `.` or `..` components");
        }
        if l.cgroup_parent.is_some() {
            return bad_path("cgroup_parent was given too; choose one");
        }
    }
    if l.cgroup_join {
        let what = match (&l.cgroup_path, l.cgroup_of) {
            (Some(p), _) => ("join_cgroup_path", p.display().to_string()),
            (None, Some(pid)) => ("join_cgroup_of", format!("pid {pid}")),
            (None, None) => ("join_cgroup_path", String::new()),
        };
        let own_limit = l.memory.is_some()
            || l.memory_swap.is_some()
            || l.pids.is_some()
            || l.cpu.is_some()
            || l.cpu_weight.is_some()
            || l.wants_cpuset()
            || l.setup.is_some();
        if own_limit {
            return bad(
                what.0,
                format!(
                    "{}: a joined cgroup is another container's; its limits are not ours to set",
                    what.1
                ),
            );
        }
        if l.cgroup_parent.is_some() {
            return bad(
                what.0,
                format!("{}: cgroup_parent was given too; choose one", what.1),
            );
        }
    }
    if l.pids == Some(0) {
        return bad(
            "pids_limit",
            "0 would not even allow the first process".into(),
        );
    }
    if let Some(p) = l.cpu_period {
        if !(1000..=1_000_000).contains(&p) {
            return bad(
                "cpu_period",
                format!("{p} µs is outside the kernel's 1000..=1000000"),
            );
        }
    }
    if let Some(c) = l.cpu {
        // `{c:?}`: 1e300 prints as "1e300", not as 301 digits.
        if !c.is_finite() || c <= 0.0 {
            return bad(
                "cpu_limit",
                format!("{c:?} is not a positive number of CPUs"),
            );
        }
        if c > MAX_CPU_LIMIT {
            return bad(
                "cpu_limit",
                format!(
                    "{c:?} CPUs is above the largest accepted, {MAX_CPU_LIMIT:?} (MAX_CPU_LIMIT)"
                ),
            );
        }
        if l.cpu_quota_us().unwrap_or(0) < 1000 {
            let period = l.cpu_period_us();
            return bad(
                "cpu_limit",
                format!(
                    "{c:?} CPUs is below the kernel's minimum quota of 1 ms per {} ms ({:?})",
                    period / 1000,
                    1000.0 / period as f64
                ),
            );
        }
    }
    if let Some(w) = l.cpu_weight {
        if !(1..=10_000).contains(&w) {
            return bad("cpu_weight", format!("{w} is outside 1..=10000"));
        }
    }
    if let Some(s) = &l.cpuset_mems {
        parse_cpu_list(s).map_err(|reason| Error::InvalidLimit {
            option: "cpuset_mems",
            reason,
        })?;
    }
    if let Some(s) = &l.cpuset {
        parse_cpu_list(s).map_err(|reason| Error::InvalidLimit {
            option: "cpuset",
            reason,
        })?;
    }
    for &(res, soft, hard) in &l.rlimits {
        if soft > hard {
            return bad(
                "rlimit",
                format!("{res:?}: soft limit {soft} is above hard limit {hard}"),
            );
        }
    }
    if l.output_limit == Some(0) {
        return bad(
            "output_limit",
            "0 bytes; leave stdout/stderr unpiped instead".into(),
        );
    }
    if l.timeout == Some(Duration::ZERO) {
        return bad("timeout", "zero".into());
    }
    Ok(())
}

/// Checks a CPU list such as `0-3,6`: comma-separated numbers and ascending ranges.
fn parse_cpu_list(s: &str) -> std::result::Result<Vec<(u32, u32)>, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("empty CPU list".into());
    }
    s.split(',')
        .map(|part| {
            let num = |t: &str| {
                t.trim()
                    .parse::<u32>()
                    .map_err(|_| format!("{part:?} in {s:?} is not a CPU number or range"))
            };
            match part.split_once('-') {
                Some((a, b)) => {
                    let (a, b) = (num(a)?, num(b)?);
                    if a > b {
                        return Err(format!("range {part:?} in {s:?} is descending"));
                    }
                    Ok((a, b))
                }
                None => num(part).map(|n| (n, n)),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builder::limits::Resource;

    fn invalid(l: &LimitsConfig) -> (&'static str, String) {
        match validate(l) {
            Err(Error::InvalidLimit { option, reason }) => (option, reason),
            other => panic!("{l:?}: expected InvalidLimit, got {other:?}"),
        }
    }

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpu_list("0-3,6").unwrap(), [(0, 3), (6, 6)]);
        assert_eq!(parse_cpu_list(" 1 , 2-2 ").unwrap(), [(1, 1), (2, 2)]);
        assert!(parse_cpu_list("3-1").unwrap_err().contains("descending"));
        assert!(parse_cpu_list("a")
            .unwrap_err()
            .contains("not a CPU number"));
        assert!(parse_cpu_list("1,,2").is_err());
        assert!(parse_cpu_list("-1").is_err());
        assert_eq!(parse_cpu_list("").unwrap_err(), "empty CPU list");
        let l = LimitsConfig {
            cpuset: Some("0-".into()),
            ..Default::default()
        };
        assert_eq!(invalid(&l).0, "cpuset");
    }

    #[test]
    fn validation_names_the_option() {
        let mut l = LimitsConfig {
            cpu: Some(0.001),
            ..Default::default()
        };
        let e = validate(&l).unwrap_err().to_string();
        assert!(e.contains("cpu_limit"), "{e}");
        l.cpu = Some(0.2);
        assert_eq!(l.cpu_quota_us(), Some(20_000));
        l.rlimits.push((Resource::Nofile, 10, 5));
        let e = validate(&l).unwrap_err().to_string();
        assert!(e.contains("soft limit 10"), "{e}");
    }

    #[test]
    fn cpu_limits_must_be_a_sane_positive_number() {
        for bad in [
            f64::NAN,
            f64::INFINITY,
            -1.0,
            0.0,
            0.009,
            MAX_CPU_LIMIT * 2.0,
            1e300,
        ] {
            let l = LimitsConfig {
                cpu: Some(bad),
                ..Default::default()
            };
            assert_eq!(invalid(&l).0, "cpu_limit", "{bad}");
        }
        let (_, reason) = invalid(&LimitsConfig {
            cpu: Some(1e300),
            ..Default::default()
        });
        assert!(reason.starts_with("1e300 CPUs is above"), "{reason}");
        for good in [0.01, 0.5, 2.0, MAX_CPU_LIMIT] {
            let l = LimitsConfig {
                cpu: Some(good),
                ..Default::default()
            };
            validate(&l).unwrap();
        }
    }

    #[test]
    fn other_limits_are_checked() {
        let cases: [(LimitsConfig, &str); 7] = [
            (
                LimitsConfig {
                    memory: Some(4095),
                    ..Default::default()
                },
                "memory_limit",
            ),
            (
                LimitsConfig {
                    memory_swap: Some(0),
                    ..Default::default()
                },
                "memory_swap_limit",
            ),
            (
                LimitsConfig {
                    pids: Some(0),
                    ..Default::default()
                },
                "pids_limit",
            ),
            (
                LimitsConfig {
                    cpu_weight: Some(0),
                    ..Default::default()
                },
                "cpu_weight",
            ),
            (
                LimitsConfig {
                    cpu_weight: Some(10_001),
                    ..Default::default()
                },
                "cpu_weight",
            ),
            (
                LimitsConfig {
                    output_limit: Some(0),
                    ..Default::default()
                },
                "output_limit",
            ),
            (
                LimitsConfig {
                    timeout: Some(Duration::ZERO),
                    ..Default::default()
                },
                "timeout",
            ),
        ];
        for (l, option) in cases {
            assert_eq!(invalid(&l).0, option);
        }
        let fine = LimitsConfig {
            memory: Some(4096),
            memory_swap: Some(0),
            pids: Some(1),
            cpu_weight: Some(10_000),
            cpuset: Some("0".into()),
            output_limit: Some(1),
            timeout: Some(Duration::from_nanos(1)),
            rlimits: vec![(Resource::Core, 0, 0)],
            ..Default::default()
        };
        validate(&fine).unwrap();
        validate(&LimitsConfig::default()).unwrap();
    }

    #[test]
    fn the_rlimit_table_is_one_raw_call_per_resource() {
        let mut b = crate::builder::ContainerBuilder::new("/bin/true");
        b.rlimit(Resource::Nofile, 64, 64)
            .rlimit(Resource::Core, 0, 0)
            .rlimit(Resource::Nofile, 32, 128);
        let table = rlimit_table(&b.limits);
        let rows: Vec<(libc::c_int, u64, u64)> =
            table.iter().map(|r| (r.resource, r.soft, r.hard)).collect();
        // The last setting of a resource replaces the earlier one.
        assert_eq!(
            rows,
            [
                (libc::RLIMIT_CORE as libc::c_int, 0, 0),
                (libc::RLIMIT_NOFILE as libc::c_int, 32, 128)
            ]
        );
    }
}
