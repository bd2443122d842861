//! What ends a container from the outside: its wall-clock timeout and its output cap.
//!
//! The timeout is a task per container that waits on a duplicate of the pidfd; the output
//! cap is enforced by the readers of `wait_with_output_and_report`. Either records why it
//! killed the container (first writer wins: [`mark_killed`]), which the report reads.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::task::JoinHandle;

use crate::builder::limits::{LimitsConfig, DEFAULT_KILL_GRACE};
use crate::cgroup::Cgroup;
use crate::{sys, Container};

/// Why we killed a container, if we did (first writer wins: [`mark_killed`]).
pub(super) const KILLED_NONE: u8 = 0;
pub(super) const KILLED_TIMEOUT: u8 = 1;
pub(super) const KILLED_OUTPUT: u8 = 2;

/// Records why we killed the container, unless a reason was recorded already.
pub(super) fn mark_killed(killed: &AtomicU8, why: u8) {
    let _ = killed.compare_exchange(KILLED_NONE, why, Ordering::SeqCst, Ordering::SeqCst);
}

/// Starts the timeout watchdog of a container that has just started, if it has a timeout.
pub(super) fn start(
    limits: &LimitsConfig,
    cgroup: Option<&Arc<Cgroup>>,
    pidfd: Option<BorrowedFd<'_>>,
    killed: &Arc<AtomicU8>,
) -> Option<JoinHandle<()>> {
    // Duplicate the pidfd only when there is a timeout to enforce (a dup and a close
    // per spawn otherwise).
    let pidfd = pidfd.filter(|_| limits.timeout.is_some());
    match (limits.timeout, pidfd.map(|fd| fd.try_clone_to_owned())) {
        (Some(timeout), Some(Ok(fd))) => Some(tokio::spawn(watchdog(
            fd,
            cgroup.cloned(),
            timeout,
            limits.kill_grace.unwrap_or(DEFAULT_KILL_GRACE),
            killed.clone(),
        ))),
        (Some(_), Some(Err(e))) => {
            tracing::warn!(error = %e, "cannot enforce the timeout: dup of the pidfd failed");
            None
        }
        _ => None,
    }
}

/// Ends the container after `timeout`: SIGTERM, `grace`, SIGKILL of the whole container.
/// Returns early as soon as the first process has exited.
async fn watchdog(
    pidfd: OwnedFd,
    cgroup: Option<Arc<Cgroup>>,
    timeout: Duration,
    grace: Duration,
    killed: Arc<AtomicU8>,
) {
    let Ok(fd) = sys::register_pidfd(pidfd) else {
        return;
    };
    tokio::select! {
        _ = fd.readable() => return,
        _ = tokio::time::sleep(timeout) => {}
    }
    mark_killed(&killed, KILLED_TIMEOUT);
    tracing::debug!(?timeout, "container timed out");
    if !grace.is_zero() {
        signal_container(fd.get_ref().as_fd(), cgroup.as_ref(), libc::SIGTERM).await;
        tokio::select! {
            _ = fd.readable() => {}
            _ = tokio::time::sleep(grace) => {}
        }
    }
    // Even if the first process obeyed SIGTERM, what it left behind in the cgroup goes.
    kill_container(fd.get_ref().as_fd(), cgroup.as_ref()).await;
}

/// `sig` to every process of the cgroup, or to the first process without one.
async fn signal_container(pidfd: BorrowedFd<'_>, cgroup: Option<&Arc<Cgroup>>, sig: libc::c_int) {
    match cgroup {
        Some(cg) => {
            let cg = cg.clone();
            // Freezing polls the cgroup's state: blocking work, off the runtime's workers.
            let _ = tokio::task::spawn_blocking(move || cg.signal_all(sig)).await;
        }
        None => {
            let _ = sys::pidfd_send_signal(pidfd, sig);
        }
    }
}

/// SIGKILL to the whole container: its cgroup, or else its first process (which takes a
/// PID namespace down with it).
async fn kill_container(pidfd: BorrowedFd<'_>, cgroup: Option<&Arc<Cgroup>>) {
    let _ = sys::pidfd_send_signal(pidfd, libc::SIGKILL);
    if let Some(cg) = cgroup {
        let cg = cg.clone();
        let _ = tokio::task::spawn_blocking(move || cg.kill_all()).await;
    }
}

/// Reads one stream to the end, keeping at most what is left of the shared budget. On
/// the first byte past it, kills the container and stops reading: our end closes, so a
/// writer that somehow survives (outside the cgroup) gets EPIPE instead of keeping us
/// waiting for an EOF.
pub(super) async fn read_capped<R: AsyncRead + Unpin>(
    r: Option<R>,
    budget: &AtomicUsize,
    c: &Container,
) -> io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    let Some(mut r) = r else {
        return Ok(buf);
    };
    let Some(limit) = c.run.output_limit() else {
        r.read_to_end(&mut buf).await?;
        return Ok(buf);
    };
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        let n = r.read(&mut chunk).await?;
        if n == 0 {
            return Ok(buf);
        }
        let before = budget.fetch_add(n, Ordering::SeqCst);
        if before + n <= limit {
            buf.extend_from_slice(&chunk[..n]);
            continue;
        }
        buf.extend_from_slice(&chunk[..limit.saturating_sub(before).min(n)]);
        if before <= limit {
            // This read crossed the limit (the other stream's reader may get here too,
            // later, and just stops).
            c.run.mark_killed(KILLED_OUTPUT);
            let _ = c.kill_all().await;
        }
        return Ok(buf);
    }
}
