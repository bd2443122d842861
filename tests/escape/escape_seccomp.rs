//! The seccomp filter's argument rules, attacked (issue 11, row 9): `socket(AF_VSOCK)`,
//! which a network namespace does not isolate, `socket(AF_ALG)`, `socketpair` of both,
//! and `ioctl(TIOCSTI)`/`ioctl(TIOCLINUX)` (keystroke injection), plus the bug that
//! `Seccomp::disabled().deny(nr)` installed no filter at all.
//!
//! Each attack runs (a) in a default container, where it must fail; (b) with
//! `host_root()`, so that the filter is the only layer in the way, where it must still
//! fail; (c) with `host_root()` and that one rule lifted, where it must work (or fail
//! with the *kernel's* errno, which differs from the filter's `EPERM`), so every test can
//! fail for real.
//!
//! The probe is `tests/escape/sockets.c`, compiled once per run with the system `cc`. It
//! prints `RESULT <name> OK <detail>` or `RESULT <name> ERR <ERRNO>`.
//!
//! Host facts these tests rely on, checked where used: this host has AF_VSOCK (a
//! Firecracker guest: `/dev/vsock`, `AF_VSOCK` in /proc/net/protocols) and no AF_ALG
//! (`socket(AF_ALG)` is `EAFNOSUPPORT` on the host).

use crate::common;

use std::collections::HashMap;
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use cellblock::{Container, ContainerBuilder, Seccomp};

/// The compiled probe (built once per test binary, removed with the target directory's
/// tmp; stale builds of dead test processes are removed first).
fn probe() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| common::compile_probe("sockets"))
}

/// Which of the three setups of the module documentation.
#[derive(Clone, Copy, Debug)]
enum Setup {
    /// (a) the builder's defaults plus the usual namespaces.
    Defaults,
    /// (b) `host_root()`: the filter is the layer under test.
    HostRoot,
}

/// A container running `sh -c` over several probe invocations, one per line of `cmds`.
fn probes(setup: Setup, cmds: &[String]) -> ContainerBuilder {
    let script = cmds
        .iter()
        .map(|c| format!("{} {c}", probe().display()))
        .collect::<Vec<_>>()
        .join("; ");
    let mut b = Container::builder("/bin/sh");
    b.args(["-c", &script]).namespaces(common::default_ns());
    if let Setup::HostRoot = setup {
        b.host_root();
    }
    b
}

async fn run(b: &mut ContainerBuilder) -> (HashMap<String, String>, String) {
    let out = b.output().await.expect("the container starts");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !stderr.is_empty() {
        eprintln!("container stderr: {stderr}");
    }
    assert!(out.status.success(), "{:?}: {stdout}", out.status);
    (common::results_in(&stdout), stdout)
}

fn get<'a>(r: &'a HashMap<String, String>, name: &str) -> &'a str {
    common::probe_result(r, name)
}

const VSOCK: i32 = libc::AF_VSOCK;
const STREAM: i32 = libc::SOCK_STREAM;

/// Asserts the host really has AF_VSOCK, so the controls below mean something.
fn host_has_vsock() {
    // SAFETY: plain socket(2); the descriptor is owned at once.
    let fd = unsafe { libc::socket(VSOCK, STREAM, 0) };
    assert!(
        fd >= 0,
        "this host has no AF_VSOCK ({}): the vsock controls cannot run here",
        std::io::Error::last_os_error()
    );
    drop(unsafe { OwnedFd::from_raw_fd(fd) });
}

/// A vsock port bound by the test process itself on the host, any local CID; the socket
/// is closed (and the port freed) when the returned descriptor drops.
fn host_vsock_port() -> (OwnedFd, u32) {
    // SAFETY: plain socket calls on our own descriptor and stack structs.
    unsafe {
        let fd = libc::socket(VSOCK, STREAM | libc::SOCK_CLOEXEC, 0);
        assert!(fd >= 0, "vsock socket: {}", std::io::Error::last_os_error());
        let fd = OwnedFd::from_raw_fd(fd);
        let mut a: libc::sockaddr_vm = std::mem::zeroed();
        a.svm_family = VSOCK as libc::sa_family_t;
        a.svm_cid = libc::VMADDR_CID_ANY;
        a.svm_port = libc::VMADDR_PORT_ANY;
        let len = std::mem::size_of::<libc::sockaddr_vm>() as libc::socklen_t;
        let r = libc::bind(
            std::os::fd::AsRawFd::as_raw_fd(&fd),
            &a as *const _ as *const libc::sockaddr,
            len,
        );
        assert_eq!(r, 0, "vsock bind: {}", std::io::Error::last_os_error());
        let mut got: libc::sockaddr_vm = std::mem::zeroed();
        let mut glen = len;
        libc::getsockname(
            std::os::fd::AsRawFd::as_raw_fd(&fd),
            &mut got as *mut _ as *mut libc::sockaddr,
            &mut glen,
        );
        (fd, got.svm_port)
    }
}

/// Row 9: AF_VSOCK is refused by the default filter, with EPERM, even with junk in the
/// upper half of the family argument (the kernel reads an `int`); lifting the rule
/// (`allow_socket_family(AF_VSOCK)` or `allow(SYS_socket)`) gives the workload the host's
/// vsock port space back, through its own network namespace: binding a port the test
/// holds on the host fails with EADDRINUSE.
#[tokio::test(flavor = "multi_thread")]
async fn vsock_socket_denied_by_default() {
    let _d = common::deadline("vsock_socket_denied_by_default", 60);
    host_has_vsock();
    let (_held, port) = host_vsock_port();
    let cmds = [
        format!("socket vsock {VSOCK} {STREAM}"),
        format!(
            "socket vsock_high {:#x} {STREAM}",
            (7u64 << 32) | VSOCK as u64
        ),
        format!("socketpair vsock_pair {VSOCK} {STREAM}"),
        format!("vsock_bind vsock_bind {port}"),
    ];
    for setup in [Setup::Defaults, Setup::HostRoot] {
        let (r, out) = run(&mut probes(setup, &cmds)).await;
        for name in ["vsock", "vsock_high", "vsock_pair", "vsock_bind"] {
            assert_eq!(get(&r, name), "ERR EPERM", "{setup:?} {name}: {out}");
        }
    }

    // Control: the one family allowed again.
    let mut b = probes(Setup::HostRoot, &cmds);
    b.seccomp(Seccomp::default_profile().allow_socket_family(VSOCK));
    let (r, out) = run(&mut b).await;
    assert_eq!(get(&r, "vsock"), "OK created", "{out}");
    assert_eq!(
        get(&r, "vsock_high"),
        "OK created",
        "the kernel reads an int: {out}"
    );
    // The kernel's own answer: vsock has no socketpair (the family's code still ran).
    assert_eq!(get(&r, "vsock_pair"), "ERR EOPNOTSUPP", "{out}");
    // The host's port space, from a container with its own network namespace.
    assert_eq!(get(&r, "vsock_bind"), "ERR EADDRINUSE", "{out}");

    // Control: the whole socket() rule lifted (socketpair keeps its own).
    let mut b = probes(Setup::HostRoot, &cmds);
    b.seccomp(Seccomp::default_profile().allow(libc::SYS_socket));
    let (r, out) = run(&mut b).await;
    assert_eq!(get(&r, "vsock"), "OK created", "{out}");
    assert_eq!(get(&r, "vsock_pair"), "ERR EPERM", "{out}");
}

/// AF_ALG (Docker's other denied family). This host has no AF_ALG, so the control cannot
/// create one: it shows the kernel's EAFNOSUPPORT where the filter says EPERM (on a host
/// with AF_ALG the control creates the socket), so the test still fails if the rule goes.
#[tokio::test(flavor = "multi_thread")]
async fn af_alg_socket_denied_by_default() {
    let _d = common::deadline("af_alg_socket_denied_by_default", 60);
    let alg = libc::AF_ALG;
    let seqpacket = libc::SOCK_SEQPACKET;
    let cmds = [
        format!("socket alg {alg} {seqpacket}"),
        format!("socketpair alg_pair {alg} {seqpacket}"),
    ];
    for setup in [Setup::Defaults, Setup::HostRoot] {
        let (r, out) = run(&mut probes(setup, &cmds)).await;
        assert_eq!(get(&r, "alg"), "ERR EPERM", "{setup:?}: {out}");
        assert_eq!(get(&r, "alg_pair"), "ERR EPERM", "{setup:?}: {out}");
    }
    let mut b = probes(Setup::HostRoot, &cmds);
    b.seccomp(Seccomp::default_profile().allow_socket_family(alg));
    let (r, out) = run(&mut b).await;
    let got = get(&r, "alg");
    assert!(
        got == "OK created" || got == "ERR EAFNOSUPPORT",
        "the kernel decides once the rule is lifted: {out}"
    );
    assert_ne!(get(&r, "alg_pair"), "ERR EPERM", "{out}");
}

/// The families a workload needs keep working under the default filter: AF_UNIX
/// (socket and socketpair), AF_INET, AF_INET6 and AF_NETLINK (NETLINK_ROUTE), also in a
/// network namespace of its own.
#[tokio::test(flavor = "multi_thread")]
async fn ordinary_socket_families_still_work() {
    let _d = common::deadline("ordinary_socket_families_still_work", 60);
    let cmds = [
        format!("socket unix {} {STREAM}", libc::AF_UNIX),
        format!("socketpair unix_pair {} {STREAM}", libc::AF_UNIX),
        format!("socket inet {} {STREAM}", libc::AF_INET),
        format!("socket inet_udp {} {}", libc::AF_INET, libc::SOCK_DGRAM),
        format!("socket inet6 {} {STREAM}", libc::AF_INET6),
        format!("socket netlink {} {} 0", libc::AF_NETLINK, libc::SOCK_RAW),
    ];
    for setup in [Setup::Defaults, Setup::HostRoot] {
        let (r, out) = run(&mut probes(setup, &cmds)).await;
        for name in ["unix", "unix_pair", "inet", "inet_udp", "inet6", "netlink"] {
            assert_eq!(get(&r, name), "OK created", "{setup:?} {name}: {out}");
        }
    }
}

/// TIOCSTI and TIOCLINUX are refused by request, on any descriptor. On /dev/null the
/// kernel's own answer is ENOTTY, so the filter's EPERM is told apart from it; the
/// control allows ioctl() again and sees ENOTTY. Junk in the upper half of the request
/// (the kernel reads an `unsigned int`) does not get past the filter. An ordinary request
/// (TIOCGWINSZ) reaches the kernel in every setup.
#[tokio::test(flavor = "multi_thread")]
// The request constants are c_ulong on x86_64 and u32-sized on others: the casts are
// same-type here only.
#[allow(clippy::unnecessary_cast)]
async fn tiocsti_and_tioclinux_denied_by_request() {
    let _d = common::deadline("tiocsti_and_tioclinux_denied_by_request", 60);
    let sti = libc::TIOCSTI as u64;
    let cmds = [
        format!("ioctl tiocsti {sti:#x}"),
        format!("ioctl tiocsti_high {:#x}", (1u64 << 40) | sti),
        format!("ioctl tioclinux {:#x}", libc::TIOCLINUX as u64),
        format!("ioctl tiocgwinsz {:#x}", libc::TIOCGWINSZ as u64),
    ];
    for setup in [Setup::Defaults, Setup::HostRoot] {
        let (r, out) = run(&mut probes(setup, &cmds)).await;
        for name in ["tiocsti", "tiocsti_high", "tioclinux"] {
            assert_eq!(get(&r, name), "ERR EPERM", "{setup:?} {name}: {out}");
        }
        assert_eq!(get(&r, "tiocgwinsz"), "ERR ENOTTY", "{setup:?}: {out}");
    }
    let mut b = probes(Setup::HostRoot, &cmds);
    b.seccomp(Seccomp::default_profile().allow(libc::SYS_ioctl));
    let (r, out) = run(&mut b).await;
    for name in ["tiocsti", "tiocsti_high", "tioclinux", "tiocgwinsz"] {
        assert_eq!(get(&r, name), "ERR ENOTTY", "{name}: {out}");
    }
}

/// CVE-2017-5226 with the new session switched off, so the seccomp rule is the layer
/// under test: the supervisor (the `cellblock_run` example) runs in a terminal (python's
/// `pty.fork`, whose master the harness reads: injected input shows up there) and the
/// workload keeps that terminal as its controlling terminal. The filter alone refuses
/// TIOCSTI; with the filter off as well, the keystrokes arrive. (Identity plays no part:
/// the kernel lets any process type into its own controlling terminal, whatever its uid,
/// while `dev.tty.legacy_tiocsti` is 1.)
#[tokio::test(flavor = "multi_thread")]
async fn tiocsti_into_the_supervisors_terminal_filter_alone() {
    let _d = common::deadline("tiocsti_into_the_supervisors_terminal_filter_alone", 90);
    let runner = common::example("cellblock_run");
    let harness = common::PTY_HARNESS;
    let marker = "echo_TYPED_BY_THE_CONTAINER";
    let go = |extra: &[&str]| {
        let out = std::process::Command::new("python3")
            .args(["-c", harness])
            .arg(&runner)
            .args(["--ns", "uts,ipc,pid,mount,net"])
            .args(extra)
            .arg("--")
            .arg(probe())
            .args(["tiocsti", marker])
            .output()
            .expect("python3 (needed for the terminal harness)");
        let err = String::from_utf8_lossy(&out.stderr);
        if !err.is_empty() {
            eprintln!("harness stderr: {err}");
        }
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    // With legacy_tiocsti = 0 the kernel wants CAP_SYS_ADMIN for TIOCSTI at all: then
    // every run keeps the capabilities, so the filter stays the only difference.
    let legacy = std::fs::read_to_string("/proc/sys/dev/tty/legacy_tiocsti").unwrap_or_default();
    let caps: &[&str] = if legacy.trim() == "0" {
        &["--keep-all-caps"]
    } else {
        &[]
    };

    let out = go(&[caps, &["--no-new-session"]].concat());
    assert_eq!(
        get(&common::results_in(&out), "tiocsti"),
        "ERR EPERM",
        "{out}"
    );
    assert!(!out.contains(marker), "nothing was typed: {out}");

    let out = go(&[caps, &["--no-new-session", "--no-seccomp"]].concat());
    assert_eq!(
        get(&common::results_in(&out), "tiocsti"),
        "OK injected",
        "{out}"
    );
    assert!(
        out.contains(marker),
        "the keystrokes reached the terminal: {out}"
    );
}

/// `Seccomp::disabled().deny(nr)` installs a filter denying `nr` (it used to be ignored:
/// no filter at all), and only `nr`: AF_VSOCK, which the default profile refuses, is
/// allowed there. The control, `disabled()` alone, lets the same call through.
#[tokio::test(flavor = "multi_thread")]
async fn disabled_profile_deny_takes_effect() {
    let _d = common::deadline("disabled_profile_deny_takes_effect", 60);
    host_has_vsock();
    let cmds = [
        format!("socket inet {} {STREAM}", libc::AF_INET),
        format!("socket vsock {VSOCK} {STREAM}"),
    ];
    let mut b = probes(Setup::HostRoot, &cmds);
    b.seccomp(Seccomp::disabled().deny(libc::SYS_socket));
    let (r, out) = run(&mut b).await;
    assert_eq!(get(&r, "inet"), "ERR EPERM", "{out}");
    assert_eq!(get(&r, "vsock"), "ERR EPERM", "{out}");

    let mut b = probes(Setup::HostRoot, &cmds);
    b.seccomp(Seccomp::disabled().deny(libc::SYS_socketpair));
    let (r, out) = run(&mut b).await;
    assert_eq!(get(&r, "inet"), "OK created", "{out}");
    assert_eq!(get(&r, "vsock"), "OK created", "only the named call: {out}");

    let mut b = probes(Setup::HostRoot, &cmds);
    b.seccomp(Seccomp::disabled());
    let (r, out) = run(&mut b).await;
    assert_eq!(get(&r, "inet"), "OK created", "{out}");
}
