//! The facts more than one concern's `prepare` needs, gathered once per spawn.
//!
//! A concern's `prepare(config, ctx)` reads its own configuration and this, never another
//! concern's configuration or code: the order the concerns run in is then the one
//! `plan::prepare` shows, and each can be tested with a hand-made `Ctx`.

use std::os::fd::RawFd;
use std::path::PathBuf;

use crate::builder::ContainerBuilder;
use crate::Namespaces;

/// Cross-concern facts of one spawn.
#[derive(Debug, Clone, Default)]
#[allow(dead_code)] // TRANSITIONAL (issue 13): until every concern's prepare takes a Ctx
pub(crate) struct Ctx {
    /// The namespaces the container gets.
    pub(crate) namespaces: Namespaces,
    /// The root filesystem directory (`rootfs`/`chroot`), as given.
    pub(crate) root: Option<PathBuf>,
    /// A pseudo-terminal is attached.
    pub(crate) pty: bool,
    /// The workload starts a new session (`new_session`).
    pub(crate) new_session: bool,
    /// The namespace kinds joined from other containers or paths.
    pub(crate) joined: Namespaces,
    /// The lowest descriptor number the child may use for its own setup: above every
    /// `pass_fd` target, so the child's dup2s never overwrite it.
    pub(crate) min_setup_fd: RawFd,
    /// The workload's `process_group`, as given (validated by the security plan, which
    /// makes the child's `setpgid` call).
    pub(crate) process_group: Option<libc::pid_t>,
    /// The built-in init runs (as PID 1, or as a subreaper).
    pub(crate) uses_init: bool,
}

impl Ctx {
    pub(crate) fn new(b: &ContainerBuilder) -> Ctx {
        Ctx {
            namespaces: b.namespaces,
            root: b.fs.root().map(Into::into),
            pty: b.session.pty.is_some(),
            new_session: b.security.new_session,
            joined: crate::join::joined_kinds(b),
            min_setup_fd: b.security.min_setup_fd(),
            process_group: b.process_group,
            uses_init: b.session.uses_init(b.namespaces),
        }
    }
}
