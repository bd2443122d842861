//! How the workload's process runs: the built-in PID-1 init, a terminal, dying with the
//! supervisor, and merged stderr.
//!
//! The settings live in one sub-struct of the builder ([`SessionConfig`]), set by the
//! public methods here; `plan/session.rs` validates them and prepares the child's and the
//! supervisor's sides, and `handle/session.rs` keeps what the container needs afterwards.

use std::time::Duration;

use crate::handle::pty::PtySize;
use crate::{ContainerBuilder, Namespaces};

/// How long the init waits, after the workload exited, between SIGTERM and SIGKILL to
/// whatever is left in the namespace.
pub const DEFAULT_INIT_GRACE: Duration = Duration::from_secs(1);

/// The builder's session settings.
#[derive(Debug, Clone, Default)]
pub(crate) struct SessionConfig {
    /// `None`: on exactly when there is a new PID namespace.
    pub(crate) init: Option<bool>,
    pub(crate) init_grace: Option<Duration>,
    pub(crate) pty: Option<PtySize>,
    pub(crate) merge_stderr: bool,
    /// `die_with_supervisor(false)`.
    pub(crate) outlive_supervisor: bool,
    /// `init_dumpable(true)`.
    pub(crate) init_dumpable: bool,
    /// `signal_process_group(true)`.
    pub(crate) signal_group: bool,
    /// `parent_death_signal(sig)`, unvalidated.
    pub(crate) parent_death_signal: Option<i32>,
    /// `success_exit_code(code)` calls, unvalidated.
    pub(crate) success_codes: Vec<i32>,
    /// `rewrite_signal(from, to)` calls in order, unvalidated.
    pub(crate) rewrites: Vec<(i32, i32)>,
    /// `start_fifo(path)`.
    pub(crate) start_fifo: Option<std::path::PathBuf>,
    /// Set by `create()` on its copy of the builder: stop at the start gate.
    pub(crate) gated: bool,
}

impl SessionConfig {
    /// Whether the container runs the built-in init, in a container with `namespaces`:
    /// by default exactly when there is a new PID namespace; `init(true)` without one runs
    /// it as a subreaper.
    pub(crate) fn uses_init(&self, namespaces: Namespaces) -> bool {
        self.init.unwrap_or(namespaces.contains(Namespaces::PID))
    }
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

    /// The start gate of [`create`](Self::create) is the FIFO at `path`: the created
    /// container waits, set up and just before `execve`, until a byte is written into it,
    /// by [`Created::start`](crate::Created::start), [`Detached::start`](crate::Detached::start)
    /// or any process that may open the FIFO for writing (an OCI runtime's `start`, run as
    /// another process). `create` makes the FIFO (mode 0600; the path must not exist) and
    /// removes it if it fails; after the start, removing it is the caller's. Without this
    /// setting the gate is a pipe that only the [`Created`](crate::Created) handle can
    /// release. Only for `create`: `spawn` refuses it.
    pub fn start_fifo(&mut self, path: impl Into<std::path::PathBuf>) -> &mut Self {
        self.session.start_fifo = Some(path.into());
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
