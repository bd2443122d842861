//! The prepared plan: everything the child needs, validated and allocated in the parent.
//!
//! `prepare` checks the configuration, gathers the facts several concerns need into one
//! [`Ctx`], then prepares each concern in the order the child needs them (each file beside
//! this one is one concern: its `prepare(config, ctx)` validates and allocates, and its
//! pure part is unit-tested without root). The result is a [`Plan`] that owns everything
//! the child reads: `Plan::run` lends it to the child as a borrowed [`ChildSpec`], so the
//! child (`child/`) allocates nothing and the compiler checks that what it reads outlives
//! it. `Plan::run` performs the clone; it blocks (vfork semantics) and so runs on tokio's
//! blocking pool.

use crate::builder::{ContainerBuilder, Defaults};
use crate::child::{self, ChildSpec};
use crate::error::{Errno, Error, Result, Stage};
use crate::handle::reaper::ChildGuard;
use crate::namespaces;
use crate::protocol::{self, RECORD_LEN};
use crate::sys::{self, Stack};
use crate::{Namespaces, Stdio};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

mod arena;
mod command;
mod ctx;
pub(crate) mod fs;
pub(crate) mod join;
pub(crate) mod limits;
mod resolve;
pub(crate) mod seccomp;
pub(crate) mod security;
pub(crate) mod session;
pub(crate) mod stdio;
pub(crate) mod time;
pub(crate) mod user;

pub(crate) use ctx::Ctx;

/// A spawn, ready to run.
pub(crate) struct Plan {
    /// What the child reads (`ChildSpec`'s storage).
    child: ChildParts,
    /// What the parent uses during and after the clone.
    parent: ParentState,
    /// Init, terminal and die-with-supervisor settings (`session.rs`).
    pub(crate) session: session::SessionPlan,
    /// The cgroup and rlimits (`limits.rs`).
    pub(crate) limits: limits::PreparedLimits,
}

/// The storage the child's [`ChildSpec`] borrows, owned by the plan until the child has
/// exec'd or exited.
struct ChildParts {
    command: command::PreparedCommand,
    stdio: [libc::c_int; 3],
    err_fd: libc::c_int,
    mount_private: bool,
    mount_proc: bool,
    loopback_up: bool,
    fs: fs::PreparedFs,
    user: user::PreparedUser,
    join: join::PreparedJoin,
    time: time::PreparedTime,
    security: security::PreparedSecurity,
}

/// The parent's side of the clone.
struct ParentState {
    namespaces: Namespaces,
    /// The uid/gid maps we write after the clone, if the child cannot write its own.
    user_maps: Option<user::ParentMaps>,
    join: join::ParentJoin,
    /// The network namespace to clone the child in (`net/`): the cloning thread enters it
    /// for the clone alone (`sys::ThreadNetns`).
    clone_in_netns: Option<std::sync::Arc<OwnedFd>>,
    /// Our copies of the child's descriptors; closed once the child has exec'd.
    child_fds: Vec<OwnedFd>,
    err_read: OwnedFd,
    err_write: Option<OwnedFd>,
}

impl ChildParts {
    /// The child's view of the plan. Taken once, by `Plan::run`.
    fn spec<'a>(
        &'a mut self,
        session: &'a session::SessionPlan,
        limits: &'a limits::PreparedLimits,
    ) -> ChildSpec<'a> {
        ChildSpec {
            path: &self.command.path,
            argv: self.command.args.list(),
            envp: self.command.env.list(),
            hostname: self.command.hostname.as_deref(),
            domainname: self.command.domainname.as_deref(),
            cwd: self.command.cwd.as_deref(),
            stdio: self.stdio,
            err_fd: self.err_fd,
            mount_private: self.mount_private,
            mount_proc: self.mount_proc,
            loopback_up: self.loopback_up,
            session: session.spec(),
            join: self.join.spec(),
            user: self.user.spec(),
            time: self.time.spec(),
            fs: self.fs.spec(),
            limits: limits.spec(),
            security: self.security.spec(),
        }
    }
}

/// Our ends of the container's pipes.
pub(crate) struct ParentPipes {
    pub(crate) stdin: Option<OwnedFd>,
    pub(crate) stdout: Option<OwnedFd>,
    pub(crate) stderr: Option<OwnedFd>,
    /// The init's status pipe and the pty master (`session.rs`).
    pub(crate) session: session::ParentSession,
}

/// Validates `b` and prepares a plan. Nothing is started; on error nothing is left open.
pub(crate) fn prepare(b: &ContainerBuilder, defaults: Defaults) -> Result<(Plan, ParentPipes)> {
    command::validate(b)?;
    let ctx = Ctx::new(b);
    let fs = fs::prepare(&b.fs, &ctx)?;
    let (user, user_maps) = user::prepare(&b.user, &ctx)?;
    let (mut join, parent_join) = join::prepare(&b.join, &ctx)?;
    let time = time::prepare(&b.time, &ctx)?;
    let command = command::prepare(b, &ctx, &fs)?;

    let (stdin_kind, stdout_kind, stderr_kind) = match defaults {
        Defaults::Spawn => (Stdio::inherit(), Stdio::inherit(), Stdio::inherit()),
        Defaults::Output => (Stdio::null(), Stdio::piped(), Stdio::piped()),
    };
    let open = |s: &Option<Stdio>, default: &Stdio, input: bool| {
        stdio::prepare(s.as_ref().unwrap_or(default), input)
            .map_err(Error::io("opening the container's stdio"))
    };
    let limits = limits::prepare(&b.limits, &ctx)?;
    let stdin = open(&b.stdin, &stdin_kind, true)?;
    let stdout = open(&b.stdout, &stdout_kind, false)?;
    let stderr = match session::merged_stderr(&b.session, &stdout)? {
        Some(merged) => merged,
        None => open(&b.stderr, &stderr_kind, false)?,
    };
    let (err_read, err_write) =
        sys::pipe_cloexec().map_err(Error::io("creating the error pipe"))?;
    // Above every pass_fd target, so the child's dup2s never overwrite the error pipe
    // (and before the session captures its number for the init).
    let err_write = sys::move_above(err_write, ctx.min_setup_fd)
        .map_err(Error::io("creating the error pipe"))?;
    // A pty in a joined mount namespace is made in that namespace's devpts.
    let joined_devpts = match ctx.pty && fs.devpts().is_none() {
        true => join::joined_devpts(&b.join),
        false => None,
    };
    let (session, parent_session) = session::prepare(
        &b.session,
        &ctx,
        &command.path,
        command.args.strings(),
        (&err_read, err_write.as_raw_fd()),
        fs.devpts().or(joined_devpts.as_ref().map(|f| f.as_fd())),
    )?;
    let security = security::prepare(&b.security, &ctx)?;

    let raw = |fd: &Option<OwnedFd>| fd.as_ref().map_or(-1, |f| f.as_raw_fd());
    let ns = ctx.namespaces;
    // A cgroup namespace that limits.rs creates after the cgroup join is not unshared
    // with the joins too.
    join.unshare_flags &= !limits.deferred_clone_flags();
    let child = ChildParts {
        stdio: [raw(&stdin.child), raw(&stdout.child), raw(&stderr.child)],
        err_fd: err_write.as_raw_fd(),
        command,
        // In a joined mount namespace too (with a root filesystem): nothing mounted for the
        // container may propagate to the namespaces it shares mounts with, and pivot_root
        // refuses a shared root.
        mount_private: ctx.mounts_here(),
        mount_proc: ns.contains(Namespaces::MOUNT | Namespaces::PID) && !fs.mounts_proc(),
        loopback_up: ns.contains(Namespaces::NET),
        fs,
        user,
        join,
        time,
        security,
    };
    let child_fds = [stdin.child, stdout.child, stderr.child]
        .into_iter()
        .flatten()
        .collect();
    let plan = Plan {
        child,
        parent: ParentState {
            namespaces: ns,
            user_maps,
            join: parent_join,
            clone_in_netns: b.clone_in_netns.clone(),
            child_fds,
            err_read,
            err_write: Some(err_write),
        },
        session,
        limits,
    };
    Ok((
        plan,
        ParentPipes {
            stdin: stdin.parent,
            stdout: stdout.parent,
            stderr: stderr.parent,
            session: parent_session,
        },
    ))
}

impl Plan {
    /// Clones the child and waits (vfork) until it has exec'd or failed; a created child
    /// (`create`), until it waits at its start gate. Blocking.
    pub(crate) fn run(mut self) -> Result<ChildGuard> {
        let stack = Stack::take().map_err(Error::io("allocating the child stack"))?;
        let mut spec = self.child.spec(&self.session, &self.limits);
        let old_mask = sys::block_all_signals();
        let mut result = self
            .parent
            .clone_and_wait(&mut spec, &self.session, &self.limits, &stack);
        if let Ok(Some(gated)) = result.as_mut().map(|g| g.gated.as_mut()) {
            gated.gate = self.session.take_gate();
        }
        // Only now is the child surely off our stack and memory: it exec'd or exited (in
        // the clone modes without CLONE_VFORK that is what EOF or the report on the error
        // pipe, plus reaping, established). Until then no signal handler may run on this
        // thread either: the child shares this thread's TLS (errno) in CLONE_VM modes.
        sys::restore_signals(&old_mask);
        stack.give_back();
        result
    }
}

impl ParentState {
    fn clone_and_wait(
        &mut self,
        spec: &mut ChildSpec<'_>,
        session: &session::SessionPlan,
        limits: &limits::PreparedLimits,
        stack: &Stack,
    ) -> Result<ChildGuard> {
        use join::CloneMode;
        let mode = if session.gated() {
            CloneMode::Fork
        } else if self.join.mode_private_memory {
            CloneMode::PrivateMemory
        } else if self.user_maps.is_some() {
            CloneMode::VmNoVfork
        } else {
            CloneMode::Vfork
        };
        let arg = spec as *mut ChildSpec<'_> as *mut libc::c_void;
        // SAFETY: `child::entry` follows the rules of child/mod.rs; `spec` and the
        // storage it borrows live until after `run` returns, and `run` keeps the stack
        // until the child has exec'd or exited.
        // A cgroup namespace waits until the child has joined its cgroup (limits.rs), so
        // that the namespace's root is the container's own cgroup.
        let ns_flags = self.namespaces.clone_flags()
            & !limits.deferred_clone_flags()
            & !self.join.deferred.clone_flags();
        // A new user namespace is owned by the euid that creates it, and a process with that
        // euid in the parent namespace holds every capability in it, capabilities of its own
        // or not: owned by uid 0, any capability-less uid-0 process (a `host_root()`
        // container without a PID namespace) could ptrace the container's processes, its
        // setup child included, which still shares our memory. So this thread takes the
        // container root's host uid as its effective uid for the clone alone (ruid and suid
        // stay 0, so it can come back; only this thread changes).
        let owner = (ns_flags & libc::CLONE_NEWUSER != 0)
            .then(|| self.user_maps.as_ref().and_then(|m| m.root_host_uid()))
            .flatten()
            .filter(|_| sys::geteuid_thread() == 0);
        // SAFETY: see above.
        let clone = || unsafe { sys::clone_with(child::entry, stack, mode.flags(), ns_flags, arg) };
        // A prepared network namespace (`net/`): the child is cloned in it, then this
        // thread goes back to its own (see `sys::ThreadNetns` for why that is sound).
        let in_netns = match &self.clone_in_netns {
            Some(fd) => Some(sys::ThreadNetns::enter(fd.as_fd()).map_err(Error::io(
                "entering the container's network namespace for the clone",
            ))?),
            None => None,
        };
        let mut cloned = match owner {
            Some(uid) => {
                let _as_owner = sys::ThreadEuid::switch(uid);
                clone()
            }
            None => clone(),
        };
        if owner.is_some() && matches!(&cloned, Err(e) if e.raw_os_error() == Some(libc::EPERM)) {
            // A host that lets only CAP_SYS_ADMIN create user namespaces (a Debian sysctl,
            // AppArmor's restriction): as ourselves.
            cloned = clone();
        }
        drop(in_netns);
        let (pid, pidfd) = cloned
            .map_err(|e| user::clone_error(self.namespaces, e.raw_os_error().unwrap_or(0)))?;
        let guard = ChildGuard::new(pid, pidfd);
        if let Some(maps) = self.user_maps.as_mut() {
            if let Err(e) = maps.write_and_release(pid) {
                // The child reads EOF on its release pipe and exits.
                guard.reap_now();
                return Err(e);
            }
        }
        let guard = self.join.adopt_workload(guard)?;

        // The child has exec'd or exited (or, created, waits at its gate): close our copy
        // of the write end and read the report. EOF means execve succeeded.
        self.err_write = None;
        self.child_fds.clear();
        if session.gated() {
            let mut buf = [0u8; RECORD_LEN];
            let n = sys::read_retry(self.err_read.as_fd(), &mut buf)
                .map_err(Error::io("reading the error pipe"))?;
            if n == RECORD_LEN && protocol::decode(&buf).0 == protocol::MSG_GATED {
                let err_read = self
                    .err_read
                    .try_clone()
                    .map_err(Error::io("keeping the error pipe"))?;
                let mut guard = guard;
                guard.gated = Some(Gated {
                    err_read,
                    uses_init: session.uses_init(),
                    gate: None,
                });
                return Ok(guard);
            }
            if n == 0 {
                guard.reap_now();
                return Err(Error::Io {
                    context: "waiting for the created container",
                    source: std::io::Error::other("it exited before reaching its start gate"),
                });
            }
            // A record other than "gated": the stage that failed (n > 0, so never Ok).
            guard.reap_now();
            return Err(failure(n, &buf));
        }
        outcome(guard, &self.err_read, session.uses_init())
    }
}

/// A created child waiting at its start gate: what starting it needs.
#[derive(Debug)]
pub(crate) struct Gated {
    err_read: OwnedFd,
    uses_init: bool,
    /// Set by `Plan::run` from the session plan.
    pub(crate) gate: Option<session::Gate>,
}

impl Gated {
    /// Lets the child through its gate and waits until it has exec'd (or its init reports
    /// the workload started), or failed (the child then has exited; the caller reaps it).
    /// Blocking (briefly).
    pub(crate) fn start(self) -> Result<()> {
        if let Some(g) = &self.gate {
            g.release().map_err(Error::io("releasing the start gate"))?;
        }
        read_outcome(&self.err_read, self.uses_init)
    }

    /// Leaves the start FIFO in place (a detached container, started by another process).
    pub(crate) fn keep_fifo(mut self) {
        if let Some(session::Gate::Fifo(f)) = self.gate.as_mut() {
            f.keep = true;
        }
    }
}

/// Reads the error pipe once the child has exec'd or exited: EOF means execve succeeded
/// (with an init, the init's "started" record does); a record names the failed stage.
fn read_outcome(err_read: &OwnedFd, uses_init: bool) -> Result<()> {
    let mut buf = [0u8; RECORD_LEN];
    let n =
        sys::read_retry(err_read.as_fd(), &mut buf).map_err(Error::io("reading the error pipe"))?;
    interpret(n, &buf, uses_init)
}

/// [`read_outcome`] for the clone itself: a failed child (it has _exit'ed) is reaped now,
/// so nothing is left behind.
fn outcome(guard: ChildGuard, err_read: &OwnedFd, uses_init: bool) -> Result<ChildGuard> {
    match read_outcome(err_read, uses_init) {
        Ok(()) => Ok(guard),
        Err(e) => {
            guard.reap_now();
            Err(e)
        }
    }
}

/// Interprets `n` bytes read from the error pipe (see [`read_outcome`]).
fn interpret(n: usize, buf: &[u8; RECORD_LEN], uses_init: bool) -> Result<()> {
    if n == 0 {
        if uses_init {
            return Err(Error::InitVanished);
        }
        return Ok(());
    }
    let (tag, _) = protocol::decode(buf);
    if uses_init && n == RECORD_LEN && tag == protocol::MSG_STARTED {
        return Ok(());
    }
    Err(failure(n, buf))
}

/// The error a record other than "started" or "gated" reports: the failed stage.
fn failure(n: usize, buf: &[u8; RECORD_LEN]) -> Error {
    let (tag, errno) = protocol::decode(buf);
    match (n, Stage::from_u32(tag)) {
        (RECORD_LEN, Some(stage)) => Error::Setup {
            stage,
            errno: Errno(errno),
        },
        _ => Error::Io {
            context: "reading the error pipe",
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, "malformed setup report"),
        },
    }
}
