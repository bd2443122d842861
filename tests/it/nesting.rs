//! Nesting: the `nested` example, run inside a container on a root filesystem, starts its
//! own container with cellblock. Hostname, PID 1 and namespace ids differ at every level.

use crate::common;

use std::collections::BTreeMap;
use std::process::Command;

use common::rootfs::{example_binary, output_retrying};

/// Parses `level=N hostname=H pid=P ns=kind:[id] kind:[id] ...` lines.
fn levels(text: &str) -> Vec<(String, String, BTreeMap<String, String>)> {
    text.lines()
        .filter(|l| l.starts_with("level="))
        .map(|l| {
            let (head, ns) = l.split_once(" ns=").unwrap();
            let f: BTreeMap<&str, &str> = head
                .split(' ')
                .filter_map(|kv| kv.split_once('='))
                .collect();
            let ids = ns
                .split(' ')
                .filter_map(|kv| kv.split_once(':'))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            (f["hostname"].to_string(), f["pid"].to_string(), ids)
        })
        .collect()
}

fn check(text: &str, depth: usize, expect_user_differs: bool, host_pid: u32) {
    let lv = levels(text);
    assert_eq!(lv.len(), depth + 1, "{text}");
    // Level 0 is the supervisor on the host.
    let host_name = common::host("hostname");
    assert_eq!(lv[0].0, host_name);
    // Level 0 sees itself under the pid the host gave it.
    assert_eq!(lv[0].1, host_pid.to_string(), "{text}");
    for (i, (name, pid, _)) in lv.iter().enumerate().skip(1) {
        assert_eq!(name, &format!("level-{i}"), "{text}");
        // PID 2: each level's built-in init is its PID 1 (issue 4).
        assert_eq!(
            pid, "2",
            "level {i} is not the workload under its init:\n{text}"
        );
    }
    for kind in ["uts", "ipc", "pid", "mnt", "net", "cgroup"] {
        let ids: Vec<&String> = lv.iter().map(|l| &l.2[kind]).collect();
        for a in 0..ids.len() {
            for b in a + 1..ids.len() {
                assert_ne!(
                    ids[a], ids[b],
                    "{kind} shared by levels {a} and {b}:\n{text}"
                );
            }
        }
    }
    if expect_user_differs {
        assert_ne!(lv[0].2["user"], lv[1].2["user"], "{text}");
    }
}

#[test]
fn a_container_starts_its_own_container() {
    let (_dir, bin) = example_binary("nested");
    let host_ns = std::fs::read_link("/proc/self/ns/uts").unwrap();
    let (pid, out) = output_retrying(|| {
        let mut c = Command::new(&bin);
        c.arg("2").current_dir("/");
        c
    });
    let text = String::from_utf8_lossy(&out.stdout);
    eprintln!("{text}");
    assert!(out.status.success(), "{text}");
    check(&text, 2, false, pid);
    // The level-0 line is the host's view: same UTS namespace as this test.
    assert!(
        text.lines()
            .next()
            .unwrap()
            .contains(&host_ns.to_string_lossy().to_string()),
        "{text}"
    );
}

#[test]
fn nesting_works_rootless() {
    assert!(
        common::unprivileged_userns_allowed(),
        "setpriv missing, not root, or unprivileged user namespaces disabled: rootless nesting cannot run"
    );
    let (_dir, bin) = example_binary("nested");
    // setpriv execs the binary: same pid.
    let (pid, out) = output_retrying(|| {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(&bin)
            .arg("2")
            .current_dir("/");
        c
    });
    let text = String::from_utf8_lossy(&out.stdout);
    eprintln!("{text}");
    assert!(out.status.success(), "{text}");
    check(&text, 2, true, pid);
}
