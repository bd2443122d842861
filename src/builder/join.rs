//! Joining existing namespaces: the settings ([`ContainerBuilder::join`],
//! [`ContainerBuilder::join_path`]) and [`Container::exec`], which makes a builder that joins
//! a running container.
//!
//! Plain data; `plan/join.rs` checks and opens what is joined, `child/join.rs` joins it.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::sync::Arc;

use crate::builder::ContainerBuilder;
use crate::error::{Error, Result};
use crate::{Container, NamespaceIds, Namespaces};

/// Namespaces to join (part of [`ContainerBuilder`]).
#[derive(Debug, Clone, Default)]
pub(crate) struct JoinConfig {
    pub(crate) joins: Vec<Join>,
}

/// One [`join`](ContainerBuilder::join) or [`join_path`](ContainerBuilder::join_path).
#[derive(Debug, Clone)]
pub(crate) struct Join {
    pub(crate) namespaces: Namespaces,
    pub(crate) source: Source,
}

/// Where the namespaces of a [`Join`] come from.
#[derive(Debug, Clone)]
pub(crate) enum Source {
    /// A duplicate of the container's pidfd (`None`: it was already reaped).
    Container {
        pid: i32,
        pidfd: Option<Arc<OwnedFd>>,
    },
    Path(PathBuf),
    /// An open namespace file (the user namespace that owns joined namespaces).
    Fd(Arc<OwnedFd>),
}

impl Join {
    /// A [`Error::BadJoin`] for this join.
    pub(crate) fn error(&self, reason: String) -> Error {
        Error::BadJoin {
            namespaces: self.namespaces,
            source_desc: match &self.source {
                Source::Container { pid, .. } => format!("container (pid {pid})"),
                Source::Path(p) => p.display().to_string(),
                Source::Fd(fd) => format!("the user namespace owning them (fd {})", fd.as_raw_fd()),
            },
            reason,
        }
    }
}

/// Joining namespaces of other processes.
///
/// ```no_run
/// # async fn demo() -> cellblock::Result<()> {
/// use cellblock::{Container, Namespaces};
/// // A "pod": the second worker shares the first one's network namespace.
/// let first = Container::builder("/bin/sleep").arg("60")
///     .namespaces(Namespaces::NET | Namespaces::UTS)
///     .spawn().await?;
/// let second = Container::builder("/bin/sleep").arg("60")
///     .namespaces(Namespaces::UTS)
///     .join(Namespaces::NET, &first)
///     .spawn().await?;
/// assert_eq!(first.namespace_ids()?.get(Namespaces::NET), second.namespace_ids()?.get(Namespaces::NET));
/// # Ok(()) }
/// ```
impl ContainerBuilder {
    /// Runs the container in `namespaces` of the running container `other` (one or more
    /// kinds; joined through its pidfd, so a recycled pid can never be joined by mistake).
    /// A joined kind must not also be created with [`namespaces`](Self::namespaces).
    ///
    /// Joining [`Namespaces::PID`] makes the workload a process of `other`'s PID namespace
    /// (not its PID 1); joining [`Namespaces::MOUNT`] puts it at `other`'s root. Joining a
    /// [`Namespaces::USER`] or [`Namespaces::TIME`] namespace needs a fork-style clone whose
    /// cost grows with the supervisor's memory (see the module docs).
    ///
    /// A [`rootfs`](Self::rootfs) in a joined mount namespace is set up there, as runc
    /// does for an OCI `mnt` namespace with a `path`: its `/` is made private (nothing the
    /// container mounts reaches the namespaces it shares mounts with), the root path is
    /// looked up in *that* namespace, and `pivot_root` moves **every** process of the
    /// namespace whose root was the old one into the container's root. It is refused
    /// ([`Error::BadJoin`](crate::Error::BadJoin)) for the supervisor's own mount namespace
    /// and PID 1's. Mounts without a root filesystem are refused in a joined mount
    /// namespace: they would land among its owner's.
    pub fn join(&mut self, namespaces: Namespaces, other: &Container) -> &mut Self {
        let pidfd = other
            .pidfd()
            .and_then(|fd| fd.try_clone_to_owned().ok())
            .map(Arc::new);
        self.join.joins.push(Join {
            namespaces,
            source: Source::Container {
                pid: other.pid(),
                pidfd,
            },
        });
        self
    }

    /// Runs the container in the namespace of one kind that `path` refers to, e.g.
    /// `/proc/1234/ns/net` or a bind-mounted namespace file. The file is opened and its
    /// kind checked (`NS_GET_NSTYPE`) before anything runs.
    pub fn join_path(&mut self, namespace: Namespaces, path: impl Into<PathBuf>) -> &mut Self {
        self.join.joins.push(Join {
            namespaces: namespace,
            source: Source::Path(path.into()),
        });
        self
    }
}

impl Container {
    /// Starts configuring a further process inside this running container (like
    /// `docker exec`): a builder that joins every namespace in which this container differs
    /// from the supervisor, with nothing new created. Add settings and spawn it; it is an
    /// ordinary [`Container`], awaited and reaped like any other. With a joined mount
    /// namespace the program must be an absolute path inside the container.
    ///
    /// ```no_run
    /// # async fn demo(c: &cellblock::Container) -> cellblock::Result<()> {
    /// let out = c.exec("/bin/hostname")?.output().await?;
    /// # Ok(()) }
    /// ```
    pub fn exec(&self, program: impl AsRef<std::ffi::OsStr>) -> Result<ContainerBuilder> {
        let theirs = self.namespace_ids()?;
        let ours = NamespaceIds::current().map_err(Error::io("reading /proc/self/ns"))?;
        let differing = theirs.differing(&ours);
        let mut b = Container::builder(program);
        if !differing.is_empty() {
            b.join(differing, self);
        }
        Ok(b)
    }
}

/// The user namespace that owns the joined namespaces, found by `plan/join.rs` for the
/// default identity: how to join it too.
#[derive(Debug)]
pub(crate) enum OwnerUserns {
    /// Through the container join at this index: one setns then enters the user namespace
    /// together with the others.
    WithJoin(usize),
    /// An open user namespace file, joined on its own.
    Fd(OwnedFd),
}

impl JoinConfig {
    /// Every namespace kind joined.
    pub(crate) fn kinds(&self) -> Namespaces {
        self.joins
            .iter()
            .fold(Namespaces::empty(), |all, j| all | j.namespaces)
    }

    /// Whether any namespace is joined (even a join naming no kind, which `prepare`
    /// refuses).
    pub(crate) fn any(&self) -> bool {
        !self.joins.is_empty()
    }

    /// Joins `owner` as well (see [`OwnerUserns`]).
    pub(crate) fn add_owner(&mut self, owner: OwnerUserns) {
        match owner {
            OwnerUserns::WithJoin(i) => self.joins[i].namespaces |= Namespaces::USER,
            OwnerUserns::Fd(fd) => self.joins.push(Join {
                namespaces: Namespaces::USER,
                source: Source::Fd(Arc::new(fd)),
            }),
        }
    }
}
