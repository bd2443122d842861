//! Reaping children nobody awaits any more.
//!
//! A [`ChildGuard`] owns a freshly cloned child's pidfd until a `Container` takes it over;
//! if it is dropped instead (a cancelled `spawn`, a setup failure path), the child is
//! killed and handed to the background reaper. A dropped `Container` hands its child over
//! the same way. The reaper is one thread waiting on all such pidfds with epoll and
//! reaping each with `waitid(P_PIDFD)` once it exits: it never calls `waitpid(-1)`, so it
//! cannot steal the exit status of anybody else's child, and it does not depend on a tokio
//! runtime still being alive.

use std::collections::BTreeMap;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, IntoRawFd, OwnedFd};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

use crate::sys;

/// A cloned child that has not been handed to a `Container` yet.
pub(crate) struct ChildGuard {
    pub(crate) pid: libc::pid_t,
    pidfd: Option<OwnedFd>,
}

impl ChildGuard {
    pub(crate) fn new(pid: libc::pid_t, pidfd: OwnedFd) -> ChildGuard {
        ChildGuard {
            pid,
            pidfd: Some(pidfd),
        }
    }

    /// Takes the pidfd out; the caller is now responsible for reaping.
    pub(crate) fn into_pidfd(mut self) -> OwnedFd {
        self.pidfd.take().expect("pidfd present until taken")
    }

    /// Reaps a child known to have exited (blocking briefly if it has not quite).
    pub(crate) fn reap_now(mut self) {
        if let Some(fd) = self.pidfd.take() {
            let _ = sys::waitid_pidfd(fd.as_fd(), true);
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(fd) = self.pidfd.take() {
            let _ = sys::pidfd_send_signal(fd.as_fd(), libc::SIGKILL);
            adopt(fd);
        }
    }
}

/// Number of orphans handed over and not yet reaped.
static PENDING: AtomicUsize = AtomicUsize::new(0);

/// How many dropped containers the background reaper is still waiting for.
pub fn pending_orphans() -> usize {
    PENDING.load(Ordering::SeqCst)
}

/// Hands the child behind `pidfd` to the background reaper.
pub(crate) fn adopt(pidfd: OwnedFd) {
    adopt_then(pidfd, None);
}

/// Work to do once an adopted child has been reaped (removing its cgroup).
pub(crate) type Cleanup = Box<dyn FnOnce() + Send>;

/// Cleanups of adopted children, by pidfd number (owned by the reaper thread).
static CLEANUPS: Mutex<BTreeMap<libc::c_int, Cleanup>> = Mutex::new(BTreeMap::new());

/// [`adopt`], then run `cleanup` (if any) once the child has been reaped.
pub(crate) fn adopt_then(pidfd: OwnedFd, cleanup: Option<Cleanup>) {
    retry_stranded();
    hand_over(pidfd, cleanup);
}

fn hand_over(pidfd: OwnedFd, cleanup: Option<Cleanup>) {
    // Already gone? Reap it right here.
    if !matches!(sys::waitid_pidfd(pidfd.as_fd(), false), Ok(None)) {
        if let Some(c) = cleanup {
            c();
        }
        return;
    }
    let Some(epoll) = reaper() else {
        // No epoll: a thread of its own for this one child (never expected in practice).
        reap_on_own_thread(pidfd, cleanup);
        return;
    };
    PENDING.fetch_add(1, Ordering::SeqCst);
    let raw = pidfd.into_raw_fd();
    if let Some(c) = cleanup {
        // Before epoll_ctl: the reaper may reap it the moment it is added.
        lock_cleanups().insert(raw, c);
    }
    let mut ev = libc::epoll_event {
        events: libc::EPOLLIN as u32,
        u64: raw as u64,
    };
    // SAFETY: valid epoll fd and pidfd; the reaper thread now owns `raw`. man 2 epoll_ctl.
    if unsafe { libc::epoll_ctl(epoll, libc::EPOLL_CTL_ADD, raw, &mut ev) } == -1 {
        // SAFETY: we still own `raw`.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        PENDING.fetch_sub(1, Ordering::SeqCst);
        let cleanup = lock_cleanups().remove(&raw);
        reap_on_own_thread(fd, cleanup);
    }
}

/// The fallback when the reaper thread cannot take `pidfd`: a thread that waits for this
/// one child, reaps it and runs `cleanup`. Where no thread can be started either (the
/// process is out of pids or memory), the child waits in [`STRANDED`] for the next
/// hand-over, which retries; it stays counted in [`pending_orphans`] meanwhile.
fn reap_on_own_thread(pidfd: OwnedFd, cleanup: Option<Cleanup>) {
    let job = std::sync::Arc::new(Mutex::new(Some((pidfd, cleanup))));
    let mine = job.clone();
    let spawned = std::thread::Builder::new()
        .name("cellblock-reap-one".into())
        .spawn(move || {
            let taken = mine.lock().unwrap_or_else(|e| e.into_inner()).take();
            if let Some((pidfd, cleanup)) = taken {
                let _ = sys::waitid_pidfd(pidfd.as_fd(), true);
                if let Some(c) = cleanup {
                    c();
                }
            }
        });
    if let Err(e) = spawned {
        let taken = job.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(stranded) = taken {
            tracing::warn!(error = %e, "no thread to reap a child: retried at the next hand-over");
            PENDING.fetch_add(1, Ordering::SeqCst);
            STRANDED
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(stranded);
        }
    }
}

/// Children that neither the reaper nor a thread of their own could take (see
/// [`reap_on_own_thread`]).
static STRANDED: Mutex<Vec<(OwnedFd, Option<Cleanup>)>> = Mutex::new(Vec::new());

/// Hands the [`STRANDED`] children over again.
fn retry_stranded() {
    let stranded = std::mem::take(&mut *STRANDED.lock().unwrap_or_else(|e| e.into_inner()));
    for (pidfd, cleanup) in stranded {
        PENDING.fetch_sub(1, Ordering::SeqCst);
        hand_over(pidfd, cleanup);
    }
}

/// The reaper's epoll descriptor, starting the thread on first use. A failure (no thread
/// could be started) is not remembered: the next call tries again.
fn reaper() -> Option<libc::c_int> {
    static EPOLL: OnceLock<OwnedFd> = OnceLock::new();
    static STARTING: Mutex<()> = Mutex::new(());
    if let Some(fd) = EPOLL.get() {
        return Some(fd.as_raw_fd());
    }
    let _one_at_a_time = STARTING.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(fd) = EPOLL.get() {
        return Some(fd.as_raw_fd());
    }
    // SAFETY: plain syscall. man 2 epoll_create1.
    let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    if fd == -1 {
        return None;
    }
    // SAFETY: a fresh descriptor; kept open for the life of the process once the thread
    // runs (closed here otherwise).
    let epoll = unsafe { OwnedFd::from_raw_fd(fd) };
    let raw = epoll.as_raw_fd();
    std::thread::Builder::new()
        .name("cellblock-reaper".into())
        .spawn(move || reap_loop(raw))
        .ok()?;
    Some(EPOLL.get_or_init(|| epoll).as_raw_fd())
}

fn lock_cleanups() -> std::sync::MutexGuard<'static, BTreeMap<libc::c_int, Cleanup>> {
    CLEANUPS.lock().unwrap_or_else(|e| e.into_inner())
}

fn reap_loop(epoll: libc::c_int) {
    let mut events = [libc::epoll_event { events: 0, u64: 0 }; 64];
    loop {
        // SAFETY: valid buffer of 64 events. man 2 epoll_wait.
        let n = unsafe { libc::epoll_wait(epoll, events.as_mut_ptr(), events.len() as i32, -1) };
        if n < 0 {
            continue; // EINTR
        }
        for ev in &events[..n as usize] {
            let raw = ev.u64 as libc::c_int;
            // SAFETY: `raw` is a pidfd this thread owns (see `adopt`); borrowed only here.
            let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(raw) };
            if !matches!(sys::waitid_pidfd(fd, false), Ok(None)) {
                // Reaped (or gone). Deregister explicitly before closing: close() alone
                // does not remove the registration while another copy of the pidfd's file
                // exists — and children cloned concurrently hold copies of every fd until
                // they exec — so a stale event would name a reused fd number later.
                // SAFETY: valid epoll fd and our own `raw`. man 7 epoll (Q6).
                unsafe { libc::epoll_ctl(epoll, libc::EPOLL_CTL_DEL, raw, std::ptr::null_mut()) };
                // Take the cleanup (cgroup removal) while the fd number still names this child.
                let cleanup = lock_cleanups().remove(&raw);
                // SAFETY: we own `raw` and nothing refers to it any more.
                drop(unsafe { OwnedFd::from_raw_fd(raw) });
                if let Some(c) = cleanup {
                    c();
                }
                PENDING.fetch_sub(1, Ordering::SeqCst);
            }
        }
    }
}
