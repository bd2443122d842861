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

use libc::{c_char, c_int, c_ulong, c_void, gid_t, uid_t};

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
    // Built on our stack: nothing to allocate, no panic path.
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

/// `mount_setattr(path, MOUNT_ATTR_RDONLY)` (Linux 5.12). Unlike a remount with
/// `MS_RDONLY` it changes only the read-only bit, so the flags the kernel locks on mounts
/// inherited into a user namespace (nosuid, nodev, ...) never need to be repeated, and
/// `AT_RECURSIVE` covers every submount of a recursive bind. man 2 mount_setattr.
pub(crate) fn set_readonly(path: &CStr, recursive: bool) -> Result<(), c_int> {
    set_attrs(path, recursive, libc::MOUNT_ATTR_RDONLY)
}

/// `mount_setattr(path, attr_set = attrs)`: sets `MOUNT_ATTR_*` bits (nosuid, nodev,
/// noexec, ...) and changes no other, as [`set_readonly`] does for read-only.
pub(crate) fn set_attrs(path: &CStr, recursive: bool, attrs: u64) -> Result<(), c_int> {
    let attr = libc::mount_attr {
        attr_set: attrs,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    let flags = if recursive { libc::AT_RECURSIVE } else { 0 } as libc::c_uint;
    // SAFETY: a C string and a mount_attr on our stack, of the size passed.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            libc::AT_FDCWD,
            path.as_ptr(),
            flags,
            &attr as *const libc::mount_attr,
            std::mem::size_of::<libc::mount_attr>(),
        )
    };
    errno_of(ret as c_int)
}

/// `mkdir(path, mode)`. man 2 mkdir.
pub(crate) fn mkdir(path: &CStr, mode: libc::mode_t) -> c_int {
    // SAFETY: a C string.
    unsafe { libc::mkdir(path.as_ptr(), mode) }
}

/// `fchmodat2(AT_FDCWD, path, mode, AT_SYMLINK_NOFOLLOW)` (Linux 6.6): the plan resolved
/// every link it made itself, so a link met here is refused (`EOPNOTSUPP`) rather than
/// followed out of the container's own file systems. man 2 fchmodat.
pub(crate) fn chmod_nofollow(path: &CStr, mode: libc::mode_t) -> Result<(), c_int> {
    // SAFETY: a C string.
    let ret = unsafe {
        libc::syscall(
            SYS_FCHMODAT2,
            libc::AT_FDCWD,
            path.as_ptr(),
            mode as libc::c_uint,
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    errno_of(ret as c_int)
}

/// `fchmodat2`'s number (the same on every architecture, Linux 6.6).
const SYS_FCHMODAT2: libc::c_long = 452;

/// Creates an empty file at `path` if there is none (`O_NOFOLLOW`). man 2 open.
pub(crate) fn touch(path: &CStr) -> c_int {
    let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_CLOEXEC | libc::O_NOFOLLOW;
    // SAFETY: a C string; the descriptor is ours and closed at once.
    unsafe {
        let fd = libc::open(path.as_ptr(), flags, 0o644);
        if fd >= 0 {
            libc::close(fd);
        }
        fd
    }
}

/// Creates file `path` (`O_EXCL`, `O_NOFOLLOW`) holding `contents`, with mode `mode`.
pub(crate) fn create_file(path: &CStr, contents: &[u8], mode: libc::mode_t) -> Result<(), c_int> {
    create_file_at(libc::AT_FDCWD, path, contents, mode)
}

/// [`create_file`] relative to directory `dir`, a descriptor of the caller's (or
/// `AT_FDCWD`). man 2 openat, write, fchmod.
fn create_file_at(
    dir: c_int,
    path: &CStr,
    contents: &[u8],
    mode: libc::mode_t,
) -> Result<(), c_int> {
    let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_CLOEXEC | libc::O_NOFOLLOW;
    // SAFETY: a C string; openat on any number only fails (EBADF).
    let fd = unsafe { libc::openat(dir, path.as_ptr(), flags, 0o600) };
    if fd < 0 {
        return Err(errno());
    }
    let mut done = 0usize;
    while let Some(rest) = contents.get(done..).filter(|r| !r.is_empty()) {
        // SAFETY: a valid buffer of `rest.len()` bytes and our own descriptor.
        let n = unsafe { libc::write(fd, rest.as_ptr().cast(), rest.len()) };
        if n < 0 {
            let err = errno();
            if err == libc::EINTR {
                continue;
            }
            // SAFETY: our own descriptor.
            unsafe { libc::close(fd) };
            return Err(err);
        }
        done += n as usize;
    }
    // SAFETY: our own descriptor.
    let ret = unsafe { libc::fchmod(fd, mode) };
    let err = errno();
    // SAFETY: our own descriptor.
    unsafe { libc::close(fd) };
    if ret == -1 {
        return Err(err);
    }
    Ok(())
}

/// `mknod(2)`.
pub(crate) fn mknod(path: &CStr, mode: libc::mode_t, dev: libc::dev_t) -> c_int {
    // SAFETY: a C string.
    unsafe { libc::mknod(path.as_ptr(), mode, dev) }
}

/// `lchown(2)` (does not follow a symlink).
pub(crate) fn lchown(path: &CStr, uid: u32, gid: u32) -> c_int {
    // SAFETY: a C string.
    unsafe { libc::lchown(path.as_ptr(), uid, gid) }
}

/// `symlink(target, link)`. man 2 symlink.
pub(crate) fn symlink(target: &CStr, link: &CStr) -> c_int {
    // SAFETY: two C strings.
    unsafe { libc::symlink(target.as_ptr(), link.as_ptr()) }
}

/// `OPEN_TREE_CLONE` from `<linux/mount.h>`.
const OPEN_TREE_CLONE: libc::c_uint = 1;
/// `MOVE_MOUNT_F_EMPTY_PATH` from `<linux/mount.h>`.
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 4;

/// `open_tree(AT_FDCWD, path, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC)` (with `AT_RECURSIVE`
/// if `recursive`): a detached copy of the mount (tree) at `path`. Returns the new
/// descriptor, which the caller then owns, or -1. man 2 open_tree (Linux 5.2).
pub(crate) fn open_tree_clone(path: &CStr, recursive: bool) -> c_int {
    let mut flags = OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint;
    if recursive {
        flags |= libc::AT_RECURSIVE as libc::c_uint;
    }
    // SAFETY: a C string.
    unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, path.as_ptr(), flags) as c_int }
}

/// `open_tree(fd, "", OPEN_TREE_CLONE | AT_EMPTY_PATH | AT_RECURSIVE)`: a new detached
/// copy of the detached mount tree `fd` (new mount ids). Linux 6.x accepts a detached
/// source; older kernels fail (EINVAL), and the caller keeps `fd`.
pub(crate) fn open_tree_reclone(fd: c_int) -> c_int {
    let flags = OPEN_TREE_CLONE
        | libc::O_CLOEXEC as libc::c_uint
        | libc::AT_EMPTY_PATH as libc::c_uint
        | libc::AT_RECURSIVE as libc::c_uint;
    // SAFETY: an empty C string literal and a descriptor.
    unsafe { libc::syscall(libc::SYS_open_tree, fd, c"".as_ptr(), flags) as c_int }
}

/// `move_mount(fd, "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH)`, then `close(fd)`.
/// Returns `move_mount`'s result, errno preserved. man 2 move_mount (Linux 5.2).
///
/// # Safety
/// `fd` is -1 (then EBADF) or a descriptor the caller owns and does not use again: it is
/// closed here.
pub(crate) unsafe fn move_mount_and_close(fd: c_int, target: &CStr) -> c_int {
    // SAFETY: a C string literal and a C string; `fd` as the caller vouches.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            fd,
            c"".as_ptr(),
            libc::AT_FDCWD,
            target.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH,
        )
    };
    let err = errno();
    // SAFETY: the caller gave up `fd`.
    unsafe { libc::close(fd) };
    // SAFETY: restores this thread's errno slot for the caller's check.
    unsafe { *libc::__errno_location() = err };
    ret as c_int
}

/// Whether descriptors `a` and `b` are the same file (device and inode). `fstat` only
/// reads, so any number is harmless (EBADF). man 2 fstat.
pub(crate) fn same_file(a: c_int, b: c_int) -> Result<bool, c_int> {
    // SAFETY: stat buffers on our stack, zeroed plain data.
    let (mut sa, mut sb): (libc::stat, libc::stat) = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    errno_of(unsafe { libc::fstat(a, &mut sa) })?;
    // SAFETY: as above.
    errno_of(unsafe { libc::fstat(b, &mut sb) })?;
    Ok(sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino)
}

/// A tmpfs of its own that no path leads to (a detached mount, nosuid, nodev), a file
/// there holding `contents` with `mode`, and a clone of just that file's mount moved onto
/// `target`: bubblewrap's `--bind-data`. Every descriptor is closed on every path out.
/// man 2 fsopen, fsconfig, fsmount, open_tree, move_mount.
pub(crate) fn bind_data(target: &CStr, contents: &[u8], mode: libc::mode_t) -> Result<(), c_int> {
    const FSOPEN_CLOEXEC: libc::c_uint = 1;
    const FSCONFIG_CMD_CREATE: libc::c_uint = 6;
    const FSMOUNT_CLOEXEC: libc::c_uint = 1;
    const MOUNT_ATTR_NOSUID: libc::c_uint = 0x2;
    const MOUNT_ATTR_NODEV: libc::c_uint = 0x4;
    // SAFETY: a C string literal.
    let fs = unsafe { libc::syscall(libc::SYS_fsopen, c"tmpfs".as_ptr(), FSOPEN_CLOEXEC) };
    if fs < 0 {
        return Err(errno());
    }
    let fs = fs as c_int;
    let null = ptr::null::<c_char>();
    // SAFETY: our own descriptor; null key and value, as FSCONFIG_CMD_CREATE takes.
    let made = unsafe { libc::syscall(libc::SYS_fsconfig, fs, FSCONFIG_CMD_CREATE, null, null, 0) };
    let mnt = if made < 0 {
        -1
    } else {
        // SAFETY: our own descriptor.
        unsafe {
            libc::syscall(
                libc::SYS_fsmount,
                fs,
                FSMOUNT_CLOEXEC,
                MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV,
            )
        }
    };
    let err = errno();
    // SAFETY: our own descriptor.
    unsafe { libc::close(fs) };
    if mnt < 0 {
        return Err(err);
    }
    let mnt = mnt as c_int;
    let tree = create_file_at(mnt, c"data", contents, mode).map(|()| {
        // SAFETY: our own descriptor and a C string literal.
        unsafe {
            libc::syscall(
                libc::SYS_open_tree,
                mnt,
                c"data".as_ptr(),
                OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint,
            )
        }
    });
    let err = errno();
    // SAFETY: our own descriptor.
    unsafe { libc::close(mnt) };
    let tree = match tree {
        Ok(t) if t >= 0 => t as c_int,
        Ok(_) => return Err(err),
        Err(e) => return Err(e),
    };
    // SAFETY: `tree` was just opened here and is not used again.
    errno_of(unsafe { move_mount_and_close(tree, target) })
}

/// `chroot(path)`. man 2 chroot.
pub(crate) fn chroot(path: &CStr) -> c_int {
    // SAFETY: a C string.
    unsafe { libc::chroot(path.as_ptr()) }
}

/// `pivot_root(new_root, put_old)`, the raw syscall (glibc has no wrapper).
/// man 2 pivot_root.
pub(crate) fn pivot_root(new_root: &CStr, put_old: &CStr) -> c_int {
    // SAFETY: two C strings.
    unsafe { libc::syscall(libc::SYS_pivot_root, new_root.as_ptr(), put_old.as_ptr()) as c_int }
}

/// `umount2(path, MNT_DETACH)`. man 2 umount2.
pub(crate) fn umount_detach(path: &CStr) -> c_int {
    // SAFETY: a C string.
    unsafe { libc::umount2(path.as_ptr(), libc::MNT_DETACH) }
}

/// `Err(errno)` if `ret` is -1.
fn errno_of(ret: c_int) -> Result<(), c_int> {
    if ret == -1 {
        Err(errno())
    } else {
        Ok(())
    }
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
/// we sleep until it has exec'd or exited. With `copy_memory`, `clone(CLONE_PARENT |
/// SIGCHLD)` instead: the sibling gets its own copy of our memory and we go on at once
/// (a created container's workload, which waits at its start gate long after we are
/// gone). Returns its pid (as the supervisor sees it) or -1 with errno set. man 2 clone.
///
/// # Safety
/// `entry` obeys the rules of `mod.rs` (no allocation, no locks, ends in execve or
/// `_exit`), and `arg` is what `entry` expects and stays valid until the new process has
/// exec'd or exited (with `copy_memory`: in the copy, which nobody else changes).
pub(crate) unsafe fn clone_parent(
    entry: extern "C" fn(*mut c_void) -> c_int,
    stack: StackTop<'_>,
    arg: *mut c_void,
    copy_memory: bool,
) -> c_int {
    let flags = match copy_memory {
        false => libc::CLONE_VM | libc::CLONE_VFORK | libc::CLONE_PARENT | libc::SIGCHLD,
        true => libc::CLONE_PARENT | libc::SIGCHLD,
    };
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
