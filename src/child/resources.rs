//! THE CHILD, resources steps: joining the cgroup and setting rlimits.
//!
//! Same rules as `child/mod.rs`: no allocation, no locks, no panics; raw syscalls on what
//! the parent prepared (`limits.rs`).

use libc::c_int;

use super::{check, errno, slice, Step};
use crate::error::Stage;

/// One `prlimit64` call's worth: the resource and its new (soft, hard) pair.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub(crate) struct RawRlimit {
    pub(crate) resource: c_int,
    pub(crate) soft: u64,
    pub(crate) hard: u64,
}

/// What the resources steps need, as raw pointers into the plan's storage.
pub(crate) struct ResourceSpec {
    /// Descriptors of `cgroup.procs` files, opened for writing by the parent.
    pub(crate) cgroup_procs: (*const c_int, usize),
    /// Create the cgroup namespace ourselves, after joining the cgroup.
    pub(crate) unshare_cgroupns: bool,
    pub(crate) rlimits: (*const RawRlimit, usize),
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
pub(crate) fn join_cgroup(spec: &ResourceSpec) -> Step {
    for &fd in slice(spec.cgroup_procs) {
        // SAFETY: a valid buffer of one byte. man 7 cgroups ("Writing the value 0").
        let ret = unsafe { libc::write(fd, b"0".as_ptr().cast(), 1) };
        if ret != 1 {
            return Err((Stage::CgroupJoin, if ret < 0 { errno() } else { libc::EIO }));
        }
    }
    if spec.unshare_cgroupns {
        // Rooted at the cgroup we just joined, so the workload sees itself at `/`.
        // SAFETY: plain syscall. man 2 unshare.
        check(
            unsafe { libc::unshare(libc::CLONE_NEWCGROUP) },
            Stage::CgroupNamespace,
        )?;
    }
    Ok(())
}

/// Applies the rlimits with the raw `prlimit64` syscall on ourselves (pid 0).
pub(crate) fn set_rlimits(spec: &ResourceSpec) -> Step {
    for l in slice(spec.rlimits) {
        let new = libc::rlimit64 {
            rlim_cur: l.soft,
            rlim_max: l.hard,
        };
        // SAFETY: valid pointer to `new`, null old-limit pointer. man 2 prlimit.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_prlimit64,
                0 as libc::pid_t,
                l.resource,
                &new as *const libc::rlimit64,
                std::ptr::null_mut::<libc::rlimit64>(),
            )
        };
        check(ret as c_int, Stage::Rlimit)?;
    }
    Ok(())
}
