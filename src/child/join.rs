//! THE CHILD, joining namespaces: `setns` into other containers' namespaces (or any
//! `/proc/<pid>/ns/*` file) before every other step, and the second clone that puts the
//! workload inside a joined PID namespace.
//!
//! Same rules as `mod.rs`. `setns(CLONE_NEWPID)` only decides the PID namespace of the
//! caller's *future children*, so when a PID namespace is joined this process (the
//! "intermediate") clones the workload with `CLONE_VM | CLONE_VFORK | CLONE_PARENT` on a
//! second prepared stack: `CLONE_PARENT` makes the workload a direct child of the
//! supervisor (its pidfd, `waitid` and exit status work like any container's, nothing has
//! to relay them), and `CLONE_VFORK` keeps the intermediate asleep until the workload has
//! exec'd or failed. The intermediate then sends the workload's pid (as the supervisor sees
//! it) over a pipe and exits; the supervisor reaps it and adopts the workload.
//! The workload runs the same entry point; `entered` tells it the joins are done.

use std::sync::atomic::{AtomicBool, Ordering};

use libc::{c_int, c_void};

use super::{check, errno, slice, Step};
use crate::error::Stage;

/// One `setns` call: a pidfd with a set of `CLONE_NEW*` flags, or a namespace file with
/// its single type.
pub(crate) struct JoinFd {
    pub(crate) fd: c_int,
    pub(crate) nstype: c_int,
}

/// Prepared by `join.rs`.
pub(crate) struct JoinSpec {
    pub(crate) entries: *const JoinFd,
    pub(crate) n_entries: usize,
    /// A PID namespace is joined: clone the workload after the setns calls.
    pub(crate) fork_workload: bool,
    /// Top of the workload's stack (for `fork_workload`).
    pub(crate) stack_top: *mut c_void,
    /// Write end of the pipe that carries the workload's pid to the supervisor.
    pub(crate) pid_fd: c_int,
    /// Set by the intermediate before it clones the workload, which shares its memory.
    pub(crate) entered: AtomicBool,
    /// `CLONE_NEW*` flags to create with `unshare` after the joins instead of at clone: with
    /// a joined user namespace, new namespaces must be owned by *it* (a mount namespace
    /// made at clone would belong to the host's, and making `/` private in it would fail
    /// with EPERM). A new PID namespace among them takes effect for the cloned workload.
    pub(crate) unshare_flags: c_int,
}

impl JoinSpec {
    /// Nothing to join.
    pub(crate) fn none() -> JoinSpec {
        JoinSpec {
            entries: std::ptr::null(),
            n_entries: 0,
            fork_workload: false,
            stack_top: std::ptr::null_mut(),
            pid_fd: -1,
            entered: AtomicBool::new(false),
            unshare_flags: 0,
        }
    }
}

/// Joins the namespaces. With a joined PID namespace, never returns in the intermediate:
/// it clones `entry(arg)` as the workload, reports its pid and exits.
pub(crate) fn enter(
    spec: &JoinSpec,
    entry: extern "C" fn(*mut c_void) -> c_int,
    arg: *mut c_void,
) -> Step {
    if spec.n_entries == 0 || spec.entered.load(Ordering::SeqCst) {
        return Ok(());
    }
    for e in slice((spec.entries, spec.n_entries)) {
        // The plan put entries holding the user namespace first: with it we gain the
        // capabilities the other joins need over namespaces it owns. man 2 setns.
        // SAFETY: plain syscall on a descriptor the plan opened.
        check(unsafe { libc::setns(e.fd, e.nstype) }, Stage::Join)?;
    }
    if spec.unshare_flags != 0 {
        // SAFETY: plain syscall. This child has a private address space (joining a user
        // namespace needs it), so unshare may create a user-owned set of namespaces.
        check(unsafe { libc::unshare(spec.unshare_flags) }, Stage::Join)?;
    }
    if !spec.fork_workload {
        return Ok(());
    }
    spec.entered.store(true, Ordering::SeqCst);
    let flags = libc::CLONE_VM | libc::CLONE_VFORK | libc::CLONE_PARENT | libc::SIGCHLD;
    // SAFETY: `entry` obeys the child rules; the stack is a prepared mapping nobody else
    // uses; `arg` (the ChildSpec) stays valid: everybody up the chain sleeps in vfork.
    let pid = unsafe {
        libc::clone(
            entry,
            spec.stack_top,
            flags,
            arg,
            std::ptr::null_mut::<c_int>(),
            std::ptr::null_mut::<c_void>(),
            std::ptr::null_mut::<c_int>(),
        )
    };
    if pid == -1 {
        return Err((Stage::JoinClone, errno()));
    }
    // The workload has exec'd or exited. Hand its pid over (4 bytes: one atomic write)
    // and leave; the supervisor reaps us.
    let bytes = pid.to_ne_bytes();
    // SAFETY: valid buffer and descriptor; _exit runs no destructors.
    unsafe {
        libc::write(spec.pid_fd, bytes.as_ptr().cast(), bytes.len());
        libc::_exit(0)
    }
}
