//! CPU bandwidth limit: a spinning workload gets its quota, not the whole CPU.
//!
//! It shares the test binary with the other behaviour tests: the harness runs one test per
//! core, so the spinner competes with at most one other test per core, and the lower bound
//! below (150 ms of the 400 ms its quota allows) leaves room for that.

use std::time::Duration;

use cellblock::{CgroupLayout, Container, EndReason};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cpu_spin_under_cpu_limit_gets_its_quota() {
    let mut c = Container::builder("/bin/sh")
        .args(["-c", "while :; do :; done"])
        .cpu_limit(0.2)
        .timeout(Duration::from_secs(2))
        .kill_grace(Duration::ZERO)
        .spawn()
        .await
        .unwrap();
    // From the host: the kernel is throttling the cgroup. Looked at every 100 ms until the
    // container's timeout is near: on a loaded machine the spinner may need longer than
    // one second to use up its first quota.
    let stat_file = c
        .cgroup_paths()
        .iter()
        .map(|d| d.join("cpu.stat"))
        .find(|p| std::fs::read_to_string(p).is_ok_and(|s| s.contains("nr_throttled")))
        .expect("a cpu.stat with throttling counters");
    let throttled = |stat: &str| -> u64 {
        stat.lines()
            .find_map(|l| l.strip_prefix("nr_throttled "))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    };
    let mut stat = String::new();
    for _ in 0..18 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        stat = std::fs::read_to_string(&stat_file).unwrap();
        if throttled(&stat) > 0 {
            break;
        }
    }
    println!("{stat}");
    assert!(throttled(&stat) > 0, "{stat}");

    let report = c.wait_with_report().await.unwrap();
    println!("{report:#?} (layout {:?})", CgroupLayout::detect());
    assert_eq!(report.reason, EndReason::TimedOut);
    assert!(report.cgroup);
    // 2 s of wall time at 0.2 CPU: about 0.4 s of CPU, and far from 2 s.
    let cpu = report.cpu_time();
    assert!(
        cpu >= Duration::from_millis(150) && cpu <= Duration::from_millis(800),
        "CPU time {cpu:?} for 2 s at cpu_limit(0.2)"
    );
}
