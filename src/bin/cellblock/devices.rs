//! Devices: `linux.devices` (nodes in the container's `/dev`) and the device cgroup rules
//! of `linux.resources.devices`, applied as runc does on cgroup v1: the spec's rules in
//! order (containerd's and podman's start with "deny all"), then the default devices'
//! allows, then an allow for each of `linux.devices`. Without rules the cgroup stays as
//! the kernel makes it (all allowed), as the runtime spec says.
//!
//! The runtime-spec's default devices (`null zero full random urandom tty`, `ptmx ->
//! pts/ptmx`) and the `/dev/fd`, `stdin`, `stdout`, `stderr` links are the library's
//! minimal `/dev` (`ContainerBuilder::mount_dev`): its nodes are binds of the host's real
//! nodes, which also works in a user namespace where `mknod` does not. The nodes of
//! `linux.devices` are likewise the host's nodes of the same type and numbers, bound
//! into the container (found at the same path or through `/dev/char/MAJ:MIN`,
//! `/dev/block/MAJ:MIN`); a device the host has no node for is refused.
//!
//! On a host without the v1 `devices` controller (v2 only), the rules need a
//! `BPF_PROG_TYPE_CGROUP_DEVICE` program (what runc and crun attach): not implemented,
//! refused with a [`SpecError`].

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use cellblock::ContainerBuilder;
use oci_spec::runtime::{LinuxDevice, LinuxDeviceCgroup, LinuxDeviceType};

use crate::spec::SpecError;

/// The default devices every container may use (runc's `AllowedDevices`): `mknod` of any
/// node, and read/write/mknod of null, random, full, tty, zero, urandom, console, the
/// ptys and ptmx, and the tun device.
pub const DEFAULT_RULES: &[&str] = &[
    "c *:* m",
    "b *:* m",
    "c 1:3 rwm",
    "c 1:8 rwm",
    "c 1:7 rwm",
    "c 5:0 rwm",
    "c 1:5 rwm",
    "c 1:9 rwm",
    "c 5:1 rwm",
    "c 136:* rwm",
    "c 5:2 rwm",
    "c 10:200 rwm",
];

/// The nodes the library's `/dev` already has: (path, major, minor).
const LIBRARY_NODES: &[(&str, i64, i64)] = &[
    ("/dev/null", 1, 3),
    ("/dev/zero", 1, 5),
    ("/dev/full", 1, 7),
    ("/dev/random", 1, 8),
    ("/dev/urandom", 1, 9),
    ("/dev/tty", 5, 0),
];

/// `linux.devices` onto binds of the host's nodes.
pub fn map_devices(b: &mut ContainerBuilder, devices: &[LinuxDevice]) -> Result<(), SpecError> {
    for (i, d) in devices.iter().enumerate() {
        let field = format!("linux.devices[{i}]");
        let path = d.path();
        if !path.is_absolute() || !path.starts_with("/dev") {
            return Err(SpecError::invalid(
                format!("{field}.path"),
                format!("{}: a device goes under /dev", path.display()),
            ));
        }
        let library = LIBRARY_NODES
            .iter()
            .any(|&(p, ma, mi)| path == Path::new(p) && (ma, mi) == (d.major(), d.minor()));
        if library && d.typ() == LinuxDeviceType::C {
            continue;
        }
        let host = host_node(d).ok_or_else(|| {
            SpecError::unsupported(
                field.clone(),
                format!(
                    "{} {}:{}: the host has no such node to bind (the library makes no nodes with mknod)",
                    d.typ().as_str(),
                    d.major(),
                    d.minor()
                ),
            )
        })?;
        let meta = std::fs::metadata(&host)
            .map_err(SpecError::io(format!("{field}: {}", host.display())))?;
        for (name, want, have) in [
            (
                "fileMode",
                d.file_mode().map(|m| m & 0o7777),
                meta.mode() & 0o7777,
            ),
            ("uid", d.uid(), meta.uid()),
            ("gid", d.gid(), meta.gid()),
        ] {
            if want.is_some_and(|w| w != have) {
                return Err(SpecError::unsupported(
                    format!("{field}.{name}"),
                    format!(
                        "the node is the host's {} (bound), whose {name} is {have:o}",
                        host.display()
                    ),
                ));
            }
        }
        b.bind(host, path);
    }
    Ok(())
}

/// The host's node for a device: at the same path, or through `/dev/{char,block}/M:m`.
fn host_node(d: &LinuxDevice) -> Option<PathBuf> {
    let (kind, block) = match d.typ() {
        LinuxDeviceType::C | LinuxDeviceType::U => ("char", false),
        LinuxDeviceType::B => ("block", true),
        _ => return None,
    };
    let want = libc::makedev(d.major() as u32, d.minor() as u32);
    let matches = |p: &Path| {
        std::fs::metadata(p).is_ok_and(|m| {
            let ft = m.file_type();
            m.rdev() == want
                && if block {
                    ft.is_block_device()
                } else {
                    ft.is_char_device()
                }
        })
    };
    let by_number = PathBuf::from(format!("/dev/{kind}/{}:{}", d.major(), d.minor()));
    [d.path().clone(), by_number]
        .into_iter()
        .find(|p| matches(p))
        .and_then(|p| std::fs::canonicalize(p).ok())
}

/// One rule as the v1 `devices.allow`/`devices.deny` files take it: `TYPE MAJ:MIN ACCESS`
/// (`a` alone for every device).
pub fn rule_line(r: &LinuxDeviceCgroup) -> Result<String, SpecError> {
    let typ = r.typ().unwrap_or(LinuxDeviceType::A);
    let access = r.access().as_deref().unwrap_or("rwm");
    if access.is_empty() || !access.chars().all(|c| "rwm".contains(c)) {
        return Err(SpecError::invalid(
            "linux.resources.devices.access",
            format!("{access:?}: r, w and m only"),
        ));
    }
    let num = |n: Option<i64>| match n {
        None | Some(-1) => Ok("*".to_string()),
        Some(n) if n >= 0 => Ok(n.to_string()),
        Some(n) => Err(SpecError::invalid(
            "linux.resources.devices",
            format!("device number {n}"),
        )),
    };
    Ok(match typ {
        LinuxDeviceType::A if r.major().is_none() && r.minor().is_none() && access == "rwm" => {
            "a".to_string()
        }
        LinuxDeviceType::A | LinuxDeviceType::B | LinuxDeviceType::C => format!(
            "{} {}:{} {access}",
            typ.as_str(),
            num(r.major())?,
            num(r.minor())?
        ),
        other => {
            return Err(SpecError::invalid(
                "linux.resources.devices.type",
                format!("{}: a, b or c", other.as_str()),
            ))
        }
    })
}

/// Checks the rules before anything is created.
pub fn check_rules(rules: &[LinuxDeviceCgroup]) -> Result<(), SpecError> {
    rules.iter().try_for_each(|r| rule_line(r).map(drop))
}

/// The lines to write, in order: (file, line) with file `devices.allow` or `devices.deny`.
pub fn plan(
    rules: &[LinuxDeviceCgroup],
    devices: &[LinuxDevice],
) -> Result<Vec<(&'static str, String)>, SpecError> {
    let mut out = Vec::new();
    for r in rules {
        let file = if r.allow() {
            "devices.allow"
        } else {
            "devices.deny"
        };
        out.push((file, rule_line(r)?));
    }
    out.extend(
        DEFAULT_RULES
            .iter()
            .map(|l| ("devices.allow", l.to_string())),
    );
    for d in devices {
        out.push(("devices.allow", rule_line(&d.into())?));
    }
    Ok(out)
}

/// Writes the rules into the container's v1 `devices` cgroup (one of `cgroup_dirs`).
pub fn apply(
    rules: &[LinuxDeviceCgroup],
    devices: &[LinuxDevice],
    cgroup_dirs: &[PathBuf],
) -> Result<(), SpecError> {
    if rules.is_empty() {
        return Ok(()); // all devices allowed: the defaults' and devices' allows add nothing
    }
    let lines = plan(rules, devices)?;
    let Some(dir) = cgroup_dirs
        .iter()
        .find(|d| d.join("devices.allow").exists())
    else {
        if rules.is_empty() {
            return Ok(());
        }
        return Err(SpecError::unsupported(
            "linux.resources.devices",
            "the container has no v1 devices cgroup (on cgroup v2 the rules need a \
             BPF_PROG_TYPE_CGROUP_DEVICE program, which this runtime does not attach)",
        ));
    };
    for (file, line) in lines {
        let path = dir.join(file);
        std::fs::write(&path, &line).map_err(SpecError::io(format!(
            "linux.resources.devices: writing {line:?} to {}",
            path.display()
        )))?;
    }
    Ok(())
}
