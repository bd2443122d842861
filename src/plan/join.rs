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
//!   copy costs time proportional to the supervisor's memory, the price of entering a user
//!   namespace that is not ours.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::atomic::AtomicBool;

use crate::builder::join::{Join, JoinConfig, OwnerUserns, Source};
use crate::child::join::{JoinFd, JoinSpec, Workload};
use crate::error::{Error, Result};
use crate::handle::reaper::ChildGuard;
use crate::namespaces::KINDS;
use crate::plan::Ctx;
use crate::sys::{self, Stack};
use crate::Namespaces;

/// How the supervisor clones the child.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum CloneMode {
    /// `CLONE_VM | CLONE_VFORK`: the fast path.
    Vfork,
    /// `CLONE_VM` without `CLONE_VFORK`: the supervisor writes the uid/gid maps while the
    /// child waits (see `plan/user/mod.rs`).
    VmNoVfork,
    /// `CLONE_VFORK` without `CLONE_VM`: a private address space, for joining user and time
    /// namespaces.
    PrivateMemory,
    /// Neither: a private address space, and the parent goes on at once. For a created
    /// container, which waits at its start gate after the clone has returned.
    Fork,
}

impl CloneMode {
    /// The clone flags besides the namespaces (and `CLONE_PIDFD | SIGCHLD`).
    pub(crate) fn flags(self) -> libc::c_int {
        match self {
            CloneMode::Vfork => libc::CLONE_VM | libc::CLONE_VFORK,
            CloneMode::VmNoVfork => libc::CLONE_VM,
            CloneMode::PrivateMemory => libc::CLONE_VFORK,
            CloneMode::Fork => 0,
        }
    }
}

/// The prepared joins: what the child reads ([`JoinSpec`]).
pub(crate) struct PreparedJoin {
    entries: Vec<JoinFd>,
    /// The descriptors `entries` name, open until the plan is dropped.
    _fds: Vec<OwnedFd>,
    /// `CLONE_NEW*` flags the child creates with `unshare` after the joins.
    pub(crate) unshare_flags: libc::c_int,
    /// Stack of the workload when a PID namespace is joined, and the number of the pid
    /// pipe's write end (which [`ParentJoin`] owns).
    workload: Option<(Stack, libc::c_int)>,
}

impl PreparedJoin {
    /// The child's view (which has the workload's stack to itself).
    pub(crate) fn spec(&mut self) -> JoinSpec<'_> {
        JoinSpec {
            entries: &self.entries,
            workload: self.workload.as_mut().map(|(stack, pid_fd)| Workload {
                stack: stack.lend(),
                pid_fd: *pid_fd,
            }),
            entered: AtomicBool::new(false),
            unshare_flags: self.unshare_flags,
        }
    }
}

impl Drop for PreparedJoin {
    fn drop(&mut self) {
        // By now the workload is off this stack (it exec'd or exited before the
        // intermediate, and the intermediate before `Plan::run` returned).
        if let Some((s, _)) = self.workload.take() {
            s.give_back();
        }
    }
}

/// The parent's side of the joins: how to clone, and the workload to adopt.
pub(crate) struct ParentJoin {
    /// Clone without `CLONE_VM` (a user or time namespace is joined).
    pub(crate) mode_private_memory: bool,
    /// Namespaces created by `unshare` after the joins instead of at clone.
    pub(crate) deferred: Namespaces,
    /// The pid pipe: read end (ours), write end (the intermediate's).
    pid_pipe: Option<(OwnedFd, OwnedFd)>,
}

/// What the joins decide, before anything is opened.
#[derive(Debug, PartialEq, Eq)]
struct JoinPlan {
    /// Clone without `CLONE_VM`: joining a user or time namespace needs a private address
    /// space.
    private_memory: bool,
    /// The configured namespaces, created after the joins (with a joined user namespace).
    deferred: Namespaces,
    /// Clone the workload after the joins (a PID namespace joined or created after them).
    fork_workload: bool,
}

/// The pure part of [`prepare`]: checks the joins against each other, the namespaces
/// created and the supervisor's privilege.
fn plan(cfg: &JoinConfig, ctx: &Ctx) -> Result<JoinPlan> {
    let mut all = Namespaces::empty();
    for j in &cfg.joins {
        let bad = |reason: String| j.error(reason);
        if j.namespaces.is_empty() {
            return Err(bad("no namespace kind given".into()));
        }
        if all.intersects(j.namespaces) {
            return Err(bad(format!("{} joined twice", all & j.namespaces)));
        }
        if ctx.namespaces.intersects(j.namespaces) {
            return Err(bad(format!(
                "{} is also in namespaces() (a kind is either created or joined)",
                ctx.namespaces & j.namespaces
            )));
        }
        all |= j.namespaces;
    }
    if ctx.namespaces.contains(Namespaces::USER) {
        return Err(Error::BadConfig(
            "joining namespaces while creating a new user namespace: the new user namespace has no \
             capabilities over namespaces it does not own, so setns would fail with EPERM; join the \
             other container's USER namespace instead"
                .into(),
        ));
    }
    if !all.contains(Namespaces::USER) && !ctx.sys_admin.get() {
        return Err(Error::NeedsPrivilege {
            feature: format!("joining {all} namespaces"),
            needs: "CAP_SYS_ADMIN (setns)",
            hint: "run as root, or also join the user namespace that owns them (Namespaces::USER)",
        });
    }
    // New namespaces next to a joined user namespace are made after the joins, so that
    // they belong to it (child/join.rs).
    let deferred = if all.contains(Namespaces::USER) {
        ctx.namespaces
    } else {
        Namespaces::empty()
    };
    Ok(JoinPlan {
        private_memory: all.intersects(Namespaces::USER | Namespaces::TIME),
        deferred,
        fork_workload: all.contains(Namespaces::PID) || deferred.contains(Namespaces::PID),
    })
}

/// The joins in the order the child enters them: those holding the user namespace first,
/// since once in it we hold the capabilities the other joins need.
fn ordered(joins: &[Join]) -> Vec<&Join> {
    let mut ordered: Vec<&Join> = joins.iter().collect();
    ordered.sort_by_key(|j| !j.namespaces.contains(Namespaces::USER));
    ordered
}

/// Validates the joins, opens every namespace descriptor, and prepares the second stack
/// and pid pipe if a PID namespace is joined.
pub(crate) fn prepare(cfg: &JoinConfig, ctx: &Ctx) -> Result<(PreparedJoin, ParentJoin)> {
    let mut prepared = PreparedJoin {
        entries: Vec::new(),
        _fds: Vec::new(),
        unshare_flags: 0,
        workload: None,
    };
    let mut parent = ParentJoin {
        mode_private_memory: false,
        deferred: Namespaces::empty(),
        pid_pipe: None,
    };
    if cfg.joins.is_empty() {
        return Ok((prepared, parent));
    }
    let plan = plan(cfg, ctx)?;
    for j in ordered(&cfg.joins) {
        let fd = open(j)?;
        if j.namespaces.contains(Namespaces::MOUNT) && ctx.root.is_some() {
            refuse_shared_root_change(j, fd.as_fd())?;
        }
        prepared.entries.push(JoinFd {
            fd: fd.as_raw_fd(),
            nstype: j.namespaces.ns_flags(),
        });
        prepared._fds.push(fd);
    }
    parent.mode_private_memory = plan.private_memory;
    parent.deferred = plan.deferred;
    prepared.unshare_flags = plan.deferred.clone_flags();
    if plan.fork_workload {
        let stack = Stack::take().map_err(Error::io("allocating the workload stack"))?;
        let (r, w) = sys::pipe_cloexec().map_err(Error::io("creating the pid pipe"))?;
        prepared.workload = Some((stack, w.as_raw_fd()));
        parent.pid_pipe = Some((r, w));
    }
    Ok((prepared, parent))
}

/// With a root filesystem in a joined mount namespace, the root change moves every process
/// of that namespace to the container's root (`Ctx::mounts_here`): refused when that
/// namespace is the supervisor's own or PID 1's, which would put the supervisor, or the
/// whole host, inside the container's root. `fd` is what [`open`] returned for `j`.
/// (Threads cannot differ: `setns` and `unshare` of a mount namespace refuse a process
/// whose threads share its file system information.)
fn refuse_shared_root_change(j: &Join, fd: BorrowedFd<'_>) -> Result<()> {
    let target = match &j.source {
        // A pidfd is not a namespace file: the process's own, through /proc (it is alive,
        // `open` checked, and its pidfd keeps its pid from being reused).
        Source::Container { pid, .. } => std::fs::File::open(format!("/proc/{pid}/ns/mnt"))
            .and_then(|f| ns_id(f.as_fd()))
            .map_err(|e| j.error(format!("reading its mount namespace: {e}")))?,
        Source::Path(_) | Source::Fd(_) => {
            ns_id(fd).map_err(|e| j.error(format!("reading the namespace file: {e}")))?
        }
    };
    // PID 1's may be unreadable (an unprivileged supervisor), and then is not joinable
    // either.
    let id = |path: &str| {
        std::fs::File::open(path)
            .and_then(|f| ns_id(f.as_fd()))
            .ok()
    };
    match whose_mount_ns(target, id("/proc/self/ns/mnt"), id("/proc/1/ns/mnt")) {
        Some(whose) => Err(j.error(format!(
            "it is {whose} mount namespace: a root filesystem set up in a joined mount \
             namespace moves every process of that namespace into it"
        ))),
        None => Ok(()),
    }
}

/// Whose mount namespace `target` is, if it is one [`refuse_shared_root_change`] refuses.
fn whose_mount_ns(
    target: (u64, u64),
    ours: Option<(u64, u64)>,
    pid1: Option<(u64, u64)>,
) -> Option<&'static str> {
    if Some(target) == ours {
        Some("the supervisor's own")
    } else if Some(target) == pid1 {
        Some("PID 1's (the host's)")
    } else {
        None
    }
}

/// Opens what `j` joins: a duplicate of a live container's pidfd, or a namespace file of
/// the kind asked for.
fn open(j: &Join) -> Result<OwnedFd> {
    let bad = |reason: String| j.error(reason);
    match &j.source {
        Source::Container { pidfd: None, .. } => {
            Err(bad("the container has already been reaped".into()))
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
            fd.try_clone().map_err(Error::io("duplicating a pidfd"))
        }
        Source::Path(p) => {
            if j.namespaces.bits().count_ones() != 1 {
                return Err(bad("join_path takes exactly one namespace kind".into()));
            }
            let file = std::fs::File::open(p).map_err(|e| bad(e.to_string()))?;
            let fd = OwnedFd::from(file);
            let kind = sys::ns_get_nstype(fd.as_fd())
                .map_err(|e| bad(format!("not a namespace file (NS_GET_NSTYPE: {e})")))?;
            if kind != j.namespaces.ns_flags() {
                return Err(bad(format!(
                    "it is a namespace of another kind ({})",
                    KINDS
                        .iter()
                        .find(|k| k.clone_flag == kind)
                        .map_or("unknown", |k| k.proc_name)
                )));
            }
            Ok(fd)
        }
        Source::Fd(fd) => fd
            .try_clone()
            .map_err(Error::io("duplicating a namespace fd")),
    }
}

/// For a pty in a joined mount namespace (OCI `exec -t`, `docker exec -t`): the `/dev/pts`
/// of the process whose mount namespace is joined, so the terminal is made in the
/// container's own devpts instance (the workload's `tty` names it, and it is the
/// container's, not the host's). `None` when the mount namespace is not joined, when
/// the joined process is not known (a namespace file other than `/proc/PID/ns/mnt`), or
/// when it has no devpts there: the pty is then the host's, as without a join.
///
/// The container's files are the attacker's: `dev/pts` is looked up with
/// `RESOLVE_IN_ROOT` (its symlinks cannot lead out of the container's root) and must be
/// a devpts mount (which holds no symlinks, so its `ptmx` is the real one).
pub(crate) fn joined_devpts(cfg: &JoinConfig) -> Option<OwnedFd> {
    let j = cfg
        .joins
        .iter()
        .find(|j| j.namespaces.contains(Namespaces::MOUNT))?;
    let pid: i32 = match &j.source {
        Source::Container { pid, .. } => *pid,
        Source::Path(p) => p
            .strip_prefix("/proc")
            .ok()
            .filter(|rest| rest.ends_with("ns/mnt") && rest.components().count() == 3)
            .and_then(|rest| rest.components().next())
            .and_then(|c| c.as_os_str().to_str()?.parse().ok())?,
        Source::Fd(_) => return None,
    };
    use std::os::unix::fs::OpenOptionsExt;
    let root = OwnedFd::from(
        std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC)
            .open(format!("/proc/{pid}/root"))
            .ok()?,
    );
    devpts_below(root.as_fd())
}

/// `dev/pts` below the directory `root` (another container's root), if it is a devpts
/// mount: looked up as if `root` were `/` (see [`joined_devpts`]).
fn devpts_below(root: BorrowedFd<'_>) -> Option<OwnedFd> {
    let flags = libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC;
    let pts = sys::openat2_in_root(root, c"dev/pts", flags).ok()?;
    sys::is_devpts(pts.as_fd()).ok()?.then_some(pts)
}

/// (device, inode) of a namespace file: its identity.
fn ns_id(fd: BorrowedFd<'_>) -> std::io::Result<(u64, u64)> {
    let st = nix::sys::stat::fstat(fd.as_raw_fd()).map_err(std::io::Error::from)?;
    Ok((st.st_dev, st.st_ino))
}

/// For the default identity (see `plan::user::default_identity`): the user namespace
/// that owns the joined namespaces, to be joined too, so a pod member or an `exec` gets its
/// pod's identity instead of keeping the supervisor's host ids. `None` when there is
/// nothing to add.
///
/// Fails, for a `privileged` supervisor, when the joined namespaces are owned by the
/// supervisor's own user namespace (a `host_root()` container, `ip netns` files): the
/// workload would run with the supervisor's host ids, which it must ask for by name with
/// `host_root()`. Fails when they belong to different user namespaces.
pub(crate) fn owner_userns(cfg: &JoinConfig, privileged: bool) -> Result<Option<OwnerUserns>> {
    let ours = std::fs::File::open("/proc/self/ns/user")
        .and_then(|f| ns_id(f.as_fd()))
        .map_err(Error::io("reading /proc/self/ns/user"))?;
    let mut owner: Option<((u64, u64), OwnedFd)> = None;
    for j in &cfg.joins {
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
                    || sys::ns_get_nstype(f.as_fd()).ok() != Some(j.namespaces.ns_flags())
                {
                    continue;
                }
                sys::ns_get_userns(f.as_fd()).map_err(|e| {
                    bad(format!(
                        "finding the user namespace that owns it (NS_GET_USERNS: {e})"
                    ))
                })?
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
        return Ok(None);
    };
    if id == ours {
        if privileged {
            let j = &cfg.joins[0];
            return Err(j.error(
                "these namespaces belong to the supervisor's own user namespace, so the workload would keep the supervisor's host identity (host uid 0): call host_root() to ask for that by name, or join a container that has its own user namespace (the default)".into(),
            ));
        }
        return Ok(None);
    }
    // Through a container's pidfd where there is one: one setns then enters its user
    // namespace together with the others (the kernel orders them), which also works when
    // the container's first process is its non-dumpable init, whose namespaces a process
    // already inside the user namespace may not reach through a separate setns.
    Ok(Some(
        match cfg
            .joins
            .iter()
            .position(|j| matches!(j.source, Source::Container { pidfd: Some(_), .. }))
        {
            Some(i) => OwnerUserns::WithJoin(i),
            None => OwnerUserns::Fd(fd),
        },
    ))
}

impl ParentJoin {
    /// After the clone returned: with a joined PID namespace `guard` is the intermediate,
    /// which has exited; reap it and return a guard for the workload instead (a direct
    /// child of ours thanks to `CLONE_PARENT`). Otherwise returns `guard` unchanged.
    pub(crate) fn adopt_workload(&mut self, guard: ChildGuard) -> Result<ChildGuard> {
        let Some((read, write)) = self.pid_pipe.take() else {
            return Ok(guard);
        };
        // Close our write end so that the read sees EOF if the intermediate failed
        // before cloning (it then reported on the error pipe).
        drop(write);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builder::ContainerBuilder;
    use crate::plan::ctx::HostFact;

    fn ctx(ns: Namespaces, sys_admin: bool) -> Ctx {
        let mut ctx = Ctx::for_test(ns);
        ctx.sys_admin = HostFact::known(sys_admin);
        ctx
    }

    fn joins(kinds: &[Namespaces]) -> JoinConfig {
        let mut b = ContainerBuilder::new("/bin/true");
        for (i, &k) in kinds.iter().enumerate() {
            b.join_path(k, format!("/ns/{i}"));
        }
        b.join
    }

    fn dir_fd(p: &std::path::Path) -> OwnedFd {
        use std::os::unix::fs::OpenOptionsExt;
        OwnedFd::from(
            std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_PATH | libc::O_DIRECTORY)
                .open(p)
                .unwrap(),
        )
    }

    /// The pty of an exec'd process is made in the joined container's `dev/pts`, which
    /// the container controls. The attacks: its `dev` is a symlink to the host's `/dev`,
    /// or its `dev/pts` a plain directory whose `ptmx` links to the host's `/dev/ptmx`. A
    /// naive lookup from the host follows both onto the host's devpts (the controls
    /// below); `devpts_below` finds no devpts in either (the caller then uses the host's
    /// ptmx knowingly, as without a join). A real devpts (the host root's) is found.
    #[test]
    fn devpts_below_stays_in_the_root_and_wants_a_devpts() {
        let base = std::env::temp_dir().join(format!("cellblock-devpts-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let (linked, plain) = (base.join("linked"), base.join("plain"));
        std::fs::create_dir_all(&linked).unwrap();
        std::os::unix::fs::symlink("/dev", linked.join("dev")).unwrap();
        std::fs::create_dir_all(plain.join("dev/pts")).unwrap();
        std::os::unix::fs::symlink("/dev/ptmx", plain.join("dev/pts/ptmx")).unwrap();

        // Controls: looked up naively, both lead to the host's devpts and ptmx.
        let naive = dir_fd(&linked.join("dev/pts"));
        assert!(sys::is_devpts(naive.as_fd()).unwrap());
        let host_ptmx = std::fs::metadata(plain.join("dev/pts/ptmx")).unwrap();
        use std::os::unix::fs::MetadataExt;
        assert_eq!(host_ptmx.rdev(), libc::makedev(5, 2));

        assert!(devpts_below(dir_fd(&linked).as_fd()).is_none());
        assert!(devpts_below(dir_fd(&plain).as_fd()).is_none());
        assert!(devpts_below(dir_fd(std::path::Path::new("/")).as_fd()).is_some());
        std::fs::remove_dir_all(&base).unwrap();
    }

    fn bad_join(cfg: &JoinConfig, ctx: &Ctx) -> (Namespaces, String, String) {
        match plan(cfg, ctx) {
            Err(Error::BadJoin {
                namespaces,
                source_desc,
                reason,
            }) => (namespaces, source_desc, reason),
            other => panic!("expected BadJoin, got {other:?}"),
        }
    }

    #[test]
    fn each_kind_is_joined_once_and_not_also_created() {
        let (ns, source, reason) = bad_join(
            &joins(&[Namespaces::empty()]),
            &ctx(Namespaces::empty(), true),
        );
        assert_eq!(
            (ns, source.as_str(), reason.as_str()),
            (Namespaces::empty(), "/ns/0", "no namespace kind given")
        );
        let (_, source, reason) = bad_join(
            &joins(&[Namespaces::NET, Namespaces::NET | Namespaces::UTS]),
            &ctx(Namespaces::empty(), true),
        );
        assert_eq!(source, "/ns/1");
        assert!(reason.contains("joined twice"), "{reason}");
        let (_, _, reason) = bad_join(&joins(&[Namespaces::NET]), &ctx(Namespaces::NET, true));
        assert!(reason.contains("also in namespaces()"), "{reason}");
    }

    #[test]
    fn joining_while_creating_a_user_namespace_is_refused() {
        let e = plan(&joins(&[Namespaces::NET]), &ctx(Namespaces::USER, true)).err();
        assert!(
            matches!(&e, Some(Error::BadConfig(m)) if m.contains("creating a new user namespace")),
            "{e:?}"
        );
    }

    #[test]
    fn joining_without_the_owner_needs_cap_sys_admin() {
        let e = plan(&joins(&[Namespaces::NET]), &ctx(Namespaces::empty(), false)).err();
        assert!(
            matches!(&e, Some(Error::NeedsPrivilege { needs, .. }) if needs.contains("CAP_SYS_ADMIN")),
            "{e:?}"
        );
        // With the user namespace that owns them, the capabilities come from it.
        plan(
            &joins(&[Namespaces::NET, Namespaces::USER]),
            &ctx(Namespaces::empty(), false),
        )
        .unwrap();
    }

    #[test]
    fn clone_mode_and_deferred_namespaces() {
        let root = ctx(Namespaces::UTS, true);
        let p = plan(&joins(&[Namespaces::NET]), &root).unwrap();
        assert_eq!(
            p,
            JoinPlan {
                private_memory: false,
                deferred: Namespaces::empty(),
                fork_workload: false
            }
        );
        assert!(
            plan(&joins(&[Namespaces::TIME]), &root)
                .unwrap()
                .private_memory
        );
        assert!(
            plan(&joins(&[Namespaces::PID]), &root)
                .unwrap()
                .fork_workload
        );
        // Next to a joined user namespace, the created ones come after the joins, and a
        // PID namespace among them needs the workload clone.
        let p = plan(
            &joins(&[Namespaces::USER]),
            &ctx(Namespaces::PID | Namespaces::MOUNT, false),
        )
        .unwrap();
        assert_eq!(
            p,
            JoinPlan {
                private_memory: true,
                deferred: Namespaces::PID | Namespaces::MOUNT,
                fork_workload: true
            }
        );
    }

    #[test]
    fn the_user_namespace_is_entered_first() {
        let cfg = joins(&[
            Namespaces::NET,
            Namespaces::UTS,
            Namespaces::USER,
            Namespaces::IPC,
        ]);
        let order: Vec<Namespaces> = ordered(&cfg.joins).iter().map(|j| j.namespaces).collect();
        assert_eq!(
            order,
            [
                Namespaces::USER,
                Namespaces::NET,
                Namespaces::UTS,
                Namespaces::IPC
            ]
        );
    }

    #[test]
    fn the_owner_is_added_to_a_container_join_or_joined_alone() {
        let mut cfg = joins(&[Namespaces::NET]);
        cfg.add_owner(OwnerUserns::WithJoin(0));
        assert_eq!(cfg.kinds(), Namespaces::NET | Namespaces::USER);
        assert_eq!(cfg.joins.len(), 1);
        let mut cfg = joins(&[Namespaces::NET]);
        let (_, fd) = crate::sys::pipe_cloexec().unwrap();
        cfg.add_owner(OwnerUserns::Fd(fd));
        assert_eq!(cfg.joins.len(), 2);
        assert_eq!(cfg.joins[1].namespaces, Namespaces::USER);
        assert!(!cfg.kinds().contains(Namespaces::MOUNT) && cfg.any());
    }

    /// The supervisor's own mount namespace and PID 1's are refused for a root change;
    /// where the supervisor runs in its own (a container engine in a container), PID 1's is
    /// still named; any other is allowed.
    #[test]
    fn a_root_change_is_refused_in_our_own_and_pid_1s_mount_namespace() {
        let (host, ours, other) = ((4, 1), (4, 2), (4, 3));
        assert_eq!(
            whose_mount_ns(host, Some(host), Some(host)),
            Some("the supervisor's own")
        );
        assert_eq!(
            whose_mount_ns(ours, Some(ours), Some(host)),
            Some("the supervisor's own")
        );
        assert_eq!(
            whose_mount_ns(host, Some(ours), Some(host)),
            Some("PID 1's (the host's)")
        );
        assert_eq!(whose_mount_ns(other, Some(ours), Some(host)), None);
        assert_eq!(whose_mount_ns(other, Some(ours), None), None);
        assert_eq!(whose_mount_ns(host, None, None), None);
    }
}
