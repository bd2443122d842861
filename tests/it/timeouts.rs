//! Timeouts and output limits: what ends, and what the report says.

use crate::common;

use std::time::Duration;

use cellblock::{Container, EndReason, Namespaces, Stdio};
use tokio::io::{AsyncBufReadExt, BufReader};

fn pids_in(text: &str) -> Vec<i32> {
    text.split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeout_ends_the_whole_tree_through_the_cgroup() {
    // No PID namespace: only the cgroup can find the grandchildren.
    let c = Container::builder("/bin/sh")
        .args([
            "-c",
            "sleep 1000 & echo $!; (sleep 1000 & echo $!; wait) & echo $!; \
             trap 'echo got-term; exit 3' TERM; wait",
        ])
        .cgroup_accounting(true)
        .timeout(Duration::from_millis(500))
        .kill_grace(Duration::from_secs(5))
        .stdout(Stdio::piped())
        .spawn()
        .await
        .unwrap();
    let dirs = c.cgroup_paths();
    let (out, report) = c.wait_with_output_and_report().await.unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    println!("{text}{report:#?}");
    let pids = pids_in(&text);
    assert_eq!(pids.len(), 3, "{text}");
    // SIGTERM came first: the shell's trap ran (and the report still says timed out).
    assert!(text.contains("got-term"), "{text}");
    assert_eq!(report.reason, EndReason::TimedOut);
    assert_eq!(report.exit_code, Some(3));
    assert!(report.killed);
    assert_eq!(report.isolate_status(), Some("TO"));
    assert!(report.wall_time >= Duration::from_millis(500));
    // From the host: every descendant is gone, the cgroup too.
    assert!(common::eventually(5, || pids.iter().all(|&p| !common::running(p))).await);
    assert!(common::eventually(10, || dirs.iter().all(|d| !d.exists())).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeout_sigkills_after_the_grace_period() {
    // The workload ignores SIGTERM; SIGKILL after the grace period ends it.
    let (_, report) = Container::builder("/bin/sh")
        .args(["-c", "trap '' TERM; sleep 1000 & wait; wait"])
        .cgroup_accounting(true)
        .timeout(Duration::from_millis(300))
        .kill_grace(Duration::from_millis(300))
        .output_with_report()
        .await
        .unwrap();
    assert_eq!(report.reason, EndReason::TimedOut);
    assert_eq!(report.signal, Some(libc::SIGKILL));
    assert!(report.wall_time >= Duration::from_millis(600), "{report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeout_with_only_a_pid_namespace_ends_the_namespace() {
    // No cgroup at all (no default budget either): the PID namespace alone ends it.
    let c = Container::builder("/bin/sh")
        .args(["-c", "sleep 1000 & (sleep 1000 & wait) & wait"])
        .namespaces(Namespaces::PID)
        .default_budget(false)
        .timeout(Duration::from_millis(300))
        .spawn()
        .await
        .unwrap();
    assert!(c.cgroup_paths().is_empty());
    let ns = c.namespace_ids().unwrap().get(Namespaces::PID).unwrap();
    let in_ns = move || common::pids_in_pid_ns(ns).len();
    // Wait until the tree is up: sh, sleep, subshell, sleep.
    assert!(common::eventually(5, || in_ns() >= 4).await, "{}", in_ns());
    let mut c = c;
    let report = c.wait_with_report().await.unwrap();
    assert_eq!(report.reason, EndReason::TimedOut);
    // The built-in init forwards the SIGTERM to the workload, which dies of it.
    assert_eq!(report.signal, Some(libc::SIGTERM));
    assert!(!report.cgroup);
    assert_eq!(in_ns(), 0, "processes left in the PID namespace");

    // Without the init the workload is PID 1 with no SIGTERM handler, so only the SIGKILL
    // after the grace period ends it (and with it the whole namespace).
    let mut c = Container::builder("/bin/sh")
        .args(["-c", "sleep 1000 & (sleep 1000 & wait) & wait"])
        .namespaces(Namespaces::PID)
        .default_budget(false)
        .init(false)
        .timeout(Duration::from_millis(300))
        .spawn()
        .await
        .unwrap();
    let report = c.wait_with_report().await.unwrap();
    assert_eq!(report.reason, EndReason::TimedOut);
    assert_eq!(report.signal, Some(libc::SIGKILL));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeout_without_cgroup_or_pid_namespace_reaches_only_the_first_process() {
    // The documented limit: with neither (and no default budget, which is a cgroup),
    // descendants survive the timeout.
    let mut c = Container::builder("/bin/sh")
        .args(["-c", "sleep 1000 & echo $!; exec sleep 1000"])
        .default_budget(false)
        .timeout(Duration::from_millis(200))
        .stdout(Stdio::piped())
        .spawn()
        .await
        .unwrap();
    let mut lines = BufReader::new(c.take_stdout().unwrap()).lines();
    let grandchild: i32 = lines.next_line().await.unwrap().unwrap().parse().unwrap();
    let report = c.wait_with_report().await.unwrap();
    assert_eq!(report.reason, EndReason::TimedOut);
    assert_eq!(report.signal, Some(libc::SIGTERM));
    assert!(
        common::running(grandchild),
        "expected the grandchild to outlive the timeout"
    );
    // It is ours (we started it): end it by pid.
    // SAFETY: plain syscall.
    unsafe { libc::kill(grandchild, libc::SIGKILL) };
    assert!(common::eventually(5, || !common::running(grandchild)).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_limit_kills_and_cuts_the_output() {
    let (out, report) = Container::builder("/bin/sh")
        .args(["-c", "yes; echo never"])
        .output_limit(100_000)
        .cgroup_accounting(true)
        .timeout(Duration::from_secs(30))
        .output_with_report()
        .await
        .unwrap();
    println!("{report:#?}");
    assert_eq!(report.reason, EndReason::OutputLimit);
    assert!(report.killed);
    assert_eq!(out.stdout.len() + out.stderr.len(), 100_000);
    assert!(out.stdout.starts_with(b"y\ny\n"));
    // The same limit applies through plain output().
    let out = Container::builder("/usr/bin/yes")
        .output_limit(10)
        .output()
        .await
        .unwrap();
    assert_eq!(out.stdout, b"y\ny\ny\ny\ny\n");
    assert!(!out.status.success());
}

#[tokio::test]
async fn a_quick_run_is_not_touched_by_its_timeout() {
    let (out, report) = Container::builder("/bin/echo")
        .arg("done")
        .timeout(Duration::from_secs(10))
        .cgroup_accounting(true)
        .output_with_report()
        .await
        .unwrap();
    assert_eq!(out.stdout, b"done\n");
    assert_eq!(report.reason, EndReason::Exited);
    assert_eq!(report.exit_code, Some(0));
    assert!(!report.killed);
    assert_eq!(report.isolate_status(), None);
    assert_eq!(report.message, "Exited normally");
}
