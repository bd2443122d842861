//! The escape suite: nine ways out of a container, each tried inside a container with the
//! default security settings (where it must fail) and again with the protection that
//! stops it switched off (where it must work, so that each test can fail for real).
//!
//! The attacker is `tests/escape/attack.c`, compiled once per run with the system `cc`.
//! It prints `RESULT <attempt> OK <detail>` or `RESULT <attempt> ERR <ERRNO>`.
//!
//! The containers here run on the host's root filesystem in new namespaces; where an attempt
//! needs something hidden from the container, the test hides it with a masked path
//! (`mask_path`), so that the only way to it is the escape being tried. Since issue 11 every
//! container also has the default identity (a user namespace over a block of unprivileged
//! host ids, `escape_identity.rs`), a further layer that stops several of these attempts on
//! its own. So where it matters a test checks the layer it is about alone, with
//! `host_root()` (the container's root is host uid 0), and its control switches off that
//! layer *and* the identity.

use crate::common;

use std::collections::HashMap;
use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::sync::OnceLock;

use cellblock::{Container, ContainerBuilder, Namespaces, Seccomp, Stdio};

/// The compiled attacker (built once per test binary).
fn attack() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| common::compile_probe("attack"))
}

/// A scratch directory for one test, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let p = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("escape-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Scratch(p)
    }
    fn path(&self, rel: &str) -> PathBuf {
        self.0.join(rel)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A builder running the attacker with `args` in the default container.
fn attacker(args: &[&str]) -> ContainerBuilder {
    let mut b = Container::builder(attack());
    b.args(args).namespaces(common::default_ns());
    b
}

/// Runs `b` to completion; returns the attacker's results and the exit status.
async fn run(b: &mut ContainerBuilder) -> (HashMap<String, String>, ExitStatus, String) {
    let out = b.output().await.expect("the container starts");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    if !stderr.is_empty() {
        eprintln!("container stderr: {stderr}");
    }
    (common::results_in(&stdout), out.status, stdout)
}

fn get<'a>(r: &'a HashMap<String, String>, name: &str) -> &'a str {
    r.get(name)
        .map(String::as_str)
        .unwrap_or_else(|| panic!("no result for {name} in {r:?}"))
}

/// Opens `path` as the supervisor would leak it: *without* close-on-exec.
fn leak_open(path: &Path, flags: i32) -> OwnedFd {
    let c = CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: valid C string; a fresh descriptor owned by the returned OwnedFd.
    let fd = unsafe { libc::open(c.as_ptr(), flags) };
    assert!(fd >= 0, "open {}", path.display());
    unsafe { OwnedFd::from_raw_fd(fd) }
}

fn is_cloexec(fd: &OwnedFd) -> bool {
    // SAFETY: F_GETFD on a descriptor we own.
    unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFD) & libc::FD_CLOEXEC != 0 }
}

/// A host "secret": `dir/secret/flag.txt`, with `dir/secret` to be masked in containers.
fn host_secret(s: &Scratch) -> (PathBuf, String) {
    let dir = s.path("secret");
    std::fs::create_dir_all(&dir).unwrap();
    let flag = format!("host-secret-{}", std::process::id());
    std::fs::write(dir.join("flag.txt"), &flag).unwrap();
    (dir, flag)
}

// 1. --------------------------------------------------------------------------------------

/// CVE-2024-21626 pattern: a directory descriptor the supervisor leaked (no O_CLOEXEC)
/// reaches host files the container's mount namespace hides.
#[tokio::test(flavor = "multi_thread")]
async fn escape_1_leaked_directory_fd() {
    let s = Scratch::new("fdleak");
    let (secret, flag) = host_secret(&s);
    let leaked = leak_open(&secret, libc::O_RDONLY | libc::O_DIRECTORY);
    assert!(!is_cloexec(&leaked));
    let n = leaked.as_raw_fd().to_string();

    // Default: the path is masked, and the leaked descriptor is closed at execve.
    let (r, _, _) = run(
        attacker(&["fdleak", "-100", secret.join("flag.txt").to_str().unwrap()]).mask_path(&secret),
    )
    .await;
    assert!(
        get(&r, "fdleak").starts_with("ERR"),
        "the masked path is hidden: {r:?}"
    );
    let (r, _, _) = run(attacker(&["fdleak", &n, "flag.txt"]).mask_path(&secret)).await;
    assert_eq!(
        get(&r, "fdleak"),
        "ERR EBADF",
        "the leaked fd must be closed"
    );

    // Protection off: the descriptor is inherited and reads the hidden host file.
    let (r, _, _) = run(attacker(&["fdleak", &n, "flag.txt"])
        .mask_path(&secret)
        .inherit_fds(true))
    .await;
    assert_eq!(get(&r, "fdleak"), format!("OK {flag}"));

    // The allow-list: passing it on purpose works the same way.
    let dup = leaked.try_clone().unwrap();
    let (r, _, _) = run(attacker(&["fdleak", "7", "flag.txt"])
        .mask_path(&secret)
        .pass_fd(dup, 7))
    .await;
    assert_eq!(get(&r, "fdleak"), format!("OK {flag}"));
}

// 2. --------------------------------------------------------------------------------------

/// CVE-2019-5736 pattern: a handle on the runtime's binary through /proc/<pid>/exe,
/// reopened for writing once the runtime has exited. The "runtime" is a root process with
/// full capabilities running a copy of `sleep` from a directory the container cannot see.
#[tokio::test(flavor = "multi_thread")]
async fn escape_2_runtime_binary_through_proc_exe() {
    let s = Scratch::new("exe");
    let dir = s.path("runtime");
    std::fs::create_dir_all(&dir).unwrap();
    let bin = dir.join("runtime");
    std::fs::copy("/bin/sleep", &bin).unwrap();
    let original = std::fs::read(&bin).unwrap();
    let mut runtime = common::spawn_retrying(std::process::Command::new(&bin).arg("60"));
    let pid = runtime.id().to_string();

    // Default container: the runtime is outside its PID namespace.
    let (r, _, _) = run(attacker(&["exe", &pid]).mask_path(&dir)).await;
    assert_eq!(get(&r, "exe"), "ERR ENOENT");
    // Default security even without a PID namespace: no capabilities, so the kernel's
    // ptrace access check refuses /proc/<pid>/exe of the (more privileged) runtime.
    let (r, _, _) = run(attacker(&["exe", &pid])
        .namespaces(Namespaces::MOUNT)
        .mask_path(&dir))
    .await;
    assert_eq!(get(&r, "exe"), "ERR EACCES");
    assert!(
        runtime.try_wait().unwrap().is_none(),
        "the runtime is untouched"
    );
    assert_eq!(std::fs::read(&bin).unwrap(), original);

    // And the container's own /proc/self/exe is its program, never the supervisor's.
    // (init(false): the workload itself is then the container's first process; with the
    // built-in init that is the init, exec'd from a memfd, checked below.)
    let mut c = Container::builder("/bin/sleep")
        .arg("30")
        .namespaces(common::default_ns())
        .init(false)
        .spawn()
        .await
        .unwrap();
    let exe = std::fs::read_link(format!("/proc/{}/exe", c.pid())).unwrap();
    assert_eq!(exe, std::fs::canonicalize("/bin/sleep").unwrap());
    assert_ne!(exe, std::env::current_exe().unwrap());
    c.start_kill().unwrap();
    c.wait().await.unwrap();
    // With the built-in init, PID 1 runs the init from a sealed memfd: not the supervisor.
    let mut c = Container::builder("/bin/sleep")
        .arg("30")
        .namespaces(common::default_ns())
        .spawn()
        .await
        .unwrap();
    let exe = std::fs::read_link(format!("/proc/{}/exe", c.pid())).unwrap();
    assert!(
        exe.to_string_lossy().starts_with("/memfd:cellblock-init"),
        "{}",
        exe.display()
    );
    assert_ne!(exe, std::env::current_exe().unwrap());
    c.start_kill().unwrap();
    c.wait().await.unwrap();

    // Protection off (no PID namespace, capabilities kept, and host_root(): the default
    // identity, escape_identity.rs, is a further layer): the binary is overwritten.
    let (r, _, out) = run(attacker(&["exe", &pid])
        .namespaces(Namespaces::MOUNT)
        .mask_path(&dir)
        .keep_all_capabilities()
        .host_root())
    .await;
    let _ = runtime.wait();
    assert_eq!(get(&r, "exe"), "OK wrote", "{out}");
    assert_eq!(&std::fs::read(&bin).unwrap()[..5], b"PWNED");
}

// 3. --------------------------------------------------------------------------------------

/// CVE-2017-5226: TIOCSTI pushes keystrokes into the supervisor's terminal. The
/// supervisor here is the `cellblock_run` example started by python's `pty.fork` (so its
/// controlling terminal is a pty whose master the harness reads: injected input is echoed
/// there).
#[tokio::test(flavor = "multi_thread")]
async fn escape_3_tiocsti_into_the_terminal() {
    let runner = common::example("cellblock_run");
    let harness = common::PTY_HARNESS;
    let marker = "echo_INJECTED_BY_CONTAINER";
    let go = |extra: &[&str]| {
        let mut cmd = std::process::Command::new("python3");
        cmd.args(["-c", harness])
            .arg(&runner)
            .args(["--ns", "uts,ipc,pid,mount,net"]);
        cmd.args(extra)
            .arg("--")
            .arg(attack())
            .args(["tiocsti", marker]);
        let out = cmd.output().expect("python3");
        let err = String::from_utf8_lossy(&out.stderr);
        if !err.is_empty() {
            eprintln!("harness stderr: {err}");
        }
        String::from_utf8_lossy(&out.stdout).into_owned()
    };

    let out = go(&[]);
    let r = common::results_in(&out);
    assert_eq!(get(&r, "tiocsti"), "ERR EPERM", "{out}");
    assert!(!out.contains(marker), "nothing was injected: {out}");

    let legacy = std::fs::read_to_string("/proc/sys/dev/tty/legacy_tiocsti").unwrap_or_default();
    if legacy.trim() == "0" {
        eprintln!("dev.tty.legacy_tiocsti = 0: TIOCSTI needs CAP_SYS_ADMIN on this kernel; checking the opt-out with capabilities kept");
    }
    // The seccomp filter also refuses TIOCSTI (tests/escape/escape_seccomp.rs): off too here.
    let extra: &[&str] = if legacy.trim() == "0" {
        &["--no-new-session", "--no-seccomp", "--keep-all-caps"]
    } else {
        &["--no-new-session", "--no-seccomp"]
    };
    let out = go(extra);
    let r = common::results_in(&out);
    assert_eq!(get(&r, "tiocsti"), "OK injected", "{out}");
    assert!(
        out.contains(marker),
        "the injected text reached the terminal: {out}"
    );
}

// 4. --------------------------------------------------------------------------------------

/// mount, umount, pivot_root and chroot after setup; open_by_handle_at ("shocker") to a
/// host file hidden from the container.
#[tokio::test(flavor = "multi_thread")]
async fn escape_4_mount_pivot_chroot_open_by_handle() {
    let s = Scratch::new("mount");
    let (secret, flag) = host_secret(&s);
    let handle = std::process::Command::new(attack())
        .args(["gethandle", secret.join("flag.txt").to_str().unwrap()])
        .output()
        .unwrap();
    let handle = String::from_utf8(handle.stdout).unwrap();
    let (htype, hex) = handle.trim().split_once(' ').expect("a file handle");
    let on_fs = attack().parent().unwrap().to_str().unwrap().to_string();
    let script = format!(
        "A={a}; $A mount /mnt; $A umount /proc/sys; $A chroot /; $A byhandle {on_fs} {htype} {hex}; $A pivot_root /mnt",
        a = attack().display()
    );
    let host_mnt_before = common::host_mount_points()
        .iter()
        .filter(|m| m.starts_with("/mnt"))
        .count();
    let shell = |b: &mut ContainerBuilder| {
        b.args(["-c", &script])
            .namespaces(common::default_ns())
            .mask_path(&secret);
    };

    let mut b = Container::builder("/bin/sh");
    shell(&mut b);
    let (r, _, out) = run(&mut b).await;
    for name in [
        "mount",
        "umount",
        "chroot",
        "open_by_handle_at",
        "pivot_root",
    ] {
        assert_eq!(get(&r, name), "ERR EPERM", "{name}: {out}");
    }

    // The capability and seccomp layers alone (host_root(): the container's root is host
    // uid 0, without the default identity's user namespace): the same.
    let mut b = Container::builder("/bin/sh");
    shell(&mut b);
    b.host_root();
    let (r, _, out) = run(&mut b).await;
    for name in [
        "mount",
        "umount",
        "chroot",
        "open_by_handle_at",
        "pivot_root",
    ] {
        assert_eq!(get(&r, name), "ERR EPERM", "host_root, {name}: {out}");
    }

    let mut b = Container::builder("/bin/sh");
    shell(&mut b);
    b.keep_all_capabilities()
        .seccomp(Seccomp::disabled())
        .host_root();
    let (r, _, out) = run(&mut b).await;
    for name in ["mount", "umount", "chroot", "pivot_root"] {
        assert!(get(&r, name).starts_with("OK"), "{name}: {out}");
    }
    assert_eq!(get(&r, "open_by_handle_at"), format!("OK {flag}"), "{out}");
    // Even then the mounts stayed in the container's mount namespace.
    let host_mnt_after = common::host_mount_points()
        .iter()
        .filter(|m| m.starts_with("/mnt"))
        .count();
    assert_eq!(host_mnt_before, host_mnt_after);
}

// 5. --------------------------------------------------------------------------------------

/// ptrace, kill and /proc/<pid>/environ of a process outside the container.
#[tokio::test(flavor = "multi_thread")]
async fn escape_5_ptrace_kill_proc_of_outside_processes() {
    let mut victim = std::process::Command::new("/bin/sleep")
        .arg("60")
        .env("VICTIM_SECRET", "x")
        .spawn()
        .unwrap();
    let pid = victim.id().to_string();
    let script = |a: &str| {
        format!(
            "A={}; $A ptrace {a}; $A environ {a}; $A kill {a}",
            attack().display()
        )
    };

    // Default container: the victim does not exist in its PID namespace.
    let (r, _, out) = run(Container::builder("/bin/sh")
        .args(["-c", &script(&pid)])
        .namespaces(common::default_ns()))
    .await;
    assert_eq!(get(&r, "ptrace"), "ERR ESRCH", "{out}");
    assert_eq!(get(&r, "environ"), "ERR ENOENT", "{out}");
    assert_eq!(get(&r, "kill"), "ERR ESRCH", "{out}");
    assert!(victim.try_wait().unwrap().is_none(), "the victim lives");

    // Default security without a PID namespace: capabilities alone stop ptrace and the
    // /proc reads (the victim holds capabilities we lack). kill is not tried: root may
    // signal root, which only a PID (or user) namespace prevents.
    let (r, _, out) = run(Container::builder("/bin/sh")
        .args([
            "-c",
            &format!(
                "A={}; $A ptrace {pid}; $A environ {pid}",
                attack().display()
            ),
        ])
        .namespaces(Namespaces::MOUNT | Namespaces::UTS))
    .await;
    assert_eq!(get(&r, "ptrace"), "ERR EPERM", "{out}");
    assert_eq!(get(&r, "environ"), "ERR EACCES", "{out}");
    assert!(victim.try_wait().unwrap().is_none(), "the victim lives");

    // The capability layer alone (host_root(): no user namespace of the default identity,
    // which would stop all three too): ptrace and the /proc read still fail.
    let (r, _, out) = run(Container::builder("/bin/sh")
        .args([
            "-c",
            &format!(
                "A={}; $A ptrace {pid}; $A environ {pid}",
                attack().display()
            ),
        ])
        .namespaces(Namespaces::MOUNT | Namespaces::UTS)
        .host_root())
    .await;
    assert_eq!(get(&r, "ptrace"), "ERR EPERM", "{out}");
    assert_eq!(get(&r, "environ"), "ERR EACCES", "{out}");

    // Protection off: all three work.
    let (r, _, out) = run(Container::builder("/bin/sh")
        .args(["-c", &script(&pid)])
        .namespaces(Namespaces::MOUNT | Namespaces::UTS)
        .keep_all_capabilities()
        .host_root())
    .await;
    assert!(get(&r, "ptrace").starts_with("OK"), "{out}");
    assert_eq!(get(&r, "environ"), "OK read", "{out}");
    assert!(get(&r, "kill").starts_with("OK"), "{out}");
    let st = victim.wait().unwrap();
    assert_eq!(
        st.signal(),
        Some(libc::SIGKILL),
        "the host sees the victim killed"
    );
}

// 6. --------------------------------------------------------------------------------------

/// Regaining privileges at execve: through a setuid-root binary, or by keeping
/// capabilities across execve. In the core the workload runs as uid 0, for which every
/// execve is a "setuid-root" exec: the kernel grants it its bounding set again unless the
/// bounding set is empty or no_new_privs is set.
#[tokio::test(flavor = "multi_thread")]
async fn escape_6_setuid_and_capabilities_across_execve() {
    let s = Scratch::new("suid");
    let suid = s.path("suid-attack");
    std::fs::copy(attack(), &suid).unwrap();
    std::fs::set_permissions(&suid, std::fs::Permissions::from_mode(0o4755)).unwrap();
    let suid = suid.to_str().unwrap();

    let both = |b: &mut ContainerBuilder| {
        let script = format!("A={}; $A capeff; $A regain {suid}", attack().display());
        b.args(["-c", &script]).namespaces(common::default_ns());
    };

    // Default: nothing survives execve, and the setuid exec regains nothing.
    let mut b = Container::builder("/bin/sh");
    both(&mut b);
    let (r, _, out) = run(&mut b).await;
    assert_eq!(get(&r, "capeff"), "OK 0", "{out}");
    assert_eq!(
        out.matches("RESULT capeff OK 0").count(),
        2,
        "after the setuid exec too: {out}"
    );

    // Each layer alone holds: empty bounding set (no_new_privs off) ...
    let mut b = Container::builder("/bin/sh");
    both(&mut b);
    b.no_new_privs(false);
    let (_, _, out) = run(&mut b).await;
    assert_eq!(out.matches("RESULT capeff OK 0").count(), 2, "{out}");
    // ... and no_new_privs (capabilities otherwise kept, the attacker drops its own).
    let mut b = Container::builder("/bin/sh");
    b.args(["-c", &format!("{} regain {suid}", attack().display())])
        .namespaces(common::default_ns())
        .keep_all_capabilities();
    let (r, _, out) = run(&mut b).await;
    assert_eq!(
        get(&r, "capeff"),
        "OK 0",
        "no_new_privs blocks the regain: {out}"
    );

    // Protection off: capabilities survive execve, and a dropped set comes back at the
    // setuid exec.
    let mut b = Container::builder("/bin/sh");
    both(&mut b);
    b.keep_all_capabilities().no_new_privs(false);
    let (_, _, out) = run(&mut b).await;
    let caps: Vec<&str> = out
        .lines()
        .filter_map(|l| l.strip_prefix("RESULT capeff OK "))
        .collect();
    assert_eq!(caps.len(), 2, "{out}");
    assert!(caps.iter().all(|c| *c != "0"), "kept, then regained: {out}");
}

// 7. --------------------------------------------------------------------------------------

/// The host network namespace through /proc/1/ns/net, or through an inherited socket.
#[tokio::test(flavor = "multi_thread")]
async fn escape_7_host_network_namespace() {
    use std::os::unix::fs::MetadataExt;
    // The host's network namespace, as the supervisor's (the test's) own: on this
    // sandboxed machine even root may not read /proc/1/ns of the real init.
    let host_netns = std::fs::metadata("/proc/self/ns/net").unwrap().ino();
    let host_path = format!("/proc/{}/ns/net", std::process::id());

    // Default container: /proc/1 is the container's own init, and setns is refused
    // (EPERM), or, the init being non-dumpable, opening its namespace link already is
    // (EACCES); the supervisor is not visible at all.
    let (r, _, out) = run(&mut attacker(&["setns", "/proc/1/ns/net"])).await;
    assert!(
        matches!(get(&r, "setns"), "ERR EPERM" | "ERR EACCES"),
        "{out}"
    );
    let (r, _, _) = run(&mut attacker(&["setns", &host_path])).await;
    assert_eq!(
        get(&r, "setns"),
        "ERR ENOENT",
        "the supervisor is not visible"
    );
    // Default security without a PID namespace: the host's processes are visible but
    // their namespace links are not ours to open.
    let (r, _, out) =
        run(attacker(&["setns", &host_path]).namespaces(Namespaces::MOUNT | Namespaces::NET)).await;
    assert_eq!(get(&r, "setns"), "ERR EACCES", "{out}");

    let (r, _, out) = run(attacker(&["setns", &host_path])
        .namespaces(Namespaces::MOUNT | Namespaces::NET)
        .host_root())
    .await;
    assert_eq!(get(&r, "setns"), "ERR EACCES", "host_root: {out}");

    // Protection off (and host_root(), without which the default identity's user
    // namespace holds no capability over the host's network namespace): into it.
    let (r, _, out) = run(attacker(&["setns", &host_path])
        .namespaces(Namespaces::MOUNT | Namespaces::NET)
        .keep_all_capabilities()
        .seccomp(Seccomp::disabled())
        .host_root())
    .await;
    assert_eq!(get(&r, "setns"), format!("OK {host_netns}"), "{out}");

    // An inherited socket of the host's network namespace.
    let receiver = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    receiver.set_nonblocking(true).unwrap();
    let port = receiver.local_addr().unwrap().port().to_string();
    // SAFETY: plain socket(2); the OwnedFd closes it.
    let sock = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM, 0) };
    assert!(sock >= 0);
    let sock = unsafe { OwnedFd::from_raw_fd(sock) };
    let n = sock.as_raw_fd().to_string();
    let mut buf = [0u8; 16];

    let (r, _, _) = run(&mut attacker(&["socket", &n, &port])).await;
    assert_eq!(get(&r, "socket"), "ERR EBADF");
    assert!(receiver.recv(&mut buf).is_err(), "nothing reached the host");

    let (r, _, _) = run(attacker(&["socket", &n, &port]).inherit_fds(true)).await;
    assert_eq!(get(&r, "socket"), "OK sent");
    let got = common::eventually(5, || receiver.recv(&mut buf).is_ok()).await;
    assert!(got && &buf[..7] == b"escaped", "the host received it");
}

// 8. --------------------------------------------------------------------------------------

/// keyctl, bpf, perf_event_open, userfaultfd: EPERM from seccomp.
#[tokio::test(flavor = "multi_thread")]
async fn escape_8_seccomp_denied_calls() {
    let calls = ["keyctl", "bpf", "perf_event_open", "userfaultfd"];
    let script = calls
        .iter()
        .map(|c| format!("{} {c}", attack().display()))
        .collect::<Vec<_>>()
        .join("; ");
    let sh = |b: &mut ContainerBuilder| {
        b.args(["-c", &script]).namespaces(common::default_ns());
    };

    let mut b = Container::builder("/bin/sh");
    sh(&mut b);
    let (r, _, out) = run(&mut b).await;
    for c in calls {
        assert_eq!(get(&r, c), "ERR EPERM", "{c}: {out}");
    }

    // Without the filter but with capabilities still dropped, the two calls that need
    // no privilege go through: it is seccomp that stopped them.
    let mut b = Container::builder("/bin/sh");
    sh(&mut b);
    b.seccomp(Seccomp::disabled());
    let (r, _, out) = run(&mut b).await;
    assert!(get(&r, "keyctl").starts_with("OK"), "{out}");
    assert!(get(&r, "userfaultfd").starts_with("OK"), "{out}");

    // Protection off entirely (host_root(): bpf and perf_event_open need capabilities of
    // the host's user namespace, which the default identity never has): all four work.
    let mut b = Container::builder("/bin/sh");
    sh(&mut b);
    b.seccomp(Seccomp::disabled())
        .keep_all_capabilities()
        .host_root();
    let (r, _, out) = run(&mut b).await;
    for c in calls {
        assert!(get(&r, c).starts_with("OK"), "{c}: {out}");
    }

    // The filter's own guards: the x32 aliases of system calls (a deny list keyed on
    // native numbers would miss them) and clone3 (ENOSYS, so libc falls back to clone,
    // whose namespace flags the filter can check).
    let (r, _, out) = run(Container::builder("/bin/sh")
        .args([
            "-c",
            &format!("A={}; $A x32; $A clone3", attack().display()),
        ])
        .namespaces(common::default_ns()))
    .await;
    assert_eq!(get(&r, "x32"), "ERR EPERM", "{out}");
    assert_eq!(get(&r, "clone3"), "ERR ENOSYS", "{out}");
    let (r, _, out) = run(Container::builder("/bin/sh")
        .args([
            "-c",
            &format!("A={}; $A x32; $A clone3", attack().display()),
        ])
        .namespaces(common::default_ns())
        .seccomp(Seccomp::disabled()))
    .await;
    assert_ne!(get(&r, "x32"), "ERR EPERM", "{out}");
    assert_ne!(
        get(&r, "clone3"),
        "ERR ENOSYS",
        "the kernel saw the call: {out}"
    );

    // The policy can also allow one back.
    let (r, _, out) =
        run(attacker(&["keyctl"]).seccomp(Seccomp::default_profile().allow(libc::SYS_keyctl)))
            .await;
    assert!(get(&r, "keyctl").starts_with("OK"), "{out}");
}

// 9. --------------------------------------------------------------------------------------

/// Loading a kernel module, kexec, reboot. (Module and kexec calls use invalid arguments:
/// with the protection off the kernel accepts the caller and rejects the arguments, or
/// reports ENOSYS where it was built without the feature, as on this test machine; the
/// point is that the errno is no longer EPERM.)
#[tokio::test(flavor = "multi_thread")]
async fn escape_9_module_kexec_reboot() {
    let script = format!("A={}; $A finit_module; $A kexec_load", attack().display());
    let mut b = Container::builder("/bin/sh");
    b.args(["-c", &script]).namespaces(common::default_ns());
    let (r, _, out) = run(&mut b).await;
    for c in ["finit_module", "kexec_load"] {
        assert_eq!(get(&r, c), "ERR EPERM", "{c}: {out}");
    }
    // reboot as the container's PID 1 (the attacker refuses to call it otherwise).
    // (init(false): the attacker must be the container's PID 1 itself.)
    let (r, status, out) = run(attacker(&["reboot"]).init(false)).await;
    assert_eq!(get(&r, "reboot"), "ERR EPERM", "{out}");
    assert!(status.success(), "the container lived on: {status:?}");

    // Protection off. reboot() in a PID namespace kills only that namespace (the attacker
    // refuses to call it unless it is PID 1 of one, and the container has Namespaces::PID).
    let mut b = Container::builder("/bin/sh");
    b.args([
        "-c",
        &format!("A={}; $A finit_module; $A kexec_load", attack().display()),
    ])
    .namespaces(common::default_ns())
    .keep_all_capabilities()
    .seccomp(Seccomp::disabled());
    let (r, _, out) = run(&mut b).await;
    for c in ["finit_module", "kexec_load"] {
        let v = get(&r, c);
        assert_ne!(v, "ERR EPERM", "{c}: {out}");
        if v == "ERR ENOSYS" {
            eprintln!("{c}: this kernel has no support for it (ENOSYS); seccomp's EPERM above is still the default's answer");
        }
    }
    assert!(common::default_ns().contains(Namespaces::PID));
    let mut b = attacker(&["reboot"]);
    b.init(false);
    b.keep_all_capabilities()
        .seccomp(Seccomp::disabled())
        .stdout(Stdio::piped());
    let (r, status, out) = run(&mut b).await;
    assert!(
        !r.contains_key("reboot"),
        "reboot() does not return when it works: {out}"
    );
    assert_eq!(
        status.signal(),
        Some(libc::SIGHUP),
        "the namespace's init died of the 'restart'"
    );
}
