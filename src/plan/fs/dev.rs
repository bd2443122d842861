//! The minimal `/dev`: the per-process template each container's `/dev` is cloned from
//! and the container's own devpts instance, both detached mounts the parent makes with
//! the new mount API (`src/sys.rs`, which needs `CAP_SYS_ADMIN`), and the compiled steps
//! that place them, or, where the supervisor may not make them, build the `/dev` in the
//! child.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use super::compile::{c, Compiler};
use super::model::Layer;
use crate::child::fs::Op;
use crate::error::{Result, Stage};
use crate::sys;

/// The device nodes of the minimal `/dev`, bound from the host's.
const DEV_NODES: [&str; 6] = ["null", "zero", "full", "random", "urandom", "tty"];

/// The links of the minimal `/dev`: (link, target).
const DEV_LINKS: [(&str, &str); 6] = [
    ("ptmx", "pts/ptmx"),
    ("fd", "/proc/self/fd"),
    ("stdin", "/proc/self/fd/0"),
    ("stdout", "/proc/self/fd/1"),
    ("stderr", "/proc/self/fd/2"),
    ("core", "/proc/kcore"),
];

const MOUNT_ATTR_NOSUID: libc::c_uint = 0x2;
const MOUNT_ATTR_NODEV: libc::c_uint = 0x4;
const MOUNT_ATTR_NOEXEC: libc::c_uint = 0x8;

/// A new devpts instance as a detached mount, with the options of the child's own
/// (`ptmxmode=0666,mode=0620`, nosuid, noexec). Made in the parent so that the container's
/// pty can be opened in it before the clone; the child attaches it at `/dev/pts` with
/// `move_mount`. Needs `CAP_SYS_ADMIN`.
pub(crate) fn new_devpts() -> std::io::Result<OwnedFd> {
    sys::fs_mount(
        c"devpts",
        &[(c"ptmxmode", c"0666"), (c"mode", c"0620")],
        MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC,
    )
}

/// The minimal `/dev` as a detached mount tree, made once per process where the
/// supervisor may (`fsopen` needs `CAP_SYS_ADMIN`): a read-only tmpfs (nosuid, nodev,
/// noexec) holding the [`DEV_LINKS`], empty `pts` and `shm` directories, and the host's
/// [`DEV_NODES`] bound onto files in it (Linux 6.15 attaches mounts to detached trees).
///
/// Each container's `/dev` is a recursive clone of it (`open_tree(OPEN_TREE_CLONE |
/// AT_RECURSIVE)`, one system call in the parent) that the child attaches with one
/// `move_mount`, where building it in the child takes some twenty mount and file
/// system calls. The clones share the template's tmpfs, which is why it is read-only: no
/// container can write into another's `/dev` (and none can remount it: mounting is denied
/// by the filter and its capabilities are gone). The nodes are the host's, as in the
/// child-built `/dev`; devpts and `/dev/shm` stay per container, mounted onto the
/// template's directories.
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
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::OpenOptionsExt;
    let tmpl = sys::fs_mount(
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
        let host = std::ffi::CString::new(format!("/dev/{node}"))?;
        let src = sys::open_tree_clone(None, &host, 0)?;
        let name = std::ffi::CString::new(node)?;
        sys::move_mount_at(src.as_fd(), tmpl.as_fd(), &name)?;
    }
    // Read-only last: the files above are made through it.
    sys::mount_set_readonly(tmpl.as_fd())?;
    Ok(tmpl)
}

/// This container's `/dev`: a recursive clone of the [`dev_template`], if there is one.
pub(crate) fn clone_dev_template() -> Option<OwnedFd> {
    let tmpl = dev_template()?;
    sys::open_tree_clone(
        Some(tmpl),
        c"",
        libc::AT_RECURSIVE as libc::c_uint | libc::AT_EMPTY_PATH as libc::c_uint,
    )
    .inspect_err(|e| tracing::debug!(error = %e, "cloning the /dev template"))
    .ok()
}

impl Compiler<'_> {
    /// The minimal `/dev`: the parent's clone of the template, or built by the child.
    pub(super) fn dev(&mut self) -> Result<()> {
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
        // Source "shm", as Docker, runc and the OCI default config name it (what
        // mountinfo shows, and what tools such as runtime-tools' compare).
        self.mount_from(
            "shm",
            "tmpfs",
            &shm,
            flags,
            Some("mode=1777"),
            Stage::MountDev,
        )?;
        self.model.push(shm, Layer::Fresh);
        Ok(())
    }
}
