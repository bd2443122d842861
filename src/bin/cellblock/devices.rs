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
//! On a host without the v1 `devices` controller (v2 only), the rules become a
//! `BPF_PROG_TYPE_CGROUP_DEVICE` program attached to the container's v2 cgroup, as runc
//! and crun do ([`bpf`]).

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use cellblock::{ContainerBuilder, DeviceNode, NodeKind};
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
        let Some(host) = host_node(d) else {
            // No host node to bind (or a FIFO): made with mknod, with the config's mode
            // and owner (root's default 0:0); in a user namespace that fails at create.
            let kind = match d.typ() {
                LinuxDeviceType::C | LinuxDeviceType::U => NodeKind::Char,
                LinuxDeviceType::B => NodeKind::Block,
                LinuxDeviceType::P => NodeKind::Fifo,
                other => {
                    return Err(SpecError::unsupported(
                        format!("{field}.type"),
                        other.as_str().to_string(),
                    ))
                }
            };
            let number = |n: i64, name: &str| {
                u32::try_from(n)
                    .map_err(|_| SpecError::invalid(format!("{field}.{name}"), format!("{n}")))
            };
            b.device_node(
                path,
                DeviceNode {
                    kind,
                    major: number(d.major(), "major")?,
                    minor: number(d.minor(), "minor")?,
                    mode: d.file_mode().unwrap_or(0o666) & 0o7777,
                    uid: d.uid().unwrap_or(0),
                    gid: d.gid().unwrap_or(0),
                },
            );
            continue;
        };
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
    // A FIFO is no device: the device cgroup does not govern it.
    for d in devices.iter().filter(|d| d.typ() != LinuxDeviceType::P) {
        out.push(("devices.allow", rule_line(&d.into())?));
    }
    Ok(out)
}

/// Applies the rules to the container's cgroup: written into its v1 `devices` cgroup
/// (one of `cgroup_dirs`), or, on cgroup v2, compiled to a `BPF_PROG_TYPE_CGROUP_DEVICE`
/// program attached to its v2 cgroup ([`bpf`]).
pub fn apply(
    rules: &[LinuxDeviceCgroup],
    devices: &[LinuxDevice],
    cgroup_dirs: &[PathBuf],
) -> Result<(), SpecError> {
    if rules.is_empty() {
        return Ok(()); // all devices allowed: the defaults' and devices' allows add nothing
    }
    let lines = plan(rules, devices)?;
    if let Some(dir) = cgroup_dirs
        .iter()
        .find(|d| d.join("devices.allow").exists())
    {
        for (file, line) in lines {
            let path = dir.join(file);
            std::fs::write(&path, &line).map_err(SpecError::io(format!(
                "linux.resources.devices: writing {line:?} to {}",
                path.display()
            )))?;
        }
        return Ok(());
    }
    let Some(dir) = cgroup_dirs
        .iter()
        .find(|d| d.join("cgroup.controllers").exists())
    else {
        return Err(SpecError::unsupported(
            "linux.resources.devices",
            "the container has neither a v1 devices cgroup nor a v2 cgroup",
        ));
    };
    bpf::attach(&bpf::program(&lines)?, dir)
}

/// The device rules on cgroup v2: a `BPF_PROG_TYPE_CGROUP_DEVICE` program, as runc and crun
/// attach. The rules are first reduced the way the v1 controller keeps them (a default,
/// allow or deny, and exceptions to it: runc's "emulator"), so that both versions decide
/// alike; the program then returns the opposite of the default for a device an
/// exception covers (its type, major and minor match and the access asked is within the
/// exception's), and the default otherwise.
pub mod bpf {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    use std::path::Path;

    use crate::spec::SpecError;

    /// One v1 rule, parsed: type `a`, `b` or `c`; major and minor (`None`: any);
    /// access bits (the kernel's `BPF_DEVCG_ACC_*`: mknod 1, read 2, write 4).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct Rule {
        pub allow: bool,
        pub typ: u8,
        pub major: Option<u32>,
        pub minor: Option<u32>,
        pub access: u32,
    }

    /// Parses one line as [`super::plan`] writes it (`a`, `c 1:3 rwm`, `b *:* m`).
    pub fn parse(file: &str, line: &str) -> Result<Rule, SpecError> {
        let bad = || SpecError::invalid("linux.resources.devices", format!("{line:?}"));
        let allow = file == "devices.allow";
        if line == "a" {
            return Ok(Rule {
                allow,
                typ: b'a',
                major: None,
                minor: None,
                access: 7,
            });
        }
        let mut parts = line.split(' ');
        let (Some(t), Some(nums), Some(acc), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        let (ma, mi) = nums.split_once(':').ok_or_else(bad)?;
        let num = |n: &str| match n {
            "*" => Ok(None),
            n => n.parse::<u32>().map(Some).map_err(|_| bad()),
        };
        let access = acc.chars().try_fold(0, |a, c| match c {
            'm' => Ok(a | 1),
            'r' => Ok(a | 2),
            'w' => Ok(a | 4),
            _ => Err(bad()),
        })?;
        Ok(Rule {
            allow,
            typ: *t.as_bytes().first().ok_or_else(bad)?,
            major: num(ma)?,
            minor: num(mi)?,
            access,
        })
    }

    /// The v1 controller's state after `rules`, from its initial "allow everything":
    /// (default allow, exceptions).
    pub fn reduce(rules: &[Rule]) -> (bool, Vec<Rule>) {
        let mut default_allow = true;
        let mut exceptions: Vec<Rule> = Vec::new();
        for r in rules {
            if r.typ == b'a' && r.major.is_none() && r.minor.is_none() && r.access == 7 {
                default_allow = r.allow;
                exceptions.clear();
            } else if r.allow != default_allow {
                exceptions.push(*r);
            } else {
                // A rule agreeing with the default takes its access out of the
                // exceptions for the same device (the kernel's dev_exception_rm).
                for e in exceptions
                    .iter_mut()
                    .filter(|e| (e.typ, e.major, e.minor) == (r.typ, r.major, r.minor))
                {
                    e.access &= !r.access;
                }
                exceptions.retain(|e| e.access != 0);
            }
        }
        (default_allow, exceptions)
    }

    /// eBPF opcodes used (linux/bpf.h).
    const LDX_W: u8 = 0x61; // BPF_LDX | BPF_MEM | BPF_W
    const AND32_K: u8 = 0x54; // BPF_ALU | BPF_AND | BPF_K
    const RSH32_K: u8 = 0x74; // BPF_ALU | BPF_RSH | BPF_K
    const MOV32_X: u8 = 0xbc; // BPF_ALU | BPF_MOV | BPF_X
    const MOV64_K: u8 = 0xb7; // BPF_ALU64 | BPF_MOV | BPF_K
    const JNE_K: u8 = 0x55; // BPF_JMP | BPF_JNE | BPF_K
    const JNE_X: u8 = 0x5d; // BPF_JMP | BPF_JNE | BPF_X
    const EXIT: u8 = 0x95; // BPF_JMP | BPF_EXIT

    /// `struct bpf_insn`: opcode, dst and src registers, offset, immediate.
    #[repr(C)]
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct Insn {
        code: u8,
        regs: u8,
        off: i16,
        imm: i32,
    }

    fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
        Insn {
            code,
            regs: dst | (src << 4),
            off,
            imm,
        }
    }

    /// The program for the lines of [`super::plan`].
    ///
    /// ```text
    ///   r2 = ctx->access_type & 0xffff   (type: block 1, char 2)
    ///   r3 = ctx->access_type >> 16      (access asked)
    ///   r4 = ctx->major ; r5 = ctx->minor
    ///   per exception: type, access ⊆, major, minor, else next; r0 = !default; exit
    ///   r0 = default; exit
    /// ```
    pub fn program(lines: &[(&str, String)]) -> Result<Vec<Insn>, SpecError> {
        let rules = lines
            .iter()
            .map(|(f, l)| parse(f, l))
            .collect::<Result<Vec<_>, _>>()?;
        let (default_allow, exceptions) = reduce(&rules);
        let mut prog = vec![
            insn(LDX_W, 2, 1, 0, 0),
            insn(AND32_K, 2, 0, 0, 0xffff),
            insn(LDX_W, 3, 1, 0, 0),
            insn(RSH32_K, 3, 0, 0, 16),
            insn(LDX_W, 4, 1, 4, 0),
            insn(LDX_W, 5, 1, 8, 0),
        ];
        for e in &exceptions {
            // Each test jumps over the rest of the block when it fails; the offsets are
            // filled in once the block's length is known.
            let mut block: Vec<(Insn, bool)> = Vec::new();
            match e.typ {
                b'a' => {}
                b'b' => block.push((insn(JNE_K, 2, 0, 0, 1), true)),
                b'c' => block.push((insn(JNE_K, 2, 0, 0, 2), true)),
                _ => {
                    return Err(SpecError::invalid(
                        "linux.resources.devices.type",
                        "a, b or c",
                    ))
                }
            }
            if e.access != 7 {
                block.push((insn(MOV32_X, 1, 3, 0, 0), false));
                block.push((insn(AND32_K, 1, 0, 0, e.access as i32), false));
                block.push((insn(JNE_X, 1, 3, 0, 0), true));
            }
            if let Some(m) = e.major {
                block.push((insn(JNE_K, 4, 0, 0, m as i32), true));
            }
            if let Some(m) = e.minor {
                block.push((insn(JNE_K, 5, 0, 0, m as i32), true));
            }
            block.push((insn(MOV64_K, 0, 0, 0, i32::from(!default_allow)), false));
            block.push((insn(EXIT, 0, 0, 0, 0), false));
            let len = block.len();
            for (i, (mut ins, jump)) in block.into_iter().enumerate() {
                if jump {
                    ins.off = (len - i - 1) as i16;
                }
                prog.push(ins);
            }
        }
        prog.push(insn(MOV64_K, 0, 0, 0, i32::from(default_allow)));
        prog.push(insn(EXIT, 0, 0, 0, 0));
        Ok(prog)
    }

    /// Loads `prog` and attaches it to the v2 cgroup `dir` (with `BPF_F_ALLOW_MULTI`, so a
    /// program of an ancestor still applies). The attachment holds the program; our
    /// descriptors are closed; it goes with the cgroup.
    pub fn attach(prog: &[Insn], dir: &Path) -> Result<(), SpecError> {
        const BPF_PROG_LOAD: libc::c_long = 5;
        const BPF_PROG_ATTACH: libc::c_long = 8;
        const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
        const BPF_CGROUP_DEVICE: u32 = 6;
        const BPF_F_ALLOW_MULTI: u32 = 2;
        #[repr(C)]
        #[derive(Default)]
        struct Load {
            prog_type: u32,
            insn_cnt: u32,
            insns: u64,
            license: u64,
            log_level: u32,
            log_size: u32,
            log_buf: u64,
            kern_version: u32,
            prog_flags: u32,
            prog_name: [u8; 16],
            prog_ifindex: u32,
            expected_attach_type: u32,
        }
        #[repr(C)]
        struct Attach {
            target_fd: u32,
            attach_bpf_fd: u32,
            attach_type: u32,
            attach_flags: u32,
            replace_bpf_fd: u32,
        }
        let io = |what: &str| {
            let what = format!(
                "linux.resources.devices: {what} (cgroup v2 {})",
                dir.display()
            );
            move |e: std::io::Error| SpecError::Io { what, source: e }
        };
        let mut name = [0u8; 16];
        name[..9].copy_from_slice(b"cellblock");
        let load = Load {
            prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
            insn_cnt: prog.len() as u32,
            insns: prog.as_ptr() as u64,
            license: c"Apache".as_ptr() as u64,
            prog_name: name,
            expected_attach_type: BPF_CGROUP_DEVICE,
            ..Default::default()
        };
        // SAFETY: bpf(2) with an attribute struct of the size passed, whose pointers (the
        // instructions, the license) outlive the call.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_bpf,
                BPF_PROG_LOAD,
                &load as *const Load,
                std::mem::size_of::<Load>(),
            )
        };
        if fd < 0 {
            return Err(io("loading the device program")(
                std::io::Error::last_os_error(),
            ));
        }
        // SAFETY: bpf returned this new descriptor; nothing else owns it.
        let prog_fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
        let cgroup = std::fs::File::open(dir).map_err(io("opening the cgroup"))?;
        let attach = Attach {
            target_fd: cgroup.as_raw_fd() as u32,
            attach_bpf_fd: prog_fd.as_raw_fd() as u32,
            attach_type: BPF_CGROUP_DEVICE,
            attach_flags: BPF_F_ALLOW_MULTI,
            replace_bpf_fd: 0,
        };
        // SAFETY: as above; the descriptors are open for the call.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_bpf,
                BPF_PROG_ATTACH,
                &attach as *const Attach,
                std::mem::size_of::<Attach>(),
            )
        };
        if ret < 0 {
            return Err(io("attaching the device program")(
                std::io::Error::last_os_error(),
            ));
        }
        Ok(())
    }
}
