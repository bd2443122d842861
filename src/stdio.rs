//! What a container's stdin, stdout and stderr are connected to.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;

use crate::sys;

/// Where one of the container's standard streams goes.
///
/// ```
/// use cellblock::{Container, Stdio};
/// let mut b = Container::builder("/bin/true");
/// b.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::inherit());
/// ```
#[derive(Debug, Clone)]
pub struct Stdio(pub(crate) Kind);

#[derive(Debug, Clone)]
pub(crate) enum Kind {
    Inherit,
    Null,
    Piped,
    /// A descriptor the user handed over; duplicated for each spawn so the builder stays
    /// reusable (a supervisor restarts from the same builder).
    Fd(Arc<OwnedFd>),
}

impl Stdio {
    /// The container shares the supervisor's stream.
    pub fn inherit() -> Stdio {
        Stdio(Kind::Inherit)
    }

    /// Connected to `/dev/null`.
    pub fn null() -> Stdio {
        Stdio(Kind::Null)
    }

    /// A pipe to the supervisor: take the other end from the [`Container`](crate::Container)
    /// with `take_stdin`/`take_stdout`/`take_stderr`.
    pub fn piped() -> Stdio {
        Stdio(Kind::Piped)
    }
}

impl From<OwnedFd> for Stdio {
    fn from(fd: OwnedFd) -> Stdio {
        Stdio(Kind::Fd(Arc::new(fd)))
    }
}

impl From<File> for Stdio {
    fn from(f: File) -> Stdio {
        Stdio::from(OwnedFd::from(f))
    }
}

/// One stream, prepared for a spawn: the end the child gets and, for a pipe, ours.
pub(crate) struct Prepared {
    /// The descriptor to `dup2` onto 0/1/2 in the child, `None` to inherit.
    pub(crate) child: Option<OwnedFd>,
    /// Our end of a pipe.
    pub(crate) parent: Option<OwnedFd>,
}

impl Stdio {
    /// Opens what this stream needs. `input` tells which way a pipe points.
    pub(crate) fn prepare(&self, input: bool) -> io::Result<Prepared> {
        Ok(match &self.0 {
            Kind::Inherit => Prepared {
                child: None,
                parent: None,
            },
            Kind::Null => {
                let f = std::fs::OpenOptions::new()
                    .read(input)
                    .write(!input)
                    .open("/dev/null")?;
                Prepared {
                    child: Some(sys::above_stdio(f.into())?),
                    parent: None,
                }
            }
            Kind::Piped => {
                let (r, w) = sys::pipe_cloexec()?;
                if input {
                    Prepared {
                        child: Some(r),
                        parent: Some(w),
                    }
                } else {
                    Prepared {
                        child: Some(w),
                        parent: Some(r),
                    }
                }
            }
            Kind::Fd(fd) => {
                let dup = fd.as_fd().try_clone_to_owned()?;
                Prepared {
                    child: Some(sys::above_stdio(dup)?),
                    parent: None,
                }
            }
        })
    }
}
