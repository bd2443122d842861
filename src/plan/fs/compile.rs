//! The compiler: the mount list (with the defaults) into the flat list of primitive steps
//! the child runs (`child::fs`), checked against the [`Model`] it builds on the way.
//!
//! Every path the child uses is built here, absolute and *before* the root change
//! (`<rootfs>/<dst>`). Every source and mount point is checked here too, so a missing
//! bind source or mount point is a typed error before anything is cloned. The child
//! creates mount points, directories, files and links (`dir`, `file`, `symlink`) and
//! changes modes (`chmod`) only inside file systems it mounted itself (a tmpfs, an overlay's
//! upper layer, the `/dev` tmpfs): the host's directories are never modified. Links made by
//! `symlink` are resolved here, so every path the child gets is free of them: the kernel
//! never follows one of ours before the root change.
//!
//! Bind sources are taken (`Op::Grab`) before the first mount and attached in order
//! (`Op::Place`), so a source is the host's object even where a mount of ours covers its
//! path by then: the default fresh `/dev` covers the host nodes it binds.
//!
//! The checks resolve symlinks the way the kernel will, and refuse a mount point that a
//! symlink leads out of the root filesystem (or out of the bind source it lies in): the
//! mounts are made before the root changes, so such a link would aim them at host paths of
//! the container's private mount namespace. The root filesystem is trusted not to be
//! changed by someone else between these checks and the clone.

use std::ffi::{CString, OsStr};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::dev::{DEV_LINKS, DEV_NODES};
use super::host::{Host, Kind};
use super::model::{container_path, Layer, Model};
use crate::builder::fs::{MountOp, MAX_TMPFS_SIZE};
use crate::child::fs::{MountStep, Op};
use crate::error::{Error, Result, Stage};

/// What the compiler starts from besides the mount list.
pub(crate) struct Input {
    /// The root filesystem, canonical, if any.
    pub(crate) root: Option<PathBuf>,
    /// The default read-only `/sys` applies.
    pub(crate) readonly_sys: bool,
    /// The default fresh `/dev` applies.
    pub(crate) fresh_dev: bool,
    /// A fresh `/proc` inside the root filesystem (a new PID namespace, no explicit one),
    /// if it has a `proc` directory.
    pub(crate) root_proc: bool,
    /// A detached devpts instance the parent made (see `dev::new_devpts`), to become the
    /// first `/dev/pts`.
    pub(crate) devpts: Option<libc::c_int>,
    /// A clone of the `/dev` template (see `dev::dev_template`), to become the first `/dev`.
    pub(crate) dev_tree: Option<libc::c_int>,
    /// The lowest descriptor number the `bind_fd` duplicates may take.
    pub(crate) min_fd: libc::c_int,
}

/// The compiler's output.
pub(crate) struct Compiled {
    /// The mount table after every step: where the program and cwd are looked up.
    pub(crate) model: Model,
    /// Every grab first (see `Op::Grab`), then the other steps in order.
    pub(crate) steps: Vec<MountStep>,
    /// Slots the child needs; those the parent fills are in `prefilled`.
    pub(crate) slots: usize,
    /// Slots the parent fills itself: (slot, descriptor).
    pub(crate) prefilled: Vec<(usize, libc::c_int)>,
    /// Whether the parent's devpts instance was placed (a `/dev` was compiled).
    pub(crate) devpts_used: bool,
    /// Duplicates of the `bind_fd` descriptors the child compares its mounts with.
    pub(crate) fds: Vec<OwnedFd>,
}

/// Compiles the defaults of `input` and then `ops`, in order.
pub(crate) fn compile(ops: &[MountOp], input: Input, host: &dyn Host) -> Result<Compiled> {
    let mut comp = Compiler {
        model: Model::new(input.root),
        host,
        steps: Vec::new(),
        grabs: Vec::new(),
        prefilled: Vec::new(),
        devpts: input.devpts,
        dev_tree: input.dev_tree,
        fds: Vec::new(),
        min_fd: input.min_fd,
        slots: 0,
    };
    // The defaults without a root filesystem come first, so that the user's mounts land
    // on top of them (a bind onto /dev/fuse goes into the fresh /dev, a bind under /sys
    // keeps its own flags). The cgroup was joined before any of this (child/mod.rs).
    if input.readonly_sys {
        comp.readonly(Path::new("/sys"), true, Stage::MakeReadOnly)?;
    }
    if input.fresh_dev {
        comp.compile(&MountOp::Dev)?;
    }
    let proc_dir = comp.model.pre_pivot(Path::new("/proc"));
    if input.root_proc && matches!(host.kind(&proc_dir), Ok(Kind::Dir)) {
        comp.compile(&MountOp::Proc {
            dst: PathBuf::from("/proc"),
        })?;
    }
    for op in ops {
        comp.compile(op)?;
    }
    let slots = comp.slots;
    let devpts_used = input.devpts.is_some() && comp.devpts.is_none();
    Ok(Compiled {
        model: comp.model,
        steps: comp.grabs.into_iter().chain(comp.steps).collect(),
        slots,
        prefilled: comp.prefilled,
        devpts_used,
        fds: comp.fds,
    })
}

struct Compiler<'h> {
    model: Model,
    host: &'h dyn Host,
    steps: Vec<MountStep>,
    /// `Op::Grab` steps (and their `Op::SameFile` checks): they run before every step of
    /// `steps`.
    grabs: Vec<MountStep>,
    /// Slots the parent fills itself: (slot, descriptor).
    prefilled: Vec<(usize, libc::c_int)>,
    /// See [`Input::devpts`]; taken by the first `/dev` compiled.
    devpts: Option<libc::c_int>,
    /// See [`Input::dev_tree`]; taken by the first `/dev` compiled.
    dev_tree: Option<libc::c_int>,
    fds: Vec<OwnedFd>,
    min_fd: libc::c_int,
    /// Slots handed out so far.
    slots: usize,
}

/// A C string of a mount path or option.
fn c(s: impl AsRef<OsStr>) -> Result<CString> {
    let s = s.as_ref();
    CString::new(s.as_bytes()).map_err(|_| Error::NulByte {
        what: "a mount path or option".into(),
        value: s.to_string_lossy().into_owned(),
    })
}

impl Compiler<'_> {
    fn push(&mut self, op: Op, stage: Stage) {
        self.steps.push(MountStep { op, stage });
    }

    /// The C string of container path `p` as the child uses it, before the root change.
    fn at(&self, p: &Path) -> Result<CString> {
        c(self.model.pre_pivot(p))
    }

    /// A new slot number.
    fn slot(&mut self) -> usize {
        self.slots += 1;
        self.slots - 1
    }

    /// Makes sure container path `dst` can be mounted on, as a directory (`dir`) or a file.
    /// Creates it (and missing parents) only inside a fresh file system of ours.
    fn mount_point(&mut self, dst: &Path, dir: bool, what: &'static str) -> Result<()> {
        match self.model.view(dst) {
            Layer::Host(host) => match self.host.kind(&host) {
                // The kernel resolves the mount point on the host, before the root changes:
                // a symlink in the root filesystem (`dev -> /dev`, `x -> ../../etc`) would
                // put the mount on a host path instead. Refuse anything that leaves its base.
                Ok(_) if !self.contained(dst, &host) => Err(Error::BadMount {
                    what,
                    path: dst.into(),
                    reason: format!(
                        "{} resolves outside the root filesystem or bind source (through a symlink)",
                        host.display()
                    ),
                }),
                Ok(kind) if (kind == Kind::Dir) == dir => Ok(()),
                Ok(_) => Err(Error::BadMount {
                    what,
                    path: dst.into(),
                    reason: format!(
                        "{} is {} but the source is {}",
                        host.display(),
                        if dir { "not a directory" } else { "a directory" },
                        if dir { "a directory" } else { "not a directory" }
                    ),
                }),
                Err(e) => Err(Error::BadMount {
                    what,
                    path: dst.into(),
                    reason: format!(
                        "mount point {} does not exist ({e}); create it in the root filesystem first",
                        host.display()
                    ),
                }),
            },
            Layer::Kernel => Err(Error::BadMount {
                what,
                path: dst.into(),
                reason: "is inside a kernel file system (proc, sysfs, mqueue)".into(),
            }),
            Layer::Fresh => {
                // Create missing parents first (each is inside the same fresh fs or exists).
                if let Some(parent) = dst.parent() {
                    if parent != Path::new("/") && self.model.view(parent) == Layer::Fresh {
                        self.mount_point(parent, true, what)?;
                    }
                }
                let path = self.at(dst)?;
                let op = if dir {
                    Op::Mkdir { path }
                } else {
                    Op::Touch { path }
                };
                self.push(op, Stage::MountPoint);
                Ok(())
            }
        }
    }

    /// A destination checked and normalised, with the links this container made resolved.
    fn ours(&self, dst: &Path, what: &'static str) -> Result<PathBuf> {
        let dst = container_path(dst, what)?;
        self.model
            .resolve_ours(&dst)
            .ok_or_else(|| Error::BadMount {
                what,
                path: dst.clone(),
                reason: "too many levels of symbolic links (of this container's own)".into(),
            })
    }

    /// Checks that `dst` lies in a file system this container mounts itself, and creates
    /// its missing parents there: a new entry is never made on the host.
    fn fresh_parent(&mut self, dst: &Path, what: &'static str) -> Result<()> {
        if self.model.view(dst) != Layer::Fresh {
            return Err(Error::BadMount {
                what,
                path: dst.into(),
                reason: "is not in a file system this container mounts itself (a tmpfs): nothing is ever created on the host's file systems".into(),
            });
        }
        match dst.parent() {
            Some(parent) if parent != Path::new("/") => self.mount_point(parent, true, what),
            _ => Ok(()),
        }
    }

    fn contained(&self, dst: &Path, host: &Path) -> bool {
        let Some(base) = self.model.host_base(dst) else {
            return true;
        };
        // The root filesystem is canonical already; a bind source may not be.
        let base = if Some(base) == self.model.root.as_deref() {
            Ok(base.to_path_buf())
        } else {
            self.host.canonicalize(base)
        };
        match (self.host.canonicalize(host), base) {
            (Ok(h), Ok(b)) => h.starts_with(b),
            _ => false,
        }
    }

    fn mount(
        &mut self,
        fstype: &str,
        dst: &Path,
        flags: libc::c_ulong,
        data: Option<&str>,
        stage: Stage,
    ) -> Result<()> {
        let op = Op::Mount {
            src: c(fstype)?,
            path: self.at(dst)?,
            fstype: c(fstype)?,
            flags,
            data: data.map(c).transpose()?,
            fallback_bind: None,
        };
        self.push(op, stage);
        Ok(())
    }

    /// Binds host path `src` onto container path `dst` (its mount point ready): the source
    /// is taken (`Op::Grab`) before anything is mounted, so it is the host's object even
    /// where a mount of ours covers its path by then (`/dev/null` under the fresh `/dev`);
    /// it is attached (`Op::Place`) here, in order.
    /// Returns the slot the source is kept in.
    fn bind_host(
        &mut self,
        src: &Path,
        dst: &Path,
        recursive: bool,
        stage: Stage,
    ) -> Result<usize> {
        let slot = self.slot();
        let grab = Op::Grab {
            src: c(src)?,
            recursive,
            slot,
        };
        self.grabs.push(MountStep { op: grab, stage });
        let path = self.at(dst)?;
        self.push(Op::Place { path, slot }, stage);
        Ok(slot)
    }

    /// Attaches the detached mount `fd` the parent made at `dst`.
    fn place_prefilled(&mut self, fd: libc::c_int, dst: &Path) -> Result<()> {
        let slot = self.slot();
        self.prefilled.push((slot, fd));
        let path = self.at(dst)?;
        self.push(Op::Place { path, slot }, Stage::MountDev);
        Ok(())
    }

    fn readonly(&mut self, dst: &Path, recursive: bool, stage: Stage) -> Result<()> {
        let path = self.at(dst)?;
        self.push(Op::ReadOnly { path, recursive }, stage);
        Ok(())
    }

    /// Mounts a fresh kernel file system `fstype` (proc, mqueue, sysfs) at directory `dst`,
    /// nosuid, nodev, noexec and `extra_flags`; nothing can be checked inside it afterwards.
    fn kernel_fs(
        &mut self,
        fstype: &str,
        dst: PathBuf,
        extra_flags: libc::c_ulong,
        stage: Stage,
        what: &'static str,
    ) -> Result<()> {
        self.mount_point(&dst, true, what)?;
        let flags = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC | extra_flags;
        self.mount(fstype, &dst, flags, None, stage)?;
        self.model.push(dst, Layer::Kernel);
        Ok(())
    }

    fn compile(&mut self, op: &MountOp) -> Result<()> {
        let nosuid_nodev = libc::MS_NOSUID | libc::MS_NODEV;
        match op {
            MountOp::Bind { src, dst, readonly } => {
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
                self.bind_host(&src, &dst, true, Stage::MountBind)?;
                if *readonly {
                    self.readonly(&dst, true, Stage::MakeReadOnly)?;
                }
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

    /// The minimal `/dev`: the parent's clone of the template, or built by the child.
    fn dev(&mut self) -> Result<()> {
        let dev = PathBuf::from("/dev");
        self.mount_point(&dev, true, "/dev")?;
        let template = self.dev_tree.take();
        if let Some(fd) = template {
            self.place_prefilled(fd, &dev)?;
            // Read-only: nothing can be created in it (prepare takes the template only when
            // no mount of the caller's lands under /dev).
            self.model.push(dev.clone(), Layer::Kernel);
        } else {
            // nodev as well: the nodes below are bind mounts with their own flags, and
            // nothing created in this tmpfs itself may act as a device.
            let flags = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
            self.mount(
                "tmpfs",
                &dev,
                flags,
                Some("mode=755,size=65536"),
                Stage::MountDev,
            )?;
            self.model.push(dev.clone(), Layer::Fresh);
            for node in DEV_NODES {
                let host = Path::new("/dev").join(node);
                if self.host.kind(&host).is_err() {
                    continue; // a host without it; nothing to bind
                }
                let inside = dev.join(node);
                self.mount_point(&inside, false, "/dev")?;
                // The host's real node (mknod is refused in a user namespace; a bind of a
                // host node works there), taken before this tmpfs covers it.
                self.bind_host(&host, &inside, false, Stage::MountDev)?;
            }
        }
        let built = template.is_none();
        let pts = dev.join("pts");
        if built {
            self.mount_point(&pts, true, "/dev")?;
        }
        // A private devpts instance: ptys of the container are not the host's. Not nodev:
        // its ptys are devices.
        if let Some(fd) = self.devpts.take() {
            // The instance the parent made and opened the container's pty in.
            self.place_prefilled(fd, &pts)?;
        } else {
            self.mount(
                "devpts",
                &pts,
                libc::MS_NOSUID | libc::MS_NOEXEC,
                Some("newinstance,ptmxmode=0666,mode=0620"),
                Stage::MountDev,
            )?;
        }
        self.model.push(pts, Layer::Kernel);
        if built {
            for (link, target) in DEV_LINKS {
                let op = Op::Symlink {
                    target: c(target)?,
                    path: self.at(&dev.join(link))?,
                };
                self.push(op, Stage::MountDev);
            }
        }
        // A private /dev/shm: the IPC namespace does not cover POSIX shm, which lives in
        // whatever tmpfs /dev/shm is.
        let shm = dev.join("shm");
        if built {
            self.mount_point(&shm, true, "/dev")?;
        }
        let flags = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
        self.mount("tmpfs", &shm, flags, Some("mode=1777"), Stage::MountDev)?;
        self.model.push(shm, Layer::Fresh);
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
