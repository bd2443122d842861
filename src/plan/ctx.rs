//! The facts more than one concern's `prepare` needs, gathered once per spawn.
//!
//! A concern's `prepare(config, ctx)` reads its own configuration and this, never another
//! concern's configuration or code: the order the concerns run in is then the one
//! `plan::prepare` shows, and each can be tested with a hand-made `Ctx`.

use std::cell::OnceCell;
use std::os::fd::RawFd;
use std::path::PathBuf;

use crate::builder::ContainerBuilder;
use crate::Namespaces;

/// Cross-concern facts of one spawn.
#[derive(Debug, Clone)]
pub(crate) struct Ctx {
    /// The namespaces the container gets.
    pub(crate) namespaces: Namespaces,
    /// The root filesystem directory (`rootfs`/`chroot`), as given.
    pub(crate) root: Option<PathBuf>,
    /// A pseudo-terminal is attached.
    pub(crate) pty: bool,
    /// The namespace kinds joined from other containers or paths.
    pub(crate) joined: Namespaces,
    /// Whether anything is joined (`join`, `join_path`), even a join that names no kind
    /// (which the join concern refuses).
    pub(crate) joining: bool,
    /// The supervisor's effective uid and gid.
    pub(crate) euid: u32,
    pub(crate) egid: u32,
    /// Whether the supervisor holds both `CAP_SETUID` and `CAP_SETGID` (it may write
    /// multi-range uid/gid maps and change ids without a user namespace). Read once per
    /// process (see [`has_setid_caps`]).
    pub(crate) setid_caps: HostFact<bool>,
    /// Whether the supervisor holds `CAP_SYS_ADMIN` (it may join namespaces without their
    /// user namespace). Read at the first question of each spawn.
    pub(crate) sys_admin: HostFact<bool>,
    /// Whether the default identity may lease blocks of the id pool (`plan/user/`; read
    /// once per process, like `setid_caps`).
    pub(crate) pool_usable: HostFact<bool>,
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
    /// Whether the container's mounts go in a mount namespace set up for it: one of its
    /// own ([`Namespaces::MOUNT`] created), or a joined one with a root filesystem (OCI
    /// `create` with a `mnt` namespace path, as runc does it). The root change in a joined
    /// namespace moves every process of that namespace to the new root (`pivot_root`
    /// changes the root of each process whose root was the old one), so `plan/join.rs`
    /// refuses to do it in the supervisor's own mount namespace or in PID 1's.
    pub(crate) fn mounts_here(&self) -> bool {
        self.namespaces.contains(Namespaces::MOUNT)
            || (self.joined.contains(Namespaces::MOUNT) && self.root.is_some())
    }

    pub(crate) fn new(b: &ContainerBuilder) -> Ctx {
        Ctx {
            namespaces: b.namespaces,
            root: b.fs.root().map(Into::into),
            pty: b.session.pty.is_some(),
            joined: b.join.kinds(),
            joining: b.join.any(),
            euid: nix::unistd::geteuid().as_raw(),
            egid: nix::unistd::getegid().as_raw(),
            setid_caps: HostFact::new(has_setid_caps),
            sys_admin: HostFact::new(|| effective_caps() & CAP_SYS_ADMIN != 0),
            pool_usable: HostFact::new(crate::plan::user::pool_usable),
            min_setup_fd: b.security.min_setup_fd(),
            process_group: b.process_group,
            uses_init: b.session.uses_init(b.namespaces),
        }
    }
}

/// A fact about the host read the first time a concern asks for it, and then kept for the
/// spawn: some cost a parse of `/proc/self/status`, and most spawns never ask.
#[derive(Clone)]
pub(crate) struct HostFact<T: Copy> {
    value: OnceCell<T>,
    read: fn() -> T,
}

impl<T: Copy> HostFact<T> {
    pub(crate) fn new(read: fn() -> T) -> HostFact<T> {
        HostFact {
            value: OnceCell::new(),
            read,
        }
    }

    /// A fact given rather than read (a hand-made `Ctx`).
    #[cfg(test)]
    pub(crate) fn known(value: T) -> HostFact<T> {
        fn unread<T>() -> T {
            unreachable!("a known fact is never read")
        }
        HostFact {
            value: OnceCell::from(value),
            read: unread::<T>,
        }
    }

    pub(crate) fn get(&self) -> T {
        *self.value.get_or_init(self.read)
    }
}

impl<T: Copy + std::fmt::Debug> std::fmt::Debug for HostFact<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.value.get() {
            Some(v) => v.fmt(f),
            None => f.write_str("(not read)"),
        }
    }
}

const CAP_SETGID: u64 = 1 << 6;
const CAP_SETUID: u64 = 1 << 7;
const CAP_SYS_ADMIN: u64 = 1 << 21;

/// The effective capability set of the supervisor (from /proc/self/status).
fn effective_caps() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapEff:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .unwrap_or(0)
}

/// Whether the supervisor holds both `CAP_SETUID` and `CAP_SETGID`.
///
/// Read once per process (parsing /proc/self/status costs tens of microseconds, and every
/// spawn of the default identity asks): a supervisor that drops these capabilities later
/// gets an `IdMap` error from the kernel instead of a silent change of identity.
pub(crate) fn has_setid_caps() -> bool {
    static CAPS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *CAPS.get_or_init(|| effective_caps() & (CAP_SETUID | CAP_SETGID) == CAP_SETUID | CAP_SETGID)
}

#[cfg(test)]
impl Ctx {
    /// A `Ctx` for unit tests: `namespaces` created, nothing joined, no root filesystem,
    /// the supervisor uid 1000 without capabilities.
    pub(crate) fn for_test(namespaces: Namespaces) -> Ctx {
        Ctx {
            namespaces,
            root: None,
            pty: false,
            joined: Namespaces::empty(),
            joining: false,
            min_setup_fd: 3,
            euid: 1000,
            egid: 1000,
            setid_caps: HostFact::known(false),
            sys_admin: HostFact::known(false),
            pool_usable: HostFact::known(false),
            process_group: None,
            uses_init: false,
        }
    }
}

/// For unit tests that set only the facts they need: nothing created or joined, no
/// setup-fd floor, the supervisor uid 1000 without capabilities.
#[cfg(test)]
impl Default for Ctx {
    fn default() -> Ctx {
        Ctx {
            min_setup_fd: 0,
            ..Ctx::for_test(Namespaces::empty())
        }
    }
}
