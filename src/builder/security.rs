//! Security hardening: what a container may still do once its namespaces are set up.
//!
//! Every container gets these defaults, each with an opt-out on [`ContainerBuilder`] whose
//! documentation names the risk:
//!
//! | default | opt-out |
//! |---|---|
//! | all capabilities dropped from all five sets (bounding, effective, permitted, inheritable, ambient) | [`capabilities`](ContainerBuilder::capabilities), [`keep_all_capabilities`](ContainerBuilder::keep_all_capabilities) |
//! | `no_new_privs` (setuid bits and file capabilities grant nothing at execve) | [`no_new_privs(false)`](ContainerBuilder::no_new_privs) |
//! | a seccomp filter denying what Docker's default profile denies, with `EPERM`, including `socket(AF_VSOCK)` and `socket(AF_ALG)`; also `ioctl(TIOCSTI)` and `ioctl(TIOCLINUX)` | [`seccomp`](ContainerBuilder::seccomp), [`Seccomp::allow`], [`Seccomp::allow_socket_family`] |
//! | masked `/proc` and `/sys` paths, read-only `/proc/sys`, `/proc/bus`, … (with [`Namespaces::MOUNT`]) | [`masked_paths(false)`](ContainerBuilder::masked_paths), one path: [`unmask_path`](ContainerBuilder::unmask_path) |
//! | every descriptor but stdio closed at execve | [`pass_fd`](ContainerBuilder::pass_fd), [`inherit_fds(true)`](ContainerBuilder::inherit_fds) |
//! | a new session (no controlling terminal) | [`new_session(false)`](ContainerBuilder::new_session) |
//! | umask `022` | [`umask`](ContainerBuilder::umask) |
//! | nesting (creating namespaces inside) denied | [`nesting(true)`](ContainerBuilder::nesting) |
//!
//! This file holds the configuration: plain data and the public setters. `plan/security.rs`
//! validates it and builds every path string and descriptor list, `plan/seccomp.rs`
//! compiles the seccomp policies to BPF, and `child/security.rs` runs the steps with what
//! was prepared, without allocating.

use std::collections::{BTreeMap, BTreeSet};
use std::os::fd::{OwnedFd, RawFd};
use std::path::PathBuf;
use std::sync::Arc;

use crate::builder::ContainerBuilder;
#[cfg(doc)]
use crate::{Error, Namespaces};

pub use caps::Capability;

/// Paths hidden from the workload by default: a file is covered with `/dev/null`, a
/// directory with an empty read-only tmpfs. Each exposes host kernel state (memory, keys,
/// timers, firmware) or a host-wide control.
pub const DEFAULT_MASKED_PATHS: &[&str] = &[
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/proc/sysrq-trigger",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Paths made read-only by default: writing to them would change the host kernel.
pub const DEFAULT_READONLY_PATHS: &[&str] = &["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys"];

/// The default umask of the workload.
pub const DEFAULT_UMASK: u32 = 0o022;

/// The container's security settings (part of [`ContainerBuilder`]).
#[derive(Debug, Clone)]
pub(crate) struct SecurityConfig {
    /// Bit mask of capabilities kept (`1 << index`); `None` leaves them untouched.
    pub(crate) keep_caps: Option<u64>,
    /// `capability_sets`: the permitted, effective, inheritable and ambient masks, when
    /// they differ from `keep_caps` (which is then the bounding set).
    pub(crate) cap_sets: Option<CapSets>,
    pub(crate) no_new_privs: bool,
    pub(crate) seccomp: Seccomp,
    /// `add_seccomp`: more filters, installed after `seccomp`'s, in order.
    pub(crate) more_seccomp: Vec<Seccomp>,
    pub(crate) masked_paths: bool,
    pub(crate) extra_masks: Vec<PathBuf>,
    /// `readonly_path`: more paths made read-only.
    pub(crate) extra_readonly: Vec<PathBuf>,
    /// Default masked or read-only paths left as they are ([`ContainerBuilder::unmask_path`]).
    pub(crate) unmasked: Vec<PathBuf>,
    pub(crate) umask: Option<u32>,
    pub(crate) inherit_fds: bool,
    pub(crate) pass_fds: Vec<(Arc<OwnedFd>, RawFd)>,
    pub(crate) new_session: bool,
    pub(crate) nesting: bool,
}

impl SecurityConfig {
    /// The lowest descriptor number above every `pass_fd` target (at least 3): where every
    /// descriptor the child's own setup still needs after the `dup2`s must live.
    pub(crate) fn min_setup_fd(&self) -> RawFd {
        self.pass_fds
            .iter()
            .map(|(_, t)| *t + 1)
            .max()
            .unwrap_or(3)
            .max(3)
    }
}

impl Default for SecurityConfig {
    fn default() -> SecurityConfig {
        SecurityConfig {
            keep_caps: Some(0),
            cap_sets: None,
            no_new_privs: true,
            seccomp: Seccomp::default_profile(),
            more_seccomp: Vec::new(),
            masked_paths: true,
            extra_masks: Vec::new(),
            extra_readonly: Vec::new(),
            unmasked: Vec::new(),
            umask: Some(DEFAULT_UMASK),
            inherit_fds: false,
            pass_fds: Vec::new(),
            new_session: true,
            nesting: false,
        }
    }
}

/// The capability sets besides the bounding set ([`ContainerBuilder::capability_sets`]),
/// as bit masks (`1 << index`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct CapSets {
    pub(crate) permitted: u64,
    pub(crate) effective: u64,
    pub(crate) inheritable: u64,
    pub(crate) ambient: u64,
}

fn mask(caps: impl IntoIterator<Item = Capability>) -> u64 {
    caps.into_iter().fold(0, |m, c| m | c.bitmask())
}

/// A condition on one system call argument, for [`Seccomp::deny_if`] and
/// [`Seccomp::allow_if`]: libseccomp's `SCMP_A0(op, ...)` and the OCI profiles'
/// `SCMP_CMP_*` operators, comparing **all 64 bits** of the argument register as an
/// unsigned number (libseccomp's semantics on 64-bit architectures: the high word, then
/// the low word).
///
/// Mind the width of the argument in the kernel's prototype: for an `int` argument the
/// kernel uses only the low 32 bits, so `socket(0x1_0000_0028, ..)` *is*
/// `socket(AF_VSOCK, ..)`, yet `ArgCmp::eq(0, 40)` does not match it. To deny an `int`
/// value, compare the low word only: `ArgCmp::masked_eq(0, 0xffff_ffff, 40)` (or use
/// [`Seccomp::deny_arg`], which does exactly that).
///
/// ```
/// use cellblock::ArgCmp;
/// // clone() without any namespace flag (Docker's rule: flags & mask == 0).
/// let no_ns = ArgCmp::masked_eq(0, libc::CLONE_NEWUSER as u64 | libc::CLONE_NEWNS as u64, 0);
/// // A length argument of at most 4096.
/// let small = ArgCmp::le(2, 4096);
/// assert_ne!(no_ns, small);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ArgCmp {
    pub(crate) arg: u8,
    pub(crate) op: ArgOp,
}

/// The comparison of an [`ArgCmp`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum ArgOp {
    Ne(u64),
    Lt(u64),
    Le(u64),
    Eq(u64),
    Ge(u64),
    Gt(u64),
    MaskedEq { mask: u64, value: u64 },
}

impl ArgCmp {
    /// Argument `arg` (0 to 5) is not `value` (`SCMP_CMP_NE`).
    pub fn ne(arg: u8, value: u64) -> ArgCmp {
        ArgCmp {
            arg,
            op: ArgOp::Ne(value),
        }
    }
    /// Argument `arg` is below `value` (`SCMP_CMP_LT`, unsigned).
    pub fn lt(arg: u8, value: u64) -> ArgCmp {
        ArgCmp {
            arg,
            op: ArgOp::Lt(value),
        }
    }
    /// Argument `arg` is at most `value` (`SCMP_CMP_LE`, unsigned).
    pub fn le(arg: u8, value: u64) -> ArgCmp {
        ArgCmp {
            arg,
            op: ArgOp::Le(value),
        }
    }
    /// Argument `arg` is `value` (`SCMP_CMP_EQ`), on all 64 bits.
    pub fn eq(arg: u8, value: u64) -> ArgCmp {
        ArgCmp {
            arg,
            op: ArgOp::Eq(value),
        }
    }
    /// Argument `arg` is at least `value` (`SCMP_CMP_GE`, unsigned).
    pub fn ge(arg: u8, value: u64) -> ArgCmp {
        ArgCmp {
            arg,
            op: ArgOp::Ge(value),
        }
    }
    /// Argument `arg` is above `value` (`SCMP_CMP_GT`, unsigned).
    pub fn gt(arg: u8, value: u64) -> ArgCmp {
        ArgCmp {
            arg,
            op: ArgOp::Gt(value),
        }
    }
    /// `arg & mask == value` (`SCMP_CMP_MASKED_EQ`; the OCI spec's `value` is the mask and
    /// `valueTwo` the value). A `value` with bits outside `mask` never matches.
    pub fn masked_eq(arg: u8, mask: u64, value: u64) -> ArgCmp {
        ArgCmp {
            arg,
            op: ArgOp::MaskedEq { mask, value },
        }
    }
    /// Whether the condition holds for the argument values `args` (what the filter
    /// computes; for tests and for callers checking a profile).
    pub fn holds(&self, args: &[u64; 6]) -> bool {
        let Some(&x) = args.get(usize::from(self.arg)) else {
            return false;
        };
        match self.op {
            ArgOp::Ne(v) => x != v,
            ArgOp::Lt(v) => x < v,
            ArgOp::Le(v) => x <= v,
            ArgOp::Eq(v) => x == v,
            ArgOp::Ge(v) => x >= v,
            ArgOp::Gt(v) => x > v,
            ArgOp::MaskedEq { mask, value } => x & mask == value,
        }
    }
}

/// A seccomp policy: Docker-like defaults plus the caller's additions.
///
/// System calls are named by their numbers for the build target (`libc::SYS_*`), which is
/// what the kernel sees. Denied calls fail with `EPERM` (or the errno given to
/// [`deny_errno`](Self::deny_errno) and [`deny_arg`](Self::deny_arg)); everything else is
/// allowed, unless the policy is an [`allow_list`](Self::allow_list), where only the calls
/// allowed run. More filters can be stacked with
/// [`add_seccomp`](ContainerBuilder::add_seccomp).
///
/// ```
/// use cellblock::{Container, Seccomp};
/// let mut b = Container::builder("/bin/true");
/// // Also forbid ptrace; allow the workload to call acct() (a host-wide switch!).
/// b.seccomp(Seccomp::default_profile().deny(libc::SYS_ptrace).allow(libc::SYS_acct));
/// ```
///
/// A filter of your own, without the defaults: [`disabled`](Self::disabled) plus
/// [`deny`](Self::deny) installs a filter that denies exactly the calls named.
///
/// ```
/// use cellblock::{Container, Seccomp};
/// Container::builder("/bin/true").seccomp(Seccomp::disabled().deny(libc::SYS_ptrace));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Seccomp {
    /// The default profile's rules apply.
    pub(crate) enabled: bool,
    /// Calls denied outright, with their errno (`deny`: EPERM; `deny_errno`).
    pub(crate) deny: BTreeMap<i64, i32>,
    pub(crate) allow: BTreeSet<i64>,
    /// Socket families taken out of [`DENIED_SOCKET_FAMILIES`].
    pub(crate) allow_families: BTreeSet<i32>,
    /// [`allow_list`](Seccomp::allow_list): the errno of every call not allowed.
    pub(crate) otherwise: Option<i32>,
    /// [`deny_arg`](Seccomp::deny_arg) rules: (call, argument, value, errno).
    pub(crate) arg_rules: BTreeSet<(i64, u8, u32, i32)>,
    /// `allow_arg`: (nr, arg, value) of an allow list's calls allowed for some values only.
    pub(crate) allow_args: BTreeSet<(i64, u8, u32)>,
    /// [`deny_if`](Seccomp::deny_if) rules, in the order given: (call, conditions, errno).
    pub(crate) deny_ifs: Vec<(i64, Vec<ArgCmp>, i32)>,
    /// [`allow_if`](Seccomp::allow_if) rules, in the order given.
    pub(crate) allow_ifs: Vec<(i64, Vec<ArgCmp>)>,
    /// [`from_bpf`](Seccomp::from_bpf): a ready-made program, installed as it is.
    pub(crate) raw: Option<Arc<[u8]>>,
}

/// The calls the child still makes after installing the filter (restoring its signal
/// mask, then `execve`, or `execveat` for the init): an allow list always allows them.
pub const SECCOMP_ALWAYS_ALLOWED: [i64; 3] = [
    libc::SYS_rt_sigprocmask,
    libc::SYS_execve,
    libc::SYS_execveat,
];

/// Socket families the default profile refuses to `socket()` and `socketpair()`, with
/// `EPERM`; the same two Docker's default profile refuses (moby/profiles
/// `seccomp/default.json`: `socket` is allowed for families below 38, equal to 39 and
/// above 40).
///
/// * `AF_VSOCK` (40): not namespaced by [`Namespaces::NET`]. A workload in its own network
///   namespace still shares the host's vsock port space: it can connect to a hypervisor's
///   or a VM manager's host services (KubeVirt's reason for the rule) and bind ports the
///   host's own services then cannot.
/// * `AF_ALG` (38): the kernel's crypto API as sockets, which no ordinary program needs
///   and whose code has had exploitable bugs (Docker added this rule in 2026).
///
/// **Why `EPERM`, not `EAFNOSUPPORT`:** it is what Docker returns, so software that runs
/// in Docker containers already copes with it; it is what the rest of this profile
/// returns; and it tells the caller apart a sandbox's refusal from a kernel without that
/// family (`EAFNOSUPPORT`), which is what a confused user, and our tests, need to see.
///
/// Only the direct system calls exist on the architectures we filter (x86_64 and
/// aarch64): the `socketcall()` multiplexer, whose arguments sit in memory a filter cannot
/// read, exists only for 32-bit x86 (and others), and the filter kills any process that
/// makes a system call of another architecture (`int 0x80` included). That is the hole
/// Docker cannot close on i386 and we do not have.
pub const DENIED_SOCKET_FAMILIES: &[i32] = &[libc::AF_ALG, libc::AF_VSOCK];

/// `ioctl()` requests the default profile refuses with `EPERM`, on any descriptor:
///
/// * `TIOCSTI` pushes bytes into a terminal's input, as if typed: a workload holding the
///   supervisor's terminal (with [`new_session(false)`](ContainerBuilder::new_session), or
///   a terminal descriptor passed in) types commands into the host shell (CVE-2017-5226).
///   The new session is the first layer; this is the second, and also covers a terminal
///   reached any other way. (Linux 6.2+ can also refuse it host-wide with the sysctl
///   `dev.tty.legacy_tiocsti = 0`.)
/// * `TIOCLINUX` drives a virtual console: selection and paste (`TIOCL_SETSEL`,
///   `TIOCL_PASTESEL`) are the same kind of injection on a console.
pub const DENIED_IOCTLS: &[u32] = &[libc::TIOCSTI as u32, libc::TIOCLINUX as u32];

impl Seccomp {
    /// The default: deny what Docker's default profile denies (module loading, kexec,
    /// reboot, keyrings, bpf, perf, userfaultfd, `open_by_handle_at`, the mount family,
    /// namespace creation and joining, clock setting, swap, accounting, io_uring, …).
    ///
    /// Some calls are denied only for some arguments: `clone()` with a `CLONE_NEW*` flag,
    /// `socket()` and `socketpair()` for the families in [`DENIED_SOCKET_FAMILIES`]
    /// (`AF_VSOCK`, `AF_ALG`), and `ioctl()` for the requests in [`DENIED_IOCTLS`]
    /// (`TIOCSTI`, `TIOCLINUX`). [`allow`](Self::allow) of such a call lifts its argument
    /// rule entirely; [`allow_socket_family`](Self::allow_socket_family) lifts one family.
    pub fn default_profile() -> Seccomp {
        Seccomp {
            enabled: true,
            ..Seccomp::disabled()
        }
    }

    /// Without the default profile: no filter at all, unless calls are then added with
    /// [`deny`](Self::deny), in which case the filter denies exactly those (and, like every
    /// filter of ours, kills a process making a system call of another architecture, whose
    /// numbers mean other calls).
    ///
    /// **Risk:** the workload reaches every system call of the host kernel, including
    /// those that have repeatedly been the way out of containers (keyctl, bpf,
    /// userfaultfd, perf_event_open, io_uring), `AF_VSOCK` sockets (the host's vsock port
    /// space) and `TIOCSTI` on any terminal it holds; only capabilities and namespaces
    /// remain.
    pub fn disabled() -> Seccomp {
        Seccomp {
            enabled: false,
            deny: BTreeMap::new(),
            allow: BTreeSet::new(),
            allow_families: BTreeSet::new(),
            otherwise: None,
            arg_rules: BTreeSet::new(),
            allow_args: BTreeSet::new(),
            deny_ifs: Vec::new(),
            allow_ifs: Vec::new(),
            raw: None,
        }
    }

    /// An allow list instead of the default profile: only the calls added with
    /// [`allow`](Self::allow) run, every other fails with `errno` (libseccomp's
    /// `SyscallFilter(ERRNO(errno))` with `ALLOW` rules; bubblewrap's tests use `ENOSYS`,
    /// which programs read as "not implemented here" and fall back from). Rules added with
    /// [`deny`](Self::deny), [`deny_errno`](Self::deny_errno) and
    /// [`deny_arg`](Self::deny_arg) still apply to allowed calls.
    ///
    /// The list must hold what the workload needs from its first instruction on: the
    /// filter is installed before `execve`, so the dynamic loader runs under it (`mmap`,
    /// `mprotect`, `openat`, `read`, `close`, `newfstatat`, `brk`, `arch_prctl`, ...). The
    /// three calls the child itself makes after installing it, [`SECCOMP_ALWAYS_ALLOWED`]
    /// (`rt_sigprocmask`, `execve`, `execveat`), are always allowed. With the built-in
    /// init (a PID namespace) the list must allow the init's calls too (`clone`, `wait4`,
    /// `kill`, `rt_sigtimedwait`, ...); with [`no_new_privs(false)`](ContainerBuilder::no_new_privs)
    /// the filter goes in before the identity change, and the list must allow `setresuid`,
    /// `setresgid`, `setgroups`, `capset` and `prctl`. A call the child needs and the list
    /// refuses fails the spawn with that stage's error. An `errno` outside 1..=4095 is
    /// refused with [`Error::Security`] when the container is spawned.
    ///
    /// ```
    /// use cellblock::{Container, Seccomp};
    /// let mut policy = Seccomp::allow_list(libc::ENOSYS);
    /// for nr in [libc::SYS_read, libc::SYS_write, libc::SYS_exit_group] {
    ///     policy = policy.allow(nr);
    /// }
    /// Container::builder("/static/tool").seccomp(policy);
    /// ```
    pub fn allow_list(errno: i32) -> Seccomp {
        Seccomp {
            otherwise: Some(errno),
            ..Seccomp::disabled()
        }
    }

    /// Also deny system call `nr` (a `libc::SYS_*` number) with `EPERM`, whatever its
    /// arguments. Works on [`disabled`](Self::disabled) too.
    pub fn deny(self, nr: i64) -> Seccomp {
        self.deny_errno(nr, libc::EPERM)
    }

    /// Like [`deny`](Self::deny), failing the call with `errno` instead of `EPERM`
    /// (libseccomp's `ERRNO(errno)` action), e.g. `ENOSYS` to make a program fall back,
    /// or an errno the call never returns otherwise, to tell the filter's refusals apart.
    /// An `errno` outside 1..=4095 (the kernel's `MAX_ERRNO`; 0 would fake success) is
    /// refused with [`Error::Security`] when the container is spawned.
    ///
    /// ```
    /// use cellblock::{Container, Seccomp};
    /// Container::builder("/bin/true")
    ///     .seccomp(Seccomp::default_profile().deny_errno(libc::SYS_chroot, libc::ECONNREFUSED));
    /// ```
    pub fn deny_errno(mut self, nr: i64, errno: i32) -> Seccomp {
        self.allow.remove(&nr);
        self.deny.insert(nr, errno);
        self
    }

    /// Deny system call `nr` with `errno` when argument `arg` (0 to 5) equals `value` in
    /// its low 32 bits, the width of every `int` argument the kernel reads (so a value with
    /// junk in the upper half of the register is caught too: CVE-2019-10063). Other calls
    /// of `nr` are untouched. Repeatable: any matching rule denies. This is how a rule on
    /// an `ioctl` request is written, e.g. `TIOCSTI` (the default profile already has that
    /// one, see [`DENIED_IOCTLS`]):
    ///
    /// ```
    /// use cellblock::{Container, Seccomp};
    /// let policy = Seccomp::disabled()
    ///     .deny_arg(libc::SYS_ioctl, 1, libc::TIOCSTI as u32, libc::EPERM);
    /// Container::builder("/bin/true").seccomp(policy);
    /// ```
    ///
    /// An `arg` above 5 or an `errno` outside 1..=4095 is refused with [`Error::Security`]
    /// when the container is spawned. A call denied outright ([`deny`](Self::deny)) stays
    /// denied for every argument; [`allow`](Self::allow) lifts the default profile's
    /// argument rules, not these.
    pub fn deny_arg(mut self, nr: i64, arg: u8, value: u32, errno: i32) -> Seccomp {
        self.arg_rules.insert((nr, arg, value, errno));
        self
    }

    /// In an [`allow_list`](Self::allow_list): allow system call `nr` when argument `arg`
    /// (0 to 5) equals `value` in its low 32 bits (see [`deny_arg`](Self::deny_arg) for
    /// why only those); other calls of `nr` fail with the list's errno. Repeatable: any
    /// matching value allows (libseccomp's several `ALLOW` rules for one call with an
    /// `SCMP_CMP_EQ` condition each, as the OCI default profiles have for `personality`).
    /// An [`allow`](Self::allow) of the same call allows it for every argument;
    /// [`deny_arg`](Self::deny_arg) rules on it still deny first.
    ///
    /// ```
    /// use cellblock::{Container, Seccomp};
    /// let policy = Seccomp::allow_list(libc::ENOSYS)
    ///     .allow(libc::SYS_exit_group)
    ///     .allow_arg(libc::SYS_personality, 0, 0)
    ///     .allow_arg(libc::SYS_personality, 0, 0xffff_ffff);
    /// Container::builder("/static/tool").seccomp(policy);
    /// ```
    ///
    /// Outside an allow list, or with an `arg` above 5, the spawn fails with
    /// [`Error::Security`].
    pub fn allow_arg(mut self, nr: i64, arg: u8, value: u32) -> Seccomp {
        self.allow_args.insert((nr, arg, value));
        self
    }

    /// Deny system call `nr` with `errno` when **every** condition of `conds` holds (one
    /// libseccomp rule with several `arg_cmp`s; an OCI rule's `args`). Each condition
    /// compares all 64 bits of its argument ([`ArgCmp`]); other calls of `nr` are
    /// untouched. Repeatable: any matching rule denies, the first added deciding the
    /// errno. With no conditions it is [`deny_errno`](Self::deny_errno).
    ///
    /// ```
    /// use cellblock::{ArgCmp, Container, Seccomp};
    /// // kill() with a real-time signal (above 31) to anything but the caller's own
    /// // process group (pid 0) is refused:
    /// let policy = Seccomp::default_profile().deny_if(
    ///     libc::SYS_kill,
    ///     &[ArgCmp::ne(0, 0), ArgCmp::gt(1, 31)],
    ///     libc::EPERM,
    /// );
    /// Container::builder("/bin/true").seccomp(policy);
    /// ```
    ///
    /// A condition on an argument above 5, or an `errno` outside 1..=4095, is refused
    /// with [`Error::Security`] when the container is spawned. As with
    /// [`deny_arg`](Self::deny_arg), a call denied outright stays denied, and in an
    /// [`allow_list`](Self::allow_list) a call not allowed keeps the list's errno.
    pub fn deny_if(mut self, nr: i64, conds: &[ArgCmp], errno: i32) -> Seccomp {
        if conds.is_empty() {
            return self.deny_errno(nr, errno);
        }
        self.deny_ifs.push((nr, conds.to_vec(), errno));
        self
    }

    /// In an [`allow_list`](Self::allow_list): allow system call `nr` when **every**
    /// condition of `conds` holds (64-bit comparisons, see [`ArgCmp`]); other calls of
    /// `nr` fail with the list's errno, unless another rule allows them. Repeatable: any
    /// matching rule allows. This is the OCI default profiles' `clone` rule (allowed when
    /// no namespace flag is set):
    ///
    /// ```
    /// use cellblock::{ArgCmp, Container, Seccomp};
    /// let ns = (libc::CLONE_NEWNS | libc::CLONE_NEWUTS | libc::CLONE_NEWIPC | libc::CLONE_NEWUSER
    ///     | libc::CLONE_NEWPID | libc::CLONE_NEWNET | libc::CLONE_NEWCGROUP) as u64;
    /// let policy = Seccomp::allow_list(libc::EPERM)
    ///     .allow(libc::SYS_exit_group)
    ///     .allow_if(libc::SYS_clone, &[ArgCmp::masked_eq(0, ns, 0)]);
    /// Container::builder("/static/tool").seccomp(policy);
    /// ```
    ///
    /// With no conditions it is [`allow`](Self::allow). Outside an allow list, or with a
    /// condition on an argument above 5, the spawn fails with [`Error::Security`];
    /// [`deny_if`](Self::deny_if) and [`deny_arg`](Self::deny_arg) rules on the call still
    /// deny first.
    pub fn allow_if(mut self, nr: i64, conds: &[ArgCmp]) -> Seccomp {
        if conds.is_empty() {
            return self.allow(nr);
        }
        self.allow_ifs.push((nr, conds.to_vec()));
        self
    }

    /// Allow system call `nr` even though the default profile denies it, for any arguments
    /// (for `socket`, `socketpair`, `ioctl` and `clone` this lifts their argument rules).
    ///
    /// **Risk:** each default entry is there because it reaches host-wide kernel state;
    /// allowing one gives the workload that surface back (guarded only by capabilities).
    pub fn allow(mut self, nr: i64) -> Seccomp {
        self.deny.remove(&nr);
        self.allow.insert(nr);
        self
    }

    /// Allow `socket()` and `socketpair()` for `family` (a `libc::AF_*` number) although
    /// the default profile denies it (see [`DENIED_SOCKET_FAMILIES`]); the other denied
    /// families stay denied.
    ///
    /// **Risk:** for `AF_VSOCK`, the workload shares the host's vsock port space whatever
    /// its network namespace: it reaches the hypervisor's and the host's vsock services and
    /// can take ports from them. For `AF_ALG`, the kernel's crypto code becomes reachable.
    ///
    /// ```
    /// use cellblock::{Container, Seccomp};
    /// Container::builder("/bin/true")
    ///     .seccomp(Seccomp::default_profile().allow_socket_family(libc::AF_VSOCK));
    /// ```
    pub fn allow_socket_family(mut self, family: i32) -> Seccomp {
        self.allow_families.insert(family);
        self
    }

    /// Whether a filter will be installed: the default profile, an
    /// [`allow_list`](Self::allow_list), or [`disabled`](Self::disabled) with rules added by
    /// [`deny`](Self::deny), [`deny_errno`](Self::deny_errno) or [`deny_arg`](Self::deny_arg).
    pub fn is_enabled(&self) -> bool {
        self.enabled
            || !self.deny.is_empty()
            || self.otherwise.is_some()
            || !self.arg_rules.is_empty()
            || !self.allow_args.is_empty()
            || !self.deny_ifs.is_empty()
            || !self.allow_ifs.is_empty()
            || self.raw.is_some()
    }

    /// A classic BPF program made elsewhere (libseccomp's `seccomp_export_bpf`, bubblewrap's
    /// `--seccomp FD`/`--add-seccomp-fd FD`): `struct sock_filter` instructions, 8 bytes
    /// each in native byte order, installed exactly as given, with
    /// [`seccomp`](ContainerBuilder::seccomp) in place of the default profile or with
    /// [`add_seccomp`](ContainerBuilder::add_seccomp) after it.
    ///
    /// It takes no rules of cellblock's (`deny`, `allow`, ... on it are refused), and
    /// the spawn fails with [`Error::Security`] if its length is not a whole, non-zero
    /// number of instructions, at most 4096 (the kernel's `BPF_MAXINSNS`); the kernel
    /// checks the rest when the child installs it ([`Stage::Seccomp`](crate::Stage::Seccomp)).
    ///
    /// **Risk:** cellblock cannot read such a program: nothing guarantees that it checks the
    /// architecture (a process could then use another architecture's numbers, such as
    /// `int 0x80`, around it) or that it denies what the default profile does. In place of
    /// the default profile it is the only filter; added after it, the stricter answer wins.
    ///
    /// ```
    /// use cellblock::{Container, Seccomp};
    /// // One instruction: BPF_RET | BPF_K, SECCOMP_RET_ALLOW.
    /// let allow_all: Vec<u8> = [0x06u16.to_ne_bytes().as_slice(), &[0, 0], &0x7fff_0000u32.to_ne_bytes()].concat();
    /// Container::builder("/bin/true").add_seccomp(Seccomp::from_bpf(allow_all));
    /// ```
    pub fn from_bpf(program: impl Into<Vec<u8>>) -> Seccomp {
        Seccomp {
            raw: Some(program.into().into()),
            ..Seccomp::disabled()
        }
    }
}

/// The system calls the default profile denies outright with `EPERM`, for the build target
/// (the argument rules on `clone`, `socket`, `socketpair` and `ioctl`, and `clone3`'s
/// `ENOSYS`, are not in it). For tests that attack every entry; not a stable API.
#[doc(hidden)]
pub fn default_denied_syscalls() -> Vec<i64> {
    default_denied()
}

/// System calls denied by the default profile (Docker's default profile leaves all of these
/// out of its allow list, or allows them only with a capability we drop anyway).
pub(crate) fn default_denied() -> Vec<i64> {
    let mut v = vec![
        libc::SYS_acct,
        libc::SYS_add_key,
        libc::SYS_request_key,
        libc::SYS_keyctl,
        libc::SYS_bpf,
        libc::SYS_perf_event_open,
        libc::SYS_userfaultfd,
        libc::SYS_open_by_handle_at,
        libc::SYS_kexec_load,
        libc::SYS_kexec_file_load,
        libc::SYS_init_module,
        libc::SYS_finit_module,
        libc::SYS_delete_module,
        libc::SYS_reboot,
        libc::SYS_swapon,
        libc::SYS_swapoff,
        libc::SYS_settimeofday,
        libc::SYS_clock_settime,
        libc::SYS_clock_adjtime,
        libc::SYS_quotactl,
        libc::SYS_io_uring_setup,
        libc::SYS_io_uring_enter,
        libc::SYS_io_uring_register,
        libc::SYS_fanotify_init,
        libc::SYS_lookup_dcookie,
        libc::SYS_nfsservctl,
        libc::SYS_syslog,
        libc::SYS_vhangup,
    ];
    #[cfg(target_arch = "x86_64")]
    v.extend([
        libc::SYS_uselib,
        libc::SYS_ustat,
        libc::SYS_sysfs,
        libc::SYS__sysctl,
        libc::SYS_iopl,
        libc::SYS_ioperm,
    ]);
    v.extend(NESTING_SYSCALLS);
    v
}

/// What nesting needs: mounting (setup of an inner container) and creating or joining
/// namespaces. Denied by default, allowed by [`ContainerBuilder::nesting`].
pub(crate) const NESTING_SYSCALLS: [i64; 12] = [
    libc::SYS_mount,
    libc::SYS_umount2,
    libc::SYS_pivot_root,
    libc::SYS_move_mount,
    libc::SYS_open_tree,
    libc::SYS_fsopen,
    libc::SYS_fsconfig,
    libc::SYS_fsmount,
    libc::SYS_fspick,
    libc::SYS_mount_setattr,
    libc::SYS_unshare,
    libc::SYS_setns,
];

/// The `CLONE_NEW*` flags `clone()` is refused with by default (checked on its flags
/// argument). `CLONE_NEWTIME` shares its bit with the exit signal in `clone()`, and is only
/// usable through clone3/unshare, which are covered separately.
pub(crate) const CLONE_NS_FLAGS: [i32; 7] = [
    libc::CLONE_NEWNS,
    libc::CLONE_NEWUTS,
    libc::CLONE_NEWIPC,
    libc::CLONE_NEWUSER,
    libc::CLONE_NEWPID,
    libc::CLONE_NEWNET,
    libc::CLONE_NEWCGROUP,
];

impl ContainerBuilder {
    /// Keep these capabilities (in all five sets: bounding, permitted, effective,
    /// inheritable and ambient, so they survive execve); drop every other one. By default
    /// all are dropped.
    ///
    /// **Risk:** a workload that runs as root on the host (no user namespace) holds each
    /// kept capability over the whole host: `CAP_SYS_ADMIN` alone is enough to escape.
    ///
    /// ```
    /// use cellblock::{Capability, Container};
    /// Container::builder("/bin/true").capabilities([Capability::CAP_NET_BIND_SERVICE]);
    /// ```
    pub fn capabilities(&mut self, keep: impl IntoIterator<Item = Capability>) -> &mut Self {
        self.security.keep_caps = Some(mask(keep));
        self.security.cap_sets = None;
        self
    }

    /// Sets the five capability sets one by one, as an OCI runtime's `process.capabilities`
    /// does (where [`capabilities`](Self::capabilities) puts one set in all five):
    /// `bounding` limits what execve may ever grant; `permitted`, `effective` and
    /// `inheritable` are the workload's sets when it is exec'd; `ambient` is what a
    /// non-root workload keeps across execve. Every capability not named is dropped.
    ///
    /// What the kernel then makes of them at execve (`man 7 capabilities`): a workload
    /// running as uid 0 gets its bounding set (plus inheritable) in permitted and
    /// effective again, whatever those said; any other uid keeps only `ambient` (plus what
    /// a file's capabilities grant, unless [`no_new_privs`](Self::no_new_privs)). So for a
    /// non-root workload to hold a capability, list it in ambient, which must lie within
    /// both permitted and inheritable (the kernel's rule); `effective` must lie within
    /// `permitted`. Otherwise the spawn fails with [`Error::Security`] naming the set.
    ///
    /// ```
    /// use cellblock::{Capability, Container};
    /// use Capability::*;
    /// // What containerd sends for a uid-1000 workload: it ends up with no capability,
    /// // though its bounding set still holds these.
    /// let docker = [CAP_CHOWN, CAP_KILL, CAP_NET_BIND_SERVICE];
    /// Container::builder("/bin/true").user(1000, 1000).capability_sets(docker, docker, docker, [], []);
    /// // The same, keeping CAP_NET_BIND_SERVICE across execve.
    /// let bind = [CAP_NET_BIND_SERVICE];
    /// Container::builder("/bin/true").user(1000, 1000).capability_sets(docker, docker, docker, bind, bind);
    /// ```
    ///
    /// **Risk:** as for [`capabilities`](Self::capabilities), for the bounding set of a
    /// root workload and the ambient set of any other.
    pub fn capability_sets(
        &mut self,
        bounding: impl IntoIterator<Item = Capability>,
        permitted: impl IntoIterator<Item = Capability>,
        effective: impl IntoIterator<Item = Capability>,
        inheritable: impl IntoIterator<Item = Capability>,
        ambient: impl IntoIterator<Item = Capability>,
    ) -> &mut Self {
        self.security.keep_caps = Some(mask(bounding));
        self.security.cap_sets = Some(CapSets {
            permitted: mask(permitted),
            effective: mask(effective),
            inheritable: mask(inheritable),
            ambient: mask(ambient),
        });
        self
    }

    /// Leave the workload every capability the supervisor has (no dropping at all).
    ///
    /// **Risk:** with a root supervisor and no user namespace, the workload is full root
    /// on the host: it can mount, load modules, ptrace the supervisor, reboot.
    pub fn keep_all_capabilities(&mut self) -> &mut Self {
        self.security.keep_caps = None;
        self.security.cap_sets = None;
        self
    }

    /// Set `no_new_privs` (default: on), so execve never grants privileges: setuid/setgid
    /// bits and file capabilities are ignored.
    ///
    /// **Risk (off):** any setuid-root or file-capability binary visible in the container
    /// hands its privileges to the workload.
    pub fn no_new_privs(&mut self, on: bool) -> &mut Self {
        self.security.no_new_privs = on;
        self
    }

    /// The seccomp policy (default: [`Seccomp::default_profile`]). The filter is compiled
    /// to BPF in the supervisor and installed as the child's last step before execve.
    pub fn seccomp(&mut self, policy: Seccomp) -> &mut Self {
        self.security.seccomp = policy;
        self
    }

    /// Installs `policy` as one more seccomp filter, after the one set with
    /// [`seccomp`](Self::seccomp) and those added before (bubblewrap's `--add-seccomp-fd`).
    /// The kernel runs every filter on every call and the strictest answer wins (a
    /// failure beats an allow); between two failures, the filter installed *last* gives
    /// the errno. So an allow list and a deny list can be kept apart, as Flatpak does:
    ///
    /// ```
    /// use cellblock::{Container, Seccomp};
    /// let allow = Seccomp::allow_list(libc::ENOSYS)
    ///     .allow(libc::SYS_read).allow(libc::SYS_write).allow(libc::SYS_prctl);
    /// Container::builder("/static/tool")
    ///     .seccomp(Seccomp::disabled())
    ///     .add_seccomp(allow)
    ///     .add_seccomp(Seccomp::disabled().deny_errno(libc::SYS_chmod, libc::ECONNREFUSED));
    /// ```
    ///
    /// Each filter but the last must allow `prctl` (the next one is installed with
    /// `prctl(PR_SET_SECCOMP)`, under the earlier filters); otherwise the spawn fails with
    /// [`Stage::Seccomp`](crate::Stage::Seccomp). A filter without any rule
    /// ([`Seccomp::disabled`] alone) installs nothing.
    pub fn add_seccomp(&mut self, policy: Seccomp) -> &mut Self {
        self.security.more_seccomp.push(policy);
        self
    }

    /// Mask [`DEFAULT_MASKED_PATHS`] and make [`DEFAULT_READONLY_PATHS`] read-only
    /// (default: on). Needs [`Namespaces::MOUNT`] (without it the mounts would be the
    /// host's); without one the defaults are skipped and only capabilities and seccomp
    /// keep the workload off those files.
    ///
    /// **Risk (off):** the workload can read host kernel memory layout and keys from
    /// `/proc/kcore`, `/proc/keys`, `/proc/timer_list` (as root), and, with capabilities,
    /// write `/proc/sys` and `/proc/sysrq-trigger`, which change the host kernel.
    pub fn masked_paths(&mut self, on: bool) -> &mut Self {
        self.security.masked_paths = on;
        self
    }

    /// Mask one more path inside the container (a directory becomes an empty read-only
    /// tmpfs, a file `/dev/null`). Needs [`Namespaces::MOUNT`].
    pub fn mask_path(&mut self, path: impl Into<PathBuf>) -> &mut Self {
        self.security.extra_masks.push(path.into());
        self
    }

    /// Make one more path read-only inside the container, as the defaults in
    /// [`DEFAULT_READONLY_PATHS`] are: `path` is bind-mounted onto itself and the bind
    /// remounted read-only (nosuid, nodev, noexec), so writes fail with `EROFS` whoever
    /// the workload is. Applied with the masks, after every mount; a path that does not
    /// exist in the container is skipped (as runc does for the OCI `readonlyPaths`). The
    /// path must be absolute; needs [`Namespaces::MOUNT`] (otherwise the spawn fails with
    /// [`Error::NeedsNamespace`]).
    ///
    /// ```
    /// use cellblock::{Container, Namespaces};
    /// Container::builder("/bin/true")
    ///     .namespaces(Namespaces::PID | Namespaces::MOUNT)
    ///     .readonly_path("/proc/sysrq-trigger");
    /// ```
    pub fn readonly_path(&mut self, path: impl Into<PathBuf>) -> &mut Self {
        self.security.extra_readonly.push(path.into());
        self
    }

    /// Keep the default masks and read-only paths except `path`, which must be one of
    /// [`DEFAULT_MASKED_PATHS`] or [`DEFAULT_READONLY_PATHS`] (absolute, as written there):
    /// that one is left as the container's `/proc` or `/sys` shows it. May be called for
    /// several paths. Anything else is refused with [`Error::BadMount`] when the container
    /// is spawned. Without [`Namespaces::MOUNT`] nothing is masked anyway, and this does
    /// nothing.
    ///
    /// **Risk:** each default path exposes host kernel state or a host-wide control.
    /// Unmasked, `/proc/kcore` shows the host's memory layout (and its memory, with
    /// `CAP_SYS_RAWIO`), `/proc/keys` the keys the workload's uid may view, `/proc/timer_list`
    /// the host's timers and the tasks behind them, `/proc/sysrq-trigger` lets a root
    /// workload crash or reboot the host, `/sys/firmware` shows firmware tables; made
    /// writable, `/proc/sys`, `/proc/irq`, `/proc/bus` and `/proc/fs` let a workload that is
    /// host root (see [`host_root`](Self::host_root)) change host kernel settings, interrupt
    /// routing and PCI devices, even with every capability dropped.
    ///
    /// ```
    /// use cellblock::{Container, Namespaces};
    /// Container::builder("/bin/cat")
    ///     .arg("/proc/timer_list")
    ///     .namespaces(Namespaces::PID | Namespaces::MOUNT)
    ///     .unmask_path("/proc/timer_list");
    /// ```
    pub fn unmask_path(&mut self, path: impl Into<PathBuf>) -> &mut Self {
        self.security.unmasked.push(path.into());
        self
    }

    /// The workload's umask (default `0o022`); `None` inherits the supervisor's.
    pub fn umask(&mut self, mask: Option<u32>) -> &mut Self {
        self.security.umask = mask;
        self
    }

    /// Pass `fd` to the workload as descriptor number `target` (3 or above; stdio is set
    /// with [`stdin`](Self::stdin) and friends). Every descriptor not passed is closed at
    /// execve. The descriptor is duplicated for each spawn; the builder keeps the original.
    ///
    /// ```no_run
    /// # fn demo() -> std::io::Result<()> {
    /// let sock = std::net::UdpSocket::bind("127.0.0.1:0")?;
    /// cellblock::Container::builder("/bin/my-worker").pass_fd(sock, 3);
    /// # Ok(()) }
    /// ```
    pub fn pass_fd(&mut self, fd: impl Into<OwnedFd>, target: RawFd) -> &mut Self {
        self.security.pass_fds.push((Arc::new(fd.into()), target));
        self
    }

    /// Let the workload inherit every descriptor the supervisor has open without
    /// close-on-exec (default: off, all are closed).
    ///
    /// **Risk (on):** a leaked directory descriptor reaches the host filesystem around the
    /// mount namespace (runc CVE-2024-21626), a leaked socket reaches the host network
    /// around the network namespace.
    pub fn inherit_fds(&mut self, on: bool) -> &mut Self {
        self.security.inherit_fds = on;
        self
    }

    /// Start the workload in a new session without a controlling terminal (default: on).
    ///
    /// **Risk (off):** if the supervisor has a controlling terminal, the workload can push
    /// keystrokes into it with `TIOCSTI` (CVE-2017-5226) and they run in the host shell.
    pub fn new_session(&mut self, on: bool) -> &mut Self {
        self.security.new_session = on;
        self
    }

    /// Let the workload create containers of its own (default: off).
    ///
    /// Allows exactly what that needs through seccomp: `clone` with `CLONE_NEW*` flags,
    /// `clone3`, `unshare`, `setns` and the mount family (`mount`, `umount2`, `pivot_root`
    /// and the new mount API). It keeps `CAP_SETFCAP`, without which the kernel (5.12+)
    /// refuses an inner user namespace that maps the container's uid 0. If the container
    /// has its own [`Namespaces::USER`], it also keeps `CAP_SYS_ADMIN`, which then covers
    /// only namespaces that user namespace owns. Without one, `CAP_SYS_ADMIN` is not
    /// handed out (it would be host root's): inner containers must then create their own
    /// user namespace ([`Namespaces::USER`]), inside which they hold every capability.
    ///
    /// An inner container that mounts a fresh `/proc` inside a user namespace may be
    /// refused by the kernel while this container's `/proc` has masked paths (the kernel
    /// will not mount a procfs that would reveal more than the one already visible): turn
    /// them off with [`masked_paths(false)`](Self::masked_paths) for that. Kernels differ
    /// here: 6.18.44 allowed the mount over our masks where earlier 6.x kernels refused
    /// it (tests/it/security.rs accepts both).
    ///
    /// **Risk:** the workload reaches the kernel's namespace and mount code, a large and
    /// frequently vulnerable surface (unprivileged user namespaces in particular), and
    /// `CAP_SETFCAP` lets it set file capabilities on files it can write (which other,
    /// non-`no_new_privs` processes executing them would gain).
    pub fn nesting(&mut self, on: bool) -> &mut Self {
        self.security.nesting = on;
        self
    }
}
