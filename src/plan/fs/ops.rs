//! Each operation of the mount list, compiled (the `Compiler`'s primitives are in
//! `compile.rs`; the `/dev` in `dev.rs`).

use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::compile::{c, Compiler};
use super::host::Kind;
use super::model::{container_path, Layer};
use crate::builder::fs::{MountOp, NodeKind, MAX_TMPFS_SIZE};
use crate::child::fs::{MountStep, Op};
use crate::error::{Error, Result, Stage};

impl Compiler<'_> {
    /// Compiles one operation of the mount list.
    pub(super) fn compile(&mut self, op: &MountOp) -> Result<()> {
        let nosuid_nodev = libc::MS_NOSUID | libc::MS_NODEV;
        match op {
            MountOp::Bind {
                src,
                dst,
                readonly,
                flags,
            } => {
                let (recursive, attrs) = match flags {
                    Some(f) => mount_flags(dst, *f, "bind_with_flags")?,
                    None => (true, 0),
                };
                let dst = self.ours(dst, "bind destination")?;
                let src = if src.is_absolute() {
                    src.clone()
                } else {
                    self.host
                        .current_dir()
                        .map_err(Error::io("reading the current directory"))?
                        .join(src)
                };
                let kind = self.host.kind(&src).map_err(|e| Error::BadMount {
                    what: "bind source",
                    path: src.clone(),
                    reason: e.to_string(),
                })?;
                self.mount_point(&dst, kind == Kind::Dir, "bind destination")?;
                self.bind_host(&src, &dst, recursive, Stage::MountBind)?;
                if *readonly {
                    self.readonly(&dst, recursive, Stage::MakeReadOnly)?;
                }
                self.set_attrs(&dst, recursive, attrs)?;
                self.model.push(dst, Layer::Host(src));
            }
            MountOp::Tmpfs { dst, size, mode } => {
                let dst = self.ours(dst, "tmpfs destination")?;
                check_tmpfs(&dst, *size, *mode)?;
                self.mount_point(&dst, true, "tmpfs destination")?;
                let data = match size {
                    Some(size) => format!("mode={mode:o},size={size}"),
                    None => format!("mode={mode:o}"),
                };
                self.mount("tmpfs", &dst, nosuid_nodev, Some(&data), Stage::MountTmpfs)?;
                self.model.push(dst, Layer::Fresh);
            }
            MountOp::Proc { dst } => {
                let dst = container_path(dst, "proc destination")?;
                self.kernel_fs("proc", dst, 0, Stage::MountProc, "proc destination")?;
            }
            MountOp::Dev => self.dev()?,
            MountOp::Dir { dst, mode } => {
                let dst = self.ours(dst, "dir")?;
                check_mode(&dst, *mode, "dir")?;
                match self.model.view(&dst) {
                    Layer::Fresh => {
                        // Missing parents inside the same tmpfs get a mode derived from
                        // `mode` (an existing one keeps its own).
                        let mut parents = Vec::new();
                        let mut p = dst.parent();
                        while let Some(parent) = p {
                            if parent == Path::new("/") || self.model.view(parent) != Layer::Fresh {
                                break;
                            }
                            parents.push(parent.to_path_buf());
                            p = parent.parent();
                        }
                        for parent in parents.iter().rev() {
                            let path = self.at(parent)?;
                            let mode = parent_mode(*mode) as libc::mode_t;
                            self.push(Op::MkdirMode { path, mode }, Stage::MountPoint);
                        }
                        let path = self.at(&dst)?;
                        let mode = *mode as libc::mode_t;
                        self.push(Op::MkdirMode { path, mode }, Stage::MountPoint);
                    }
                    // An existing directory of the host's: nothing to do (bubblewrap keeps
                    // its mode too); anything else is refused by mount_point.
                    _ => self.mount_point(&dst, true, "dir")?,
                }
            }
            MountOp::Symlink { target, dst } => {
                let dst = self.ours(dst, "symlink")?;
                self.fresh_parent(&dst, "symlink")?;
                let op = Op::Symlink {
                    target: c(target)?,
                    path: self.at(&dst)?,
                };
                self.push(op, Stage::MountPoint);
                self.model.link(dst, target.clone());
            }
            MountOp::File {
                dst,
                contents,
                mode,
            } => {
                let dst = self.ours(dst, "file")?;
                check_mode(&dst, *mode, "file")?;
                self.fresh_parent(&dst, "file")?;
                let op = Op::WriteFile {
                    path: self.at(&dst)?,
                    contents: contents.clone(),
                    mode: *mode as libc::mode_t,
                };
                self.push(op, Stage::MountPoint);
                self.model.file(dst);
            }
            MountOp::Node { dst, node } => {
                let dst = self.ours(dst, "device_node")?;
                check_mode(&dst, node.mode, "device_node")?;
                self.fresh_parent(&dst, "device_node")?;
                let kind = match node.kind {
                    NodeKind::Char => libc::S_IFCHR,
                    NodeKind::Block => libc::S_IFBLK,
                    NodeKind::Fifo => libc::S_IFIFO,
                };
                let dev = match node.kind {
                    NodeKind::Fifo => 0,
                    _ => libc::makedev(node.major, node.minor),
                };
                let op = Op::Mknod {
                    path: self.at(&dst)?,
                    mode: kind | node.mode as libc::mode_t,
                    dev,
                    uid: node.uid,
                    gid: node.gid,
                };
                self.push(op, Stage::MountPoint);
                self.model.file(dst);
            }
            MountOp::Chmod { dst, mode } => {
                let dst = self.ours(dst, "chmod")?;
                check_mode(&dst, *mode, "chmod")?;
                if self.model.view(&dst) != Layer::Fresh {
                    return Err(Error::BadMount {
                        what: "chmod",
                        path: dst,
                        reason: "is not in a file system this container mounts itself (a tmpfs): the mode of a host file is never changed".into(),
                    });
                }
                let path = self.at(&dst)?;
                let mode = *mode as libc::mode_t;
                self.push(Op::Chmod { path, mode }, Stage::MountPoint);
            }
            MountOp::RemountRo { dst } => {
                let dst = self.ours(dst, "remount_ro")?;
                self.readonly(&dst, true, Stage::MakeReadOnly)?;
            }
            MountOp::Remount { dst, flags } => {
                let dst = self.ours(dst, "remount_with_flags")?;
                let (recursive, attrs) = mount_flags(&dst, *flags, "remount_with_flags")?;
                let attrs = attrs
                    | if flags & libc::MS_RDONLY != 0 {
                        libc::MOUNT_ATTR_RDONLY
                    } else {
                        0
                    };
                self.set_attrs(&dst, recursive, attrs)?;
            }
            MountOp::Overlay { lower, dst } => self.overlay(lower, dst)?,
            MountOp::Data {
                dst,
                contents,
                mode,
                readonly,
            } => {
                let dst = self.ours(dst, "bind_data")?;
                check_mode(&dst, *mode, "bind_data")?;
                let contents = self.host.data(contents, &dst)?;
                self.mount_point(&dst, false, "bind_data destination")?;
                let op = Op::BindData {
                    path: self.at(&dst)?,
                    contents,
                    mode: *mode as libc::mode_t,
                };
                self.push(op, Stage::MountBind);
                if *readonly {
                    self.readonly(&dst, false, Stage::MakeReadOnly)?;
                }
                // A file of our own tmpfs: chmod may change it, nothing is under it.
                self.model.push(dst.clone(), Layer::Fresh);
                self.model.file(dst);
            }
            MountOp::BindFd { fd, dst, readonly } => self.bind_fd(fd, dst, *readonly)?,
            MountOp::Mqueue => {
                let dst = PathBuf::from("/dev/mqueue");
                self.kernel_fs("mqueue", dst, 0, Stage::MountMqueue, "mqueue destination")?;
            }
            MountOp::Sysfs => {
                let dst = PathBuf::from("/sys");
                self.kernel_fs(
                    "sysfs",
                    dst,
                    libc::MS_RDONLY,
                    Stage::MountSysfs,
                    "sysfs destination",
                )?;
                if let Some(MountStep {
                    op: Op::Mount { fallback_bind, .. },
                    ..
                }) = self.steps.last_mut()
                {
                    *fallback_bind = Some(c"/sys".into());
                }
            }
        }
        Ok(())
    }

    fn overlay(&mut self, lower: &Path, dst: &Path) -> Result<()> {
        let dst = self.ours(dst, "overlay destination")?;
        let bad = |path: &Path, reason: String| Error::BadMount {
            what: "overlay",
            path: path.to_path_buf(),
            reason,
        };
        let kind = self
            .host
            .kind(lower)
            .map_err(|e| bad(lower, format!("lower directory: {e}")))?;
        if !lower.is_absolute() || kind != Kind::Dir {
            return Err(bad(
                lower,
                "the lower layer must be an absolute path to a directory".into(),
            ));
        }
        let upper_base = self.model.pre_pivot(&dst);
        for p in [lower, upper_base.as_path()] {
            if p.as_os_str()
                .as_bytes()
                .iter()
                .any(|c| matches!(c, b',' | b':' | b'\\'))
            {
                return Err(bad(
                    p,
                    "contains ',', ':' or '\\', overlayfs's option separators".into(),
                ));
            }
        }
        self.mount_point(&dst, true, "overlay destination")?;
        let nosuid_nodev = libc::MS_NOSUID | libc::MS_NODEV;
        // The upper layer and overlayfs's work directory live in a tmpfs mounted on `dst`
        // itself; the overlay then covers it (it keeps its own references).
        self.mount(
            "tmpfs",
            &dst,
            nosuid_nodev,
            Some("mode=755"),
            Stage::MountTmpfs,
        )?;
        for sub in ["upper", "work"] {
            let path = c(upper_base.join(sub))?;
            self.push(Op::Mkdir { path }, Stage::MountPoint);
        }
        let data = format!(
            "lowerdir={},upperdir={}/upper,workdir={}/work",
            lower.display(),
            upper_base.display(),
            upper_base.display()
        );
        self.mount("overlay", &dst, nosuid_nodev, Some(&data), Stage::MountBind)?;
        self.model.push(dst, Layer::Fresh);
        Ok(())
    }

    fn bind_fd(&mut self, fd: &OwnedFd, dst: &Path, readonly: bool) -> Result<()> {
        let dst = self.ours(dst, "bind_fd destination")?;
        let raw = fd.as_raw_fd();
        let bad = |reason: String| Error::BadMount {
            what: "bind_fd",
            path: dst.clone(),
            reason,
        };
        // The path the descriptor has now, as the host sees it; the child checks that what
        // it binds from there is the descriptor's own file.
        let src = self
            .host
            .fd_path(fd)
            .map_err(|e| bad(format!("descriptor {raw}: {e}")))?;
        let kind = self
            .host
            .kind(&src)
            .map_err(|e| bad(format!("descriptor {raw} names {}: {e}", src.display())))?;
        if !src.is_absolute() {
            return Err(bad(format!(
                "descriptor {raw} is not a file or directory ({})",
                src.display()
            )));
        }
        self.mount_point(&dst, kind == Kind::Dir, "bind_fd destination")?;
        let dup = self
            .host
            .dup_above(fd, self.min_fd)
            .map_err(|e| bad(format!("duplicating descriptor {raw}: {e}")))?;
        let slot = self.bind_host(&src, &dst, true, Stage::MountBind)?;
        // Right after its grab (grabs run first, in order).
        let check = Op::SameFile {
            slot,
            fd: dup.as_raw_fd(),
        };
        self.grabs.push(MountStep {
            op: check,
            stage: Stage::BindFd,
        });
        self.fds.push(dup);
        if readonly {
            self.readonly(&dst, true, Stage::MakeReadOnly)?;
        }
        self.model.push(dst, Layer::Host(src));
        Ok(())
    }
}

/// The mode of a parent directory that `dir` creates for a directory of mode `mode`
/// (bubblewrap's rule): the owner may always enter and change it; group and others may
/// read and enter it when `mode` grants them anything, nothing otherwise; no special bits.
/// So 0o1777 and 0o644 give 0o755, 0o710 gives 0o750, 0o600 gives 0o700.
pub(super) fn parent_mode(mode: u32) -> u32 {
    let class = |shift: u32| {
        if (mode >> shift) & 0o7 != 0 {
            0o5 << shift
        } else {
            0
        }
    };
    0o700 | class(3) | class(0)
}

/// A mode with bits beyond `0o7777` does not exist.
fn check_mode(dst: &Path, mode: u32, what: &'static str) -> Result<()> {
    if mode > 0o7777 {
        return Err(Error::BadMount {
            what,
            path: dst.to_path_buf(),
            reason: format!("mode {mode:o} has bits beyond 0o7777"),
        });
    }
    Ok(())
}

/// A tmpfs size of 0 is "no limit" to the kernel, the opposite of what `tmpfs_with` promises;
/// absurd sizes wrap around in the kernel; mode bits beyond 0o7777 do not exist.
fn check_tmpfs(dst: &Path, size: Option<u64>, mode: u32) -> Result<()> {
    let bad = |reason: String| Error::BadMount {
        what: "tmpfs",
        path: dst.to_path_buf(),
        reason,
    };
    match size {
        Some(0) => {
            return Err(bad(
                "a size of 0 would mean no limit to the kernel; use tmpfs() for a tmpfs without a limit of its own".into(),
            ))
        }
        Some(n) if n > MAX_TMPFS_SIZE => {
            return Err(bad(format!(
                "size {n} bytes is above the largest accepted, {MAX_TMPFS_SIZE} (the kernel's page arithmetic would wrap)"
            )))
        }
        _ => {}
    }
    if mode > 0o7777 {
        return Err(bad(format!("mode {mode:o} has bits beyond 0o7777")));
    }
    Ok(())
}

impl Compiler<'_> {
    /// Sets the `MOUNT_ATTR_*` bits `attrs` on the mount at `dst` (nothing for none).
    fn set_attrs(&mut self, dst: &Path, recursive: bool, attrs: u64) -> Result<()> {
        if attrs != 0 {
            let path = self.at(dst)?;
            let op = Op::SetAttr {
                path,
                recursive,
                attrs,
            };
            self.push(op, Stage::MountBind);
        }
        Ok(())
    }
}

/// `bind_with_flags`' and `remount_with_flags`' flags: whether they apply recursively
/// (`MS_REC`), and the `MOUNT_ATTR_*` bits of nosuid, nodev and noexec (`MS_RDONLY` is
/// each caller's own).
fn mount_flags(dst: &Path, flags: libc::c_ulong, what: &'static str) -> Result<(bool, u64)> {
    let known = libc::MS_REC | libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
    if flags & !known != 0 {
        return Err(Error::BadMount {
            what,
            path: dst.into(),
            reason: format!(
                "flags {:#x}: only MS_REC, MS_RDONLY, MS_NOSUID, MS_NODEV and MS_NOEXEC",
                flags & !known
            ),
        });
    }
    let attrs = [
        (libc::MS_NOSUID, libc::MOUNT_ATTR_NOSUID),
        (libc::MS_NODEV, libc::MOUNT_ATTR_NODEV),
        (libc::MS_NOEXEC, libc::MOUNT_ATTR_NOEXEC),
    ]
    .iter()
    .filter(|(ms, _)| flags & ms != 0)
    .fold(0u64, |a, &(_, attr)| a | attr);
    Ok((flags & libc::MS_REC != 0, attrs))
}
