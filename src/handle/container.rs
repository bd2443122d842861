//! `Container`: the async handle of a running container.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::process::ExitStatus;

use tokio::io::unix::AsyncFd;
use tokio::net::unix::pipe;

use crate::builder::ContainerBuilder;
use crate::error::{Error, Result};
use crate::{sys, NamespaceIds, Namespaces, Signal};

use super::io::{ContainerStderr, ContainerStdin, ContainerStdout};
use super::reaper;

/// A running (or finished, not yet awaited) container.
///
/// Created by [`ContainerBuilder::spawn`]. The container's exit is awaited through its
/// pidfd, registered with tokio's reactor: waiting costs no thread, and thousands of
/// containers can be awaited at once. Dropping a `Container` without awaiting it reaps it
/// in the background (after SIGKILL if [`kill_on_drop`](ContainerBuilder::kill_on_drop)
/// was set); no zombie is left either way.
///
/// ```no_run
/// # async fn demo() -> cellblock::Result<()> {
/// use cellblock::{Container, Namespaces, Signal};
/// let mut c = Container::builder("/bin/sleep").arg("30").namespaces(Namespaces::PID).spawn().await?;
/// println!("host pid {}, namespaces {}", c.pid(), c.namespace_ids()?);
/// c.signal(Signal::SIGKILL)?;
/// let status = c.wait().await?;
/// assert!(!status.success());
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Container {
    pid: i32,
    /// `None` once reaped.
    pidfd: Option<Pidfd>,
    status: Option<ExitStatus>,
    namespaces: Namespaces,
    kill_on_drop: bool,
    stdin: Option<ContainerStdin>,
    stdout: Option<ContainerStdout>,
    stderr: Option<ContainerStderr>,
    /// The init's status pipe, the pty (`session.rs`).
    pub(crate) session: crate::handle::session::ContainerSession,
    /// Timeout watchdog, cgroup, accounting (`report.rs`).
    pub(crate) run: super::report::RunState,
}

/// The result of [`ContainerBuilder::output`] or [`Container::wait_with_output`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// How the container ended.
    pub status: ExitStatus,
    /// Everything it wrote to stdout (if piped).
    pub stdout: Vec<u8>,
    /// Everything it wrote to stderr (if piped).
    pub stderr: Vec<u8>,
    /// Whether the output went past [`output_limit`](ContainerBuilder::output_limit) (and
    /// was cut there; the container was killed).
    pub truncated: bool,
}

impl Container {
    /// Starts configuring a container that will run `program` (a path, or a name looked up
    /// on `PATH`).
    pub fn builder(program: impl AsRef<std::ffi::OsStr>) -> ContainerBuilder {
        ContainerBuilder::new(program)
    }

    pub(crate) fn new(
        pid: i32,
        pidfd: OwnedFd,
        b: &ContainerBuilder,
        pipes: crate::plan::ParentPipes,
    ) -> io::Result<Container> {
        // Build the handle first so that any error below still reaps through Drop. The
        // pidfd is registered with a reactor only when first awaited, on the runtime that
        // awaits it (see `Pidfd`).
        let mut c = Container {
            pid,
            pidfd: Some(Pidfd::Plain(pidfd)),
            status: None,
            namespaces: b.namespaces,
            kill_on_drop: true,
            stdin: None,
            stdout: None,
            stderr: None,
            session: Default::default(),
            run: Default::default(),
        };
        c.stdin = pipes
            .stdin
            .map(|fd| pipe::Sender::from_owned_fd(fd).map(ContainerStdin))
            .transpose()?;
        c.stdout = pipes
            .stdout
            .map(|fd| pipe::Receiver::from_owned_fd(fd).map(ContainerStdout))
            .transpose()?;
        c.stderr = pipes
            .stderr
            .map(|fd| pipe::Receiver::from_owned_fd(fd).map(ContainerStderr))
            .transpose()?;
        c.session = crate::handle::session::ContainerSession::new(pipes.session);
        c.kill_on_drop = b.kill_on_drop;
        Ok(c)
    }

    /// The container's pid as the supervisor sees it (in the supervisor's PID namespace).
    ///
    /// Still returned after the container was reaped, when the number may already name
    /// another process; [`id`](Self::id) is the tokio-style accessor that says so.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// The container's pid, as `tokio::process::Child::id` gives it: `None` once the
    /// container has been reaped (by [`wait`](Self::wait), [`try_wait`](Self::try_wait) or
    /// [`kill`](Self::kill)), when the number may belong to another process.
    ///
    /// ```no_run
    /// # async fn demo() -> cellblock::Result<()> {
    /// use cellblock::Container;
    /// let mut c = Container::builder("/bin/true").spawn().await?;
    /// assert!(c.id().is_some());
    /// c.wait().await?;
    /// assert_eq!(c.id(), None);
    /// # Ok(()) }
    /// ```
    pub fn id(&self) -> Option<u32> {
        self.pidfd.as_ref().map(|_| self.pid as u32)
    }

    /// The namespaces this container was created with.
    pub fn namespaces(&self) -> Namespaces {
        self.namespaces
    }

    /// The pidfd, while the container has not been reaped.
    pub fn pidfd(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        self.pidfd.as_ref().map(|fd| fd.as_fd())
    }

    /// The ids of the namespaces the container is in (what `/proc/<pid>/ns` shows).
    ///
    /// Safe against pid reuse: until [`wait`](Self::wait) reaps it, the pid cannot be
    /// recycled. After that this returns [`Error::AlreadyReaped`].
    pub fn namespace_ids(&self) -> Result<NamespaceIds> {
        if self.pidfd.is_none() {
            return Err(Error::AlreadyReaped);
        }
        let ids = NamespaceIds::of_pid(self.pid).map_err(Error::io("reading /proc/<pid>/ns"))?;
        // The links of a zombie are gone; a successful read after the check above is the
        // live process's (its pid cannot be reused before we reap it).
        Ok(ids)
    }

    /// Sends `sig` to the container's first process through its pidfd.
    ///
    /// Note that without an init, a workload that is PID 1 of a new PID namespace ignores
    /// signals it has no handler for (SIGKILL always works).
    pub fn signal(&self, sig: Signal) -> Result<()> {
        let fd = self.pidfd.as_ref().ok_or(Error::AlreadyReaped)?;
        sys::pidfd_send_signal(fd.as_fd(), sig as libc::c_int)
            .map_err(Error::io("pidfd_send_signal"))
    }

    /// Sends SIGKILL without waiting, like `tokio::process::Child::start_kill` (and std's
    /// `Child::kill`). Await [`wait`](Self::wait) afterwards to reap.
    ///
    /// Once the container has been reaped this does nothing and returns `Ok`, as tokio's
    /// does: there is nothing left to kill (and the pid is never signalled, so a recycled
    /// pid is safe). [`signal`](Self::signal) still reports [`Error::AlreadyReaped`].
    pub fn start_kill(&self) -> Result<()> {
        let Some(fd) = self.pidfd.as_ref() else {
            return Ok(());
        };
        match sys::pidfd_send_signal(fd.as_fd(), libc::SIGKILL) {
            // Exited already, not reaped yet: as good as killed.
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => Ok(()),
            r => r.map_err(Error::io("pidfd_send_signal")),
        }
    }

    /// Sends SIGKILL and waits until the container has been reaped, like
    /// `tokio::process::Child::kill`. `Ok` also when it had exited (or been reaped)
    /// already. For the signal alone, see [`start_kill`](Self::start_kill).
    ///
    /// ```no_run
    /// # async fn demo() -> cellblock::Result<()> {
    /// use cellblock::Container;
    /// let mut c = Container::builder("/bin/sleep").arg("30").spawn().await?;
    /// c.kill().await?;
    /// assert_eq!(c.id(), None);
    /// # Ok(()) }
    /// ```
    pub async fn kill(&mut self) -> Result<()> {
        self.start_kill()?;
        self.wait().await.map(drop)
    }

    /// Waits for the container to exit and reaps it. Cancel-safe; returns the same status
    /// again if called after the container was reaped.
    pub async fn wait(&mut self) -> Result<ExitStatus> {
        if let Some(status) = self.status {
            return Ok(status);
        }
        // Like std: close our end of stdin so a workload reading it is not stuck forever.
        drop(self.stdin.take());
        // A registration made on a runtime that has since shut down fails here; it is
        // dropped and the pidfd registered again, once, with the runtime awaiting now.
        let mut fresh = false;
        loop {
            let fd = self
                .pidfd
                .as_mut()
                .ok_or(Error::AlreadyReaped)?
                .registered()
                .map_err(Error::io("registering the pidfd with the reactor"))?;
            let mut guard = match fd.readable().await {
                Ok(guard) => guard,
                Err(_) if !fresh => {
                    fresh = true;
                    if let Some(fd) = self.pidfd.as_mut() {
                        fd.deregister();
                    }
                    continue;
                }
                Err(e) => return Err(Error::io("waiting on the pidfd")(e)),
            };
            let reaped = sys::waitid_pidfd_rusage(fd.get_ref().as_fd(), false)
                .map_err(Error::io("waitid(P_PIDFD)"))?;
            match reaped {
                Some((status, usage)) => {
                    let status = self.reaped(status, &usage);
                    tracing::debug!(pid = self.pid, ?status, "container reaped");
                    return Ok(status);
                }
                None => guard.clear_ready(),
            }
        }
    }

    /// Returns the exit status if the container has exited (reaping it), without waiting.
    pub fn try_wait(&mut self) -> Result<Option<ExitStatus>> {
        if let Some(status) = self.status {
            return Ok(Some(status));
        }
        let fd = self.pidfd.as_ref().ok_or(Error::AlreadyReaped)?;
        let reaped =
            sys::waitid_pidfd_rusage(fd.as_fd(), false).map_err(Error::io("waitid(P_PIDFD)"))?;
        Ok(reaped.map(|(status, usage)| self.reaped(status, &usage)))
    }

    /// Records the reaped child's status and usage; returns the status to report.
    fn reaped(&mut self, status: ExitStatus, usage: &libc::rusage) -> ExitStatus {
        // With an init: the workload's own status (`session.rs`).
        let status = self.session.final_status(status);
        self.status = Some(status);
        self.run.reaped(usage);
        // Deregister and close: the pid is free for reuse from here on.
        self.pidfd = None;
        status
    }

    /// Reads stdout and stderr (those that are piped) to the end while waiting, then
    /// returns everything.
    pub async fn wait_with_output(self) -> Result<Output> {
        // One implementation, which also applies the output limit (`report.rs`).
        Ok(self.wait_with_output_and_report().await?.0)
    }

    /// Takes our end of the container's stdin pipe (if `Stdio::piped()`): an
    /// [`AsyncWrite`](tokio::io::AsyncWrite) that [`ContainerStdin::into_sender`] turns into a channel sender.
    /// Dropping it (or every sender) closes the container's stdin.
    pub fn take_stdin(&mut self) -> Option<ContainerStdin> {
        self.stdin.take()
    }

    /// Takes our end of the container's stdout pipe (if `Stdio::piped()`): a
    /// [`Stream`](futures::Stream) of [`Bytes`](bytes::Bytes) chunks, also an
    /// [`AsyncRead`](tokio::io::AsyncRead), with a line-framed view ([`ContainerStdout::lines`]).
    pub fn take_stdout(&mut self) -> Option<ContainerStdout> {
        self.stdout.take()
    }

    /// Takes our end of the container's stderr pipe (if `Stdio::piped()`); like
    /// [`take_stdout`](Self::take_stdout).
    pub fn take_stderr(&mut self) -> Option<ContainerStderr> {
        self.stderr.take()
    }
}

impl Container {
    /// The directories of the container's own cgroup, one per hierarchy (those
    /// [`Detached::cgroup_dirs`](crate::Detached::cgroup_dirs) would list): empty without
    /// one (no limit asked, or a joined cgroup), and once the container was reaped (its
    /// cgroup is then removed). For recording where a container is, e.g. an OCI runtime's
    /// state, or reading a controller file the library does not.
    pub fn cgroup_dirs(&self) -> Vec<std::path::PathBuf> {
        self.run.cgroup_dirs()
    }

    /// The first process's start time (field 22 of `/proc/PID/stat`, clock ticks after
    /// boot), which [`Detached::start_time`](crate::Detached::start_time) records so that a
    /// recycled pid is never taken for the container. [`Error::NotRunning`] once it was
    /// reaped.
    ///
    /// [`Error::NotRunning`]: crate::Error::NotRunning
    pub fn start_time(&self) -> crate::Result<u64> {
        let pid = self.pid;
        if self.pidfd.is_none() {
            return Err(crate::Error::NotRunning { pid });
        }
        crate::handle::detached::start_time(pid).map_err(|_| crate::Error::NotRunning { pid })
    }

    /// Lets go of a running container without killing or reaping it, for another process
    /// (or a later one) to manage: its cgroup stays, and the returned
    /// [`Detached`](crate::Detached) finds it again. Spawn it with
    /// [`die_with_supervisor(false)`](ContainerBuilder::die_with_supervisor), or it still
    /// dies with this process. Its exit status is for its parent to reap: this process
    /// while it lives (`waitpid`), then the subreaper it is reparented to. What OCI's
    /// `exec --detach` does with the process it starts. [`Error::NotRunning`] if it has
    /// exited already.
    ///
    /// [`Error::NotRunning`]: crate::Error::NotRunning
    pub fn detach(self) -> crate::Result<crate::Detached> {
        let pid = self.pid;
        let start_time = self.start_time()?;
        Ok(crate::Detached {
            pid,
            start_time,
            cgroup_dirs: self.forget(),
            start_fifo: None,
        })
    }

    /// Lets go of the process without killing or reaping it (a detached container): the
    /// pidfd is closed, the watchdog stopped, and the cgroup left in place, its
    /// directories returned. The block of host ids of a default user namespace, if any,
    /// stays taken for the rest of this process's life (the container still uses it).
    pub(crate) fn forget(mut self) -> Vec<std::path::PathBuf> {
        self.pidfd = None;
        self.run.detach()
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        if let Some(fd) = self.pidfd.take() {
            // `None` only if a registration panicked half-way (no IO driver): nothing to do.
            let Some(fd) = fd.into_owned() else { return };
            if self.kill_on_drop {
                let _ = sys::pidfd_send_signal(fd.as_fd(), libc::SIGKILL);
            }
            reaper::adopt_then(fd, self.run.drop_cleanup());
        }
    }
}

/// The container's pidfd, registered with a tokio reactor only once awaited.
///
/// Registering at spawn would tie the container to the spawning runtime's reactor: awaited
/// from another runtime after that one shut down, `readable()` fails ("A Tokio 1.x
/// context was found, but it is being shutdown"). tokio's own `Child` can be awaited from
/// any runtime, so the registration is made by the first `wait()`, on the runtime it runs
/// on, and made again if that runtime is gone by a later `wait()`.
#[derive(Debug)]
enum Pidfd {
    Plain(OwnedFd),
    Registered(AsyncFd<OwnedFd>),
    /// Only while switching between the two (left behind only if registering panicked,
    /// on a runtime without an IO driver).
    Moving,
}

impl Pidfd {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        match self {
            Pidfd::Plain(fd) => fd.as_fd(),
            Pidfd::Registered(fd) => fd.get_ref().as_fd(),
            Pidfd::Moving => unreachable!("a pidfd is never left moving"),
        }
    }

    /// The registered pidfd, registering it with the current runtime's reactor first if
    /// needed. On failure the pidfd stays, unregistered.
    fn registered(&mut self) -> io::Result<&AsyncFd<OwnedFd>> {
        if let Pidfd::Plain(_) = self {
            let Pidfd::Plain(fd) = std::mem::replace(self, Pidfd::Moving) else {
                unreachable!()
            };
            // Outside a runtime AsyncFd::new would panic; report it instead.
            if let Err(e) = tokio::runtime::Handle::try_current() {
                *self = Pidfd::Plain(fd);
                return Err(io::Error::other(e));
            }
            match sys::register_pidfd(fd) {
                Ok(reg) => *self = Pidfd::Registered(reg),
                Err(e) => {
                    let (fd, err) = e.into_parts();
                    *self = Pidfd::Plain(fd);
                    return Err(err);
                }
            }
        }
        match self {
            Pidfd::Registered(reg) => Ok(reg),
            _ => unreachable!("registered just above"),
        }
    }

    /// Drops the reactor registration (the runtime it was made with may be gone).
    fn deregister(&mut self) {
        if let Pidfd::Registered(_) = self {
            let Pidfd::Registered(reg) = std::mem::replace(self, Pidfd::Moving) else {
                unreachable!()
            };
            *self = Pidfd::Plain(reg.into_inner());
        }
    }

    fn into_owned(self) -> Option<OwnedFd> {
        match self {
            Pidfd::Plain(fd) => Some(fd),
            Pidfd::Registered(reg) => Some(reg.into_inner()),
            Pidfd::Moving => None,
        }
    }
}

impl From<Output> for std::process::Output {
    /// The std view (`truncated` is dropped: check it first if an output limit is set).
    fn from(o: Output) -> std::process::Output {
        std::process::Output {
            status: o.status,
            stdout: o.stdout,
            stderr: o.stderr,
        }
    }
}
