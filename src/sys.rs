//! Thin wrappers over the raw system calls the parent side uses.
//!
//! Every `unsafe` block of the parent side lives here, each next to the man page it
//! follows; everything above this module is safe Rust. The child side's syscalls live in
//! `child/`, which has rules of its own (no allocation).

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::process::ExitStatus;
use std::ptr;
use std::sync::Mutex;

use std::os::unix::process::ExitStatusExt;

/// Maps a `-1`-on-error return into `io::Result`.
fn cvt(ret: libc::c_long) -> io::Result<libc::c_long> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// `pipe2(O_CLOEXEC)`, with both ends moved above the stdio range (see [`above_stdio`]).
///
/// Returns `(read end, write end)`.
pub(crate) fn pipe_cloexec() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: `fds` is a valid array of two ints. man 2 pipe2.
    cvt(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } as libc::c_long)?;
    // SAFETY: pipe2 just returned two fresh descriptors that nothing else owns.
    let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    Ok((above_stdio(r)?, above_stdio(w)?))
}

/// Returns `fd` renumbered to 3 or above (close-on-exec) if it is 0, 1 or 2.
///
/// The child `dup2`s its stdio sources onto 0..=2; a source that *is* one of those numbers
/// (the supervisor closed its own stdin, say) would be clobbered by an earlier `dup2`, and
/// `dup2(fd, fd)` would leave close-on-exec set. Keeping every source at 3+ avoids both.
pub(crate) fn above_stdio(fd: OwnedFd) -> io::Result<OwnedFd> {
    move_above(fd, 3)
}

/// Moves `fd` to a number >= `min` (close-on-exec), if it is below.
pub(crate) fn move_above(fd: OwnedFd, min: RawFd) -> io::Result<OwnedFd> {
    if fd.as_raw_fd() >= min {
        return Ok(fd);
    }
    dup_above(fd.as_raw_fd(), min)
}

/// `fcntl(F_DUPFD_CLOEXEC)`: a close-on-exec duplicate of `fd` at `min` or above.
pub(crate) fn dup_above(fd: RawFd, min: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: fcntl(F_DUPFD_CLOEXEC) on a descriptor we hold. man 2 fcntl.
    let new = cvt(unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, min) } as libc::c_long)?;
    // SAFETY: a fresh descriptor nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(new as RawFd) })
}

/// `pidfd_send_signal(pidfd, sig, NULL, 0)`. man 2 pidfd_send_signal.
pub(crate) fn pidfd_send_signal(pidfd: BorrowedFd<'_>, sig: libc::c_int) -> io::Result<()> {
    // SAFETY: plain syscall with a valid fd and a null siginfo.
    cvt(unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            sig,
            ptr::null::<libc::siginfo_t>(),
            0u32,
        )
    })?;
    Ok(())
}

/// Reaps the child behind `pidfd` with `waitid(P_PIDFD, ..)`.
///
/// With `block == false` (`WNOHANG`) returns `Ok(None)` while the child is still running.
/// Only ever touches that one child: never `waitpid(-1)`, which would steal the exit
/// statuses of tokio's or the user's own children. man 2 waitid.
pub(crate) fn waitid_pidfd(pidfd: BorrowedFd<'_>, block: bool) -> io::Result<Option<ExitStatus>> {
    Ok(waitid_pidfd_rusage(pidfd, block)?.map(|(status, _)| status))
}

/// [`waitid_pidfd`] that also returns the resource usage of the reaped child and of the
/// descendants it waited for: the raw syscall takes a fifth `struct rusage *` argument
/// that glibc's `waitid` wrapper does not expose. man 2 waitid, man 2 getrusage.
pub(crate) fn waitid_pidfd_rusage(
    pidfd: BorrowedFd<'_>,
    block: bool,
) -> io::Result<Option<(ExitStatus, libc::rusage)>> {
    loop {
        // SAFETY: siginfo_t is plain old data; zeroed is a valid value (si_pid == 0 is how
        // WNOHANG reports "nothing yet").
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        let flags = libc::WEXITED | if block { 0 } else { libc::WNOHANG };
        // SAFETY: rusage is plain old data.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: valid pointers to `info` and `usage`, valid pidfd.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_waitid,
                libc::P_PIDFD,
                pidfd.as_raw_fd() as libc::id_t,
                &mut info as *mut libc::siginfo_t,
                flags,
                &mut usage as *mut libc::rusage,
            )
        } as libc::c_int;
        if ret == -1 {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(err);
        }
        // SAFETY: waitid filled `info` (or left it zeroed under WNOHANG).
        let (pid, code, status) = unsafe { (info.si_pid(), info.si_code, info.si_status()) };
        if pid == 0 {
            return Ok(None);
        }
        return Ok(Some((exit_status_from_siginfo(code, status), usage)));
    }
}

/// Rebuilds the classic wait status word that `std::process::ExitStatus` wraps.
fn exit_status_from_siginfo(code: libc::c_int, status: libc::c_int) -> ExitStatus {
    let raw = match code {
        libc::CLD_EXITED => (status & 0xff) << 8,
        libc::CLD_KILLED => status & 0x7f,
        libc::CLD_DUMPED => (status & 0x7f) | 0x80,
        // CLD_STOPPED/CLD_CONTINUED cannot come back without WSTOPPED/WCONTINUED.
        _ => (status & 0xff) << 8,
    };
    ExitStatus::from_raw(raw)
}

/// A child stack: an anonymous mapping with a guard page below it.
///
/// With `CLONE_VM|CLONE_VFORK` the child borrows the stack only until it calls execve or
/// `_exit`, and the cloning thread sleeps until then, so one stack serves any number of
/// spawns in sequence. Stacks are pooled so that the hot path never maps memory.
pub(crate) struct Stack {
    base: *mut libc::c_void,
    len: usize,
}

// SAFETY: the mapping is owned by this value alone; moving it between threads is fine.
unsafe impl Send for Stack {}

const STACK_SIZE: usize = 256 * 1024;
const GUARD_SIZE: usize = 4096;

static STACK_POOL: Mutex<Vec<Stack>> = Mutex::new(Vec::new());

impl Stack {
    /// Takes a stack from the pool, or maps a new one.
    pub(crate) fn take() -> io::Result<Stack> {
        if let Some(s) = STACK_POOL.lock().unwrap_or_else(|e| e.into_inner()).pop() {
            return Ok(s);
        }
        let len = STACK_SIZE + GUARD_SIZE;
        // SAFETY: anonymous private mapping; checked for MAP_FAILED. man 2 mmap.
        let base = unsafe {
            libc::mmap(
                ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: the lowest page of our own mapping becomes the guard. man 2 mprotect.
        if unsafe { libc::mprotect(base, GUARD_SIZE, libc::PROT_NONE) } == -1 {
            let err = io::Error::last_os_error();
            // SAFETY: unmapping the mapping we just made.
            unsafe { libc::munmap(base, len) };
            return Err(err);
        }
        Ok(Stack { base, len })
    }

    /// The initial stack pointer for the child (stacks grow down on every Linux target
    /// cellblock supports), 16-byte aligned.
    pub(crate) fn top(&self) -> *mut libc::c_void {
        // SAFETY: one-past-the-end of our own mapping.
        let top = unsafe { (self.base as *mut u8).add(self.len) } as usize;
        (top & !15) as *mut libc::c_void
    }

    /// The stack for a clone the child makes (`child::sys::clone_parent`), lent while the
    /// borrow lasts.
    pub(crate) fn lend(&mut self) -> crate::child::sys::StackTop<'_> {
        // SAFETY: the aligned top of our own mapping, which stays mapped while borrowed; the
        // exclusive borrow keeps it from being lent to anyone else meanwhile.
        unsafe { crate::child::sys::StackTop::new(self.top()) }
    }

    /// Returns the stack to the pool (at most 64 are kept).
    pub(crate) fn give_back(self) {
        let mut pool = STACK_POOL.lock().unwrap_or_else(|e| e.into_inner());
        if pool.len() < 64 {
            pool.push(self);
        }
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        // SAFETY: our own mapping, no longer used by any child (see `give_back`).
        unsafe { libc::munmap(self.base, self.len) };
    }
}

/// Blocks every signal in the calling thread, returning the previous mask.
///
/// Called on the cloning thread right before clone: the child shares our memory until it
/// execs, so no handler of the parent may run in it; it unblocks in its own copy of the
/// mask just before execve.
pub(crate) fn block_all_signals() -> libc::sigset_t {
    // SAFETY: sigset_t is plain data; both pointers are valid. man 3 pthread_sigmask.
    unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
        old
    }
}

/// Restores a mask saved by [`block_all_signals`].
pub(crate) fn restore_signals(old: &libc::sigset_t) {
    // SAFETY: valid pointer to a mask from pthread_sigmask.
    unsafe {
        libc::pthread_sigmask(libc::SIG_SETMASK, old, ptr::null_mut());
    }
}

/// `read` that retries on EINTR.
pub(crate) fn read_retry(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        // SAFETY: valid buffer and fd.
        let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n >= 0 {
            return Ok(n as usize);
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// `clone(mode_flags | CLONE_PIDFD | ns_flags | SIGCHLD)` running `entry(arg)` on `stack`,
/// with `mode_flags` from `plan::join::CloneMode` (`CLONE_VM | CLONE_VFORK` on the fast path).
/// Returns `(pid, pidfd)`: with `CLONE_VFORK` once the child has exec'd or exited, without
/// it at once, with the child still running on `stack`.
///
/// # Safety
/// `entry` must obey the rules of `child/mod.rs` (no allocation, no locks, ends in execve
/// or `_exit`), and `arg` must stay valid until the child is done with it (with
/// `CLONE_VFORK` vfork semantics keep this thread asleep until then). Without
/// `CLONE_VFORK` the caller must also keep `stack` and everything `arg` points to alive
/// and untouched until the child has exec'd or exited.
pub(crate) unsafe fn clone_with(
    entry: extern "C" fn(*mut libc::c_void) -> libc::c_int,
    stack: &Stack,
    mode_flags: libc::c_int,
    ns_flags: libc::c_int,
    arg: *mut libc::c_void,
) -> io::Result<(libc::pid_t, OwnedFd)> {
    let mut pidfd: libc::c_int = -1;
    let flags = mode_flags | libc::CLONE_PIDFD | ns_flags | libc::SIGCHLD;
    // With CLONE_PIDFD the kernel stores the (close-on-exec) pidfd through the
    // `parent_tid` argument.
    // SAFETY: the caller upholds the contract above. man 2 clone.
    let pid = unsafe {
        libc::clone(
            entry,
            stack.top(),
            flags,
            arg,
            &mut pidfd as *mut libc::c_int,
            ptr::null_mut::<libc::c_void>(),
            ptr::null_mut::<libc::c_int>(),
        )
    };
    if pid == -1 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just gave us this pidfd.
    Ok((pid, unsafe { OwnedFd::from_raw_fd(pidfd) }))
}

/// `pidfd_open(pid, 0)`. Only race-free for our own unreaped children. man 2 pidfd_open.
pub(crate) fn pidfd_open(pid: libc::pid_t) -> io::Result<OwnedFd> {
    // SAFETY: plain syscall.
    let fd = cvt(unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0u32) })?;
    // SAFETY: a fresh descriptor (close-on-exec by default) owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// This thread's effective uid (the raw system call: glibc's wrappers speak for the whole
/// process). man 2 getresuid.
pub(crate) fn geteuid_thread() -> libc::uid_t {
    let (mut r, mut e, mut s) = (0, 0, 0);
    // SAFETY: three out-pointers to locals.
    unsafe { libc::syscall(libc::SYS_getresuid, &mut r, &mut e, &mut s) };
    e
}

/// The calling thread's effective uid switched (raw `setresuid(-1, uid, -1)`, which
/// changes this thread only, unlike glibc's `setresuid`) until dropped. Its effective
/// capabilities are gone meanwhile and come back from the permitted set with euid 0.
pub(crate) struct ThreadEuid {
    old: libc::uid_t,
}

impl ThreadEuid {
    pub(crate) fn switch(uid: libc::uid_t) -> ThreadEuid {
        let old = geteuid_thread();
        // SAFETY: plain system call; -1 keeps the real and saved uids. man 2 setresuid.
        unsafe { libc::syscall(libc::SYS_setresuid, -1i32, uid, -1i32) };
        ThreadEuid { old }
    }
}

impl Drop for ThreadEuid {
    fn drop(&mut self) {
        // SAFETY: as in `switch`; back to an euid our real or saved uid holds.
        unsafe { libc::syscall(libc::SYS_setresuid, -1i32, self.old, -1i32) };
    }
}

// ---- namespace files (join)

/// `ioctl(fd, NS_GET_USERNS)`: the user namespace that owns the namespace `fd` refers to,
/// as a new descriptor. man 2 ioctl_ns.
pub(crate) fn ns_get_userns(fd: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    // SAFETY: an ioctl without argument on a valid descriptor.
    let ret = cvt(unsafe { libc::ioctl(fd.as_raw_fd(), libc::NS_GET_USERNS) } as libc::c_long)?;
    // SAFETY: a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(ret as RawFd) })
}

/// `ioctl(fd, NS_GET_NSTYPE)`: the `CLONE_NEW*` kind of a namespace file. man 2 ioctl_ns.
pub(crate) fn ns_get_nstype(fd: BorrowedFd<'_>) -> io::Result<libc::c_int> {
    // SAFETY: an ioctl without argument on a valid descriptor.
    let ret = cvt(unsafe { libc::ioctl(fd.as_raw_fd(), libc::NS_GET_NSTYPE) } as libc::c_long)?;
    Ok(ret as libc::c_int)
}
