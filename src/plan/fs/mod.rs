//! Root filesystems and mounts, in the parent: the configuration checked against the
//! namespaces, the defaults decided, the root filesystem checked, and the mount list
//! compiled into the steps the child runs (`child::fs`).
//!
//! - `mod.rs`: [`prepare`]; the pure decisions ([`wanted`]) apart from what reads the host;
//! - `model.rs`: the mount table the compiler builds, also used to look the program and
//!   working directory up (`plan::resolve`);
//! - `compile.rs`: the compiler and its primitives, which ask the host only through
//!   `host.rs`; `ops.rs`: each operation of the mount list compiled with them;
//! - `dev.rs`: the `/dev` template, the container's devpts instance, and the `/dev` steps.

use std::ffi::CString;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicI32;

use crate::builder::fs::{FsConfig, MountOp, RootPropagation};
use crate::child::fs::{FsSpec, MountStep};
use crate::error::{Error, Result};
use crate::plan::Ctx;
use crate::Namespaces;

mod compile;
mod dev;
mod host;
mod model;
mod ops;

pub(crate) use host::RealHost;
pub(crate) use model::{container_path, Layer, Model};

#[cfg(test)]
mod tests;

/// The compiled file system plan: the storage the child's [`FsSpec`] borrows, and the
/// mount table the program and working directory are looked up in.
pub(crate) struct PreparedFs {
    root: Option<CString>,
    chroot: bool,
    readonly_root: bool,
    /// `MS_SHARED` or `MS_UNBINDABLE` for `/` at the end, or 0 (private, as it is).
    root_propagation: libc::c_ulong,
    steps: Vec<MountStep>,
    /// Written by the child (detached mounts between grab and place; see `Op::Grab`).
    slots: Box<[AtomicI32]>,
    /// The mount table after every step; `None` when there is nothing to mount.
    model: Option<Model>,
    /// Descriptors the child compares its `bind_fd` mounts with (see `Op::SameFile`).
    _fds: Vec<OwnedFd>,
    /// The container's devpts instance, made here for its pty (see `dev::new_devpts`).
    devpts: Option<OwnedFd>,
    /// The container's `/dev`: a clone of the template, attached by the child.
    _dev_tree: Option<OwnedFd>,
    /// This concern mounts `/proc` itself (or leaves it alone): see [`Self::mounts_proc`].
    mounts_proc: bool,
}

impl PreparedFs {
    fn none(mounts_proc: bool) -> PreparedFs {
        PreparedFs {
            root: None,
            chroot: false,
            readonly_root: false,
            root_propagation: 0,
            steps: Vec::new(),
            slots: Box::new([]),
            model: None,
            _fds: Vec::new(),
            devpts: None,
            _dev_tree: None,
            mounts_proc,
        }
    }

    /// The child's view.
    pub(crate) fn spec(&self) -> FsSpec<'_> {
        FsSpec {
            root: self.root.as_deref(),
            chroot: self.chroot,
            steps: &self.steps,
            readonly_root: self.readonly_root,
            root_propagation: self.root_propagation,
            slots: &self.slots,
        }
    }

    /// The detached devpts instance that becomes the container's `/dev/pts`, if the parent
    /// made one: the container's pty is to be opened in it.
    pub(crate) fn devpts(&self) -> Option<BorrowedFd<'_>> {
        self.devpts.as_ref().map(|f| f.as_fd())
    }

    /// Whether the general "/proc for a new PID namespace" step must stay away: with a
    /// root filesystem /proc is mounted inside it, here; an explicit `mount_proc` is the
    /// caller's.
    pub(crate) fn mounts_proc(&self) -> bool {
        self.mounts_proc
    }

    /// The mount table inside the root filesystem, if there is one: the program and the
    /// working directory are paths in it.
    pub(crate) fn root_model(&self) -> Option<&Model> {
        self.model.as_ref().filter(|m| m.root.is_some())
    }
}

/// What the configuration asks for, decided from it and the [`Ctx`] alone.
#[derive(Debug, PartialEq, Eq)]
struct Wanted {
    /// The default fresh `/dev`.
    fresh_dev: bool,
    /// The default read-only `/sys`, if `/sys` is a mount of its own.
    readonly_sys: bool,
    /// A `/dev` is compiled (the default or `mount_dev`).
    builds_dev: bool,
    /// That `/dev` may be the read-only template: no mount of the caller's lands in it.
    dev_template: bool,
    /// A fresh `/proc` inside the root filesystem, if it has a `proc` directory.
    root_proc: bool,
    /// See [`PreparedFs::mounts_proc`].
    mounts_proc: bool,
}

/// Validates the file system settings against the namespaces and decides the defaults.
fn wanted(cfg: &FsConfig, ctx: &Ctx) -> Result<Wanted> {
    // A joined mount namespace only with a root filesystem (`Ctx::mounts_here`): mounts
    // without one would land among the other container's own.
    let mount_ns = ctx.mounts_here();
    let any = cfg.root.is_some() || !cfg.ops.is_empty();
    if any && !mount_ns {
        return Err(Error::NeedsNamespace {
            option: if cfg.root.is_some() {
                "rootfs/chroot"
            } else {
                "mounts (bind, tmpfs, mount_*)"
            },
            needs: Namespaces::MOUNT,
        });
    }
    if cfg.root_propagation != RootPropagation::Private && cfg.root.is_none() {
        return Err(Error::BadConfig(
            "root_propagation needs a root filesystem (rootfs or chroot)".into(),
        ));
    }
    if cfg.readonly_root && cfg.root.is_none() {
        return Err(Error::BadConfig(
            "readonly_root(true) needs a root filesystem (rootfs or chroot)".into(),
        ));
    }
    // A joined IPC namespace will do (joins come before mounts in the child): the mqueue
    // instance is the one of the IPC namespace the mount is made in.
    if cfg.ops.iter().any(|o| matches!(o, MountOp::Mqueue))
        && !ctx.namespaces.contains(Namespaces::IPC)
        && !ctx.joined.contains(Namespaces::IPC)
    {
        return Err(Error::NeedsNamespace {
            option: "mount_mqueue",
            needs: Namespaces::IPC,
        });
    }
    // The defaults need a mount namespace of our own, and no root filesystem (whose /dev
    // and /sys are the caller's business).
    let defaults = mount_ns && cfg.root.is_none() && !ctx.joined.contains(Namespaces::MOUNT);
    let explicit_dev = cfg.ops.iter().any(|o| matches!(o, MountOp::Dev));
    let fresh_dev = defaults && !cfg.host_dev && !explicit_dev;
    let builds_dev = fresh_dev || explicit_dev;
    let explicit_proc = cfg.ops.iter().any(|o| o.dst() == Path::new("/proc"));
    Ok(Wanted {
        fresh_dev,
        readonly_sys: defaults && !cfg.writable_sys,
        builds_dev,
        // The template's /dev is read-only: only where no mount of the caller's lands in it.
        dev_template: builds_dev
            && !cfg
                .ops
                .iter()
                .any(|o| !matches!(o, MountOp::Dev) && o.dst().starts_with("/dev")),
        // With a root filesystem and a new PID namespace, a fresh /proc inside the new root.
        root_proc: cfg.root.is_some() && ctx.namespaces.contains(Namespaces::PID) && !explicit_proc,
        mounts_proc: cfg.root.is_some()
            || cfg
                .ops
                .iter()
                .any(|op| matches!(op, MountOp::Proc { dst } if dst == Path::new("/proc"))),
    })
}

/// Checks the root filesystem and compiles the mounts. Nothing is changed on the host.
pub(crate) fn prepare(cfg: &FsConfig, ctx: &Ctx) -> Result<PreparedFs> {
    let wanted = wanted(cfg, ctx)?;
    // `mount_setattr` on a path that is not a mount root would be refused.
    let readonly_sys = wanted.readonly_sys && sys_is_a_mount();
    if cfg.root.is_none() && cfg.ops.is_empty() && !wanted.fresh_dev && !readonly_sys {
        return Ok(PreparedFs::none(wanted.mounts_proc));
    }
    let root = cfg.root.as_deref().map(check_root).transpose()?;
    // With a pty and a /dev of ours, the pty is made in the container's own devpts
    // instance (session.rs opens it there), so that inside, the terminal is a node of the
    // container's /dev/pts. Where the parent may not make one (an unprivileged supervisor:
    // fsopen needs CAP_SYS_ADMIN), the child mounts its own and the pty is the host's.
    let devpts = if wanted.builds_dev && ctx.pty {
        dev::new_devpts().ok()
    } else {
        None
    };
    let dev_tree = if wanted.dev_template {
        dev::clone_dev_template()
    } else {
        None
    };
    let raw = |fd: &Option<OwnedFd>| fd.as_ref().map(std::os::fd::AsRawFd::as_raw_fd);
    let input = compile::Input {
        root: root.clone(),
        readonly_sys,
        fresh_dev: wanted.fresh_dev,
        root_proc: wanted.root_proc,
        devpts: raw(&devpts),
        dev_tree: raw(&dev_tree),
        min_fd: ctx.min_setup_fd,
    };
    let compiled = compile::compile(&cfg.ops, input, &RealHost)?;
    let slots = (0..compiled.slots)
        .map(|_| AtomicI32::new(-1))
        .collect::<Box<[_]>>();
    for &(slot, fd) in &compiled.prefilled {
        slots[slot].store(fd, std::sync::atomic::Ordering::Relaxed);
    }
    let root_c = root
        .as_ref()
        .map(|r| {
            CString::new(r.as_os_str().as_bytes()).map_err(|_| Error::NulByte {
                what: "the root filesystem path".into(),
                value: r.to_string_lossy().into_owned(),
            })
        })
        .transpose()?;
    Ok(PreparedFs {
        root: root_c,
        chroot: cfg.chroot,
        readonly_root: cfg.readonly_root,
        root_propagation: match cfg.root_propagation {
            RootPropagation::Private => 0,
            RootPropagation::Shared => libc::MS_SHARED,
            RootPropagation::Unbindable => libc::MS_UNBINDABLE,
        },
        steps: compiled.steps,
        slots,
        model: Some(compiled.model),
        _fds: compiled.fds,
        // Not placed (no /dev compiled after all): no pty in it either.
        devpts: devpts.filter(|_| compiled.devpts_used),
        _dev_tree: dev_tree,
        mounts_proc: wanted.mounts_proc,
    })
}

/// Whether the host's `/sys` is a mount of its own (another device than `/`).
fn sys_is_a_mount() -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata("/sys"), std::fs::metadata("/")) {
        (Ok(sys), Ok(root)) => sys.dev() != root.dev(),
        _ => false,
    }
}

/// The root filesystem, canonical: once per spawn; everything after uses this path.
fn check_root(r: &Path) -> Result<PathBuf> {
    let bad = |reason: String| Error::BadMount {
        what: "rootfs",
        path: r.into(),
        reason,
    };
    let canon = std::fs::canonicalize(r).map_err(|e| bad(e.to_string()))?;
    if !canon.is_dir() {
        return Err(bad("not a directory".into()));
    }
    if canon == Path::new("/") {
        return Err(bad(
            "the host's own root cannot be the container's root filesystem".into(),
        ));
    }
    Ok(canon)
}
