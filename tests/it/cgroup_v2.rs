//! cgroup v2 mechanics, exercised for real wherever a v2 hierarchy is mounted.
//!
//! On a hybrid host (v1 controllers, an empty v2 hierarchy at /sys/fs/cgroup/unified)
//! the v2 *controllers* are missing, so limits cannot be tested on v2 there, but the
//! core interface files exist in every v2 cgroup: creating children under our own v2
//! cgroup, `cgroup.procs` (joining), `cgroup.freeze` + `cgroup.kill` (timeouts),
//! `cgroup.events` and `cpu.stat` (accounting). Those run here. On a unified host the
//! limit paths run on v2 in tests/it/limits.rs as well.

use crate::common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use cellblock::{CgroupLayout, CgroupVersion, Container, EndReason, Error, Stdio};
use tokio::io::{AsyncBufReadExt, BufReader};

/// The cgroup2 mount point, if any.
fn v2_mount() -> Option<PathBuf> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .find(|l| {
            l.split(" - ")
                .nth(1)
                .is_some_and(|r| r.starts_with("cgroup2 "))
        })
        .and_then(|l| l.split_whitespace().nth(4).map(PathBuf::from))
}

/// On a host without a cgroup2 hierarchy nothing of v2 can run; what can be tested is that
/// asking for it is refused with the typed error that names the reason (never a silent
/// fallback to v1). The test then fails loudly if the error is anything else.
async fn v2_is_refused_without_a_hierarchy() {
    eprintln!("no cgroup2 hierarchy is mounted on this host: testing the refusal only");
    let err = Container::builder("/bin/true")
        .cgroup_version(CgroupVersion::V2)
        .cgroup_accounting(true)
        .status()
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::CgroupUnavailable(m) if m.contains("cgroup2")),
        "{err}"
    );
}

fn keyed(path: &Path, key: &str) -> u64 {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .find_map(|l| {
            l.strip_prefix(&format!("{key} "))
                .map(|v| v.trim().parse().unwrap())
        })
        .unwrap()
}

#[test]
fn layout_detection_matches_the_mount_table() {
    let layout = CgroupLayout::detect().unwrap();
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let has_v1 = mounts.lines().any(|l| l.contains(" - cgroup "));
    let v2 = v2_mount();
    eprintln!("layout {layout:?}, v1 mounts: {has_v1}, v2 mount: {v2:?}");
    let expected = match (has_v1, v2.as_deref()) {
        (false, Some(p)) if p == Path::new("/sys/fs/cgroup") => CgroupLayout::Unified,
        (true, Some(p)) if p == Path::new("/sys/fs/cgroup/unified") => CgroupLayout::Hybrid,
        (true, _) => CgroupLayout::Legacy,
        other => panic!("unexpected mounts {other:?}"),
    };
    assert_eq!(layout, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_join_kill_events_and_cpu_stat() {
    let Some(mount) = v2_mount() else {
        return v2_is_refused_without_a_hierarchy().await;
    };
    // The spinning loop runs in a grandchild that the first process never waits for, so
    // its CPU time can only be known from the cgroup's cpu.stat, not from rusage.
    let mut c = Container::builder("/bin/sh")
        .args([
            "-c",
            "cat /proc/self/cgroup; (while :; do :; done) & echo $!; \
             (sleep 1000 & echo $!; wait) & echo ready; wait",
        ])
        .cgroup_version(CgroupVersion::V2)
        .cgroup_accounting(true)
        .timeout(Duration::from_millis(700))
        .kill_grace(Duration::from_millis(100))
        .stdout(Stdio::piped())
        .spawn()
        .await
        .unwrap();
    assert_eq!(c.cgroup_is_v2(), Some(true));
    let dirs = c.cgroup_paths();
    assert_eq!(dirs.len(), 1);
    let dir = dirs[0].clone();
    assert!(
        dir.starts_with(&mount),
        "{} not under {}",
        dir.display(),
        mount.display()
    );
    assert_eq!(dir.parent().unwrap().file_name().unwrap(), "cellblock");

    let mut lines = BufReader::new(c.take_stdout().unwrap()).lines();
    let mut text: Vec<String> = Vec::new();
    // Until "ready" and both pids are in (the subshell's echo may come after "ready").
    let mut ready = false;
    while !ready || text.iter().filter(|l| l.parse::<i32>().is_ok()).count() < 2 {
        let l = lines
            .next_line()
            .await
            .unwrap()
            .expect("output ended early");
        if l == "ready" {
            ready = true;
        } else {
            text.push(l);
        }
    }
    let name = dir.file_name().unwrap().to_string_lossy().to_string();
    // Inside: the v2 line names the container's own cgroup.
    let v2_line = text.iter().find(|l| l.starts_with("0::")).unwrap();
    assert!(
        v2_line.ends_with(&format!("/cellblock/{name}")),
        "{v2_line}"
    );
    let pids: Vec<i32> = text.iter().filter_map(|l| l.parse().ok()).collect();
    // From the host: cgroup.procs lists the first process, cgroup.events says populated.
    let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap();
    assert!(procs.lines().any(|p| p == c.pid().to_string()), "{procs}");
    assert_eq!(keyed(&dir.join("cgroup.events"), "populated"), 1);
    // Wait until the spinner and the sleeper (a grandchild) are in too.
    assert!(
        common::eventually(5, || {
            let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
            procs.lines().count() >= 4
        })
        .await
    );

    let report = c.wait_with_report().await.unwrap();
    println!("{report:#?}");
    assert_eq!(report.reason, EndReason::TimedOut);
    assert!(report.cgroup);
    // cpu.stat: the grandchild's spinning is counted. The first process only forks and
    // waits (a few ms, and rusage would see only that); 100 ms is far above it and below
    // what a spinner gets in 700 ms even on a loaded machine (165 ms seen at load 400).
    assert!(
        report.cpu_time() >= Duration::from_millis(100),
        "cpu.stat should count the spinning grandchild: {report:?}"
    );
    // cgroup.kill took the whole tree, grandchildren included; the directory is gone.
    assert_eq!(pids.len(), 2, "{text:?}");
    assert!(common::eventually(5, || pids.iter().all(|&p| !common::running(p))).await);
    assert!(common::eventually(5, || !dir.exists()).await);
}

#[tokio::test]
async fn v2_limits_need_v2_controllers() {
    if common::ran_alone(module_path!(), "v2_limits_need_v2_controllers") {
        return;
    }
    let Some(mount) = v2_mount() else {
        return v2_is_refused_without_a_hierarchy().await;
    };
    let own = std::fs::read_to_string("/proc/self/cgroup")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("0::").map(str::to_owned))
        .unwrap();
    let controllers = std::fs::read_to_string(
        mount
            .join(own.trim_start_matches('/'))
            .join("cgroup.controllers"),
    )
    .unwrap();
    let mut b = Container::builder("/bin/true");
    b.cgroup_version(CgroupVersion::V2).pids_limit(10);
    if controllers.split_whitespace().any(|c| c == "pids") {
        // A host with v2 controllers: the limit is applied there.
        let (_, report) = b.output_with_report().await.unwrap();
        assert_eq!(report.reason, EndReason::Exited);
        assert!(report.pids_peak.is_some());
    } else {
        eprintln!(
            "v2 controllers here: {:?}; v2 limits cannot run on this host (tested: the error)",
            controllers.trim()
        );
        let err = b.status().await.unwrap_err();
        println!("{err}");
        assert!(matches!(err, Error::CgroupUnavailable(_)), "{err:?}");
        assert!(err.to_string().contains("pids controller is not available"));
    }
    assert!(common::eventually(5, || common::our_cgroup_dirs().is_empty()).await);
}
