//! Opens the container's stdio for one spawn: `/dev/null`, a pipe, or a duplicate of the
//! descriptor the caller handed over, each above the stdio numbers.

use std::io;
use std::os::fd::{AsFd, OwnedFd};

use crate::builder::stdio::{Kind, Stdio};
use crate::sys;

/// One stream, prepared for a spawn: the end the child gets and, for a pipe, ours.
pub(crate) struct PreparedStdio {
    /// The descriptor to `dup2` onto 0/1/2 in the child, `None` to inherit.
    pub(crate) child: Option<OwnedFd>,
    /// Our end of a pipe.
    pub(crate) parent: Option<OwnedFd>,
}

/// Opens what the stream `s` needs. `input` tells which way a pipe points.
pub(crate) fn prepare(s: &Stdio, input: bool) -> io::Result<PreparedStdio> {
    Ok(match &s.0 {
        Kind::Inherit => PreparedStdio {
            child: None,
            parent: None,
        },
        Kind::Null => {
            let f = std::fs::OpenOptions::new()
                .read(input)
                .write(!input)
                .open("/dev/null")?;
            PreparedStdio {
                child: Some(sys::above_stdio(f.into())?),
                parent: None,
            }
        }
        Kind::Piped => {
            let (r, w) = sys::pipe_cloexec()?;
            if input {
                PreparedStdio {
                    child: Some(r),
                    parent: Some(w),
                }
            } else {
                PreparedStdio {
                    child: Some(w),
                    parent: Some(r),
                }
            }
        }
        Kind::Fd(fd) => {
            let dup = fd.as_fd().try_clone_to_owned()?;
            PreparedStdio {
                child: Some(sys::above_stdio(dup)?),
                parent: None,
            }
        }
    })
}
