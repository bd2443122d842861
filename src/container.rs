//! `Container`: the async handle of a running container.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::pin::Pin;
use std::process::ExitStatus;
use std::task::{Context, Poll};

use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::unix::pipe;

use crate::builder::ContainerBuilder;
use crate::error::{Error, Result};
use crate::{reaper, sys, NamespaceIds, Namespaces, Signal};

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
    pidfd: Option<AsyncFd<OwnedFd>>,
    status: Option<ExitStatus>,
    namespaces: Namespaces,
    kill_on_drop: bool,
    stdin: Option<ContainerStdin>,
    stdout: Option<ContainerStdout>,
    stderr: Option<ContainerStderr>,
    /// The init's status pipe, the pty (`session.rs`).
    pub(crate) session: crate::session::ContainerSession,
    /// Timeout watchdog, cgroup, accounting (`report.rs`).
    pub(crate) run: crate::report::RunState,
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
        // Build the handle first so that any error below still reaps through Drop.
        let mut c = Container {
            pid,
            pidfd: None,
            status: None,
            namespaces: b.namespaces,
            kill_on_drop: true,
            stdin: None,
            stdout: None,
            stderr: None,
            session: Default::default(),
            run: Default::default(),
        };
        // SAFETY: the AsyncFd owns the pidfd, so it stays open for as long as it is
        // registered with the reactor.
        let registered =
            unsafe { AsyncFd::register_with_interest(pidfd, tokio::io::Interest::READABLE) };
        c.pidfd = Some(registered.map_err(|e| {
            let (fd, err) = e.into_parts();
            reaper::adopt(fd);
            err
        })?);
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
        c.session = crate::session::ContainerSession::new(pipes.session);
        c.kill_on_drop = b.kill_on_drop;
        Ok(c)
    }

    /// The container's pid as the supervisor sees it (in the supervisor's PID namespace).
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// The namespaces this container was created with.
    pub fn namespaces(&self) -> Namespaces {
        self.namespaces
    }

    /// The pidfd, while the container has not been reaped.
    pub fn pidfd(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        self.pidfd.as_ref().map(|fd| fd.get_ref().as_fd())
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
        sys::pidfd_send_signal(fd.get_ref().as_fd(), sig as libc::c_int)
            .map_err(Error::io("pidfd_send_signal"))
    }

    /// Sends SIGKILL. Await [`wait`](Self::wait) afterwards to reap.
    pub fn kill(&self) -> Result<()> {
        self.signal(Signal::SIGKILL)
    }

    /// Waits for the container to exit and reaps it. Cancel-safe; returns the same status
    /// again if called after the container was reaped.
    pub async fn wait(&mut self) -> Result<ExitStatus> {
        if let Some(status) = self.status {
            return Ok(status);
        }
        // Like std: close our end of stdin so a workload reading it is not stuck forever.
        drop(self.stdin.take());
        let fd = self.pidfd.as_ref().ok_or(Error::AlreadyReaped)?;
        loop {
            let mut guard = fd
                .readable()
                .await
                .map_err(Error::io("waiting on the pidfd"))?;
            match sys::waitid_pidfd_rusage(fd.get_ref().as_fd(), false)
                .map_err(Error::io("waitid(P_PIDFD)"))?
            {
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
        let reaped = sys::waitid_pidfd_rusage(fd.get_ref().as_fd(), false)
            .map_err(Error::io("waitid(P_PIDFD)"))?;
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
    /// [`AsyncWrite`] that [`ContainerStdin::into_sender`] turns into a channel sender.
    /// Dropping it (or every sender) closes the container's stdin.
    pub fn take_stdin(&mut self) -> Option<ContainerStdin> {
        self.stdin.take()
    }

    /// Takes our end of the container's stdout pipe (if `Stdio::piped()`): a
    /// [`Stream`](futures::Stream) of [`Bytes`](bytes::Bytes) chunks, also an
    /// [`AsyncRead`], with a line-framed view ([`ContainerStdout::lines`]).
    pub fn take_stdout(&mut self) -> Option<ContainerStdout> {
        self.stdout.take()
    }

    /// Takes our end of the container's stderr pipe (if `Stdio::piped()`); like
    /// [`take_stdout`](Self::take_stdout).
    pub fn take_stderr(&mut self) -> Option<ContainerStderr> {
        self.stderr.take()
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        if let Some(fd) = self.pidfd.take() {
            let fd = fd.into_inner();
            if self.kill_on_drop {
                let _ = sys::pidfd_send_signal(fd.as_fd(), libc::SIGKILL);
            }
            reaper::adopt_then(fd, self.run.drop_cleanup());
        }
    }
}

/// The supervisor's end of a container's stdin: an [`AsyncWrite`], non-blocking and driven
/// by tokio's reactor.
#[derive(Debug)]
pub struct ContainerStdin(pub(crate) pipe::Sender);

/// The supervisor's end of a container's stdout: a [`Stream`](futures::Stream) of
/// `io::Result<Bytes>` chunks and an [`AsyncRead`] (see `io.rs`).
#[derive(Debug)]
pub struct ContainerStdout(pub(crate) pipe::Receiver);

/// The supervisor's end of a container's stderr: a [`Stream`](futures::Stream) of
/// `io::Result<Bytes>` chunks and an [`AsyncRead`] (see `io.rs`).
#[derive(Debug)]
pub struct ContainerStderr(pub(crate) pipe::Receiver);

impl AsyncWrite for ContainerStdin {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

impl AsyncRead for ContainerStdout {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncRead for ContainerStderr {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}
