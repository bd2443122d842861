//! How the workload's process runs: the built-in PID-1 init, a terminal, dying with the
//! supervisor, and merged stderr.
//!
//! The settings live in one sub-struct of the builder ([`SessionConfig`]); `prepare`
//! turns them into the child's [`ChildSession`] (plain numbers and pointers) plus the
//! supervisor's side ([`ParentSession`]): the report pipe the init writes the workload's
//! final status to, and the pty master.

use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::process::ExitStatus;
use std::time::Duration;

use libc::c_char;

use crate::child::session::ChildSession;
use crate::error::{Error, Result};
use crate::pty::PtySize;
use crate::stdio::Prepared;
use crate::{init, ContainerBuilder, Namespaces};

/// How long the init waits, after the workload exited, between SIGTERM and SIGKILL to
/// whatever is left in the namespace.
pub const DEFAULT_INIT_GRACE: Duration = Duration::from_secs(1);

/// The builder's session settings.
#[derive(Debug, Clone, Default)]
pub(crate) struct SessionConfig {
    /// `None`: on exactly when there is a new PID namespace.
    init: Option<bool>,
    init_grace: Option<Duration>,
    pub(crate) pty: Option<PtySize>,
    merge_stderr: bool,
    /// `die_with_supervisor(false)`.
    outlive_supervisor: bool,
    /// `init_dumpable(true)`.
    init_dumpable: bool,
    /// `signal_process_group(true)`.
    signal_group: bool,
    /// `parent_death_signal(sig)`, unvalidated.
    parent_death_signal: Option<i32>,
    /// `success_exit_code(code)` calls, unvalidated.
    success_codes: Vec<i32>,
    /// `rewrite_signal(from, to)` calls in order, unvalidated.
    rewrites: Vec<(i32, i32)>,
}

impl ContainerBuilder {
    /// Run the built-in init as PID 1 (default: on when [`Namespaces::PID`] is set).
    ///
    /// The init forwards every signal but SIGCHLD to the workload (including SIGSEGV,
    /// SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGTRAP and SIGSYS sent with `kill()`, which the
    /// kernel would drop at a PID 1 without a handler), starts it in a process group of
    /// its own (except when it shares the caller's controlling terminal, with
    /// [`new_session(false)`](Self::new_session), where it stays in the foreground group),
    /// keeps no working directory of its own (its cwd is `/`), reaps orphans, ends
    /// whatever the workload leaves behind (SIGTERM, a grace period, SIGKILL), and kills
    /// the container if the supervisor process dies. [`Container::wait`](crate::Container::wait)
    /// reports the workload's own status. The init is out of the workload's reach: it makes
    /// itself non-dumpable (see [`init_dumpable`](Self::init_dumpable)), and the status it
    /// reports is checked against the init's real exit status. `init(false)` makes the workload itself PID 1 (it
    /// then ignores signals it has no handler for, and must reap its own orphans); such a
    /// container still dies with the supervisor, through `PR_SET_PDEATHSIG` armed from a
    /// long-lived spawner thread.
    ///
    /// `init(true)` without [`Namespaces::PID`] is tini's subreaper mode (`tini -s`): the
    /// init is not PID 1 but the workload's parent and a child subreaper
    /// (`PR_SET_CHILD_SUBREAPER`), so the workload's orphans are reparented to it and
    /// reaped. Everything else stays: signals forwarded, leftovers ended when the workload
    /// exits, the container killed when the supervisor dies. Without a namespace of its own
    /// the init cannot signal "everything but me" (`kill(-1)` would reach the host's
    /// processes): it signals its descendants one by one, found through
    /// `/proc/<pid>/task/<pid>/children` (without a `/proc`, the workload's process group
    /// only). A process that double-forks *and* escapes to another subreaper is out of its
    /// reach; a PID namespace has no such gap.
    ///
    /// The init's options, as tini and dumb-init users know them:
    /// [`signal_process_group`](Self::signal_process_group) (tini `-g`, dumb-init's
    /// default), [`parent_death_signal`](Self::parent_death_signal) (tini `-p`),
    /// [`success_exit_code`](Self::success_exit_code) (tini `-e`) and
    /// [`rewrite_signal`](Self::rewrite_signal) (dumb-init `-r`). Each needs the init: set
    /// without one, the spawn fails with [`Error::NeedsInit`](crate::Error::NeedsInit).
    ///
    /// ```no_run
    /// # async fn demo() -> cellblock::Result<()> {
    /// use cellblock::{Container, Namespaces, Signal};
    /// let mut c = Container::builder("/bin/sh").args(["-c", "sleep 100"])
    ///     .namespaces(Namespaces::PID).spawn().await?;   // init on by default
    /// c.signal(Signal::SIGTERM)?;                       // reaches `sh`
    /// assert_eq!(std::os::unix::process::ExitStatusExt::signal(&c.wait().await?), Some(15));
    /// # Ok(()) }
    /// ```
    pub fn init(&mut self, on: bool) -> &mut Self {
        self.session.init = Some(on);
        self
    }

    /// Leave the init dumpable (default: `false`, the init makes itself non-dumpable).
    ///
    /// By default the init calls `PR_SET_DUMPABLE 0` as it starts, before the workload
    /// exists, so that only a process with `CAP_SYS_PTRACE` over the container's user
    /// namespace can open `/proc/1/fd/*` or `/proc/1/mem`, `pidfd_getfd` from it or ptrace
    /// it; the workload's own processes stay dumpable (their execve resets the flag).
    ///
    /// **Risk of `init_dumpable(true)`:** the workload runs with the init's credentials,
    /// so it can then ptrace the init, write its memory and reopen its descriptors: make
    /// the container report exit 0 for a workload that failed, take the init's lifeline,
    /// or keep the namespace's processes from being cleaned up. Use it only to debug the
    /// init itself (gdb, strace -p) with a trusted workload. Needs the init: without a PID
    /// namespace (and without `init(true)`) the spawn fails with
    /// [`Error::NeedsNamespace`](crate::Error::NeedsNamespace), with `init(false)` with
    /// [`Error::BadConfig`](crate::Error::BadConfig).
    ///
    /// ```no_run
    /// # async fn demo() -> cellblock::Result<()> {
    /// use cellblock::{Container, Namespaces};
    /// // Debugging only: lets `strace -p <pid>` (and the workload!) attach to the init.
    /// let c = Container::builder("/bin/sleep").arg("60")
    ///     .namespaces(Namespaces::PID).init_dumpable(true).spawn().await?;
    /// # Ok(()) }
    /// ```
    pub fn init_dumpable(&mut self, on: bool) -> &mut Self {
        self.session.init_dumpable = on;
        self
    }

    /// The init's grace period between SIGTERM and SIGKILL for processes left behind by
    /// the workload (default [`DEFAULT_INIT_GRACE`]); also the time a workload has to exit
    /// after its [`parent_death_signal`](Self::parent_death_signal).
    pub fn init_grace_period(&mut self, grace: Duration) -> &mut Self {
        self.session.init_grace = Some(grace);
        self
    }

    /// Forward signals to the workload's whole process group, not to the workload alone
    /// (default: off). This is tini's `-g` (`TINI_KILL_PROCESS_GROUP`) and dumb-init's
    /// default "setsid mode" (dumb-init `-c` is the default here): a `SIGTERM` to the
    /// container then reaches a shell *and* the pipeline it waits for, so a workload that
    /// ignores a signal does not keep it from its children.
    ///
    /// The workload's group is its own (the init starts it in one) unless it shares the
    /// caller's terminal (see [`init`](Self::init)) or moved itself into another group;
    /// then signals go to the workload alone. Needs the init.
    ///
    /// ```no_run
    /// # async fn demo() -> cellblock::Result<()> {
    /// use cellblock::{Container, Namespaces, Signal};
    /// // `trap '' TERM` keeps sh alive, but `sleep` gets the SIGTERM and sh's wait returns.
    /// let mut c = Container::builder("/bin/sh").args(["-c", "trap '' TERM; sleep 100; exit 3"])
    ///     .namespaces(Namespaces::PID).signal_process_group(true).spawn().await?;
    /// c.signal(Signal::SIGTERM)?;
    /// assert_eq!(c.wait().await?.code(), Some(3));
    /// # Ok(()) }
    /// ```
    pub fn signal_process_group(&mut self, on: bool) -> &mut Self {
        self.session.signal_group = on;
        self
    }

    /// When the supervisor dies, send `signal` (a number, `1..=64`, e.g. `libc::SIGTERM`)
    /// to the workload and give it the [grace period](Self::init_grace_period) to exit
    /// before everything is killed (default: none, everything is killed at once). This is
    /// tini's `-p`: there the signal is the init's own parent-death signal, which the
    /// init forwards; here the init learns of the supervisor's death from its lifeline
    /// (a pidfd of the supervisor *process*; a `PR_SET_PDEATHSIG` would follow the thread
    /// that cloned it) and forwards the signal the same way, through
    /// [`rewrite_signal`](Self::rewrite_signal) and
    /// [`signal_process_group`](Self::signal_process_group).
    ///
    /// Needs the init and [`die_with_supervisor(true)`](Self::die_with_supervisor) (the
    /// default); the signal is validated at spawn
    /// ([`Error::BadSignal`](crate::Error::BadSignal)).
    ///
    /// ```no_run
    /// # async fn demo() -> cellblock::Result<()> {
    /// use cellblock::{Container, Namespaces};
    /// // A server that saves its state on SIGTERM, even if the supervisor is SIGKILLed.
    /// let c = Container::builder("/usr/sbin/my-server")
    ///     .namespaces(Namespaces::PID).parent_death_signal(libc::SIGTERM).spawn().await?;
    /// # Ok(()) }
    /// ```
    pub fn parent_death_signal(&mut self, signal: i32) -> &mut Self {
        self.session.parent_death_signal = Some(signal);
        self
    }

    /// Report the workload's exit code `code` (`0..=255`) as 0, a success (tini's `-e`).
    /// Call it once per code. A workload killed by a signal is still reported as killed
    /// (tini would remap its 128+N as well; here a signal is never an exit code). Needs
    /// the init; the code is validated at spawn ([`Error::BadExitCode`](crate::Error::BadExitCode)).
    ///
    /// ```no_run
    /// # async fn demo() -> cellblock::Result<()> {
    /// use cellblock::{Container, Namespaces};
    /// // A JVM that exits 143 when it handled SIGTERM: a clean stop.
    /// let st = Container::builder("/bin/sh").args(["-c", "exit 143"])
    ///     .namespaces(Namespaces::PID).success_exit_code(143).status().await?;
    /// assert!(st.success());
    /// # Ok(()) }
    /// ```
    pub fn success_exit_code(&mut self, code: i32) -> &mut Self {
        self.session.success_codes.push(code);
        self
    }

    /// Forward a received signal `from` as `to` instead, or not at all when `to` is 0
    /// (dumb-init's `--rewrite from:to`). Numbers as in dumb-init: `from` in `1..=31` but
    /// not SIGKILL or SIGSTOP (which the init never receives) nor SIGCHLD (the init's own,
    /// for reaping); `to` in `0..=31`, SIGSTOP included. A later rewrite of the same
    /// `from` replaces an earlier one. Applies to every signal the init forwards, the
    /// [`parent_death_signal`](Self::parent_death_signal) included. Needs the init;
    /// validated at spawn ([`Error::BadSignal`](crate::Error::BadSignal)).
    ///
    /// Unlike dumb-init's setsid mode, nothing is rewritten by default: dumb-init turns
    /// SIGTSTP, SIGTTIN and SIGTTOU into SIGSTOP because its child's process group is
    /// orphaned (the kernel discards those three there), while the workload's group here
    /// has the init, in the same session, as its parent's group, so they work as sent.
    ///
    /// ```no_run
    /// # async fn demo() -> cellblock::Result<()> {
    /// use cellblock::{Container, Namespaces};
    /// // nginx stops gracefully on SIGQUIT; orchestrators send SIGTERM.
    /// let c = Container::builder("nginx").args(["-g", "daemon off;"])
    ///     .namespaces(Namespaces::PID)
    ///     .rewrite_signal(libc::SIGTERM, libc::SIGQUIT)
    ///     .rewrite_signal(libc::SIGWINCH, 0) // ignored
    ///     .spawn().await?;
    /// # Ok(()) }
    /// ```
    pub fn rewrite_signal(&mut self, from: i32, to: i32) -> &mut Self {
        self.session.rewrites.push((from, to));
        self
    }

    /// Give the container a new pseudo-terminal (24 rows × 80 columns) as its controlling
    /// terminal, in a new session, on stdin/stdout/stderr (explicit stdio settings still
    /// win). Take the supervisor's side with [`Container::take_pty`](crate::Container::take_pty).
    pub fn pty(&mut self) -> &mut Self {
        self.session
            .pty
            .get_or_insert(PtySize { rows: 24, cols: 80 });
        self
    }

    /// Like [`pty`](Self::pty), with an initial window size.
    pub fn pty_size(&mut self, size: PtySize) -> &mut Self {
        self.session.pty = Some(size);
        self
    }

    /// Whether the container dies when the supervisor process dies, even by SIGKILL
    /// (default: yes). With the built-in init, the init watches a lifeline of its own, a
    /// pidfd of the supervisor process (readable once it exited; nobody can write into it,
    /// so no container can keep another alive or disturb its init); without it, `PR_SET_PDEATHSIG` is armed, which
    /// makes the clone run on a long-lived spawner thread (a parent-death signal follows
    /// the cloning *thread*) and costs two thread handoffs per spawn.
    ///
    /// `die_with_supervisor(false)` lets the container outlive the supervisor: it is then
    /// reparented to the host's init (or subreaper), and nobody reaps its status for us.
    /// Use it for detached, daemon-like containers, or to shave the handoffs off spawn
    /// latency when the container is sure to be awaited anyway.
    pub fn die_with_supervisor(&mut self, on: bool) -> &mut Self {
        self.session.outlive_supervisor = !on;
        self
    }

    /// Send stderr where stdout goes (like `2>&1`): into the same pipe when stdout is
    /// piped, so [`output`](Self::output) collects both, interleaved, in `stdout`.
    pub fn merge_stderr(&mut self, merge: bool) -> &mut Self {
        self.session.merge_stderr = merge;
        self
    }
}

/// The child-side settings and the storage they point into.
pub(crate) struct SessionPlan {
    child: ChildSession,
    uses_init: bool,
    _init_args: Vec<CString>,
    _init_argv: Vec<*const c_char>,
    _pty_slave: Option<OwnedFd>,
    /// Per-spawn duplicates of process-wide descriptors, moved above `pass_fd` targets.
    _moved: Vec<OwnedFd>,
    /// This container's lifeline (a pidfd of the supervisor), closed in the supervisor
    /// once the child has its copy.
    _lifeline: Option<OwnedFd>,
}

/// The supervisor's side, handed to the `Container`.
#[derive(Debug, Default)]
pub(crate) struct ParentSession {
    /// Our duplicate of the report pipe's read end, when an init will write the
    /// workload's status to it.
    pub(crate) status: Option<OwnedFd>,
    /// The pty master.
    pub(crate) pty: Option<OwnedFd>,
}

/// Whether the container runs the built-in init.
fn uses_init(b: &ContainerBuilder) -> bool {
    b.session
        .init
        .unwrap_or(b.namespaces.contains(Namespaces::PID))
}

/// The child's `setpgid` argument for [`process_group`](ContainerBuilder::process_group),
/// or -1 for none: with a new session (a new group already) or the init (which places
/// the workload itself), the child makes no call. Refuses what cannot work.
pub(crate) fn child_process_group(b: &ContainerBuilder) -> Result<libc::c_int> {
    let Some(pgid) = b.process_group else {
        return Ok(-1);
    };
    if pgid < 0 {
        return Err(Error::BadConfig(format!(
            "process_group({pgid}): a process group id is 0 (a new group) or positive"
        )));
    }
    if pgid > 0 {
        if b.namespaces.contains(Namespaces::PID) {
            return Err(Error::BadConfig(format!(
                "process_group({pgid}) with Namespaces::PID: group {pgid} is the supervisor's, and its id means nothing in the new PID namespace; use process_group(0)"
            )));
        }
        if b.security.new_session || b.session.pty.is_some() {
            return Err(Error::BadConfig(format!(
                "process_group({pgid}) needs new_session(false) (and no pty): a new session is a new process group, and a group of another session cannot be joined"
            )));
        }
    }
    if uses_init(b) || b.security.new_session || b.session.pty.is_some() {
        return Ok(-1);
    }
    Ok(pgid)
}

/// Validates the session settings and prepares both sides.
///
/// `err` is the core's error pipe `(read, write)`.
pub(crate) fn prepare(
    b: &ContainerBuilder,
    path: &CString,
    args: &[CString],
    err: (&OwnedFd, RawFd),
    devpts: Option<std::os::fd::BorrowedFd<'_>>,
) -> Result<(SessionPlan, ParentSession)> {
    let cfg = &b.session;
    let pid_ns = b.namespaces.contains(Namespaces::PID);
    // init(true) without a PID namespace: the init runs as a subreaper (see `init`).
    let uses_init = uses_init(b);
    if cfg.init_dumpable && !uses_init && !pid_ns {
        return Err(Error::NeedsNamespace {
            option: "init_dumpable",
            needs: Namespaces::PID,
        });
    }
    if cfg.init_dumpable && !uses_init {
        return Err(Error::BadConfig(
            "init_dumpable(true) with init(false): there is no init to leave dumpable".into(),
        ));
    }
    let init_options = validate_init_options(cfg, uses_init, pid_ns)?;
    // The process-wide pieces are all set up by the first spawn, whatever its kind, so a
    // program (or a leak test) that takes a descriptor/thread baseline after one warm-up
    // spawn sees no later growth: the init's memfd (1 fd), the spawner threads.
    let mut memfd = init::memfd();
    crate::spawner::start();
    // `pass_fd` dup2s onto its targets late in the child's setup; descriptors needed after
    // that (the init's memfd, the lifeline) must not sit on a target. The lifeline is
    // opened above every target; a per-spawn duplicate above them stands in for the memfd.
    let min_fd = crate::security::min_setup_fd(b);
    let mut moved = Vec::new();
    if let Ok(m) = memfd {
        if m < min_fd {
            let d = crate::sys::dup_above(m, min_fd)
                .map_err(Error::io("moving a descriptor above the pass_fd targets"))?;
            memfd = Ok(d.as_raw_fd());
            moved.push(d);
        }
    }
    // This container's own lifeline: a pidfd of the supervisor process (init.rs), for the
    // init to watch, or for the child without an init to check once after arming its
    // parent-death signal. None when the container may outlive us.
    let lifeline = if cfg.outlive_supervisor {
        None
    } else {
        Some(init::lifeline(min_fd).map_err(Error::io("opening a pidfd of the supervisor"))?)
    };
    let lifeline_fd = lifeline.as_ref().map_or(-1, |l| l.as_raw_fd());

    let (pty_master, pty_slave) = match cfg.pty {
        Some(size) => {
            let (m, s) =
                crate::pty::open(size, devpts).map_err(Error::io("opening a pseudo-terminal"))?;
            (Some(m), Some(s))
        }
        None => (None, None),
    };

    let mut parent = ParentSession {
        status: None,
        pty: pty_master,
    };
    let mut child = ChildSession::NONE;
    child.pty_slave = pty_slave.as_ref().map_or(-1, |s| s.as_raw_fd());
    child.lifeline = lifeline_fd;
    let (mut init_args, mut init_argv) = (Vec::new(), Vec::new());
    if uses_init {
        child.init_fd = memfd.map_err(Error::io("loading the init into a memfd"))?;
        init_args = init::InitArgs {
            report_fd: err.1,
            lifeline_fd,
            grace_ms: cfg.init_grace.unwrap_or(DEFAULT_INIT_GRACE).as_millis() as u64,
            foreground_tty: pty_slave.is_some(),
            own_group: b.process_group == Some(0),
            dumpable: cfg.init_dumpable,
            signal_group: cfg.signal_group,
            subreaper: !pid_ns,
            parent_death_signal: cfg.parent_death_signal.unwrap_or(0),
            success_codes: &init_options.success_codes,
            rewrites: &init_options.rewrites,
            path,
            args,
        }
        .to_argv();
        init_argv = null_terminated(&init_args);
        child.init_argv = init_argv.as_ptr();
        child.pass_fds = [err.1, lifeline_fd];
        parent.status = Some(
            err.0
                .try_clone()
                .map_err(Error::io("duplicating the report pipe"))?,
        );
    } else if !cfg.outlive_supervisor {
        // No init to watch the lifeline: the kernel's parent-death signal, armed from a
        // spawner thread that lives as long as the process (spawner.rs).
        child.death_signal = true;
    }
    Ok((
        SessionPlan {
            child,
            uses_init,
            _init_args: init_args,
            _init_argv: init_argv,
            _pty_slave: pty_slave,
            _moved: moved,
            _lifeline: lifeline,
        },
        parent,
    ))
}

/// The init's tini/dumb-init options, validated.
struct InitOptions {
    success_codes: Vec<u8>,
    rewrites: Vec<(i32, i32)>,
}

/// Checks the init's options (each needs the init; numbers in range) before anything runs.
fn validate_init_options(
    cfg: &SessionConfig,
    uses_init: bool,
    pid_ns: bool,
) -> Result<InitOptions> {
    let set = [
        ("signal_process_group", cfg.signal_group),
        ("parent_death_signal", cfg.parent_death_signal.is_some()),
        ("success_exit_code", !cfg.success_codes.is_empty()),
        ("rewrite_signal", !cfg.rewrites.is_empty()),
    ];
    if let Some((option, _)) = set.iter().find(|(_, on)| *on).filter(|_| !uses_init) {
        return Err(Error::NeedsInit {
            option,
            reason: if pid_ns {
                "init(false) was set"
            } else {
                "without Namespaces::PID it runs only with init(true) (as a subreaper)"
            },
        });
    }
    let bad = |option, signal, reason| Error::BadSignal {
        option,
        signal,
        reason,
    };
    if let Some(sig) = cfg.parent_death_signal {
        if !(1..=64).contains(&sig) {
            return Err(bad("parent_death_signal", sig, "is outside 1..=64"));
        }
        if cfg.outlive_supervisor {
            return Err(Error::BadConfig(
                "parent_death_signal with die_with_supervisor(false): the container does not \
                 watch the supervisor, so no signal would ever be sent"
                    .into(),
            ));
        }
    }
    let mut success_codes = Vec::new();
    for &code in &cfg.success_codes {
        let c = u8::try_from(code).map_err(|_| Error::BadExitCode {
            option: "success_exit_code",
            code,
        })?;
        success_codes.push(c);
    }
    for &(from, to) in &cfg.rewrites {
        let option = "rewrite_signal";
        if !(1..=31).contains(&from) {
            return Err(bad(option, from, "is outside 1..=31"));
        }
        if from == libc::SIGKILL || from == libc::SIGSTOP {
            return Err(bad(
                option,
                from,
                "cannot be caught, so the init never receives it",
            ));
        }
        if from == libc::SIGCHLD {
            return Err(bad(option, from, "is the init's own (it reaps on SIGCHLD)"));
        }
        if !(0..=31).contains(&to) {
            return Err(bad(option, to, "is outside 0..=31 (0 drops the signal)"));
        }
    }
    Ok(InitOptions {
        success_codes,
        rewrites: cfg.rewrites.clone(),
    })
}

impl SessionPlan {
    /// The child's copy of the settings (raw pointers into `self`).
    pub(crate) fn child(&self) -> ChildSession {
        self.child
    }

    /// Whether the clone must run on a long-lived spawner thread (a parent-death signal
    /// follows the cloning thread).
    pub(crate) fn needs_long_lived_thread(&self) -> bool {
        self.child.death_signal
    }

    /// The error pipe hit EOF: without an init that means execve succeeded; with one, the
    /// init died before it could say whether the workload started.
    pub(crate) fn on_eof(&self) -> Result<()> {
        if self.uses_init {
            Err(Error::InitVanished)
        } else {
            Ok(())
        }
    }

    /// Whether an 8-byte record is the init's "workload started".
    pub(crate) fn is_started(&self, n: usize, buf: &[u8; 8]) -> bool {
        self.uses_init
            && n == 8
            && u32::from_ne_bytes([buf[0], buf[1], buf[2], buf[3]]) == init::MSG_STARTED
    }
}

/// `stderr` for [`ContainerBuilder::merge_stderr`]: a second descriptor for whatever the
/// child's stdout is. `None` when not merging.
pub(crate) fn merged_stderr(b: &ContainerBuilder, stdout: &Prepared) -> Result<Option<Prepared>> {
    if !b.session.merge_stderr {
        return Ok(None);
    }
    let child = match &stdout.child {
        // Duplicates at 3 or above, where every stdio source must be (`sys::above_stdio`).
        Some(fd) => Some(crate::sys::dup_above(fd.as_raw_fd(), 3)),
        // Inherited stdout: a pty's (the terminal step puts it on 2 as well) or ours.
        None if b.session.pty.is_some() => None,
        None => Some(crate::sys::dup_above(1, 3)),
    };
    let child = child
        .transpose()
        .map_err(Error::io("duplicating stdout for stderr"))?;
    Ok(Some(Prepared {
        child,
        parent: None,
    }))
}

/// The container's share: what `Container` keeps besides the core's fields.
#[derive(Debug, Default)]
pub(crate) struct ContainerSession {
    status: Option<OwnedFd>,
    pub(crate) pty: Option<OwnedFd>,
}

impl ContainerSession {
    pub(crate) fn new(p: ParentSession) -> ContainerSession {
        ContainerSession {
            status: p.status,
            pty: p.pty,
        }
    }

    /// The status to report once the container's first process was reaped: with an init,
    /// the workload's own (if the init lived to report it).
    pub(crate) fn final_status(&mut self, reaped: ExitStatus) -> ExitStatus {
        match self.status.take() {
            Some(fd) => init::workload_status(&fd, reaped),
            None => reaped,
        }
    }
}

/// TRANSITIONAL (issue 13): the init's argv as a null-terminated pointer array, until the
/// session's child spec borrows a `CStrArray`.
fn null_terminated(strings: &[std::ffi::CString]) -> Vec<*const libc::c_char> {
    strings
        .iter()
        .map(|s| s.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect()
}

// SAFETY (TRANSITIONAL, issue 13): the raw pointers in the child's share point into heap
// storage this plan owns (the init's argv), which does not move when the plan moves.
unsafe impl Send for SessionPlan {}
