//! THE CHILD, limits: joining the cgroup and setting rlimits.
//!
//! Same rules as `child/mod.rs`: no allocation, no locks, no panics; raw syscalls on what
//! the parent prepared (`plan/limits.rs`).

use libc::c_int;

use super::sys::{self, check, errno, Step};
use crate::error::Stage;

/// One `prlimit64` call's worth: the resource and its new (soft, hard) pair.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub(crate) struct RawRlimit {
    pub(crate) resource: c_int,
    pub(crate) soft: u64,
    pub(crate) hard: u64,
}

/// Prepared by `plan/limits.rs`.
pub(crate) struct LimitsSpec<'a> {
    /// Descriptors of `cgroup.procs` files, opened for writing by the parent.
    pub(crate) cgroup_procs: &'a [c_int],
    /// Create the cgroup namespace ourselves, after joining the cgroup.
    pub(crate) unshare_cgroupns: bool,
    pub(crate) rlimits: &'a [RawRlimit],
}

/// Moves this process into its cgroup (every hierarchy) by writing `0` — "the writer" —
/// to each `cgroup.procs`, before any user code can run: from here on every fork of the
/// workload is accounted and limited.
///
/// Why not `clone3(CLONE_INTO_CGROUP)` on v2: the spawn path uses glibc's `clone()` with
/// `CLONE_VM` on a preallocated stack; `clone3` has no libc wrapper and with `CLONE_VM`
/// the child would resume on the new stack inside the raw syscall's caller, which cannot
/// be done without hand-written assembly. Joining here gives the same guarantee (nothing
/// of the workload runs outside the cgroup) for one `write`; the descriptors were opened
/// by the parent, so the kernel checks the parent's credentials and cgroup namespace.
pub(crate) fn join_cgroup(spec: &LimitsSpec<'_>) -> Step {
    for &fd in spec.cgroup_procs {
        // man 7 cgroups ("Writing the value 0").
        let ret = sys::write(fd, b"0");
        if ret != 1 {
            return Err((Stage::CgroupJoin, if ret < 0 { errno() } else { libc::EIO }));
        }
    }
    if spec.unshare_cgroupns {
        // Rooted at the cgroup we just joined, so the workload sees itself at `/`.
        sys::unshare(libc::CLONE_NEWCGROUP, Stage::CgroupNamespace)?;
    }
    Ok(())
}

/// Applies the rlimits with the raw `prlimit64` syscall on ourselves.
pub(crate) fn set_rlimits(spec: &LimitsSpec<'_>) -> Step {
    for l in spec.rlimits {
        check(sys::set_rlimit(l.resource, l.soft, l.hard), Stage::Rlimit)?;
    }
    Ok(())
}
