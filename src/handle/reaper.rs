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
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use crate::sys;

/// A cloned child that has not been handed to a `Container` yet.
pub(crate) struct ChildGuard {
    pub(crate) pid: libc::pid_t,
    pidfd: Option<OwnedFd>,
    /// A created child waiting at its start gate (`ContainerBuilder::create`): what
    /// starting it needs.
    pub(crate) gated: Option<crate::plan::Gated>,
}

impl ChildGuard {
    pub(crate) fn new(pid: libc::pid_t, pidfd: OwnedFd) -> ChildGuard {
        ChildGuard {
            pid,
            pidfd: Some(pidfd),
            gated: None,
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

/// The children the reaper thread waits for, by pidfd number (the number is the epoll
/// event's data): their pidfds, and what to do once each has been reaped.
static ADOPTED: Mutex<BTreeMap<RawFd, (OwnedFd, Option<Cleanup>)>> = Mutex::new(BTreeMap::new());

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
    let raw = pidfd.as_raw_fd();
    // In the map before epoll_ctl: the reaper may reap it the moment it is added.
    let mut adopted = lock_adopted();
    let added = sys::epoll_add(epoll, pidfd.as_fd(), libc::EPOLLIN as u32, raw as u64);
    if added.is_ok() {
        adopted.insert(raw, (pidfd, cleanup));
        return;
    }
    drop(adopted);
    PENDING.fetch_sub(1, Ordering::SeqCst);
    reap_on_own_thread(pidfd, cleanup);
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
fn reaper() -> Option<BorrowedFd<'static>> {
    static EPOLL: OnceLock<Arc<OwnedFd>> = OnceLock::new();
    static STARTING: Mutex<()> = Mutex::new(());
    if let Some(fd) = EPOLL.get() {
        return Some(fd.as_fd());
    }
    let _one_at_a_time = STARTING.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(fd) = EPOLL.get() {
        return Some(fd.as_fd());
    }
    // Kept open for the life of the process once the thread runs (closed here otherwise).
    let epoll = Arc::new(sys::epoll_create().ok()?);
    let theirs = epoll.clone();
    std::thread::Builder::new()
        .name("cellblock-reaper".into())
        .spawn(move || reap_loop(theirs.as_fd()))
        .ok()?;
    Some(EPOLL.get_or_init(|| epoll).as_fd())
}

fn lock_adopted() -> std::sync::MutexGuard<'static, BTreeMap<RawFd, (OwnedFd, Option<Cleanup>)>> {
    ADOPTED.lock().unwrap_or_else(|e| e.into_inner())
}

fn reap_loop(epoll: BorrowedFd<'_>) {
    let mut events = [libc::epoll_event { events: 0, u64: 0 }; 64];
    loop {
        let Ok(n) = sys::epoll_wait(epoll, &mut events, -1) else {
            continue; // EINTR
        };
        for ev in &events[..n] {
            let raw = ev.u64 as RawFd;
            let mut adopted = lock_adopted();
            let Some((fd, _)) = adopted.get(&raw) else {
                continue;
            };
            if matches!(sys::waitid_pidfd(fd.as_fd(), false), Ok(None)) {
                continue;
            }
            // Reaped (or gone). Deregister explicitly before closing: close() alone does
            // not remove the registration while another copy of the pidfd's file exists —
            // and children cloned concurrently hold copies of every fd until they exec —
            // so a stale event would name a reused fd number later. man 7 epoll (Q6).
            let _ = sys::epoll_del(epoll, fd.as_fd());
            // Out of the map (and closed) while the fd number still names this child.
            let (fd, cleanup) = adopted.remove(&raw).expect("looked up just above");
            drop(adopted);
            drop(fd);
            if let Some(c) = cleanup {
                c();
            }
            PENDING.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    /// A child of this process, as a pidfd (the std handle is dropped: it neither kills
    /// nor reaps).
    #[allow(clippy::zombie_processes)] // reaping it is what the tests hand to the reaper
    fn child(program: &str, args: &[&str]) -> (libc::pid_t, OwnedFd) {
        let c = std::process::Command::new(program)
            .args(args)
            .spawn()
            .unwrap();
        let pid = c.id() as libc::pid_t;
        (pid, sys::pidfd_open(pid).unwrap())
    }

    /// Whether `pid` is still our unreaped child (`ECHILD` once somebody reaped it).
    fn still_ours(pid: libc::pid_t) -> bool {
        use nix::sys::wait::{waitid, Id, WaitPidFlag};
        waitid(
            Id::Pid(nix::unistd::Pid::from_raw(pid)),
            WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT,
        )
        .is_ok()
    }

    /// A running child goes to the reaper thread (epoll): reaped once it exits, and its
    /// cleanup runs after that.
    #[test]
    fn a_running_child_is_reaped_by_the_thread_then_cleaned_up() {
        let (pid, pidfd) = child("/bin/sleep", &["0.3"]);
        let (tx, rx) = mpsc::channel();
        adopt_then(
            pidfd,
            Some(Box::new(move || {
                let _ = tx.send(still_ours(pid));
            })),
        );
        let reaped_before_cleanup = !rx
            .recv_timeout(Duration::from_secs(10))
            .expect("the cleanup did not run within 10 s");
        assert!(reaped_before_cleanup, "the cleanup ran before the reap");
        assert!(!still_ours(pid), "the child was not reaped");
    }

    /// A child that has exited already is reaped on the spot, cleanup included, before
    /// `adopt_then` returns.
    #[test]
    fn an_exited_child_is_reaped_on_the_spot() {
        let (pid, pidfd) = child("/bin/true", &[]);
        let mut pfd = [libc::pollfd {
            fd: pidfd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }];
        assert_eq!(
            sys::poll(&mut pfd, 10_000).unwrap(),
            1,
            "/bin/true ran 10 s"
        );
        let ran = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = ran.clone();
        adopt_then(
            pidfd,
            Some(Box::new(move || flag.store(true, Ordering::SeqCst))),
        );
        assert!(
            ran.load(Ordering::SeqCst),
            "the cleanup did not run in adopt_then"
        );
        assert!(!still_ours(pid), "the child was not reaped");
    }
}
