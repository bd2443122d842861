//! Stdio through channels: streams of [`Bytes`] out of the container, a channel sender
//! into it, and line framing.
//!
//! Every pipe is non-blocking and registered with tokio's reactor (no thread per
//! container). Nothing here buffers more than one chunk per stream: a consumer that does
//! not poll leaves the data in the kernel's pipe (64 KiB), the pipe fills, and the
//! container's `write` blocks. That is the backpressure, and why the supervisor's memory
//! stays flat however much a container writes.
//!
//! [`ContainerStdout`]/[`ContainerStderr`] are both an [`AsyncRead`](tokio::io::AsyncRead)
//! and a [`Stream`] of `io::Result<Bytes>`; [`ContainerStdin`] is an
//! [`AsyncWrite`](tokio::io::AsyncWrite) that turns into a channel sender with
//! [`ContainerStdin::into_sender`].

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use futures::Stream;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::unix::pipe;
use tokio::sync::mpsc;

/// The supervisor's end of a container's stdin: an [`AsyncWrite`], non-blocking and driven
/// by tokio's reactor.
#[derive(Debug)]
pub struct ContainerStdin(pub(crate) pipe::Sender);

/// The supervisor's end of a container's stdout: a [`Stream`](futures::Stream) of
/// `io::Result<Bytes>` chunks and an [`AsyncRead`] (see `io.rs`).
///
/// Pipelines and raw access, as with tokio's `ChildStdin`/`ChildStdout`/`ChildStderr`:
/// each end is an [`AsFd`], and converts into an [`OwnedFd`], a cellblock [`Stdio`](crate::Stdio) or a
/// [`std::process::Stdio`] to become another container's (or process's) stream:
///
/// ```no_run
/// # async fn demo() -> cellblock::Result<()> {
/// use cellblock::{Container, Stdio};
/// let mut echo = Container::builder("/bin/echo").arg("hello")
///     .stdout(Stdio::piped()).spawn().await?;
/// let into_tr: Stdio = echo.take_stdout().unwrap().try_into().expect("a pipe end");
/// let tr = Container::builder("/usr/bin/tr").args(["a-z", "A-Z"])
///     .stdin(into_tr).stdout(Stdio::piped()).spawn().await?;
/// let (_, out) = tokio::join!(echo.wait(), tr.wait_with_output());
/// assert_eq!(out?.stdout, b"HELLO\n");
/// # Ok(()) }
/// ```
///
/// The descriptor handed over is switched back to blocking mode (a program given a
/// non-blocking stdin would see `EAGAIN`) and deregistered from the reactor.
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
    /// One `writev` for several buffers, as tokio's `ChildStdin` does.
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
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

// Pipelines and raw access (see ContainerStdout's docs).
macro_rules! pipe_conversions {
    ($t:ty) => {
        impl AsFd for $t {
            fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
                self.0.as_fd()
            }
        }

        impl std::os::fd::AsRawFd for $t {
            fn as_raw_fd(&self) -> std::os::fd::RawFd {
                self.0.as_fd().as_raw_fd()
            }
        }

        impl TryFrom<$t> for OwnedFd {
            type Error = io::Error;
            /// Our end of the pipe, in blocking mode and no longer registered with tokio.
            fn try_from(p: $t) -> io::Result<OwnedFd> {
                p.0.into_blocking_fd()
            }
        }

        impl TryFrom<$t> for crate::Stdio {
            type Error = io::Error;
            /// Another container's stream: the pipe continues there.
            fn try_from(p: $t) -> io::Result<crate::Stdio> {
                OwnedFd::try_from(p).map(crate::Stdio::from)
            }
        }

        impl TryFrom<$t> for std::process::Stdio {
            type Error = io::Error;
            /// A std or tokio `Command`'s stream: the pipe continues there.
            fn try_from(p: $t) -> io::Result<std::process::Stdio> {
                OwnedFd::try_from(p).map(std::process::Stdio::from)
            }
        }
    };
}

pipe_conversions!(ContainerStdin);
pipe_conversions!(ContainerStdout);
pipe_conversions!(ContainerStderr);

/// Bytes read from a pipe per chunk: the size of a default Linux pipe buffer, so one
/// wakeup drains a full pipe.
const CHUNK: usize = 64 * 1024;

/// Longest line [`Lines`] buffers before handing out what it has as a line of its own.
pub const MAX_LINE: usize = 1024 * 1024;

/// Reads one chunk from a non-blocking pipe straight into a fresh `BytesMut` (no zeroing,
/// no copy). `None` at EOF.
fn poll_chunk(rx: &pipe::Receiver, cx: &mut Context<'_>) -> Poll<Option<io::Result<Bytes>>> {
    loop {
        if let Err(e) = ready!(rx.poll_read_ready(cx)) {
            return Poll::Ready(Some(Err(e)));
        }
        let mut buf = BytesMut::with_capacity(CHUNK);
        match rx.try_read_buf(&mut buf) {
            Ok(0) => return Poll::Ready(None),
            Ok(_) => return Poll::Ready(Some(Ok(buf.freeze()))),
            // Readiness was stale (another reader, or a spurious wakeup): wait again.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Poll::Ready(Some(Err(e))),
        }
    }
}

impl Stream for ContainerStdout {
    type Item = io::Result<Bytes>;
    /// The next chunk of output as the container wrote it (at most 64 KiB); `None` at EOF.
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        poll_chunk(&self.0, cx)
    }
}

impl Stream for ContainerStderr {
    type Item = io::Result<Bytes>;
    /// The next chunk of output as the container wrote it (at most 64 KiB); `None` at EOF.
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        poll_chunk(&self.0, cx)
    }
}

impl ContainerStdout {
    /// The output split into lines (without the `\n`; a final unterminated line is
    /// returned too).
    ///
    /// ```no_run
    /// # async fn demo() -> cellblock::Result<()> {
    /// use cellblock::{Container, Stdio};
    /// use futures::StreamExt;
    /// let mut c = Container::builder("/bin/sh").args(["-c", "echo a; echo b"])
    ///     .stdout(Stdio::piped()).spawn().await?;
    /// let mut lines = c.take_stdout().unwrap().lines();
    /// while let Some(line) = lines.next().await {
    ///     println!("{}", String::from_utf8_lossy(&line.unwrap()));
    /// }
    /// # Ok(()) }
    /// ```
    pub fn lines(self) -> Lines<ContainerStdout> {
        Lines::new(self)
    }
}

impl ContainerStderr {
    /// The output split into lines; see [`ContainerStdout::lines`].
    pub fn lines(self) -> Lines<ContainerStderr> {
        Lines::new(self)
    }
}

/// A line-framed view of a stream of byte chunks: each item is one line without its
/// `\n` (and without a `\r` before it). Lines longer than [`MAX_LINE`] come out in pieces
/// of that size, so a container cannot make the supervisor buffer without bound.
#[derive(Debug)]
pub struct Lines<S> {
    inner: Option<S>,
    buf: BytesMut,
    /// How much of `buf` is known to hold no `\n` (so a long line is scanned once).
    scanned: usize,
}

impl<S> Lines<S> {
    /// Frames `inner` into lines.
    pub fn new(inner: S) -> Lines<S> {
        Lines {
            inner: Some(inner),
            buf: BytesMut::new(),
            scanned: 0,
        }
    }

    fn take_line(&mut self) -> Option<Bytes> {
        if let Some(i) =
            memchr(self.buf.get(self.scanned..).unwrap_or_default()).map(|i| i + self.scanned)
        {
            self.scanned = 0;
            let mut line = self.buf.split_to(i + 1);
            line.truncate(i);
            if line.last() == Some(&b'\r') {
                line.truncate(i - 1);
            }
            return Some(line.freeze());
        }
        if self.buf.len() >= MAX_LINE {
            self.scanned = self.buf.len() - MAX_LINE;
            return Some(self.buf.split_to(MAX_LINE).freeze());
        }
        self.scanned = self.buf.len();
        None
    }
}

fn memchr(b: &[u8]) -> Option<usize> {
    b.iter().position(|&c| c == b'\n')
}

impl<S: Stream<Item = io::Result<Bytes>> + Unpin> Stream for Lines<S> {
    type Item = io::Result<Bytes>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            if let Some(line) = self.take_line() {
                return Poll::Ready(Some(Ok(line)));
            }
            let Some(inner) = self.inner.as_mut() else {
                return Poll::Ready(None);
            };
            match ready!(Pin::new(inner).poll_next(cx)) {
                Some(Ok(chunk)) => self.buf.extend_from_slice(chunk.chunk()),
                Some(Err(e)) => return Poll::Ready(Some(Err(e))),
                None => {
                    self.inner = None;
                    if self.buf.is_empty() {
                        return Poll::Ready(None);
                    }
                    self.scanned = 0;
                    let rest = self.buf.split().freeze();
                    return Poll::Ready(Some(Ok(rest)));
                }
            }
        }
    }
}

/// The sending side of a container's stdin as a channel, from
/// [`ContainerStdin::into_sender`]. Dropping every clone closes the container's stdin
/// (after what was sent has been written).
pub type StdinSender = mpsc::Sender<Bytes>;

impl ContainerStdin {
    /// Turns the stdin pipe into a bounded channel: a task on the current tokio runtime
    /// writes every [`Bytes`] sent into the pipe, in order. At most `capacity` messages
    /// wait in the channel; beyond that `send` waits (backpressure from a container that
    /// does not read). When every sender is dropped the task closes the pipe: the
    /// container reads EOF. If the container closes its stdin, the task ends and sends
    /// fail.
    ///
    /// ```no_run
    /// # async fn demo() -> cellblock::Result<()> {
    /// use cellblock::{Container, Stdio};
    /// let mut c = Container::builder("/bin/cat").stdin(Stdio::piped()).spawn().await?;
    /// let tx = c.take_stdin().unwrap().into_sender(8);
    /// tx.send("hello\n".into()).await.ok();
    /// drop(tx); // cat sees EOF and exits
    /// c.wait().await?;
    /// # Ok(()) }
    /// ```
    pub fn into_sender(mut self, capacity: usize) -> StdinSender {
        let (tx, mut rx) = mpsc::channel::<Bytes>(capacity.max(1));
        tokio::spawn(async move {
            while let Some(b) = rx.recv().await {
                if self.write_all(&b).await.is_err() {
                    break;
                }
            }
            // Dropping `self` closes the pipe.
        });
        tx
    }
}
