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
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::host::{Host, Kind};
use super::model::{container_path, Layer, Model};
use crate::builder::fs::MountOp;
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

pub(super) struct Compiler<'h> {
    pub(super) model: Model,
    pub(super) host: &'h dyn Host,
    pub(super) steps: Vec<MountStep>,
    /// `Op::Grab` steps (and their `Op::SameFile` checks): they run before every step of
    /// `steps`.
    pub(super) grabs: Vec<MountStep>,
    /// Slots the parent fills itself: (slot, descriptor).
    pub(super) prefilled: Vec<(usize, libc::c_int)>,
    /// See [`Input::devpts`]; taken by the first `/dev` compiled.
    pub(super) devpts: Option<libc::c_int>,
    /// See [`Input::dev_tree`]; taken by the first `/dev` compiled.
    pub(super) dev_tree: Option<libc::c_int>,
    pub(super) fds: Vec<OwnedFd>,
    pub(super) min_fd: libc::c_int,
    /// Slots handed out so far.
    pub(super) slots: usize,
}

/// A C string of a mount path or option.
pub(super) fn c(s: impl AsRef<OsStr>) -> Result<CString> {
    let s = s.as_ref();
    CString::new(s.as_bytes()).map_err(|_| Error::NulByte {
        what: "a mount path or option".into(),
        value: s.to_string_lossy().into_owned(),
    })
}

impl Compiler<'_> {
    pub(super) fn push(&mut self, op: Op, stage: Stage) {
        self.steps.push(MountStep { op, stage });
    }

    /// The C string of container path `p` as the child uses it, before the root change.
    pub(super) fn at(&self, p: &Path) -> Result<CString> {
        c(self.model.pre_pivot(p))
    }

    /// A new slot number.
    pub(super) fn slot(&mut self) -> usize {
        self.slots += 1;
        self.slots - 1
    }

    /// Makes sure container path `dst` can be mounted on, as a directory (`dir`) or a file.
    /// Creates it (and missing parents) only inside a fresh file system of ours.
    pub(super) fn mount_point(&mut self, dst: &Path, dir: bool, what: &'static str) -> Result<()> {
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
    pub(super) fn ours(&self, dst: &Path, what: &'static str) -> Result<PathBuf> {
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
    pub(super) fn fresh_parent(&mut self, dst: &Path, what: &'static str) -> Result<()> {
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

    pub(super) fn mount(
        &mut self,
        fstype: &str,
        dst: &Path,
        flags: libc::c_ulong,
        data: Option<&str>,
        stage: Stage,
    ) -> Result<()> {
        self.mount_from(fstype, fstype, dst, flags, data, stage)
    }

    /// [`mount`](Self::mount) with a source name of its own (what mountinfo shows).
    pub(super) fn mount_from(
        &mut self,
        src: &str,
        fstype: &str,
        dst: &Path,
        flags: libc::c_ulong,
        data: Option<&str>,
        stage: Stage,
    ) -> Result<()> {
        let op = Op::Mount {
            src: c(src)?,
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
    pub(super) fn bind_host(
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
    pub(super) fn place_prefilled(&mut self, fd: libc::c_int, dst: &Path) -> Result<()> {
        let slot = self.slot();
        self.prefilled.push((slot, fd));
        let path = self.at(dst)?;
        self.push(Op::Place { path, slot }, Stage::MountDev);
        Ok(())
    }

    pub(super) fn readonly(&mut self, dst: &Path, recursive: bool, stage: Stage) -> Result<()> {
        let path = self.at(dst)?;
        self.push(Op::ReadOnly { path, recursive }, stage);
        Ok(())
    }

    /// Mounts a fresh kernel file system `fstype` (proc, mqueue, sysfs) at directory `dst`,
    /// nosuid, nodev, noexec and `extra_flags`; nothing can be checked inside it afterwards.
    pub(super) fn kernel_fs(
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
}
