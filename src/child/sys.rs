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
use std::ptr;

use libc::{c_char, c_int, c_ulong};

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

// ---- fs

/// `mount(src, target, fstype, flags, data)`; unused arguments null. man 2 mount.
pub(crate) fn mount(
    src: Option<&CStr>,
    target: &CStr,
    fstype: Option<&CStr>,
    flags: libc::c_ulong,
    data: Option<&CStr>,
) -> c_int {
    let ptr = |s: Option<&CStr>| s.map_or(ptr::null(), CStr::as_ptr);
    // SAFETY: C strings or nulls, which mount(2) accepts for these arguments.
    unsafe {
        libc::mount(
            ptr(src),
            target.as_ptr(),
            ptr(fstype),
            flags,
            ptr(data).cast(),
        )
    }
}

/// A recursive bind mount of `src` onto `dst`. Returns `mount`'s result. man 2 mount.
pub(crate) fn rbind(src: &CStr, dst: &CStr) -> c_int {
    mount(Some(src), dst, None, libc::MS_BIND | libc::MS_REC, None)
}

// ---- security
//
// Descriptor numbers here are the child's own: it has a table of its own (no
// CLONE_FILES), so a wrong number fails or touches nothing of the supervisor's.

/// Whether `path` is a directory (`stat`), or the errno. man 2 stat.
pub(crate) fn is_dir(path: &CStr) -> Result<bool, c_int> {
    // SAFETY: struct stat is plain data; all zeroes is a valid value.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: a valid C string and a stat buffer on our stack.
    if unsafe { libc::stat(path.as_ptr(), &mut st) } == -1 {
        return Err(errno());
    }
    Ok(st.st_mode & libc::S_IFMT == libc::S_IFDIR)
}

/// The mount flags of the filesystem at `path` (`statvfs`'s `f_flag`), or the errno.
/// man 3 statvfs.
pub(crate) fn statvfs_flags(path: &CStr) -> Result<c_ulong, c_int> {
    // SAFETY: struct statvfs is plain data; all zeroes is a valid value.
    let mut vfs: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: a valid C string and a statvfs buffer on our stack.
    if unsafe { libc::statvfs(path.as_ptr(), &mut vfs) } == -1 {
        return Err(errno());
    }
    Ok(vfs.f_flag)
}

/// `prctl(option, arg2, arg3, 0, 0)`, for options whose arguments are plain integers
/// (not for those that take a pointer). man 2 prctl.
pub(crate) fn prctl(option: c_int, arg2: c_ulong, arg3: c_ulong) -> c_int {
    // SAFETY: integer arguments only.
    unsafe { libc::prctl(option, arg2, arg3, 0 as c_ulong, 0 as c_ulong) }
}

/// One of the two `__user_cap_data_struct`s of `_LINUX_CAPABILITY_VERSION_3` (capabilities
/// 0–31, then 32–63).
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub(crate) struct CapData {
    pub(crate) effective: u32,
    pub(crate) permitted: u32,
    pub(crate) inheritable: u32,
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: c_int,
}

/// This process, with the layout of two data structs.
const CAP_HEADER: CapHeader = CapHeader {
    version: 0x2008_0522, // _LINUX_CAPABILITY_VERSION_3
    pid: 0,
};

/// Reads this process's capability sets. man 2 capget.
pub(crate) fn capget(data: &mut [CapData; 2]) -> c_int {
    // SAFETY: the header and two writable data structs, version 3's layout.
    unsafe { libc::syscall(libc::SYS_capget, &CAP_HEADER, data.as_mut_ptr()) as c_int }
}

/// Sets this process's capability sets. man 2 capset.
pub(crate) fn capset(data: &[CapData; 2]) -> c_int {
    // SAFETY: the header and two data structs, version 3's layout.
    unsafe { libc::syscall(libc::SYS_capset, &CAP_HEADER, data.as_ptr()) as c_int }
}

/// man 2 setsid.
pub(crate) fn setsid() -> c_int {
    // SAFETY: no arguments.
    unsafe { libc::setsid() }
}

/// `setpgid(0, pgid)`: this process into group `pgid` (0: a new one). man 2 setpgid.
pub(crate) fn setpgid(pgid: libc::pid_t) -> c_int {
    // SAFETY: integer arguments only.
    unsafe { libc::setpgid(0, pgid) }
}

/// man 2 umask (cannot fail).
pub(crate) fn umask(mask: libc::mode_t) {
    // SAFETY: integer argument only.
    unsafe { libc::umask(mask) };
}

/// man 2 dup2 (clears close-on-exec on `dst`).
pub(crate) fn dup2(src: c_int, dst: c_int) -> c_int {
    // SAFETY: integer arguments only.
    unsafe { libc::dup2(src, dst) }
}

/// Marks descriptors `lo..=hi` close-on-exec (`close_range` with `CLOSE_RANGE_CLOEXEC`,
/// Linux 5.11). man 2 close_range.
pub(crate) fn close_range_cloexec(lo: u32, hi: u32) -> c_int {
    // SAFETY: integer arguments only.
    unsafe { libc::syscall(libc::SYS_close_range, lo, hi, libc::CLOSE_RANGE_CLOEXEC) as c_int }
}

/// Marks `fd` close-on-exec (`fcntl(F_SETFD, FD_CLOEXEC)`). man 2 fcntl.
pub(crate) fn set_cloexec(fd: c_int) -> c_int {
    // SAFETY: integer arguments only.
    unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) }
}

/// The soft `RLIMIT_NOFILE` (65536 when unlimited or unreadable). man 2 getrlimit.
pub(crate) fn nofile_limit() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: an rlimit buffer on our stack.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0
        && lim.rlim_cur != libc::RLIM_INFINITY
    {
        lim.rlim_cur
    } else {
        65536
    }
}

/// Installs the BPF program `prog` as one more seccomp filter. The `sock_fprog` is built
/// here, on our stack; the kernel copies the program. A program longer than `u16::MAX`
/// instructions (the plan allows 4096) fails with `EINVAL`.
///
/// With `prctl(PR_SET_SECCOMP)` rather than `seccomp()`: each filter is installed under
/// the earlier ones, and `prctl` is the call bubblewrap documents (and allow lists allow)
/// for stacking. The same operation as `seccomp(SECCOMP_SET_MODE_FILTER, 0, prog)`.
/// man 2 prctl (PR_SET_SECCOMP), man 2 seccomp.
pub(crate) fn install_seccomp(prog: &[libc::sock_filter]) -> c_int {
    let Ok(len) = u16::try_from(prog.len()) else {
        // SAFETY: this thread's errno slot.
        unsafe { *libc::__errno_location() = libc::EINVAL };
        return -1;
    };
    let fprog = libc::sock_fprog {
        len,
        // The kernel only reads through it.
        filter: prog.as_ptr().cast_mut(),
    };
    // SAFETY: a valid sock_fprog pointing at `len` instructions, alive for the call.
    unsafe {
        libc::prctl(
            libc::PR_SET_SECCOMP,
            libc::SECCOMP_MODE_FILTER as c_ulong,
            &fprog as *const libc::sock_fprog,
            0 as c_ulong,
            0 as c_ulong,
        )
    }
}

// ---- session

/// Makes the terminal `fd` our controlling terminal (`TIOCSCTTY`). man 4 tty_ioctl.
pub(crate) fn set_controlling_tty(fd: c_int) -> c_int {
    // SAFETY: TIOCSCTTY takes an integer argument (0: do not steal).
    unsafe { libc::ioctl(fd, libc::TIOCSCTTY, 0) }
}

/// Clears close-on-exec on `fd` (`fcntl(F_SETFD, 0)`). man 2 fcntl.
pub(crate) fn clear_cloexec(fd: c_int) -> c_int {
    // SAFETY: integer arguments only.
    unsafe { libc::fcntl(fd, libc::F_SETFD, 0) }
}

/// Whether the process of pidfd `fd` has exited (a pidfd is readable then, and only then):
/// a `poll` with zero timeout. man 2 poll, man 2 pidfd_open.
pub(crate) fn pidfd_exited(fd: c_int) -> bool {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd on our stack.
    let n = unsafe { libc::poll(&mut pfd, 1, 0) };
    n == 1 && pfd.revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0
}

/// `execveat(fd, "", argv, envp, AT_EMPTY_PATH)`: executes the file open on `fd` (the
/// init's memfd); returns only on failure, with errno set. man 2 execveat.
pub(crate) fn execveat_fd(fd: c_int, argv: CStrList<'_>, envp: CStrList<'_>) -> c_int {
    // SAFETY: an empty C string and two null-terminated arrays of valid C strings (the
    // CStrList invariant).
    unsafe {
        libc::syscall(
            libc::SYS_execveat,
            fd,
            c"".as_ptr(),
            argv.as_ptr(),
            envp.as_ptr(),
            libc::AT_EMPTY_PATH,
        ) as c_int
    }
}
