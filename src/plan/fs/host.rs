//! What the compiler asks of the host: the kind of a path, links, canonical paths, the
//! contents of a `bind_data_fd` descriptor, the path a `bind_fd` descriptor names. The real
//! answers ([`RealHost`]) come from the kernel; the unit tests answer from a table, so the
//! compiler itself is tested without root and without touching the host.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::builder::fs::DataSource;
use crate::error::{Error, Result};

/// The host as the compiler sees it.
pub(crate) trait Host {
    /// What is at `path`, following symlinks.
    fn kind(&self, path: &Path) -> io::Result<Kind>;
    /// The target of the symlink at `path` (an error if it is not one).
    fn read_link(&self, path: &Path) -> io::Result<PathBuf>;
    /// `path` with every symlink and `..` resolved.
    fn canonicalize(&self, path: &Path) -> io::Result<PathBuf>;
    /// The supervisor's working directory (relative bind sources are taken from it).
    fn current_dir(&self) -> io::Result<PathBuf>;
    /// The contents of a `bind_data` file for one spawn (destination `dst`, for errors).
    fn data(&self, source: &DataSource, dst: &Path) -> Result<Arc<[u8]>>;
    /// The path descriptor `fd` has now, as the host sees it.
    fn fd_path(&self, fd: &OwnedFd) -> io::Result<PathBuf>;
    /// A close-on-exec duplicate of `fd` numbered `min` or above.
    fn dup_above(&self, fd: &OwnedFd, min: libc::c_int) -> io::Result<OwnedFd>;
}

/// The type of a host file, as far as mounting on it matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Dir,
    File,
    /// A device node, socket or pipe.
    Other,
}

/// The host's own file systems and descriptors.
pub(crate) struct RealHost;

impl Host for RealHost {
    fn kind(&self, path: &Path) -> io::Result<Kind> {
        let meta = std::fs::metadata(path)?;
        Ok(if meta.is_dir() {
            Kind::Dir
        } else if meta.is_file() {
            Kind::File
        } else {
            Kind::Other
        })
    }

    fn read_link(&self, path: &Path) -> io::Result<PathBuf> {
        std::fs::read_link(path)
    }

    fn canonicalize(&self, path: &Path) -> io::Result<PathBuf> {
        std::fs::canonicalize(path)
    }

    fn current_dir(&self) -> io::Result<PathBuf> {
        std::env::current_dir()
    }

    fn data(&self, source: &DataSource, dst: &Path) -> Result<Arc<[u8]>> {
        match source {
            DataSource::Bytes(b) => Ok(b.clone()),
            DataSource::Fd(fd) => read_data_fd(fd, dst),
        }
    }

    fn fd_path(&self, fd: &OwnedFd) -> io::Result<PathBuf> {
        std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))
    }

    fn dup_above(&self, fd: &OwnedFd, min: libc::c_int) -> io::Result<OwnedFd> {
        crate::sys::dup_above(fd.as_raw_fd(), min)
    }
}

/// The contents of a `bind_data_fd` descriptor for one spawn. It must be a regular file:
/// it is read with `pread` from offset 0, so every spawn of the builder gets the whole file
/// and the descriptor's own offset is left alone; a pipe or socket (which could be read
/// once, and would block) is refused.
fn read_data_fd(fd: &OwnedFd, dst: &Path) -> Result<Arc<[u8]>> {
    use std::os::unix::fs::FileExt;
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
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(bad(format!("reading descriptor {raw}: {e}"))),
        }
    }
    buf.truncate(done);
    Ok(buf.into())
}
