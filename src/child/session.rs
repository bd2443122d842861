//! THE CHILD (continued): terminal, die-with-supervisor, and the final exec (of the init
//! or of the workload). Same rules as `mod.rs`: no allocation, no locks, no panics, raw
//! syscalls only, every value prepared by the parent (`session.rs`, `init.rs`).

use std::ptr;

use libc::{c_char, c_int};

use super::{check, errno, ChildSpec, Step};
use crate::error::Stage;

/// The child's share of the session settings: plain numbers and pointers into the plan.
#[derive(Clone, Copy)]
pub(crate) struct ChildSession {
    /// Pty slave to become the controlling terminal and fds 0, 1, 2; `-1` for none.
    pub(crate) pty_slave: c_int,
    /// The init's memfd; `-1` execs the workload directly.
    pub(crate) init_fd: c_int,
    /// The init's argv (null-terminated), when `init_fd >= 0`.
    pub(crate) init_argv: *const *const c_char,
    /// Descriptors the init must inherit (report pipe, lifeline); `-1` = unused.
    pub(crate) pass_fds: [c_int; 2],
    /// Arm `PR_SET_PDEATHSIG(SIGKILL)`: only when cloned from a thread that lives as long
    /// as the process (the spawner thread), never from tokio's retiring blocking threads.
    pub(crate) death_signal: bool,
    /// This container's lifeline, a pidfd of the supervisor process (readable once it
    /// exited), or `-1`.
    pub(crate) lifeline: c_int,
}

impl ChildSession {
    /// Nothing to do: no terminal, no init, no death signal.
    pub(crate) const NONE: ChildSession = ChildSession {
        pty_slave: -1,
        init_fd: -1,
        init_argv: ptr::null(),
        pass_fds: [-1, -1],
        death_signal: false,
        lifeline: -1,
    };
}

/// A new session with the pty as its controlling terminal, on fds 0, 1 and 2 (explicit
/// stdio settings are dup'ed over these afterwards by the core's stdio step).
///
/// The new session is also what keeps the workload away from the supervisor's own
/// terminal: TIOCSTI (CVE-2017-5226) needs the target to be the caller's controlling tty.
pub(crate) fn attach_terminal(spec: &ChildSpec) -> Step {
    let slave = spec.session.pty_slave;
    if slave < 0 {
        return Ok(());
    }
    // SAFETY: plain syscalls on a descriptor the plan opened. man 2 setsid, man 4 tty_ioctl.
    unsafe {
        check(libc::setsid(), Stage::Terminal)?;
        check(libc::ioctl(slave, libc::TIOCSCTTY, 0), Stage::Terminal)?;
        for target in 0..3 {
            check(libc::dup2(slave, target), Stage::Terminal)?;
        }
    }
    Ok(())
}

/// Die with the supervisor. Runs after the descriptors were marked close-on-exec (it
/// clears the flag on the ones the init needs) and after any credential change (which
/// would clear a parent-death signal).
pub(crate) fn arm_death(spec: &ChildSpec) -> Step {
    let s = &spec.session;
    if s.death_signal {
        // SAFETY: plain syscall. man 2 PR_SET_PDEATHSIG.
        let ret = unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) };
        check(ret, Stage::DeathSignal)?;
        // The supervisor may have died before the signal was armed: the lifeline tells.
        if s.lifeline >= 0 && supervisor_exited(s.lifeline) {
            return Err((Stage::DeathSignal, libc::ESRCH));
        }
    }
    if s.init_fd >= 0 {
        for &fd in &s.pass_fds {
            if fd >= 0 {
                // SAFETY: plain syscall. man 2 fcntl.
                check(
                    unsafe { libc::fcntl(fd, libc::F_SETFD, 0) },
                    Stage::InitExec,
                )?;
            }
        }
    }
    Ok(())
}

/// Whether the process of pidfd `fd` has exited (a pidfd is readable then, and only then).
fn supervisor_exited(fd: c_int) -> bool {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd, zero timeout. man 2 poll.
    let n = unsafe { libc::poll(&mut pfd, 1, 0) };
    n == 1 && pfd.revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0
}

/// The last step: exec the init from its memfd, or the workload itself. Returns only on
/// failure, with the stage that failed.
pub(crate) fn exec(spec: &ChildSpec<'_>) -> (Stage, c_int) {
    let s = &spec.session;
    if s.init_fd >= 0 {
        // SAFETY: the memfd, an empty C string with AT_EMPTY_PATH, and argv/envp arrays
        // from the plan. man 2 execveat.
        unsafe {
            libc::syscall(
                libc::SYS_execveat,
                s.init_fd,
                c"".as_ptr(),
                s.init_argv,
                spec.envp.as_ptr(),
                libc::AT_EMPTY_PATH,
            )
        };
        return (Stage::InitExec, errno());
    }
    super::sys::execve(spec.path, spec.argv, spec.envp);
    (Stage::Execve, errno())
}
