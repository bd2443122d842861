//! THE CHILD (continued): every system call the child makes, as small wrappers.
//!
//! Same rules as `mod.rs`: no allocation, no locks, no panics. The concern files beside
//! this one call these wrappers and hold no `unsafe` of their own. A wrapper that takes
//! only references (`&CStr`, slices) is a safe fn: the types guarantee what the kernel
//! reads is valid. One that takes a raw pointer or a descriptor number whose meaning the
//! caller vouches for is an `unsafe fn` that says what the caller must guarantee.
//!
//! Wrappers are grouped by concern under `// ----` banners; each names its man page.

use std::ffi::CStr;
use std::marker::PhantomData;
use std::ptr;

use libc::{c_char, c_int, c_void, gid_t, uid_t};

use crate::error::Stage;

/// A setup step: `Err((stage, errno))` fails the spawn with that stage.
pub(crate) type Step = Result<(), (Stage, c_int)>;

// ---- errors and the error pipe

/// This thread's errno.
pub(crate) fn errno() -> c_int {
    // SAFETY: reads this thread's errno slot (shared with the sleeping parent thread,
    // which does not look at it across the clone).
    unsafe { *libc::__errno_location() }
}

/// Fails `stage` with the current errno if `ret` is -1.
pub(crate) fn check(ret: c_int, stage: Stage) -> Step {
    if ret == -1 {
        Err((stage, errno()))
    } else {
        Ok(())
    }
}

/// Writes `(stage, errno)` to the error pipe as 8 native-endian bytes (one atomic write).
/// A failed write leaves the parent to see a plain exit.
pub(crate) fn report(fd: c_int, stage: Stage, err: c_int) {
    // Two native-endian u32s side by side: the same bytes as `stage.to_ne_bytes()` then
    // `err.to_ne_bytes()`, without any slicing.
    let record: [u32; 2] = [stage as u32, err as u32];
    // SAFETY: a valid 8-byte buffer on our stack. man 2 write.
    unsafe { libc::write(fd, record.as_ptr().cast(), std::mem::size_of_val(&record)) };
}

/// `_exit(code)`: no atexit handlers, no destructors. man 2 _exit.
pub(crate) fn exit(code: c_int) -> ! {
    // SAFETY: async-signal-safe; touches no user-space state.
    unsafe { libc::_exit(code) }
}

// ---- files

/// Writes `data` to the file at `path` in one `write`; a short write fails `stage` with
/// EIO. man 2 open, write.
pub(crate) fn write_file(path: &CStr, data: &[u8], stage: Stage) -> Step {
    // SAFETY: a valid C string and a valid buffer of `data.len()` bytes.
    unsafe {
        let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
        check(fd, stage)?;
        let n = libc::write(fd, data.as_ptr().cast(), data.len());
        let err = errno();
        libc::close(fd);
        if n != data.len() as isize {
            return Err((stage, if n < 0 { err } else { libc::EIO }));
        }
    }
    Ok(())
}

// ---- exec

/// A null-terminated array of C strings (`argv`, `envp`), borrowed for `'a`.
///
/// Only [`CStrList::new`] makes one, and it is `unsafe`: the type then carries the
/// guarantee that `execve` may read every entry.
#[derive(Clone, Copy)]
pub(crate) struct CStrList<'a>(&'a [*const c_char]);

impl<'a> CStrList<'a> {
    /// # Safety
    /// `ptrs` ends with a null pointer, and every other entry points to a NUL-terminated
    /// string that stays valid and unchanged for `'a`.
    pub(crate) unsafe fn new(ptrs: &'a [*const c_char]) -> CStrList<'a> {
        CStrList(ptrs)
    }

    pub(crate) fn as_ptr(self) -> *const *const c_char {
        self.0.as_ptr()
    }
}

/// `execve(path, argv, envp)`; returns only on failure, with errno set. man 2 execve.
pub(crate) fn execve(path: &CStr, argv: CStrList<'_>, envp: CStrList<'_>) -> c_int {
    // SAFETY: a valid C string and two null-terminated arrays of valid C strings (the
    // CStrList invariant).
    unsafe { libc::execve(path.as_ptr(), argv.as_ptr(), envp.as_ptr()) }
}

// ---- descriptors the plan opened for the child
//
// These take descriptor numbers and are safe fns, like `report`: the child's descriptor
// table is its own copy (no CLONE_FILES), so a wrong number fails with EBADF or touches
// only the child's own copy, never a descriptor the supervisor's code owns.

/// `write(fd, data)`: the number of bytes written, or -1 with errno set. man 2 write.
pub(crate) fn write(fd: c_int, data: &[u8]) -> isize {
    // SAFETY: a valid buffer of `data.len()` bytes.
    unsafe { libc::write(fd, data.as_ptr().cast(), data.len()) }
}

/// Reads one byte from `fd`, retrying on EINTR: `Ok(true)` for a byte, `Ok(false)` at
/// EOF, `Err(errno)` otherwise. man 2 read.
pub(crate) fn read_byte(fd: c_int) -> Result<bool, c_int> {
    let mut byte = 0u8;
    loop {
        // SAFETY: one byte into our stack.
        match unsafe { libc::read(fd, (&mut byte as *mut u8).cast(), 1) } {
            1 => return Ok(true),
            0 => return Ok(false),
            _ if errno() == libc::EINTR => continue,
            _ => return Err(errno()),
        }
    }
}

/// `close(fd)` of the child's copy of a descriptor. man 2 close.
pub(crate) fn close(fd: c_int) {
    // SAFETY: plain syscall; the child's descriptor table is its own copy.
    unsafe { libc::close(fd) };
}

// ---- namespaces entered or created after the clone (join, time, limits)

/// `setns(fd, nstype)`: enters the namespace(s) of a namespace file or pidfd. man 2 setns.
pub(crate) fn setns(fd: c_int, nstype: c_int, stage: Stage) -> Step {
    // SAFETY: plain syscall on integers.
    check(unsafe { libc::setns(fd, nstype) }, stage)
}

/// `unshare(flags)`. man 2 unshare.
pub(crate) fn unshare(flags: c_int, stage: Stage) -> Step {
    // SAFETY: plain syscall on integers.
    check(unsafe { libc::unshare(flags) }, stage)
}

/// The top of a stack that a further clone of the child may run on, borrowed for `'a`.
///
/// Only [`StackTop::new`] makes one, and it is `unsafe`: the type then carries the
/// guarantee that the memory below it is a stack nobody else uses.
#[derive(Clone, Copy)]
pub(crate) struct StackTop<'a>(*mut c_void, PhantomData<&'a mut [u8]>);

impl<'a> StackTop<'a> {
    /// # Safety
    /// `top` is the 16-byte aligned top of a writable mapping that stays mapped, and that
    /// no other thread or process runs on, for `'a`.
    pub(crate) unsafe fn new(top: *mut c_void) -> StackTop<'a> {
        StackTop(top, PhantomData)
    }
}

/// `clone(CLONE_VM | CLONE_VFORK | CLONE_PARENT | SIGCHLD)` running `entry(arg)` on
/// `stack`: a sibling of ours (a child of the supervisor) that shares our memory, while
/// we sleep until it has exec'd or exited. Returns its pid (as the supervisor sees it) or
/// -1 with errno set. man 2 clone.
///
/// # Safety
/// `entry` obeys the rules of `mod.rs` (no allocation, no locks, ends in execve or
/// `_exit`), and `arg` is what `entry` expects and stays valid until the new process has
/// exec'd or exited.
pub(crate) unsafe fn clone_parent(
    entry: extern "C" fn(*mut c_void) -> c_int,
    stack: StackTop<'_>,
    arg: *mut c_void,
) -> c_int {
    let flags = libc::CLONE_VM | libc::CLONE_VFORK | libc::CLONE_PARENT | libc::SIGCHLD;
    // SAFETY: the caller vouches for `entry` and `arg`; the StackTop invariant for the
    // stack; the three optional out-pointers are null (no flag asks for them).
    unsafe {
        libc::clone(
            entry,
            stack.0,
            flags,
            arg,
            ptr::null_mut::<c_int>(),
            ptr::null_mut::<c_void>(),
            ptr::null_mut::<c_int>(),
        )
    }
}

// ---- user

/// Raw `setresuid(uid, uid, uid)`: glibc's wrapper would signal every thread of the
/// process (the "setxid" broadcast), threads that are the supervisor's and hang it.
/// man 2 setresuid.
pub(crate) fn setresuid(uid: uid_t) -> c_int {
    // SAFETY: plain syscall on integers.
    unsafe { libc::syscall(libc::SYS_setresuid, uid, uid, uid) as c_int }
}

/// Raw `setresgid(gid, gid, gid)` (see [`setresuid`]). man 2 setresgid.
pub(crate) fn setresgid(gid: gid_t) -> c_int {
    // SAFETY: plain syscall on integers.
    unsafe { libc::syscall(libc::SYS_setresgid, gid, gid, gid) as c_int }
}

/// Raw `setgroups(groups)` (see [`setresuid`]). man 2 setgroups.
pub(crate) fn setgroups(groups: &[gid_t]) -> c_int {
    // SAFETY: a valid array of `groups.len()` gids.
    unsafe { libc::syscall(libc::SYS_setgroups, groups.len(), groups.as_ptr()) as c_int }
}

/// `prctl(PR_SET_DUMPABLE, 1)`. man 2 prctl.
pub(crate) fn set_dumpable() -> c_int {
    // SAFETY: plain syscall on integers.
    unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 1, 0, 0, 0) }
}

// ---- limits

/// Raw `prlimit64(0, resource, {soft, hard}, NULL)` on ourselves. man 2 prlimit.
pub(crate) fn set_rlimit(resource: c_int, soft: u64, hard: u64) -> c_int {
    let new = libc::rlimit64 {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: a valid pointer to `new`, a null old-limit pointer.
    unsafe {
        libc::syscall(
            libc::SYS_prlimit64,
            0 as libc::pid_t,
            resource,
            &new as *const libc::rlimit64,
            ptr::null_mut::<libc::rlimit64>(),
        ) as c_int
    }
}
