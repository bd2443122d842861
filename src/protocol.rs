//! The error-pipe protocol, written once: the record the child and the init write, the
//! setup [`Stage`] numbers, the init's message tags and its flag bits.
//!
//! Three parties speak it: the child between clone and execve (`child/`), the container
//! init (`init/cellblock-init.c`), and the supervisor that reads the pipe (`plan/`,
//! `init.rs`). The C init does not copy any number: build.rs includes this file and passes
//! every constant the init uses as a `-D` flag ([`C_DEFINES`]), and the C file refuses to
//! compile without them.
//!
//! This file is self-contained (no `crate::` paths, no dependencies) because build.rs
//! compiles it too.

/// Bytes in one record: a native-endian `u32` tag (a [`Stage`] or a `MSG_*`), then a
/// native-endian `i32` value (an errno, a pid or a wait status). One `write` of 8 bytes to
/// a pipe is atomic.
pub(crate) const RECORD_LEN: usize = 8;

/// Encodes one record. The child calls this between clone and execve, so it is written
/// without any panic path (no slicing, no length-checked copies).
pub(crate) fn encode(tag: u32, value: i32) -> [u8; RECORD_LEN] {
    let [t0, t1, t2, t3] = tag.to_ne_bytes();
    let [v0, v1, v2, v3] = value.to_ne_bytes();
    [t0, t1, t2, t3, v0, v1, v2, v3]
}

/// Decodes one record.
pub(crate) fn decode(rec: &[u8; RECORD_LEN]) -> (u32, i32) {
    (
        u32::from_ne_bytes([rec[0], rec[1], rec[2], rec[3]]),
        i32::from_ne_bytes([rec[4], rec[5], rec[6], rec[7]]),
    )
}

/// Init report tag: the workload's execve succeeded (value: its pid inside).
pub(crate) const MSG_STARTED: u32 = 0x100;
/// Init report tag: the workload's wait status, written as the init exits.
pub(crate) const MSG_STATUS: u32 = 0x101;
/// Child report tag: set up and waiting at its start gate (`ContainerBuilder::create`);
/// the value is 0.
pub(crate) const MSG_GATED: u32 = 0x102;

/// Init `FLAGS` bit: fd 0 is a terminal whose foreground process group the workload gets.
pub(crate) const FLAG_TTY: u32 = 1;
/// Init `FLAGS` bit: stay dumpable (`init_dumpable`).
pub(crate) const FLAG_DUMPABLE: u32 = 2;
/// Init `FLAGS` bit: forward signals to the workload's process group.
pub(crate) const FLAG_GROUP: u32 = 4;
/// Init `FLAGS` bit: no PID namespace of its own; run as a child subreaper.
pub(crate) const FLAG_SUBREAPER: u32 = 8;
/// Init `FLAGS` bit: the workload gets a process group of its own on a shared terminal.
pub(crate) const FLAG_OWN_GROUP: u32 = 16;

/// Every constant the C init uses, by the name it uses: build.rs passes each as
/// `-DNAME=VALUEu`.
#[allow(dead_code)] // read by build.rs and the init's tests
pub(crate) const C_DEFINES: &[(&str, u32)] = &[
    ("STAGE_CHDIR", Stage::Chdir as u32),
    ("STAGE_EXECVE", Stage::Execve as u32),
    ("STAGE_INIT_START", Stage::InitStart as u32),
    ("STAGE_INIT_SETUP", Stage::InitSetup as u32),
    ("MSG_STARTED", MSG_STARTED),
    ("MSG_STATUS", MSG_STATUS),
    ("FLAG_TTY", FLAG_TTY),
    ("FLAG_DUMPABLE", FLAG_DUMPABLE),
    ("FLAG_GROUP", FLAG_GROUP),
    ("FLAG_SUBREAPER", FLAG_SUBREAPER),
    ("FLAG_OWN_GROUP", FLAG_OWN_GROUP),
];

/// The stages, written once: each variant's documentation, its number on the error pipe
/// (the C init gets the ones it reports as `-D` flags from build.rs, see [`C_DEFINES`])
/// and its phrase in messages. The enum, [`Stage::from_u32`] and [`Stage::name`] are made
/// from this one list, so they cannot disagree (a number used twice does not compile).
macro_rules! stages {
    ($($(#[$doc:meta])* $variant:ident = $code:literal => $name:literal,)*) => {
        /// A step of the child's setup between clone and execve.
        ///
        /// A failure inside the child is reported as [`Error::Setup`](crate::Error::Setup) naming the stage and the
        /// errno, e.g. `setup failed at sethostname: Operation not permitted (EPERM)`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(u32)]
        #[non_exhaustive]
        pub enum Stage {
            $($(#[$doc])* $variant = $code,)*
        }

        impl Stage {
            #[deny(unreachable_patterns)]
            pub(crate) fn from_u32(v: u32) -> Option<Stage> {
                match v {
                    $($code => Some(Stage::$variant),)*
                    _ => None,
                }
            }

            /// What the stage does, as a short phrase.
            pub fn name(self) -> &'static str {
                match self {
                    $(Stage::$variant => $name,)*
                }
            }
        }
    };
}

stages! {
    /// Writing `/proc/self/setgroups`, `uid_map` or `gid_map` of a new user namespace.
    UserMap = 1 => "write uid_map/gid_map",
    /// Making `/` recursively private in the new mount namespace.
    MountPrivate = 2 => "make / rprivate",
    /// `sethostname`.
    SetHostname = 3 => "sethostname",
    /// `setdomainname`.
    SetDomainname = 4 => "setdomainname",
    /// Bringing up `lo` in the new network namespace.
    LoopbackUp = 5 => "bring up lo",
    /// Mounting a fresh `/proc` for the new PID namespace.
    MountProc = 6 => "mount /proc",
    /// `dup2` of stdin/stdout/stderr.
    Stdio = 7 => "dup2 stdio",
    /// `chdir` to the working directory.
    Chdir = 8 => "chdir",
    /// Marking inherited descriptors close-on-exec (`close_range`).
    CloseFds = 9 => "close_range",
    /// Resetting signal dispositions and the signal mask.
    Signals = 10 => "reset signals",
    /// `execve` of the program.
    Execve = 11 => "execve",
    /// Exec'ing the built-in init (`execveat` of its memfd), or passing it its descriptors.
    InitExec = 40 => "exec the init",
    /// The init could not start the workload (`vfork` failed inside the container).
    InitStart = 41 => "init: start the workload",
    /// Arming die-with-supervisor (`PR_SET_PDEATHSIG`); `ESRCH`: the supervisor was
    /// already gone.
    DeathSignal = 42 => "arm die-with-supervisor",
    /// Making the pty the controlling terminal (`setsid`, `TIOCSCTTY`, `dup2`).
    Terminal = 43 => "attach the terminal",
    /// The init's own setup (blocking signals, `signalfd`).
    InitSetup = 44 => "init: block signals",
    /// `setns` into a namespace given with `join`/`join_path` (needs CAP_SYS_ADMIN over
    /// the target namespace).
    Join = 20 => "setns (join a namespace)",
    /// Cloning the workload inside a joined PID namespace (the intermediate's second clone).
    JoinClone = 21 => "clone into the joined PID namespace",
    /// Waiting for the supervisor to write a multi-range uid/gid map.
    WaitForMaps = 22 => "wait for the uid/gid maps",
    /// `unshare(CLONE_NEWTIME)`.
    TimeUnshare = 23 => "unshare(CLONE_NEWTIME)",
    /// Writing `/proc/self/timens_offsets`.
    TimeOffsets = 24 => "write timens_offsets",
    /// Bind-mounting the root filesystem onto itself.
    BindRoot = 25 => "bind the root filesystem onto itself",
    /// A bind mount (`bind`/`bind_ro`).
    MountBind = 26 => "bind mount",
    /// Mounting a tmpfs.
    MountTmpfs = 27 => "mount tmpfs",
    /// Building the minimal `/dev` (tmpfs, device binds, devpts).
    MountDev = 28 => "build /dev",
    /// Mounting mqueue.
    MountMqueue = 29 => "mount mqueue",
    /// Mounting sysfs read-only.
    MountSysfs = 30 => "mount sysfs",
    /// Making a mount read-only (`mount_setattr`).
    MakeReadOnly = 31 => "make a mount read-only",
    /// Creating a mount point (directory, file or symlink) inside a tmpfs of the container.
    MountPoint = 32 => "create a mount point",
    /// `pivot_root` into the root filesystem.
    PivotRoot = 33 => "pivot_root",
    /// Detaching the old root after `pivot_root`.
    UnmountOldRoot = 34 => "detach the old root",
    /// `chroot` into the root filesystem (the weaker fallback).
    Chroot = 35 => "chroot",
    /// `setgroups` (supplementary groups inside the container).
    SetGroups = 36 => "setgroups",
    /// `setresgid`.
    SetGid = 37 => "setresgid",
    /// `setresuid`.
    SetUid = 38 => "setresuid",
    /// Joining the container's cgroup (writing `cgroup.procs`).
    CgroupJoin = 60 => "join the cgroup",
    /// Creating the cgroup namespace after joining the cgroup.
    CgroupNamespace = 61 => "unshare the cgroup namespace",
    /// Setting an rlimit (`prlimit64`).
    Rlimit = 62 => "set rlimits",
    /// Covering masked paths (`/proc/kcore`, `/sys/firmware`, …).
    MaskPaths = 80 => "mask paths",
    /// Making `/proc/sys`, `/proc/bus`, … read-only.
    ReadonlyPaths = 81 => "make paths read-only",
    /// `setsid` (the new session).
    Setsid = 82 => "setsid",
    /// Dropping capabilities (bounding, ambient, then `capset`).
    Capabilities = 83 => "drop capabilities",
    /// `prctl(PR_SET_NO_NEW_PRIVS)`.
    NoNewPrivs = 84 => "set no_new_privs",
    /// `dup2` of a descriptor passed with `pass_fd`.
    PassFds = 85 => "pass descriptors",
    /// Installing the seccomp filter.
    Seccomp = 86 => "install seccomp filter",
    /// `setpgid` for [`process_group`](crate::ContainerBuilder::process_group).
    ProcessGroup = 87 => "setpgid (process_group)",
    /// `bind_fd`: the descriptor's path now names another file (`ESTALE`).
    BindFd = 88 => "bind_fd: check the bound file is the descriptor's",
    /// Waiting at the start gate of a created container (`ECANCELED`: it was dropped
    /// without being started).
    Gate = 89 => "wait at the start gate",
}
