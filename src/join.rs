//! Joining existing namespaces: pods of containers sharing a namespace, and "exec" into a
//! running container.
//!
//! The child joins with `setns` before any other step (`child/join.rs`). Two kernel rules
//! shape the spawn:
//!
//! * `setns(CLONE_NEWPID)` only affects the caller's future children. With a PID namespace
//!   joined, the child is an intermediate that clones the real workload (see
//!   `child/join.rs`); the workload is made a direct child of the supervisor
//!   (`CLONE_PARENT`), so it is awaited and reaped like any container.
//! * Joining a **user** or **time** namespace is refused to a process that shares its
//!   memory with other threads (`setns` returns EINVAL / EUSERS), and the child of our
//!   usual `CLONE_VM` clone shares the supervisor's. For those two joins only, the child is
//!   cloned fork-style (its own copy of the address space, still with `CLONE_VFORK`): that
//!   copy costs time proportional to the supervisor's memory (measured here: ~117 ms with a
//!   4 GiB heap), the price of entering a user namespace that is not ours.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use crate::builder::ContainerBuilder;
use crate::child::join::{JoinFd, JoinSpec};
use crate::error::{Error, Result};
use crate::namespaces::KINDS;
use crate::reaper::ChildGuard;
use crate::sys::{self, Stack};
use crate::{Container, NamespaceIds, Namespaces};

/// Namespaces to join (part of [`ContainerBuilder`]).
#[derive(Debug, Clone, Default)]
pub(crate) struct JoinConfig {
    joins: Vec<Join>,
}

#[derive(Debug, Clone)]
struct Join {
    namespaces: Namespaces,
    source: Source,
}

#[derive(Debug, Clone)]
enum Source {
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
    fn error(&self, reason: String) -> Error {
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
    pub fn join(&mut self, namespaces: Namespaces, other: &Container) -> &mut Self {
        let pidfd = other
            .pidfd()
            .and_then(|fd| fd.try_clone_to_owned().ok())
            .map(Arc::new);
        self.joins.joins.push(Join {
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
        self.joins.joins.push(Join {
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

/// How the supervisor clones the child.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum CloneMode {
    /// `CLONE_VM | CLONE_VFORK`: the fast path.
    Vfork,
    /// `CLONE_VM` without `CLONE_VFORK`: the supervisor writes the uid/gid maps while the
    /// child waits (see `userns.rs`).
    VmNoVfork,
    /// `CLONE_VFORK` without `CLONE_VM`: a private address space, for joining user and time
    /// namespaces.
    PrivateMemory,
}

impl CloneMode {
    /// The clone flags besides the namespaces (and `CLONE_PIDFD | SIGCHLD`).
    pub(crate) fn flags(self) -> libc::c_int {
        match self {
            CloneMode::Vfork => libc::CLONE_VM | libc::CLONE_VFORK,
            CloneMode::VmNoVfork => libc::CLONE_VM,
            CloneMode::PrivateMemory => libc::CLONE_VFORK,
        }
    }
}

/// The prepared joins.
pub(crate) struct PreparedJoin {
    pub(crate) spec: JoinSpec,
    pub(crate) mode_private_memory: bool,
    /// Namespaces created by `unshare` after the joins instead of at clone.
    pub(crate) deferred: Namespaces,
    _entries: Vec<JoinFd>,
    _fds: Vec<OwnedFd>,
    /// Stack of the workload when a PID namespace is joined.
    stack: Option<Stack>,
    /// The pid pipe: read end (ours), write end (the intermediate's).
    pid_read: Option<OwnedFd>,
    pid_write: Option<OwnedFd>,
}

// SAFETY: raw pointers into storage owned by the same value (the stack mapping, the
// entries vector).
unsafe impl Send for PreparedJoin {}

impl Drop for PreparedJoin {
    fn drop(&mut self) {
        // By now the workload is off this stack (it exec'd or exited before the
        // intermediate, and the intermediate before `Plan::run` returned).
        if let Some(s) = self.stack.take() {
            s.give_back();
        }
    }
}

/// Whether any namespace is joined.
pub(crate) fn has_joins(b: &ContainerBuilder) -> bool {
    !b.joins.joins.is_empty()
}

/// `ioctl(NS_GET_USERNS)`: the user namespace that owns a namespace (man 2 ioctl_ns).
const NS_GET_USERNS: libc::c_ulong = 0xb701;

/// (device, inode) of a namespace file: its identity.
fn ns_id(fd: BorrowedFd<'_>) -> std::io::Result<(u64, u64)> {
    let st = nix::sys::stat::fstat(fd.as_raw_fd()).map_err(std::io::Error::from)?;
    Ok((st.st_dev, st.st_ino))
}

/// The default identity for a joiner (see `userns::default_identity`): the user namespace
/// that owns the joined namespaces is joined too, so a pod member or an `exec` gets its
/// pod's identity instead of keeping the supervisor's host ids.
///
/// Fails, for a `privileged` supervisor, when the joined namespaces are owned by the
/// supervisor's own user namespace (a `host_root()` container, `ip netns` files): the
/// workload would run with the supervisor's host ids, which it must ask for by name with
/// `host_root()`. Fails when they belong to different user namespaces.
pub(crate) fn join_owner_userns(b: &mut ContainerBuilder, privileged: bool) -> Result<()> {
    let ours = std::fs::File::open("/proc/self/ns/user")
        .and_then(|f| ns_id(f.as_fd()))
        .map_err(Error::io("reading /proc/self/ns/user"))?;
    let mut owner: Option<((u64, u64), OwnedFd)> = None;
    for j in &b.joins.joins {
        let bad = |reason: String| j.error(reason);
        let fd = match &j.source {
            // Left to `prepare`, which says what is wrong with it.
            Source::Container { pidfd: None, .. } => continue,
            Source::Container {
                pid,
                pidfd: Some(pidfd),
            } => {
                let f = std::fs::File::open(format!("/proc/{pid}/ns/user"))
                    .map_err(|e| bad(format!("reading its user namespace: {e}")))?;
                // Still the same process? (the pid may have been reused once it exited)
                if sys::pidfd_send_signal(pidfd.as_fd(), 0).is_err() {
                    return Err(bad(format!("the container (pid {pid}) has exited")));
                }
                OwnedFd::from(f)
            }
            Source::Path(p) => {
                let f = std::fs::File::open(p).map_err(|e| bad(e.to_string()))?;
                // Not a namespace file, or one of another kind: `prepare` says which.
                if j.namespaces.bits().count_ones() != 1
                    || ns_type(f.as_fd()).ok() != Some(j.namespaces.ns_flags())
                {
                    continue;
                }
                // SAFETY: a valid descriptor; the ioctl returns a new descriptor or -1.
                let ret = unsafe { libc::ioctl(f.as_raw_fd(), NS_GET_USERNS as _) };
                if ret < 0 {
                    let e = std::io::Error::last_os_error();
                    return Err(bad(format!(
                        "finding the user namespace that owns it (NS_GET_USERNS: {e})"
                    )));
                }
                // SAFETY: a new descriptor that we own.
                unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(ret) }
            }
            Source::Fd(_) => continue,
        };
        let id = ns_id(fd.as_fd()).map_err(Error::io("reading a user namespace"))?;
        match &owner {
            Some((other, _)) if *other != id => {
                return Err(bad(
                    "the joined namespaces belong to different user namespaces; join them from one container or pod".into(),
                ))
            }
            Some(_) => {}
            None => owner = Some((id, fd)),
        }
    }
    let Some((id, fd)) = owner else {
        return Ok(());
    };
    if id == ours {
        if privileged {
            let j = &b.joins.joins[0];
            return Err(j.error(
                "these namespaces belong to the supervisor's own user namespace, so the workload would keep the supervisor's host identity (host uid 0): call host_root() to ask for that by name, or join a container that has its own user namespace (the default)".into(),
            ));
        }
        return Ok(());
    }
    // Through a container's pidfd where there is one: one setns then enters its user
    // namespace together with the others (the kernel orders them), which also works when
    // the container's first process is its non-dumpable init, whose namespaces a process
    // already inside the user namespace may not reach through a separate setns.
    if let Some(j) = b
        .joins
        .joins
        .iter_mut()
        .find(|j| matches!(j.source, Source::Container { pidfd: Some(_), .. }))
    {
        j.namespaces |= Namespaces::USER;
    } else {
        b.joins.joins.push(Join {
            namespaces: Namespaces::USER,
            source: Source::Fd(Arc::new(fd)),
        });
    }
    Ok(())
}

/// Whether `kind` is among the joined namespaces.
/// Every namespace kind joined.
pub(crate) fn joined_kinds(b: &ContainerBuilder) -> Namespaces {
    b.joins
        .joins
        .iter()
        .fold(Namespaces::empty(), |all, j| all | j.namespaces)
}

fn joins(b: &ContainerBuilder, kind: Namespaces) -> bool {
    b.joins.joins.iter().any(|j| j.namespaces.contains(kind))
}

/// Whether a user namespace is joined (ids then refer to it).
pub(crate) fn joins_user(b: &ContainerBuilder) -> bool {
    joins(b, Namespaces::USER)
}

/// Validates the joins, opens every namespace descriptor, and prepares the second stack
/// and pid pipe if a PID namespace is joined.
pub(crate) fn prepare(b: &ContainerBuilder) -> Result<PreparedJoin> {
    let mut prepared = PreparedJoin {
        spec: JoinSpec::none(),
        mode_private_memory: false,
        deferred: Namespaces::empty(),
        _entries: Vec::new(),
        _fds: Vec::new(),
        stack: None,
        pid_read: None,
        pid_write: None,
    };
    let joins = &b.joins.joins;
    if joins.is_empty() {
        return Ok(prepared);
    }
    let mut all = Namespaces::empty();
    for j in joins {
        let bad = |reason: String| j.error(reason);
        if j.namespaces.is_empty() {
            return Err(bad("no namespace kind given".into()));
        }
        if all.intersects(j.namespaces) {
            return Err(bad(format!("{} joined twice", all & j.namespaces)));
        }
        if b.namespaces.intersects(j.namespaces) {
            return Err(bad(format!(
                "{} is also in namespaces() (a kind is either created or joined)",
                b.namespaces & j.namespaces
            )));
        }
        all |= j.namespaces;
    }
    if b.namespaces.contains(Namespaces::USER) {
        return Err(Error::BadConfig(
            "joining namespaces while creating a new user namespace: the new user namespace has no \
             capabilities over namespaces it does not own, so setns would fail with EPERM; join the \
             other container's USER namespace instead"
                .into(),
        ));
    }
    const CAP_SYS_ADMIN: u64 = 1 << 21;
    if !all.contains(Namespaces::USER) && crate::userns::effective_caps() & CAP_SYS_ADMIN == 0 {
        return Err(Error::NeedsPrivilege {
            feature: format!("joining {all} namespaces"),
            needs: "CAP_SYS_ADMIN (setns)",
            hint: "run as root, or also join the user namespace that owns them (Namespaces::USER)",
        });
    }

    // User namespaces first: once in it, we hold the capabilities the other joins need.
    let mut ordered: Vec<&Join> = joins.iter().collect();
    ordered.sort_by_key(|j| !j.namespaces.contains(Namespaces::USER));
    for j in ordered {
        let bad = |reason: String| j.error(reason);
        let nstype = j.namespaces.ns_flags();
        let fd = match &j.source {
            Source::Container { pidfd: None, .. } => {
                return Err(bad("the container has already been reaped".into()))
            }
            Source::Container {
                pidfd: Some(fd),
                pid,
                ..
            } => {
                // Alive? A pidfd of an exited process makes setns fail with ESRCH later;
                // say it now.
                if sys::pidfd_send_signal(fd.as_fd(), 0).is_err() {
                    return Err(bad(format!("the container (pid {pid}) has exited")));
                }
                fd.try_clone().map_err(Error::io("duplicating a pidfd"))?
            }
            Source::Path(p) => {
                if j.namespaces.bits().count_ones() != 1 {
                    return Err(bad("join_path takes exactly one namespace kind".into()));
                }
                let file = std::fs::File::open(p).map_err(|e| bad(e.to_string()))?;
                let fd = OwnedFd::from(file);
                let kind = ns_type(fd.as_fd())
                    .map_err(|e| bad(format!("not a namespace file (NS_GET_NSTYPE: {e})")))?;
                if kind != nstype {
                    return Err(bad(format!(
                        "it is a namespace of another kind ({})",
                        KINDS
                            .iter()
                            .find(|k| k.clone_flag == kind)
                            .map_or("unknown", |k| k.proc_name)
                    )));
                }
                fd
            }
            Source::Fd(fd) => fd
                .try_clone()
                .map_err(Error::io("duplicating a namespace fd"))?,
        };
        prepared._entries.push(JoinFd {
            fd: fd.as_raw_fd(),
            nstype,
        });
        prepared._fds.push(fd);
    }
    prepared.spec.entries = prepared._entries.as_ptr();
    prepared.spec.n_entries = prepared._entries.len();
    prepared.mode_private_memory = all.intersects(Namespaces::USER | Namespaces::TIME);
    // New namespaces next to a joined user namespace are made after the joins, so that
    // they belong to it (child/join.rs).
    if all.contains(Namespaces::USER) {
        prepared.spec.unshare_flags = b.namespaces.clone_flags();
        prepared.deferred = b.namespaces;
    }
    if all.contains(Namespaces::PID) || prepared.deferred.contains(Namespaces::PID) {
        let stack = Stack::take().map_err(Error::io("allocating the workload stack"))?;
        let (r, w) = sys::pipe_cloexec().map_err(Error::io("creating the pid pipe"))?;
        prepared.spec.fork_workload = true;
        prepared.spec.stack_top = stack.top();
        prepared.spec.pid_fd = w.as_raw_fd();
        prepared.spec.entered = AtomicBool::new(false);
        prepared.stack = Some(stack);
        prepared.pid_read = Some(r);
        prepared.pid_write = Some(w);
    }
    Ok(prepared)
}

/// `ioctl(fd, NS_GET_NSTYPE)`: the `CLONE_NEW*` kind of a namespace file.
fn ns_type(fd: BorrowedFd<'_>) -> std::io::Result<libc::c_int> {
    // SAFETY: an ioctl without argument on a valid descriptor. man 2 ioctl_ns.
    let ret = unsafe { libc::ioctl(fd.as_raw_fd(), libc::NS_GET_NSTYPE) };
    if ret == -1 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

impl PreparedJoin {
    /// After the clone returned: with a joined PID namespace `guard` is the intermediate,
    /// which has exited; reap it and return a guard for the workload instead (a direct
    /// child of ours thanks to `CLONE_PARENT`). Otherwise returns `guard` unchanged.
    pub(crate) fn adopt_workload(&mut self, guard: ChildGuard) -> Result<ChildGuard> {
        let Some(read) = self.pid_read.take() else {
            return Ok(guard);
        };
        // Close our write end so that the read sees EOF if the intermediate failed
        // before cloning (it then reported on the error pipe).
        self.pid_write = None;
        let mut buf = [0u8; 4];
        let n =
            sys::read_retry(read.as_fd(), &mut buf).map_err(Error::io("reading the pid pipe"))?;
        if n != 4 {
            return Ok(guard);
        }
        guard.reap_now();
        let pid = i32::from_ne_bytes(buf);
        match sys::pidfd_open(pid) {
            Ok(pidfd) => Ok(ChildGuard::new(pid, pidfd)),
            Err(e) => {
                // Cannot happen for an unreaped child of ours short of fd exhaustion; do
                // not leave it running or as a zombie. It is our child: waiting for this
                // one pid (never -1) steals nobody else's status.
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
                let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
                Err(Error::Io {
                    context: "pidfd_open of the workload",
                    source: e,
                })
            }
        }
    }
}
