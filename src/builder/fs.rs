//! File system settings of a container: the root filesystem, the mounts and the opt-outs
//! of the default `/dev` and `/sys`, as plain data, with the builder methods that set them.
//! `plan::fs` checks and compiles them; `child::fs` applies the result.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::builder::ContainerBuilder;
#[cfg(doc)]
use crate::Namespaces;

/// The file system configuration of a container (part of [`ContainerBuilder`]).
#[derive(Debug, Clone, Default)]
pub(crate) struct FsConfig {
    pub(crate) root: Option<PathBuf>,
    pub(crate) chroot: bool,
    pub(crate) ops: Vec<MountOp>,
    pub(crate) readonly_root: bool,
    /// [`root_propagation`](ContainerBuilder::root_propagation).
    pub(crate) root_propagation: RootPropagation,
    /// Opt-out of the fresh `/dev` (see [`ContainerBuilder::host_dev`]).
    pub(crate) host_dev: bool,
    /// Opt-out of the read-only `/sys` (see [`ContainerBuilder::writable_sys`]).
    pub(crate) writable_sys: bool,
}

/// The mount propagation of the container's root and every mount under it, set once
/// the container's file system is complete ([`ContainerBuilder::root_propagation`]).
///
/// Whatever the choice, nothing propagates between the container and the host: `/` is
/// made recursively private before anything is mounted, so the host's mounts have no
/// peers in the container (and [`Shared`](Self::Shared) makes a peer group of the
/// container's own).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RootPropagation {
    /// `MS_PRIVATE` (the default): a mount under one path shows nowhere else.
    #[default]
    Private,
    /// `MS_SHARED`, recursively: bind mounts of the container's directories made inside
    /// it are peers, so a later mount under one shows under the others (what a workload
    /// that nests mounts, e.g. a container engine, needs).
    Shared,
    /// `MS_UNBINDABLE`, recursively: the root cannot be bind-mounted elsewhere at all.
    Unbindable,
}

/// A node for [`ContainerBuilder::device_node`]: its type, numbers, mode and owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceNode {
    /// Character device, block device or FIFO.
    pub kind: NodeKind,
    /// Major device number (ignored for a FIFO).
    pub major: u32,
    /// Minor device number (ignored for a FIFO).
    pub minor: u32,
    /// Mode bits (`0o666`, ...; at most `0o7777`).
    pub mode: u32,
    /// Owner uid, as the container sees it (in a user namespace it must be mapped).
    pub uid: u32,
    /// Owner gid, likewise.
    pub gid: u32,
}

/// The type of a [`DeviceNode`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeKind {
    /// A character device (`S_IFCHR`).
    Char,
    /// A block device (`S_IFBLK`).
    Block,
    /// A named pipe (`S_IFIFO`).
    Fifo,
}

impl FsConfig {
    /// The root filesystem directory, if one is set (`rootfs` or `chroot`).
    pub(crate) fn root(&self) -> Option<&Path> {
        self.root.as_deref()
    }
}

#[derive(Debug, Clone)]
pub(crate) enum MountOp {
    Bind {
        src: PathBuf,
        dst: PathBuf,
        readonly: bool,
        /// `bind_with_flags`: `MS_*` flags (`MS_REC` for a recursive bind); `None` for
        /// `bind`/`bind_ro`: recursive, the source's other flags kept.
        flags: Option<libc::c_ulong>,
    },
    Tmpfs {
        dst: PathBuf,
        size: Option<u64>,
        mode: u32,
    },
    Proc {
        dst: PathBuf,
    },
    Dev,
    Mqueue,
    Sysfs,
    Dir {
        dst: PathBuf,
        mode: u32,
    },
    Symlink {
        target: PathBuf,
        dst: PathBuf,
    },
    File {
        dst: PathBuf,
        contents: Arc<[u8]>,
        mode: u32,
    },
    Chmod {
        dst: PathBuf,
        mode: u32,
    },
    Node {
        dst: PathBuf,
        node: DeviceNode,
    },
    RemountRo {
        dst: PathBuf,
    },
    /// `remount_with_flags`: `MS_*` flags set on the mount at `dst`.
    Remount {
        dst: PathBuf,
        flags: libc::c_ulong,
    },
    Overlay {
        lower: PathBuf,
        dst: PathBuf,
    },
    /// `bind_data`: a file with these contents, in a private tmpfs, bound onto `dst`.
    Data {
        dst: PathBuf,
        contents: DataSource,
        mode: u32,
        readonly: bool,
    },
    /// `bind_fd`: what an open descriptor names, bound onto `dst`.
    BindFd {
        fd: Arc<OwnedFd>,
        dst: PathBuf,
        readonly: bool,
    },
}

/// Where a [`ContainerBuilder::bind_data`] file's contents come from.
#[derive(Debug, Clone)]
pub(crate) enum DataSource {
    /// Copied when the builder method was called.
    Bytes(Arc<[u8]>),
    /// A regular file (or memfd) read from offset 0 at each spawn (`bind_data_fd`).
    Fd(Arc<OwnedFd>),
}

impl MountOp {
    /// The container path the operation acts on.
    pub(crate) fn dst(&self) -> &Path {
        match self {
            MountOp::Bind { dst, .. }
            | MountOp::Tmpfs { dst, .. }
            | MountOp::Proc { dst }
            | MountOp::Dir { dst, .. }
            | MountOp::Symlink { dst, .. }
            | MountOp::File { dst, .. }
            | MountOp::Chmod { dst, .. }
            | MountOp::Node { dst, .. }
            | MountOp::RemountRo { dst }
            | MountOp::Remount { dst, .. }
            | MountOp::Overlay { dst, .. }
            | MountOp::Data { dst, .. }
            | MountOp::BindFd { dst, .. } => dst,
            MountOp::Dev => Path::new("/dev"),
            MountOp::Mqueue => Path::new("/dev/mqueue"),
            MountOp::Sysfs => Path::new("/sys"),
        }
    }
}

/// The largest tmpfs size accepted: 2^62 bytes (4 EiB). The kernel parses the size into a
/// 64-bit count of bytes and rounds it up to pages; sizes near 2^64 wrap around to small or
/// zero limits, and far smaller ones are already beyond any machine.
pub const MAX_TMPFS_SIZE: u64 = 1 << 62;

/// Root filesystem and mount settings. Every one needs [`Namespaces::MOUNT`]. Mounts are
/// applied in the order given, after `/` was made recursively private (so nothing
/// propagates to the host) and before the root changes; destinations are paths *inside*
/// the container. Bind sources are always the *host's* paths: each is taken before any
/// mount is made, so a mount of ours over its path (the fresh `/dev`) does not change it.
///
/// Without a root filesystem, a container with [`Namespaces::MOUNT`] gets two defaults
/// before the mounts given here: a fresh minimal `/dev` (opt out with
/// [`host_dev`](ContainerBuilder::host_dev)) and a recursively read-only `/sys`
/// (opt out with [`writable_sys`](ContainerBuilder::writable_sys)). Without a mount
/// namespace neither can apply, and the host's `/dev` and `/sys` are visible.
///
/// ```no_run
/// # async fn demo() -> cellblock::Result<()> {
/// use cellblock::{Container, Namespaces};
/// // /srv/root holds empty directories usr, etc, proc, dev, tmp and the symlinks
/// // bin -> usr/bin, lib -> usr/lib, lib64 -> usr/lib64.
/// let status = Container::builder("/bin/sh")
///     .args(["-c", "ls /; touch /usr/x || echo read-only"])
///     .namespaces(Namespaces::MOUNT | Namespaces::PID)
///     .rootfs("/srv/root")
///     .bind_ro("/usr", "/usr")
///     .bind_ro("/etc", "/etc")
///     .tmpfs("/tmp")
///     .mount_dev()
///     .readonly_root(true)
///     .status()
///     .await?;
/// # Ok(()) }
/// ```
impl ContainerBuilder {
    /// Runs the container with `dir` as its root filesystem: `dir` is bind-mounted onto
    /// itself, the mounts are applied under it, then `pivot_root` makes it `/` and the old
    /// root is detached, so nothing outside `dir` stays reachable (not through `..`,
    /// symlinks, `/proc/1/root` or `/proc/self/cwd`). With [`Namespaces::PID`] a fresh
    /// `/proc` is mounted at `dir/proc` if that directory exists. The program and the
    /// working directory are looked up inside the new root. Needs [`Namespaces::MOUNT`], or
    /// a joined mount namespace (see [`join_path`](Self::join_path)).
    pub fn rootfs(&mut self, dir: impl Into<PathBuf>) -> &mut Self {
        self.fs.root = Some(dir.into());
        self.fs.chroot = false;
        self
    }

    /// Like [`rootfs`](Self::rootfs) but with `chroot` instead of `pivot_root`: a weaker
    /// fallback for file systems where `pivot_root` fails (e.g. an initramfs). The old root
    /// stays mounted in the container's mount namespace, and a process keeping
    /// `CAP_SYS_CHROOT` can escape a chroot; prefer `rootfs`.
    pub fn chroot(&mut self, dir: impl Into<PathBuf>) -> &mut Self {
        self.fs.root = Some(dir.into());
        self.fs.chroot = true;
        self
    }

    /// Bind-mounts host path `src` (recursively, with its submounts) at `dst` inside the
    /// container, writable. The bind keeps the source's mount flags: device nodes under it
    /// stay usable (binding one node, e.g. `/dev/fuse`, is how to hand a device in; see
    /// [`host_dev`](Self::host_dev)).
    pub fn bind(&mut self, src: impl Into<PathBuf>, dst: impl Into<PathBuf>) -> &mut Self {
        self.fs.ops.push(MountOp::Bind {
            src: src.into(),
            dst: dst.into(),
            readonly: false,
            flags: None,
        });
        self
    }

    /// Bind-mounts host path `src` recursively at `dst`, read-only (every submount too:
    /// writes fail with `EROFS`).
    pub fn bind_ro(&mut self, src: impl Into<PathBuf>, dst: impl Into<PathBuf>) -> &mut Self {
        self.fs.ops.push(MountOp::Bind {
            src: src.into(),
            dst: dst.into(),
            readonly: true,
            flags: None,
        });
        self
    }

    /// Bind-mounts host path `src` at `dst` with `mount(2)`-style `flags`, as an OCI
    /// runtime's bind mounts with options (`rbind`, `ro`, `nosuid`, `nodev`, `noexec`):
    /// `libc::MS_REC` binds the submounts too (recursively; without it only the mount at
    /// `src`), `MS_RDONLY`, `MS_NOSUID`, `MS_NODEV` and `MS_NOEXEC` are set on the bind
    /// (on every submount of a recursive one); the source's other flags are kept, and a
    /// flag the source has is never cleared. Any other bit is refused with
    /// [`Error::BadMount`](crate::Error::BadMount) before anything runs.
    ///
    /// ```no_run
    /// # async fn demo() -> cellblock::Result<()> {
    /// use cellblock::{Container, Namespaces};
    /// // /srv/data without its submounts, and nothing in it executable or setuid.
    /// let status = Container::builder("/bin/ls")
    ///     .arg("/data")
    ///     .namespaces(Namespaces::MOUNT)
    ///     .bind_with_flags("/srv/data", "/data", libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC)
    ///     .status()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn bind_with_flags(
        &mut self,
        src: impl Into<PathBuf>,
        dst: impl Into<PathBuf>,
        flags: libc::c_ulong,
    ) -> &mut Self {
        self.fs.ops.push(MountOp::Bind {
            src: src.into(),
            dst: dst.into(),
            readonly: flags & libc::MS_RDONLY != 0,
            flags: Some(flags),
        });
        self
    }

    /// Binds a file holding `contents`, with mode `mode`, onto `dst` (bubblewrap's
    /// `--bind-data`, with `--perms`; bubblewrap's default mode is 0600). Unlike
    /// [`file`](Self::file), `dst` may be anywhere a bind may go, the host's own file
    /// systems included (an existing *file* there, as for any file bind; inside a tmpfs of
    /// ours it is created): the file lives in a private tmpfs of its own and only a bind
    /// mount covers `dst`, so the host's file is not touched and the host never sees the
    /// data. The workload may change the contents (see [`bind_data_ro`](Self::bind_data_ro)),
    /// never the host's file. The contents are copied once, here.
    ///
    /// For data in a descriptor (bubblewrap's `--bind-data FD`), see
    /// [`bind_data_fd`](Self::bind_data_fd).
    ///
    /// The child makes the tmpfs with the new mount API (`fsopen`, `fsmount`) and clones
    /// the file's mount from it with `open_tree`, which kernels before the detached-mount
    /// changes of Linux 6.x refuse (`EINVAL`, reported as
    /// [`Stage::MountBind`](crate::Stage::MountBind)); seen working on 6.18. A mode above
    /// `0o7777` is refused with [`Error::BadMount`](crate::Error::BadMount).
    ///
    /// ```no_run
    /// # async fn demo() -> cellblock::Result<()> {
    /// use cellblock::{Container, Namespaces};
    /// // The workload sees its own /etc/resolv.conf; the host's is untouched.
    /// let out = Container::builder("/bin/cat")
    ///     .arg("/etc/resolv.conf")
    ///     .namespaces(Namespaces::MOUNT)
    ///     .bind_data_ro("/etc/resolv.conf", "nameserver 10.0.0.53\n", 0o644)
    ///     .output()
    ///     .await?;
    /// assert_eq!(out.stdout, b"nameserver 10.0.0.53\n");
    /// # Ok(()) }
    /// ```
    pub fn bind_data(
        &mut self,
        dst: impl Into<PathBuf>,
        contents: impl AsRef<[u8]>,
        mode: u32,
    ) -> &mut Self {
        self.push_data(dst.into(), contents.as_ref(), mode, false)
    }

    /// [`bind_data`](Self::bind_data), read-only (bubblewrap's `--ro-bind-data`): writes
    /// to `dst` fail with `EROFS`.
    pub fn bind_data_ro(
        &mut self,
        dst: impl Into<PathBuf>,
        contents: impl AsRef<[u8]>,
        mode: u32,
    ) -> &mut Self {
        self.push_data(dst.into(), contents.as_ref(), mode, true)
    }

    /// [`bind_data`](Self::bind_data) with the contents of descriptor `fd` (bubblewrap's
    /// `--bind-data FD`): a regular file or a memfd, read whole from offset 0 at each spawn
    /// (its own offset is not moved). A pipe or socket is refused with
    /// [`Error::BadMount`](crate::Error::BadMount) (read it into a buffer and use
    /// [`bind_data`](Self::bind_data): unlike bubblewrap's single run, a builder may spawn
    /// many times, and a pipe can be read only once).
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
    /// use cellblock::{Container, Namespaces};
    /// let passwd = std::fs::File::open("/srv/sandbox/passwd")?;
    /// Container::builder("/usr/bin/id")
    ///     .namespaces(Namespaces::MOUNT)
    ///     .bind_data_fd_ro("/etc/passwd", passwd, 0o644)
    ///     .status()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn bind_data_fd(
        &mut self,
        dst: impl Into<PathBuf>,
        fd: impl Into<OwnedFd>,
        mode: u32,
    ) -> &mut Self {
        self.push_data_source(dst.into(), DataSource::Fd(Arc::new(fd.into())), mode, false)
    }

    /// [`bind_data_fd`](Self::bind_data_fd), read-only (bubblewrap's `--ro-bind-data FD`).
    pub fn bind_data_fd_ro(
        &mut self,
        dst: impl Into<PathBuf>,
        fd: impl Into<OwnedFd>,
        mode: u32,
    ) -> &mut Self {
        self.push_data_source(dst.into(), DataSource::Fd(Arc::new(fd.into())), mode, true)
    }

    fn push_data(&mut self, dst: PathBuf, contents: &[u8], mode: u32, readonly: bool) -> &mut Self {
        self.push_data_source(dst, DataSource::Bytes(contents.into()), mode, readonly)
    }

    fn push_data_source(
        &mut self,
        dst: PathBuf,
        contents: DataSource,
        mode: u32,
        readonly: bool,
    ) -> &mut Self {
        self.fs.ops.push(MountOp::Data {
            dst,
            contents,
            mode,
            readonly,
        });
        self
    }

    /// Binds what descriptor `fd` names (a directory or file, typically opened with
    /// `O_PATH`) at `dst`, recursively and writable (bubblewrap's `--bind-fd`). The
    /// builder keeps `fd` for every spawn.
    ///
    /// A descriptor cannot be mounted directly across mount namespaces, so, like
    /// bubblewrap, cellblock binds the path the descriptor has now (`/proc/self/fd/N`) and
    /// then checks, in the child, that the mount it took is the descriptor's very file
    /// (device and inode): if the path was replaced in between, the spawn fails with
    /// [`Stage::BindFd`](crate::Stage::BindFd) (`ESTALE`) instead of binding something
    /// else. A descriptor whose file was deleted, or that is not open, is refused with
    /// [`Error::BadMount`](crate::Error::BadMount) before anything runs.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
    /// use cellblock::{Container, Namespaces};
    /// use std::os::unix::fs::OpenOptionsExt;
    /// let dir = std::fs::OpenOptions::new().read(true)
    ///     .custom_flags(libc::O_PATH | libc::O_DIRECTORY).open("/srv/data")?;
    /// let out = Container::builder("/bin/ls").arg("/tmp/data")
    ///     .namespaces(Namespaces::MOUNT)
    ///     .tmpfs("/tmp")
    ///     .bind_fd_ro(dir, "/tmp/data")
    ///     .output()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn bind_fd(&mut self, fd: impl Into<OwnedFd>, dst: impl Into<PathBuf>) -> &mut Self {
        self.push_bind_fd(fd.into(), dst.into(), false)
    }

    /// [`bind_fd`](Self::bind_fd), recursively read-only (bubblewrap's `--ro-bind-fd`).
    pub fn bind_fd_ro(&mut self, fd: impl Into<OwnedFd>, dst: impl Into<PathBuf>) -> &mut Self {
        self.push_bind_fd(fd.into(), dst.into(), true)
    }

    fn push_bind_fd(&mut self, fd: OwnedFd, dst: PathBuf, readonly: bool) -> &mut Self {
        self.fs.ops.push(MountOp::BindFd {
            fd: Arc::new(fd),
            dst,
            readonly,
        });
        self
    }

    /// Mounts an empty tmpfs at `dst` (mode 0755, no size limit beyond the kernel's
    /// default of half the RAM).
    pub fn tmpfs(&mut self, dst: impl Into<PathBuf>) -> &mut Self {
        self.fs.ops.push(MountOp::Tmpfs {
            dst: dst.into(),
            size: None,
            mode: 0o755,
        });
        self
    }

    /// Mounts an empty tmpfs at `dst` limited to `size_bytes` (rounded up to whole pages),
    /// with root directory mode `mode` (e.g. `0o1777` for a `/tmp`). A size of 0 (which the
    /// kernel would take as "no limit"), a size above [`MAX_TMPFS_SIZE`] and a mode above
    /// `0o7777` are refused with [`Error::BadMount`](crate::Error::BadMount) before anything
    /// runs.
    pub fn tmpfs_with(&mut self, dst: impl Into<PathBuf>, size_bytes: u64, mode: u32) -> &mut Self {
        self.fs.ops.push(MountOp::Tmpfs {
            dst: dst.into(),
            size: Some(size_bytes),
            mode,
        });
        self
    }

    /// Creates directory `dst` with mode `mode` (bubblewrap's `--perms MODE --dir DST`),
    /// and any missing parent with a mode derived from it as bubblewrap does (the owner's
    /// `rwx`; `r-x` for group and others where `mode` grants them anything: 0o750 parents
    /// for a 0o710 directory, 0o755 for 0o1777). `dst` must lie in a file system this
    /// container mounts itself (a [`tmpfs`](Self::tmpfs), the fresh `/dev`): the host's
    /// directories are never modified, so a `dst` on the host's own file systems (or the
    /// root filesystem's) is refused with [`Error::BadMount`](crate::Error::BadMount),
    /// unless it exists there already as a directory (then nothing is done, like bubblewrap,
    /// which keeps an existing directory's mode). A mode above `0o7777` is refused.
    ///
    /// ```no_run
    /// # async fn demo() -> cellblock::Result<()> {
    /// use cellblock::{Container, Namespaces};
    /// let out = Container::builder("/usr/bin/stat")
    ///     .args(["-c", "%a", "/tmp/a/b"])
    ///     .namespaces(Namespaces::MOUNT)
    ///     .tmpfs("/tmp")
    ///     .dir("/tmp/a/b", 0o1741)
    ///     .output()
    ///     .await?;
    /// assert_eq!(out.stdout, b"1741\n");
    /// # Ok(()) }
    /// ```
    pub fn dir(&mut self, dst: impl Into<PathBuf>, mode: u32) -> &mut Self {
        self.fs.ops.push(MountOp::Dir {
            dst: dst.into(),
            mode,
        });
        self
    }

    /// Creates a symbolic link `dst` pointing at `target` (bubblewrap's `--symlink`), in a
    /// file system this container mounts itself (see [`dir`](Self::dir); elsewhere it is
    /// refused). Later mounts and files whose destination goes through this link are
    /// placed where it points *inside the container*: the link is resolved by cellblock,
    /// never by the kernel before the root change, so it cannot aim a mount at the host.
    /// A target that leads out of the container's own file systems is then refused like
    /// any other destination there.
    pub fn symlink(&mut self, target: impl Into<PathBuf>, dst: impl Into<PathBuf>) -> &mut Self {
        self.fs.ops.push(MountOp::Symlink {
            target: target.into(),
            dst: dst.into(),
        });
        self
    }

    /// Creates file `dst` holding `contents`, with mode `mode` (bubblewrap's `--file` and
    /// `--perms`, with the data given as a buffer rather than a descriptor). `dst` must be
    /// a new file in a file system this container mounts itself (a [`tmpfs`](Self::tmpfs));
    /// missing parents are created with mode 0755. The contents are copied once, here; the
    /// child writes them from that buffer. On the host's file systems it is refused with
    /// [`Error::BadMount`](crate::Error::BadMount), as is a mode above `0o7777`.
    ///
    /// ```no_run
    /// # async fn demo() -> cellblock::Result<()> {
    /// use cellblock::{Container, Namespaces};
    /// let out = Container::builder("/bin/cat")
    ///     .arg("/tmp/conf/app.toml")
    ///     .namespaces(Namespaces::MOUNT)
    ///     .tmpfs("/tmp")
    ///     .file("/tmp/conf/app.toml", "answer = 42\n", 0o444)
    ///     .output()
    ///     .await?;
    /// assert_eq!(out.stdout, b"answer = 42\n");
    /// # Ok(()) }
    /// ```
    pub fn file(
        &mut self,
        dst: impl Into<PathBuf>,
        contents: impl AsRef<[u8]>,
        mode: u32,
    ) -> &mut Self {
        self.fs.ops.push(MountOp::File {
            dst: dst.into(),
            contents: contents.as_ref().into(),
            mode,
        });
        self
    }

    /// Creates a device node (or FIFO) `dst` with `mknod`, in a file system this container
    /// mounts itself (its `/dev`, a tmpfs; elsewhere refused with
    /// [`Error::BadMount`](crate::Error::BadMount)), with the node's exact mode (whatever
    /// the umask) and owner: the OCI `linux.devices` entries the host has no node for.
    ///
    /// Creating a device node needs `CAP_MKNOD` in the initial user namespace: in a user
    /// namespace the spawn fails ([`Stage::MountPoint`](crate::Stage::MountPoint), `EPERM`);
    /// bind the host's node there instead. Whether the workload may *open* the node is
    /// the device cgroup's business (and the library's `/dev` must not be `nodev`).
    ///
    /// ```
    /// use cellblock::{Container, DeviceNode, Namespaces, NodeKind};
    /// let mut b = Container::builder("/bin/sh");
    /// b.namespaces(Namespaces::MOUNT).rootfs("/srv/rootfs").device_node(
    ///     "/dev/fuse",
    ///     DeviceNode { kind: NodeKind::Char, major: 10, minor: 229, mode: 0o666, uid: 0, gid: 0 },
    /// );
    /// ```
    pub fn device_node(&mut self, dst: impl Into<PathBuf>, node: DeviceNode) -> &mut Self {
        self.fs.ops.push(MountOp::Node {
            dst: dst.into(),
            node,
        });
        self
    }

    /// Changes the mode of `dst` (bubblewrap's `--chmod`), which must lie in a file system
    /// this container mounts itself: the mode of a host file is never changed (refused
    /// with [`Error::BadMount`](crate::Error::BadMount)). A symlink is not followed.
    pub fn chmod(&mut self, dst: impl Into<PathBuf>, mode: u32) -> &mut Self {
        self.fs.ops.push(MountOp::Chmod {
            dst: dst.into(),
            mode,
        });
        self
    }

    /// Makes the mount at `dst` and every mount under it read-only in the container
    /// (bubblewrap's `--remount-ro`), at this point of the mount order. `dst` must be a
    /// mount point (one of ours, or one of the host's seen without a root filesystem);
    /// otherwise the child reports [`Stage::MakeReadOnly`](crate::Stage::MakeReadOnly)
    /// with `EINVAL`. Only the container's copy of the mount changes, never the host's.
    pub fn remount_ro(&mut self, dst: impl Into<PathBuf>) -> &mut Self {
        self.fs.ops.push(MountOp::RemountRo { dst: dst.into() });
        self
    }

    /// Sets `mount(2)`-style `flags` on the mount at `dst`, at this point of the mount
    /// order, as [`remount_ro`](Self::remount_ro) does for read-only: `MS_RDONLY`,
    /// `MS_NOSUID`, `MS_NODEV`, `MS_NOEXEC`, and `MS_REC` for every mount under it too.
    /// Flags the mount has already stay; only the container's copy changes. `dst` must be
    /// a mount point (otherwise the child reports
    /// [`Stage::MountBind`](crate::Stage::MountBind) with `EINVAL`); any other bit is
    /// refused with [`Error::BadMount`](crate::Error::BadMount) before anything runs.
    ///
    /// ```
    /// use cellblock::{Container, Namespaces};
    /// // A scratch tmpfs nothing can be executed from.
    /// Container::builder("/bin/true")
    ///     .namespaces(Namespaces::MOUNT)
    ///     .tmpfs("/scratch")
    ///     .remount_with_flags("/scratch", libc::MS_NOEXEC);
    /// ```
    pub fn remount_with_flags(
        &mut self,
        dst: impl Into<PathBuf>,
        flags: libc::c_ulong,
    ) -> &mut Self {
        self.fs.ops.push(MountOp::Remount {
            dst: dst.into(),
            flags,
        });
        self
    }

    /// Mounts an overlay at `dst`: host directory `lower` as its read-only lower layer and
    /// a fresh tmpfs as its writable upper layer (bubblewrap's `--overlay-src LOWER
    /// --tmp-overlay DST`). The container reads `lower` and may change what it sees there;
    /// every change lands in the tmpfs and vanishes with the container; `lower` itself is
    /// never written. Works inside the default user namespace (overlayfs is mountable there
    /// since Linux 5.11); there, a lower file owned by an id outside the container's map
    /// (the host's root, say) can be read but not changed: overlayfs cannot copy it up and
    /// the write fails with `EOVERFLOW`; new files and directories work. `lower` is resolved when the overlay is mounted, in the mount
    /// namespace as the earlier mounts left it (before the root changes: a host path).
    /// Paths with `,`, `:` or `\` (overlayfs's option separators) are refused with
    /// [`Error::BadMount`](crate::Error::BadMount).
    ///
    /// ```no_run
    /// # async fn demo() -> cellblock::Result<()> {
    /// use cellblock::{Container, Namespaces};
    /// // /etc as the workload sees it is writable; the host's /etc is unchanged.
    /// let status = Container::builder("/bin/sh")
    ///     .args(["-c", "echo 127.0.0.2 db >> /etc/hosts"])
    ///     .namespaces(Namespaces::MOUNT)
    ///     .overlay("/etc", "/etc")
    ///     .status()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn overlay(&mut self, lower: impl Into<PathBuf>, dst: impl Into<PathBuf>) -> &mut Self {
        self.fs.ops.push(MountOp::Overlay {
            lower: lower.into(),
            dst: dst.into(),
        });
        self
    }

    /// Mounts a fresh procfs at `/proc` (it shows the container's own PID namespace). With
    /// [`Namespaces::PID`] this happens by default; call it to control the order or to get
    /// one without a new PID namespace.
    pub fn mount_proc(&mut self) -> &mut Self {
        self.fs.ops.push(MountOp::Proc {
            dst: PathBuf::from("/proc"),
        });
        self
    }

    /// Builds a minimal `/dev` on a tmpfs (nosuid, nodev, noexec): `null`, `zero`, `full`,
    /// `random`, `urandom` and `tty` (bind mounts of the host's real nodes, which also
    /// works in a user namespace where `mknod` does not), a private `devpts` instance at
    /// `/dev/pts` with `/dev/ptmx -> pts/ptmx`, a private `/dev/shm`, and the `fd`,
    /// `stdin`, `stdout`, `stderr` and `core` links. Without a root filesystem this is the
    /// default (see [`host_dev`](Self::host_dev)); call it to place it in the mount order,
    /// or inside a [`rootfs`](Self::rootfs).
    ///
    /// **Read-only or writable.** A root supervisor makes this tree once per process and
    /// gives each container a clone of it (one `open_tree` and one `move_mount` instead of
    /// some twenty mount and file calls in the child): that tmpfs is shared by the clones,
    /// so it is read-only, and the workload cannot create files directly in `/dev`
    /// (`/dev/shm` and `/dev/pts` are its own and writable). Where a mount of yours lands
    /// under `/dev` (a [`bind`](Self::bind) of `/dev/fuse`, [`mount_mqueue`](Self::mount_mqueue),
    /// a [`dir`](Self::dir)), and under an unprivileged supervisor, the child builds the
    /// tree itself on a tmpfs of the container's own, writable by its root.
    pub fn mount_dev(&mut self) -> &mut Self {
        self.fs.ops.push(MountOp::Dev);
        self
    }

    /// Mounts the POSIX message queue file system at `/dev/mqueue`. Needs
    /// [`Namespaces::IPC`] (it shows the IPC namespace's queues).
    pub fn mount_mqueue(&mut self) -> &mut Self {
        self.fs.ops.push(MountOp::Mqueue);
        self
    }

    /// Mounts sysfs read-only at `/sys`. Where the kernel refuses a fresh sysfs (a user
    /// namespace without its own network namespace), the host's `/sys` is bound read-only
    /// instead.
    pub fn mount_sysfs(&mut self) -> &mut Self {
        self.fs.ops.push(MountOp::Sysfs);
        self
    }

    /// Opt-out of the fresh `/dev` (on by default): with `true` the container sees the
    /// host's own `/dev` (and `/dev/shm`).
    ///
    /// By default, whenever the container has [`Namespaces::MOUNT`] and no
    /// [`rootfs`](Self::rootfs)/[`chroot`](Self::chroot), cellblock builds the same minimal
    /// `/dev` as [`mount_dev`](Self::mount_dev) over the host's: a tmpfs (nosuid, nodev,
    /// noexec) holding only `null zero full random urandom tty` (the host's real nodes,
    /// bind-mounted), a new `devpts` instance at `pts` with `ptmx -> pts/ptmx`, a private
    /// `shm`, and the links `fd stdin stdout stderr core`. Every other mount cellblock
    /// makes is `nodev` as well (devpts aside, whose ptys are devices). Without a mount
    /// namespace nothing can be hidden: the host's `/dev` is then always visible.
    ///
    /// **Risk of `host_dev(true)`:** every node of the host's `/dev` is reachable again, and
    /// opening one needs no capability, only its file mode: a workload that is host uid 0
    /// (see [`host_root`](Self::host_root)) can write block devices (`/dev/sda`,
    /// `/dev/loop*`), the kernel log (`/dev/kmsg`), use `/dev/kvm` and `/dev/userfaultfd`,
    /// and it shares the host's `/dev/shm`: it can read other processes' POSIX shared
    /// memory and leave files there that outlive it. The host's ptys under `/dev/pts` are
    /// reachable too. An explicit [`mount_dev`](Self::mount_dev) still applies.
    ///
    /// ```no_run
    /// # async fn demo() -> cellblock::Result<()> {
    /// use cellblock::{Container, Namespaces};
    /// // A trusted tool that needs the host's /dev/fuse: bind that one node instead of
    /// // host_dev(true) where possible.
    /// let status = Container::builder("/usr/bin/ls")
    ///     .arg("/dev")
    ///     .namespaces(Namespaces::MOUNT | Namespaces::PID)
    ///     .bind("/dev/fuse", "/dev/fuse")
    ///     .status()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn host_dev(&mut self, host_dev: bool) -> &mut Self {
        self.fs.host_dev = host_dev;
        self
    }

    /// Opt-out of the read-only `/sys` (on by default): with `true` the host's sysfs and
    /// cgroupfs stay as writable as they are on the host.
    ///
    /// By default, whenever the container has [`Namespaces::MOUNT`] and no
    /// [`rootfs`](Self::rootfs)/[`chroot`](Self::chroot), the host's `/sys` and every mount
    /// under it (`/sys/fs/cgroup/*`, `/sys/kernel/*`, ...) are made read-only in the
    /// container's mount namespace (recursively, with `mount_setattr`), after the container
    /// joined its cgroup. Writes fail with `EROFS`. This also keeps the workload from
    /// writing its own cgroup: it cannot raise its limits or move itself out of them. A
    /// bind mount you add under `/sys` keeps its own setting. Without a mount namespace
    /// nothing can be made read-only: `/sys` is then the host's, as writable as the
    /// workload's identity allows.
    ///
    /// **Risk of `writable_sys(true)`:** a workload that is host uid 0 (see
    /// [`host_root`](Self::host_root)) writes root-owned sysfs attributes with no capability
    /// (taking host CPUs offline, changing memory management or RCU settings), and
    /// cgroupfs: it can move itself into a parent cgroup to escape its memory and pids
    /// limits, or change the limits and freezer of other containers.
    ///
    /// A container that supervises containers of its own with cgroup limits (nesting)
    /// needs a writable cgroupfs: rather than this opt-out, bind a cgroup directory
    /// delegated to it (one it may not use to raise its own limits: a child of its own
    /// cgroup) onto the same path with [`bind`](Self::bind); a bind keeps its own flags.
    pub fn writable_sys(&mut self, writable: bool) -> &mut Self {
        self.fs.writable_sys = writable;
        self
    }

    /// Makes the root filesystem's own mount read-only (mounts on top of it keep their
    /// own settings: a tmpfs `/tmp` stays writable). Needs [`rootfs`](Self::rootfs).
    pub fn readonly_root(&mut self, readonly: bool) -> &mut Self {
        self.fs.readonly_root = readonly;
        self
    }

    /// The propagation of the container's mounts, applied to `/` recursively once the
    /// root is in place (the OCI `linux.rootfsPropagation`); [`RootPropagation::Private`]
    /// by default. Needs [`rootfs`](Self::rootfs) (without it the spawn fails with
    /// [`Error::BadConfig`](crate::Error::BadConfig)). Nothing propagates to or from the
    /// host whatever the choice (see [`RootPropagation`]).
    ///
    /// ```
    /// use cellblock::{Container, Namespaces, RootPropagation};
    /// let mut b = Container::builder("/bin/sh");
    /// b.namespaces(Namespaces::MOUNT)
    ///     .rootfs("/srv/rootfs")
    ///     .root_propagation(RootPropagation::Shared);
    /// ```
    pub fn root_propagation(&mut self, p: RootPropagation) -> &mut Self {
        self.fs.root_propagation = p;
        self
    }
}
