//! Issue 17: one attack per entry of the default seccomp deny list, and per masked and
//! read-only `/proc`/`/sys` path, each with a control that switches off only the protection
//! under test.
//!
//! **Seccomp.** Every attack runs in (a) a default container (UTS|IPC|PID|MOUNT|NET), where
//! it must fail with the filter's `EPERM`; (b) a `host_root()` container (no user
//! namespace: the workload is host uid 0, capabilities still dropped), where it must fail
//! with the same `EPERM`; (c) a default container whose policy is
//! `Seccomp::default_profile().allow(nr)` for that one system call, where the call must get
//! past the filter: it works, or fails with the *kernel's* errno (EBADF, EINVAL, EFAULT,
//! ENOSYS on a kernel built without the feature, ...), which is not `EPERM`. The other
//! calls of the family stay `EPERM` in (c), so only that entry was lifted.
//!
//! Some calls are checked for a capability by the kernel before it looks at anything else
//! (`reboot`, `acct`, `swapon`, `vhangup`, the mount API's `fsopen`, ...): without
//! capabilities their answer is `EPERM` whatever the arguments, so behaviour cannot tell
//! the filter from the kernel. Those entries are proven from the host side: as root the
//! test `PTRACE_SEIZE`s the container's workload, reads its installed filter with
//! `PTRACE_SECCOMP_GET_FILTER` and evaluates that real program on `seccomp_data{nr, arch}`
//! with a small classic-BPF interpreter ([`Bpf`]): `RET_ERRNO|EPERM` in (a), `RET_ALLOW`
//! with the entry lifted. `every_default_entry_is_in_the_installed_filter` does the same
//! for every entry of `cellblock::default_denied_syscalls()`.
//!
//! **Masked and read-only paths.** Each attack runs (a) in a default container; (b) with
//! `host_root()` and the masks on, where the mask alone must hold; (c) with `host_root()`
//! and only that path left alone (`unmask_path`), where the attack works, or, where a
//! kernel check still stops it, the workload sees the real file instead of the mask.
//!
//! The probe is `tests/escape/kernel.c`: each argument is one attempt, in a forked child of
//! its own, printing `RESULT <name> OK <detail>`, `RESULT <name> ERR <ERRNO>` or
//! `RESULT <name> KILLED <SIG>`. Every attempt is harmless if it reaches the kernel (see
//! its header).
//!
//! Host facts, checked where used: this VM's kernel has no loadable modules and no kexec
//! (those calls answer `ENOSYS` once past the filter; on a kernel with them the capability
//! check answers `EPERM` and the host-side read is the proof), no `iopl`/`ioperm` (`ENOSYS`;
//! elsewhere `iopl(0)` works and `ioperm` of nothing is `EINVAL`), no
//! `/proc/kcore` and no `/proc/sysrq-trigger` (those two tests are `#[ignore]`d with the
//! reason), and no writable file under `/proc/fs` (its attack is a `chmod` to the mode the
//! directory already has).

use crate::common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use cellblock::{Container, ContainerBuilder, Error, Seccomp};

/// The compiled probe (built once per test binary).
fn probe() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| common::compile_probe("kernel"))
}

/// The setups of the module documentation.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Setup {
    /// (a) the builder's defaults plus the usual namespaces.
    Defaults,
    /// (b) `host_root()`: the layer under test stands alone.
    HostRoot,
}

/// A container running the probe with `words` (one attempt each) in `setup`.
fn probes(setup: Setup, words: &[String]) -> ContainerBuilder {
    let mut b = Container::builder(probe());
    b.args(words).namespaces(common::default_ns());
    if setup == Setup::HostRoot {
        b.host_root();
    }
    b
}

type Results = HashMap<String, String>;

async fn run(b: ContainerBuilder) -> (Results, String) {
    common::probe_results(b).await
}

fn get<'a>(r: &'a Results, name: &str) -> &'a str {
    common::probe_result(r, name)
}

/// The `key=value` field `key` of a result's detail (`OK type=chr size=0 ...`).
fn field<'a>(result: &'a str, key: &str) -> &'a str {
    result
        .split_whitespace()
        .find_map(|f| f.strip_prefix(key)?.strip_prefix('='))
        .unwrap_or_else(|| panic!("no {key}= in {result:?}"))
}

// ---------------------------------------------------------------------------------------
// The host side: the filter the kernel really installed, read back and evaluated.
// ---------------------------------------------------------------------------------------

/// `PTRACE_SECCOMP_GET_FILTER` (linux/ptrace.h; needs CONFIG_CHECKPOINT_RESTORE and, in
/// the tracer, CAP_SYS_ADMIN and no seccomp filter of its own).
const PTRACE_SECCOMP_GET_FILTER: libc::c_uint = 0x420c;

/// A classic-BPF program as the kernel returned it, run the way seccomp runs it.
struct Bpf(Vec<libc::sock_filter>);

impl Bpf {
    /// The program's verdict (`SECCOMP_RET_*`) for a `seccomp_data` of `arch`, `nr`, and
    /// `args`. Only the opcodes src/bpf.rs emits are known; any other fails the test (a
    /// filter that is not ours, or a compiler that changed).
    fn run(&self, arch: u32, nr: u32, args: [u64; 6]) -> u32 {
        // struct seccomp_data { int nr; __u32 arch; __u64 ip; __u64 args[6]; }
        let mut data = [0u8; 64];
        data[0..4].copy_from_slice(&nr.to_ne_bytes());
        data[4..8].copy_from_slice(&arch.to_ne_bytes());
        for (i, a) in args.iter().enumerate() {
            data[16 + 8 * i..24 + 8 * i].copy_from_slice(&a.to_ne_bytes());
        }
        let word = |k: u32| {
            let k = k as usize;
            assert!(k.is_multiple_of(4) && k + 4 <= data.len(), "load at {k}");
            u32::from_ne_bytes(data[k..k + 4].try_into().unwrap())
        };
        // The encodings (linux/filter.h), spelled out rather than taken from src/bpf.rs,
        // whose output this checks.
        const LD_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
        const RET: u16 = 0x06; // BPF_RET | BPF_K
        const JEQ: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
        const JGE: u16 = 0x35; // BPF_JMP | BPF_JGE | BPF_K
        const JSET: u16 = 0x45; // BPF_JMP | BPF_JSET | BPF_K
        const JA: u16 = 0x05; // BPF_JMP | BPF_JA
        let (mut acc, mut pc) = (0u32, 0usize);
        loop {
            let i = self.0[pc];
            pc += 1;
            let branch = |taken: bool| usize::from(if taken { i.jt } else { i.jf });
            match i.code {
                LD_ABS => acc = word(i.k),
                RET => return i.k,
                JEQ => pc += branch(acc == i.k),
                JGE => pc += branch(acc >= i.k),
                JSET => pc += branch(acc & i.k != 0),
                JA => pc += i.k as usize,
                other => panic!("opcode {other:#x} at {} is not one of ours", pc - 1),
            }
        }
    }
}

/// Every filter installed in process `pid`, read as root through ptrace: seized,
/// interrupted (a ptrace-stop is required), read, detached. All in this thread, which is
/// the tracer.
fn installed_filters(pid: i32) -> Vec<Bpf> {
    let null = std::ptr::null_mut::<libc::c_void>();
    let last = || std::io::Error::last_os_error();
    // SAFETY: ptrace and waitpid on a process this test started; buffers are our own,
    // sized by the count the kernel gave.
    unsafe {
        let r = libc::ptrace(libc::PTRACE_SEIZE, pid, null, null);
        assert_eq!(r, 0, "PTRACE_SEIZE {pid}: {}", last());
        let r = libc::ptrace(libc::PTRACE_INTERRUPT, pid, null, null);
        assert_eq!(r, 0, "PTRACE_INTERRUPT {pid}: {}", last());
        let mut st = 0;
        assert_eq!(libc::waitpid(pid, &mut st, libc::__WALL), pid, "{}", last());
        assert!(libc::WIFSTOPPED(st), "{pid} stopped for us: {st:#x}");
        let mut progs = Vec::new();
        for index in 0usize.. {
            let n = libc::ptrace(
                PTRACE_SECCOMP_GET_FILTER,
                pid,
                index as *mut libc::c_void,
                null,
            );
            if n < 0 {
                let e = last();
                assert_eq!(e.raw_os_error(), Some(libc::ENOENT), "filter {index}: {e}");
                break;
            }
            let empty = libc::sock_filter {
                code: 0,
                jt: 0,
                jf: 0,
                k: 0,
            };
            let mut buf = vec![empty; n as usize];
            let got = libc::ptrace(
                PTRACE_SECCOMP_GET_FILTER,
                pid,
                index as *mut libc::c_void,
                buf.as_mut_ptr().cast::<libc::c_void>(),
            );
            assert_eq!(got, n, "filter {index}: {}", last());
            progs.push(Bpf(buf));
        }
        let r = libc::ptrace(libc::PTRACE_DETACH, pid, null, null);
        assert_eq!(r, 0, "PTRACE_DETACH {pid}: {}", last());
        progs
    }
}

/// The filters of a running container `b` (a `sleep` as workload, found as the init's child
/// once it runs `sleep`), then the container killed and reaped.
async fn filters_of(mut b: ContainerBuilder) -> Vec<Bpf> {
    let mut c = b.spawn().await.expect("the container starts");
    let init = c.pid();
    let mut workload = None;
    let found = common::eventually(20, || {
        workload = common::children_of(init).first().copied().filter(|&k| {
            std::fs::read_link(format!("/proc/{k}/exe")).is_ok_and(|e| e.ends_with("sleep"))
        });
        workload.is_some()
    })
    .await;
    assert!(found, "the init started the sleep workload");
    let progs = installed_filters(workload.unwrap());
    c.start_kill().unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(20), c.wait())
        .await
        .expect("the container ends once killed")
        .unwrap();
    assert_eq!(progs.len(), 1, "exactly one filter, ours");
    progs
}

/// A sleeping container with `policy` (default setup otherwise).
fn sleeper(policy: Option<Seccomp>) -> ContainerBuilder {
    let mut b = Container::builder("/bin/sleep");
    b.arg("60").namespaces(common::default_ns());
    if let Some(p) = policy {
        b.seccomp(p);
    }
    b
}

/// The combined verdict of all `filters` for the native architecture: the most restrictive
/// action wins, as in the kernel (`ACTION_ONLY` compared as signed).
fn verdict(filters: &[Bpf], nr: i64, arg0: u64) -> u32 {
    let arch = native_arch();
    let mut ret = libc::SECCOMP_RET_ALLOW;
    for f in filters {
        let cur = f.run(arch, nr as u32, [arg0, 0, 0, 0, 0, 0]);
        let action = |v: u32| (v & libc::SECCOMP_RET_ACTION_FULL) as i32;
        if action(cur) < action(ret) {
            ret = cur;
        }
    }
    ret
}

/// `AUDIT_ARCH_*` of this build (linux/audit.h: EM_* | 64BIT | LE).
fn native_arch() -> u32 {
    match std::env::consts::ARCH {
        "x86_64" => 0xC000_003E,
        "aarch64" => 0xC000_00B7,
        "riscv64" => 0xC000_00F3,
        other => panic!("no audit arch for {other}"),
    }
}

const EPERM: u32 = libc::SECCOMP_RET_ERRNO | libc::EPERM as u32;
const ALLOW: u32 = libc::SECCOMP_RET_ALLOW;

/// Host-side proof for `nr`: the default container's installed filter answers EPERM, and
/// with only `nr` lifted it allows the call.
async fn filter_entry_proven(name: &str, nr: i64) {
    let default = filters_of(sleeper(None)).await;
    assert_eq!(
        verdict(&default, nr, 0),
        EPERM,
        "{name} in the default filter"
    );
    let lifted = filters_of(sleeper(Some(Seccomp::default_profile().allow(nr)))).await;
    assert_eq!(verdict(&lifted, nr, 0), ALLOW, "{name} lifted");
}

// ---------------------------------------------------------------------------------------
// Seccomp: the attacks.
// ---------------------------------------------------------------------------------------

/// What the control of one entry (only that call lifted) must see.
#[derive(Clone, Copy, Debug)]
enum Control {
    /// The call reaches the kernel, which answers one of these (never `ERR EPERM`).
    Kernel(&'static [&'static str]),
    /// The kernel checks a capability first and answers EPERM whatever the arguments:
    /// the proof is the installed filter, read from the host.
    CapabilityFirst,
}

/// One entry of the deny list: the probe's attempt and the system call to lift.
#[derive(Clone, Copy, Debug)]
struct Entry {
    attempt: &'static str,
    nr: i64,
    control: Control,
}

const fn entry(attempt: &'static str, nr: i64, control: Control) -> Entry {
    Entry {
        attempt,
        nr,
        control,
    }
}

use Control::{CapabilityFirst, Kernel};

/// Runs the three setups over `entries` (one family): (a) and (b) all `ERR EPERM`; (c) one
/// container per entry with only it lifted: that entry's control holds, the family's other
/// members are still `ERR EPERM`. Entries whose kernel check answers `EPERM` anyway get the
/// host-side proof.
async fn attack(entries: &[Entry]) {
    let words: Vec<String> = entries.iter().map(|e| e.attempt.to_string()).collect();
    for setup in [Setup::Defaults, Setup::HostRoot] {
        let (r, out) = run(probes(setup, &words)).await;
        for e in entries {
            assert_eq!(
                get(&r, e.attempt),
                "ERR EPERM",
                "{setup:?} {}: {out}",
                e.attempt
            );
        }
    }
    for e in entries {
        let mut b = probes(Setup::Defaults, &words);
        b.seccomp(Seccomp::default_profile().allow(e.nr));
        let (r, out) = run(b).await;
        let got = get(&r, e.attempt);
        match e.control {
            Kernel(expected) => assert!(
                expected.contains(&got),
                "{} lifted: the kernel's answer {got:?} is not one of {expected:?}: {out}",
                e.attempt
            ),
            CapabilityFirst => {
                assert_eq!(
                    got, "ERR EPERM",
                    "{}: the kernel's own check: {out}",
                    e.attempt
                );
                filter_entry_proven(e.attempt, e.nr).await;
            }
        }
        for other in entries.iter().filter(|o| o.nr != e.nr) {
            assert_eq!(
                get(&r, other.attempt),
                "ERR EPERM",
                "{} stays denied when only {} is lifted: {out}",
                other.attempt,
                e.attempt
            );
        }
    }
}

/// The control of a call whose kernel may not have the feature: `ENOSYS` where `present`
/// is false, else the kernel's capability check (EPERM: host-side proof).
fn unless_built_in(present: bool) -> Control {
    if present {
        CapabilityFirst
    } else {
        Kernel(&["ERR ENOSYS"])
    }
}

/// `unshare(CLONE_NEWUSER)`, the call issue 17's reviewer got through by removing its entry:
/// with only `unshare` lifted it really creates a user namespace from the default
/// container's own (no capability is needed for that), also as `host_root()`. `setns` on a
/// bad descriptor reaches the kernel's EBADF once lifted.
#[tokio::test(flavor = "multi_thread")]
async fn unshare_and_setns() {
    let _d = common::deadline("unshare_and_setns", 120);
    attack(&[
        entry(
            "unshare_user",
            libc::SYS_unshare,
            Kernel(&["OK new_userns=1"]),
        ),
        entry("setns", libc::SYS_setns, Kernel(&["ERR EBADF"])),
    ])
    .await;
    let mut b = probes(Setup::HostRoot, &["unshare_user".into()]);
    b.seccomp(Seccomp::default_profile().allow(libc::SYS_unshare));
    let (r, out) = run(b).await;
    assert_eq!(get(&r, "unshare_user"), "OK new_userns=1", "{out}");
}

/// `clone()` with each `CLONE_NEW*` flag (with `CLONE_NEWUSER`, which gives the child the
/// capabilities the others need): refused by the argument rule, while a plain `clone()`
/// (fork) works; with `clone` lifted every one creates its namespaces. The host-side read
/// checks each flag bit on its own against the installed program.
#[tokio::test(flavor = "multi_thread")]
async fn clone_with_namespace_flags() {
    let _d = common::deadline("clone_with_namespace_flags", 120);
    let flags = [
        ("clone_newuser", libc::CLONE_NEWUSER),
        ("clone_newns", libc::CLONE_NEWNS),
        ("clone_newuts", libc::CLONE_NEWUTS),
        ("clone_newipc", libc::CLONE_NEWIPC),
        ("clone_newpid", libc::CLONE_NEWPID),
        ("clone_newnet", libc::CLONE_NEWNET),
        ("clone_newcgroup", libc::CLONE_NEWCGROUP),
    ];
    let mut words: Vec<String> = flags.iter().map(|(w, _)| w.to_string()).collect();
    words.push("clone_plain".into());
    for setup in [Setup::Defaults, Setup::HostRoot] {
        let (r, out) = run(probes(setup, &words)).await;
        for (w, _) in flags {
            assert_eq!(get(&r, w), "ERR EPERM", "{setup:?} {w}: {out}");
        }
        assert_eq!(get(&r, "clone_plain"), "OK child_status=0", "{out}");
    }
    let mut b = probes(Setup::Defaults, &words);
    b.seccomp(Seccomp::default_profile().allow(libc::SYS_clone));
    let (r, out) = run(b).await;
    for w in &words {
        assert_eq!(get(&r, w), "OK child_status=0", "{w} lifted: {out}");
    }

    let default = filters_of(sleeper(None)).await;
    let lifted = filters_of(sleeper(Some(
        Seccomp::default_profile().allow(libc::SYS_clone),
    )))
    .await;
    let sigchld = libc::SIGCHLD as u64;
    for (w, f) in flags {
        let arg = f as u32 as u64 | sigchld;
        assert_eq!(verdict(&default, libc::SYS_clone, arg), EPERM, "{w}");
        // Junk in the upper half of the register does not hide the flag.
        let high = arg | 0xffff_0000_0000_0000;
        assert_eq!(verdict(&default, libc::SYS_clone, high), EPERM, "{w} high");
        assert_eq!(verdict(&lifted, libc::SYS_clone, arg), ALLOW, "{w} lifted");
    }
    assert_eq!(verdict(&default, libc::SYS_clone, sigchld), ALLOW, "fork");
    let threads = (libc::CLONE_VM | libc::CLONE_THREAD | libc::CLONE_SIGHAND) as u64;
    assert_eq!(
        verdict(&default, libc::SYS_clone, threads),
        ALLOW,
        "threads"
    );
}

/// `clone3()`: its flags are in memory the filter cannot read, so the default answers
/// `ENOSYS` (libc then falls back to `clone()`, whose flags are checked), from the filter:
/// with `clone3` lifted the same call creates a user namespace. `deny(SYS_clone3)` turns
/// the answer into `EPERM`.
#[tokio::test(flavor = "multi_thread")]
async fn clone3_answers_enosys() {
    let _d = common::deadline("clone3_answers_enosys", 120);
    let words = ["clone3_newuser".to_string()];
    for setup in [Setup::Defaults, Setup::HostRoot] {
        let (r, out) = run(probes(setup, &words)).await;
        assert_eq!(get(&r, "clone3_newuser"), "ERR ENOSYS", "{setup:?}: {out}");
    }
    let mut b = probes(Setup::Defaults, &words);
    b.seccomp(Seccomp::default_profile().allow(libc::SYS_clone3));
    let (r, out) = run(b).await;
    assert_eq!(get(&r, "clone3_newuser"), "OK child_status=0", "{out}");
    let mut b = probes(Setup::Defaults, &words);
    b.seccomp(Seccomp::default_profile().deny(libc::SYS_clone3));
    let (r, out) = run(b).await;
    assert_eq!(get(&r, "clone3_newuser"), "ERR EPERM", "{out}");

    let default = filters_of(sleeper(None)).await;
    let enosys = libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32;
    assert_eq!(verdict(&default, libc::SYS_clone3, 0), enosys);
}

/// The mount family, old and new API. `open_tree` without `OPEN_TREE_CLONE` needs no
/// capability (an O_PATH descriptor of `/`: the attack works once lifted); `fsconfig`,
/// `mount_setattr`, `mount` and `umount2` reach argument checks (EINVAL, EFAULT, ENOENT);
/// `move_mount`, `fsopen`, `fsmount`, `fspick` and `pivot_root` check `CAP_SYS_ADMIN`
/// first, so their proof is the installed filter.
#[tokio::test(flavor = "multi_thread")]
async fn mount_family() {
    let _d = common::deadline("mount_family", 240);
    attack(&[
        entry("open_tree", libc::SYS_open_tree, Kernel(&["OK done"])),
        entry("move_mount", libc::SYS_move_mount, CapabilityFirst),
        entry("fsopen", libc::SYS_fsopen, CapabilityFirst),
        entry("fsconfig", libc::SYS_fsconfig, Kernel(&["ERR EINVAL"])),
        entry("fsmount", libc::SYS_fsmount, CapabilityFirst),
        entry("fspick", libc::SYS_fspick, CapabilityFirst),
        entry(
            "mount_setattr",
            libc::SYS_mount_setattr,
            Kernel(&["ERR EINVAL"]),
        ),
        entry("mount", libc::SYS_mount, Kernel(&["ERR EFAULT"])),
        entry("umount2", libc::SYS_umount2, Kernel(&["ERR ENOENT"])),
        entry("pivot_root", libc::SYS_pivot_root, CapabilityFirst),
    ])
    .await;
}

/// Keyrings, which are not namespaced: with `add_key` lifted the workload adds a key (to
/// its own process keyring), with `keyctl` lifted it gets a keyring id, with
/// `request_key` lifted the kernel searches and answers ENOKEY.
#[tokio::test(flavor = "multi_thread")]
async fn keyrings() {
    let _d = common::deadline("keyrings", 120);
    attack(&[
        entry("add_key", libc::SYS_add_key, Kernel(&["OK done"])),
        entry(
            "request_key",
            libc::SYS_request_key,
            Kernel(&["ERR ENOKEY"]),
        ),
        entry("keyctl", libc::SYS_keyctl, Kernel(&["OK done"])),
    ])
    .await;
}

/// Module loading and kexec. Once lifted, a kernel built without them answers ENOSYS
/// (this VM); a kernel with them checks CAP_SYS_MODULE / CAP_SYS_BOOT in the initial user
/// namespace first (EPERM), and the installed filter is the proof.
#[tokio::test(flavor = "multi_thread")]
async fn modules_and_kexec() {
    let _d = common::deadline("modules_and_kexec", 240);
    let modules = unless_built_in(Path::new("/proc/modules").exists());
    let kexec = unless_built_in(Path::new("/sys/kernel/kexec_loaded").exists());
    attack(&[
        entry("init_module", libc::SYS_init_module, modules),
        entry("finit_module", libc::SYS_finit_module, modules),
        entry("delete_module", libc::SYS_delete_module, modules),
        entry("kexec_load", libc::SYS_kexec_load, kexec),
        entry("kexec_file_load", libc::SYS_kexec_file_load, kexec),
    ])
    .await;
    // Whatever the kernel: the filter entries themselves.
    for (name, nr) in [
        ("init_module", libc::SYS_init_module),
        ("kexec_load", libc::SYS_kexec_load),
    ] {
        filter_entry_proven(name, nr).await;
    }
}

/// io_uring (its own path to most of the kernel, around the filter): with `io_uring_setup`
/// lifted a ring of one entry is created; `enter` and `register` reach the kernel's
/// descriptor check.
#[tokio::test(flavor = "multi_thread")]
async fn io_uring() {
    let _d = common::deadline("io_uring", 120);
    let disabled = std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled")
        .unwrap_or_else(|_| "0".into());
    assert_eq!(
        disabled.trim(),
        "0",
        "io_uring is disabled on this host (kernel.io_uring_disabled): the setup control cannot run"
    );
    attack(&[
        entry(
            "io_uring_setup",
            libc::SYS_io_uring_setup,
            Kernel(&["OK done"]),
        ),
        entry(
            "io_uring_enter",
            libc::SYS_io_uring_enter,
            Kernel(&["ERR EBADF"]),
        ),
        entry(
            "io_uring_register",
            libc::SYS_io_uring_register,
            Kernel(&["ERR EBADF", "ERR EINVAL"]),
        ),
    ])
    .await;
}

/// Clock setting: an out-of-range time and a clock that does not exist reach the kernel's
/// EINVAL once lifted (no clock is changed); `clock_adjtime` with no mode bits is a query,
/// which works.
#[tokio::test(flavor = "multi_thread")]
async fn clock_setting() {
    let _d = common::deadline("clock_setting", 120);
    attack(&[
        entry(
            "settimeofday",
            libc::SYS_settimeofday,
            Kernel(&["ERR EINVAL"]),
        ),
        entry(
            "clock_settime",
            libc::SYS_clock_settime,
            Kernel(&["ERR EINVAL"]),
        ),
        entry(
            "clock_adjtime",
            libc::SYS_clock_adjtime,
            Kernel(&["OK done"]),
        ),
    ])
    .await;
}

/// bpf, perf_event_open, userfaultfd, open_by_handle_at, fanotify_init: each reaches the
/// kernel once lifted (an oversized bpf attribute, a NULL perf attribute and file handle;
/// a user-mode-only userfaultfd and a notification-only fanotify group, which need no
/// capability, are created).
#[tokio::test(flavor = "multi_thread")]
async fn bpf_perf_userfaultfd_handles_fanotify() {
    let _d = common::deadline("bpf_perf_userfaultfd_handles_fanotify", 120);
    attack(&[
        entry("bpf", libc::SYS_bpf, Kernel(&["ERR E2BIG"])),
        entry(
            "perf_event_open",
            libc::SYS_perf_event_open,
            Kernel(&["ERR EFAULT"]),
        ),
        entry("userfaultfd", libc::SYS_userfaultfd, Kernel(&["OK done"])),
        entry(
            "open_by_handle_at",
            libc::SYS_open_by_handle_at,
            Kernel(&["ERR EFAULT"]),
        ),
        entry(
            "fanotify_init",
            libc::SYS_fanotify_init,
            Kernel(&["OK done"]),
        ),
    ])
    .await;
}

/// reboot (with a bad magic), swapon/swapoff, acct and vhangup check a capability before
/// anything else: their proof is the installed filter. `syslog` too where `dmesg_restrict`
/// is on (this VM); elsewhere the buffer size query works once lifted. `quotactl` without a
/// device reaches ENODEV.
#[tokio::test(flavor = "multi_thread")]
async fn reboot_swap_acct_quota_syslog_vhangup() {
    let _d = common::deadline("reboot_swap_acct_quota_syslog_vhangup", 300);
    let restricted =
        std::fs::read_to_string("/proc/sys/kernel/dmesg_restrict").is_ok_and(|v| v.trim() != "0");
    let syslog = if restricted {
        CapabilityFirst
    } else {
        Kernel(&["OK done"])
    };
    attack(&[
        entry("reboot", libc::SYS_reboot, CapabilityFirst),
        entry("swapon", libc::SYS_swapon, CapabilityFirst),
        entry("swapoff", libc::SYS_swapoff, CapabilityFirst),
        entry("acct", libc::SYS_acct, CapabilityFirst),
        entry("quotactl", libc::SYS_quotactl, Kernel(&["ERR ENODEV"])),
        entry("syslog", libc::SYS_syslog, syslog),
        entry("vhangup", libc::SYS_vhangup, CapabilityFirst),
    ])
    .await;
}

/// Calls removed from the kernel or obsolete (`lookup_dcookie`, `nfsservctl`, `uselib`,
/// `_sysctl`: ENOSYS once lifted), `ustat` (EINVAL for device 0), `sysfs` (counts the
/// filesystem types), and x86's `iopl`/`ioperm` (ENOSYS on a kernel without
/// CONFIG_X86_IOPL_IOPERM, as here; elsewhere `iopl(0)` works and `ioperm` of nothing is
/// EINVAL).
#[tokio::test(flavor = "multi_thread")]
async fn obsolete_and_x86_calls() {
    let _d = common::deadline("obsolete_and_x86_calls", 180);
    let mut entries = vec![
        entry(
            "lookup_dcookie",
            libc::SYS_lookup_dcookie,
            Kernel(&["ERR ENOSYS"]),
        ),
        entry("nfsservctl", libc::SYS_nfsservctl, Kernel(&["ERR ENOSYS"])),
    ];
    #[cfg(target_arch = "x86_64")]
    entries.extend([
        entry(
            "uselib",
            libc::SYS_uselib,
            Kernel(&["ERR ENOSYS", "ERR EFAULT"]),
        ),
        entry("ustat", libc::SYS_ustat, Kernel(&["ERR EINVAL"])),
        entry("sysfs", libc::SYS_sysfs, Kernel(&["OK done"])),
        entry("_sysctl", libc::SYS__sysctl, Kernel(&["ERR ENOSYS"])),
        entry("iopl", libc::SYS_iopl, Kernel(&["ERR ENOSYS", "OK done"])),
        entry(
            "ioperm",
            libc::SYS_ioperm,
            Kernel(&["ERR ENOSYS", "ERR EINVAL"]),
        ),
    ]);
    attack(&entries).await;
}

/// The whole deny list, from the host side: the default container's installed program
/// answers `RET_ERRNO|EPERM` for every entry of `default_denied_syscalls()`, the x32 alias
/// of any call and `clone` with a namespace flag, `ENOSYS` for `clone3`, kills a call of
/// another architecture, and allows ordinary calls. Then, for each entry, a container
/// with only that entry lifted: that call is allowed and every other entry still denied.
/// The entries are this file's own list ([`ATTACKED`], every call the behavioural tests
/// above lift), which must equal `default_denied_syscalls()`: an entry dropped from the
/// crate, or a new one without an attack, fails this test.
#[tokio::test(flavor = "multi_thread")]
async fn every_default_entry_is_in_the_installed_filter() {
    let _d = common::deadline("every_default_entry_is_in_the_installed_filter", 600);
    // The list this file attacks is kept by hand, so that an entry dropped from the
    // crate's list fails here instead of dropping out of the test with it.
    let denied: Vec<i64> = ATTACKED.to_vec();
    let default = filters_of(sleeper(None)).await;
    for &nr in &denied {
        assert_eq!(verdict(&default, nr, 0), EPERM, "entry {nr}");
    }
    let arch = native_arch();
    assert_eq!(
        default[0].run(arch ^ 0x8000_0000, libc::SYS_getpid as u32, [0; 6]),
        libc::SECCOMP_RET_KILL_PROCESS,
        "another architecture (32-bit) is killed"
    );
    #[cfg(target_arch = "x86_64")]
    assert_eq!(
        verdict(&default, 0x4000_0000 | libc::SYS_getpid, 0),
        EPERM,
        "x32"
    );
    let newuser = libc::CLONE_NEWUSER as u64;
    assert_eq!(verdict(&default, libc::SYS_clone, newuser), EPERM);
    assert_eq!(
        verdict(&default, libc::SYS_clone3, 0),
        libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32
    );
    for nr in [
        libc::SYS_read,
        libc::SYS_write,
        libc::SYS_getpid,
        libc::SYS_execve,
        libc::SYS_openat,
        libc::SYS_clone,
    ] {
        assert_eq!(verdict(&default, nr, 0), ALLOW, "ordinary call {nr}");
    }

    let mut listed = cellblock::default_denied_syscalls();
    listed.sort_unstable();
    let mut attacked = denied.clone();
    attacked.sort_unstable();
    assert_eq!(
        listed, attacked,
        "default_denied_syscalls() and ATTACKED differ"
    );

    for &nr in &denied {
        let lifted = filters_of(sleeper(Some(Seccomp::default_profile().allow(nr)))).await;
        assert_eq!(verdict(&lifted, nr, 0), ALLOW, "entry {nr} lifted");
        for &other in denied.iter().filter(|&&o| o != nr) {
            assert_eq!(
                verdict(&lifted, other, 0),
                EPERM,
                "{other} stays denied when only {nr} is lifted"
            );
        }
    }
}

/// Every system call the behavioural tests above lift, kept by hand: the table test checks
/// it equals `default_denied_syscalls()`.
const ATTACKED: &[i64] = &[
    libc::SYS_unshare,
    libc::SYS_setns,
    libc::SYS_open_tree,
    libc::SYS_move_mount,
    libc::SYS_fsopen,
    libc::SYS_fsconfig,
    libc::SYS_fsmount,
    libc::SYS_fspick,
    libc::SYS_mount_setattr,
    libc::SYS_mount,
    libc::SYS_umount2,
    libc::SYS_pivot_root,
    libc::SYS_add_key,
    libc::SYS_request_key,
    libc::SYS_keyctl,
    libc::SYS_init_module,
    libc::SYS_finit_module,
    libc::SYS_delete_module,
    libc::SYS_kexec_load,
    libc::SYS_kexec_file_load,
    libc::SYS_io_uring_setup,
    libc::SYS_io_uring_enter,
    libc::SYS_io_uring_register,
    libc::SYS_settimeofday,
    libc::SYS_clock_settime,
    libc::SYS_clock_adjtime,
    libc::SYS_bpf,
    libc::SYS_perf_event_open,
    libc::SYS_userfaultfd,
    libc::SYS_open_by_handle_at,
    libc::SYS_fanotify_init,
    libc::SYS_reboot,
    libc::SYS_swapon,
    libc::SYS_swapoff,
    libc::SYS_acct,
    libc::SYS_quotactl,
    libc::SYS_syslog,
    libc::SYS_vhangup,
    libc::SYS_lookup_dcookie,
    libc::SYS_nfsservctl,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_uselib,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_ustat,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_sysfs,
    #[cfg(target_arch = "x86_64")]
    libc::SYS__sysctl,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_iopl,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_ioperm,
];

// ---------------------------------------------------------------------------------------
// Masked and read-only paths.
// ---------------------------------------------------------------------------------------

/// `f_type` of tmpfs (the masks' directory cover), procfs and sysfs (linux/magic.h).
const TMPFS_MAGIC: &str = "0x1021994";
const PROC_MAGIC: &str = "0x9fa0";
const SYSFS_MAGIC: &str = "0x62656572";

/// The cases of a path attack.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Case {
    /// (a) the defaults.
    Defaults,
    /// (b) `host_root()` with the masks on: the mask alone holds.
    HostRoot,
    /// (c) `host_root()` with only the path under test left alone (the control).
    HostRootUnmasked,
    /// The defaults with only that path left alone: what the default identity alone does.
    DefaultsUnmasked,
}

/// Runs the probe with `words` in `case`, `path` being the one left alone in the unmasked
/// cases.
async fn path_case(case: Case, path: &str, words: &[String]) -> (Results, String) {
    let setup = match case {
        Case::Defaults | Case::DefaultsUnmasked => Setup::Defaults,
        Case::HostRoot | Case::HostRootUnmasked => Setup::HostRoot,
    };
    let mut b = probes(setup, words);
    if matches!(case, Case::HostRootUnmasked | Case::DefaultsUnmasked) {
        b.unmask_path(path);
    }
    run(b).await
}

/// Fails the test, with the reason, where this host lacks `path`.
fn host_has(path: &str, why: &str) {
    assert!(
        Path::new(path).exists(),
        "this host has no {path} ({why}): the attack cannot run here"
    );
}

/// A key of the test's own process keyring (it dies with the test process), invalidated
/// on drop.
struct HostKey(i64);

impl HostKey {
    fn add(desc: &str) -> HostKey {
        let desc = std::ffi::CString::new(desc).unwrap();
        // SAFETY: add_key(2) with valid C strings and a 6-byte payload.
        let id = unsafe {
            libc::syscall(
                libc::SYS_add_key,
                c"user".as_ptr(),
                desc.as_ptr(),
                c"secret".as_ptr(),
                6usize,
                libc::KEY_SPEC_PROCESS_KEYRING,
            )
        };
        assert!(id > 0, "add_key: {}", std::io::Error::last_os_error());
        HostKey(id)
    }
}

impl Drop for HostKey {
    fn drop(&mut self) {
        // SAFETY: keyctl(KEYCTL_INVALIDATE) on our own key.
        unsafe { libc::syscall(libc::SYS_keyctl, libc::KEYCTL_INVALIDATE, self.0) };
    }
}

/// `/proc/keys` lists every key the reader may view, across the host: the test adds a key
/// on the host (owned by uid 0) and a workload that is host root looks for it. Masked
/// (defaults, and `host_root()` alone) the file is `/dev/null`: empty, a character device.
/// Unmasked, host root sees the host's key; the default identity does not (keys of uids
/// outside its user namespace are not listed), so the control is `host_root()`.
#[tokio::test(flavor = "multi_thread")]
async fn masked_proc_keys() {
    let _d = common::deadline("masked_proc_keys", 120);
    let desc = format!("cellblock-escape-kernel-{}", std::process::id());
    let _key = HostKey::add(&desc);
    let (path, words) = ("/proc/keys", [format!("read:keys:/proc/keys:{desc}")]);
    for case in [Case::Defaults, Case::HostRoot] {
        let (r, out) = path_case(case, path, &words).await;
        assert_eq!(
            get(&r, "keys"),
            "OK type=chr bytes=0 found=0",
            "{case:?}: {out}"
        );
    }
    let (r, out) = path_case(Case::HostRootUnmasked, path, &words).await;
    let keys = get(&r, "keys");
    assert_eq!(field(keys, "type"), "reg", "{out}");
    assert_eq!(field(keys, "found"), "1", "the host's key is listed: {out}");
    let (r, out) = path_case(Case::DefaultsUnmasked, path, &words).await;
    let keys = get(&r, "keys");
    assert_eq!(field(keys, "type"), "reg", "{out}");
    assert_eq!(
        field(keys, "found"),
        "0",
        "the identity hides root's keys: {out}"
    );
}

/// `/proc/timer_list` (root-only) shows every timer of the host and the tasks behind them.
/// Masked it is an empty character device; unmasked, host root reads the real list; the
/// default identity is refused by the file's mode.
#[tokio::test(flavor = "multi_thread")]
async fn masked_proc_timer_list() {
    let _d = common::deadline("masked_proc_timer_list", 120);
    host_has("/proc/timer_list", "CONFIG_TIMER_LIST");
    let path = "/proc/timer_list";
    let words = [format!("read:timers:{path}:Timer List Version")];
    for case in [Case::Defaults, Case::HostRoot] {
        let (r, out) = path_case(case, path, &words).await;
        assert_eq!(
            get(&r, "timers"),
            "OK type=chr bytes=0 found=0",
            "{case:?}: {out}"
        );
    }
    let (r, out) = path_case(Case::HostRootUnmasked, path, &words).await;
    let timers = get(&r, "timers");
    assert_eq!(field(timers, "type"), "reg", "{out}");
    assert_eq!(field(timers, "found"), "1", "the host's timer list: {out}");
    let (r, out) = path_case(Case::DefaultsUnmasked, path, &words).await;
    assert_eq!(get(&r, "timers"), "ERR EACCES", "{out}");
}

/// `/sys/firmware` (ACPI tables, the firmware memory map). Masked it is an empty tmpfs
/// without any permission; unmasked it is the host's sysfs directory with its entries,
/// readable by anyone: the mask is the only layer here, so the default identity sees it too.
#[tokio::test(flavor = "multi_thread")]
async fn masked_sys_firmware() {
    let _d = common::deadline("masked_sys_firmware", 120);
    let path = "/sys/firmware";
    host_has(path, "sysfs");
    let host_entries = std::fs::read_dir(path).unwrap().count();
    assert!(
        host_entries > 0,
        "the host's {path} is empty: nothing to show"
    );
    let words = [format!("stat:fw_stat:{path}"), format!("list:fw:{path}")];
    for case in [Case::Defaults, Case::HostRoot] {
        let (r, out) = path_case(case, path, &words).await;
        assert_eq!(
            field(get(&r, "fw_stat"), "fs"),
            TMPFS_MAGIC,
            "{case:?}: {out}"
        );
        assert_eq!(get(&r, "fw"), "ERR EACCES", "{case:?}: {out}");
    }
    for case in [Case::HostRootUnmasked, Case::DefaultsUnmasked] {
        let (r, out) = path_case(case, path, &words).await;
        assert_eq!(
            field(get(&r, "fw_stat"), "fs"),
            SYSFS_MAGIC,
            "{case:?}: {out}"
        );
        let listed = format!("OK entries={host_entries}");
        assert_eq!(get(&r, "fw"), listed, "{case:?}: {out}");
    }
}

/// `/proc/kcore`: the host's memory as an ELF core file. Masked it is an empty character
/// device. Unmasked, reading it needs CAP_SYS_RAWIO, which stays dropped (EPERM), so the
/// control shows what the workload sees instead: the real file, sized like the kernel's
/// address space.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "this VM's kernel has no /proc/kcore (CONFIG_PROC_KCORE is off); run with --ignored where it has one"]
async fn masked_proc_kcore() {
    let _d = common::deadline("masked_proc_kcore", 120);
    let path = "/proc/kcore";
    host_has(path, "CONFIG_PROC_KCORE");
    let words = [
        format!("stat:kcore:{path}"),
        format!("read:kcore_read:{path}"),
    ];
    for case in [Case::Defaults, Case::HostRoot] {
        let (r, out) = path_case(case, path, &words).await;
        assert_eq!(field(get(&r, "kcore"), "type"), "chr", "{case:?}: {out}");
        assert_eq!(
            get(&r, "kcore_read"),
            "OK type=chr bytes=0 found=0",
            "{out}"
        );
    }
    let (r, out) = path_case(Case::HostRootUnmasked, path, &words).await;
    let kcore = get(&r, "kcore");
    assert_eq!(field(kcore, "type"), "reg", "{out}");
    let size: u64 = field(kcore, "size").parse().unwrap();
    assert!(size > 1 << 30, "the kernel's address space: {out}");
    assert_eq!(get(&r, "kcore_read"), "ERR EPERM", "CAP_SYS_RAWIO: {out}");
}

/// `/proc/sysrq-trigger`: a root writer crashes, reboots or freezes the host. The attack
/// opens it for writing and never writes. Masked the open succeeds on `/dev/null` (a
/// character device); unmasked, host root opens the real trigger (a regular proc file);
/// the default identity is refused by its mode (0200).
#[tokio::test(flavor = "multi_thread")]
#[ignore = "this VM's kernel has no /proc/sysrq-trigger (CONFIG_MAGIC_SYSRQ is off); run with --ignored where it has one"]
async fn masked_proc_sysrq_trigger() {
    let _d = common::deadline("masked_proc_sysrq_trigger", 120);
    let path = "/proc/sysrq-trigger";
    host_has(path, "CONFIG_MAGIC_SYSRQ");
    let words = [
        format!("openw:sysrq:{path}"),
        format!("stat:sysrq_stat:{path}"),
    ];
    for case in [Case::Defaults, Case::HostRoot] {
        let (r, out) = path_case(case, path, &words).await;
        assert_eq!(get(&r, "sysrq"), "OK opened", "{case:?}: {out}");
        assert_eq!(
            field(get(&r, "sysrq_stat"), "type"),
            "chr",
            "{case:?}: {out}"
        );
    }
    let (r, out) = path_case(Case::HostRootUnmasked, path, &words).await;
    assert_eq!(get(&r, "sysrq"), "OK opened", "{out}");
    assert_eq!(field(get(&r, "sysrq_stat"), "type"), "reg", "{out}");
    let (r, out) = path_case(Case::DefaultsUnmasked, path, &words).await;
    assert_eq!(get(&r, "sysrq"), "ERR EACCES", "{out}");
}

/// A read-only path attacked: `words` are write attempts under `path` (opens for writing,
/// chmods to the same mode). The defaults refuse them (the identity owns nothing there),
/// `host_root()` with the path read-only gets EROFS from the mount, and `host_root()` with
/// only that path left writable succeeds.
async fn readonly_attack(path: &str, words: &[String], names: &[&str]) {
    let (r, out) = path_case(Case::Defaults, path, words).await;
    for n in names {
        assert!(get(&r, n).starts_with("ERR "), "defaults {n}: {out}");
    }
    let (r, out) = path_case(Case::HostRoot, path, words).await;
    for n in names {
        assert_eq!(get(&r, n), "ERR EROFS", "host_root {n}: {out}");
    }
    let (r, out) = path_case(Case::HostRootUnmasked, path, words).await;
    for n in names {
        assert!(get(&r, n).starts_with("OK "), "{path} writable, {n}: {out}");
    }
}

/// The first regular file under `dir` whose owner (root) may write it, on the host.
fn writable_file_under(dir: &Path) -> Option<PathBuf> {
    use std::os::unix::fs::MetadataExt;
    let mut entries: Vec<_> = std::fs::read_dir(dir).ok()?.flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let Ok(m) = std::fs::symlink_metadata(e.path()) else {
            continue;
        };
        if m.is_file() && m.uid() == 0 && m.mode() & 0o200 != 0 {
            return Some(e.path());
        }
        if m.is_dir() {
            if let Some(f) = writable_file_under(&e.path()) {
                return Some(f);
            }
        }
    }
    None
}

/// `/proc/irq`: interrupt routing of the host. The attacks open
/// `/proc/irq/default_smp_affinity` for writing (never written) and chmod the directory
/// to the mode it has.
#[tokio::test(flavor = "multi_thread")]
async fn readonly_proc_irq() {
    let _d = common::deadline("readonly_proc_irq", 120);
    let file = "/proc/irq/default_smp_affinity";
    host_has(file, "an SMP kernel");
    let words = [
        format!("openw:irq_file:{file}"),
        "chmod:irq_dir:/proc/irq".into(),
    ];
    readonly_attack("/proc/irq", &words, &["irq_file", "irq_dir"]).await;
}

/// `/proc/bus`: PCI configuration space of the host's devices. The attacks open the first
/// root-writable file there for writing (never written) and chmod `/proc/bus` to its mode.
#[tokio::test(flavor = "multi_thread")]
async fn readonly_proc_bus() {
    let _d = common::deadline("readonly_proc_bus", 120);
    let file = writable_file_under(Path::new("/proc/bus"))
        .expect("this host has no root-writable file under /proc/bus: the attack cannot run");
    let words = [
        format!("openw:bus_file:{}", file.display()),
        "chmod:bus_dir:/proc/bus".into(),
    ];
    readonly_attack("/proc/bus", &words, &["bus_file", "bus_dir"]).await;
}

/// `/proc/sys`: the host's sysctls. The attack opens `kernel/core_pattern` for writing
/// (never written): a pipe there runs as host root at the next crash. (chmod is no attack
/// here: sysctl files refuse it whatever the mount.)
#[tokio::test(flavor = "multi_thread")]
async fn readonly_proc_sys() {
    let _d = common::deadline("readonly_proc_sys", 120);
    let words = ["openw:core_pattern:/proc/sys/kernel/core_pattern".to_string()];
    readonly_attack("/proc/sys", &words, &["core_pattern"]).await;
}

/// `/proc/fs`: per-filesystem state and controls. This host has no writable file under
/// it (ext4, jbd2, xfs entries are read-only, nfsd is not loaded), so the attack is a write
/// to the directory's own inode: a chmod to the mode it already has.
#[tokio::test(flavor = "multi_thread")]
async fn readonly_proc_fs() {
    let _d = common::deadline("readonly_proc_fs", 120);
    host_has("/proc/fs", "procfs");
    let words = ["chmod:fs_dir:/proc/fs".to_string()];
    readonly_attack("/proc/fs", &words, &["fs_dir"]).await;
}

/// Every default masked and read-only path that exists on this host, as the workload sees
/// it: masked files are character devices (`/dev/null`), masked directories tmpfs, the
/// read-only ones read-only. `unmask_path(p)` changes exactly `p` back to the real
/// procfs/sysfs entry (writable, for the read-only ones) and leaves every other default.
/// (`/sys/firmware` stays read-only when unmasked: all of `/sys` is, a layer of its own.)
#[tokio::test(flavor = "multi_thread")]
async fn unmask_path_lifts_exactly_one_default() {
    let _d = common::deadline("unmask_path_lifts_exactly_one_default", 300);
    let paths: Vec<&str> = cellblock::DEFAULT_MASKED_PATHS
        .iter()
        .chain(cellblock::DEFAULT_READONLY_PATHS)
        .copied()
        .filter(|p| Path::new(p).exists())
        .collect();
    assert!(
        paths.len() >= 6,
        "too few default paths on this host: {paths:?}"
    );
    let words: Vec<String> = paths.iter().map(|p| format!("stat:{p}:{p}")).collect();
    let masked = |p: &str, r: &str| {
        if cellblock::DEFAULT_READONLY_PATHS.contains(&p) {
            field(r, "ro") == "1"
        } else if Path::new(p).is_dir() {
            field(r, "fs") == TMPFS_MAGIC
        } else {
            field(r, "type") == "chr"
        }
    };
    let (r, out) = run(probes(Setup::Defaults, &words)).await;
    for p in &paths {
        assert!(masked(p, get(&r, p)), "{p} masked by default: {out}");
    }
    for p in &paths {
        let mut b = probes(Setup::Defaults, &words);
        b.unmask_path(*p);
        let (r, out) = run(b).await;
        let got = get(&r, p);
        let real = if p.starts_with("/sys/") {
            SYSFS_MAGIC
        } else {
            PROC_MAGIC
        };
        assert_eq!(field(got, "fs"), real, "{p} unmasked: {out}");
        if cellblock::DEFAULT_READONLY_PATHS.contains(p) {
            assert_eq!(field(got, "ro"), "0", "{p} writable: {out}");
        }
        assert!(!masked(p, got), "{p} unmasked: {out}");
        for other in paths.iter().filter(|o| *o != p) {
            assert!(
                masked(other, get(&r, other)),
                "{other} with {p} unmasked: {out}"
            );
        }
    }
}

/// `unmask_path` takes only the defaults: any other path, or a relative one, is refused
/// at spawn with `Error::BadMount` naming it; the same path with a trailing slash is the
/// same path.
#[tokio::test(flavor = "multi_thread")]
async fn unmask_path_refuses_other_paths() {
    let _d = common::deadline("unmask_path_refuses_other_paths", 60);
    for bad in ["/proc/self", "proc/keys", "/proc/keys/../kcore", "/etc"] {
        let mut b = Container::builder("/bin/true");
        b.namespaces(common::default_ns()).unmask_path(bad);
        match b.status().await {
            Err(Error::BadMount { what, path, reason }) => {
                assert_eq!(what, "unmask_path");
                assert_eq!(path, Path::new(bad));
                assert!(reason.contains("default"), "{reason}");
            }
            other => panic!("unmask_path({bad}): {other:?}"),
        }
    }
    let mut b = Container::builder("/bin/true");
    b.namespaces(common::default_ns())
        .unmask_path("/proc/keys/");
    assert!(b.status().await.unwrap().success());
}
