//! Pseudo-terminals: the container's controlling terminal, and the supervisor's side.
//!
//! [`ContainerBuilder::pty`](crate::ContainerBuilder::pty) opens a pty pair in the parent;
//! the child starts a new session and makes the slave its controlling terminal on fds 0,
//! 1 and 2 (`child/session.rs`). The supervisor keeps the master as a [`Pty`]: an
//! `AsyncRead`/`AsyncWrite` and a `Stream` of output chunks driven by tokio's reactor, or
//! a pair of channels ([`Pty::into_channels`]); [`Pty::resize`] sets the window size, and
//! the kernel sends SIGWINCH to the terminal's foreground process group.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use futures::Stream;
use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, Interest, ReadBuf};
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
    let master = match devpts {
        Some(dir) => sys::openat(dir, c"ptmx", flags)?,
        None => sys::posix_openpt(flags)?,
    };
    let master = sys::above_stdio(master)?;
    sys::unlockpt(master.as_fd())?;
    // Through the master, not by name: /dev/pts may be another devpts instance than the
    // master's.
    let slave = sys::above_stdio(sys::pty_peer(master.as_fd(), flags)?)?;
    set_size(master.as_fd(), size)?;
    Ok((master, slave))
}

fn set_size(fd: BorrowedFd<'_>, size: PtySize) -> io::Result<()> {
    let ws = libc::winsize {
        ws_row: size.rows,
        ws_col: size.cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    sys::set_winsize(fd, &ws)
}

fn get_size(fd: BorrowedFd<'_>) -> io::Result<PtySize> {
    let ws = sys::get_winsize(fd)?;
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
        set_size(self.0.as_fd(), size)
    }

    /// The current window size.
    pub fn size(&self) -> io::Result<PtySize> {
        get_size(self.0.as_fd())
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
        // The reactor drives the master.
        sys::set_nonblocking(master.as_fd())?;
        let resizer = PtyResizer(Arc::new(master.try_clone()?));
        let io = sys::register(master, Interest::READABLE | Interest::WRITABLE)
            .map_err(|e| e.into_parts().1)?;
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
            match guard.try_io(|fd| sys::read(fd.get_ref().as_fd(), unfilled)) {
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
            match guard.try_io(|fd| sys::write(fd.get_ref().as_fd(), buf)) {
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

    /// Takes the pty master as a plain descriptor instead of a [`Pty`]: to hand it to
    /// another process (an OCI runtime sends it over the caller's console socket), or to
    /// drive it outside tokio. `None` without [`pty`](crate::ContainerBuilder::pty), or
    /// once taken. A container that joins another's mount namespace gets its terminal in
    /// that container's own devpts (as `docker exec -t` does).
    pub fn take_pty_fd(&mut self) -> Option<OwnedFd> {
        self.session.pty.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads from `fd` until `want` bytes came, each wait bounded by poll's timeout.
    fn read_exactly(fd: BorrowedFd<'_>, want: usize) -> Vec<u8> {
        let mut got = Vec::new();
        while got.len() < want {
            let mut pfd = [libc::pollfd {
                fd: std::os::fd::AsRawFd::as_raw_fd(&fd),
                events: libc::POLLIN,
                revents: 0,
            }];
            assert_eq!(
                sys::poll(&mut pfd, 5000).unwrap(),
                1,
                "nothing to read in 5 s"
            );
            let mut buf = [0u8; 64];
            let n = sys::read(fd, &mut buf).unwrap();
            got.extend_from_slice(&buf[..n]);
        }
        got
    }

    /// The host's devpts, as `pty()` opens it without a mount namespace: both ends
    /// close-on-exec, the size set through the master seen from the slave, and bytes
    /// written by the container's side arriving at ours through the line discipline.
    #[test]
    fn a_pair_is_cloexec_sized_and_connected() {
        let size = PtySize {
            rows: 33,
            cols: 101,
        };
        let (master, slave) = open(size, None).unwrap();
        for fd in [&master, &slave] {
            let flags = nix::fcntl::fcntl(
                std::os::fd::AsRawFd::as_raw_fd(fd),
                nix::fcntl::FcntlArg::F_GETFD,
            )
            .unwrap();
            assert_ne!(flags & libc::FD_CLOEXEC, 0, "a pty end leaks into children");
        }
        assert_eq!(get_size(slave.as_fd()).unwrap(), size);
        let smaller = PtySize { rows: 5, cols: 7 };
        PtyResizer(Arc::new(master.try_clone().unwrap()))
            .resize(smaller)
            .unwrap();
        assert_eq!(get_size(slave.as_fd()).unwrap(), smaller);
        // Output processing (ONLCR) turns the newline into CR LF on the way to the master.
        assert_eq!(sys::write(slave.as_fd(), b"hi\n").unwrap(), 3);
        assert_eq!(read_exactly(master.as_fd(), 4), b"hi\r\n");
    }
}
