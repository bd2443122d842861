//! THE CHILD, fs: the root filesystem, the mount list and `pivot_root`.
//!
//! Same rules as `mod.rs` (no allocation, system calls only through `sys.rs`). The parent
//! (`plan::fs`) compiled the user's mount list into a flat array of [`MountStep`]s whose
//! paths are all absolute *before* the root changes (`<rootfs>/<dst>`), so the child only
//! walks the array ([`mount`]); then, after the masks, it changes root ([`change_root`]).

use std::ffi::{CStr, CString};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;

use libc::{c_int, c_ulong};

use super::sys::{self, check, Step};
use crate::error::Stage;

/// What one [`MountStep`] does. Every path is absolute, as the child sees it before the
/// root change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Op {
    /// `mount(src, path, fstype, flags, data)`. On `EPERM` with a `fallback_bind` (sysfs
    /// in a user namespace without its own network namespace): a recursive read-only bind
    /// of that host path instead.
    Mount {
        src: CString,
        path: CString,
        fstype: CString,
        flags: c_ulong,
        data: Option<CString>,
        fallback_bind: Option<CString>,
    },
    /// `mount_setattr(path, MOUNT_ATTR_RDONLY)`.
    ReadOnly { path: CString, recursive: bool },
    /// `mount_setattr(path, attrs)`: `MOUNT_ATTR_*` bits set (`bind_with_flags`).
    SetAttr {
        path: CString,
        recursive: bool,
        attrs: u64,
    },
    /// `mkdir(path, 0755)`; an existing directory is fine.
    Mkdir { path: CString },
    /// `mkdir(path)` then `chmod(path, mode)` (so the supervisor's umask does not change
    /// it); an existing directory is fine and keeps its mode (bubblewrap's `--dir`).
    MkdirMode { path: CString, mode: libc::mode_t },
    /// Creates the file `path` (`O_EXCL`, `O_NOFOLLOW`) holding `contents`, with `mode`
    /// (bubblewrap's `--file`).
    WriteFile {
        path: CString,
        contents: Arc<[u8]>,
        mode: libc::mode_t,
    },
    /// `fchmodat2(path, mode, AT_SYMLINK_NOFOLLOW)` (bubblewrap's `--chmod`).
    Chmod { path: CString, mode: libc::mode_t },
    /// `mknod(path, mode, dev)`, then `lchown(uid, gid)` and the permission bits of `mode`
    /// exactly (the umask would have taken some).
    Mknod {
        path: CString,
        mode: libc::mode_t,
        dev: libc::dev_t,
        uid: u32,
        gid: u32,
    },
    /// Creates an empty file at `path` (a mount point for a file bind).
    Touch { path: CString },
    /// `symlink(target, path)`.
    Symlink { target: CString, path: CString },
    /// `open_tree(src, OPEN_TREE_CLONE)`: a detached copy of the mount at host path `src`,
    /// kept in `slots[slot]` until a [`Op::Place`]. The plan puts every grab before the
    /// first mount, so that a bind source is the *host's* path even when an earlier step
    /// covers it (the fresh `/dev` covers the host's nodes).
    Grab {
        src: CString,
        recursive: bool,
        slot: usize,
    },
    /// `move_mount(slots[slot], path)`: attaches what the matching [`Op::Grab`] took (or
    /// the detached mount the parent put in the slot).
    Place { path: CString, slot: usize },
    /// Checks that the mount grabbed into `slots[slot]` has the device and inode of
    /// descriptor `fd` (`bind_fd`); `ESTALE` if not.
    SameFile { slot: usize, fd: c_int },
    /// A private tmpfs holding a file with `contents` and `mode`, bound onto `path`
    /// (bubblewrap's `--bind-data`).
    BindData {
        path: CString,
        contents: Arc<[u8]>,
        mode: libc::mode_t,
    },
}

/// One primitive step, prepared by the parent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MountStep {
    pub(crate) op: Op,
    /// Reported if this step fails.
    pub(crate) stage: Stage,
}

/// The prepared file system plan, borrowed from `plan::fs::PreparedFs`.
pub(crate) struct FsSpec<'a> {
    /// The new root (absolute host path), or `None` to keep the current root.
    pub(crate) root: Option<&'a CStr>,
    /// `chroot` instead of `pivot_root`.
    pub(crate) chroot: bool,
    pub(crate) steps: &'a [MountStep],
    /// Make the new root's own mount read-only (not the mounts on top of it).
    pub(crate) readonly_root: bool,
    /// `MS_SHARED` or `MS_UNBINDABLE` to set on `/` (recursively) at the end; 0 keeps it
    /// private.
    pub(crate) root_propagation: libc::c_ulong,
    /// Descriptors of detached mounts between a grab and its place (`-1` when empty),
    /// some filled by the parent. The only memory of the plan the child writes.
    pub(crate) slots: &'a [AtomicI32],
}

/// Makes the new root a mount point and applies the mount list. Runs after `/` was made
/// rprivate.
pub(crate) fn mount(spec: &FsSpec<'_>) -> Step {
    if let Some(root) = spec.root {
        // pivot_root needs the new root to be a mount point; a recursive bind onto itself
        // makes it one (and a separate mount we may make read-only without touching the
        // host's).
        check(sys::rbind(root, root), Stage::BindRoot)?;
    }
    for step in spec.steps {
        run_step(step, spec.slots).map_err(|e| (step.stage, e))?;
    }
    Ok(())
}

/// Changes root (after the masks, which need the host's `/dev/null`): the root's own mount
/// read-only if asked, then `pivot_root` (or `chroot`), and `/` as the working directory.
pub(crate) fn change_root(spec: &FsSpec<'_>) -> Step {
    let Some(root) = spec.root else {
        return Ok(());
    };
    if spec.readonly_root {
        sys::set_readonly(root, false).map_err(|e| (Stage::MakeReadOnly, e))?;
    }
    check(sys::chdir(root), Stage::PivotRoot)?;
    if spec.chroot {
        // The weaker fallback: the old root stays in the mount table and a process with
        // CAP_SYS_CHROOT can climb out.
        check(sys::chroot(c"."), Stage::Chroot)?;
    } else {
        // pivot_root(".", "."): the old root ends up mounted on top of the new one, at the
        // same place, so no put_old directory is needed inside the rootfs; detaching "."
        // then removes the old root (it was made rprivate, so nothing propagates to the
        // host).
        check(sys::pivot_root(c".", c"."), Stage::PivotRoot)?;
        check(sys::umount_detach(c"."), Stage::UnmountOldRoot)?;
    }
    // The later cwd step (if any) chdirs again, relative to the root.
    check(sys::chdir(c"/"), Stage::PivotRoot)?;
    if spec.root_propagation != 0 {
        // After the old root is gone: only the container's own mounts are affected.
        let flags = spec.root_propagation | libc::MS_REC;
        check(sys::mount(None, c"/", None, flags, None), Stage::PivotRoot)?;
    }
    Ok(())
}

/// Runs one step; `Err(errno)` on failure.
fn run_step(s: &MountStep, slots: &[AtomicI32]) -> Result<(), c_int> {
    let ok = |ret: c_int| if ret == -1 { Err(sys::errno()) } else { Ok(()) };
    match &s.op {
        Op::Mount {
            src,
            path,
            fstype,
            flags,
            data,
            fallback_bind,
        } => {
            let ret = sys::mount(Some(src), path, Some(fstype), *flags, data.as_deref());
            if ret == 0 {
                return Ok(());
            }
            let err = sys::errno();
            match fallback_bind {
                Some(host) if err == libc::EPERM => {
                    ok(sys::rbind(host, path))?;
                    sys::set_readonly(path, true)
                }
                _ => Err(err),
            }
        }
        Op::ReadOnly { path, recursive } => sys::set_readonly(path, *recursive),
        Op::SetAttr {
            path,
            recursive,
            attrs,
        } => sys::set_attrs(path, *recursive, *attrs),
        Op::Mkdir { path } => {
            if sys::mkdir(path, 0o755) == -1 && sys::errno() != libc::EEXIST {
                return Err(sys::errno());
            }
            Ok(())
        }
        Op::MkdirMode { path, mode } => {
            if sys::mkdir(path, 0o700) == -1 {
                let err = sys::errno();
                return if err == libc::EEXIST {
                    Ok(())
                } else {
                    Err(err)
                };
            }
            sys::chmod_nofollow(path, *mode)
        }
        Op::WriteFile {
            path,
            contents,
            mode,
        } => sys::create_file(path, contents, *mode),
        Op::BindData {
            path,
            contents,
            mode,
        } => sys::bind_data(path, contents, *mode),
        Op::SameFile { slot, fd } => {
            let tree = slots
                .get(*slot)
                .ok_or(libc::EINVAL)?
                .load(Ordering::Relaxed);
            if sys::same_file(tree, *fd)? {
                Ok(())
            } else {
                Err(libc::ESTALE)
            }
        }
        Op::Chmod { path, mode } => sys::chmod_nofollow(path, *mode),
        Op::Touch { path } => ok(sys::touch(path)),
        Op::Mknod {
            path,
            mode,
            dev,
            uid,
            gid,
        } => {
            ok(sys::mknod(path, *mode, *dev))?;
            ok(sys::lchown(path, *uid, *gid))?;
            sys::chmod_nofollow(path, *mode & 0o7777)
        }
        Op::Symlink { target, path } => ok(sys::symlink(target, path)),
        Op::Grab {
            src,
            recursive,
            slot,
        } => {
            let slot = slots.get(*slot).ok_or(libc::EINVAL)?;
            // A detached copy of the mount (tree) at `src`, as a descriptor: taken before
            // anything is mounted, it is the host's object whatever covers `src` later.
            let fd = sys::open_tree_clone(src, *recursive);
            ok(fd)?;
            slot.store(fd, Ordering::Relaxed);
            Ok(())
        }
        Op::Place { path, slot } => {
            let slot = slots.get(*slot).ok_or(libc::EINVAL)?;
            // Taken out of the slot: the descriptor is used (and closed) once.
            let mut fd = slot.swap(-1, Ordering::Relaxed);
            // A fresh copy of the detached tree, made now: the kernel (6.8+) lists a
            // namespace's mounts in /proc/self/mountinfo by mount id, given when a mount
            // is made, so the grabbed copy (made before every other mount) would be listed
            // before the mounts the config puts ahead of it (runtime-tools checks the
            // order). Kernels that cannot copy a detached mount place the grabbed one.
            if fd >= 0 {
                let fresh = sys::open_tree_reclone(fd);
                if fresh >= 0 {
                    sys::close(fd);
                    fd = fresh;
                }
            }
            // SAFETY: `fd` is a detached mount this child owns, put in the slot by its
            // grab (or by the parent, whose copy our separate descriptor table does not
            // share) and taken out above; -1 (never grabbed) fails with EBADF.
            ok(unsafe { sys::move_mount_and_close(fd, path) })
        }
    }
}
