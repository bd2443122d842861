//! Die with the supervisor: containers end within 1 s of their supervisor's SIGKILL, and
//! not a moment earlier (not when the thread that cloned them retires).

use crate::common;

use std::io::{BufRead, BufReader};
use std::os::unix::fs::MetadataExt;
use std::process::{Command, Stdio as StdStdio};
use std::time::{Duration, Instant};

use cellblock::{Container, Namespaces};

const SUPERVISOR_ENV: &str = "CELLBLOCK_TEST_SUPERVISOR";

/// Runs as the supervisor process when the test binary re-executes itself (see
/// `supervisor_killed_takes_its_containers_along`); otherwise does nothing.
#[test]
fn supervisor_process() {
    if std::env::var_os(SUPERVISOR_ENV).is_none() {
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let pid_ns = Namespaces::PID | Namespaces::MOUNT | Namespaces::UTS;
        let mut keep = Vec::new();
        // With init: a workload with a child and an orphan of its own.
        let c = Container::builder("/bin/sh")
            .args(["-c", "(sleep 100 &); sleep 100 & sleep 100"])
            .namespaces(pid_ns)
            .spawn()
            .await
            .unwrap();
        keep.push(("init", c));
        // init(false): the workload itself is PID 1.
        let c = Container::builder("/bin/sleep")
            .arg("100")
            .namespaces(pid_ns)
            .init(false)
            .spawn()
            .await
            .unwrap();
        keep.push(("noinit", c));
        // No PID namespace at all (no init).
        let c = Container::builder("/bin/sleep")
            .arg("100")
            .namespaces(Namespaces::UTS)
            .spawn()
            .await
            .unwrap();
        keep.push(("nopidns", c));
        // No PID namespace, init(true): the init as a subreaper, with an orphan that
        // left the workload's session; the init must find and kill it itself.
        let c = Container::builder("/bin/sh")
            .args(["-c", "(setsid sleep 100 &); sleep 100"])
            .namespaces(Namespaces::UTS)
            .init(true)
            .spawn()
            .await
            .unwrap();
        keep.push(("subreaper", c));
        // die_with_supervisor(false), with and without init: these must outlive us.
        let c = Container::builder("/bin/sh")
            .args(["-c", "sleep 100 & sleep 100"])
            .namespaces(pid_ns)
            .die_with_supervisor(false)
            .spawn()
            .await
            .unwrap();
        keep.push(("detached-init", c));
        let c = Container::builder("/bin/sleep")
            .arg("100")
            .namespaces(Namespaces::UTS)
            .die_with_supervisor(false)
            .spawn()
            .await
            .unwrap();
        keep.push(("detached-noinit", c));
        tokio::time::sleep(Duration::from_millis(300)).await;
        for (kind, c) in &keep {
            let ino = c.namespace_ids().unwrap().get(Namespaces::PID).unwrap();
            println!("CONTAINER {kind} {} {ino}", c.pid());
        }
        println!("READY");
        tokio::time::sleep(Duration::from_secs(60)).await;
    });
}

#[tokio::test(flavor = "multi_thread")]
async fn supervisor_killed_takes_its_containers_along() {
    let exe = std::env::current_exe().unwrap();
    let mut sup = Command::new(exe)
        .args([
            "--exact",
            &common::test_name(module_path!(), "supervisor_process"),
            "--nocapture",
            "--test-threads=1",
        ])
        .env(SUPERVISOR_ENV, "1")
        .stdout(StdStdio::piped())
        .stderr(StdStdio::inherit())
        .spawn()
        .unwrap();
    let my_pid_ns = std::fs::metadata("/proc/self/ns/pid").unwrap().ino();
    let mut containers = Vec::new();
    let mut out = BufReader::new(sup.stdout.take().unwrap());
    let mut line = String::new();
    while out.read_line(&mut line).unwrap() > 0 {
        // libtest prints "test supervisor_process ... " before the test's own output.
        if line.trim().ends_with("READY") {
            break;
        }
        if let Some((_, rest)) = line.trim().split_once("CONTAINER ") {
            let f: Vec<&str> = rest.split_whitespace().collect();
            containers.push((
                f[0].to_string(),
                f[1].parse::<i32>().unwrap(),
                f[2].parse::<u64>().unwrap(),
            ));
        }
        line.clear();
    }
    assert_eq!(containers.len(), 6, "supervisor output: {line}");
    // The subreaper init's descendants (no PID namespace to find them by): the workload
    // and the orphan it handed to the init.
    let subreaper_init = containers.iter().find(|c| c.0 == "subreaper").unwrap().1;
    let descendants = |pid: i32| {
        let mut all = Vec::new();
        let mut todo = vec![pid];
        while let Some(p) = todo.pop() {
            let kids = common::children_of(p);
            all.extend(&kids);
            todo.extend(kids);
        }
        all
    };
    assert!(common::eventually(5, || descendants(subreaper_init).len() >= 2).await);
    let subreaper_tree = descendants(subreaper_init);
    // Everything is running before the kill, and the namespaced containers have the
    // processes we expect (init + sh + 2 sleeps + orphan sleep; 1 sleep).
    for (kind, pid, ino) in &containers {
        assert!(common::running(*pid), "{kind} not running before the kill");
        if *ino != my_pid_ns {
            let n = common::live_in_pid_ns(*ino).len();
            assert!(
                n >= if kind == "init" { 4 } else { 1 },
                "{kind}: {n} processes"
            );
        }
    }
    // SIGKILL: no chance for the supervisor to clean anything up.
    sup.kill().unwrap();
    let killed_at = Instant::now();
    sup.wait().unwrap();
    tokio::time::sleep(Duration::from_secs(1).saturating_sub(killed_at.elapsed())).await;
    let (detached, containers): (Vec<_>, Vec<_>) = containers
        .into_iter()
        .partition(|(kind, _, _)| kind.starts_with("detached"));
    // Opted out: still running, with everything in their PID namespaces. Then we end them
    // ourselves (by pid: the init takes its namespace along).
    for (kind, pid, ino) in &detached {
        assert!(
            common::running(*pid),
            "{kind} container {pid} died with its supervisor"
        );
        if *ino != my_pid_ns {
            let n = common::live_in_pid_ns(*ino).len();
            assert!(
                n >= 3,
                "{kind}: {n} processes left after the supervisor died"
            );
        }
    }
    for (_, pid, _) in &detached {
        // SAFETY: plain syscall on a pid we started and saw alive just now.
        unsafe { libc::kill(*pid, libc::SIGKILL) };
    }
    for (kind, pid, ino) in &detached {
        let gone = common::eventually(5, || {
            !common::running(*pid) && (*ino == my_pid_ns || common::live_in_pid_ns(*ino).is_empty())
        })
        .await;
        assert!(gone, "{kind} container {pid} still running after SIGKILL");
    }
    for p in subreaper_tree {
        assert!(
            !common::running(p),
            "process {p} of the subreaper container survived its supervisor by 1 s"
        );
    }
    for (kind, pid, ino) in &containers {
        assert!(
            !common::running(*pid),
            "{kind} container {pid} survived its supervisor by 1 s"
        );
        if *ino != my_pid_ns {
            let left = common::live_in_pid_ns(*ino);
            assert!(
                left.is_empty(),
                "{kind}: processes left in its PID namespace: {left:?}"
            );
        }
    }
}

/// Threads of this process whose name starts with `prefix`.
fn threads_named(prefix: &str) -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .flatten()
        .filter(|t| {
            std::fs::read_to_string(t.path().join("comm"))
                .map(|c| c.trim().starts_with(prefix))
                .unwrap_or(false)
        })
        .count()
}

#[test]
fn containers_outlive_the_thread_that_cloned_them() {
    // Blocking threads retire after 100 ms idle here (tokio's default is 10 s).
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("cb-retire")
        .thread_keep_alive(Duration::from_millis(100))
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let pid_ns = Namespaces::PID | Namespaces::MOUNT | Namespaces::UTS;
        let mut cs = Vec::new();
        for init in [true, false] {
            cs.push(
                Container::builder("/bin/sleep")
                    .arg("30")
                    .namespaces(pid_ns)
                    .init(init)
                    .kill_on_drop(true)
                    .spawn()
                    .await
                    .unwrap(),
            );
        }
        cs.push(
            Container::builder("/bin/sleep")
                .arg("30")
                .namespaces(Namespaces::UTS)
                .kill_on_drop(true)
                .spawn()
                .await
                .unwrap(),
        );
        // Make sure at least one blocking thread existed, then let it retire.
        tokio::task::spawn_blocking(|| ()).await.unwrap();
        assert!(
            threads_named("cb-retire") >= 2,
            "no blocking thread was started"
        );
        let deadline = Instant::now() + Duration::from_secs(5);
        while threads_named("cb-retire") > 1 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(
            threads_named("cb-retire"),
            1,
            "the blocking threads did not retire"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
        for c in &mut cs {
            assert!(
                common::running(c.pid()),
                "container {} died with the thread that cloned it",
                c.pid()
            );
            assert!(c.try_wait().unwrap().is_none());
        }
        for c in &mut cs {
            c.start_kill().unwrap();
            c.wait().await.unwrap();
        }
    });
}

/// Spawned from tasks on a multi-thread runtime's workers (where the clone runs in
/// `block_in_place`, on the worker thread itself or handed to a spawner thread), the
/// containers still live after the whole runtime, workers and blocking pool, has shut
/// down and its threads have exited.
#[test]
fn containers_outlive_the_runtime_whose_workers_spawned_them() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("cb-gone")
        .enable_all()
        .build()
        .unwrap();
    let cs = rt
        .block_on(rt.spawn(async {
            assert!(tokio::runtime::worker_index().is_some());
            let pid_ns = Namespaces::PID | Namespaces::MOUNT | Namespaces::UTS;
            let mut cs = Vec::new();
            for (ns, init) in [(pid_ns, true), (pid_ns, false), (Namespaces::UTS, false)] {
                cs.push(
                    Container::builder("/bin/sleep")
                        .arg("30")
                        .namespaces(ns)
                        .init(init)
                        .kill_on_drop(true)
                        .spawn()
                        .await
                        .unwrap(),
                );
            }
            cs
        }))
        .unwrap();
    rt.shutdown_timeout(Duration::from_secs(5));
    let deadline = Instant::now() + Duration::from_secs(5);
    while threads_named("cb-gone") > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        threads_named("cb-gone"),
        0,
        "the runtime's threads are still there"
    );
    std::thread::sleep(Duration::from_millis(300));
    for c in &cs {
        assert!(
            common::running(c.pid()),
            "container {} died with the runtime that spawned it",
            c.pid()
        );
    }
    // Dropping kills them (kill_on_drop) and hands them to the background reaper, which
    // needs no runtime.
    let pids: Vec<i32> = cs.iter().map(|c| c.pid()).collect();
    drop(cs);
    let deadline = Instant::now() + Duration::from_secs(5);
    while pids.iter().any(|&p| common::running(p)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        !pids.iter().any(|&p| common::running(p)),
        "dropped containers still run"
    );
}

/// Many spawns at once from worker tasks, with and without an init (the two cloning
/// paths), all start and report their own exit codes.
#[test]
fn concurrent_spawns_from_worker_tasks() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let tasks: Vec<_> = (0..16)
            .map(|i| {
                tokio::spawn(async move {
                    for j in 0..4 {
                        let code = (i * 4 + j) % 50;
                        let status = Container::builder("/bin/sh")
                            .arg("-c")
                            .arg(format!("exit {code}"))
                            .namespaces(Namespaces::PID | Namespaces::MOUNT)
                            .init(i % 2 == 0)
                            .status()
                            .await
                            .unwrap();
                        assert_eq!(status.code(), Some(code));
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
    });
}
