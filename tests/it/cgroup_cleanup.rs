//! Nothing of ours is left in the cgroup filesystem: after many containers, after dropped
//! and cancelled ones, after leftovers that outlive the first process; with limits of the
//! caller's and with the default budget alone.

use crate::common;

use std::time::Duration;

use cellblock::{Container, Stdio};
use futures::StreamExt;

/// Tests here check that *no* cgroup of this process is left, so they run one at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_limited_containers_leave_no_cgroup() {
    if common::ran_alone(
        module_path!(),
        "a_thousand_limited_containers_leave_no_cgroup",
    ) {
        return;
    }
    let _d = common::deadline("a thousand containers", 300);
    let _serial = SERIAL.lock().await;
    let started = std::time::Instant::now();
    let results: Vec<_> = futures::stream::iter(0..1000)
        .map(|i| async move {
            let mut b = Container::builder("/bin/true");
            // A third with the default budget alone (a cgroup without a limit of the
            // caller's), a third with limits, a third with limits and a CPU quota.
            if i % 3 != 0 {
                b.pids_limit(16).memory_limit(64 << 20);
            }
            if i % 3 == 2 {
                b.cpu_limit(0.5);
            }
            b.status().await
        })
        .buffer_unordered(16)
        .collect()
        .await;
    eprintln!("1000 limited containers in {:?}", started.elapsed());
    let failed: Vec<_> = results
        .iter()
        .filter(|r| !matches!(r, Ok(s) if s.success()))
        .collect();
    assert!(
        failed.is_empty(),
        "{} failed, e.g. {:?}",
        failed.len(),
        failed.first()
    );
    assert!(
        common::eventually(10, || common::our_cgroup_dirs().is_empty()).await,
        "left behind: {:?}",
        common::our_cgroup_dirs()
    );
    assert!(common::zombie_children().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_containers_cgroups_go_once_they_are_reaped() {
    if common::ran_alone(
        module_path!(),
        "dropped_containers_cgroups_go_once_they_are_reaped",
    ) {
        return;
    }
    let _d = common::deadline("dropped_containers_cgroups_go_once_they_are_reaped", 120);
    let _serial = SERIAL.lock().await;
    // Killed on drop.
    let c = Container::builder("/bin/sleep")
        .arg("1000")
        .pids_limit(8)
        .kill_on_drop(true)
        .spawn()
        .await
        .unwrap();
    let killed_dirs = c.cgroup_paths();
    drop(c);
    // Not killed on drop: the cgroup stays while it runs, and goes after it exits.
    let c = Container::builder("/bin/sleep")
        .arg("0.5")
        .pids_limit(8)
        .spawn()
        .await
        .unwrap();
    let detached_dirs = c.cgroup_paths();
    // Control: the helper every test here relies on does list a live container's cgroups.
    let ours = common::our_cgroup_dirs();
    assert!(
        !detached_dirs.is_empty() && detached_dirs.iter().all(|d| ours.contains(d)),
        "{detached_dirs:?} not all in {ours:?}"
    );
    drop(c);
    // Not killed on drop, but its timeout still applies.
    let c = Container::builder("/bin/sleep")
        .arg("1000")
        .cgroup_accounting(true)
        .timeout(Duration::from_millis(300))
        .spawn()
        .await
        .unwrap();
    let (timed_pid, timed_dirs) = (c.pid(), c.cgroup_paths());
    drop(c);
    assert!(common::eventually(5, || killed_dirs.iter().all(|d| !d.exists())).await);
    assert!(
        detached_dirs.iter().all(|d| d.exists()),
        "removed while still running"
    );
    assert!(common::eventually(5, || detached_dirs.iter().all(|d| !d.exists())).await);
    assert!(common::eventually(5, || !common::running(timed_pid)).await);
    assert!(common::eventually(5, || timed_dirs.iter().all(|d| !d.exists())).await);
    assert!(common::eventually(5, || cellblock::pending_orphans() == 0).await);
    assert!(common::eventually(5, || common::our_cgroup_dirs().is_empty()).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leftovers_are_killed_when_the_first_process_is_reaped() {
    if common::ran_alone(
        module_path!(),
        "leftovers_are_killed_when_the_first_process_is_reaped",
    ) {
        return;
    }
    let _d = common::deadline("leftovers_are_killed_when_the_first_process_is_reaped", 120);
    let _serial = SERIAL.lock().await;
    // The first process exits at once, leaving a background child in the cgroup.
    let mut c = Container::builder("/bin/sh")
        .args(["-c", "sleep 1000 >/dev/null 2>&1 & echo $!"])
        .cgroup_accounting(true)
        .stdout(Stdio::piped())
        .spawn()
        .await
        .unwrap();
    let dirs = c.cgroup_paths();
    let mut out = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut c.take_stdout().unwrap(), &mut out)
        .await
        .unwrap();
    let leftover: i32 = out.trim().parse().unwrap();
    assert!(common::running(leftover));
    let status = c.wait().await.unwrap();
    assert!(status.success());
    assert!(
        common::eventually(5, || !common::running(leftover)).await,
        "leftover {leftover} survived"
    );
    assert!(common::eventually(5, || dirs.iter().all(|d| !d.exists())).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_spawns_leave_no_cgroup() {
    if common::ran_alone(module_path!(), "cancelled_spawns_leave_no_cgroup") {
        return;
    }
    let _d = common::deadline("cancelled_spawns_leave_no_cgroup", 120);
    let _serial = SERIAL.lock().await;
    let (mut finished, mut cancelled) = (0, 0);
    // How long a spawn takes here (it varies with the host and its load): the cancellation
    // points below spread over twice that.
    let mut quickest = Duration::MAX;
    for _ in 0..4 {
        let t = std::time::Instant::now();
        drop(
            Container::builder("/bin/sleep")
                .arg("1000")
                .pids_limit(8)
                .kill_on_drop(true)
                .spawn()
                .await
                .unwrap(),
        );
        quickest = quickest.min(t.elapsed());
    }
    let step = (quickest / 20).max(Duration::from_micros(50));
    eprintln!("quickest spawn {quickest:?}: cancelling at multiples of {step:?}");
    for i in 0..40u32 {
        let mut b = Container::builder("/bin/sleep");
        b.arg("1000").kill_on_drop(true);
        // Half with a limit of the caller's, half with the default budget alone.
        if i % 2 == 0 {
            b.pids_limit(8);
        }
        // Cancel at various points of the spawn: every fourth at its first await (polled
        // once, then dropped: the clone then completes on a blocking thread with nobody
        // waiting), the others after a deadline (tokio's timer ticks in whole
        // milliseconds, so with spawns under 1 ms these may all finish first).
        let fut = b.spawn();
        let outcome = if i % 4 == 0 {
            futures::FutureExt::now_or_never(fut)
        } else {
            tokio::time::timeout(step * i, fut).await.ok()
        };
        match outcome {
            Some(Ok(_c)) => finished += 1,
            Some(Err(e)) => panic!("spawn {i} failed (not cancelled): {e}"),
            None => cancelled += 1,
        }
    }
    eprintln!("{finished} of 40 spawns finished before their deadline, {cancelled} were cancelled");
    // Both paths ran: otherwise this test would prove nothing about cancellation (or about
    // cleanup after a finished spawn).
    assert!(
        finished > 0 && cancelled > 0,
        "finished {finished}, cancelled {cancelled}"
    );
    assert!(
        common::eventually(10, || common::our_cgroup_dirs().is_empty()).await,
        "left behind: {:?}",
        common::our_cgroup_dirs()
    );
    assert!(common::eventually(10, || cellblock::pending_orphans() == 0).await);
    assert!(common::eventually(5, || common::zombie_children().is_empty()).await);
}

const SWEEP_INNER: &str = "CELLBLOCK_SWEEP_INNER";
const SWEEP_PARENT: &str = "CELLBLOCK_SWEEP_PARENT";

/// A supervisor killed with SIGKILL cannot remove its containers' cgroups: its container
/// dies (its lifeline), and an empty `cellblock/<pid>-0` stays. The next supervisor on the
/// same parent removes it when it first uses the parent, and leaves alone one whose pid is
/// alive (here pid 1's name, made by the test). Both supervisors are this binary re-run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_supervisors_cgroups_are_swept_by_the_next() {
    if let Ok(mode) = std::env::var(SWEEP_INNER) {
        // Both supervisors use a parent of the test's own (relative to their cgroup, which
        // is the test's): every cellblock process sweeps the parents it uses, so with the
        // shared default parent any other supervisor on the host (another test's) could
        // sweep the leftover before the control below has seen it.
        let parent = std::env::var(SWEEP_PARENT).unwrap();
        if mode == "hold" {
            let c = Container::builder("/bin/sleep")
                .arg("60")
                .namespaces(cellblock::Namespaces::PID | cellblock::Namespaces::MOUNT)
                .cgroup_parent(&parent)
                .spawn()
                .await
                .unwrap();
            println!("\nSPAWNED {}", c.pid());
            tokio::time::sleep(Duration::from_secs(60)).await;
        } else {
            let st = Container::builder("/bin/true")
                .cgroup_parent(&parent)
                .status()
                .await
                .unwrap();
            assert!(st.success());
        }
        return;
    }
    if common::ran_alone(
        module_path!(),
        "a_killed_supervisors_cgroups_are_swept_by_the_next",
    ) {
        return;
    }
    let _s = SERIAL.lock().await;
    let _d = common::deadline("a_killed_supervisors_cgroups_are_swept_by_the_next", 60);
    let base_name = format!("sweep-{}", std::process::id());
    let base = common::own_pids_dir().join(&base_name);
    std::fs::create_dir(&base).unwrap();
    let inner = |mode: &str| {
        let mut cmd = std::process::Command::new(std::env::current_exe().unwrap());
        cmd.args([
            "--exact",
            &common::test_name(
                module_path!(),
                "a_killed_supervisors_cgroups_are_swept_by_the_next",
            ),
            "--nocapture",
        ])
        .env(SWEEP_INNER, mode)
        .env(SWEEP_PARENT, &base_name)
        .stdout(std::process::Stdio::piped());
        common::spawn_retrying(&mut cmd)
    };
    let mut hold = inner("hold");
    let mut out = std::io::BufReader::new(hold.stdout.take().unwrap());
    let mut line = String::new();
    while !line.starts_with("SPAWNED") {
        line.clear();
        assert!(std::io::BufRead::read_line(&mut out, &mut line).unwrap() > 0);
    }
    let container: i32 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    let parent = base.join("cellblock");
    let left = parent.join(format!("{}-0", hold.id()));
    assert!(left.is_dir(), "{} is not there", left.display());
    hold.kill().unwrap();
    hold.wait().unwrap();
    // The container dies with its supervisor (tests/it/lifeline.rs covers how); whatever of
    // it is still there after that is ended here, by pid (all of it started by this
    // test), so that what stays is the empty cgroup this test is about.
    let procs = || std::fs::read_to_string(left.join("cgroup.procs")).unwrap_or_default();
    let emptied = common::eventually(20, || {
        for p in procs()
            .split_whitespace()
            .filter_map(|p| p.parse::<i32>().ok())
        {
            // SAFETY: kill(2) on a process of the container this test started.
            unsafe { libc::kill(p, libc::SIGKILL) };
        }
        !common::alive(container) && procs().trim().is_empty()
    })
    .await;
    assert!(emptied, "still in {}: {}", left.display(), procs());
    assert!(
        left.is_dir(),
        "the control: a killed supervisor leaves its cgroup"
    );
    let live = parent.join("1-424242");
    std::fs::create_dir(&live).unwrap();
    let st = inner("sweep").wait().unwrap();
    let live_stayed = live.is_dir();
    let _ = std::fs::remove_dir(&live);
    // The sweeping supervisor removed its parent at exit if it was empty; ours then.
    let _ = std::fs::remove_dir(&parent);
    let base_removed = std::fs::remove_dir(&base);
    assert!(st.success());
    assert!(!left.exists(), "{} was not swept", left.display());
    assert!(live_stayed, "a live pid's cgroup was removed");
    base_removed.unwrap_or_else(|e| panic!("{} not left empty: {e}", base.display()));
}
