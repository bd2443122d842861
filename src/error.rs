//! The error type: every way a container can fail to start or be managed.

use std::fmt;
use std::io;
use std::path::PathBuf;

use crate::Namespaces;

pub use crate::protocol::Stage;

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
    #[error("invalid container configuration: {option} needs {} (without it the host's would change)", namespace_consts(*needs))]
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

    /// `clone()` itself failed: the kernel refused to create the namespaces, or the
    /// process itself could not be created (out of descriptors for its pidfd, out of
    /// memory or processes); the message says which.
    #[error("{}: {errno}{}", clone_headline(*namespaces, *errno), hint_for_clone(*errno))]
    Clone {
        /// The namespaces asked for.
        namespaces: Namespaces,
        /// The errno clone returned.
        errno: Errno,
    },

    /// The child failed during setup, before its program started.
    #[error("{}: {errno}{}", setup_headline(*stage, *errno), hint_for_setup(*stage, *errno))]
    Setup {
        /// The step that failed.
        stage: Stage,
        /// The errno it failed with.
        errno: Errno,
    },

    /// The container's init exited before reporting whether the workload started (it was
    /// killed, or crashed).
    #[error("the container's init (PID 1) exited before the workload started")]
    InitVanished,
    /// A mount or root filesystem setting is unusable (missing source, missing mount
    /// point, not a directory, ...). Detected before anything runs.
    #[error("invalid container configuration: {what} {}: {reason}", path.display())]
    BadMount {
        /// Which setting, e.g. `rootfs`, `bind source`, `mount point`.
        what: &'static str,
        /// The path concerned.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },

    /// Two settings contradict each other, or one is malformed.
    #[error("invalid container configuration: {0}")]
    BadConfig(String),

    /// A signal number given to an option of the built-in init is out of range, or is
    /// one that option cannot use (e.g. rewriting SIGKILL, which the init never receives).
    #[error("invalid container configuration: {option}: signal {signal} {reason}")]
    BadSignal {
        /// The builder method.
        option: &'static str,
        /// The number given.
        signal: i32,
        /// What is wrong with it, e.g. `is outside 1..=31`.
        reason: &'static str,
    },

    /// An exit code outside `0..=255`.
    #[error("invalid container configuration: {option}: exit code {code} is outside 0..=255")]
    BadExitCode {
        /// The builder method.
        option: &'static str,
        /// The code given.
        code: i32,
    },

    /// An option of the built-in init was set for a container that runs without it.
    #[error("invalid container configuration: {option} needs the built-in init, but {reason}")]
    NeedsInit {
        /// The builder method.
        option: &'static str,
        /// Why there is no init (`init(false)` was set, ...).
        reason: &'static str,
    },

    /// A namespace to join (`join`/`join_path`) cannot be used.
    #[error("cannot join {namespaces} namespace via {source_desc}: {reason}")]
    BadJoin {
        /// The kinds asked for.
        namespaces: Namespaces,
        /// The container or path given.
        source_desc: String,
        /// What is wrong.
        reason: String,
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

    /// A resource limit is out of range or malformed.
    #[error("invalid container configuration: {option}: {reason}")]
    InvalidLimit {
        /// The builder method.
        option: &'static str,
        /// What is wrong.
        reason: String,
    },

    /// The kernel refused to create a user namespace because user namespaces are disabled
    /// or exhausted for this user.
    #[error("user namespaces are unavailable here: {reason}")]
    UserNamespacesDisabled {
        /// What the system's settings say, e.g. `user.max_user_namespaces is 0`.
        reason: String,
        /// The errno clone returned.
        errno: Errno,
    },

    /// A feature needs privileges the supervisor does not have (e.g. a multi-range uid
    /// map without CAP_SETUID, as an unprivileged user).
    #[error("{feature} needs {needs}; {hint}")]
    NeedsPrivilege {
        /// The setting that needs it.
        feature: String,
        /// The capability or condition missing.
        needs: &'static str,
        /// What to do instead.
        hint: &'static str,
    },

    /// Writing the user namespace's uid/gid map from the supervisor failed.
    #[error("writing {file} of the new user namespace failed: {source}")]
    IdMap {
        /// `uid_map`, `gid_map` or `setgroups`.
        file: &'static str,
        /// The underlying error.
        #[source]
        source: io::Error,
    },

    /// No block of host ids could be taken for a container's default user namespace (the
    /// pool is used up, or its lock files cannot be created). See [`crate::set_id_pool`].
    #[error("host id pool: {reason}")]
    IdPool {
        /// What went wrong.
        reason: String,
    },

    /// cgroups cannot give what was asked for here (a controller is missing, the layout is
    /// unknown, v2 refuses to enable a controller).
    #[error("cgroups: {0}")]
    CgroupUnavailable(String),

    /// Creating, opening or removing a cgroup directory failed.
    #[error("cannot {action} cgroup {}: {source}{}", path.display(), hint_for_cgroup(source))]
    Cgroup {
        /// What cellblock was doing (`create`, `open`, ...).
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },

    /// The kernel refused a cgroup setting (a limit out of the parent's range, say).
    #[error("cgroup setting {} = {value:?} refused: {source}", path.display())]
    CgroupSetting {
        /// The control file.
        path: PathBuf,
        /// The value written.
        value: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },

    /// A network setting is invalid (`field` names it: `publish host_port`, `subnet`,
    /// `bridge`, `pod`, `network`, ...).
    #[error("invalid network configuration: {field}: {reason}")]
    BadNetwork {
        /// The setting.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },

    /// A program the requested feature runs is not installed.
    #[error(
        "{purpose} needs the `{tool}` program (Debian package `{package}`), which is not installed"
    )]
    MissingTool {
        /// The program.
        tool: &'static str,
        /// The Debian package that has it.
        package: &'static str,
        /// What needs it.
        purpose: &'static str,
    },

    /// The container has already been reaped; its pid may belong to someone else now.
    #[error("the container has already exited and been reaped")]
    AlreadyReaped,

    /// A [`Detached`](crate::Detached) container is no longer running (its pid is gone,
    /// or now names a process with another start time).
    #[error("the container (pid {pid}) is not running")]
    NotRunning {
        /// The pid it had.
        pid: i32,
    },

    /// [`Detached::start`](crate::Detached::start) on a container that does not wait at
    /// its start gate (already started, or gone).
    #[error("the container (pid {pid}) is not waiting to be started: {reason}")]
    NotCreated {
        /// The container's pid.
        pid: i32,
        /// Why.
        reason: String,
    },

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

/// `Namespaces::PID | Namespaces::MOUNT`, as the constants are written in code.
fn namespace_consts(ns: Namespaces) -> String {
    let names: Vec<String> = ns
        .iter_names()
        .map(|(name, _)| format!("Namespaces::{name}"))
        .collect();
    if names.is_empty() {
        "no namespace".into()
    } else {
        names.join(" | ")
    }
}

/// What failed, for [`Error::Clone`]: the namespaces only when they are the likely cause.
fn clone_headline(namespaces: Namespaces, errno: Errno) -> String {
    match errno.0 {
        libc::EMFILE => {
            "clone() failed: the supervisor has no file descriptor left for the container's \
             pidfd (its RLIMIT_NOFILE is reached)"
                .into()
        }
        libc::ENFILE => {
            "clone() failed: the system-wide file table is full (no descriptor for the \
             container's pidfd)"
                .into()
        }
        libc::ENOMEM | libc::EAGAIN => {
            "clone() failed: the kernel could not create the process (memory, or a process or \
             thread limit)"
                .into()
        }
        _ if namespaces.is_empty() => "clone() failed".into(),
        _ => format!("clone() refused to create namespaces {namespaces}"),
    }
}

/// The headline of [`Error::Setup`]: the stage, or what was really too big.
fn setup_headline(stage: Stage, errno: Errno) -> String {
    match (stage, errno.0) {
        // The init is exec'd with the workload's argv and environment (init.rs), so at
        // either stage E2BIG is about the workload's command line, not the init.
        (Stage::InitExec | Stage::Execve, libc::E2BIG) => {
            "container setup failed: the workload's arguments and environment are too long \
             for execve"
                .into()
        }
        _ => format!("container setup failed at {stage}"),
    }
}

fn hint_for_setup(stage: Stage, errno: Errno) -> &'static str {
    match (stage, errno.0) {
        (Stage::InitExec | Stage::Execve, libc::E2BIG) => {
            " (the kernel limits argv + envp to a quarter of the stack rlimit, and each \
             string to 128 KiB: pass large data through stdin or a file instead)"
        }
        (_, libc::EMFILE) => " (a descriptor limit was reached inside the container)",
        _ => "",
    }
}

fn hint_for_clone(errno: Errno) -> &'static str {
    match errno.0 {
        libc::EMFILE | libc::ENFILE => {
            " (close descriptors, or raise the limit: ulimit -n / setrlimit(RLIMIT_NOFILE))"
        }
        libc::EPERM => " (creating namespaces needs CAP_SYS_ADMIN: run as root, or drop host_root() or add Namespaces::USER, so that the container gets a user namespace of its own, where unprivileged user namespaces are allowed)",
        libc::ENOSPC => " (a namespace count limit was reached: see /proc/sys/user/max_*_namespaces)",
        libc::EINVAL => " (the kernel refuses this combination of namespaces)",
        libc::EUSERS => " (user namespaces are nested too deeply)",
        libc::ENOMEM | libc::EAGAIN => {
            " (check free memory, RLIMIT_NPROC, kernel.pid_max/threads-max and the pids \
             limit of the supervisor's cgroup)"
        }
        _ => "",
    }
}

fn hint_for_cgroup(e: &io::Error) -> &'static str {
    match e.raw_os_error() {
        Some(libc::EACCES | libc::EPERM | libc::EROFS) => {
            " (this process may not create cgroups here: run as root, or give a delegated \
             subtree it owns with ContainerBuilder::cgroup_parent)"
        }
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
            Error::Clone { errno, .. }
            | Error::Setup { errno, .. }
            | Error::UserNamespacesDisabled { errno, .. } => Some(errno.0),
            Error::IdMap { source, .. }
            | Error::Io { source, .. }
            | Error::Cgroup { source, .. }
            | Error::CgroupSetting { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }
}

/// `?` on a cellblock call in a function returning `io::Result`, as with tokio's
/// `Command`. The kind follows the errno where there is one (`NotFound` for a missing
/// program, `InvalidInput` for a bad configuration); the message is the error's own and
/// the cellblock [`Error`] stays reachable with `get_ref`/`into_inner` + `downcast`.
///
/// ```
/// fn run() -> std::io::Result<()> {
///     Err(cellblock::Error::EmptyProgram)?
/// }
/// assert_eq!(run().unwrap_err().kind(), std::io::ErrorKind::InvalidInput);
/// ```
impl From<Error> for io::Error {
    fn from(e: Error) -> io::Error {
        let kind = match &e {
            Error::Io { source, .. }
            | Error::IdMap { source, .. }
            | Error::Cgroup { source, .. }
            | Error::CgroupSetting { source, .. } => source.kind(),
            Error::ProgramNotFound { .. } => io::ErrorKind::NotFound,
            Error::NotExecutable { .. } => io::ErrorKind::PermissionDenied,
            Error::EmptyProgram
            | Error::NulByte { .. }
            | Error::BadEnvName { .. }
            | Error::NameTooLong { .. }
            | Error::NeedsNamespace { .. }
            | Error::BadCurrentDir { .. }
            | Error::BadMount { .. }
            | Error::BadConfig(_)
            | Error::BadSignal { .. }
            | Error::BadExitCode { .. }
            | Error::NeedsInit { .. }
            | Error::BadJoin { .. }
            | Error::Security(_)
            | Error::BadPassFd { .. }
            | Error::InvalidLimit { .. } => io::ErrorKind::InvalidInput,
            Error::NamespaceUnsupported { .. } | Error::Unsupported(_) => {
                io::ErrorKind::Unsupported
            }
            Error::NotRunning { .. } => io::ErrorKind::NotFound,
            _ => match e.errno() {
                Some(n) => io::Error::from_raw_os_error(n).kind(),
                None => io::ErrorKind::Other,
            },
        };
        io::Error::new(kind, e)
    }
}

/// `Result` with cellblock's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    // Issue 12, bug 11: EMFILE from clone() is about descriptors, not namespaces.
    #[test]
    fn clone_out_of_descriptors_says_what_ran_out() {
        let e = Error::Clone {
            namespaces: Namespaces::PID | Namespaces::MOUNT,
            errno: Errno(libc::EMFILE),
        };
        let msg = e.to_string();
        assert!(msg.contains("no file descriptor left"), "{msg}");
        assert!(msg.contains("RLIMIT_NOFILE"), "{msg}");
        assert!(!msg.contains("refused to create namespaces"), "{msg}");
        // A namespace refusal still names the namespaces.
        let e = Error::Clone {
            namespaces: Namespaces::PID,
            errno: Errno(libc::EINVAL),
        };
        assert!(
            e.to_string().contains("refused to create namespaces pid"),
            "{e}"
        );
    }

    #[test]
    fn needs_namespace_lists_constants() {
        let e = Error::NeedsNamespace {
            option: "hostname",
            needs: Namespaces::UTS,
        };
        assert!(
            e.to_string().contains("hostname needs Namespaces::UTS "),
            "{e}"
        );
        let e = Error::NeedsNamespace {
            option: "mount_proc",
            needs: Namespaces::PID | Namespaces::MOUNT,
        };
        let msg = e.to_string();
        assert!(
            msg.contains("Namespaces::PID") && msg.contains("Namespaces::MOUNT"),
            "{msg}"
        );
    }

    #[test]
    fn e2big_at_the_init_exec_blames_the_workload() {
        let e = Error::Setup {
            stage: Stage::InitExec,
            errno: Errno(libc::E2BIG),
        };
        let msg = e.to_string();
        assert!(msg.contains("workload's arguments"), "{msg}");
        assert!(!msg.contains("exec the init"), "{msg}");
        // Other failures of that stage keep naming it.
        let e = Error::Setup {
            stage: Stage::InitExec,
            errno: Errno(libc::ENOMEM),
        };
        assert!(e.to_string().contains("at exec the init"), "{e}");
    }

    #[test]
    fn into_io_error_keeps_kind_and_message() {
        let e: io::Error = Error::ProgramNotFound {
            program: "nope".into(),
            searched: String::new(),
        }
        .into();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        assert!(e.to_string().contains("program not found"));
        assert!(e.get_ref().unwrap().downcast_ref::<Error>().is_some());
        let e: io::Error = Error::Setup {
            stage: Stage::Chdir,
            errno: Errno(libc::EACCES),
        }
        .into();
        assert_eq!(e.kind(), io::ErrorKind::PermissionDenied);
    }
}
