//! Pseudo-terminals: the container's controlling terminal, and the supervisor's side.
//!
//! [`ContainerBuilder::pty`](crate::ContainerBuilder::pty) opens a pty pair in the parent;
//! the child starts a new session and makes the slave its controlling terminal on fds 0,
//! 1 and 2 (`child/session.rs`). The supervisor keeps the master as a [`Pty`]: an
//! `AsyncRead`/`AsyncWrite` and a `Stream` of output chunks driven by tokio's reactor, or
//! a pair of channels ([`Pty::into_channels`]); [`Pty::resize`] sets the window size, and
//! the kernel sends SIGWINCH to the terminal's foreground process group.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use futures::Stream;
use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::sync::mpsc;

use crate::error::{Error, Result};
use crate::{sys, Container};

/// A terminal window size in character cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PtySize {
    /// Rows (lines).
    pub rows: u16,
    /// Columns.
    pub cols: u16,
}

/// Opens a pty pair: `(master, slave)`, both close-on-exec and above the stdio range,
/// with the window size set.
///
/// With `devpts` (a detached devpts instance that becomes the container's `/dev/pts`,
/// `mounts.rs`), the pair is made in that instance, so the container finds its terminal
/// under its own `/dev/pts` (`tty` names it); otherwise in the host's (`/dev/ptmx`).
pub(crate) fn open(
    size: PtySize,
    devpts: Option<std::os::fd::BorrowedFd<'_>>,
) -> io::Result<(OwnedFd, OwnedFd)> {
    let flags = libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC;
    let m = match devpts {
        // SAFETY: openat on a descriptor we borrow, with a C string. man 2 openat.
        Some(dir) => unsafe { libc::openat(dir.as_raw_fd(), c"ptmx".as_ptr(), flags) },
        // SAFETY: plain syscall. man 3 posix_openpt (O_CLOEXEC is accepted on Linux).
        None => unsafe { libc::posix_openpt(flags) },
    };
    if m == -1 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor owned by nobody else.
    let master = sys::above_stdio(unsafe { OwnedFd::from_raw_fd(m) })?;
    // SAFETY: on our own master fd. man 3 unlockpt.
    if unsafe { libc::unlockpt(master.as_raw_fd()) } == -1 {
        return Err(io::Error::last_os_error());
    }
    // TIOCGPTPEER (Linux 4.13+) opens the slave through the master, with no path lookup
    // in /dev/pts (which could be another devpts instance than the master's).
    // SAFETY: ioctl on our master. man 2 ioctl_tty.
    let s = unsafe {
        libc::ioctl(
            master.as_raw_fd(),
            libc::TIOCGPTPEER,
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        )
    };
    if s == -1 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor owned by nobody else.
    let slave = sys::above_stdio(unsafe { OwnedFd::from_raw_fd(s) })?;
    set_size(master.as_raw_fd(), size)?;
    Ok((master, slave))
}

fn set_size(fd: RawFd, size: PtySize) -> io::Result<()> {
    let ws = libc::winsize {
        ws_row: size.rows,
        ws_col: size.cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: valid winsize pointer. man 2 ioctl_tty (TIOCSWINSZ).
    if unsafe { libc::ioctl(fd, libc::TIOCSWINSZ, &ws) } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn get_size(fd: RawFd) -> io::Result<PtySize> {
    // SAFETY: winsize is plain data; valid pointer. man 2 ioctl_tty (TIOCGWINSZ).
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    if unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut ws) } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(PtySize {
        rows: ws.ws_row,
        cols: ws.ws_col,
    })
}

/// The supervisor's side of a container's terminal (the pty master).
///
/// Reading gives what the container writes to its terminal (EOF once every process in the
/// container has closed it); writing types into it. Also a [`Stream`] of output chunks.
///
/// ```no_run
/// # async fn demo() -> cellblock::Result<()> {
/// use cellblock::{Container, Namespaces, PtySize};
/// use futures::StreamExt;
/// let mut c = Container::builder("/bin/sh").namespaces(Namespaces::UTS).pty().spawn().await?;
/// let pty = c.take_pty()?.expect("pty() was set");
/// pty.resize(PtySize { rows: 50, cols: 132 }).expect("TIOCSWINSZ"); // the container gets SIGWINCH
/// let mut ch = pty.into_channels(16);
/// ch.input.send("stty size; exit\n".into()).await.ok();
/// while let Some(chunk) = ch.output.recv().await {
///     print!("{}", String::from_utf8_lossy(&chunk));
/// }
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Pty {
    io: AsyncFd<OwnedFd>,
    resizer: PtyResizer,
}

/// A cloneable handle that sets a [`Pty`]'s window size from anywhere (a SIGWINCH
/// handler, say) while the `Pty` itself is busy being read.
#[derive(Debug, Clone)]
pub struct PtyResizer(Arc<OwnedFd>);

impl PtyResizer {
    /// Sets the window size; the kernel sends SIGWINCH to the terminal's foreground
    /// process group in the container.
    pub fn resize(&self, size: PtySize) -> io::Result<()> {
        set_size(self.0.as_raw_fd(), size)
    }

    /// The current window size.
    pub fn size(&self) -> io::Result<PtySize> {
        get_size(self.0.as_raw_fd())
    }
}

/// A [`Pty`] as channels, from [`Pty::into_channels`].
#[derive(Debug)]
pub struct PtyChannels {
    /// Bytes to type into the terminal. Dropping every sender stops the input task (the
    /// terminal stays open; send `\x04` (^D) for an end of file in canonical mode).
    pub input: mpsc::Sender<Bytes>,
    /// What the container writes to the terminal; closed at EOF.
    pub output: mpsc::Receiver<Bytes>,
    /// Sets the window size.
    pub resizer: PtyResizer,
}

impl Pty {
    fn new(master: OwnedFd) -> io::Result<Pty> {
        // SAFETY: O_NONBLOCK on our own master fd: the reactor drives it. man 2 fcntl.
        unsafe {
            let fl = libc::fcntl(master.as_raw_fd(), libc::F_GETFL);
            if fl == -1
                || libc::fcntl(master.as_raw_fd(), libc::F_SETFL, fl | libc::O_NONBLOCK) == -1
            {
                return Err(io::Error::last_os_error());
            }
        }
        let resizer = PtyResizer(Arc::new(master.try_clone()?));
        // SAFETY: the AsyncFd owns the master, so it stays open while registered.
        let io = unsafe { AsyncFd::register(master) }.map_err(|e| e.into_parts().1)?;
        Ok(Pty { io, resizer })
    }

    /// Sets the window size (the container's foreground process group gets SIGWINCH).
    pub fn resize(&self, size: PtySize) -> io::Result<()> {
        self.resizer.resize(size)
    }

    /// The current window size.
    pub fn size(&self) -> io::Result<PtySize> {
        self.resizer.size()
    }

    /// A handle to resize this terminal from elsewhere.
    pub fn resizer(&self) -> PtyResizer {
        self.resizer.clone()
    }

    /// Turns the pty into channels, driven by one task on the current tokio runtime:
    /// `capacity` chunks may wait in each direction (beyond that, the container's writes
    /// block on the terminal: backpressure, not memory).
    pub fn into_channels(self, capacity: usize) -> PtyChannels {
        let (in_tx, mut in_rx) = mpsc::channel::<Bytes>(capacity.max(1));
        let (out_tx, out_rx) = mpsc::channel::<Bytes>(capacity.max(1));
        let resizer = self.resizer.clone();
        let (mut rd, mut wr) = tokio::io::split(self);
        tokio::spawn(async move {
            let input = async move {
                while let Some(b) = in_rx.recv().await {
                    if wr.write_all(&b).await.is_err() {
                        break;
                    }
                }
            };
            let output = async move {
                let mut buf = vec![0u8; 4096];
                loop {
                    match tokio::io::AsyncReadExt::read(&mut rd, &mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if out_tx
                                .send(Bytes::copy_from_slice(&buf[..n]))
                                .await
                                .is_err()
                            {
                                break;
                            }
                        }
                    }
                }
            };
            // Output decides the end: once the container closed its terminal, input is
            // pointless.
            tokio::select! {
                _ = output => {}
                _ = async { input.await; std::future::pending::<()>().await } => {}
            }
        });
        PtyChannels {
            input: in_tx,
            output: out_rx,
            resizer,
        }
    }
}

impl AsyncRead for Pty {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            let mut guard = ready!(self.io.poll_read_ready(cx))?;
            let unfilled = buf.initialize_unfilled();
            match guard.try_io(|fd| {
                // SAFETY: valid buffer. man 2 read.
                let n = unsafe {
                    libc::read(fd.as_raw_fd(), unfilled.as_mut_ptr().cast(), unfilled.len())
                };
                if n < 0 {
                    Err(io::Error::last_os_error())
                } else {
                    Ok(n as usize)
                }
            }) {
                Ok(Ok(n)) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                // The master reads EIO once no process holds the slave open: end of file.
                Ok(Err(e)) if e.raw_os_error() == Some(libc::EIO) => return Poll::Ready(Ok(())),
                Ok(Err(e)) => return Poll::Ready(Err(e)),
                Err(_would_block) => continue,
            }
        }
    }
}

impl AsyncWrite for Pty {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        loop {
            let mut guard = ready!(self.io.poll_write_ready(cx))?;
            match guard.try_io(|fd| {
                // SAFETY: valid buffer. man 2 write.
                let n = unsafe { libc::write(fd.as_raw_fd(), buf.as_ptr().cast(), buf.len()) };
                if n < 0 {
                    Err(io::Error::last_os_error())
                } else {
                    Ok(n as usize)
                }
            }) {
                Ok(r) => return Poll::Ready(r),
                Err(_would_block) => continue,
            }
        }
    }
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl Stream for Pty {
    type Item = io::Result<Bytes>;
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let mut buf = [0u8; 4096];
        let mut rb = ReadBuf::new(&mut buf);
        match ready!(self.poll_read(cx, &mut rb)) {
            Ok(()) if rb.filled().is_empty() => Poll::Ready(None),
            Ok(()) => Poll::Ready(Some(Ok(Bytes::copy_from_slice(rb.filled())))),
            Err(e) => Poll::Ready(Some(Err(e))),
        }
    }
}

impl Container {
    /// Takes the supervisor's side of the container's terminal (set with
    /// [`ContainerBuilder::pty`](crate::ContainerBuilder::pty)). Must be called within a
    /// tokio runtime.
    pub fn take_pty(&mut self) -> Result<Option<Pty>> {
        match self.session.pty.take() {
            Some(fd) => Pty::new(fd)
                .map(Some)
                .map_err(Error::io("registering the pty with the reactor")),
            None => Ok(None),
        }
    }
}
