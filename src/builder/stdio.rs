//! What a container's stdin, stdout and stderr are connected to (`plan/stdio.rs` opens
//! it for each spawn).

use std::fs::File;
use std::os::fd::OwnedFd;
use std::sync::Arc;

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
