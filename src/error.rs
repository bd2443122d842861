//! The error type: every way a container can fail to start or be managed.

use std::fmt;
use std::io;
use std::path::PathBuf;

use crate::Namespaces;

/// A step of the child's setup between clone and execve.
///
/// A failure inside the child is reported as [`Error::Setup`] naming the stage and the
/// errno, e.g. `setup failed at sethostname: Operation not permitted (EPERM)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
#[non_exhaustive]
pub enum Stage {
    /// Writing `/proc/self/setgroups`, `uid_map` or `gid_map` of a new user namespace.
    UserMap = 1,
    /// Making `/` recursively private in the new mount namespace.
    MountPrivate = 2,
    /// `sethostname`.
    SetHostname = 3,
    /// `setdomainname`.
    SetDomainname = 4,
    /// Bringing up `lo` in the new network namespace.
    LoopbackUp = 5,
    /// Mounting a fresh `/proc` for the new PID namespace.
    MountProc = 6,
    /// `dup2` of stdin/stdout/stderr.
    Stdio = 7,
    /// `chdir` to the working directory.
    Chdir = 8,
    /// Marking inherited descriptors close-on-exec (`close_range`).
    CloseFds = 9,
    /// Resetting signal dispositions and the signal mask.
    Signals = 10,
    /// `execve` of the program.
    Execve = 11,
    /// Covering masked paths (`/proc/kcore`, `/sys/firmware`, …).
    MaskPaths = 80,
    /// Making `/proc/sys`, `/proc/bus`, … read-only.
    ReadonlyPaths = 81,
    /// `setsid` (the new session).
    Setsid = 82,
    /// Dropping capabilities (bounding, ambient, then `capset`).
    Capabilities = 83,
    /// `prctl(PR_SET_NO_NEW_PRIVS)`.
    NoNewPrivs = 84,
    /// `dup2` of a descriptor passed with `pass_fd`.
    PassFds = 85,
    /// Installing the seccomp filter.
    Seccomp = 86,
}

impl Stage {
    pub(crate) fn from_u32(v: u32) -> Option<Stage> {
        use Stage::*;
        [
            UserMap,
            MountPrivate,
            SetHostname,
            SetDomainname,
            LoopbackUp,
            MountProc,
            Stdio,
            Chdir,
            CloseFds,
            Signals,
            Execve,
            MaskPaths,
            ReadonlyPaths,
            Setsid,
            Capabilities,
            NoNewPrivs,
            PassFds,
            Seccomp,
        ]
        .into_iter()
        .find(|s| *s as u32 == v)
    }

    /// What the stage does, as a short phrase.
    pub fn name(self) -> &'static str {
        match self {
            Stage::UserMap => "write uid_map/gid_map",
            Stage::MountPrivate => "make / rprivate",
            Stage::SetHostname => "sethostname",
            Stage::SetDomainname => "setdomainname",
            Stage::LoopbackUp => "bring up lo",
            Stage::MountProc => "mount /proc",
            Stage::Stdio => "dup2 stdio",
            Stage::Chdir => "chdir",
            Stage::CloseFds => "close_range",
            Stage::Signals => "reset signals",
            Stage::Execve => "execve",
            Stage::MaskPaths => "mask paths",
            Stage::ReadonlyPaths => "make paths read-only",
            Stage::Setsid => "setsid",
            Stage::Capabilities => "drop capabilities",
            Stage::NoNewPrivs => "set no_new_privs",
            Stage::PassFds => "pass descriptors",
            Stage::Seccomp => "install seccomp filter",
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An errno with its symbolic name, e.g. `Operation not permitted (EPERM)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Errno(pub i32);

impl Errno {
    /// The `nix` view of this errno.
    pub fn as_nix(self) -> nix::errno::Errno {
        nix::errno::Errno::from_raw(self.0)
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let e = self.as_nix();
        write!(f, "{} ({e:?})", e.desc())
    }
}

/// Everything that can go wrong in cellblock.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The program name was empty.
    #[error("invalid container configuration: the program is empty")]
    EmptyProgram,

    /// A string that must become a C string holds a NUL byte.
    #[error("invalid container configuration: {what} contains a NUL byte: {value:?}")]
    NulByte {
        /// Which setting (e.g. `argument 2`, `environment variable FOO`).
        what: String,
        /// The offending value, lossily decoded.
        value: String,
    },

    /// An environment variable name is empty or holds `=`.
    #[error("invalid container configuration: environment variable name {name:?} is empty or contains '='")]
    BadEnvName {
        /// The offending name.
        name: String,
    },

    /// The hostname or domain name is longer than the kernel accepts.
    #[error("invalid container configuration: {what} is {len} bytes long; the kernel allows at most {max}")]
    NameTooLong {
        /// `hostname` or `domainname`.
        what: &'static str,
        /// Its length in bytes.
        len: usize,
        /// The limit (64).
        max: usize,
    },

    /// A setting needs a namespace that the configuration does not create.
    #[error("invalid container configuration: {option} needs Namespaces::{needs:?} (without it the host's would change)")]
    NeedsNamespace {
        /// The builder method.
        option: &'static str,
        /// The namespaces it needs.
        needs: Namespaces,
    },

    /// The program was not found (on `PATH`, if it has no `/`).
    #[error("program not found: {program:?}{}", if searched.is_empty() { String::new() } else { format!(" (searched PATH={searched})") })]
    ProgramNotFound {
        /// The program as given.
        program: String,
        /// The PATH searched, empty for a path with a `/`.
        searched: String,
    },

    /// The program exists but cannot be executed.
    #[error("program is not executable: {}: {reason}", path.display())]
    NotExecutable {
        /// The resolved path.
        path: PathBuf,
        /// Why (a directory, no execute permission, …).
        reason: String,
    },

    /// The working directory does not exist or is not a directory.
    #[error("invalid working directory {}: {reason}", path.display())]
    BadCurrentDir {
        /// The directory given.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },

    /// The kernel has no such namespace kind.
    #[error("this kernel does not support the {namespaces} namespace(s) (no /proc/self/ns entry)")]
    NamespaceUnsupported {
        /// The kinds that are missing.
        namespaces: Namespaces,
    },

    /// A feature exists in the API but is not available in this configuration.
    #[error("unsupported: {0}")]
    Unsupported(String),

    /// `clone()` itself failed: the kernel refused to create the namespaces.
    #[error("clone() refused to create namespaces {namespaces}: {errno}{}", hint_for_clone(*errno))]
    Clone {
        /// The namespaces asked for.
        namespaces: Namespaces,
        /// The errno clone returned.
        errno: Errno,
    },

    /// The child failed during setup, before its program started.
    #[error("container setup failed at {stage}: {errno}")]
    Setup {
        /// The step that failed.
        stage: Stage,
        /// The errno it failed with.
        errno: Errno,
    },

    /// A security setting is invalid or could not be prepared (e.g. the seccomp filter).
    #[error("invalid security configuration: {0}")]
    Security(String),

    /// A descriptor given to `pass_fd` cannot be passed.
    #[error("invalid container configuration: pass_fd to descriptor {target}: {reason}")]
    BadPassFd {
        /// The requested descriptor number in the container.
        target: i32,
        /// What is wrong.
        reason: String,
    },

    /// The container has already been reaped; its pid may belong to someone else now.
    #[error("the container has already exited and been reaped")]
    AlreadyReaped,

    /// Any other I/O error in the supervisor (pipes, pidfd, /proc).
    #[error("{context}: {source}")]
    Io {
        /// What cellblock was doing.
        context: &'static str,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

fn hint_for_clone(errno: Errno) -> &'static str {
    match errno.0 {
        libc::EPERM => " (creating namespaces needs CAP_SYS_ADMIN: run as root, or add Namespaces::USER where unprivileged user namespaces are allowed)",
        libc::ENOSPC => " (a namespace count limit was reached: see /proc/sys/user/max_*_namespaces)",
        libc::EINVAL => " (the kernel refuses this combination of namespaces)",
        libc::EUSERS => " (user namespaces are nested too deeply)",
        libc::ENOMEM | libc::EAGAIN => " (out of memory or process limit reached)",
        _ => "",
    }
}

impl Error {
    pub(crate) fn io(context: &'static str) -> impl FnOnce(io::Error) -> Error {
        move |source| Error::Io { context, source }
    }

    /// The errno behind this error, if there is one.
    pub fn errno(&self) -> Option<i32> {
        match self {
            Error::Clone { errno, .. } | Error::Setup { errno, .. } => Some(errno.0),
            Error::Io { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }
}

/// `Result` with cellblock's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
