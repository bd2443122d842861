//! THE CHILD, mounts: the root filesystem, the mount list and `pivot_root`.
//!
//! Same rules as `mod.rs` (no allocation, raw syscalls only). `mounts.rs` in the parent
//! compiled the user's mount list into a flat array of [`MountStep`]s whose paths are all
//! absolute *before* the root changes (`<rootfs>/<dst>`), so the child only walks the
//! array; then it changes root.

use std::ptr;

use libc::{c_char, c_int, c_ulong};

use super::{check, errno, slice, Step};
use crate::error::Stage;

/// What one [`MountStep`] does.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    /// `mount(a, b, fstype, flags, data)`.
    Mount,
    /// `mount_setattr(b, MOUNT_ATTR_RDONLY)`, recursive when `flags != 0`.
    ReadOnly,
    /// `mkdir(b, 0755)`; an existing directory is fine.
    Mkdir,
    /// `mkdir(b)` then `chmod(b, mode)` (so the supervisor's umask does not change it); an
    /// existing directory is fine and keeps its mode (bubblewrap's `--dir`).
    MkdirMode,
    /// Creates the file `b` (`O_EXCL`, `O_NOFOLLOW`), writes the `len` bytes at `a` into it
    /// and sets `mode` (bubblewrap's `--file`).
    WriteFile,
    /// `fchmodat2(b, mode, AT_SYMLINK_NOFOLLOW)` (bubblewrap's `--chmod`).
    Chmod,
    /// Creates an empty file at `b` (a mount point for a file bind).
    Touch,
    /// `symlink(a, b)`.
    Symlink,
    /// `open_tree(a, OPEN_TREE_CLONE)` (recursive when `flags != 0`): a detached copy of
    /// the mount at host path `a`, kept in `slots[slot]` until a [`Op::Place`]. The plan
    /// puts every grab before the first mount, so that a bind source is the *host's* path
    /// even when an earlier step covers it (the fresh `/dev` covers the host's nodes).
    Grab,
    /// `move_mount(slots[slot], b)`: attaches what the matching [`Op::Grab`] took.
    Place,
    /// Checks that the mount grabbed into `slots[slot]` has the device and inode of
    /// descriptor `len` (`bind_fd`); `ESTALE` if not.
    SameFile,
    /// Makes a private tmpfs (`fsopen`, `fsmount`), writes the `len` bytes at `a` into a
    /// file there with `mode`, and binds that file onto `b` (`open_tree` of the file,
    /// `move_mount`): bubblewrap's `--bind-data`.
    BindData,
}

/// One primitive step, prepared by the parent. Unused pointers are null.
pub(crate) struct MountStep {
    pub(crate) op: Op,
    pub(crate) a: *const c_char,
    pub(crate) b: *const c_char,
    pub(crate) fstype: *const c_char,
    pub(crate) flags: c_ulong,
    pub(crate) data: *const c_char,
    /// For a kernel filesystem that may be refused (sysfs in a user namespace without its
    /// own network namespace): on EPERM, recursively bind this host path read-only instead.
    pub(crate) fallback_bind: *const c_char,
    /// Index into [`FsSpec::slots`] for [`Op::Grab`] and [`Op::Place`].
    pub(crate) slot: usize,
    /// Mode for [`Op::MkdirMode`], [`Op::WriteFile`] and [`Op::Chmod`].
    pub(crate) mode: libc::mode_t,
    /// Length of the bytes at `a` for [`Op::WriteFile`] and [`Op::BindData`]; the
    /// descriptor for [`Op::SameFile`].
    pub(crate) len: usize,
    /// Reported if this step fails.
    pub(crate) stage: Stage,
}

/// The prepared file system plan. `root` null and `n_steps` 0 means "nothing to do".
#[derive(Clone, Copy)]
pub(crate) struct FsSpec {
    /// The new root (absolute host path), or null to keep the current root.
    pub(crate) root: *const c_char,
    /// `chroot` instead of `pivot_root`.
    pub(crate) chroot: bool,
    pub(crate) steps: *const MountStep,
    pub(crate) n_steps: usize,
    /// Make the new root's own mount read-only (not the mounts on top of it).
    pub(crate) readonly_root: bool,
    /// Descriptors of grabbed mounts, one per grab, owned by the plan (`-1` initially).
    /// The only memory of the plan the child writes: its own slots, before any other use.
    pub(crate) slots: (*mut c_int, usize),
}

impl FsSpec {
    pub(crate) const NONE: FsSpec = FsSpec {
        root: ptr::null(),
        chroot: false,
        steps: ptr::null(),
        n_steps: 0,
        readonly_root: false,
        slots: (ptr::null_mut(), 0),
    };
}

/// Applies the mount list and changes root. Runs after `/` was made rprivate.
pub(crate) fn apply(spec: &FsSpec, security: &super::security::SecuritySpec) -> Step {
    if spec.root.is_null() && spec.n_steps == 0 {
        return Ok(());
    }
    if !spec.root.is_null() {
        // pivot_root needs the new root to be a mount point; a recursive bind onto itself
        // makes it one (and a separate mount we may make read-only without touching the
        // host's).
        check(rbind(spec.root, spec.root), Stage::BindRoot)?;
    }
    for step in slice((spec.steps, spec.n_steps)) {
        run_step(step, spec.slots)?;
    }
    if spec.root.is_null() {
        return Ok(());
    }
    if security.under_root {
        // Masks go on while the host's /dev/null can still be bound (before pivot_root).
        super::security::mask_paths_now(security)?;
    }
    if spec.readonly_root {
        set_readonly(spec.root, false).map_err(|e| (Stage::MakeReadOnly, e))?;
    }
    // SAFETY: valid C string. man 2 chdir.
    check(unsafe { libc::chdir(spec.root) }, Stage::PivotRoot)?;
    if spec.chroot {
        // The weaker fallback: the old root stays in the mount table and a process with
        // CAP_SYS_CHROOT can climb out. SAFETY: man 2 chroot.
        check(unsafe { libc::chroot(c".".as_ptr()) }, Stage::Chroot)?;
    } else {
        // pivot_root(".", "."): the old root ends up mounted on top of the new one, at the
        // same place, so no put_old directory is needed inside the rootfs; detaching "."
        // then removes the old root (it was made rprivate, so nothing propagates to the
        // host). SAFETY: raw syscall with valid C strings. man 2 pivot_root.
        let ret = unsafe { libc::syscall(libc::SYS_pivot_root, c".".as_ptr(), c".".as_ptr()) };
        check(ret as i32, Stage::PivotRoot)?;
        // SAFETY: man 2 umount2.
        check(
            unsafe { libc::umount2(c".".as_ptr(), libc::MNT_DETACH) },
            Stage::UnmountOldRoot,
        )?;
    }
    // SAFETY: man 2 chdir. The later cwd step (if any) chdirs again, relative to the root.
    check(unsafe { libc::chdir(c"/".as_ptr()) }, Stage::PivotRoot)
}

fn run_step(s: &MountStep, slots: (*mut c_int, usize)) -> Step {
    // SAFETY (whole function): every pointer is a C string or null as the plan prepared
    // it; each call is a plain syscall. man 2 mount, mkdir, open, symlink.
    match s.op {
        Op::Mount => {
            let ret = unsafe { libc::mount(s.a, s.b, s.fstype, s.flags, s.data.cast()) };
            if ret == 0 {
                return Ok(());
            }
            let err = errno();
            if err == libc::EPERM && !s.fallback_bind.is_null() {
                check(rbind(s.fallback_bind, s.b), s.stage)?;
                return set_readonly(s.b, true).map_err(|e| (s.stage, e));
            }
            Err((s.stage, err))
        }
        Op::ReadOnly => set_readonly(s.b, s.flags != 0).map_err(|e| (s.stage, e)),
        Op::Mkdir => {
            let ret = unsafe { libc::mkdir(s.b, 0o755) };
            if ret == -1 && errno() != libc::EEXIST {
                return Err((s.stage, errno()));
            }
            Ok(())
        }
        Op::MkdirMode => {
            if unsafe { libc::mkdir(s.b, 0o700) } == -1 {
                let err = errno();
                return if err == libc::EEXIST {
                    Ok(())
                } else {
                    Err((s.stage, err))
                };
            }
            chmod_nofollow(s.b, s.mode).map_err(|e| (s.stage, e))
        }
        Op::WriteFile => write_new_file(libc::AT_FDCWD, s.b, s).map_err(|e| (s.stage, e)),
        Op::BindData => bind_data(s).map_err(|e| (s.stage, e)),
        Op::SameFile => {
            if s.slot >= slots.1 {
                return Err((s.stage, libc::EINVAL));
            }
            // SAFETY: slot < len; stat buffers on our stack. man 2 fstat.
            let (mut a, mut b): (libc::stat, libc::stat) = unsafe { std::mem::zeroed() };
            let tree = unsafe { *slots.0.add(s.slot) };
            check(unsafe { libc::fstat(tree, &mut a) }, s.stage)?;
            check(unsafe { libc::fstat(s.len as c_int, &mut b) }, s.stage)?;
            if a.st_dev != b.st_dev || a.st_ino != b.st_ino {
                return Err((s.stage, libc::ESTALE));
            }
            Ok(())
        }
        Op::Chmod => chmod_nofollow(s.b, s.mode).map_err(|e| (s.stage, e)),
        Op::Touch => {
            let fd = unsafe {
                libc::open(
                    s.b,
                    libc::O_WRONLY | libc::O_CREAT | libc::O_CLOEXEC | libc::O_NOFOLLOW,
                    0o644,
                )
            };
            check(fd, s.stage)?;
            unsafe { libc::close(fd) };
            Ok(())
        }
        Op::Symlink => check(unsafe { libc::symlink(s.a, s.b) }, s.stage),
        Op::Grab => {
            if s.slot >= slots.1 {
                return Err((s.stage, libc::EINVAL));
            }
            let mut flags = OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint;
            if s.flags != 0 {
                flags |= libc::AT_RECURSIVE as libc::c_uint;
            }
            // A detached copy of the mount (tree) at `a`, as a descriptor: taken before
            // anything is mounted, it is the host's object whatever covers `a` later.
            // man 2 open_tree (Linux 5.2).
            let fd = unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, s.a, flags) };
            check(fd as c_int, s.stage)?;
            // SAFETY: slot < len, checked above; the plan owns the array.
            unsafe { *slots.0.add(s.slot) = fd as c_int };
            Ok(())
        }
        Op::Place => {
            if s.slot >= slots.1 {
                return Err((s.stage, libc::EINVAL));
            }
            // SAFETY: slot < len; the grab wrote it (or it is still -1: EBADF below).
            let fd = unsafe { *slots.0.add(s.slot) };
            // man 2 move_mount (Linux 5.2).
            let ret = unsafe {
                libc::syscall(
                    libc::SYS_move_mount,
                    fd,
                    c"".as_ptr(),
                    libc::AT_FDCWD,
                    s.b,
                    MOVE_MOUNT_F_EMPTY_PATH,
                )
            };
            let err = errno();
            unsafe {
                libc::close(fd);
                *slots.0.add(s.slot) = -1;
            }
            if ret == -1 {
                return Err((s.stage, err));
            }
            Ok(())
        }
    }
}

/// Creates file `path` (relative to `dir`; `O_EXCL`, `O_NOFOLLOW`), writes the `len`
/// bytes at `a` of step `s` into it and sets `s.mode`.
fn write_new_file(dir: c_int, path: *const c_char, s: &MountStep) -> Result<(), i32> {
    // SAFETY (whole function): plain syscalls on a C string from the plan and our own
    // descriptor; `a` points at `len` bytes the plan owns. man 2 openat, write, fchmod.
    let fd = unsafe {
        libc::openat(
            dir,
            path,
            libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_CLOEXEC | libc::O_NOFOLLOW,
            0o600,
        )
    };
    if fd < 0 {
        return Err(errno());
    }
    let mut done = 0usize;
    while done < s.len {
        // done < len.
        let n = unsafe { libc::write(fd, s.a.cast::<u8>().add(done).cast(), s.len - done) };
        if n < 0 {
            let err = errno();
            if err == libc::EINTR {
                continue;
            }
            unsafe { libc::close(fd) };
            return Err(err);
        }
        done += n as usize;
    }
    let ret = unsafe { libc::fchmod(fd, s.mode) };
    let err = errno();
    unsafe { libc::close(fd) };
    if ret == -1 {
        return Err(err);
    }
    Ok(())
}

/// [`Op::BindData`]: a tmpfs of its own that no path leads to (a detached mount), the
/// file written in it, and a clone of just that file's mount moved onto `b`. Every
/// descriptor is closed on every path out.
fn bind_data(s: &MountStep) -> Result<(), i32> {
    const FSOPEN_CLOEXEC: libc::c_uint = 1;
    const FSCONFIG_CMD_CREATE: libc::c_uint = 6;
    const FSMOUNT_CLOEXEC: libc::c_uint = 1;
    const MOUNT_ATTR_NOSUID: libc::c_uint = 0x2;
    const MOUNT_ATTR_NODEV: libc::c_uint = 0x4;
    // SAFETY (whole function): raw syscalls with C string literals, the plan's strings and
    // descriptors we own. man 2 fsopen, fsconfig, fsmount, open_tree, move_mount.
    let fs = unsafe { libc::syscall(libc::SYS_fsopen, c"tmpfs".as_ptr(), FSOPEN_CLOEXEC) };
    if fs < 0 {
        return Err(errno());
    }
    let fs = fs as c_int;
    let null = ptr::null::<c_char>();
    let made = unsafe { libc::syscall(libc::SYS_fsconfig, fs, FSCONFIG_CMD_CREATE, null, null, 0) };
    let mnt = if made < 0 {
        -1
    } else {
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
    unsafe { libc::close(fs) };
    if mnt < 0 {
        return Err(err);
    }
    let mnt = mnt as c_int;
    let tree = write_new_file(mnt, c"data".as_ptr(), s).map(|()| unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            mnt,
            c"data".as_ptr(),
            OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint,
        )
    });
    let err = errno();
    unsafe { libc::close(mnt) };
    let tree = match tree {
        Ok(t) if t >= 0 => t as c_int,
        Ok(_) => return Err(err),
        Err(e) => return Err(e),
    };
    let ret = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree,
            c"".as_ptr(),
            libc::AT_FDCWD,
            s.b,
            MOVE_MOUNT_F_EMPTY_PATH,
        )
    };
    let err = errno();
    unsafe { libc::close(tree) };
    if ret == -1 {
        return Err(err);
    }
    Ok(())
}

/// `fchmodat2(AT_FDCWD, path, mode, AT_SYMLINK_NOFOLLOW)` (Linux 6.6): the plan resolved
/// every link it made itself, so a link met here is refused (`EOPNOTSUPP`) rather than
/// followed out of the container's own file systems.
fn chmod_nofollow(path: *const c_char, mode: libc::mode_t) -> Result<(), i32> {
    // SAFETY: valid C string. man 2 fchmodat.
    let ret = unsafe {
        libc::syscall(
            SYS_FCHMODAT2,
            libc::AT_FDCWD,
            path,
            mode as libc::c_uint,
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    if ret == -1 {
        Err(errno())
    } else {
        Ok(())
    }
}

/// `fchmodat2`'s number (the same on every architecture, Linux 6.6).
const SYS_FCHMODAT2: libc::c_long = 452;

/// `OPEN_TREE_CLONE` from `<linux/mount.h>`.
const OPEN_TREE_CLONE: libc::c_uint = 1;
/// `MOVE_MOUNT_F_EMPTY_PATH` from `<linux/mount.h>`.
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 4;

/// A recursive bind mount of `src` onto `dst`. Returns `mount`'s result.
pub(crate) fn rbind(src: *const c_char, dst: *const c_char) -> c_int {
    // SAFETY: valid C strings from the plan. man 2 mount.
    unsafe {
        libc::mount(
            src,
            dst,
            ptr::null(),
            libc::MS_BIND | libc::MS_REC,
            ptr::null(),
        )
    }
}

/// `mount_setattr(path, MOUNT_ATTR_RDONLY)` (Linux 5.12). Unlike a remount with
/// `MS_RDONLY` it changes only the read-only bit, so the flags the kernel locks on mounts
/// inherited into a user namespace (nosuid, nodev, ...) never need to be repeated, and
/// `AT_RECURSIVE` covers every submount of a recursive bind.
fn set_readonly(path: *const c_char, recursive: bool) -> Result<(), i32> {
    let attr = libc::mount_attr {
        attr_set: libc::MOUNT_ATTR_RDONLY,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    let flags = if recursive { libc::AT_RECURSIVE } else { 0 } as libc::c_uint;
    // SAFETY: valid C string and a mount_attr on our stack. man 2 mount_setattr.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            libc::AT_FDCWD,
            path,
            flags,
            &attr as *const libc::mount_attr,
            std::mem::size_of::<libc::mount_attr>(),
        )
    };
    if ret == -1 {
        Err(errno())
    } else {
        Ok(())
    }
}
