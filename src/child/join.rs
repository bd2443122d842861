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
//!
//! A created container (`create`) is the exception: its workload stops at the start gate,
//! so the intermediate (already cloned fork-style) clones it without `CLONE_VM |
//! CLONE_VFORK`, as a copy, and reports its pid at once. That is runc's scheme for an OCI
//! `create` joining a PID namespace.

use std::sync::atomic::{AtomicBool, Ordering};

use libc::{c_int, c_void};

use super::sys::{self, errno, StackTop, Step};
use super::ChildSpec;
use crate::error::Stage;

/// One `setns` call: a pidfd with a set of `CLONE_NEW*` flags, or a namespace file with
/// its single type.
pub(crate) struct JoinFd {
    pub(crate) fd: c_int,
    pub(crate) nstype: c_int,
}

/// Prepared by `plan/join.rs`.
pub(crate) struct JoinSpec<'a> {
    /// The `setns` calls, those holding the user namespace first.
    pub(crate) entries: &'a [JoinFd],
    /// A PID namespace is joined (or created after the joins): clone the workload after
    /// the setns calls.
    pub(crate) workload: Option<Workload<'a>>,
    /// Set by the intermediate before it clones the workload, which shares its memory.
    pub(crate) entered: AtomicBool,
    /// `CLONE_NEW*` flags to create with `unshare` after the joins instead of at clone: with
    /// a joined user namespace, new namespaces must be owned by *it* (a mount namespace
    /// made at clone would belong to the host's, and making `/` private in it would fail
    /// with EPERM). A new PID namespace among them takes effect for the cloned workload.
    pub(crate) unshare_flags: c_int,
}

/// What the intermediate needs to clone the workload.
pub(crate) struct Workload<'a> {
    /// The workload's own stack.
    pub(crate) stack: StackTop<'a>,
    /// Write end of the pipe that carries the workload's pid to the supervisor.
    pub(crate) pid_fd: c_int,
}

/// Joins the namespaces. With a joined PID namespace, never returns in the intermediate:
/// it clones the workload (`child`, from the top of `entry`), reports its pid and exits.
pub(crate) fn enter(spec: &JoinSpec<'_>, child: &ChildSpec<'_>) -> Step {
    if spec.entries.is_empty() || spec.entered.load(Ordering::SeqCst) {
        return Ok(());
    }
    for e in spec.entries {
        // The plan put entries holding the user namespace first: with it we gain the
        // capabilities the other joins need over namespaces it owns.
        sys::setns(e.fd, e.nstype, Stage::Join)?;
    }
    if spec.unshare_flags != 0 {
        // This child has a private address space (joining a user namespace needs it), so
        // unshare may create a user-owned set of namespaces.
        sys::unshare(spec.unshare_flags, Stage::Join)?;
    }
    let Some(workload) = &spec.workload else {
        return Ok(());
    };
    spec.entered.store(true, Ordering::SeqCst);
    let arg = child as *const ChildSpec<'_> as *mut c_void;
    // A created container's workload stops at its start gate, so we cannot sleep in vfork
    // until it execs: it gets its own copy of our memory (ours is already a private copy
    // of the supervisor's: `create` clones us fork-style) and we report its pid at once.
    let gated = child.session.gate >= 0;
    // SAFETY: `entry` obeys the child rules and takes the ChildSpec; `child` stays valid
    // because everybody up the chain sleeps in vfork until the workload has exec'd or
    // exited, or (gated) because the workload reads it in its own copy of our memory; the
    // stack is a prepared mapping nobody else uses (the StackTop invariant).
    let pid = unsafe { sys::clone_parent(super::entry, workload.stack, arg, gated) };
    if pid == -1 {
        return Err((Stage::JoinClone, errno()));
    }
    // The workload has exec'd or exited (gated: it is on its way to its gate, and reports
    // on the error pipe itself). Hand its pid over (4 bytes: one atomic write) and leave;
    // the supervisor reaps us.
    sys::write(workload.pid_fd, &pid.to_ne_bytes());
    sys::exit(0)
}
