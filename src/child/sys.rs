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

use libc::{c_char, c_int};

use crate::error::Stage;
use crate::protocol;

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
    // Built on our stack: fixed-size copies, nothing to allocate or panic.
    let record = protocol::encode(stage as u32, err);
    // SAFETY: a valid buffer of that many bytes on our stack. man 2 write.
    unsafe { libc::write(fd, record.as_ptr().cast(), record.len()) };
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

/// `close(fd)`; errors ignored (nothing to do about them here). man 2 close.
pub(crate) fn close(fd: c_int) {
    // SAFETY: closing a descriptor number has no memory effects.
    unsafe { libc::close(fd) };
}

/// `dup2(from, to)`. man 2 dup2.
pub(crate) fn dup2(from: c_int, to: c_int) -> c_int {
    // SAFETY: plain syscall on descriptor numbers.
    unsafe { libc::dup2(from, to) }
}

/// `chdir(dir)`. man 2 chdir.
pub(crate) fn chdir(dir: &CStr) -> c_int {
    // SAFETY: a valid C string.
    unsafe { libc::chdir(dir.as_ptr()) }
}

// ---- signals

/// Sets `sig`'s disposition to SIG_DFL with an empty mask, through the raw syscall
/// (glibc's wrapper refuses its reserved signals 32 and 33, which a supervisor may have
/// ignored and the workload must not inherit ignored). man 2 rt_sigaction.
pub(crate) fn default_signal_action(sig: c_int) {
    // The kernel's struct sigaction, zeroed: SIG_DFL, no flags, an empty mask (32 bytes
    // cover every architecture's layout).
    let dfl = [0u64; 4];
    // SAFETY: a valid kernel sigaction on our stack and the kernel's sigset size 8; SIG_DFL
    // needs no handler.
    unsafe {
        libc::syscall(
            libc::SYS_rt_sigaction,
            sig,
            dfl.as_ptr(),
            std::ptr::null_mut::<u64>(),
            8usize,
        )
    };
}

/// Unblocks every signal (raw syscall, the kernel's sigset size). man 2 rt_sigprocmask.
pub(crate) fn unblock_all_signals() -> c_int {
    let empty = 0u64;
    // SAFETY: a valid 8-byte kernel sigset on our stack; no old set asked for.
    unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_SETMASK,
            &empty as *const u64,
            std::ptr::null_mut::<u64>(),
            8usize,
        ) as c_int
    }
}

// ---- uts and network

/// `sethostname(name)`. man 2 sethostname.
pub(crate) fn sethostname(name: &CStr) -> c_int {
    // SAFETY: a valid buffer of that length.
    unsafe { libc::sethostname(name.as_ptr(), name.to_bytes().len()) }
}

/// `setdomainname(name)`. man 2 setdomainname.
pub(crate) fn setdomainname(name: &CStr) -> c_int {
    // SAFETY: a valid buffer of that length.
    unsafe { libc::setdomainname(name.as_ptr(), name.to_bytes().len()) }
}

/// `socket(domain, type, protocol)`. man 2 socket.
pub(crate) fn socket(domain: c_int, ty: c_int, protocol: c_int) -> c_int {
    // SAFETY: plain syscall.
    unsafe { libc::socket(domain, ty, protocol) }
}

/// Sets IFF_UP on the interface `name` (NUL-terminated, at most IFNAMSIZ bytes) with
/// SIOCGIFFLAGS/SIOCSIFFLAGS on the socket `sock`. man 7 netdevice.
pub(crate) fn set_interface_up<const N: usize>(sock: c_int, name: [u8; N]) -> c_int {
    const { assert!(N <= libc::IFNAMSIZ) };
    // SAFETY: ifreq is plain data, zeroed and filled on our stack.
    unsafe {
        let mut req: libc::ifreq = std::mem::zeroed();
        for (dst, src) in req.ifr_name.iter_mut().zip(name) {
            *dst = src as c_char;
        }
        let ret = libc::ioctl(sock, libc::SIOCGIFFLAGS, &mut req);
        if ret == -1 {
            return ret;
        }
        req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
        libc::ioctl(sock, libc::SIOCSIFFLAGS, &req)
    }
}
