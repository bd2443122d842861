//! config.json -> `cellblock::ContainerBuilder`. PLACEHOLDER (lifecycle branch): a small,
//! honest mapping of process.args/env/cwd/terminal, root.path, hostname, namespaces (a
//! `path` joins) and an absolute cgroupsPath, enough to run busybox. The spec helper's
//! spec.rs (with seccomp.rs, devices.rs, sysctl.rs) replaces this file at merge, with the
//! same names.

use cellblock::{Container, ContainerBuilder, Namespaces};
use oci_spec::runtime::{LinuxNamespaceType, Process, Spec};
use std::path::PathBuf;

/// What `create` knows besides config.json.
#[derive(Debug, Clone)]
pub struct BuildOpts {
    #[allow(dead_code)] // the placeholder does not name anything after the id
    pub id: String,
    pub bundle: PathBuf,
    /// `--console-socket` was given.
    pub console: bool,
}

/// A field of config.json that cannot be mapped.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("{field}: {msg}")]
    Field { field: &'static str, msg: String },
}

fn field(field: &'static str, msg: impl Into<String>) -> SpecError {
    SpecError::Field {
        field,
        msg: msg.into(),
    }
}

fn ns_kind(t: LinuxNamespaceType) -> Namespaces {
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

/// The process part shared by `create` and `exec`: program, args, env, cwd, terminal.
fn process_builder(p: &Process, console: bool) -> Result<ContainerBuilder, SpecError> {
    let args = p.args().clone().unwrap_or_default();
    let Some(program) = args.first() else {
        return Err(field("process.args", "empty: there is no program to run"));
    };
    process_builder_with_program(p, console, program)
}

/// [`process_builder`] running `program` (with `args[0]` as its argv[0]).
fn process_builder_with_program(
    p: &Process,
    console: bool,
    program: &str,
) -> Result<ContainerBuilder, SpecError> {
    let args = p.args().clone().unwrap_or_default();
    let mut b = Container::builder(program);
    if let Some(a0) = args.first() {
        b.arg0(a0);
    }
    b.args(args.iter().skip(1)).env_clear();
    for kv in p.env().iter().flatten() {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        b.env(k, v);
    }
    b.current_dir(p.cwd());
    b.user(p.user().uid(), p.user().gid());
    if p.terminal().unwrap_or(false) {
        if !console {
            return Err(field(
                "process.terminal",
                "true, but no --console-socket was given",
            ));
        }
        b.pty();
    }
    Ok(b)
}

/// The builder for the container config.json describes.
pub fn builder_for(spec: &Spec, opts: &BuildOpts) -> Result<ContainerBuilder, SpecError> {
    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| field("process", "missing"))?;
    let mut b = process_builder(process, opts.console)?;
    let root = spec
        .root()
        .as_ref()
        .ok_or_else(|| field("root", "missing"))?;
    let root_path = opts.bundle.join(root.path());
    b.rootfs(root_path)
        .readonly_root(root.readonly().unwrap_or(false));
    if let Some(h) = spec.hostname() {
        b.hostname(h);
    }
    let mut new = Namespaces::empty();
    if let Some(linux) = spec.linux() {
        for ns in linux.namespaces().iter().flatten() {
            match ns.path() {
                Some(p) => {
                    b.join_path(ns_kind(ns.typ()), p);
                }
                None => new |= ns_kind(ns.typ()),
            }
        }
        if let Some(cg) = linux.cgroups_path() {
            if !cg.is_absolute() {
                return Err(field(
                    "linux.cgroupsPath",
                    format!(
                        "{} is not absolute (the systemd form is not supported)",
                        cg.display()
                    ),
                ));
            }
            b.cgroup_path(cg);
        }
    }
    // The standard mounts, by destination and type (binds and options: the real spec.rs).
    for m in spec.mounts().iter().flatten() {
        match (m.destination().to_str(), m.typ().as_deref()) {
            (Some("/proc"), Some("proc")) => {
                b.mount_proc();
            }
            (Some("/dev"), Some("tmpfs")) => {
                b.mount_dev();
            }
            (Some("/dev/mqueue"), Some("mqueue")) if new.contains(Namespaces::IPC) => {
                b.mount_mqueue();
            }
            (Some("/sys"), Some("sysfs")) => {
                b.mount_sysfs();
            }
            _ => {}
        }
    }
    if !new.contains(Namespaces::USER) {
        // OCI: without a user namespace in the spec, the container's ids are the host's.
        b.host_root();
    }
    b.namespaces(new);
    Ok(b)
}

/// The builder for `exec`'s process, joining the namespaces of the container whose init is
/// `target_pid`.
pub fn exec_builder(
    process: &Process,
    target_pid: i32,
    console: bool,
) -> Result<ContainerBuilder, SpecError> {
    let mut b = process_builder(process, console)?;
    // No cgroup of its own (it would be a sibling of the container's, not in it).
    let ours = |k: &str| std::fs::read_link(format!("/proc/self/ns/{k}")).ok();
    // With a joined mount namespace the program must be an absolute path inside it:
    // look it up in the process's PATH below the container's root.
    let args = process.args().clone().unwrap_or_default();
    if let Some(prog) = args.first().filter(|p| !p.contains('/')) {
        let path = process
            .env()
            .iter()
            .flatten()
            .find_map(|kv| kv.strip_prefix("PATH="))
            .unwrap_or(cellblock::DEFAULT_PATH)
            .to_string();
        let found = path
            .split(':')
            .map(|d| format!("{d}/{prog}"))
            .find(|p| std::fs::symlink_metadata(format!("/proc/{target_pid}/root{p}")).is_ok());
        match found {
            Some(p) => {
                b = process_builder_with_program(process, console, &p)?;
            }
            None => {
                return Err(field(
                    "process.args",
                    format!("exec: {prog:?}: executable file not found in $PATH ({path})"),
                ))
            }
        }
    }
    b.default_budget(false).host_root();
    for (k, ns) in [
        ("ipc", Namespaces::IPC),
        ("uts", Namespaces::UTS),
        ("net", Namespaces::NET),
        ("pid", Namespaces::PID),
        ("mnt", Namespaces::MOUNT),
    ] {
        let theirs = format!("/proc/{target_pid}/ns/{k}");
        if std::fs::read_link(&theirs).ok() != ours(k) {
            b.join_path(ns, theirs);
        }
    }
    Ok(b)
}

/// Work between create and start (device rules, sysctls). Placeholder: nothing.
pub fn after_create(_spec: &Spec, _created: &cellblock::Detached) -> Result<(), SpecError> {
    Ok(())
}
