//! An interactive bash in a container, on your terminal.
//!
//! ```text
//! cargo run --example shell            # as root
//! root@container:/# hostname
//! container
//! ```
//!
//! The container gets its own pseudo-terminal (`ContainerBuilder::pty`) in a new session,
//! so it never touches the host's terminal directly (no TIOCSTI into your shell,
//! CVE-2017-5226). This program puts the host terminal in raw mode and copies bytes both
//! ways; SIGWINCH on the host resizes the container's terminal (bash sees SIGWINCH in
//! turn); SIGTERM/SIGHUP reach bash as a hangup. The host terminal is restored
//! on every way out, and the program exits with bash's status.
//!
//! When stdin is not a terminal (`echo hostname | shell`), bash runs without a pty and
//! reads its commands from stdin.

use std::io::Write;
use std::os::fd::BorrowedFd;

use cellblock::{Container, Namespaces, PtySize, Signal, SignalForwarder};
use nix::sys::termios::{self, SetArg, Termios};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Puts a terminal in raw mode and restores the saved settings when dropped (also when
/// unwinding from a panic).
struct RawMode {
    fd: BorrowedFd<'static>,
    saved: Termios,
}

impl RawMode {
    fn enter(fd: BorrowedFd<'static>) -> nix::Result<RawMode> {
        let saved = termios::tcgetattr(fd)?;
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        termios::tcsetattr(fd, SetArg::TCSANOW, &raw)?;
        Ok(RawMode { fd, saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        // TCSADRAIN: let what we already wrote reach the terminal in raw mode first.
        let _ = termios::tcsetattr(self.fd, SetArg::TCSADRAIN, &self.saved);
    }
}

/// The host terminal's size, if stdin is one.
fn host_size() -> Option<PtySize> {
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: valid winsize pointer; fails harmlessly when stdin is not a terminal.
    if unsafe { libc::ioctl(0, libc::TIOCGWINSZ, &mut ws) } == -1 || ws.ws_row == 0 {
        return None;
    }
    Some(PtySize {
        rows: ws.ws_row,
        cols: ws.ws_col,
    })
}

#[tokio::main]
async fn main() {
    let code = match run().await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("shell: {e}");
            1
        }
    };
    // Exit right away: tokio's stdin reader may be parked in a blocking read() that
    // would otherwise hold up the runtime's shutdown until the next key press.
    std::process::exit(code);
}

async fn run() -> Result<i32, Box<dyn std::error::Error>> {
    // SAFETY: fd 0 stays open for the whole life of the process.
    let stdin_fd = unsafe { BorrowedFd::borrow_raw(0) };
    let interactive = nix::unistd::isatty(0).unwrap_or(false);

    // Subscribe before spawning, so no SIGWINCH or SIGTERM falls between the two.
    let forwarder = SignalForwarder::new(&[Signal::SIGWINCH, Signal::SIGTERM, Signal::SIGHUP])?;
    let mut winch = forwarder.subscribe(&[Signal::SIGWINCH]);
    let mut hangup = forwarder.subscribe(&[Signal::SIGTERM, Signal::SIGHUP]);

    let mut b = Container::builder("bash");
    // Only what a shell needs, nothing of our environment (the shell's user may be anyone).
    b.env_clear()
        .env("PATH", cellblock::DEFAULT_PATH)
        .env(
            "TERM",
            std::env::var("TERM").unwrap_or_else(|_| "xterm".into()),
        )
        .env("PS1", "root@\\h:\\w# ")
        .namespaces(Namespaces::UTS | Namespaces::PID | Namespaces::MOUNT | Namespaces::IPC)
        .hostname("container")
        .kill_on_drop(true);
    if !interactive {
        // Not a terminal (a script piped in): bash reads its commands from our stdin and
        // writes to our stdout, no pty and no raw mode.
        let mut c = b.spawn().await?;
        let status = loop {
            tokio::select! {
                status = c.wait() => break status?,
                Some(sig) = hangup.recv() => c.signal(sig)?,
            }
        };
        use std::os::unix::process::ExitStatusExt;
        return Ok(status
            .code()
            .unwrap_or_else(|| 128 + status.signal().unwrap_or(0)));
    }
    let mut c = b
        .pty_size(host_size().unwrap_or(PtySize { rows: 24, cols: 80 }))
        .spawn()
        .await?;
    let pty = c.take_pty()?.expect("pty() was set");

    let resizer = pty.resizer();
    tokio::spawn(async move {
        while winch.recv().await.is_some() {
            if let Some(size) = host_size() {
                let _ = resizer.resize(size);
            }
        }
    });

    let raw = RawMode::enter(stdin_fd)?;
    let (mut from_pty, mut to_pty) = tokio::io::split(pty);
    tokio::spawn(async move {
        let mut stdin = tokio::io::stdin();
        let mut buf = [0u8; 1024];
        loop {
            match stdin.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if to_pty.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            }
        }
    });
    let mut out = std::io::stdout();
    let mut buf = [0u8; 4096];
    loop {
        tokio::select! {
            // EOF (or EIO) once bash and everything in the container closed the terminal.
            n = from_pty.read(&mut buf) => {
                let n = n.unwrap_or(0);
                if n == 0 {
                    break;
                }
                out.write_all(&buf[..n])?;
                out.flush()?;
            }
            // An interactive bash ignores SIGTERM but not SIGHUP (it then ends its jobs
            // too): pass either on as a hangup, like a terminal emulator closing.
            Some(_) = hangup.recv() => c.signal(Signal::SIGHUP)?,
        }
    }
    let status = c.wait().await?;
    drop(raw);
    use std::os::unix::process::ExitStatusExt;
    Ok(status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0)))
}
