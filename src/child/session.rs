//! THE CHILD (continued): terminal, die-with-supervisor, and the final exec (of the init
//! or of the workload). Same rules as `mod.rs`: no allocation, no locks, no panics, the
//! system calls of `sys.rs` only, every value prepared by the parent (`plan/session.rs`,
//! `init.rs`).

use libc::{c_int, c_ulong};

use super::sys::{self, CStrList};
use super::{check, errno, ChildSpec, Step};
use crate::error::Stage;

/// The child's share of the session settings, borrowed from the plan's `SessionPlan`.
#[derive(Clone, Copy)]
pub(crate) struct ChildSession<'a> {
    /// Pty slave to become the controlling terminal and fds 0, 1, 2; `-1` for none.
    pub(crate) pty_slave: c_int,
    /// The init to exec instead of the workload; `None` execs the workload directly.
    pub(crate) init: Option<InitExec<'a>>,
    /// Arm `PR_SET_PDEATHSIG(SIGKILL)`: only when cloned from a thread that lives as long
    /// as the process (the spawner thread), never from tokio's retiring blocking threads.
    pub(crate) death_signal: bool,
    /// This container's lifeline, a pidfd of the supervisor process (readable once it
    /// exited), or `-1`.
    pub(crate) lifeline: c_int,
    /// The start gate to wait at (`create`), or `-1`.
    pub(crate) gate: c_int,
}

/// The built-in init, exec'd from its memfd.
#[derive(Clone, Copy)]
pub(crate) struct InitExec<'a> {
    /// The init's memfd.
    pub(crate) fd: c_int,
    /// The init's argv.
    pub(crate) argv: CStrList<'a>,
    /// Descriptors the init must inherit (report pipe, lifeline); `-1` = unused.
    pub(crate) pass_fds: [c_int; 2],
}

/// A new session with the pty as its controlling terminal, on fds 0, 1 and 2 (explicit
/// stdio settings are dup'ed over these afterwards by the stdio step).
///
/// The new session is also what keeps the workload away from the supervisor's own
/// terminal: TIOCSTI (CVE-2017-5226) needs the target to be the caller's controlling tty.
pub(crate) fn attach_terminal(spec: &ChildSpec) -> Step {
    let slave = spec.session.pty_slave;
    if slave < 0 {
        return Ok(());
    }
    check(sys::setsid(), Stage::Terminal)?;
    check(sys::set_controlling_tty(slave), Stage::Terminal)?;
    for target in 0..3 {
        check(sys::dup2(slave, target), Stage::Terminal)?;
    }
    Ok(())
}

/// Die with the supervisor. Runs after the descriptors were marked close-on-exec (it
/// clears the flag on the ones the init needs) and after any credential change (which
/// would clear a parent-death signal).
pub(crate) fn arm_death(spec: &ChildSpec) -> Step {
    let s = &spec.session;
    if s.death_signal {
        let ret = sys::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as c_ulong, 0);
        check(ret, Stage::DeathSignal)?;
        // The supervisor may have died before the signal was armed: the lifeline tells.
        if s.lifeline >= 0 && sys::pidfd_exited(s.lifeline) {
            return Err((Stage::DeathSignal, libc::ESRCH));
        }
    }
    if let Some(init) = &s.init {
        for &fd in &init.pass_fds {
            if fd >= 0 {
                check(sys::clear_cloexec(fd), Stage::InitExec)?;
            }
        }
    }
    Ok(())
}

/// A created container's start gate: says "waiting" on the error pipe, then waits for
/// one byte. EOF (the `Created` handle was dropped unstarted) ends the child with
/// `ECANCELED`. Runs after every other setup step but seccomp, so that `create` reports
/// the setup's errors and the filter cannot forbid the wait.
pub(crate) fn wait_at_gate(spec: &ChildSpec) -> Step {
    let gate = spec.session.gate;
    if gate < 0 {
        return Ok(());
    }
    let record = crate::protocol::encode(crate::protocol::MSG_GATED, 0);
    if sys::write(spec.err_fd, &record) != record.len() as isize {
        return Err((Stage::Gate, errno()));
    }
    match sys::read_byte(gate) {
        Ok(true) => {
            sys::close(gate);
            Ok(())
        }
        Ok(false) => Err((Stage::Gate, libc::ECANCELED)),
        Err(e) => Err((Stage::Gate, e)),
    }
}

/// The last step: exec the init from its memfd, or the workload itself. Returns only on
/// failure, with the stage that failed.
pub(crate) fn exec(spec: &ChildSpec<'_>) -> (Stage, c_int) {
    if let Some(init) = &spec.session.init {
        sys::execveat_fd(init.fd, init.argv, spec.envp);
        return (Stage::InitExec, errno());
    }
    sys::execve(spec.path, spec.argv, spec.envp);
    (Stage::Execve, errno())
}
