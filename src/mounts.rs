//! Root filesystems and mounts: the configuration, and its compilation (in the parent)
//! into the flat list of primitive steps the child runs (`child/mounts.rs`).
//!
//! Every path the child uses is built here, absolute and *before* the root change
//! (`<rootfs>/<dst>`). Every source and mount point is checked here too, so a missing
//! rootfs, bind source or mount point is a typed error before anything is cloned. The
//! child creates mount points, directories, files and links (`dir`, `file`, `symlink`) and
//! changes modes (`chmod`) only inside file systems it mounted itself (a tmpfs, an overlay's
//! upper layer, the `/dev` tmpfs): the host's directories are never modified. Links made by
//! `symlink` are resolved here, so every path the child gets is free of them: the kernel
//! never follows one of ours before the root change.
//!
//! Bind sources are taken (`open_tree`) before the first mount and attached in order
//! (`move_mount`), so a source is the host's object even where a mount of ours covers its
//! path by then: the default fresh `/dev` covers the host nodes it binds.
//!
//! The checks resolve symlinks the way the kernel will, and refuse a mount point that a
//! symlink leads out of the root filesystem (or out of the bind source it lies in): the
//! mounts are made before the root changes, so such a link would aim them at host paths of
//! the container's private mount namespace. The root filesystem is trusted not to be
//! changed by someone else between these checks and the clone.

use std::ffi::{CString, OsStr, OsString};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::ptr;

use crate::builder::ContainerBuilder;
use crate::child::mounts::{FsSpec, MountStep, Op};
use crate::error::{Error, Result, Stage};
use crate::Namespaces;

/// The file system configuration of a container (part of [`ContainerBuilder`]).
#[derive(Debug, Clone, Default)]
pub(crate) struct FsConfig {
    root: Option<PathBuf>,
    chroot: bool,
    ops: Vec<MountOp>,
    readonly_root: bool,
    /// Opt-out of the fresh `/dev` (see [`ContainerBuilder::host_dev`]).
    host_dev: bool,
    /// Opt-out of the read-only `/sys` (see [`ContainerBuilder::writable_sys`]).
    writable_sys: bool,
}

impl FsConfig {
    /// The root filesystem directory, if one is set (`rootfs` or `chroot`).
    pub(crate) fn root(&self) -> Option<&Path> {
        self.root.as_deref()
    }
}

#[derive(Debug, Clone)]
enum MountOp {
    Bind {
        src: PathBuf,
        dst: PathBuf,
        readonly: bool,
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
        contents: std::sync::Arc<[u8]>,
        mode: u32,
    },
    Chmod {
        dst: PathBuf,
        mode: u32,
    },
    RemountRo {
        dst: PathBuf,
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
        fd: std::sync::Arc<OwnedFd>,
        dst: PathBuf,
        readonly: bool,
    },
}

/// Where a [`ContainerBuilder::bind_data`] file's contents come from.
#[derive(Debug, Clone)]
enum DataSource {
    /// Copied when the builder method was called.
    Bytes(std::sync::Arc<[u8]>),
    /// A regular file (or memfd) read from offset 0 at each spawn (`bind_data_fd`).
    Fd(std::sync::Arc<OwnedFd>),
}

impl DataSource {
    /// The contents for one spawn. A descriptor must be a regular file: it is read with
    /// `pread` from offset 0, so every spawn of the builder gets the whole file and the
    /// descriptor's own offset is left alone; a pipe or socket (which could be read once,
    /// and would block) is refused.
    fn contents(&self, dst: &Path) -> Result<std::sync::Arc<[u8]>> {
        use std::os::unix::fs::FileExt;
        let fd = match self {
            DataSource::Bytes(b) => return Ok(b.clone()),
            DataSource::Fd(fd) => fd,
        };
        let bad = |reason: String| Error::BadMount {
            what: "bind_data_fd",
            path: dst.to_path_buf(),
            reason,
        };
        let raw = fd.as_raw_fd();
        let file = std::fs::File::from(
            fd.try_clone()
                .map_err(|e| bad(format!("descriptor {raw}: {e}")))?,
        );
        let meta = file
            .metadata()
            .map_err(|e| bad(format!("descriptor {raw}: {e}")))?;
        if !meta.file_type().is_file() {
            return Err(bad(format!(
                "descriptor {raw} is not a regular file (a pipe or socket can be read only once): read it into a buffer and use bind_data"
            )));
        }
        let mut buf = vec![0u8; meta.len() as usize];
        let mut done = 0;
        while done < buf.len() {
            match file.read_at(&mut buf[done..], done as u64) {
                Ok(0) => break, // shrunk meanwhile
                Ok(n) => done += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(bad(format!("reading descriptor {raw}: {e}"))),
            }
        }
        buf.truncate(done);
        Ok(buf.into())
    }
}

impl MountOp {
    fn dst(&self) -> &Path {
        match self {
            MountOp::Bind { dst, .. }
            | MountOp::Tmpfs { dst, .. }
            | MountOp::Proc { dst }
            | MountOp::Dir { dst, .. }
            | MountOp::Symlink { dst, .. }
            | MountOp::File { dst, .. }
            | MountOp::Chmod { dst, .. }
            | MountOp::RemountRo { dst }
            | MountOp::Overlay { dst, .. }
            | MountOp::Data { dst, .. }
            | MountOp::BindFd { dst, .. } => dst,
            MountOp::Dev => Path::new("/dev"),
            MountOp::Mqueue => Path::new("/dev/mqueue"),
            MountOp::Sysfs => Path::new("/sys"),
        }
    }
}

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
    /// working directory are looked up inside the new root. Needs [`Namespaces::MOUNT`].
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
        self.push_data_source(
            dst.into(),
            DataSource::Fd(std::sync::Arc::new(fd.into())),
            mode,
            false,
        )
    }

    /// [`bind_data_fd`](Self::bind_data_fd), read-only (bubblewrap's `--ro-bind-data FD`).
    pub fn bind_data_fd_ro(
        &mut self,
        dst: impl Into<PathBuf>,
        fd: impl Into<OwnedFd>,
        mode: u32,
    ) -> &mut Self {
        self.push_data_source(
            dst.into(),
            DataSource::Fd(std::sync::Arc::new(fd.into())),
            mode,
            true,
        )
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
            fd: std::sync::Arc::new(fd),
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
}

/// The compiled file system plan: the child's [`FsSpec`] and the storage it points into.
pub(crate) struct PreparedFs {
    pub(crate) spec: FsSpec,
    _root: Option<CString>,
    _steps: Vec<MountStep>,
    _strings: Vec<CString>,
    /// Written by the child (grabbed mount descriptors); see `FsSpec::slots`.
    _slots: Vec<libc::c_int>,
    /// Contents of the files to write (see `Op::WriteFile`).
    _blobs: Vec<std::sync::Arc<[u8]>>,
    /// Descriptors the child compares its `bind_fd` mounts with (see `Op::SameFile`).
    _fds: Vec<OwnedFd>,
    /// The container's devpts instance, made here for its pty (see [`new_devpts`]).
    devpts: Option<OwnedFd>,
    /// The container's `/dev`: a clone of [`dev_template`], attached by the child.
    _dev_tree: Option<OwnedFd>,
}

// SAFETY: raw pointers into heap storage owned by the same value.
unsafe impl Send for PreparedFs {}

impl PreparedFs {
    fn none() -> PreparedFs {
        PreparedFs {
            spec: FsSpec::NONE,
            _root: None,
            _steps: Vec::new(),
            _strings: Vec::new(),
            _slots: Vec::new(),
            _blobs: Vec::new(),
            _fds: Vec::new(),
            devpts: None,
            _dev_tree: None,
        }
    }

    /// The detached devpts instance that becomes the container's `/dev/pts`, if the parent
    /// made one: the container's pty is to be opened in it.
    pub(crate) fn devpts(&self) -> Option<BorrowedFd<'_>> {
        self.devpts.as_ref().map(|f| f.as_fd())
    }
}

/// A new devpts instance as a detached mount (`fsopen`, `fsmount`; Linux 5.2), with the
/// options of the child's own (`ptmxmode=0666,mode=0620`, nosuid, noexec). Made in the
/// parent so that the container's pty can be opened in it before the clone; the child
/// attaches it at `/dev/pts` with `move_mount`. Needs `CAP_SYS_ADMIN`.
fn new_devpts() -> std::io::Result<OwnedFd> {
    const MOUNT_ATTR_NOSUID: libc::c_uint = 0x2;
    const MOUNT_ATTR_NOEXEC: libc::c_uint = 0x8;
    fs_mount(
        c"devpts",
        &[(c"ptmxmode", c"0666"), (c"mode", c"0620")],
        MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC,
    )
}

/// A new instance of file system `fstype` with string `options`, as a detached mount with
/// mount attributes `attrs` (`fsopen`, `fsconfig`, `fsmount`; Linux 5.2).
fn fs_mount(
    fstype: &std::ffi::CStr,
    options: &[(&std::ffi::CStr, &std::ffi::CStr)],
    attrs: libc::c_uint,
) -> std::io::Result<OwnedFd> {
    const FSOPEN_CLOEXEC: libc::c_uint = 1;
    const FSCONFIG_SET_STRING: libc::c_uint = 1;
    const FSCONFIG_CMD_CREATE: libc::c_uint = 6;
    const FSMOUNT_CLOEXEC: libc::c_uint = 1;
    let last = std::io::Error::last_os_error;
    // SAFETY: raw syscalls with C strings and descriptors we own. man 2 fsopen, fsconfig,
    // fsmount.
    unsafe {
        let fs = libc::syscall(libc::SYS_fsopen, fstype.as_ptr(), FSOPEN_CLOEXEC);
        if fs < 0 {
            return Err(last());
        }
        let fs = OwnedFd::from_raw_fd(fs as libc::c_int);
        for (key, value) in options {
            let r = libc::syscall(
                libc::SYS_fsconfig,
                fs.as_raw_fd(),
                FSCONFIG_SET_STRING,
                key.as_ptr(),
                value.as_ptr(),
                0,
            );
            if r < 0 {
                return Err(last());
            }
        }
        let null = ptr::null::<libc::c_char>();
        if libc::syscall(
            libc::SYS_fsconfig,
            fs.as_raw_fd(),
            FSCONFIG_CMD_CREATE,
            null,
            null,
            0,
        ) < 0
        {
            return Err(last());
        }
        let m = libc::syscall(libc::SYS_fsmount, fs.as_raw_fd(), FSMOUNT_CLOEXEC, attrs);
        if m < 0 {
            return Err(last());
        }
        Ok(OwnedFd::from_raw_fd(m as libc::c_int))
    }
}

/// The device nodes of the minimal `/dev`, bound from the host's.
pub(crate) const DEV_NODES: [&str; 6] = ["null", "zero", "full", "random", "urandom", "tty"];

/// The links of the minimal `/dev`: (link, target).
const DEV_LINKS: [(&str, &str); 6] = [
    ("ptmx", "pts/ptmx"),
    ("fd", "/proc/self/fd"),
    ("stdin", "/proc/self/fd/0"),
    ("stdout", "/proc/self/fd/1"),
    ("stderr", "/proc/self/fd/2"),
    ("core", "/proc/kcore"),
];

/// The minimal `/dev` as a detached mount tree, made once per process where the
/// supervisor may (`fsopen` needs `CAP_SYS_ADMIN`): a read-only tmpfs (nosuid, nodev,
/// noexec) holding the [`DEV_LINKS`], empty `pts` and `shm` directories, and the host's
/// [`DEV_NODES`] bound onto files in it (Linux 6.15 attaches mounts to detached trees).
///
/// Each container's `/dev` is a recursive clone of it (`open_tree(OPEN_TREE_CLONE |
/// AT_RECURSIVE)`, one system call in the parent) that the child attaches with one
/// `move_mount`, where building it in the child takes some twenty mount and file
/// system calls (measured: about 0.2 ms of a 1.4 ms spawn). The clones share the
/// template's tmpfs, which is why it is read-only: no container can write into another's
/// `/dev` (and none can remount it: mounting is denied by the filter and its capabilities
/// are gone). The nodes are the host's, as in the child-built `/dev`; devpts and `/dev/shm`
/// stay per container, mounted onto the template's directories.
///
/// `None` where it cannot be made (an unprivileged supervisor, an older kernel): the
/// child then builds the `/dev` itself.
fn dev_template() -> Option<BorrowedFd<'static>> {
    static TEMPLATE: std::sync::OnceLock<Option<OwnedFd>> = std::sync::OnceLock::new();
    TEMPLATE
        .get_or_init(|| match make_dev_template() {
            Ok(fd) => Some(fd),
            Err(e) => {
                tracing::debug!(error = %e, "no /dev template: each child builds its /dev");
                None
            }
        })
        .as_ref()
        .map(|f| f.as_fd())
}

fn make_dev_template() -> std::io::Result<OwnedFd> {
    use std::os::unix::fs::OpenOptionsExt;
    const MOUNT_ATTR_RDONLY: u64 = 0x1;
    const MOUNT_ATTR_NOSUID: libc::c_uint = 0x2;
    const MOUNT_ATTR_NODEV: libc::c_uint = 0x4;
    const MOUNT_ATTR_NOEXEC: libc::c_uint = 0x8;
    let tmpl = fs_mount(
        c"tmpfs",
        &[(c"mode", c"0755"), (c"size", c"16k")],
        MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC,
    )?;
    let root = format!("/proc/self/fd/{}", tmpl.as_raw_fd());
    let root = Path::new(&root);
    for dir in ["pts", "shm"] {
        std::fs::create_dir(root.join(dir))?;
    }
    for (link, target) in DEV_LINKS {
        std::os::unix::fs::symlink(target, root.join(link))?;
    }
    for node in DEV_NODES {
        let host = Path::new("/dev").join(node);
        if std::fs::metadata(&host).is_err() {
            continue; // a host without it; nothing to bind
        }
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(root.join(node))?;
        let src = sys_open_tree(libc::AT_FDCWD, &host, OPEN_TREE_CLONE)?;
        move_mount_to(&src, tmpl.as_fd(), node)?;
    }
    // Read-only last: the files above are made through it.
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_RDONLY,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    // SAFETY: mount_setattr on a descriptor we own, with a struct of the size passed.
    // man 2 mount_setattr (Linux 5.12).
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            tmpl.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(tmpl)
}

/// `struct mount_attr` (linux/mount.h).
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

const OPEN_TREE_CLONE: libc::c_uint = 1;
const OPEN_TREE_CLOEXEC: libc::c_uint = libc::O_CLOEXEC as libc::c_uint;

/// `open_tree(dirfd, path, flags | OPEN_TREE_CLOEXEC)`; man 2 open_tree (Linux 5.2).
fn sys_open_tree(dirfd: libc::c_int, path: &Path, flags: libc::c_uint) -> std::io::Result<OwnedFd> {
    let path = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: a C string and flags; the result is a new descriptor we then own.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            dirfd,
            path.as_ptr(),
            flags | OPEN_TREE_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: just returned by the kernel, owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as libc::c_int) })
}

/// Attaches detached mount `src` at `name` under directory `dir` (a mount descriptor).
fn move_mount_to(src: &OwnedFd, dir: BorrowedFd<'_>, name: &str) -> std::io::Result<()> {
    const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;
    let name = CString::new(name).map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: descriptors we hold and C strings. man 2 move_mount (Linux 5.2).
    let r = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            src.as_raw_fd(),
            c"".as_ptr(),
            dir.as_raw_fd(),
            name.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH,
        )
    };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// This container's `/dev`: a recursive clone of the [`dev_template`], if there is one.
fn clone_dev_template() -> Option<OwnedFd> {
    let tmpl = dev_template()?;
    sys_open_tree(
        tmpl.as_raw_fd(),
        Path::new(""),
        OPEN_TREE_CLONE | libc::AT_RECURSIVE as libc::c_uint | libc::AT_EMPTY_PATH as libc::c_uint,
    )
    .inspect_err(|e| tracing::debug!(error = %e, "cloning the /dev template"))
    .ok()
}

/// Whether the default fresh `/dev` applies: a new mount namespace, no root filesystem
/// (whose `/dev` is the caller's business), no opt-out, no explicit `mount_dev`.
fn default_fresh_dev(b: &ContainerBuilder) -> bool {
    b.namespaces.contains(Namespaces::MOUNT)
        && b.fs.root.is_none()
        && !b.fs.host_dev
        && !b.join.joins_mount()
        && !b.fs.ops.iter().any(|o| matches!(o, MountOp::Dev))
}

/// Whether the default read-only `/sys` applies (and there is a `/sys` mount to change:
/// `mount_setattr` on a path that is not a mount root would be refused).
fn default_readonly_sys(b: &ContainerBuilder) -> bool {
    use std::os::unix::fs::MetadataExt;
    b.namespaces.contains(Namespaces::MOUNT)
        && b.fs.root.is_none()
        && !b.fs.writable_sys
        && !b.join.joins_mount()
        && match (std::fs::metadata("/sys"), std::fs::metadata("/")) {
            (Ok(sys), Ok(root)) => sys.dev() != root.dev(),
            _ => false,
        }
}

/// Whether core's own "/proc for a new PID namespace" step should run: not when a root
/// filesystem is set (/proc is then mounted inside it, by this module) nor when the user
/// asked for /proc explicitly.
pub(crate) fn core_mounts_proc(b: &ContainerBuilder) -> bool {
    b.fs.root.is_none()
        && !b
            .fs
            .ops
            .iter()
            .any(|op| matches!(op, MountOp::Proc { dst } if dst == Path::new("/proc")))
}

/// A destination inside the container, checked and normalised: absolute, no `..`.
fn container_path(dst: &Path, what: &'static str) -> Result<PathBuf> {
    if !dst.is_absolute() {
        return Err(Error::BadMount {
            what,
            path: dst.into(),
            reason: "must be an absolute path inside the container".into(),
        });
    }
    let mut out = PathBuf::from("/");
    for c in dst.components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(n) => out.push(n),
            Component::ParentDir | Component::Prefix(_) => {
                return Err(Error::BadMount {
                    what,
                    path: dst.into(),
                    reason: "must not contain '..'".into(),
                })
            }
        }
    }
    Ok(out)
}

/// What will be visible at a container path once the mounts are applied, as far as the
/// parent can tell.
enum View {
    /// The host path that will be visible there.
    Host(PathBuf),
    /// Inside a file system the child creates (tmpfs, /dev): empty at first, and the child
    /// may create mount points in it.
    Fresh,
    /// Inside a kernel file system (proc, sysfs, mqueue): nothing can be checked.
    Kernel,
}

/// The mount table as the parent models it, in application order.
struct Model<'a> {
    root: Option<&'a Path>,
    /// (container dst, what is there); later entries shadow earlier ones.
    mounts: Vec<(PathBuf, Layer)>,
    /// Symbolic links this container created ([`ContainerBuilder::symlink`]): (where, target).
    links: Vec<(PathBuf, PathBuf)>,
}

#[derive(Clone)]
enum Layer {
    Host(PathBuf),
    Fresh,
    Kernel,
}

impl Model<'_> {
    /// Records a mount at `dst`: it hides the links we made under it.
    fn push(&mut self, dst: PathBuf, layer: Layer) {
        self.links.retain(|(l, _)| !l.starts_with(&dst));
        self.mounts.push((dst, layer));
    }

    /// Container path `p` with every link of ours on its way replaced by its target (as
    /// the kernel would resolve it inside the container), so that the child never walks
    /// through a link before the root change. `None`: too many links (a loop).
    fn resolve_ours(&self, p: &Path) -> Option<PathBuf> {
        if self.links.is_empty() {
            return Some(p.to_path_buf());
        }
        let mut path = PathBuf::from("/");
        let mut rest: Vec<OsString> = p
            .components()
            .filter_map(|c| match c {
                Component::Normal(n) => Some(n.to_os_string()),
                _ => None,
            })
            .rev()
            .collect();
        let mut hops = 0;
        while let Some(name) = rest.pop() {
            if name == ".." {
                path.pop();
                continue;
            }
            let next = path.join(&name);
            if let Some((_, target)) = self.links.iter().rev().find(|(l, _)| *l == next) {
                hops += 1;
                if hops > 40 {
                    return None;
                }
                if target.is_absolute() {
                    path = PathBuf::from("/");
                }
                for c in target.components().rev() {
                    match c {
                        Component::Normal(n) => rest.push(n.to_os_string()),
                        Component::ParentDir => rest.push("..".into()),
                        _ => {}
                    }
                }
                continue;
            }
            path = next;
        }
        Some(path)
    }

    /// Like [`view`](Self::view) but following symlinks the way the kernel will inside the
    /// container (absolute targets from the container's root), so that e.g. `/bin/sh`
    /// through a `bin -> usr/bin` link finds the host's `/usr/bin/sh` of a `/usr` bind.
    fn resolve(&self, p: &Path) -> View {
        let mut path = PathBuf::from("/");
        let mut rest: Vec<OsString> = p
            .components()
            .filter_map(|c| match c {
                Component::Normal(n) => Some(n.to_os_string()),
                _ => None,
            })
            .rev()
            .collect();
        let mut hops = 0;
        while let Some(name) = rest.pop() {
            if name == ".." {
                path.pop();
                continue;
            }
            let next = path.join(&name);
            if let View::Host(h) = self.view(&next) {
                if let Ok(target) = std::fs::read_link(&h) {
                    hops += 1;
                    if hops > 40 {
                        return View::Host(h);
                    }
                    if target.is_absolute() {
                        path = PathBuf::from("/");
                    }
                    for c in target.components().rev() {
                        match c {
                            Component::Normal(n) => rest.push(n.to_os_string()),
                            Component::ParentDir => rest.push("..".into()),
                            _ => {}
                        }
                    }
                    continue;
                }
            }
            path = next;
        }
        self.view(&path)
    }

    /// The host directory under which `p`'s view lies (the bind source covering it, or
    /// the root filesystem), for containment checks.
    fn host_base(&self, p: &Path) -> Option<PathBuf> {
        match self.covering(p) {
            Some((_, Layer::Host(src))) => Some(src.clone()),
            Some(_) => None,
            None => self.root.map(Path::to_path_buf),
        }
    }

    /// The mount that `p` lies in: the most recent one whose destination is a prefix of
    /// `p` (a later mount on the same or a deeper path hides what was there).
    fn covering(&self, p: &Path) -> Option<(&PathBuf, &Layer)> {
        let mut best: Option<(&PathBuf, &Layer)> = None;
        for (dst, layer) in self.mounts.iter() {
            if p.starts_with(dst) {
                match best {
                    Some((b, _)) if b.components().count() > dst.components().count() => {}
                    _ => best = Some((dst, layer)),
                }
            }
        }
        best
    }

    fn view(&self, p: &Path) -> View {
        match self.covering(p) {
            Some((dst, Layer::Host(src))) => {
                let rest = p.strip_prefix(dst).unwrap_or(Path::new(""));
                View::Host(if rest.as_os_str().is_empty() {
                    src.clone()
                } else {
                    src.join(rest)
                })
            }
            Some((_, Layer::Fresh)) => View::Fresh,
            Some((_, Layer::Kernel)) => View::Kernel,
            None => View::Host(match self.root {
                Some(r) => join_inside(r, p),
                None => p.to_path_buf(),
            }),
        }
    }
}

/// `root` + the container path `p` (absolute).
fn join_inside(root: &Path, p: &Path) -> PathBuf {
    root.join(p.strip_prefix("/").unwrap_or(p))
}

/// The absolute path the child uses for container path `p` before the root change.
fn pre_pivot(root: Option<&Path>, p: &Path) -> PathBuf {
    match root {
        Some(r) => join_inside(r, p),
        None => p.to_path_buf(),
    }
}

struct Compiler<'a> {
    model: Model<'a>,
    strings: Vec<CString>,
    steps: Vec<MountStep>,
    /// `Op::Grab` steps: they run before every step of `steps` (see [`Op::Grab`]).
    grabs: Vec<MountStep>,
    /// Slots the parent fills itself: (slot, descriptor).
    prefilled: Vec<(usize, libc::c_int)>,
    /// A detached devpts instance made by the parent (see [`new_devpts`]), to become the
    /// first `/dev/pts`; taken by the first `/dev` compiled.
    devpts: Option<libc::c_int>,
    /// A clone of the `/dev` template (see [`dev_template`]), to become the first `/dev`.
    dev_tree: Option<libc::c_int>,
    /// Contents of [`ContainerBuilder::file`]s, pointed to by their steps.
    blobs: Vec<std::sync::Arc<[u8]>>,
    /// Duplicates of the [`ContainerBuilder::bind_fd`] descriptors, above every `pass_fd`
    /// target, for the child's check (see `Op::SameFile`).
    fds: Vec<OwnedFd>,
    /// The lowest descriptor number those duplicates may take.
    min_fd: libc::c_int,
}

impl Compiler<'_> {
    fn c(&mut self, s: &OsStr) -> Result<*const libc::c_char> {
        let c = CString::new(s.as_bytes()).map_err(|_| Error::NulByte {
            what: "a mount path or option".into(),
            value: s.to_string_lossy().into_owned(),
        })?;
        let p = c.as_ptr();
        self.strings.push(c);
        Ok(p)
    }

    fn step(&mut self, op: Op, stage: Stage) -> MountStep {
        MountStep {
            op,
            a: ptr::null(),
            b: ptr::null(),
            fstype: ptr::null(),
            flags: 0,
            data: ptr::null(),
            fallback_bind: ptr::null(),
            slot: 0,
            mode: 0,
            len: 0,
            stage,
        }
    }

    /// Makes sure container path `dst` can be mounted on, as a directory (`dir`) or a file.
    /// Creates it (and missing parents) only inside a fresh file system of ours.
    fn mount_point(&mut self, dst: &Path, dir: bool, what: &'static str) -> Result<()> {
        match self.model.view(dst) {
            View::Host(host) => match std::fs::metadata(&host) {
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
                Ok(m) if m.is_dir() == dir => Ok(()),
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
            View::Kernel => Err(Error::BadMount {
                what,
                path: dst.into(),
                reason: "is inside a kernel file system (proc, sysfs, mqueue)".into(),
            }),
            View::Fresh => {
                // Create missing parents first (each is inside the same fresh fs or exists).
                if let Some(parent) = dst.parent() {
                    if parent != Path::new("/") && matches!(self.model.view(parent), View::Fresh)
                    {
                        self.mount_point(parent, true, what)?;
                    }
                }
                let path = pre_pivot(self.model.root, dst);
                let mut s = self.step(if dir { Op::Mkdir } else { Op::Touch }, Stage::MountPoint);
                s.b = self.c(path.as_os_str())?;
                self.steps.push(s);
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
        if !matches!(self.model.view(dst), View::Fresh) {
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
        match (std::fs::canonicalize(host), std::fs::canonicalize(&base)) {
            (Ok(h), Ok(b)) => h.starts_with(b),
            _ => false,
        }
    }

    fn mount(
        &mut self,
        src: &OsStr,
        dst: &Path,
        fstype: Option<&str>,
        flags: libc::c_ulong,
        data: Option<&str>,
        stage: Stage,
    ) -> Result<()> {
        let target = pre_pivot(self.model.root, dst);
        let mut s = self.step(Op::Mount, stage);
        s.a = self.c(src)?;
        s.b = self.c(target.as_os_str())?;
        if let Some(t) = fstype {
            s.fstype = self.c(OsStr::new(t))?;
        }
        s.flags = flags;
        if let Some(d) = data {
            s.data = self.c(OsStr::new(d))?;
        }
        self.steps.push(s);
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
        let slot = self.grabs.len() + self.prefilled.len();
        let mut g = self.step(Op::Grab, stage);
        g.a = self.c(src.as_os_str())?;
        g.flags = recursive as libc::c_ulong;
        g.slot = slot;
        self.grabs.push(g);
        let target = pre_pivot(self.model.root, dst);
        let mut p = self.step(Op::Place, stage);
        p.b = self.c(target.as_os_str())?;
        p.slot = slot;
        self.steps.push(p);
        Ok(slot)
    }

    fn readonly(&mut self, dst: &Path, recursive: bool, stage: Stage) -> Result<()> {
        let target = pre_pivot(self.model.root, dst);
        let mut s = self.step(Op::ReadOnly, stage);
        s.b = self.c(target.as_os_str())?;
        s.flags = recursive as libc::c_ulong;
        self.steps.push(s);
        Ok(())
    }

    fn symlink(&mut self, target: &str, link: &Path) -> Result<()> {
        let path = pre_pivot(self.model.root, link);
        let mut s = self.step(Op::Symlink, Stage::MountDev);
        s.a = self.c(OsStr::new(target))?;
        s.b = self.c(path.as_os_str())?;
        self.steps.push(s);
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
        self.mount(
            OsStr::new(fstype),
            &dst,
            Some(fstype),
            libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC | extra_flags,
            None,
            stage,
        )?;
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
                    std::env::current_dir()
                        .map_err(Error::io("reading the current directory"))?
                        .join(src)
                };
                let meta = std::fs::metadata(&src).map_err(|e| Error::BadMount {
                    what: "bind source",
                    path: src.clone(),
                    reason: e.to_string(),
                })?;
                self.mount_point(&dst, meta.is_dir(), "bind destination")?;
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
                self.mount(
                    OsStr::new("tmpfs"),
                    &dst,
                    Some("tmpfs"),
                    nosuid_nodev,
                    Some(&data),
                    Stage::MountTmpfs,
                )?;
                self.model.push(dst, Layer::Fresh);
            }
            MountOp::Proc { dst } => {
                let dst = container_path(dst, "proc destination")?;
                self.kernel_fs("proc", dst, 0, Stage::MountProc, "proc destination")?;
            }
            MountOp::Dev => {
                let dev = PathBuf::from("/dev");
                self.mount_point(&dev, true, "/dev")?;
                // The parent's clone of the template (see `dev_template`), or built here.
                let template = self.dev_tree.take();
                if let Some(fd) = template {
                    let slot = self.grabs.len() + self.prefilled.len();
                    self.prefilled.push((slot, fd));
                    let target = pre_pivot(self.model.root, &dev);
                    let mut p = self.step(Op::Place, Stage::MountDev);
                    p.b = self.c(target.as_os_str())?;
                    p.slot = slot;
                    self.steps.push(p);
                    // Read-only: nothing can be created in it (prepare() takes the
                    // template only when no mount of the caller's lands under /dev).
                    self.model.push(dev.clone(), Layer::Kernel);
                } else {
                    // nodev as well: the nodes below are bind mounts with their own flags,
                    // and nothing created in this tmpfs itself may act as a device.
                    self.mount(
                        OsStr::new("tmpfs"),
                        &dev,
                        Some("tmpfs"),
                        libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
                        Some("mode=755,size=65536"),
                        Stage::MountDev,
                    )?;
                    self.model.push(dev.clone(), Layer::Fresh);
                    for node in DEV_NODES {
                        let host = Path::new("/dev").join(node);
                        if std::fs::metadata(&host).is_err() {
                            continue; // a host without it; nothing to bind
                        }
                        let inside = dev.join(node);
                        self.mount_point(&inside, false, "/dev")?;
                        // The host's real node (mknod is refused in a user namespace; a bind
                        // of a host node works there), taken before this tmpfs covers it.
                        self.bind_host(&host, &inside, false, Stage::MountDev)?;
                    }
                }
                let built = template.is_none();
                let pts = dev.join("pts");
                if built {
                    self.mount_point(&pts, true, "/dev")?;
                }
                // A private devpts instance: ptys of the container are not the host's.
                // Not nodev: its ptys are devices.
                if let Some(fd) = self.devpts.take() {
                    // The instance the parent made and opened the container's pty in.
                    let slot = self.grabs.len() + self.prefilled.len();
                    self.prefilled.push((slot, fd));
                    let target = pre_pivot(self.model.root, &pts);
                    let mut p = self.step(Op::Place, Stage::MountDev);
                    p.b = self.c(target.as_os_str())?;
                    p.slot = slot;
                    self.steps.push(p);
                } else {
                    self.mount(
                        OsStr::new("devpts"),
                        &pts,
                        Some("devpts"),
                        libc::MS_NOSUID | libc::MS_NOEXEC,
                        Some("newinstance,ptmxmode=0666,mode=0620"),
                        Stage::MountDev,
                    )?;
                }
                self.model.push(pts.clone(), Layer::Kernel);
                if built {
                    for (link, target) in DEV_LINKS {
                        self.symlink(target, &dev.join(link))?;
                    }
                }
                // A private /dev/shm: the IPC namespace does not cover POSIX shm, which
                // lives in whatever tmpfs /dev/shm is.
                let shm = dev.join("shm");
                if built {
                    self.mount_point(&shm, true, "/dev")?;
                }
                self.mount(
                    OsStr::new("tmpfs"),
                    &shm,
                    Some("tmpfs"),
                    nosuid_nodev | libc::MS_NOEXEC,
                    Some("mode=1777"),
                    Stage::MountDev,
                )?;
                self.model.push(shm, Layer::Fresh);
            }
            MountOp::Dir { dst, mode } => {
                let dst = self.ours(dst, "dir")?;
                check_mode(&dst, *mode, "dir")?;
                match self.model.view(&dst) {
                    View::Fresh => {
                        // Missing parents inside the same tmpfs get a mode derived from
                        // `mode` (an existing one keeps its own).
                        let mut parents = Vec::new();
                        let mut p = dst.parent();
                        while let Some(parent) = p {
                            if parent == Path::new("/")
                                || !matches!(self.model.view(parent), View::Fresh)
                            {
                                break;
                            }
                            parents.push(parent.to_path_buf());
                            p = parent.parent();
                        }
                        for parent in parents.iter().rev() {
                            let path = pre_pivot(self.model.root, parent);
                            let mut s = self.step(Op::MkdirMode, Stage::MountPoint);
                            s.b = self.c(path.as_os_str())?;
                            s.mode = parent_mode(*mode) as libc::mode_t;
                            self.steps.push(s);
                        }
                        let path = pre_pivot(self.model.root, &dst);
                        let mut s = self.step(Op::MkdirMode, Stage::MountPoint);
                        s.b = self.c(path.as_os_str())?;
                        s.mode = *mode as libc::mode_t;
                        self.steps.push(s);
                    }
                    // An existing directory of the host's: nothing to do (bubblewrap keeps
                    // its mode too); anything else is refused by mount_point.
                    _ => self.mount_point(&dst, true, "dir")?,
                }
            }
            MountOp::Symlink { target, dst } => {
                let dst = self.ours(dst, "symlink")?;
                self.fresh_parent(&dst, "symlink")?;
                let path = pre_pivot(self.model.root, &dst);
                let mut s = self.step(Op::Symlink, Stage::MountPoint);
                s.a = self.c(target.as_os_str())?;
                s.b = self.c(path.as_os_str())?;
                self.steps.push(s);
                self.model.links.push((dst, target.clone()));
            }
            MountOp::File {
                dst,
                contents,
                mode,
            } => {
                let dst = self.ours(dst, "file")?;
                check_mode(&dst, *mode, "file")?;
                self.fresh_parent(&dst, "file")?;
                let path = pre_pivot(self.model.root, &dst);
                let mut s = self.step(Op::WriteFile, Stage::MountPoint);
                s.a = contents.as_ptr().cast();
                s.len = contents.len();
                s.b = self.c(path.as_os_str())?;
                s.mode = *mode as libc::mode_t;
                self.steps.push(s);
                self.blobs.push(contents.clone());
            }
            MountOp::Chmod { dst, mode } => {
                let dst = self.ours(dst, "chmod")?;
                check_mode(&dst, *mode, "chmod")?;
                if !matches!(self.model.view(&dst), View::Fresh) {
                    return Err(Error::BadMount {
                        what: "chmod",
                        path: dst,
                        reason: "is not in a file system this container mounts itself (a tmpfs): the mode of a host file is never changed".into(),
                    });
                }
                let path = pre_pivot(self.model.root, &dst);
                let mut s = self.step(Op::Chmod, Stage::MountPoint);
                s.b = self.c(path.as_os_str())?;
                s.mode = *mode as libc::mode_t;
                self.steps.push(s);
            }
            MountOp::Overlay { lower, dst } => {
                let dst = self.ours(dst, "overlay destination")?;
                let bad = |path: &Path, reason: String| Error::BadMount {
                    what: "overlay",
                    path: path.to_path_buf(),
                    reason,
                };
                let meta = std::fs::metadata(lower)
                    .map_err(|e| bad(lower, format!("lower directory: {e}")))?;
                if !lower.is_absolute() || !meta.is_dir() {
                    return Err(bad(
                        lower,
                        "the lower layer must be an absolute path to a directory".into(),
                    ));
                }
                let upper_base = pre_pivot(self.model.root, &dst);
                for p in [lower.as_path(), upper_base.as_path()] {
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
                // The upper layer and overlayfs's work directory live in a tmpfs mounted on
                // `dst` itself; the overlay then covers it (it keeps its own references).
                self.mount(
                    OsStr::new("tmpfs"),
                    &dst,
                    Some("tmpfs"),
                    nosuid_nodev,
                    Some("mode=755"),
                    Stage::MountTmpfs,
                )?;
                for sub in ["upper", "work"] {
                    let mut s = self.step(Op::Mkdir, Stage::MountPoint);
                    s.b = self.c(upper_base.join(sub).as_os_str())?;
                    self.steps.push(s);
                }
                let data = format!(
                    "lowerdir={},upperdir={}/upper,workdir={}/work",
                    lower.display(),
                    upper_base.display(),
                    upper_base.display()
                );
                self.mount(
                    OsStr::new("overlay"),
                    &dst,
                    Some("overlay"),
                    nosuid_nodev,
                    Some(&data),
                    Stage::MountBind,
                )?;
                self.model.push(dst, Layer::Fresh);
            }
            MountOp::Data {
                dst,
                contents,
                mode,
                readonly,
            } => {
                let dst = self.ours(dst, "bind_data")?;
                check_mode(&dst, *mode, "bind_data")?;
                let contents = contents.contents(&dst)?;
                self.mount_point(&dst, false, "bind_data destination")?;
                let target = pre_pivot(self.model.root, &dst);
                let mut s = self.step(Op::BindData, Stage::MountBind);
                s.a = contents.as_ptr().cast();
                s.len = contents.len();
                s.b = self.c(target.as_os_str())?;
                s.mode = *mode as libc::mode_t;
                self.steps.push(s);
                self.blobs.push(contents);
                if *readonly {
                    self.readonly(&dst, false, Stage::MakeReadOnly)?;
                }
                // A file of our own tmpfs: chmod may change it, nothing is under it.
                self.model.push(dst, Layer::Fresh);
            }
            MountOp::BindFd { fd, dst, readonly } => {
                let dst = self.ours(dst, "bind_fd destination")?;
                let raw = fd.as_raw_fd();
                let bad = |reason: String| Error::BadMount {
                    what: "bind_fd",
                    path: dst.clone(),
                    reason,
                };
                // The path the descriptor has now, as the host sees it; the child checks
                // that what it binds from there is the descriptor's own file.
                let src = std::fs::read_link(format!("/proc/self/fd/{raw}"))
                    .map_err(|e| bad(format!("descriptor {raw}: {e}")))?;
                let meta = std::fs::metadata(&src)
                    .map_err(|e| bad(format!("descriptor {raw} names {}: {e}", src.display())))?;
                if !src.is_absolute() {
                    return Err(bad(format!(
                        "descriptor {raw} is not a file or directory ({})",
                        src.display()
                    )));
                }
                self.mount_point(&dst, meta.is_dir(), "bind_fd destination")?;
                let dup = crate::sys::dup_above(raw, self.min_fd)
                    .map_err(|e| bad(format!("duplicating descriptor {raw}: {e}")))?;
                let slot = self.bind_host(&src, &dst, true, Stage::MountBind)?;
                // Right after its grab (grabs run first, in order).
                let mut check = self.step(Op::SameFile, Stage::BindFd);
                check.slot = slot;
                check.len = dup.as_raw_fd() as usize;
                self.grabs.push(check);
                self.fds.push(dup);
                if *readonly {
                    self.readonly(&dst, true, Stage::MakeReadOnly)?;
                }
                self.model.push(dst, Layer::Host(src));
            }
            MountOp::RemountRo { dst } => {
                let dst = self.ours(dst, "remount_ro")?;
                self.readonly(&dst, true, Stage::MakeReadOnly)?;
            }
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
                if let Some(s) = self.steps.last_mut() {
                    let fallback = CString::from(c"/sys");
                    s.fallback_bind = fallback.as_ptr();
                    self.strings.push(fallback);
                }
            }
        }
        Ok(())
    }
}

/// Validates the file system settings against the namespaces.
/// The largest tmpfs size accepted: 2^62 bytes (4 EiB). The kernel parses the size into a
/// 64-bit count of bytes and rounds it up to pages; sizes near 2^64 wrap around to small or
/// zero limits, and far smaller ones are already beyond any machine.
pub const MAX_TMPFS_SIZE: u64 = 1 << 62;

/// The mode of a parent directory that [`ContainerBuilder::dir`] creates for a directory of
/// mode `mode` (bubblewrap's rule): the owner may always enter and change it; group and
/// others may read and enter it when `mode` grants them anything, nothing otherwise; no
/// special bits. So 0o1777 and 0o644 give 0o755, 0o710 gives 0o750, 0o600 gives 0o700.
fn parent_mode(mode: u32) -> u32 {
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

pub(crate) fn validate(b: &ContainerBuilder) -> Result<()> {
    let fs = &b.fs;
    let any = fs.root.is_some() || !fs.ops.is_empty();
    if any && !b.namespaces.contains(Namespaces::MOUNT) {
        return Err(Error::NeedsNamespace {
            option: if fs.root.is_some() {
                "rootfs/chroot"
            } else {
                "mounts (bind, tmpfs, mount_*)"
            },
            needs: Namespaces::MOUNT,
        });
    }
    if fs.readonly_root && fs.root.is_none() {
        return Err(Error::BadConfig(
            "readonly_root(true) needs a root filesystem (rootfs or chroot)".into(),
        ));
    }
    if fs.ops.iter().any(|o| matches!(o, MountOp::Mqueue))
        && !b.namespaces.contains(Namespaces::IPC)
    {
        return Err(Error::NeedsNamespace {
            option: "mount_mqueue",
            needs: Namespaces::IPC,
        });
    }
    Ok(())
}

/// Checks the root filesystem and compiles the mounts. Nothing is touched on the host.
pub(crate) fn prepare(b: &ContainerBuilder) -> Result<PreparedFs> {
    validate(b)?;
    let fs = &b.fs;
    let fresh_dev = default_fresh_dev(b);
    let readonly_sys = default_readonly_sys(b);
    if fs.root.is_none() && fs.ops.is_empty() && !fresh_dev && !readonly_sys {
        return Ok(PreparedFs::none());
    }
    let root = match &fs.root {
        Some(r) => Some(check_root(r)?),
        None => None,
    };
    // With a pty and a /dev of ours, the pty is made in the container's own devpts
    // instance (session.rs opens it there), so that inside, the terminal is a node of the
    // container's /dev/pts. Where the parent may not make one (an unprivileged supervisor:
    // fsopen needs CAP_SYS_ADMIN), the child mounts its own and the pty is the host's.
    let builds_dev = fresh_dev || fs.ops.iter().any(|o| matches!(o, MountOp::Dev));
    let devpts = if builds_dev && b.session.pty.is_some() {
        new_devpts().ok()
    } else {
        None
    };
    // The template's /dev is read-only: only where no mount of the caller's lands in it.
    let dev_tree = if builds_dev
        && !fs
            .ops
            .iter()
            .any(|o| !matches!(o, MountOp::Dev) && o.dst().starts_with("/dev"))
    {
        clone_dev_template()
    } else {
        None
    };
    let mut comp = Compiler {
        model: Model {
            root: root.as_deref(),
            mounts: Vec::new(),
            links: Vec::new(),
        },
        blobs: Vec::new(),
        fds: Vec::new(),
        min_fd: crate::security::min_setup_fd(b),
        strings: Vec::new(),
        steps: Vec::new(),
        grabs: Vec::new(),
        prefilled: Vec::new(),
        devpts: devpts.as_ref().map(|f| f.as_raw_fd()),
        dev_tree: dev_tree.as_ref().map(|f| f.as_raw_fd()),
    };
    // The defaults without a root filesystem come first, so that the user's mounts land
    // on top of them (a bind onto /dev/fuse goes into the fresh /dev, a bind under /sys
    // keeps its own flags). The cgroup was joined before any of this (child/mod.rs).
    if readonly_sys {
        comp.readonly(Path::new("/sys"), true, Stage::MakeReadOnly)?;
    }
    if fresh_dev {
        comp.compile(&MountOp::Dev)?;
    }
    // With a root filesystem and a new PID namespace, a fresh /proc inside the new root
    // (core mounts /proc over the host's only when there is no root filesystem).
    let explicit_proc = fs.ops.iter().any(|o| o.dst() == Path::new("/proc"));
    if let Some(r) = &root {
        if b.namespaces.contains(Namespaces::PID) && !explicit_proc && r.join("proc").is_dir() {
            comp.compile(&MountOp::Proc {
                dst: PathBuf::from("/proc"),
            })?;
        }
    }
    for op in &fs.ops {
        comp.compile(op)?;
    }
    let Compiler {
        strings,
        steps,
        grabs,
        prefilled,
        devpts: unused,
        blobs,
        fds,
        ..
    } = comp;
    // Every grab first: see `Op::Grab`.
    let mut slots: Vec<libc::c_int> = vec![-1; grabs.len() + prefilled.len()];
    for (slot, fd) in prefilled {
        slots[slot] = fd;
    }
    // Not placed (no /dev compiled after all): no pty in it either.
    let devpts = if unused.is_some() { None } else { devpts };
    let steps: Vec<MountStep> = grabs.into_iter().chain(steps).collect();
    let root_c = root
        .as_ref()
        .map(|r| {
            CString::new(r.as_os_str().as_bytes()).map_err(|_| Error::NulByte {
                what: "the root filesystem path".into(),
                value: r.to_string_lossy().into_owned(),
            })
        })
        .transpose()?;
    let spec = FsSpec {
        root: root_c.as_ref().map_or(ptr::null(), |c| c.as_ptr()),
        chroot: fs.chroot,
        steps: steps.as_ptr(),
        n_steps: steps.len(),
        readonly_root: fs.readonly_root,
        slots: (slots.as_mut_ptr(), slots.len()),
    };
    Ok(PreparedFs {
        spec,
        _root: root_c,
        _steps: steps,
        _strings: strings,
        _slots: slots,
        _blobs: blobs,
        _fds: fds,
        devpts,
        _dev_tree: dev_tree,
    })
}

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

/// Where the program is looked up: `None` for the host (core's lookup), otherwise the
/// container path resolved inside the root filesystem (through the bind mounts), checked
/// with core's executable check on the host path that will be visible there; with a
/// joined mount namespace, an absolute path taken as is.
pub(crate) fn resolve_program(
    b: &ContainerBuilder,
    env: &[(OsString, OsString)],
) -> Option<Result<PathBuf>> {
    if let Some(root) = b.fs.root.as_ref() {
        return Some(resolve_in_root(b, root, env));
    }
    if b.join.joins_mount() {
        // Another container's file system: nothing to check from here; execve reports.
        let p = Path::new(&b.program);
        return Some(if p.is_absolute() {
            Ok(p.to_path_buf())
        } else {
            Err(Error::BadConfig(format!(
                "with a joined mount namespace the program must be an absolute path inside it, not {:?}",
                b.program
            )))
        });
    }
    None
}

fn resolve_in_root(
    b: &ContainerBuilder,
    root: &Path,
    env: &[(OsString, OsString)],
) -> Result<PathBuf> {
    let root = check_root(root)?;
    let model = model_of(b, &root);
    let program = &b.program;
    let candidates: Vec<PathBuf> = if program.as_bytes().contains(&b'/') {
        let p = Path::new(program);
        if !p.is_absolute() {
            return Err(Error::BadConfig(format!(
                "with a root filesystem the program must be an absolute path or a bare name, not {:?}",
                program
            )));
        }
        vec![p.to_path_buf()]
    } else {
        let path_var = env
            .iter()
            .find(|(k, _)| k == "PATH")
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
        std::env::split_paths(&path_var)
            .filter(|d| d.is_absolute())
            .map(|d| d.join(program))
            .collect()
    };
    let mut first_err = None;
    for cand in &candidates {
        match model.resolve(cand) {
            // Inside a kernel file system: cannot be checked from here; execve will say.
            View::Kernel => return Ok(cand.clone()),
            // Inside a file system of ours, which starts empty: there only if a file, link
            // or data file of the caller's is made at exactly this path (an empty tmpfs
            // root would otherwise "have" every program the PATH names in it).
            View::Fresh => {
                let made_here = b.fs.ops.iter().any(|op| {
                    matches!(
                        op,
                        MountOp::File { .. } | MountOp::Symlink { .. } | MountOp::Data { .. }
                    ) && op.dst() == cand.as_path()
                });
                if made_here {
                    return Ok(cand.clone());
                }
            }
            View::Host(host) => {
                match crate::plan::check_executable(&host, program, String::new()) {
                    Ok(_) => return Ok(cand.clone()),
                    Err(e @ Error::NotExecutable { .. }) => {
                        first_err.get_or_insert(e);
                    }
                    Err(_) => {}
                }
            }
        }
    }
    Err(first_err.unwrap_or_else(|| Error::ProgramNotFound {
        program: program.to_string_lossy().into_owned(),
        searched: format!(
            "{} inside the root filesystem {}",
            candidates
                .iter()
                .map(|c| c.display().to_string())
                .collect::<Vec<_>>()
                .join(":"),
            root.display()
        ),
    }))
}

/// Checks a working directory that lives inside the root filesystem (or a joined mount
/// namespace). `None`: core checks the host path.
pub(crate) fn check_cwd(b: &ContainerBuilder, dir: &Path) -> Option<Result<()>> {
    if b.fs.root.is_none() && b.join.joins_mount() {
        return Some(Ok(())); // inside another container: chdir will tell
    }
    let root = b.fs.root.as_ref()?;
    Some((|| {
        let root = check_root(root)?;
        let dir = container_path(dir, "working directory").map_err(|_| Error::BadCurrentDir {
            path: dir.into(),
            reason: "must be an absolute path without '..' inside the root filesystem".into(),
        })?;
        match model_of(b, &root).resolve(&dir) {
            View::Host(h) if !h.is_dir() => Err(Error::BadCurrentDir {
                path: dir,
                reason: format!("{} is not a directory", h.display()),
            }),
            _ => Ok(()),
        }
    })())
}

/// The mount model after every configured mount (for lookups of the program and cwd).
fn model_of<'a>(b: &ContainerBuilder, root: &'a Path) -> Model<'a> {
    let mut model = Model {
        root: Some(root),
        mounts: Vec::new(),
        links: Vec::new(),
    };
    for op in &b.fs.ops {
        let layer = match op {
            MountOp::Bind { src, .. } => Layer::Host(src.clone()),
            MountOp::BindFd { fd, .. } => {
                match std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())) {
                    Ok(src) => Layer::Host(src),
                    Err(_) => Layer::Kernel,
                }
            }
            MountOp::Tmpfs { .. }
            | MountOp::Dev
            | MountOp::Overlay { .. }
            | MountOp::Data { .. } => Layer::Fresh,
            MountOp::Proc { .. } | MountOp::Mqueue | MountOp::Sysfs => Layer::Kernel,
            // Not mounts: they change nothing the lookups could check.
            MountOp::Dir { .. }
            | MountOp::Symlink { .. }
            | MountOp::File { .. }
            | MountOp::Chmod { .. }
            | MountOp::RemountRo { .. } => continue,
        };
        if let Ok(dst) = container_path(op.dst(), "mount") {
            model.mounts.push((dst, layer));
        }
    }
    model
}
