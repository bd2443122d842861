//! `linux.sysctl`: only namespaced keys (runc's validation), written from a thread of
//! ours that entered the container's net, ipc and uts namespaces, with the container
//! stopped at its gate.
//!
//! Why a thread suffices: `/proc/sys/net`, the IPC keys and `kernel.hostname` /
//! `kernel.domainname` show the namespaces of the process *opening* them (the kernel looks
//! them up in `current->nsproxy`), and `setns` of a net, ipc or uts namespace changes
//! only the calling thread. The thread is a plain OS thread (no runtime's worker) that
//! ends after the writes, taking its namespaces with it.

use std::collections::HashMap;
use std::os::fd::AsFd;

use cellblock::Namespaces;

use crate::spec::SpecError;

/// The IPC namespace's keys (runc's `validateSysctl`).
const IPC_KEYS: &[&str] = &[
    "kernel.msgmax",
    "kernel.msgmnb",
    "kernel.msgmni",
    "kernel.sem",
    "kernel.shmall",
    "kernel.shmmax",
    "kernel.shmmni",
    "kernel.shm_rmid_forced",
];

/// The namespace a key belongs to, or `None` for a key that is not namespaced (it would
/// change the host).
pub fn namespace_of(key: &str) -> Option<Namespaces> {
    if IPC_KEYS.contains(&key) || key.starts_with("fs.mqueue.") {
        Some(Namespaces::IPC)
    } else if key.starts_with("net.") {
        Some(Namespaces::NET)
    } else if key == "kernel.hostname" || key == "kernel.domainname" {
        Some(Namespaces::UTS)
    } else {
        None
    }
}

/// The key in dotted form (`net/ipv4/ip_forward` is accepted too), checked.
fn normalize(key: &str) -> Result<String, SpecError> {
    let k = key.replace('/', ".");
    if k.is_empty() || k.split('.').any(|p| p.is_empty() || p == "..") {
        return Err(SpecError::invalid(
            "linux.sysctl",
            format!("{key:?} is not a sysctl name"),
        ));
    }
    Ok(k)
}

/// Refuses what cannot be applied: a key that is not namespaced, or whose namespace the
/// container does not have (`ns`: created or joined).
pub fn check(sysctl: Option<&HashMap<String, String>>, ns: Namespaces) -> Result<(), SpecError> {
    for key in sysctl.into_iter().flat_map(|s| s.keys()) {
        let k = normalize(key)?;
        let Some(needs) = namespace_of(&k) else {
            return Err(SpecError::invalid(
                "linux.sysctl",
                format!("{key} is not namespaced: it would change the host"),
            ));
        };
        if !ns.contains(needs) {
            return Err(SpecError::invalid(
                "linux.sysctl",
                format!("{key} needs the container's own {needs:?} namespace"),
            ));
        }
    }
    Ok(())
}

/// Writes the sysctls as the container with host pid `pid` sees them.
pub fn apply(sysctl: &HashMap<String, String>, pid: i32) -> Result<(), SpecError> {
    if sysctl.is_empty() {
        return Ok(());
    }
    let mut writes = Vec::new();
    let mut kinds = Namespaces::empty();
    for (key, value) in sysctl {
        let k = normalize(key)?;
        let ns = namespace_of(&k).ok_or_else(|| {
            SpecError::invalid("linux.sysctl", format!("{key} is not namespaced"))
        })?;
        kinds |= ns;
        writes.push((
            key.clone(),
            format!("/proc/sys/{}", k.replace('.', "/")),
            value.clone(),
        ));
    }
    // Opened here, checked before the thread runs.
    let mut fds = Vec::new();
    for (name, kind, flag) in [
        ("net", Namespaces::NET, nix::sched::CloneFlags::CLONE_NEWNET),
        ("ipc", Namespaces::IPC, nix::sched::CloneFlags::CLONE_NEWIPC),
        ("uts", Namespaces::UTS, nix::sched::CloneFlags::CLONE_NEWUTS),
    ] {
        if kinds.contains(kind) {
            let path = format!("/proc/{pid}/ns/{name}");
            let f = std::fs::File::open(&path)
                .map_err(SpecError::io(format!("linux.sysctl: opening {path}")))?;
            fds.push((f, flag, path));
        }
    }
    std::thread::scope(|s| {
        s.spawn(|| {
            for (f, flag, path) in &fds {
                nix::sched::setns(f.as_fd(), *flag).map_err(|e| SpecError::Io {
                    what: format!("linux.sysctl: entering {path}"),
                    source: e.into(),
                })?;
            }
            for (key, path, value) in &writes {
                std::fs::write(path, value).map_err(SpecError::io(format!(
                    "linux.sysctl: writing {key}={value:?}"
                )))?;
            }
            Ok(())
        })
        .join()
        .unwrap_or_else(|_| {
            Err(SpecError::invalid(
                "linux.sysctl",
                "the writer thread panicked",
            ))
        })
    })
}
