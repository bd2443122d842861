//! ====================================================================================
//! THE CHILD: code that runs between `clone()` and `execve()`.
//!
//! This directory holds all of it: `mod.rs` has the entry point and the order of the setup
//! steps; each further file holds the steps of one concern, under the same rules.
//!
//! Everything in this file runs in the cloned child, on a borrowed stack, sharing the
//! supervisor's memory (`CLONE_VM`) while the cloning thread sleeps (`CLONE_VFORK`). The
//! supervisor is multithreaded: any other thread may have held the allocator's lock, a
//! tracing lock or stdout's lock at the instant of the clone, and those locks stay held
//! forever in here. So, past this line:
//!
//!   * NO allocation or deallocation (no Box, Vec, String, format!, CString::new);
//!   * NO locks, NO logging or tracing, NO panics (no unwrap, no unchecked indexing);
//!   * NO Drop of heap values, NO `std::process::exit`, NO tokio or signal-hook state;
//!   * NO glibc `setuid`/`setgid`/`setgroups` wrappers (they broadcast to threads that do
//!     not exist here and hang): use raw `syscall(SYS_setresuid, ..)`;
//!   * only raw syscalls, reads of the [`ChildSpec`] that `plan/` prepared, writes to
//!     pre-opened descriptors, and finally `execve` or `_exit`.
//!
//! A failing step writes `(stage, errno)` to the close-on-exec error pipe and `_exit`s;
//! the parent reads EOF when execve succeeded.
//! ====================================================================================

use std::convert::Infallible;
use std::ffi::CStr;

use libc::{c_int, c_void};

use crate::error::Stage;
use sys::CStrList;
pub(crate) use sys::{check, errno, Step};

pub(crate) mod fs;
pub(crate) mod join;
pub(crate) mod limits;
pub(crate) mod security;
pub(crate) mod session;
pub(crate) mod sys;
pub(crate) mod time;
pub(crate) mod user;

/// Everything the child needs, borrowed from the [`Plan`](crate::plan::Plan), which
/// outlives the child's use of it (the parent sleeps until execve or exit).
pub(crate) struct ChildSpec<'a> {
    pub(crate) path: &'a CStr,
    pub(crate) argv: CStrList<'a>,
    pub(crate) envp: CStrList<'a>,
    pub(crate) hostname: Option<&'a CStr>,
    pub(crate) domainname: Option<&'a CStr>,
    pub(crate) cwd: Option<&'a CStr>,
    /// Descriptors to put on 0, 1, 2; `-1` inherits.
    pub(crate) stdio: [c_int; 3],
    /// Write end of the error pipe.
    pub(crate) err_fd: c_int,
    pub(crate) mount_private: bool,
    pub(crate) mount_proc: bool,
    pub(crate) loopback_up: bool,
    /// Terminal, init and die-with-supervisor settings (`session.rs`).
    pub(crate) session: session::ChildSession<'a>,
    /// Namespaces to join first (`join.rs`).
    pub(crate) join: join::JoinSpec<'a>,
    /// uid/gid maps, groups, gid, uid (`user.rs`).
    pub(crate) user: user::UserSpec<'a>,
    /// Time namespace (`time.rs`).
    pub(crate) time: time::TimeSpec<'a>,
    /// Root filesystem and mounts (`fs.rs`).
    pub(crate) fs: fs::FsSpec<'a>,
    /// Cgroup to join, rlimits to set (`limits.rs`).
    pub(crate) limits: limits::LimitsSpec<'a>,
    /// Hardening steps (`child/security.rs`).
    pub(crate) security: security::SecuritySpec<'a>,
}

/// The clone entry point. Never returns: execs or `_exit`s.
pub(crate) extern "C" fn entry(arg: *mut c_void) -> c_int {
    // SAFETY: `arg` is the `ChildSpec` the parent passed to clone, alive until we exec.
    let spec = unsafe { &*(arg as *const ChildSpec<'_>) };
    let Err((stage, err)) = setup_and_exec(spec);
    sys::report(spec.err_fd, stage, err);
    sys::exit(127)
}

fn setup_and_exec(spec: &ChildSpec<'_>) -> Result<Infallible, (Stage, c_int)> {
    reset_signal_dispositions();
    join::enter(&spec.join, spec)?;
    user::wait_for_maps(&spec.user)?;
    user::write_own_maps(&spec.user)?;
    time::enter(&spec.time)?;
    if spec.mount_private {
        // Before anything else is mounted: otherwise mounts propagate back to the host.
        let ret = sys::mount(None, c"/", None, libc::MS_REC | libc::MS_PRIVATE, None);
        check(ret, Stage::MountPrivate)?;
    }
    if let Some(name) = spec.hostname {
        check(sys::sethostname(name), Stage::SetHostname)?;
    }
    if let Some(name) = spec.domainname {
        check(sys::setdomainname(name), Stage::SetDomainname)?;
    }
    if spec.loopback_up {
        loopback_up()?;
    }
    // Join the cgroup while the host's /sys/fs/cgroup is still reachable (before pivot_root).
    limits::join_cgroup(&spec.limits)?;
    fs::mount(&spec.fs)?;
    if spec.fs.root.is_some() && spec.security.under_root {
        // Masks go on while the host's /dev/null can still be bound (before pivot_root).
        security::mask_paths_now(&spec.security)?;
    }
    fs::change_root(&spec.fs)?;
    if spec.mount_proc {
        // A fresh procfs for the new PID namespace: `ps` inside then lists only the
        // container's processes.
        let flags = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
        let ret = sys::mount(Some(c"proc"), c"/proc", Some(c"proc"), flags, None);
        check(ret, Stage::MountProc)?;
    }
    security::mask_paths(&spec.security)?;
    session::attach_terminal(spec)?;
    limits::set_rlimits(&spec.limits)?;
    for (target, &fd) in spec.stdio.iter().enumerate() {
        if fd >= 0 {
            // The plan keeps every source at 3 or above, so dup2 never clobbers a source
            // and always clears close-on-exec on the target.
            check(sys::dup2(fd, target as c_int), Stage::Stdio)?;
        }
    }
    if let Some(dir) = spec.cwd {
        check(sys::chdir(dir), Stage::Chdir)?;
    }
    // Descriptors first: without no_new_privs the filter goes in with the bounding set
    // (next), and an allow list need not allow `close_range` (OCI profiles older than
    // Linux 5.9 do not). Bounding set dropped and PR_SET_KEEPCAPS set while CAP_SETPCAP is
    // still there; then the identity change; then the remaining capability sets; PDEATHSIG
    // (armed after every credential change, which would clear it); seccomp last.
    security::fds(&spec.security)?;
    security::before_id_change(&spec.security)?;
    user::set_ids(&spec.user)?;
    security::drop_privileges(&spec.security)?;
    // After fds: it also clears close-on-exec on the descriptors the init inherits.
    session::arm_death(spec)?;
    session::wait_at_gate(spec)?;
    security::seccomp(&spec.security)?;
    // Unblock everything (the cloning thread blocked all signals) right before execve.
    check(sys::unblock_all_signals(), Stage::Signals)?;
    Err(session::exec(spec))
}

/// Every signal back to SIG_DFL. Caught signals would be reset by execve anyway, but
/// ignored ones survive it (SIGPIPE, which Rust programs ignore, in particular), and until
/// execve no handler of the parent may run on our borrowed stack.
fn reset_signal_dispositions() {
    for sig in 1..=64 {
        if sig != libc::SIGKILL && sig != libc::SIGSTOP {
            sys::default_signal_action(sig);
        }
    }
}

/// `ip link set lo up`, with the SIOCGIFFLAGS/SIOCSIFFLAGS ioctls on a throwaway socket.
fn loopback_up() -> Step {
    let sock = sys::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
    check(sock, Stage::LoopbackUp)?;
    let ret = sys::set_interface_up(sock, *b"lo\0");
    let err = errno();
    sys::close(sock);
    if ret == -1 {
        return Err((Stage::LoopbackUp, err));
    }
    Ok(())
}
