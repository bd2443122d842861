//! Rootless: the namespace features run again as an unprivileged user (uid 65534, via
//! `setpriv`), with USER added; what needs host root fails with a clear error. Also the
//! "user namespaces disabled" error, provoked by lowering `user.max_user_namespaces` to 0
//! inside a throwaway user namespace.

use crate::common;

use std::process::Command;

use common::rootfs::{example_binary, output_retrying};

fn tool(name: &str) -> bool {
    ["/usr/bin", "/bin"]
        .iter()
        .any(|d| std::path::Path::new(d).join(name).exists())
}

#[test]
fn namespace_features_work_as_uid_65534() {
    // A test that cannot run fails, with the reason (it never passes unrun).
    assert!(
        tool("setpriv"),
        "setpriv (Debian package util-linux) is needed to switch to an unprivileged user"
    );
    assert!(
        common::unprivileged_userns_allowed(),
        "unprivileged user namespaces are disabled on this machine (or setpriv cannot switch users: the suite must run as root): the rootless checks cannot run"
    );
    let (_dir, bin) = example_binary("rootless");
    let (_, out) = output_retrying(|| {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(&bin)
            .current_dir("/");
        c
    });
    let text = String::from_utf8_lossy(&out.stdout);
    eprintln!("{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.starts_with("running as uid 65534 gid 65534"), "{text}");
    for check in [
        "namespaces-differ",
        "uts",
        "pid",
        "user",
        "proc",
        "net",
        "ipc",
        "cgroup",
        "rootfs",
        "read-only",
        "dev",
        "sysfs",
        "tmpfs",
        "time",
        "exec",
        "multi-range-map",
        "auto-user-namespace",
        "no-user-namespace",
        "join-host",
        "groups",
        "user-without-userns",
    ] {
        assert!(
            text.lines().any(|l| l.starts_with(&format!("ok {check}:"))),
            "check {check} did not pass:\n{text}"
        );
    }
    assert!(!text.contains("FAIL"), "{text}");
    assert!(out.status.success());
}

#[test]
fn disabled_user_namespaces_give_a_clear_error() {
    assert!(
        tool("unshare"),
        "unshare (Debian package util-linux) is needed to build a throwaway user namespace"
    );
    let (_dir, bin) = example_binary("rootless");
    // In a throwaway user namespace (we are its root), set its limit to 0: creating a
    // user namespace below it then fails with ENOSPC, as on a host with the sysctl at 0.
    let script = format!(
        "echo 0 > /proc/sys/user/max_user_namespaces && exec {} --expect-userns-disabled",
        bin.display()
    );
    let (_, out) = output_retrying(|| {
        let mut c = Command::new("unshare");
        c.args(["--user", "--map-root-user", "/bin/sh", "-c", &script])
            .current_dir("/");
        c
    });
    let text = String::from_utf8_lossy(&out.stdout);
    eprintln!("{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{text}");
    let line = text
        .lines()
        .find(|l| l.starts_with("ok userns-disabled:"))
        .expect("no result line");
    assert!(
        line.contains("user namespaces are unavailable here"),
        "{line}"
    );
    assert!(line.contains("user.max_user_namespaces is 0"), "{line}");
    // The host's own setting is untouched.
    let host = std::fs::read_to_string("/proc/sys/user/max_user_namespaces").unwrap();
    assert_ne!(host.trim(), "0");
}
