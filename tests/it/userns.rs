//! User namespaces: default and multi-range maps, the workload's uid/gid/groups, and
//! configuration errors. (Unprivileged runs are in tests/it/rootless.rs.)

use crate::common;

use cellblock::{Container, Error, NamespaceIds, Namespaces, Stdio};
use tokio::io::AsyncBufReadExt;

/// The `Uid:`, `Gid:` and `Groups:` lines of /proc/<pid>/status, as the host sees them.
fn host_ids(pid: i32) -> (String, String, String) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .unwrap_or("")
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    (field("Uid:"), field("Gid:"), field("Groups:"))
}

/// With host_root() and no map, the supervisor's own ids become 0 inside (the one map an
/// unprivileged process may write; under a root supervisor it is the opt-out's `0 0 1`).
/// Without host_root() a root supervisor's container gets a pooled block instead
/// (`escape_identity.rs`).
#[tokio::test(flavor = "multi_thread")]
async fn default_map_makes_the_caller_root_inside() {
    let euid = nix::unistd::geteuid().as_raw();
    let out = Container::builder("/bin/sh")
        .args(["-c", "id -u; id -g; cat /proc/self/uid_map /proc/self/gid_map; cat /proc/self/setgroups; readlink /proc/self/ns/user"])
        .namespaces(Namespaces::USER | Namespaces::UTS)
        .host_root()
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<Vec<&str>> = text
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(lines[0], ["0"]);
    assert_eq!(lines[1], ["0"]);
    assert_eq!(lines[2], ["0", &euid.to_string(), "1"]);
    assert_eq!(lines[4], ["deny"]);
    let host_user = std::fs::read_link("/proc/self/ns/user").unwrap();
    assert_ne!(
        lines[5][0],
        host_user.to_string_lossy(),
        "no new user namespace"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn multi_range_maps_user_and_groups_seen_from_both_sides() {
    let mut c = Container::builder("/bin/sh")
        .args(["-c", "id -u; id -g; id -G; cat /proc/self/uid_map | wc -l; cat /proc/self/setgroups; exec sleep 30"])
        .namespaces(Namespaces::USER | Namespaces::PID | Namespaces::MOUNT)
        .uid_map(0, 100_000, 1000)
        .uid_map(1000, 2_000_000, 10)
        .gid_map(0, 100_000, 1000)
        .gid_map(1000, 2_000_000, 10)
        .user(1000, 1001)
        .groups([5, 1002])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .await
        .unwrap();
    let mut lines = tokio::io::BufReader::new(c.take_stdout().unwrap()).lines();
    let mut inside = Vec::new();
    for _ in 0..5 {
        inside.push(lines.next_line().await.unwrap().unwrap());
    }
    // Inside: the configured ids; both map lines; setgroups still allowed.
    assert_eq!(inside[0], "1000");
    assert_eq!(inside[1], "1001");
    let mut groups: Vec<&str> = inside[2].split_whitespace().collect();
    groups.sort();
    assert_eq!(groups, ["1001", "1002", "5"]);
    assert_eq!(inside[3].trim(), "2");
    assert_eq!(inside[4], "allow");
    // Host: the same process runs as the mapped host ids.
    let (uid, gid, host_groups) = host_ids(c.pid());
    assert_eq!(uid, "2000000 2000000 2000000 2000000");
    assert_eq!(gid, "2000001 2000001 2000001 2000001");
    let mut hg: Vec<&str> = host_groups.split_whitespace().collect();
    hg.sort();
    assert_eq!(hg, ["100005", "2000002"]);
    let uid_map = std::fs::read_to_string(format!("/proc/{}/uid_map", c.pid())).unwrap();
    assert_eq!(uid_map.lines().count(), 2, "{uid_map}");
    assert_ne!(
        c.namespace_ids().unwrap().get(Namespaces::USER),
        NamespaceIds::current().unwrap().get(Namespaces::USER)
    );
    c.start_kill().unwrap();
    c.wait().await.unwrap();
    assert!(common::eventually(5, || common::zombie_children().is_empty()).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn user_without_a_user_namespace_drops_to_that_id() {
    let out = Container::builder("/bin/sh")
        .args(["-c", "id -u; id -g; id -G"])
        .user(65534, 65534)
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The supervisor's supplementary groups are gone too.
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "65534\n65534\n65534\n"
    );
    assert_eq!(
        nix::unistd::geteuid().as_raw(),
        0,
        "the supervisor keeps its own ids"
    );
}

#[tokio::test]
async fn bad_user_settings_are_rejected_before_clone() {
    // A map without Namespaces::USER: host_root() keeps the supervisor's identity, so a map
    // has nothing to apply to. (Without host_root() a map implies a user namespace: the
    // default identity.)
    let err = Container::builder("/bin/true")
        .uid_map(0, 1000, 1)
        .host_root()
        .status()
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::NeedsNamespace {
                needs: Namespaces::USER,
                ..
            }
        ),
        "{err}"
    );
    let out = Container::builder("/bin/cat")
        .arg("/proc/self/uid_map")
        .uid_map(0, 1000, 1)
        .gid_map(0, 1000, 1)
        .output()
        .await
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .collect::<Vec<_>>(),
        ["0", "1000", "1"]
    );

    let err = Container::builder("/bin/true")
        .namespaces(Namespaces::USER)
        .uid_map(0, 100_000, 100)
        .uid_map(50, 200_000, 100)
        .status()
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::BadConfig(ref m) if m.contains("overlap")),
        "{err}"
    );

    let err = Container::builder("/bin/true")
        .namespaces(Namespaces::USER)
        .uid_map(0, 100_000, 0)
        .status()
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::BadConfig(ref m) if m.contains("empty")),
        "{err}"
    );

    let err = Container::builder("/bin/true")
        .namespaces(Namespaces::USER)
        .uid_map(0, 100_000, 10)
        .gid_map(0, 100_000, 10)
        .user(1000, 0)
        .status()
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::BadConfig(ref m) if m.contains("uid 1000 is not mapped")),
        "{err}"
    );

    let err = Container::builder("/bin/true")
        .namespaces(Namespaces::USER)
        .uid_map(0, 100_000, 10)
        .gid_map(0, 100_000, 10)
        .groups([50])
        .status()
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::BadConfig(ref m) if m.contains("group 50")),
        "{err}"
    );
    assert!(common::eventually(5, || common::zombie_children().is_empty()).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn supervisor_written_maps_with_other_namespaces_and_rootfs() {
    let t = common::rootfs::TempDir::new("userns-root");
    let root = common::rootfs::make_root(t.path());
    let mut b = Container::builder("/bin/sh");
    b.args([
        "-c",
        "id -u; echo $$; touch /usr/x 2>&1; stat -c %u /marker; hostname",
    ])
    .namespaces(
        Namespaces::USER
            | Namespaces::PID
            | Namespaces::MOUNT
            | Namespaces::UTS
            | Namespaces::NET
            | Namespaces::IPC,
    )
    .hostname("mapped")
    .uid_map(0, 300_000, 65_536)
    .gid_map(0, 300_000, 65_536)
    .mount_dev()
    .tmpfs("/tmp");
    common::rootfs::use_root(&mut b, &root);
    std::fs::write(root.join("marker"), "x").unwrap();
    std::os::unix::fs::chown(root.join("marker"), Some(300_007), None).unwrap();
    let out = b.output().await.unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "0");
    // PID 2 under the built-in init (issue 4).
    assert_eq!(lines[1], "2");
    assert!(lines[2].contains("Read-only file system"), "{text}");
    // Host uid 300007 is uid 7 inside.
    assert_eq!(lines[3], "7");
    assert_eq!(lines[4], "mapped");
}

#[tokio::test(flavor = "multi_thread")]
async fn failure_after_supervisor_written_maps_leaves_nothing_behind() {
    // The kernel refuses /proc without owning the PID namespace: a setup failure after
    // the maps were written, on the clone path without CLONE_VFORK.
    let err = Container::builder("/bin/true")
        .namespaces(Namespaces::USER | Namespaces::MOUNT)
        .uid_map(0, 100_000, 65_536)
        .gid_map(0, 100_000, 65_536)
        .mount_proc()
        .status()
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Setup {
                stage: cellblock::Stage::MountProc,
                ..
            }
        ),
        "{err}"
    );
    assert!(common::eventually(5, || common::zombie_children().is_empty()).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_concurrent_spawns_with_supervisor_written_maps() {
    let tasks: Vec<_> = (0..32u32)
        .map(|i| {
            tokio::spawn(async move {
                let out = Container::builder("/bin/sh")
                    .args(["-c", "id -u; cat /proc/self/uid_map"])
                    .namespaces(Namespaces::USER | Namespaces::PID | Namespaces::MOUNT)
                    .uid_map(0, 500_000 + i * 1000, 1000)
                    .gid_map(0, 500_000 + i * 1000, 1000)
                    .user(i, i)
                    .output()
                    .await
                    .unwrap();
                assert!(
                    out.status.success(),
                    "{}",
                    String::from_utf8_lossy(&out.stderr)
                );
                let text = String::from_utf8_lossy(&out.stdout).into_owned();
                let mut l = text.lines();
                assert_eq!(l.next(), Some(i.to_string().as_str()));
                let map: Vec<String> = l
                    .next()
                    .unwrap()
                    .split_whitespace()
                    .map(String::from)
                    .collect();
                assert_eq!(map, ["0", &(500_000 + i * 1000).to_string(), "1000"]);
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    assert!(common::eventually(5, || common::zombie_children().is_empty()).await);
}
