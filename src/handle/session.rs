//! The session's part of a running container: the init's report of the workload's status
//! and the pty master.

use std::os::fd::OwnedFd;
use std::process::ExitStatus;

use crate::init;
use crate::plan::session::ParentSession;

/// The container's share: what `Container` keeps besides its pidfd and pipes.
#[derive(Debug, Default)]
pub(crate) struct ContainerSession {
    status: Option<OwnedFd>,
    pub(crate) pty: Option<OwnedFd>,
}

impl ContainerSession {
    pub(crate) fn new(p: ParentSession) -> ContainerSession {
        ContainerSession {
            status: p.status,
            pty: p.pty,
        }
    }

    /// The status to report once the container's first process was reaped: with an init,
    /// the workload's own (if the init lived to report it).
    pub(crate) fn final_status(&mut self, reaped: ExitStatus) -> ExitStatus {
        match self.status.take() {
            Some(fd) => init::workload_status(&fd, reaped),
            None => reaped,
        }
    }
}
