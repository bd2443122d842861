//! The hardening defaults and their opt-outs, observed from both sides: the host reads the
//! container's /proc/<pid>/{status,stat,fd,mountinfo}; the workload reports what it sees.
//! (The escape attempts themselves are in tests/escape/escape.rs.)

use crate::common;

use std::collections::{BTreeSet, HashMap};
use std::io::Read;
use std::os::fd::OwnedFd;

use cellblock::{Capability, Container, Error, NamespaceIds, Namespaces, Seccomp, Stdio};

/// `Name:\tvalue` lines of /proc/<pid>/status.
fn status_of(pid: i32) -> HashMap<String, String> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_string(), v.trim().to_string()))
        .collect()
}

/// The session id (field 6 of /proc/<pid>/stat).
fn session_of(pid: i32) -> i32 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let rest = stat.rsplit_once(')').unwrap().1;
    rest.split_whitespace().nth(3).unwrap().parse().unwrap()
}

fn fds_of(pid: i32) -> BTreeSet<i32> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_string_lossy().parse().ok())
        .collect()
}

/// Whether the process is blocked in clock_nanosleep (glibc's nanosleep; /proc/<pid>/syscall).
fn in_sleep_call(pid: i32) -> bool {
    let nr = std::fs::read_to_string(format!("/proc/{pid}/syscall")).unwrap_or_default();
    let nr: i64 = nr
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(-1);
    nr == libc::SYS_clock_nanosleep
}

/// Mount point -> options, from /proc/<pid>/mountinfo (the last mount on a point wins).
fn mounts_of(pid: &str) -> HashMap<String, String> {
    std::fs::read_to_string(format!("/proc/{pid}/mountinfo"))
        .unwrap()
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let fstype = l
                .split(" - ")
                .nth(1)
                .and_then(|r| r.split_whitespace().next())
                .unwrap_or("");
            (f[4].to_string(), format!("{} {fstype}", f[5]))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn defaults_seen_from_the_host() {
    let host_mounts_before = common::host_mount_points();
    let mut c = Container::builder("/bin/sleep")
        .arg("30")
        .namespaces(common::default_ns())
        .spawn()
        .await
        .unwrap();
    let pid = c.pid();
    // With a PID namespace, c.pid() is the built-in init (in a session of its own) and the
    // workload is its child: both are hardened; the workload holds nothing but stdio.
    let workload = {
        let mut w = None;
        for _ in 0..200 {
            // Once the program runs (before that it is the init's fork, holding the init's
            // descriptors). /proc/<pid>/exe names sleep while execve is still closing the
            // close-on-exec descriptors, so wait until it is blocked in its sleep call.
            if let Some(&k) = common::children_of(pid).first() {
                if std::fs::read_link(format!("/proc/{k}/exe")).is_ok_and(|e| e.ends_with("sleep"))
                    && in_sleep_call(k)
                {
                    w = Some(k);
                    break;
                }
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        w.expect("the init started the workload")
    };
    for p in [pid, workload] {
        let st = status_of(p);
        for set in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
            assert_eq!(st[set], "0000000000000000", "{set} of {p}");
        }
        assert_eq!(st["NoNewPrivs"], "1");
        assert_eq!(st["Seccomp"], "2", "a filter is installed");
    }
    assert_eq!(session_of(pid), pid, "leader of a session of its own");
    assert_eq!(
        session_of(workload),
        pid,
        "the workload is in the container's session"
    );
    assert_eq!(
        fds_of(workload),
        BTreeSet::from([0, 1, 2]),
        "nothing but stdio"
    );
    let m = mounts_of(&pid.to_string());
    assert!(m["/proc/sys"].starts_with("ro,"), "{:?}", m["/proc/sys"]);
    assert!(
        m["/sys/firmware"].ends_with("tmpfs"),
        "{:?}",
        m.get("/sys/firmware")
    );
    c.start_kill().unwrap();
    c.wait().await.unwrap();
    assert_eq!(
        common::host_mount_points(),
        host_mounts_before,
        "no mount reached the host"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn defaults_seen_from_inside() {
    let out = Container::builder("/bin/sh")
        .args([
            "-c",
            "umask; ls /proc/self/fd | tr '\\n' ' '; echo; \
             echo x > /proc/sys/kernel/domainname || echo ro; \
             cat /proc/timer_list 2>/dev/null | wc -c; \
             ls -A /sys/firmware | wc -l",
        ])
        .namespaces(common::default_ns())
        .output()
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "0022", "{text}");
    // ls holds one descriptor of its own on /proc/self/fd.
    let fds: BTreeSet<i32> = lines[1]
        .split_whitespace()
        .map(|f| f.parse().unwrap())
        .collect();
    assert!(
        fds.len() == 4 && fds.is_superset(&BTreeSet::from([0, 1, 2])),
        "{text}"
    );
    assert_eq!(lines[2], "ro", "/proc/sys is read-only: {text}");
    assert_eq!(lines[3], "0", "timer_list reads as /dev/null: {text}");
    assert_eq!(lines[4], "0", "/sys/firmware is empty: {text}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("Read-only file system"));
    // Controls: on the host both have something to hide.
    assert!(
        !std::fs::read_to_string("/proc/timer_list")
            .unwrap_or_default()
            .is_empty(),
        "the host's /proc/timer_list is empty or missing: the check above cannot fail"
    );
    assert!(
        std::fs::read_dir("/sys/firmware").is_ok_and(|mut d| d.next().is_some()),
        "the host's /sys/firmware is empty or missing: the check above cannot fail"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn opt_outs_seen_from_the_host() {
    let me = status_of(std::process::id() as i32);
    // host_root(): these opt-outs are compared with the supervisor's own sets, which only a
    // container without the default identity's user namespace shares (in a user namespace
    // of its own, "all capabilities" is every capability, over that namespace only).
    let mut c = Container::builder("/bin/sleep")
        .arg("30")
        .namespaces(common::default_ns())
        .host_root()
        .keep_all_capabilities()
        .no_new_privs(false)
        .new_session(false)
        .masked_paths(false)
        .spawn()
        .await
        .unwrap();
    let st = status_of(c.pid());
    assert_eq!(st["CapBnd"], me["CapBnd"]);
    assert_eq!(st["CapEff"], me["CapEff"]);
    assert_eq!(st["NoNewPrivs"], "0");
    assert_eq!(
        st["Seccomp"], "2",
        "the filter still went in (before the capability drop)"
    );
    assert_eq!(session_of(c.pid()), session_of(std::process::id() as i32));
    let m = mounts_of(&c.pid().to_string());
    assert!(!m.contains_key("/sys/firmware") || !m["/sys/firmware"].ends_with("tmpfs"));
    c.start_kill().unwrap();
    c.wait().await.unwrap();

    // no_new_privs off with capabilities dropped: the filter must be installed while
    // CAP_SYS_ADMIN is still there.
    let mut c = Container::builder("/bin/sleep")
        .arg("30")
        .namespaces(common::default_ns())
        .no_new_privs(false)
        .seccomp(Seccomp::default_profile())
        .spawn()
        .await
        .unwrap();
    let st = status_of(c.pid());
    assert_eq!(
        (st["NoNewPrivs"].as_str(), st["Seccomp"].as_str()),
        ("0", "2")
    );
    assert_eq!(st["CapBnd"], "0000000000000000");
    c.start_kill().unwrap();
    c.wait().await.unwrap();

    let mut c = Container::builder("/bin/sleep")
        .arg("30")
        .seccomp(Seccomp::disabled())
        .spawn()
        .await
        .unwrap();
    assert_eq!(status_of(c.pid())["Seccomp"], "0");
    c.start_kill().unwrap();
    c.wait().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn umask_setting() {
    let out = Container::builder("/bin/sh")
        .args(["-c", "umask"])
        .umask(Some(0o077))
        .output()
        .await
        .unwrap();
    assert_eq!(out.stdout, b"0077\n");
}

/// The default umask is `022` whatever the supervisor's own is. The umask is process-wide,
/// so the check runs in a second copy of this test binary started under `umask 000`
/// (not in this process, where parallel tests create files): there a default container
/// reports `0022` and the file it creates is `0644` on the host; the control, `umask(None)`,
/// inherits `0000` and creates a world-writable `0666` file. (Under the usual umask `022`
/// of a test run, a default that applied nothing would look exactly like this one.)
#[tokio::test(flavor = "multi_thread")]
async fn default_umask_overrides_a_permissive_supervisor() {
    use std::os::unix::fs::PermissionsExt;
    // In both processes: the copy fails (and with it this run) rather than hang.
    let _d = common::deadline("default_umask_overrides_a_permissive_supervisor", 120);
    if std::env::var_os("CELLBLOCK_UMASK_PROBE").is_none() {
        let exe = std::env::current_exe().unwrap();
        let out = tokio::process::Command::new("/bin/sh")
            .args(["-c", "umask 000 && exec \"$0\" \"$@\""])
            .arg(&exe)
            .args([
                "--exact",
                &common::test_name(
                    module_path!(),
                    "default_umask_overrides_a_permissive_supervisor",
                ),
                "--nocapture",
            ])
            .env("CELLBLOCK_UMASK_PROBE", "1")
            .output()
            .await
            .unwrap();
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success() && all.contains("1 passed"),
            "the run under umask 000: {all}"
        );
        return;
    }
    // The probe: the premise first, or the checks below could not fail.
    assert_eq!(status_of(std::process::id() as i32)["Umask"], "0000");
    let dir = common::rootfs::TempDir::new("security-umask");
    // World-writable, so that the container's pooled ids may create files in it.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    for (name, inherit, want_umask, want_mode) in [
        ("default", false, "0022", 0o644),
        ("inherited", true, "0000", 0o666),
    ] {
        let file = dir.path().join(name);
        let script = format!("umask; : > {}", file.display());
        let mut b = Container::builder("/bin/sh");
        b.args(["-c", &script]).namespaces(common::default_ns());
        if inherit {
            b.umask(None);
        }
        let out = b.output().await.unwrap();
        assert!(out.status.success(), "{name}: {out:?}");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            want_umask,
            "{name}: the workload's umask"
        );
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, want_mode, "{name}: the file's mode seen by the host");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn capability_keep_list_both_sides() {
    let dir = common::rootfs::TempDir::new("security-chown");
    let file = dir.path().join("f");
    std::fs::write(&file, "x").unwrap();
    let script = format!("chown 1234:1234 {} && echo chowned", file.display());

    // Default: no CAP_CHOWN, the host sees the file unchanged.
    let out = Container::builder("/bin/sh")
        .args(["-c", &script])
        .namespaces(common::default_ns())
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    use std::os::unix::fs::MetadataExt;
    assert_eq!(std::fs::metadata(&file).unwrap().uid(), 0);

    // Kept: in all five sets, and it works.
    let keep = [Capability::CAP_CHOWN, Capability::CAP_NET_BIND_SERVICE];
    let mask = format!("{:016x}", keep.iter().fold(0u64, |m, c| m | c.bitmask()));
    let mut c = Container::builder("/bin/sleep")
        .arg("30")
        .namespaces(common::default_ns())
        .capabilities(keep)
        .spawn()
        .await
        .unwrap();
    let st = status_of(c.pid());
    for set in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
        assert_eq!(st[set], mask, "{set}");
    }
    c.start_kill().unwrap();
    c.wait().await.unwrap();
    // On a host file, as host root (host_root(): the default identity could not chown a
    // host file to host uid 1234, which its user namespace does not map).
    let out = Container::builder("/bin/sh")
        .args(["-c", &script])
        .namespaces(common::default_ns())
        .capabilities(keep)
        .host_root()
        .output()
        .await
        .unwrap();
    assert_eq!(out.stdout, b"chowned\n");
    assert_eq!(std::fs::metadata(&file).unwrap().uid(), 1234);
}

#[tokio::test(flavor = "multi_thread")]
async fn pass_fd_allow_list() {
    let (r, w) = nix::unistd::pipe().unwrap();
    let extra = std::fs::File::open("/dev/null").unwrap();
    let out = Container::builder("/bin/sh")
        .args([
            "-c",
            "echo through-fd-5 >&5; ls /proc/self/fd | tr '\\n' ' '",
        ])
        .namespaces(common::default_ns())
        .pass_fd(w, 5)
        .pass_fd(extra, 100)
        .output()
        .await
        .unwrap();
    let mut got = String::new();
    std::fs::File::from(r).read_to_string(&mut got).unwrap();
    assert_eq!(
        got, "through-fd-5\n",
        "the host reads what the container wrote to fd 5"
    );
    let fds: BTreeSet<i32> = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(|f| f.parse().unwrap())
        .collect();
    // 0, 1, 2, the two passed, and ls's own directory descriptor.
    assert!(
        fds.is_superset(&BTreeSet::from([0, 1, 2, 5, 100])) && fds.len() == 6,
        "{fds:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn pass_fd_rejects_bad_targets_before_clone() {
    let fd = || OwnedFd::from(std::fs::File::open("/dev/null").unwrap());
    let err = Container::builder("/bin/true")
        .pass_fd(fd(), 1)
        .status()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::BadPassFd { target: 1, .. }), "{err}");
    let err = Container::builder("/bin/true")
        .pass_fd(fd(), 4)
        .pass_fd(fd(), 4)
        .status()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::BadPassFd { target: 4, .. }), "{err}");
    assert!(err.to_string().contains("passed twice"));
}

#[tokio::test(flavor = "multi_thread")]
async fn mask_path_needs_a_mount_namespace() {
    let err = Container::builder("/bin/true")
        .namespaces(Namespaces::PID)
        .mask_path("/etc")
        .status()
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::NeedsNamespace {
                option: "mask_path",
                ..
            }
        ),
        "{err}"
    );
    let err = Container::builder("/bin/true")
        .namespaces(Namespaces::MOUNT)
        .mask_path("etc")
        .status()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Security(_)), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn seccomp_policy_can_deny_more() {
    let dir = common::rootfs::TempDir::new("security-mkdir");
    let target = dir.path().join("made-inside");
    let script = format!("mkdir {}", target.display());
    let out = Container::builder("/bin/sh")
        .args(["-c", &script])
        .namespaces(common::default_ns())
        .seccomp(
            Seccomp::default_profile()
                .deny(libc::SYS_mkdirat)
                .deny(libc::SYS_mkdir),
        )
        .host_root()
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("Operation not permitted"));
    assert!(!target.exists(), "the host sees no directory");
    // Control: the same mkdir in the host's (root-owned) directory, as host root
    // (host_root(): the default identity may not write there at all).
    let out = Container::builder("/bin/sh")
        .args(["-c", &script])
        .namespaces(common::default_ns())
        .host_root()
        .output()
        .await
        .unwrap();
    assert!(out.status.success());
    assert!(target.is_dir());
}

/// A container running `cellblock_run` (a cellblock-using program of this crate), which
/// starts an inner container with its own user, UTS and PID namespaces.
#[tokio::test(flavor = "multi_thread")]
async fn nesting_denied_by_default_allowed_by_opt_in() {
    let runner = common::example("cellblock_run");
    let outer = |nesting: bool, inner_ns: &str, masks: bool| {
        let mut b = Container::builder(&runner);
        b.args([
            "--ns",
            inner_ns,
            "--hostname",
            "inner",
            "--",
            "/bin/sh",
            "-c",
        ])
        // `read` holds the workload (and so the outer container) until the test closes
        // the outer's stdin, which the inner inherits: the host reads the outer's
        // namespaces while it is alive (a zombie's /proc/<pid>/ns is gone). Without a
        // piped stdin it reads EOF at once.
        .arg("hostname; readlink /proc/self/ns/uts; echo $$; read _ || true")
        .namespaces(Namespaces::UTS | Namespaces::IPC | Namespaces::PID | Namespaces::MOUNT)
        .hostname("outer")
        .nesting(nesting)
        .masked_paths(masks)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        b
    };

    // Default: the inner clone is refused.
    let out = outer(false, "user,uts,pid", true).output().await.unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(125), "{err}");
    // (Issue 3's classification names the user namespace refusal, seccomp among causes.)
    assert!(
        (err.contains("clone() refused") || err.contains("user namespaces are unavailable"))
            && err.contains("EPERM"),
        "{err}"
    );

    // Opt-in: it works, in namespaces of its own.
    let mut c = outer(true, "user,uts,pid", true)
        .stdin(Stdio::piped())
        .spawn()
        .await
        .unwrap();
    let outer_ids = c.namespace_ids().unwrap();
    let host_ids = NamespaceIds::current().unwrap();
    drop(c.take_stdin());
    let out = c.wait_with_output().await.unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "inner");
    let inner_uts: u64 = lines[1]
        .trim_start_matches("uts:[")
        .trim_end_matches(']')
        .parse()
        .unwrap();
    assert_ne!(
        Some(inner_uts),
        outer_ids.get(Namespaces::UTS),
        "inner UTS != outer UTS"
    );
    assert_ne!(
        Some(inner_uts),
        host_ids.get(Namespaces::UTS),
        "inner UTS != host UTS"
    );
    assert_ne!(
        outer_ids.get(Namespaces::UTS),
        host_ids.get(Namespaces::UTS)
    );
    assert_eq!(
        lines[2], "2",
        "first after the init in the inner PID namespace"
    );

    // An outer container with a user namespace of its own keeps CAP_SYS_ADMIN there, so
    // its inner containers need no user namespace.
    let mut b = outer(true, "uts,pid", true);
    b.namespaces(
        Namespaces::USER | Namespaces::UTS | Namespaces::IPC | Namespaces::PID | Namespaces::MOUNT,
    );
    let out = b.output().await.unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("inner\n"));
    let mut b = outer(false, "uts,pid", true);
    b.namespaces(
        Namespaces::USER | Namespaces::UTS | Namespaces::IPC | Namespaces::PID | Namespaces::MOUNT,
    );
    let out = b.output().await.unwrap();
    assert_eq!(out.status.code(), Some(125), "denied without the opt-in");

    // An inner mount namespace with a fresh /proc inside a user namespace: kernels that
    // apply the "procfs must not reveal more" rule to our masks (the mounts over the
    // masked files) refuse it while the outer /proc is masked; the 6.18.44 kernel of
    // this VM (since 2026-12-02) lets it through. Either way the outcome is one of the
    // two, never another failure; the masked case is asserted strictly where refused.
    let out = outer(true, "user,uts,pid,mount", true)
        .output()
        .await
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    match out.status.code() {
        Some(125) => assert!(err.contains("mount /proc"), "{err}"),
        Some(0) => {
            assert!(String::from_utf8_lossy(&out.stdout).starts_with("inner\n"));
            eprintln!("this kernel mounts a fresh procfs under a masked /proc (see NOTES)");
        }
        other => panic!("{other:?}: {err}"),
    }
    let out = outer(true, "user,uts,pid,mount", false)
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("inner\n"));
}

/// Mount point -> `major:minor` of the filesystem (its superblock), from mountinfo.
fn devices_of(pid: i32) -> HashMap<String, String> {
    std::fs::read_to_string(format!("/proc/{pid}/mountinfo"))
        .unwrap()
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f[4].to_string(), f[2].to_string())
        })
        .collect()
}

/// Masked directories show one empty, read-only tmpfs, mounted once and bound onto the
/// others; a mask that covers the directory holding it (an ancestor masked later) makes
/// the next ones get a tmpfs of their own, and everything stays hidden.
#[tokio::test(flavor = "multi_thread")]
async fn masked_directories_share_one_empty_read_only_tmpfs() {
    let dir = common::rootfs::TempDir::new("masks");
    let d = dir.path();
    for sub in ["a/b", "c", "e"] {
        std::fs::create_dir_all(d.join(sub)).unwrap();
        std::fs::write(d.join(sub).join("secret"), "flag").unwrap();
    }
    std::fs::write(d.join("a/secret"), "flag").unwrap();
    let script = format!(
        "cd {}; for x in a/b a c e; do ls -A $x | wc -l; done; \
         for x in a c e; do touch $x/new 2>/dev/null && echo writable || echo refused; done; \
         cat a/b/secret a/secret c/secret e/secret 2>/dev/null; echo done; sleep 30",
        d.display()
    );
    let mut c = Container::builder("/bin/sh")
        .args(["-c", &script])
        .namespaces(common::default_ns())
        .keep_all_capabilities()
        .masked_paths(false)
        .mask_path(d.join("a/b"))
        .mask_path(d.join("a"))
        .mask_path(d.join("c"))
        .mask_path(d.join("e"))
        .stdout(Stdio::piped())
        .spawn()
        .await
        .unwrap();
    let mut out = c.take_stdout().unwrap();
    let mut text = String::new();
    let mut buf = [0u8; 256];
    while !text.contains("done") {
        let n = tokio::io::AsyncReadExt::read(&mut out, &mut buf)
            .await
            .unwrap();
        assert!(n > 0, "output ended early: {text}");
        text.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    assert_eq!(
        text, "0\n0\n0\n0\nrefused\nrefused\nrefused\ndone\n",
        "empty, read-only, nothing of the secrets readable (even with every capability)"
    );

    let mounts = mounts_of(&c.pid().to_string());
    let dev = devices_of(c.pid());
    let at = |p: &str| d.join(p).to_string_lossy().into_owned();
    for p in ["a", "c", "e"] {
        assert!(
            mounts[&at(p)].starts_with("ro,"),
            "{p}: {:?}",
            mounts[&at(p)]
        );
        assert!(
            mounts[&at(p)].ends_with("tmpfs"),
            "{p}: {:?}",
            mounts[&at(p)]
        );
    }
    // a/b got the tmpfs and a its bind; a then hid a/b, so c got a new tmpfs, e its bind.
    assert_eq!(dev[&at("a")], dev[&at("a/b")], "{dev:?}");
    assert_eq!(dev[&at("e")], dev[&at("c")], "{dev:?}");
    assert_ne!(dev[&at("a")], dev[&at("c")], "{dev:?}");
    c.start_kill().unwrap();
    c.wait().await.unwrap();

    // The default masks: one tmpfs for every masked directory present here, and the
    // user's masked directories bind it too.
    let mut c = Container::builder("/bin/sleep")
        .arg("30")
        .namespaces(common::default_ns())
        .mask_path(d.join("c"))
        .spawn()
        .await
        .unwrap();
    let dev = devices_of(c.pid());
    let masked: Vec<&String> = ["/proc/acpi", "/proc/asound", "/proc/scsi", "/sys/firmware"]
        .iter()
        .filter_map(|p| dev.get(*p))
        .chain(dev.get(&at("c")))
        .collect();
    assert!(masked.len() >= 2, "{dev:?}");
    assert!(masked.windows(2).all(|w| w[0] == w[1]), "{dev:?}");
    c.start_kill().unwrap();
    c.wait().await.unwrap();
}

// The environment (issue 11, row 12) ------------------------------------------------------

/// A secret of the supervisor: a variable with a name unique to this test process, set
/// once (tests run on parallel threads; `set_var` while another thread reads the
/// environment is a data race, so it happens once, before any container of this module
/// reads it, through a OnceLock every env test goes through; the other modules' tests read
/// the environment only through std, under its lock).
fn supervisor_secret() -> (&'static str, &'static str) {
    static SECRET: std::sync::OnceLock<(String, String)> = std::sync::OnceLock::new();
    let (k, v) = SECRET.get_or_init(|| {
        let k = format!("CELLBLOCK_TEST_SUPERVISOR_SECRET_{}", std::process::id());
        let v = format!("hunter2-{:x}", std::process::id() as u64 * 2654435761);
        std::env::set_var(&k, &v);
        (k, v)
    });
    (k, v)
}

/// The workload's environment as it sees it (`/proc/self/environ`), one `K=V` per entry.
async fn environ_of(b: &mut cellblock::ContainerBuilder) -> Vec<String> {
    let out = b
        .args(["/proc/self/environ"])
        .output()
        .await
        .expect("the container starts");
    assert!(out.status.success(), "{out:?}");
    out.stdout
        .split(|&c| c == 0)
        .filter(|e| !e.is_empty())
        .map(|e| String::from_utf8_lossy(e).into_owned())
        .collect()
}

/// The supervisor's secret does not reach a default container: its environment is exactly
/// `PATH=DEFAULT_PATH`; also with `host_root()` (the environment is its own layer, which
/// no identity replaces). The control, `env_inherit()`, hands the secret over.
#[tokio::test(flavor = "multi_thread")]
async fn supervisor_environment_not_inherited_by_default() {
    let _d = common::deadline("supervisor_environment_not_inherited_by_default", 60);
    let (key, value) = supervisor_secret();
    let secret = format!("{key}={value}");
    let path = format!("PATH={}", cellblock::DEFAULT_PATH);

    let env = environ_of(Container::builder("/bin/cat").namespaces(common::default_ns())).await;
    assert_eq!(env, std::slice::from_ref(&path), "only PATH by default");
    let env = environ_of(
        Container::builder("/bin/cat")
            .namespaces(common::default_ns())
            .host_root(),
    )
    .await;
    assert_eq!(
        env,
        std::slice::from_ref(&path),
        "host_root: still only PATH"
    );

    // Control: inherit, and the secret is there (with everything else of ours).
    let env = environ_of(
        Container::builder("/bin/cat")
            .namespaces(common::default_ns())
            .host_root()
            .env_inherit(),
    )
    .await;
    assert!(env.contains(&secret), "env_inherit passes {key}: {env:?}");
    assert!(env.len() > 1, "{env:?}");
    // env() and env_remove() apply over the inherited environment.
    let env = environ_of(
        Container::builder("/bin/cat")
            .env("EXTRA", "1")
            .env_inherit()
            .env_remove(key),
    )
    .await;
    assert!(env.contains(&"EXTRA=1".to_string()), "{env:?}");
    assert!(!env.iter().any(|e| e.starts_with(key)), "{env:?}");
}

/// What the default environment holds and how the calls edit it: `env` adds, `env_remove`
/// takes PATH out, `env_clear` starts from nothing (not even PATH) and forgets earlier
/// `env` calls, a pty adds `TERM=xterm` (overridable), and a program named without a `/`
/// is found through the default PATH.
#[tokio::test(flavor = "multi_thread")]
async fn default_environment_and_its_edits() {
    let _d = common::deadline("default_environment_and_its_edits", 60);
    let path = format!("PATH={}", cellblock::DEFAULT_PATH);

    let env = environ_of(Container::builder("/bin/cat").env("A", "1")).await;
    assert_eq!(env, [String::from("A=1"), path.clone()]);
    let env = environ_of(Container::builder("/bin/cat").env_remove("PATH")).await;
    assert!(env.is_empty(), "{env:?}");
    let env = environ_of(Container::builder("/bin/cat").env_clear()).await;
    assert!(env.is_empty(), "env_clear: not even PATH: {env:?}");
    let env = environ_of(
        Container::builder("/bin/cat")
            .env("A", "1")
            .env_clear()
            .env("B", "2"),
    )
    .await;
    assert_eq!(env, ["B=2"]);
    let env = environ_of(Container::builder("/bin/cat").env("PATH", "/bin")).await;
    assert_eq!(env, ["PATH=/bin"]);

    // Program lookup by name uses the default PATH.
    let out = Container::builder("env").output().await.unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), format!("{path}\n"));

    // With a pty: TERM as well (the workload writes to the pty; read its master).
    for (term, want) in [(None, "xterm"), (Some("vt100"), "vt100")] {
        let mut b = Container::builder("/bin/sh");
        b.args(["-c", "echo \"[$TERM][$PATH]\""]).pty();
        if let Some(t) = term {
            b.env("TERM", t);
        }
        let mut c = b.spawn().await.unwrap();
        let mut pty = c.take_pty().unwrap().expect("a pty");
        let mut text = String::new();
        let mut buf = [0u8; 4096];
        while text.matches(']').count() < 2 {
            use tokio::io::AsyncReadExt;
            match pty.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => text.push_str(&String::from_utf8_lossy(&buf[..n])),
            }
        }
        c.wait().await.unwrap();
        let want = format!("[{want}][{}]", cellblock::DEFAULT_PATH);
        assert!(text.contains(&want), "{text:?} lacks {want}");
    }
}
