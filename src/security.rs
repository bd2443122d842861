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
//! This file holds the configuration and the *prepare* half (run in the parent: compile
//! the seccomp filter to BPF, build every path string); `child/security.rs` holds the
//! steps the child runs with what was prepared here, without allocating.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::ptr;
use std::sync::Arc;

use libc::c_char;

use crate::builder::ContainerBuilder;
use crate::child::security::{FdPass, SecuritySpec};
use crate::error::{Error, Result};
use crate::Namespaces;

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
pub(crate) struct Security {
    /// Bit mask of capabilities kept (`1 << index`); `None` leaves them untouched.
    keep_caps: Option<u64>,
    no_new_privs: bool,
    seccomp: Seccomp,
    /// `add_seccomp`: more filters, installed after `seccomp`'s, in order.
    more_seccomp: Vec<Seccomp>,
    masked_paths: bool,
    extra_masks: Vec<PathBuf>,
    /// Default masked or read-only paths left as they are ([`ContainerBuilder::unmask_path`]).
    unmasked: Vec<PathBuf>,
    umask: Option<u32>,
    inherit_fds: bool,
    pass_fds: Vec<(Arc<OwnedFd>, RawFd)>,
    pub(crate) new_session: bool,
    nesting: bool,
}

impl Default for Security {
    fn default() -> Security {
        Security {
            keep_caps: Some(0),
            no_new_privs: true,
            seccomp: Seccomp::default_profile(),
            more_seccomp: Vec::new(),
            masked_paths: true,
            extra_masks: Vec::new(),
            unmasked: Vec::new(),
            umask: Some(DEFAULT_UMASK),
            inherit_fds: false,
            pass_fds: Vec::new(),
            new_session: true,
            nesting: false,
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
    enabled: bool,
    /// Calls denied outright, with their errno (`deny`: EPERM; `deny_errno`).
    deny: BTreeMap<i64, i32>,
    allow: BTreeSet<i64>,
    /// Socket families taken out of [`DENIED_SOCKET_FAMILIES`].
    allow_families: BTreeSet<i32>,
    /// [`allow_list`](Seccomp::allow_list): the errno of every call not allowed.
    otherwise: Option<i32>,
    /// [`deny_arg`](Seccomp::deny_arg) rules: (call, argument, value, errno).
    arg_rules: BTreeSet<(i64, u8, u32, i32)>,
    /// [`from_bpf`](Seccomp::from_bpf): a ready-made program, installed as it is.
    raw: Option<Arc<[u8]>>,
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
/// Only the direct system calls exist on the architectures we filter (x86_64, aarch64,
/// riscv64): the `socketcall()` multiplexer, whose arguments sit in memory a filter cannot
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
fn default_denied() -> Vec<i64> {
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
const NESTING_SYSCALLS: [i64; 12] = [
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
const CLONE_NS_FLAGS: [i32; 7] = [
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
        self.security.keep_caps = Some(keep.into_iter().fold(0, |m, c| m | c.bitmask()));
        self
    }

    /// Leave the workload every capability the supervisor has (no dropping at all).
    ///
    /// **Risk:** with a root supervisor and no user namespace, the workload is full root
    /// on the host: it can mount, load modules, ptrace the supervisor, reboot.
    pub fn keep_all_capabilities(&mut self) -> &mut Self {
        self.security.keep_caps = None;
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
    /// An inner container that mounts a fresh `/proc` inside a user namespace is refused
    /// by the kernel while this container's `/proc` has masked paths (the kernel will not
    /// mount a procfs that would reveal more than the one already visible): turn them off
    /// with [`masked_paths(false)`](Self::masked_paths) for that.
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

/// What the child needs for the security steps, with the storage it points into.
pub(crate) struct Prepared {
    pub(crate) spec: SecuritySpec,
    _masks: Vec<CString>,
    _mask_ptrs: Vec<*const c_char>,
    _readonly: Vec<CString>,
    _readonly_ptrs: Vec<*const c_char>,
    _bpf: Vec<Arc<Vec<libc::sock_filter>>>,
    _fprog: Vec<libc::sock_fprog>,
    _pass: Vec<FdPass>,
    /// Our duplicates of the passed descriptors; closed after the spawn.
    _pass_fds: Vec<OwnedFd>,
    _cloexec_ranges: Vec<(u32, u32)>,
    _null: Option<(OwnedFd, CString)>,
}

impl std::fmt::Debug for Prepared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("security::Prepared").finish_non_exhaustive()
    }
}

/// Validates the security settings and prepares everything the child needs: the masked
/// paths as C strings, the compiled seccomp program, the passed descriptors duplicated
/// above every target (see [`min_setup_fd`]) and the close-on-exec ranges around them.
pub(crate) fn prepare(b: &ContainerBuilder) -> Result<Prepared> {
    let s = &b.security;
    let mount_ns = b.namespaces.contains(Namespaces::MOUNT);
    if !s.extra_masks.is_empty() && !mount_ns {
        return Err(Error::NeedsNamespace {
            option: "mask_path",
            needs: Namespaces::MOUNT,
        });
    }

    for p in &s.unmasked {
        let default = |d: &&str| Path::new(d) == p;
        if !DEFAULT_MASKED_PATHS.iter().any(default) && !DEFAULT_READONLY_PATHS.iter().any(default)
        {
            return Err(Error::BadMount {
                what: "unmask_path",
                path: p.clone(),
                reason: "not one of the default masked or read-only paths \
                         (DEFAULT_MASKED_PATHS, DEFAULT_READONLY_PATHS)"
                    .into(),
            });
        }
    }

    // Paths: only with a mount namespace of our own.
    let mut masks = Vec::new();
    let mut readonly = Vec::new();
    if mount_ns {
        if s.masked_paths {
            let kept = |d: &&&str| !s.unmasked.iter().any(|u| u == Path::new(d));
            masks.extend(DEFAULT_MASKED_PATHS.iter().filter(kept).map(PathBuf::from));
            readonly.extend(
                DEFAULT_READONLY_PATHS
                    .iter()
                    .filter(kept)
                    .map(PathBuf::from),
            );
        }
        for p in &s.extra_masks {
            if !p.is_absolute() {
                return Err(Error::Security(format!(
                    "mask_path {}: the path must be absolute",
                    p.display()
                )));
            }
            masks.push(p.clone());
        }
    }
    // With a root filesystem the paths are the container's under that root, masked before
    // pivot_root (see SecuritySpec::under_root).
    let root = match b.fs.root() {
        Some(r) if mount_ns && !(masks.is_empty() && readonly.is_empty()) => {
            Some(std::fs::canonicalize(r).unwrap_or_else(|_| r.to_path_buf()))
        }
        _ => None,
    };
    if let Some(root) = &root {
        let under = |p: &PathBuf| root.join(p.strip_prefix("/").unwrap_or(p));
        masks = masks.iter().map(under).collect();
        readonly = readonly.iter().map(under).collect();
    }
    let to_c = |p: &Path| {
        CString::new(p.as_os_str().as_bytes()).map_err(|_| Error::NulByte {
            what: "a masked path".into(),
            value: p.display().to_string(),
        })
    };
    let masks: Vec<CString> = masks.iter().map(|p| to_c(p)).collect::<Result<_>>()?;
    let readonly: Vec<CString> = readonly.iter().map(|p| to_c(p)).collect::<Result<_>>()?;
    let mask_ptrs: Vec<*const c_char> = masks.iter().map(|c| c.as_ptr()).collect();
    let readonly_ptrs: Vec<*const c_char> = readonly.iter().map(|c| c.as_ptr()).collect();

    // Capabilities for nesting: CAP_SETFCAP, without which (Linux 5.12+) an inner user
    // namespace may not map uid 0 of ours; and, in a user namespace of its own, also
    // CAP_SYS_ADMIN, which there covers only namespaces that user namespace owns.
    let keep_caps = s.keep_caps.map(|mut m| {
        if s.nesting {
            m |= Capability::CAP_SETFCAP.bitmask();
            if b.namespaces.contains(Namespaces::USER) {
                m |= Capability::CAP_SYS_ADMIN.bitmask();
            }
        }
        m
    });

    // Seccomp, compiled here: the child only hands the program to the kernel.
    // The main policy, then the added ones; each without rules installs nothing.
    let bpf = std::iter::once(&s.seccomp)
        .chain(&s.more_seccomp)
        .filter(|p| p.is_enabled())
        .map(|p| compiled_seccomp(p, s.nesting))
        .collect::<Result<Vec<_>>>()?;
    let fprog: Vec<libc::sock_fprog> = bpf
        .iter()
        .map(|b| libc::sock_fprog {
            len: b.len() as u16,
            filter: b.as_ptr() as *mut libc::sock_filter,
        })
        .collect();

    // Descriptors to pass: validate, then duplicate each above every target so that the
    // child's dup2 onto the targets never overwrites a source still to be moved.
    let mut targets = BTreeSet::new();
    for (_, t) in &s.pass_fds {
        if *t < 3 {
            return Err(Error::BadPassFd {
                target: *t,
                reason: "targets 0, 1 and 2 are stdio: use stdin()/stdout()/stderr()".into(),
            });
        }
        if !targets.insert(*t) {
            return Err(Error::BadPassFd {
                target: *t,
                reason: "passed twice".into(),
            });
        }
    }
    let above = min_setup_fd(b);
    let mut pass_fds = Vec::new();
    let mut pass = Vec::new();
    for (fd, target) in &s.pass_fds {
        let dup = crate::sys::dup_above(fd.as_raw_fd(), above).map_err(|e| Error::BadPassFd {
            target: *target,
            reason: format!("duplicating the descriptor: {e}"),
        })?;
        pass.push(FdPass {
            src: dup.as_raw_fd(),
            dst: *target,
        });
        pass_fds.push(dup);
    }
    // Ranges to mark close-on-exec: everything from 3 up except the targets.
    let mut cloexec_ranges = Vec::new();
    let mut lo: u32 = 3;
    for &t in &targets {
        let t = t as u32;
        if t > lo {
            cloexec_ranges.push((lo, t - 1));
        }
        lo = t + 1;
    }
    cloexec_ranges.push((lo, u32::MAX));

    // The host's /dev/null, for masking files in a root filesystem that has none. Without
    // a root filesystem the masks bind the host's /dev/null by its path: nothing to open.
    let null = if masks.is_empty() || root.is_none() {
        None
    } else {
        let f = std::fs::File::open("/dev/null")
            .map_err(|e| Error::Security(format!("opening /dev/null: {e}")))?;
        let fd = crate::sys::move_above(OwnedFd::from(f), above)
            .map_err(|e| Error::Security(format!("/dev/null: {e}")))?;
        let path = CString::new(format!("/proc/self/fd/{}", fd.as_raw_fd())).expect("no NUL");
        Some((fd, path))
    };
    let spec = SecuritySpec {
        null_fd_path: null.as_ref().map_or(ptr::null(), |(_, p)| p.as_ptr()),
        under_root: root.is_some(),
        masks: (mask_ptrs.as_ptr(), mask_ptrs.len()),
        readonly: (readonly_ptrs.as_ptr(), readonly_ptrs.len()),
        keep_caps: keep_caps.unwrap_or(0),
        drop_caps: keep_caps.is_some(),
        no_new_privs: s.no_new_privs,
        seccomp: (fprog.as_ptr(), fprog.len()),
        umask: s.umask.map_or(-1, |m| (m & 0o777) as i32),
        // A pty makes its own new session (child/session.rs), with the pty as controlling
        // terminal; a second setsid would fail.
        new_session: s.new_session && b.session.pty.is_none(),
        process_group: crate::session::child_process_group(b)?,
        close_fds: !s.inherit_fds,
        pass: (pass.as_ptr(), pass.len()),
        cloexec_ranges: (cloexec_ranges.as_ptr(), cloexec_ranges.len()),
    };
    Ok(Prepared {
        spec,
        _masks: masks,
        _mask_ptrs: mask_ptrs,
        _readonly: readonly,
        _readonly_ptrs: readonly_ptrs,
        _bpf: bpf,
        _fprog: fprog,
        _pass: pass,
        _pass_fds: pass_fds,
        _cloexec_ranges: cloexec_ranges,
        _null: null,
    })
}

/// The lowest descriptor number above every `pass_fd` target (at least 3): where every
/// descriptor the child's own setup still needs after the `dup2`s must live.
pub(crate) fn min_setup_fd(b: &ContainerBuilder) -> RawFd {
    b.security
        .pass_fds
        .iter()
        .map(|(_, t)| *t + 1)
        .max()
        .unwrap_or(3)
        .max(3)
}

/// The compiled program for a policy, cached: compiling costs tens of microseconds and
/// every spawn of a builder asks for the same few policies. The cache is keyed by the
/// whole policy, so a changed policy compiles anew; it holds a handful of entries at most
/// in practice (and is bounded anyway).
fn compiled_seccomp(policy: &Seccomp, nesting: bool) -> Result<Arc<Vec<libc::sock_filter>>> {
    use std::collections::HashMap;
    use std::sync::Mutex;
    type Cache = Mutex<HashMap<(Seccomp, bool), Arc<Vec<libc::sock_filter>>>>;
    static CACHE: std::sync::OnceLock<Cache> = std::sync::OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let key = (policy.clone(), nesting);
    if let Some(p) = cache.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
        return Ok(p.clone());
    }
    let prog = Arc::new(compile_seccomp(policy, nesting)?);
    let mut c = cache.lock().unwrap_or_else(|e| e.into_inner());
    if c.len() >= 64 {
        c.clear();
    }
    c.insert(key, prog.clone());
    Ok(prog)
}

/// A [`Seccomp::from_bpf`] program, checked for what can be checked here.
fn raw_program(policy: &Seccomp, raw: &[u8]) -> Result<Vec<libc::sock_filter>> {
    let bare = Seccomp {
        raw: policy.raw.clone(),
        ..Seccomp::disabled()
    };
    if *policy != bare {
        return Err(Error::Security(
            "seccomp: a program from from_bpf() takes no rules of cellblock's (deny, allow, ...): \
             put them in a filter of their own with add_seccomp()"
                .into(),
        ));
    }
    const BPF_MAXINSNS: usize = 4096;
    let n = raw.len() / 8;
    if !raw.len().is_multiple_of(8) || n == 0 || n > BPF_MAXINSNS {
        return Err(Error::Security(format!(
            "seccomp: a BPF program of {} bytes: it must be 1 to {BPF_MAXINSNS} instructions of 8 bytes each",
            raw.len()
        )));
    }
    Ok(raw
        .chunks_exact(8)
        .map(|i| libc::sock_filter {
            code: u16::from_ne_bytes([i[0], i[1]]),
            jt: i[2],
            jf: i[3],
            k: u32::from_ne_bytes([i[4], i[5], i[6], i[7]]),
        })
        .collect())
}

/// Compiles the policy to a BPF program for the build target.
fn compile_seccomp(policy: &Seccomp, nesting: bool) -> Result<Vec<libc::sock_filter>> {
    if let Some(raw) = &policy.raw {
        return raw_program(policy, raw);
    }
    use crate::bpf::{ArgTest, Verdict};
    let number = |nr: i64| {
        u32::try_from(nr)
            .map_err(|_| Error::Security(format!("seccomp: {nr} is not a system call number")))
    };
    let errno_of = |e: i32, nr: i64| {
        u16::try_from(e)
            .ok()
            .filter(|e| (1..=4095).contains(e))
            .ok_or_else(|| {
                Error::Security(format!(
                    "seccomp: errno {e} for system call {nr} is outside 1..=4095 (0 would fake success; the kernel caps errnos at 4095)"
                ))
            })
    };
    // Denied outright: the default profile's calls (unless nesting lifts them), the
    // caller's, minus what the caller allowed. Without the default profile only the
    // caller's own denials (issue 11: they used to be dropped silently).
    let mut deny: BTreeMap<i64, i32> = if policy.enabled {
        default_denied()
            .into_iter()
            .map(|nr| (nr, libc::EPERM))
            .collect()
    } else {
        BTreeMap::new()
    };
    if nesting {
        for nr in NESTING_SYSCALLS {
            deny.remove(&nr);
        }
    }
    deny.extend(&policy.deny);
    for nr in &policy.allow {
        deny.remove(nr);
    }
    let mut rules = BTreeMap::new();
    for (&nr, &e) in &deny {
        rules.insert(number(nr)?, Verdict::Errno(errno_of(e, nr)?));
    }
    let otherwise = policy
        .otherwise
        .map(|e| {
            errno_of(e, -1).map_err(|_| {
                Error::Security(format!("seccomp: allow_list errno {e} is outside 1..=4095"))
            })
        })
        .transpose()?;
    if otherwise.is_some() {
        for &nr in policy.allow.iter().chain(&SECCOMP_ALWAYS_ALLOWED) {
            rules.entry(number(nr)?).or_insert(Verdict::Allow);
        }
    }
    // Argument tests join a call's verdict: nothing for a call denied outright, and, in an
    // allow list, nothing for a call not allowed (the list's errno covers every argument).
    let add_tests = |rules: &mut BTreeMap<u32, Verdict>, n: u32, tests: Vec<ArgTest>| {
        if tests.is_empty() {
            return;
        }
        match rules.get_mut(&n) {
            Some(Verdict::Errno(_)) => {}
            Some(Verdict::DenyIf { tests: t, .. }) => t.extend(tests),
            Some(v @ Verdict::Allow) => {
                *v = Verdict::DenyIf {
                    tests,
                    errno: libc::EPERM as u16,
                }
            }
            None if otherwise.is_none() => {
                rules.insert(
                    n,
                    Verdict::DenyIf {
                        tests,
                        errno: libc::EPERM as u16,
                    },
                );
            }
            None => {}
        }
    };
    let mut by_call: BTreeMap<i64, Vec<ArgTest>> = BTreeMap::new();
    for &(nr, arg, value, e) in &policy.arg_rules {
        if arg > 5 {
            return Err(Error::Security(format!(
                "seccomp: deny_arg on system call {nr}: argument {arg} does not exist (0 to 5)"
            )));
        }
        let test = ArgTest::eq(arg, value).with_errno(errno_of(e, nr)?);
        by_call.entry(nr).or_default().push(test);
    }
    for (nr, tests) in by_call {
        add_tests(&mut rules, number(nr)?, tests);
    }
    if !policy.enabled {
        return crate::bpf::compile_list(&rules, otherwise);
    }
    // The default profile's argument rules, each unless the call is allowed.
    let mut deny_if = |nr: i64, tests: Vec<ArgTest>| -> Result<()> {
        if !policy.allow.contains(&nr) {
            add_tests(&mut rules, number(nr)?, tests);
        }
        Ok(())
    };
    // Docker's profile has one more argument rule we do not copy: personality() only
    // with 5 values (refusing ADDR_NO_RANDOMIZE, READ_IMPLIES_EXEC, ...). Those flags
    // weaken the workload's own process and its children (its ASLR, its W^X), which are
    // inside the container anyway; they reach nothing of the host's, and tools such as
    // `setarch -R` and debuggers need them.
    //
    // socket(family, ..), socketpair(family, ..): family is the first argument.
    let families: Vec<ArgTest> = DENIED_SOCKET_FAMILIES
        .iter()
        .filter(|f| !policy.allow_families.contains(f))
        .map(|&f| ArgTest::eq(0, f as u32))
        .collect();
    deny_if(libc::SYS_socket, families.clone())?;
    deny_if(libc::SYS_socketpair, families)?;
    // ioctl(fd, request, ..): the request is the second argument.
    let requests = DENIED_IOCTLS.iter().map(|&r| ArgTest::eq(1, r)).collect();
    deny_if(libc::SYS_ioctl, requests)?;
    if !nesting {
        // clone() itself stays allowed (fork, threads); only namespace flags are refused.
        // x86_64, aarch64 and riscv64 all pass the flags as the first argument, and every
        // CLONE_NEW* bit is in its low 32 bits.
        let mask = CLONE_NS_FLAGS.iter().fold(0u32, |m, &f| m | f as u32);
        deny_if(libc::SYS_clone, vec![ArgTest::any_bit(0, mask)])?;
    }
    // Unless nesting (or allowed), clone3 fails with ENOSYS: its flags live in memory the
    // filter cannot read, and ENOSYS makes libc fall back to clone(), whose flags the
    // filter does check (what Docker does). Denied explicitly, it fails with that errno.
    if policy.deny.contains_key(&libc::SYS_clone3) {
        // Denied explicitly: already in `rules` with its errno.
    } else if !nesting && !policy.allow.contains(&libc::SYS_clone3) {
        rules.insert(
            number(libc::SYS_clone3)?,
            Verdict::Errno(libc::ENOSYS as u16),
        );
    }
    crate::bpf::compile(&rules)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_filter_compiles_and_starts_with_arch_check() {
        let prog = compile_seccomp(&Seccomp::default_profile(), false).unwrap();
        assert!(prog.len() > 40);
        // First instruction loads seccomp_data.arch (offset 4).
        assert_eq!(prog[0].k, 4);
    }

    #[test]
    fn default_filter_decides_as_documented() {
        let run = |prog: &[libc::sock_filter], nr: i64, arg0: u32| {
            let arch = crate::bpf::tests::run(prog, 0, 0, 0).0;
            assert_eq!(arch, libc::SECCOMP_RET_KILL_PROCESS, "wrong arch is killed");
            let native = crate::bpf::native_arch().unwrap();
            crate::bpf::tests::run(prog, native, nr as u32, arg0).0
        };
        let eperm = libc::SECCOMP_RET_ERRNO | libc::EPERM as u32;
        let enosys = libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32;
        let allow = libc::SECCOMP_RET_ALLOW;
        let default = compile_seccomp(&Seccomp::default_profile(), false).unwrap();
        assert_eq!(run(&default, libc::SYS_mount, 0), eperm);
        assert_eq!(run(&default, libc::SYS_keyctl, 0), eperm);
        assert_eq!(run(&default, libc::SYS_read, 0), allow);
        assert_eq!(run(&default, libc::SYS_clone, 0), allow);
        let newuser = libc::CLONE_NEWUSER as u32;
        assert_eq!(run(&default, libc::SYS_clone, newuser), eperm);
        assert_eq!(run(&default, libc::SYS_clone3, 0), enosys);
        let nesting = compile_seccomp(&Seccomp::default_profile(), true).unwrap();
        assert_eq!(run(&nesting, libc::SYS_mount, 0), allow);
        assert_eq!(run(&nesting, libc::SYS_clone, newuser), allow);
        assert_eq!(run(&nesting, libc::SYS_keyctl, 0), eperm);
    }

    /// The argument rules: AF_VSOCK and AF_ALG refused to socket() and socketpair() (also
    /// with junk in the upper half of the register, which the kernel ignores), TIOCSTI and
    /// TIOCLINUX refused to ioctl(); the other families and requests pass; each rule can be
    /// lifted, and a denial stays a denial.
    #[test]
    fn argument_rules_socket_families_and_ioctls() {
        let native = crate::bpf::native_arch().unwrap();
        let run = |prog: &[libc::sock_filter], nr: i64, args: [u64; 6]| {
            crate::bpf::tests::run_args(prog, native, nr as u32, args).0
        };
        let a0 = |v: i32| [v as u32 as u64, 1, 0, 0, 0, 0];
        let a1 = |v: u64| [3, v, 0, 0, 0, 0];
        let eperm = libc::SECCOMP_RET_ERRNO | libc::EPERM as u32;
        let allow = libc::SECCOMP_RET_ALLOW;
        let (sock, pair, ioctl) = (libc::SYS_socket, libc::SYS_socketpair, libc::SYS_ioctl);
        let tiocsti = libc::TIOCSTI as u64;
        let tioclinux = libc::TIOCLINUX as u64;

        let default = compile_seccomp(&Seccomp::default_profile(), false).unwrap();
        for nr in [sock, pair] {
            assert_eq!(run(&default, nr, a0(libc::AF_VSOCK)), eperm);
            assert_eq!(run(&default, nr, a0(libc::AF_ALG)), eperm);
            assert_eq!(
                run(&default, nr, [0x7_0000_0000 | 40, 1, 0, 0, 0, 0]),
                eperm
            );
            for f in [
                libc::AF_UNIX,
                libc::AF_INET,
                libc::AF_INET6,
                libc::AF_NETLINK,
                39,
                41,
            ] {
                assert_eq!(run(&default, nr, a0(f)), allow, "family {f}");
            }
        }
        assert_eq!(run(&default, ioctl, a1(tiocsti)), eperm);
        assert_eq!(run(&default, ioctl, a1(tioclinux)), eperm);
        assert_eq!(
            run(&default, ioctl, a1(0xffff_ffff_0000_0000 | tiocsti)),
            eperm
        );
        assert_eq!(run(&default, ioctl, a1(libc::TIOCGWINSZ as u64)), allow);
        assert_eq!(run(&default, ioctl, a1(libc::FIONREAD as u64)), allow);
        // The same under nesting.
        let nesting = compile_seccomp(&Seccomp::default_profile(), true).unwrap();
        assert_eq!(run(&nesting, sock, a0(libc::AF_VSOCK)), eperm);
        assert_eq!(run(&nesting, ioctl, a1(tiocsti)), eperm);

        // One family lifted: the other stays denied.
        let vsock = Seccomp::default_profile().allow_socket_family(libc::AF_VSOCK);
        let p = compile_seccomp(&vsock, false).unwrap();
        assert_eq!(run(&p, sock, a0(libc::AF_VSOCK)), allow);
        assert_eq!(run(&p, sock, a0(libc::AF_ALG)), eperm);
        // Both lifted: no rule left on socket.
        let both = vsock.allow_socket_family(libc::AF_ALG);
        let p = compile_seccomp(&both, false).unwrap();
        assert_eq!(run(&p, sock, a0(libc::AF_ALG)), allow);
        // allow() lifts the whole rule; deny() denies every argument.
        let p = compile_seccomp(&Seccomp::default_profile().allow(sock).allow(ioctl), false);
        let p = p.unwrap();
        assert_eq!(run(&p, sock, a0(libc::AF_VSOCK)), allow);
        assert_eq!(
            run(&p, pair, a0(libc::AF_VSOCK)),
            eperm,
            "socketpair keeps its rule"
        );
        assert_eq!(run(&p, ioctl, a1(tiocsti)), allow);
        let p = compile_seccomp(&Seccomp::default_profile().deny(sock), false).unwrap();
        assert_eq!(run(&p, sock, a0(libc::AF_INET)), eperm);
    }

    /// `disabled().deny(nr)` installs a filter denying exactly `nr` (it used to install
    /// nothing); `disabled()` alone installs none.
    #[test]
    fn disabled_profile_with_denials_filters_exactly_those() {
        assert!(!Seccomp::disabled().is_enabled());
        let p = Seccomp::disabled().deny(libc::SYS_ptrace);
        assert!(p.is_enabled());
        assert!(!p.clone().allow(libc::SYS_ptrace).is_enabled());
        let prog = compile_seccomp(&p, false).unwrap();
        let native = crate::bpf::native_arch().unwrap();
        let run = |nr: i64, arg0: u32| crate::bpf::tests::run(&prog, native, nr as u32, arg0).0;
        let eperm = libc::SECCOMP_RET_ERRNO | libc::EPERM as u32;
        assert_eq!(run(libc::SYS_ptrace, 0), eperm);
        for nr in [
            libc::SYS_mount,
            libc::SYS_keyctl,
            libc::SYS_read,
            libc::SYS_clone3,
        ] {
            assert_eq!(run(nr, 0), libc::SECCOMP_RET_ALLOW, "{nr}");
        }
        assert_eq!(
            run(libc::SYS_clone, libc::CLONE_NEWUSER as u32),
            libc::SECCOMP_RET_ALLOW
        );
        assert_eq!(
            run(libc::SYS_socket, libc::AF_VSOCK as u32),
            libc::SECCOMP_RET_ALLOW
        );
    }

    /// The allow-list base, custom errnos and the caller's argument rules (bubblewrap's
    /// test-seccomp.py needs all three): unlisted calls get the list's errno, the child's
    /// own tail stays allowed, an argument rule matches on the low 32 bits only and keeps
    /// its own errno next to the default profile's rules on the same call; bad values are
    /// refused by name.
    #[test]
    // `libc::Ioctl` is `c_ulong` on glibc (the cast is then a no-op) but `c_int` on musl.
    #[allow(clippy::unnecessary_cast)]
    fn allow_list_errnos_and_argument_rules() {
        let native = crate::bpf::native_arch().unwrap();
        let run = |prog: &[libc::sock_filter], nr: i64, args: [u64; 6]| {
            crate::bpf::tests::run_args(prog, native, nr as u32, args).0
        };
        let ret = |e: i32| libc::SECCOMP_RET_ERRNO | e as u32;
        let allow = libc::SECCOMP_RET_ALLOW;
        let tiocsti = libc::TIOCSTI as u64;
        let a1 = |v: u64| [3, v, 0, 0, 0, 0];
        let list = Seccomp::allow_list(libc::ENOSYS)
            .allow(libc::SYS_read)
            .allow(libc::SYS_ioctl)
            .deny_arg(libc::SYS_ioctl, 1, tiocsti as u32, libc::ECONNREFUSED);
        let p = compile_seccomp(&list, false).unwrap();
        assert_eq!(run(&p, libc::SYS_read, [0; 6]), allow);
        assert_eq!(run(&p, libc::SYS_chroot, [0; 6]), ret(libc::ENOSYS));
        for nr in SECCOMP_ALWAYS_ALLOWED {
            assert_eq!(run(&p, nr, [0; 6]), allow, "{nr}");
        }
        assert_eq!(
            run(&p, libc::SYS_ioctl, a1(tiocsti)),
            ret(libc::ECONNREFUSED)
        );
        assert_eq!(
            run(&p, libc::SYS_ioctl, a1(0x123 << 32 | tiocsti)),
            ret(libc::ECONNREFUSED)
        );
        assert_eq!(run(&p, libc::SYS_ioctl, a1(libc::TIOCNOTTY as u64)), allow);
        // An argument rule on a call the list does not allow: still the list's errno.
        let p = compile_seccomp(
            &Seccomp::allow_list(libc::ENOSYS).deny_arg(libc::SYS_ioctl, 1, 1, libc::EIO),
            false,
        )
        .unwrap();
        assert_eq!(run(&p, libc::SYS_ioctl, a1(1)), ret(libc::ENOSYS));
        assert_eq!(run(&p, libc::SYS_ioctl, a1(2)), ret(libc::ENOSYS));
        // A deny list with custom errnos, on no default profile.
        let p = Seccomp::disabled().deny_errno(libc::SYS_chmod, libc::ECONNREFUSED);
        let p = compile_seccomp(&p, false).unwrap();
        assert_eq!(run(&p, libc::SYS_chmod, [0; 6]), ret(libc::ECONNREFUSED));
        assert_eq!(run(&p, libc::SYS_chroot, [0; 6]), allow);
        // The caller's rule next to the default profile's on ioctl: each its own errno.
        let p = Seccomp::default_profile().deny_arg(
            libc::SYS_ioctl,
            1,
            libc::FIONREAD as u32,
            libc::ECONNREFUSED,
        );
        let p = compile_seccomp(&p, false).unwrap();
        assert_eq!(run(&p, libc::SYS_ioctl, a1(tiocsti)), ret(libc::EPERM));
        assert_eq!(
            run(&p, libc::SYS_ioctl, a1(libc::FIONREAD as u64)),
            ret(libc::ECONNREFUSED)
        );
        assert_eq!(run(&p, libc::SYS_ioctl, a1(libc::TIOCGWINSZ as u64)), allow);
        // Refused by name.
        for (bad, words) in [
            (
                Seccomp::disabled().deny_errno(libc::SYS_chmod, 0),
                "errno 0",
            ),
            (
                Seccomp::disabled().deny_errno(libc::SYS_chmod, 4096),
                "errno 4096",
            ),
            (Seccomp::allow_list(-1), "errno -1"),
            (
                Seccomp::disabled().deny_arg(libc::SYS_ioctl, 6, 0, libc::EPERM),
                "argument 6",
            ),
        ] {
            match compile_seccomp(&bad, false) {
                Err(Error::Security(m)) => assert!(m.contains(words), "{m}"),
                other => panic!("{words}: {other:?}"),
            }
        }
    }

    #[test]
    fn allow_and_deny_edit_the_policy() {
        let p = Seccomp::default_profile()
            .deny(7)
            .allow(7)
            .allow(libc::SYS_mount);
        assert!(p.allow.contains(&7) && !p.deny.contains_key(&7));
        let with = compile_seccomp(&Seccomp::default_profile(), false).unwrap();
        let without = compile_seccomp(&p, false).unwrap();
        assert!(without.len() < with.len());
    }
}

// SAFETY (TRANSITIONAL, issue 13): the raw pointers in `spec` point into heap storage this
// value owns (path strings, fd lists, compiled filters), which does not move when it moves.
unsafe impl Send for Prepared {}
