//! `config.json` to a [`cellblock::ContainerBuilder`]: the OCI runtime spec's `process`,
//! `root`, `mounts` and `linux` mapped onto the library's settings, field by field. What
//! the library cannot express fails with a [`SpecError`] naming the field, never silently.
//!
//! The device cgroup rules go in through the library's `cgroup_setup`, with the cgroup,
//! before any process is in it. What does not fit in a builder (sysctls, `oomScoreAdj`)
//! is done by [`after_create`], with the container stopped at its gate.
//!
//! Deliberate differences from runc, each documented where it is made:
//! - `/dev`: the OCI `/dev` tmpfs is the library's minimal `/dev` ([`ContainerBuilder::mount_dev`]),
//!   which already holds the runtime-spec's default devices, a private devpts with
//!   `ptmx -> pts/ptmx`, a private `/dev/shm` and the `fd`, `stdin`, `stdout`, `stderr`
//!   links; the spec's own `/dev/pts` and `/dev/shm` (tmpfs) entries are that.
//! - a `cgroup` mount at `/sys/fs/cgroup` (podman's): the library cannot mount into a fresh
//!   sysfs, so `/sys` is then the host's sysfs bound read-only (recursively, with the
//!   cgroup hierarchies under it), rather than a fresh sysfs plus the container's own
//!   cgroup directories (runc).
//! - the library's devpts has `ptmxmode=0666,mode=0620` but no `gid=5`: a pty's group is
//!   the opener's, not `tty`.
//! - mount propagation: nothing propagates between the host and the container. A mount's
//!   propagation options (`rprivate`, `rslave`, `shared`, ...) are all taken as private;
//!   `linux.rootfsPropagation` `shared` makes the container's own mounts peers of each
//!   other, `unbindable` makes them unbindable, `slave` is private (no master to follow).
//!   Access-time options take the kernel's default.
//! - no `/dev/console` with a terminal (runc binds the pty there): the workload's pty is
//!   its stdio and controlling terminal only.
//! - `linux.devices` are the host's nodes bound in (also as root, where runc makes them
//!   with `mknod`): a device the host has no node for is refused (`devices.rs`).
//! - no default pids budget of the library's: only the spec's `linux.resources`.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use cellblock::{Capability, ContainerBuilder, Namespaces, Resource, RootPropagation, Stdio};
use oci_spec::runtime::{
    LinuxCapabilities, LinuxNamespaceType, LinuxResources, Mount, PosixRlimitType, Process, Spec,
};

/// What the command line adds to `config.json`.
#[derive(Debug, Clone)]
pub struct BuildOpts {
    /// The container id.
    pub id: String,
    /// The bundle directory (`--bundle`; relative `root.path` and bind sources are under it).
    pub bundle: PathBuf,
    /// `--console-socket` was given: the container gets a pty (with `process.terminal`).
    pub console: bool,
}

/// Why a `config.json` (or an exec's process) cannot be run.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// A field holds something invalid.
    #[error("{field}: {reason}")]
    Invalid {
        /// The field, as the runtime spec names it (`linux.sysctl`, `mounts[3].options`).
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A field asks for something this runtime (or this host) does not do.
    #[error("{field}: not supported: {reason}")]
    Unsupported {
        /// The field, as the runtime spec names it.
        field: String,
        /// What is missing.
        reason: String,
    },
    /// A system call made for the mapping failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        source: std::io::Error,
    },
    /// The library refused or failed.
    #[error(transparent)]
    Library(#[from] cellblock::Error),
}

impl SpecError {
    pub(crate) fn invalid(field: impl Into<String>, reason: impl Into<String>) -> SpecError {
        SpecError::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn unsupported(field: impl Into<String>, reason: impl Into<String>) -> SpecError {
        SpecError::Unsupported {
            field: field.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> SpecError {
        let what = what.into();
        move |source| SpecError::Io { what, source }
    }
}

/// The builder for `create`/`run`: the container `spec` describes, with its workload
/// stopped at the library's gate until `start`. The container outlives the runtime
/// (`die_with_supervisor(false)`) and its init is the workload itself (`init(false)`), as
/// with runc; it inherits the runtime's stdio unless it has a terminal.
///
/// Side effect, as runc: missing mount points of the `mounts` are created in the root
/// filesystem (directories, or empty files for file binds), without following symlinks.
pub fn builder_for(spec: &Spec, opts: &BuildOpts) -> Result<ContainerBuilder, SpecError> {
    check_version(spec.version())?;
    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| SpecError::invalid("process", "missing"))?;
    let mut b = process_builder(process, opts.console, "process")?;
    b.die_with_supervisor(false).init(false);

    let linux = spec.linux().as_ref();
    // Namespaces: created, or joined by path.
    let mut created = Namespaces::empty();
    for (i, ns) in linux
        .and_then(|l| l.namespaces().as_ref())
        .into_iter()
        .flatten()
        .enumerate()
    {
        let kind = namespace_kind(ns.typ());
        match ns.path() {
            Some(path) => {
                if path.as_os_str().is_empty() || !path.is_absolute() {
                    return Err(SpecError::invalid(
                        format!("linux.namespaces[{i}].path"),
                        format!("{} is not an absolute path", path.display()),
                    ));
                }
                b.join_path(kind, path);
            }
            None => created |= kind,
        }
    }
    b.namespaces(created);
    identity(&mut b, process, spec, created)?;

    // Root filesystem, hostname.
    let root = spec
        .root()
        .as_ref()
        .ok_or_else(|| SpecError::invalid("root", "missing"))?;
    let rootfs = if root.path().is_absolute() {
        root.path().clone()
    } else {
        opts.bundle.join(root.path())
    };
    if !rootfs.is_dir() {
        return Err(SpecError::invalid(
            "root.path",
            format!("{} is not a directory", rootfs.display()),
        ));
    }
    b.rootfs(&rootfs)
        .readonly_root(root.readonly().unwrap_or(false));
    // A uts namespace of the container's, created or joined by `path` (runc sets the
    // hostname in a joined one too).
    let uts = linux
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|ns| ns.iter().any(|n| n.typ() == LinuxNamespaceType::Uts));
    if let Some(h) = spec.hostname().as_deref() {
        if !uts && !h.is_empty() {
            return Err(SpecError::invalid(
                "hostname",
                "setting a hostname needs a uts namespace",
            ));
        }
        b.hostname(h);
    }
    if let Some(d) = spec.domainname().as_deref() {
        if !uts && !d.is_empty() {
            return Err(SpecError::invalid(
                "domainname",
                "setting a domain name needs a uts namespace",
            ));
        }
        b.domainname(d);
    }

    let mounts = spec.mounts().as_deref().unwrap_or_default();
    map_mounts(&mut b, mounts, &rootfs, &opts.bundle)?;
    if let Some(linux) = linux {
        crate::devices::map_devices(&mut b, linux.devices().as_deref().unwrap_or_default())?;
        map_masks(
            &mut b,
            linux.masked_paths().as_deref().unwrap_or_default(),
            linux.readonly_paths().as_deref().unwrap_or_default(),
        );
        cgroups_path(&mut b, linux.cgroups_path().as_deref(), &opts.id)?;
        if let Some(r) = linux.resources() {
            map_resources(&mut b, r)?;
            let rules = r.devices().clone().unwrap_or_default();
            if !rules.is_empty() {
                let devices = linux.devices().clone().unwrap_or_default();
                b.cgroup_setup(move |dirs| {
                    crate::devices::apply(&rules, &devices, dirs)
                        .map_err(|e| std::io::Error::other(e.to_string()))
                });
            }
        } else {
            // No limits asked: none of the library's default budget either, but a cgroup
            // all the same (for pause, ps and kill --all).
            b.default_budget(false).cgroup_accounting(true);
        }
        crate::sysctl::check(linux.sysctl().as_ref(), created)?;
        map_linux_extras(&mut b, linux, created)?;
        check_mount_label(linux.mount_label().as_deref(), selinux_enabled())?;
        b.seccomp(crate::seccomp::policy(linux.seccomp().as_ref())?);
    } else {
        cgroups_path(&mut b, None, &opts.id)?;
        b.masked_paths(false)
            .seccomp(cellblock::Seccomp::disabled())
            .default_budget(false)
            .cgroup_accounting(true);
    }
    Ok(b)
}

/// The rest of `linux`: the time namespace's offsets; `rootfsPropagation` (private,
/// shared among the container's own mounts, or unbindable; never with the host's); what the library has no setting for is refused by name.
fn map_linux_extras(
    b: &mut ContainerBuilder,
    linux: &oci_spec::runtime::Linux,
    created: Namespaces,
) -> Result<(), SpecError> {
    if let Some(offsets) = linux.time_offsets() {
        if !offsets.is_empty() && !created.contains(Namespaces::TIME) {
            return Err(SpecError::invalid(
                "linux.timeOffsets",
                "offsets need a new time namespace",
            ));
        }
        for (clock, off) in offsets {
            if off.nanosecs().unwrap_or(0) != 0 {
                return Err(SpecError::unsupported(
                    format!("linux.timeOffsets.{clock}.nanosecs"),
                    "offsets are whole seconds in the library",
                ));
            }
            let secs = off.secs().unwrap_or(0);
            match clock.as_str() {
                "monotonic" => b.monotonic_offset(secs),
                "boottime" => b.boottime_offset(secs),
                other => {
                    return Err(SpecError::invalid(
                        "linux.timeOffsets",
                        format!("{other}: monotonic or boottime"),
                    ))
                }
            };
        }
    }
    // Nothing propagates to or from the host in any case (see RootPropagation): `slave`
    // (receive from the host) is therefore private, and `shared` a peer group of the
    // container's own mounts.
    let p = match linux.rootfs_propagation().as_deref() {
        None | Some("" | "private" | "rprivate" | "slave" | "rslave") => RootPropagation::Private,
        Some("shared" | "rshared") => RootPropagation::Shared,
        Some("unbindable" | "runbindable") => RootPropagation::Unbindable,
        Some(other) => {
            return Err(SpecError::invalid(
                "linux.rootfsPropagation",
                format!("{other:?} is not a propagation type"),
            ))
        }
    };
    b.root_propagation(p);
    for (field, set) in [
        ("linux.personality", linux.personality().is_some()),
        ("linux.intelRdt", linux.intel_rdt().is_some()),
        ("linux.memoryPolicy", linux.memory_policy().is_some()),
        (
            "linux.netDevices",
            linux.net_devices().as_ref().is_some_and(|d| !d.is_empty()),
        ),
    ] {
        if set {
            return Err(SpecError::unsupported(
                field,
                "the library has no such setting",
            ));
        }
    }
    Ok(())
}

/// The builder for `exec`: `process` run inside the running container whose init is host
/// pid `target_pid`, joining every namespace in which that process differs from ours.
/// A program name without `/` is looked up in the process's `PATH` inside the container.
///
/// Not done here: the container's cgroups, which the caller joins
/// (`ContainerBuilder::join_cgroup_of` the init, in `exec`), and its seccomp profile
/// ([`exec_builder_in`]).
pub fn exec_builder(
    process: &Process,
    target_pid: i32,
    console: bool,
) -> Result<ContainerBuilder, SpecError> {
    let process = &in_container_path(process, target_pid)?;
    let mut b = process_builder(process, console, "process")?;
    b.die_with_supervisor(false).init(false);
    let mut joined = Namespaces::empty();
    for (name, kind) in [
        ("user", Namespaces::USER),
        ("mnt", Namespaces::MOUNT),
        ("pid", Namespaces::PID),
        ("net", Namespaces::NET),
        ("ipc", Namespaces::IPC),
        ("uts", Namespaces::UTS),
        ("cgroup", Namespaces::CGROUP),
        ("time", Namespaces::TIME),
    ] {
        let theirs = PathBuf::from(format!("/proc/{target_pid}/ns/{name}"));
        let ours = PathBuf::from(format!("/proc/self/ns/{name}"));
        let (Ok(t), Ok(o)) = (std::fs::read_link(&theirs), std::fs::read_link(&ours)) else {
            if name == "mnt" {
                return Err(SpecError::invalid(
                    "exec",
                    format!("container process {target_pid} is gone"),
                ));
            }
            continue;
        };
        if t != o {
            b.join_path(kind, theirs);
            joined |= kind;
        }
    }
    if !joined.contains(Namespaces::USER) {
        b.host_root();
    }
    let user = process.user();
    b.user(user.uid(), user.gid())
        .groups(user.additional_gids().clone().unwrap_or_default());
    if let Some(m) = user.umask() {
        b.umask(Some(m));
    }
    // The container's own seccomp profile and masks are not known here (runc reads them
    // from its state); the exec'd process gets no filter of ours and joins the mounts.
    b.seccomp(cellblock::Seccomp::disabled())
        .masked_paths(false)
        .default_budget(false);
    Ok(b)
}

/// [`exec_builder`] with the container's own seccomp profile (from its `config.json`), which
/// runc applies to exec'd processes too.
pub fn exec_builder_in(
    spec: &Spec,
    process: &Process,
    target_pid: i32,
    console: bool,
) -> Result<ContainerBuilder, SpecError> {
    let mut b = exec_builder(process, target_pid, console)?;
    let profile = spec.linux().as_ref().and_then(|l| l.seccomp().as_ref());
    b.seccomp(crate::seccomp::policy(profile)?);
    Ok(b)
}

/// `process` with a program name without `/` looked up in its `PATH` (or the library's
/// default) inside the container of `pid`, as runc does: the library runs a joined mount
/// namespace's program by its absolute path only.
fn in_container_path(process: &Process, pid: i32) -> Result<Process, SpecError> {
    let args = process.args().as_deref().unwrap_or_default();
    let Some(name) = args.first().filter(|a| !a.contains('/') && !a.is_empty()) else {
        return Ok(process.clone());
    };
    let env = process.env().as_deref().unwrap_or_default();
    let path = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(cellblock::DEFAULT_PATH);
    let root = PathBuf::from(format!("/proc/{pid}/root"));
    for dir in path.split(':').filter(|d| d.starts_with('/')) {
        let candidate = Path::new(dir).join(name);
        // A link is enough: its target is resolved by the kernel inside the container.
        if std::fs::symlink_metadata(root.join(candidate.strip_prefix("/").unwrap_or(&candidate)))
            .is_ok()
        {
            let mut args = args.to_vec();
            args[0] = candidate.to_string_lossy().into_owned();
            let mut p = process.clone();
            p.set_args(Some(args));
            return Ok(p);
        }
    }
    Err(SpecError::invalid(
        "process.args",
        format!("{name}: executable file not found in $PATH"),
    ))
}

/// The part of the mapping `create` and `exec` share: argv, environment, cwd, rlimits,
/// capabilities, no_new_privileges, terminal and the refused LSM labels.
fn process_builder(p: &Process, console: bool, field: &str) -> Result<ContainerBuilder, SpecError> {
    let args = p.args().as_deref().unwrap_or_default();
    let Some(program) = args.first() else {
        return Err(SpecError::invalid(
            format!("{field}.args"),
            "empty: there is no program to run",
        ));
    };
    if p.command_line().as_deref().is_some_and(|c| !c.is_empty()) {
        return Err(SpecError::unsupported(
            format!("{field}.commandLine"),
            "a Windows field",
        ));
    }
    let mut b = cellblock::Container::builder(program);
    b.args(&args[1..]).env_clear();
    for (i, kv) in p.env().as_deref().unwrap_or_default().iter().enumerate() {
        // "KEY=VALUE"; a variable without '=' is taken as an empty value, as runc does.
        let (k, v) = kv.split_once('=').unwrap_or((kv.as_str(), ""));
        if k.is_empty() {
            return Err(SpecError::invalid(
                format!("{field}.env[{i}]"),
                format!("{kv:?} has no variable name"),
            ));
        }
        b.env(k, v);
    }
    let cwd = p.cwd();
    if !cwd.is_absolute() {
        return Err(SpecError::invalid(
            format!("{field}.cwd"),
            format!("{} is not an absolute path", cwd.display()),
        ));
    }
    b.current_dir(cwd);
    for r in p.rlimits().as_deref().unwrap_or_default() {
        b.rlimit(resource(r.typ()), r.soft(), r.hard());
    }
    capabilities(&mut b, p.capabilities().as_ref(), field)?;
    b.no_new_privs(p.no_new_privileges().unwrap_or(false));
    if p.terminal().unwrap_or(false) {
        if !console {
            return Err(SpecError::invalid(
                format!("{field}.terminal"),
                "a terminal needs --console-socket",
            ));
        }
        b.pty();
        if let Some(size) = p.console_size() {
            let (rows, cols) = (u16::try_from(size.height()), u16::try_from(size.width()));
            let (Ok(rows), Ok(cols)) = (rows, cols) else {
                return Err(SpecError::invalid(
                    format!("{field}.consoleSize"),
                    "height and width are at most 65535",
                ));
            };
            b.pty_size(cellblock::PtySize { rows, cols });
        }
    } else {
        b.stdin(Stdio::inherit())
            .stdout(Stdio::inherit())
            .stderr(Stdio::inherit());
    }
    if let Some(a) = p.apparmor_profile().as_deref().filter(|a| !a.is_empty()) {
        return Err(SpecError::unsupported(
            format!("{field}.apparmorProfile"),
            format!("{a}: AppArmor profiles are not supported"),
        ));
    }
    if let Some(l) = p.selinux_label().as_deref().filter(|l| !l.is_empty()) {
        return Err(SpecError::unsupported(
            format!("{field}.selinuxLabel"),
            format!("{l}: SELinux labels are not supported"),
        ));
    }
    if p.io_priority().is_some() {
        return Err(SpecError::unsupported(
            format!("{field}.ioPriority"),
            "I/O priorities are not supported",
        ));
    }
    if p.scheduler().is_some() {
        return Err(SpecError::unsupported(
            format!("{field}.scheduler"),
            "scheduler settings are not supported",
        ));
    }
    Ok(b)
}

/// The workload's ids and the user namespace's maps.
fn identity(
    b: &mut ContainerBuilder,
    p: &Process,
    spec: &Spec,
    created: Namespaces,
) -> Result<(), SpecError> {
    let linux = spec.linux().as_ref();
    let uid_maps = linux
        .and_then(|l| l.uid_mappings().as_deref())
        .unwrap_or_default();
    let gid_maps = linux
        .and_then(|l| l.gid_mappings().as_deref())
        .unwrap_or_default();
    if created.contains(Namespaces::USER) {
        if uid_maps.is_empty() || gid_maps.is_empty() {
            return Err(SpecError::invalid(
                "linux.uidMappings",
                "a new user namespace needs uidMappings and gidMappings",
            ));
        }
        for m in uid_maps {
            b.uid_map(m.container_id(), m.host_id(), m.size());
        }
        for m in gid_maps {
            b.gid_map(m.container_id(), m.host_id(), m.size());
        }
    } else {
        if !uid_maps.is_empty() || !gid_maps.is_empty() {
            return Err(SpecError::invalid(
                "linux.uidMappings",
                "mappings need a new user namespace in linux.namespaces",
            ));
        }
        // No user namespace of our own: the ids are the host's, as the spec says (the
        // library otherwise adds a user namespace mapping root to the supervisor).
        b.host_root();
    }
    let user = p.user();
    b.user(user.uid(), user.gid())
        .groups(user.additional_gids().clone().unwrap_or_default());
    if let Some(m) = user.umask() {
        if m > 0o777 {
            return Err(SpecError::invalid(
                "process.user.umask",
                format!("{m:o} is not a umask"),
            ));
        }
        b.umask(Some(m));
    }
    if user.username().as_deref().is_some_and(|u| !u.is_empty()) {
        return Err(SpecError::unsupported(
            "process.user.username",
            "a Windows field",
        ));
    }
    Ok(())
}

/// The five sets onto the library's `capability_sets`. Checked here to name the field:
/// effective must lie within permitted and ambient within permitted and inheritable (the
/// kernel refuses anything else).
fn capabilities(
    b: &mut ContainerBuilder,
    caps: Option<&LinuxCapabilities>,
    field: &str,
) -> Result<(), SpecError> {
    let Some(caps) = caps else {
        return Ok(()); // the library's default: none at all
    };
    let set = |name: &str, s: &Option<oci_spec::runtime::Capabilities>| {
        let mut out = Vec::new();
        for c in s.iter().flatten() {
            let text = format!("CAP_{c}");
            let cap: Capability = text.parse().map_err(|_| {
                SpecError::unsupported(
                    format!("{field}.capabilities.{name}"),
                    format!("{text} is unknown to this build"),
                )
            })?;
            out.push(cap);
        }
        Ok::<_, SpecError>(out)
    };
    let bounding = set("bounding", caps.bounding())?;
    let permitted = set("permitted", caps.permitted())?;
    let effective = set("effective", caps.effective())?;
    let inheritable = set("inheritable", caps.inheritable())?;
    let ambient = set("ambient", caps.ambient())?;
    if let Some(c) = effective.iter().find(|c| !permitted.contains(c)) {
        return Err(SpecError::invalid(
            format!("{field}.capabilities.effective"),
            format!("{c} is not in the permitted set"),
        ));
    }
    if let Some(c) = ambient
        .iter()
        .find(|c| !permitted.contains(c) || !inheritable.contains(c))
    {
        return Err(SpecError::invalid(
            format!("{field}.capabilities.ambient"),
            format!("{c} is not in both the permitted and the inheritable set"),
        ));
    }
    b.capability_sets(bounding, permitted, effective, inheritable, ambient);
    Ok(())
}

fn namespace_kind(t: LinuxNamespaceType) -> Namespaces {
    match t {
        LinuxNamespaceType::Mount => Namespaces::MOUNT,
        LinuxNamespaceType::Cgroup => Namespaces::CGROUP,
        LinuxNamespaceType::Uts => Namespaces::UTS,
        LinuxNamespaceType::Ipc => Namespaces::IPC,
        LinuxNamespaceType::User => Namespaces::USER,
        LinuxNamespaceType::Pid => Namespaces::PID,
        LinuxNamespaceType::Network => Namespaces::NET,
        LinuxNamespaceType::Time => Namespaces::TIME,
    }
}

fn resource(t: PosixRlimitType) -> Resource {
    match t {
        PosixRlimitType::RlimitCpu => Resource::Cpu,
        PosixRlimitType::RlimitFsize => Resource::Fsize,
        PosixRlimitType::RlimitData => Resource::Data,
        PosixRlimitType::RlimitStack => Resource::Stack,
        PosixRlimitType::RlimitCore => Resource::Core,
        PosixRlimitType::RlimitRss => Resource::Rss,
        PosixRlimitType::RlimitNproc => Resource::Nproc,
        PosixRlimitType::RlimitNofile => Resource::Nofile,
        PosixRlimitType::RlimitMemlock => Resource::Memlock,
        PosixRlimitType::RlimitAs => Resource::As,
        PosixRlimitType::RlimitLocks => Resource::Locks,
        PosixRlimitType::RlimitSigpending => Resource::Sigpending,
        PosixRlimitType::RlimitMsgqueue => Resource::Msgqueue,
        PosixRlimitType::RlimitNice => Resource::Nice,
        PosixRlimitType::RlimitRtprio => Resource::Rtprio,
        PosixRlimitType::RlimitRttime => Resource::Rttime,
    }
}

/// The options of one mount, sorted out.
#[derive(Debug, Default, PartialEq, Eq)]
struct MountOptions {
    bind: bool,
    /// `MS_*` flags asked: `MS_REC` (rbind), `MS_RDONLY`, `MS_NOSUID`, `MS_NODEV`,
    /// `MS_NOEXEC`.
    flags: libc::c_ulong,
    /// `mode=` (octal) and `size=` of a tmpfs.
    mode: Option<u32>,
    size: Option<u64>,
}

/// Options the library's mounts take as they come, or apply their own way (propagation:
/// every mount of the container is private; access times: the kernel's defaults).
const ACCEPTED_OPTIONS: &[&str] = &[
    "rw",
    "private",
    "rprivate",
    "slave",
    "rslave",
    "shared",
    "rshared",
    "unbindable",
    "runbindable",
    "relatime",
    "strictatime",
    "noatime",
    "nodiratime",
    "newinstance",
];

fn mount_options(m: &Mount, field: &str) -> Result<MountOptions, SpecError> {
    let mut o = MountOptions::default();
    for opt in m.options().as_deref().unwrap_or_default() {
        let (key, value) = match opt.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (opt.as_str(), None),
        };
        match (key, value) {
            ("bind", None) => o.bind = true,
            ("rbind", None) => {
                o.bind = true;
                o.flags |= libc::MS_REC;
            }
            ("ro", None) => o.flags |= libc::MS_RDONLY,
            ("nosuid", None) => o.flags |= libc::MS_NOSUID,
            ("nodev", None) => o.flags |= libc::MS_NODEV,
            ("noexec", None) => o.flags |= libc::MS_NOEXEC,
            ("mode", Some(v)) => {
                o.mode = Some(
                    u32::from_str_radix(v, 8)
                        .ok()
                        .filter(|m| *m <= 0o7777)
                        .ok_or_else(|| {
                            SpecError::invalid(
                                format!("{field}.options"),
                                format!("mode={v}: not an octal mode"),
                            )
                        })?,
                )
            }
            ("size", Some(v)) => {
                o.size = Some(parse_size(v).ok_or_else(|| {
                    SpecError::invalid(format!("{field}.options"), format!("size={v}: not a size"))
                })?)
            }
            // devpts's and mqueue's own options: the library's devpts has these.
            ("ptmxmode" | "gid", Some(_)) if m.typ().as_deref() == Some("devpts") => {}
            (k, None) if ACCEPTED_OPTIONS.contains(&k) => {}
            _ => {
                return Err(SpecError::unsupported(
                    format!("{field}.options"),
                    opt.to_string(),
                ))
            }
        }
    }
    Ok(o)
}

/// A tmpfs `size=`: bytes, or with a `k`, `m` or `g` suffix (binary multiples); a
/// percentage of RAM is not supported.
fn parse_size(v: &str) -> Option<u64> {
    let (digits, mult) = match v.as_bytes().last()? {
        b'k' | b'K' => (&v[..v.len() - 1], 1u64 << 10),
        b'm' | b'M' => (&v[..v.len() - 1], 1 << 20),
        b'g' | b'G' => (&v[..v.len() - 1], 1 << 30),
        _ => (v, 1),
    };
    digits.parse::<u64>().ok()?.checked_mul(mult)
}

/// The mounts, in order, onto the library's operations. A destination whose mount point
/// is missing in the root filesystem is created there first (not under a file system
/// mounted earlier in the list, where the library makes its own).
fn map_mounts(
    b: &mut ContainerBuilder,
    mounts: &[Mount],
    rootfs: &Path,
    bundle: &Path,
) -> Result<(), SpecError> {
    // A cgroup mount at /sys/fs/cgroup cannot go into a fresh sysfs (the library mounts
    // nothing inside kernel file systems): /sys is then the host's, read-only.
    let cgroup_in_sys = mounts.iter().any(|m| {
        m.typ().as_deref() == Some("cgroup") && m.destination() == Path::new("/sys/fs/cgroup")
    });
    let mut covered: Vec<PathBuf> = Vec::new();
    let mut dev = false;
    let mut sys = false;
    for (i, m) in mounts.iter().enumerate() {
        let field = format!("mounts[{i}]");
        let dst = clean_destination(m.destination(), &field)?;
        let o = mount_options(m, &field)?;
        let typ = m
            .typ()
            .as_deref()
            .unwrap_or(if o.bind { "bind" } else { "" });
        let under_covered = covered.iter().any(|c| dst.starts_with(c) && dst != *c);
        match typ {
            _ if o.bind => {
                let src = m.source().as_ref().ok_or_else(|| {
                    SpecError::invalid(format!("{field}.source"), "a bind mount needs a source")
                })?;
                let src = if src.is_absolute() {
                    src.clone()
                } else {
                    bundle.join(src)
                };
                let meta = std::fs::metadata(&src)
                    .map_err(SpecError::io(format!("{field}.source {}", src.display())))?;
                if !under_covered {
                    mount_point(rootfs, &dst, meta.is_dir())?;
                }
                b.bind_with_flags(src, &dst, o.flags);
            }
            "proc" => {
                if dst != Path::new("/proc") {
                    return Err(SpecError::unsupported(
                        format!("{field}.destination"),
                        "proc is mounted at /proc only",
                    ));
                }
                mount_point(rootfs, &dst, true)?;
                b.mount_proc();
                covered.push(dst);
            }
            "tmpfs" if dst == Path::new("/dev") => {
                mount_point(rootfs, &dst, true)?;
                b.mount_dev();
                dev = true;
                covered.push(dst);
            }
            // The library's /dev has its own devpts and /dev/shm.
            "devpts" if dev && dst == Path::new("/dev/pts") => {}
            "tmpfs" if dev && dst == Path::new("/dev/shm") => {}
            "devpts" => {
                return Err(SpecError::unsupported(
                    field.to_string(),
                    "devpts only at /dev/pts, after a tmpfs /dev",
                ))
            }
            "mqueue" => {
                if dst != Path::new("/dev/mqueue") {
                    return Err(SpecError::unsupported(
                        format!("{field}.destination"),
                        "mqueue is mounted at /dev/mqueue only",
                    ));
                }
                if !under_covered {
                    mount_point(rootfs, &dst, true)?;
                }
                b.mount_mqueue();
            }
            "sysfs" => {
                if dst != Path::new("/sys") {
                    return Err(SpecError::unsupported(
                        format!("{field}.destination"),
                        "sysfs is mounted at /sys only",
                    ));
                }
                mount_point(rootfs, &dst, true)?;
                if cgroup_in_sys {
                    b.bind_ro("/sys", "/sys");
                } else {
                    b.mount_sysfs();
                }
                sys = true;
                covered.push(dst);
            }
            "cgroup" | "cgroup2" => {
                if !(sys && cgroup_in_sys && dst == Path::new("/sys/fs/cgroup")) {
                    return Err(SpecError::unsupported(
                        field.to_string(),
                        "a cgroup mount only at /sys/fs/cgroup, after a sysfs at /sys",
                    ));
                }
                // Covered by the read-only bind of the host's /sys.
            }
            "tmpfs" => {
                if !under_covered {
                    mount_point(rootfs, &dst, true)?;
                }
                match (o.size, o.mode) {
                    (None, None) => b.tmpfs(&dst),
                    (size, mode) => b.tmpfs_with(
                        &dst,
                        size.unwrap_or(cellblock::MAX_TMPFS_SIZE),
                        mode.unwrap_or(0o755),
                    ),
                };
                // nosuid and nodev are the library's tmpfs's own.
                let more = o.flags & (libc::MS_RDONLY | libc::MS_NOEXEC);
                if more != 0 {
                    b.remount_with_flags(&dst, more);
                }
                covered.push(dst);
            }
            other => {
                return Err(SpecError::unsupported(
                    format!("{field}.type"),
                    format!("{other:?} mounts"),
                ))
            }
        }
    }
    Ok(())
}

/// Whether SELinux is on here: selinuxfs mounted with a policy (`enforce` exists).
pub fn selinux_enabled() -> bool {
    Path::new("/sys/fs/selinux/enforce").exists()
}

/// `linux.mountLabel`: refused where SELinux is on (the library cannot set `context=`, and
/// the label would then matter); taken and ignored where it is off, as crun does: without
/// SELinux no label means anything, and the kernel refuses `context=` outright (runc fails
/// there with EINVAL).
pub fn check_mount_label(label: Option<&str>, selinux: bool) -> Result<(), SpecError> {
    match label.filter(|l| !l.is_empty()) {
        Some(label) if selinux => Err(SpecError::unsupported(
            "linux.mountLabel",
            format!("{label}: SELinux labels are not supported (SELinux is on here)"),
        )),
        _ => Ok(()),
    }
}

/// `ociVersion`: any `MAJOR.MINOR.PATCH` (with a SemVer `-pre` or `+build` suffix) is
/// taken, whatever the numbers (a config written for a newer spec than ours usually runs
/// fine; crun 1.8.1 refusing 1.3.0 broke every caller); what is not a version at all is
/// refused (runtime-spec: a runtime MUST generate an error for invalid values).
pub fn check_version(v: &str) -> Result<(), SpecError> {
    let core = v.split(['-', '+']).next().unwrap_or_default();
    let suffix_ok = v[core.len()..]
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '+' | '.'));
    let parts: Vec<&str> = core.split('.').collect();
    let numbers_ok = parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    if numbers_ok && suffix_ok {
        Ok(())
    } else {
        Err(SpecError::invalid(
            "ociVersion",
            format!("{v:?} is not a version (MAJOR.MINOR.PATCH)"),
        ))
    }
}

/// A mount destination: absolute and without `..` (the library checks it again; this
/// is for the mount points made here).
fn clean_destination(dst: &Path, field: &str) -> Result<PathBuf, SpecError> {
    if !dst.is_absolute() || dst.components().any(|c| c == Component::ParentDir) {
        return Err(SpecError::invalid(
            format!("{field}.destination"),
            format!("{}: an absolute path without '..'", dst.display()),
        ));
    }
    Ok(dst.components().collect())
}

/// Creates the mount point `dst` (a container path) in `rootfs` if it is missing: the
/// missing directories on the way with mode 0755, the last one a directory or (for a
/// file bind) an empty file. Each component is opened with `O_NOFOLLOW` from the one
/// before, so nothing is created outside the root filesystem; at a symlink it stops and
/// leaves the destination to the library, which resolves it inside the container and
/// refuses a way out.
fn mount_point(rootfs: &Path, dst: &Path, dir: bool) -> Result<(), SpecError> {
    use nix::errno::Errno;
    use nix::fcntl::{openat, OFlag};
    use nix::sys::stat::{fstatat, mkdirat, Mode};
    use std::os::fd::{AsRawFd, OwnedFd};

    let what = || {
        format!(
            "creating the mount point {} in {}",
            dst.display(),
            rootfs.display()
        )
    };
    let io = |e: Errno| SpecError::Io {
        what: what(),
        source: std::io::Error::from(e),
    };
    let open_dir = |at: Option<&OwnedFd>, name: &OsStr| -> Result<OwnedFd, Errno> {
        let flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let fd = match at {
            Some(at) => openat(Some(at.as_raw_fd()), name, flags, Mode::empty())?,
            None => nix::fcntl::open(name, flags, Mode::empty())?,
        };
        // SAFETY: openat just returned this descriptor; nothing else owns it.
        Ok(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) })
    };
    let mut cur = open_dir(None, rootfs.as_os_str()).map_err(io)?;
    let names: Vec<&OsStr> = dst
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n),
            _ => None,
        })
        .collect();
    let Some((last, parents)) = names.split_last() else {
        return Ok(()); // "/" itself
    };
    for name in parents {
        cur = match open_dir(Some(&cur), name) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => {
                match mkdirat(
                    Some(cur.as_raw_fd()),
                    *name,
                    Mode::from_bits_truncate(0o755),
                ) {
                    Ok(()) | Err(Errno::EEXIST) => {}
                    Err(e) => return Err(io(e)),
                }
                open_dir(Some(&cur), name).map_err(io)?
            }
            // A symlink (ELOOP) or a file in the way (ENOTDIR): the library decides.
            Err(Errno::ELOOP | Errno::ENOTDIR) => return Ok(()),
            Err(e) => return Err(io(e)),
        };
    }
    match fstatat(
        Some(cur.as_raw_fd()),
        *last,
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    ) {
        Ok(_) => return Ok(()),
        Err(Errno::ENOENT) => {}
        Err(e) => return Err(io(e)),
    }
    if dir {
        match mkdirat(
            Some(cur.as_raw_fd()),
            *last,
            Mode::from_bits_truncate(0o755),
        ) {
            Ok(()) | Err(Errno::EEXIST) => Ok(()),
            Err(e) => Err(io(e)),
        }
    } else {
        let flags =
            OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        match openat(
            Some(cur.as_raw_fd()),
            *last,
            flags,
            Mode::from_bits_truncate(0o644),
        ) {
            Ok(fd) => {
                let _ = nix::unistd::close(fd);
                Ok(())
            }
            Err(Errno::EEXIST) => Ok(()),
            Err(e) => Err(io(e)),
        }
    }
}

/// `linux.maskedPaths` and `linux.readonlyPaths`, exactly: the library's defaults that
/// the spec does not list are lifted, the others it lists are added.
fn map_masks(b: &mut ContainerBuilder, masked: &[String], readonly: &[String]) {
    let listed = |list: &[String], p: &str| list.iter().any(|m| Path::new(m) == Path::new(p));
    for d in cellblock::DEFAULT_MASKED_PATHS {
        if !listed(masked, d) {
            b.unmask_path(*d);
        }
    }
    for d in cellblock::DEFAULT_READONLY_PATHS {
        if !listed(readonly, d) {
            b.unmask_path(*d);
        }
    }
    for m in masked {
        if !cellblock::DEFAULT_MASKED_PATHS.contains(&m.as_str()) {
            b.mask_path(m);
        }
    }
    for r in readonly {
        if !cellblock::DEFAULT_READONLY_PATHS.contains(&r.as_str()) {
            b.readonly_path(r);
        }
    }
}

/// `linux.cgroupsPath`: absolute, from each hierarchy's root; relative, under the
/// runtime's own cgroup in each hierarchy (as runc takes it; the library's
/// `cgroup_path` reads both). Without one (umoci's config, runtime-tools' bundles), the
/// container's cgroup is `cellblock-oci/ID` under ours, as the brief asks of every cgroup
/// we make.
fn cgroups_path(b: &mut ContainerBuilder, p: Option<&Path>, id: &str) -> Result<(), SpecError> {
    let field = "linux.cgroupsPath";
    let Some(p) = p.filter(|p| !p.as_os_str().is_empty()) else {
        b.cgroup_path(Path::new(DEFAULT_CGROUP_PARENT).join(id));
        return Ok(());
    };
    if p.as_os_str().as_bytes().contains(&b':') {
        return Err(SpecError::unsupported(
            field,
            format!("{}: the systemd form slice:prefix:name", p.display()),
        ));
    }
    if p.components().any(|c| c == Component::ParentDir) {
        return Err(SpecError::invalid(
            field,
            format!("{}: no '..'", p.display()),
        ));
    }
    b.cgroup_path(p);
    Ok(())
}

/// The parent, under the runtime's own cgroup, of the cgroups of containers whose
/// config.json has no `linux.cgroupsPath`.
pub const DEFAULT_CGROUP_PARENT: &str = "cellblock-oci";

/// `linux.resources`: memory, pids, cpu onto the library's limits; the device rules are
/// applied by `devices.rs` from the builder's `cgroup_setup` (see `builder_for`); the
/// rest is refused by name.
fn map_resources(b: &mut ContainerBuilder, r: &LinuxResources) -> Result<(), SpecError> {
    // No default budget: the spec's limits only, but always a cgroup.
    b.default_budget(false).cgroup_accounting(true);
    if let Some(m) = r.memory() {
        let positive = |v: Option<i64>, name: &str| -> Result<Option<u64>, SpecError> {
            match v {
                None | Some(-1) => Ok(None),
                Some(v) if v > 0 => Ok(Some(v as u64)),
                Some(0) if name == "swap" => Ok(Some(0)),
                Some(v) => Err(SpecError::invalid(
                    format!("linux.resources.memory.{name}"),
                    format!("{v}"),
                )),
            }
        };
        let limit = positive(m.limit(), "limit")?;
        if let Some(limit) = limit {
            b.memory_limit(limit);
        }
        // OCI's swap is memory + swap (v1 memsw), as the library's memory_swap_limit on v1;
        // the library takes the swap part alone.
        if let Some(swap) = positive(m.swap(), "swap")? {
            let Some(limit) = limit else {
                return Err(SpecError::invalid(
                    "linux.resources.memory.swap",
                    "needs linux.resources.memory.limit",
                ));
            };
            if swap < limit {
                return Err(SpecError::invalid(
                    "linux.resources.memory.swap",
                    format!("{swap} is below the memory limit {limit} (it counts memory + swap)"),
                ));
            }
            b.memory_swap_limit(swap - limit);
        }
        for (name, set) in [
            ("reservation", m.reservation().is_some()),
            ("kernelTCP", m.kernel_tcp().is_some()),
            ("swappiness", m.swappiness().is_some()),
            ("disableOOMKiller", m.disable_oom_killer() == Some(true)),
        ] {
            if set {
                return Err(SpecError::unsupported(
                    format!("linux.resources.memory.{name}"),
                    "the library has no such limit",
                ));
            }
        }
    }
    if let Some(p) = r.pids() {
        if p.limit() > 0 {
            b.pids_limit(p.limit() as u64);
        }
    }
    if let Some(c) = r.cpu() {
        if let Some(shares) = c.shares().filter(|s| *s > 0) {
            // v1 cpu.shares 2..=262144 onto weight 1..=10000, the library's unit
            // (shares = weight × 1024 / 100).
            let weight = (shares * 100 / 1024).clamp(1, 10_000);
            b.cpu_weight(weight);
        }
        match (c.quota(), c.period()) {
            (Some(q), period) if q > 0 => {
                // The period as given (the library checks its bounds), so that cgroupfs
                // reads back the config's quota and period, not a ratio over 100 ms.
                let period = period.unwrap_or(100_000);
                b.cpu_period(period);
                b.cpu_limit(q as f64 / period.max(1) as f64);
            }
            _ => {}
        }
        if let Some(cpus) = c.cpus().as_deref().filter(|s| !s.is_empty()) {
            b.cpuset(cpus);
        }
        if let Some(mems) = c.mems().as_deref().filter(|s| !s.is_empty()) {
            b.cpuset_mems(mems);
        }
        for (name, set) in [
            ("realtimeRuntime", c.realtime_runtime().is_some()),
            ("realtimePeriod", c.realtime_period().is_some()),
            ("idle", c.idle().is_some_and(|i| i != 0)),
            ("burst", c.burst().is_some()),
        ] {
            if set {
                return Err(SpecError::unsupported(
                    format!("linux.resources.cpu.{name}"),
                    "the library has no such setting",
                ));
            }
        }
    }
    for (name, set) in [
        ("blockIO", r.block_io().is_some()),
        (
            "hugepageLimits",
            r.hugepage_limits().as_ref().is_some_and(|h| !h.is_empty()),
        ),
        ("network", r.network().is_some()),
        ("rdma", r.rdma().as_ref().is_some_and(|h| !h.is_empty())),
        (
            "unified",
            r.unified().as_ref().is_some_and(|h| !h.is_empty()),
        ),
    ] {
        if set {
            return Err(SpecError::unsupported(
                format!("linux.resources.{name}"),
                "the library has no such controller setting",
            ));
        }
    }
    crate::devices::check_rules(r.devices().as_deref().unwrap_or_default())?;
    Ok(())
}

/// Work between create and start, with the container stopped at its gate: the sysctls
/// and `process.oomScoreAdj` (the device rules went in with the cgroup).
pub fn after_create(spec: &Spec, created: &cellblock::Detached) -> Result<(), SpecError> {
    if let Some(linux) = spec.linux() {
        if let Some(sysctl) = linux.sysctl() {
            crate::sysctl::apply(sysctl, created.pid)?;
        }
    }
    if let Some(adj) = spec.process().as_ref().and_then(|p| p.oom_score_adj()) {
        std::fs::write(
            format!("/proc/{}/oom_score_adj", created.pid),
            adj.to_string(),
        )
        .map_err(SpecError::io(format!(
            "process.oomScoreAdj: writing {adj} (lowering it needs CAP_SYS_RESOURCE)"
        )))?;
    }
    Ok(())
}

#[cfg(test)]
#[path = "spec_tests.rs"]
mod tests;
