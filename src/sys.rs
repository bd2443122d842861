//! Thin wrappers over the raw system calls the parent side uses.
//!
//! Every `unsafe` block of the parent side lives here, each next to the man page it
//! follows; everything above this module is safe Rust. The child side's syscalls live in
//! `child/`, which has rules of its own (no allocation).

use std::ffi::CStr;
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

/// The cloning thread, moved into another network namespace for the clone alone: the
/// child is cloned there (it inherits the thread's network namespace) and the thread goes
/// back to its own on drop.
///
/// This is a namespace change on a thread of the supervisor, which the rest of the code
/// never makes: it is sound here because the thread runs nothing but the clone between
/// the two `setns` calls (synchronous code, signals blocked, no await, no allocation
/// that could reach the runtime), and it is undone before the thread does anything else.
/// If going back fails, the thread would be left in a container's network, so the process
/// aborts rather than go on (going back cannot fail short of a kernel bug: we hold the
/// descriptor and the capability that just let us leave).
pub(crate) struct ThreadNetns {
    home: OwnedFd,
}

impl ThreadNetns {
    /// Moves this thread into the network namespace `target`.
    pub(crate) fn enter(target: BorrowedFd<'_>) -> io::Result<ThreadNetns> {
        let home = std::fs::File::open("/proc/thread-self/ns/net").map(OwnedFd::from)?;
        // SAFETY: plain system call on descriptors we hold. man 2 setns.
        if unsafe { libc::setns(target.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(ThreadNetns { home })
    }
}

impl Drop for ThreadNetns {
    fn drop(&mut self) {
        // SAFETY: plain system call on a descriptor we hold.
        if unsafe { libc::setns(self.home.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            eprintln!(
                "cellblock: cannot return the cloning thread to its network namespace ({}); aborting",
                io::Error::last_os_error()
            );
            std::process::abort();
        }
    }
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

// ---- descriptors

/// Takes ownership of the descriptor a syscall just returned (`-1` is its error).
///
/// # Safety
/// `ret` is `-1` or a fresh descriptor that nothing else owns.
unsafe fn owned(ret: libc::c_long) -> io::Result<OwnedFd> {
    let fd = cvt(ret)?;
    // SAFETY: upheld by the caller.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// `read(2)` once (no retry on EINTR, unlike [`read_retry`]). man 2 read.
pub(crate) fn read(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: a valid fd and a buffer of `buf.len()` writable bytes.
    let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
    cvt(n as libc::c_long).map(|n| n as usize)
}

/// `write(2)` once. man 2 write.
pub(crate) fn write(fd: BorrowedFd<'_>, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: a valid fd and a buffer of `buf.len()` readable bytes.
    let n = unsafe { libc::write(fd.as_raw_fd(), buf.as_ptr().cast(), buf.len()) };
    cvt(n as libc::c_long).map(|n| n as usize)
}

/// `openat(dir, path, flags)`. man 2 openat.
pub(crate) fn openat(dir: BorrowedFd<'_>, path: &CStr, flags: libc::c_int) -> io::Result<OwnedFd> {
    // SAFETY: a valid directory fd and a NUL-terminated path; the result is a fresh fd.
    unsafe { owned(libc::openat(dir.as_raw_fd(), path.as_ptr(), flags) as libc::c_long) }
}

/// Sets `O_NONBLOCK` on `fd` (`fcntl` `F_GETFL` then `F_SETFL`). man 2 fcntl.
pub(crate) fn set_nonblocking(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: fcntl with integer arguments on a valid fd.
    let fl = cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) } as libc::c_long)?;
    let fl = fl as libc::c_int | libc::O_NONBLOCK;
    // SAFETY: as above.
    cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, fl) } as libc::c_long)?;
    Ok(())
}

/// `poll(2)` on `fds`, `timeout_ms` as poll takes it (`-1` forever, `0` not at all).
/// Returns how many entries have events. man 2 poll.
pub(crate) fn poll(fds: &mut [libc::pollfd], timeout_ms: libc::c_int) -> io::Result<usize> {
    // SAFETY: `fds` is a valid array of `fds.len()` pollfd entries.
    let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) };
    cvt(n as libc::c_long).map(|n| n as usize)
}

// ---- tokio's reactor

/// Registers an owned descriptor with the current runtime's reactor (`AsyncFd`, whose
/// constructor is unsafe because it cannot know the descriptor stays open). Must be called
/// within a tokio runtime (tokio panics otherwise).
pub(crate) fn register(
    fd: OwnedFd,
    interest: tokio::io::Interest,
) -> Result<tokio::io::unix::AsyncFd<OwnedFd>, tokio::io::unix::AsyncFdRegisterError<OwnedFd>> {
    // SAFETY: the AsyncFd owns the OwnedFd, so the descriptor stays open, and names the
    // same file, for as long as it is registered.
    unsafe { tokio::io::unix::AsyncFd::register_with_interest(fd, interest) }
}

/// A pidfd registered with the current runtime's reactor: readable once the process has
/// exited (a pidfd polls readable when its process exits). man 2 pidfd_open.
pub(crate) fn register_pidfd(
    pidfd: OwnedFd,
) -> Result<tokio::io::unix::AsyncFd<OwnedFd>, tokio::io::unix::AsyncFdRegisterError<OwnedFd>> {
    register(pidfd, tokio::io::Interest::READABLE)
}

// ---- pseudo-terminals

/// `posix_openpt(flags)`: a new pty master in the host's devpts (`/dev/ptmx`; Linux
/// accepts `O_CLOEXEC` here). man 3 posix_openpt.
pub(crate) fn posix_openpt(flags: libc::c_int) -> io::Result<OwnedFd> {
    // SAFETY: plain call with integer flags; the result is a fresh fd.
    unsafe { owned(libc::posix_openpt(flags) as libc::c_long) }
}

/// `unlockpt(master)`. man 3 unlockpt.
pub(crate) fn unlockpt(master: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: plain call on a valid fd.
    cvt(unsafe { libc::unlockpt(master.as_raw_fd()) } as libc::c_long)?;
    Ok(())
}

/// `ioctl(master, TIOCGPTPEER, flags)`: opens the pty's slave through its master, with no
/// path lookup in `/dev/pts` (which could be another devpts instance than the master's).
/// Linux 4.13+. man 2 ioctl_tty.
pub(crate) fn pty_peer(master: BorrowedFd<'_>, flags: libc::c_int) -> io::Result<OwnedFd> {
    // SAFETY: TIOCGPTPEER takes an integer argument and returns a fresh fd.
    unsafe { owned(libc::ioctl(master.as_raw_fd(), libc::TIOCGPTPEER, flags) as libc::c_long) }
}

/// `openat2(dir, path, flags, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)`: `path` resolved as
/// if `dir` were the root (`..` and absolute symlinks stay below it) and never through a
/// `/proc` magic link: for looking up a path inside another container's root from the
/// host without following the container's symlinks out of it. Linux 5.6+. man 2 openat2.
pub(crate) fn openat2_in_root(
    dir: BorrowedFd<'_>,
    path: &CStr,
    flags: libc::c_int,
) -> io::Result<OwnedFd> {
    // `open_how` is non-exhaustive in libc: zeroed, then filled.
    // SAFETY: open_how is plain integers; all-zero is valid.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = flags as u64;
    how.resolve = libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS;
    // SAFETY: a valid directory fd, a NUL-terminated path and an `open_how` of the size
    // passed; the result is a fresh fd.
    unsafe {
        owned(libc::syscall(
            libc::SYS_openat2,
            dir.as_raw_fd(),
            path.as_ptr(),
            &how as *const libc::open_how,
            std::mem::size_of::<libc::open_how>(),
        ))
    }
}

/// Whether `fd` is on a devpts file system (`fstatfs`, `DEVPTS_SUPER_MAGIC`).
/// man 2 fstatfs.
pub(crate) fn is_devpts(fd: BorrowedFd<'_>) -> io::Result<bool> {
    const DEVPTS_SUPER_MAGIC: libc::c_long = 0x1cd1;
    let mut st = std::mem::MaybeUninit::<libc::statfs>::uninit();
    // SAFETY: a valid fd and a pointer to a statfs the kernel fills.
    cvt(unsafe { libc::fstatfs(fd.as_raw_fd(), st.as_mut_ptr()) } as libc::c_long)?;
    // SAFETY: fstatfs succeeded, so `st` is initialised.
    Ok(unsafe { st.assume_init() }.f_type as libc::c_long == DEVPTS_SUPER_MAGIC)
}

/// `ioctl(fd, TIOCSWINSZ, ws)`: sets a terminal's window size. man 2 ioctl_tty.
pub(crate) fn set_winsize(fd: BorrowedFd<'_>, ws: &libc::winsize) -> io::Result<()> {
    // SAFETY: a valid fd and a pointer to a winsize the kernel only reads.
    cvt(
        unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, ws as *const libc::winsize) }
            as libc::c_long,
    )?;
    Ok(())
}

/// `ioctl(fd, TIOCGWINSZ)`: a terminal's window size. man 2 ioctl_tty.
pub(crate) fn get_winsize(fd: BorrowedFd<'_>) -> io::Result<libc::winsize> {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: a valid fd and a pointer to a winsize the kernel fills.
    cvt(unsafe {
        libc::ioctl(
            fd.as_raw_fd(),
            libc::TIOCGWINSZ,
            &mut ws as *mut libc::winsize,
        )
    } as libc::c_long)?;
    Ok(ws)
}

// ---- epoll (the background reaper)

/// `epoll_create1(EPOLL_CLOEXEC)`. man 2 epoll_create1.
pub(crate) fn epoll_create() -> io::Result<OwnedFd> {
    // SAFETY: plain syscall returning a fresh fd.
    unsafe { owned(libc::epoll_create1(libc::EPOLL_CLOEXEC) as libc::c_long) }
}

/// `epoll_ctl(epoll, EPOLL_CTL_ADD, fd, {events, data})`. man 2 epoll_ctl.
pub(crate) fn epoll_add(
    epoll: BorrowedFd<'_>,
    fd: BorrowedFd<'_>,
    events: u32,
    data: u64,
) -> io::Result<()> {
    let mut ev = libc::epoll_event { events, u64: data };
    // SAFETY: valid fds and a pointer to an event the kernel copies.
    cvt(unsafe {
        libc::epoll_ctl(
            epoll.as_raw_fd(),
            libc::EPOLL_CTL_ADD,
            fd.as_raw_fd(),
            &mut ev,
        )
    } as libc::c_long)?;
    Ok(())
}

/// `epoll_ctl(epoll, EPOLL_CTL_DEL, fd)`. man 2 epoll_ctl.
pub(crate) fn epoll_del(epoll: BorrowedFd<'_>, fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: valid fds; EPOLL_CTL_DEL ignores the event pointer (null since Linux 2.6.9).
    cvt(unsafe {
        libc::epoll_ctl(
            epoll.as_raw_fd(),
            libc::EPOLL_CTL_DEL,
            fd.as_raw_fd(),
            ptr::null_mut(),
        )
    } as libc::c_long)?;
    Ok(())
}

/// `epoll_wait(epoll, events, timeout_ms)`: how many entries of `events` were filled.
/// man 2 epoll_wait.
pub(crate) fn epoll_wait(
    epoll: BorrowedFd<'_>,
    events: &mut [libc::epoll_event],
    timeout_ms: libc::c_int,
) -> io::Result<usize> {
    let max = events.len().min(libc::c_int::MAX as usize) as libc::c_int;
    // SAFETY: a valid epoll fd and room for `max` events.
    let n = unsafe { libc::epoll_wait(epoll.as_raw_fd(), events.as_mut_ptr(), max, timeout_ms) };
    cvt(n as libc::c_long).map(|n| n as usize)
}

// ---- the init's memfd

/// `memfd_create(name, flags)`. man 2 memfd_create.
pub(crate) fn memfd_create(name: &CStr, flags: libc::c_uint) -> io::Result<OwnedFd> {
    // SAFETY: a NUL-terminated name and integer flags; the result is a fresh fd.
    unsafe { owned(libc::memfd_create(name.as_ptr(), flags) as libc::c_long) }
}

/// `fcntl(fd, F_ADD_SEALS, seals)`. man 2 fcntl ("File Sealing").
pub(crate) fn add_seals(fd: BorrowedFd<'_>, seals: libc::c_int) -> io::Result<()> {
    // SAFETY: fcntl with an integer argument on a valid fd.
    cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_ADD_SEALS, seals) } as libc::c_long)?;
    Ok(())
}

/// `fchmod(fd, mode)`. man 2 fchmod.
pub(crate) fn fchmod(fd: BorrowedFd<'_>, mode: libc::mode_t) -> io::Result<()> {
    // SAFETY: plain syscall on a valid fd.
    cvt(unsafe { libc::fchmod(fd.as_raw_fd(), mode) } as libc::c_long)?;
    Ok(())
}

// ---- processes

/// `kill(pid, sig)`. Only for pids that cannot have been reused (the callers say why);
/// everything else goes through a pidfd. man 2 kill.
pub(crate) fn kill(pid: libc::pid_t, sig: libc::c_int) -> io::Result<()> {
    // SAFETY: plain syscall with integer arguments.
    cvt(unsafe { libc::kill(pid, sig) } as libc::c_long)?;
    Ok(())
}

/// `atexit(f)`: `f` runs in `exit()`, on whichever thread calls it, while other threads
/// may still run; it must not block or unwind (an unwinding `extern "C"` function aborts).
/// man 3 atexit.
pub(crate) fn atexit(f: extern "C" fn()) -> io::Result<()> {
    // SAFETY: registers a function pointer with C linkage; nothing else is passed.
    if unsafe { libc::atexit(f) } != 0 {
        return Err(io::Error::other("atexit: no room for another handler"));
    }
    Ok(())
}

// ---- locks

/// Takes a non-blocking open-file-description write lock on byte `offset` of `fd`
/// (`fcntl(F_OFD_SETLK)`, `F_WRLCK`, one byte). `EAGAIN`/`EACCES` mean another open file
/// description holds it. man 2 fcntl ("Open file description locks").
pub(crate) fn ofd_lock_byte(fd: BorrowedFd<'_>, offset: libc::off_t) -> io::Result<()> {
    // SAFETY: flock is plain data; all-zero is a valid value.
    let mut lock: libc::flock = unsafe { std::mem::zeroed() };
    lock.l_type = libc::F_WRLCK as libc::c_short;
    lock.l_whence = libc::SEEK_SET as libc::c_short;
    lock.l_start = offset;
    lock.l_len = 1;
    // SAFETY: a valid fd and a pointer to `lock`, which the kernel only reads.
    cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_OFD_SETLK, &lock) } as libc::c_long)?;
    Ok(())
}

// ---- fs: the new mount API (Linux 5.2; mount_setattr 5.12)

const OPEN_TREE_CLONE: libc::c_uint = 1;
const OPEN_TREE_CLOEXEC: libc::c_uint = libc::O_CLOEXEC as libc::c_uint;

/// A new instance of file system `fstype` with string `options`, as a detached mount with
/// mount attributes `attrs`. man 2 fsopen, fsconfig, fsmount.
pub(crate) fn fs_mount(
    fstype: &std::ffi::CStr,
    options: &[(&std::ffi::CStr, &std::ffi::CStr)],
    attrs: libc::c_uint,
) -> io::Result<OwnedFd> {
    const FSOPEN_CLOEXEC: libc::c_uint = 1;
    const FSCONFIG_SET_STRING: libc::c_uint = 1;
    const FSCONFIG_CMD_CREATE: libc::c_uint = 6;
    const FSMOUNT_CLOEXEC: libc::c_uint = 1;
    // SAFETY: a C string; the result is a new descriptor we then own.
    let fs = cvt(unsafe { libc::syscall(libc::SYS_fsopen, fstype.as_ptr(), FSOPEN_CLOEXEC) })?;
    // SAFETY: just returned by the kernel, owned by nobody else.
    let fs = unsafe { OwnedFd::from_raw_fd(fs as RawFd) };
    for (key, value) in options {
        // SAFETY: our descriptor and two C strings.
        cvt(unsafe {
            libc::syscall(
                libc::SYS_fsconfig,
                fs.as_raw_fd(),
                FSCONFIG_SET_STRING,
                key.as_ptr(),
                value.as_ptr(),
                0,
            )
        })?;
    }
    let null = ptr::null::<libc::c_char>();
    // SAFETY: our descriptor; null key and value, as FSCONFIG_CMD_CREATE takes.
    cvt(unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fs.as_raw_fd(),
            FSCONFIG_CMD_CREATE,
            null,
            null,
            0,
        )
    })?;
    // SAFETY: our descriptor; the result is a new descriptor we then own.
    let m =
        cvt(unsafe { libc::syscall(libc::SYS_fsmount, fs.as_raw_fd(), FSMOUNT_CLOEXEC, attrs) })?;
    // SAFETY: just returned by the kernel, owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(m as RawFd) })
}

/// `open_tree(dirfd, path, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | flags)`: a detached copy
/// of the mount at `path` (relative to `dir`, or the current directory when `None`; with
/// `AT_EMPTY_PATH` in `flags` and an empty path, `dir` itself). man 2 open_tree.
pub(crate) fn open_tree_clone(
    dir: Option<BorrowedFd<'_>>,
    path: &std::ffi::CStr,
    flags: libc::c_uint,
) -> io::Result<OwnedFd> {
    let dirfd = dir.map_or(libc::AT_FDCWD, |d| d.as_raw_fd());
    // SAFETY: a descriptor we hold (or AT_FDCWD) and a C string; the result is a new
    // descriptor we then own.
    let fd = cvt(unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            dirfd,
            path.as_ptr(),
            flags | OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC,
        )
    })?;
    // SAFETY: just returned by the kernel, owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Attaches detached mount `src` at `name` under directory `dir` (a mount descriptor).
/// man 2 move_mount.
pub(crate) fn move_mount_at(
    src: BorrowedFd<'_>,
    dir: BorrowedFd<'_>,
    name: &std::ffi::CStr,
) -> io::Result<()> {
    const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;
    // SAFETY: descriptors we hold and C strings.
    cvt(unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            src.as_raw_fd(),
            c"".as_ptr(),
            dir.as_raw_fd(),
            name.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH,
        )
    })?;
    Ok(())
}

/// Makes the mount `fd` refers to read-only (`mount_setattr(fd, "", AT_EMPTY_PATH,
/// MOUNT_ATTR_RDONLY)`). man 2 mount_setattr.
pub(crate) fn mount_set_readonly(fd: BorrowedFd<'_>) -> io::Result<()> {
    let attr = libc::mount_attr {
        attr_set: libc::MOUNT_ATTR_RDONLY,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    // SAFETY: a descriptor we hold, and a struct of the size passed.
    cvt(unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH,
            &attr as *const libc::mount_attr,
            std::mem::size_of::<libc::mount_attr>(),
        )
    })?;
    Ok(())
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
