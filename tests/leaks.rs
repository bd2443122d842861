//! No path — success, failure, drop, cancellation — leaves a zombie, an open descriptor or
//! a stuck blocking thread. One test in its own binary, so that nothing else runs while it
//! counts descriptors, children and threads.

mod common;

use std::time::Duration;

use cellblock::{Container, Namespaces, Stdio};

const NS: Namespaces = Namespaces::UTS
    .union(Namespaces::IPC)
    .union(Namespaces::PID)
    .union(Namespaces::MOUNT);

#[test]
fn nothing_is_left_behind() {
    // Blocking threads retire after 200 ms idle, so a stuck one would show up.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_keep_alive(Duration::from_millis(200))
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        // Warm up: start the reaper thread and the runtime's pools, then take the baseline.
        // (a still-running dropped container makes the reaper start its epoll thread).
        drop(
            Container::builder("/bin/sleep")
                .arg("0.2")
                .spawn()
                .await
                .unwrap(),
        );
        assert!(common::eventually(5, || cellblock::pending_orphans() == 0).await);
        tokio::time::sleep(Duration::from_millis(500)).await;
        // Controls: the helpers below do see a zombie child of ours, and descriptors.
        let mut z = std::process::Command::new("/bin/true").spawn().unwrap();
        let zpid = z.id() as i32;
        assert!(common::eventually(5, || common::zombie_children().contains(&zpid)).await);
        z.wait().unwrap();
        let fds = common::open_fds();
        assert!(fds.is_superset(&[0, 1, 2].into()), "{fds:?}");
        let base_threads = common::thread_count();

        for i in 0..50 {
            // Success with every kind of stdio.
            let out = Container::builder("/bin/sh")
                .args(["-c", "echo out; echo err >&2"])
                .namespaces(NS)
                .hostname("leak")
                .stdin(Stdio::piped())
                .output()
                .await
                .unwrap();
            assert!(out.status.success());
            // Rejected before clone.
            assert!(Container::builder("/nonexistent").spawn().await.is_err());
            assert!(Container::builder("/bin/true")
                .hostname("x")
                .spawn()
                .await
                .is_err());
            // Failing inside the child (after clone, pipes open).
            let err = Container::builder("/etc/hostname-cellblock-missing")
                .spawn()
                .await;
            assert!(err.is_err());
            let err = Container::builder("/bin/true")
                .namespaces(NS)
                .current_dir("/nonexistent")
                .stdout(Stdio::piped())
                .spawn()
                .await;
            assert!(err.is_err());
            // Dropped while running: killed (kill_on_drop) or left to finish.
            let c = Container::builder("/bin/sleep")
                .arg("10")
                .namespaces(NS)
                .stdout(Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .await
                .unwrap();
            drop(c);
            let c = Container::builder("/bin/true")
                .namespaces(NS)
                .spawn()
                .await
                .unwrap();
            drop(c);
            // Spawn cancelled half-way (the future dropped while the clone runs).
            let mut b = Container::builder("/bin/sleep");
            b.arg("10").namespaces(NS | Namespaces::NET);
            let _ = tokio::time::timeout(Duration::from_micros(50 * (i % 5)), b.spawn()).await;
        }

        assert!(
            common::eventually(10, || cellblock::pending_orphans() == 0
                && common::zombie_children().is_empty())
            .await,
            "orphans pending: {}, zombies: {:?}",
            cellblock::pending_orphans(),
            common::zombie_children()
        );
        // Every cancelled spawn's child was killed too: nothing of ours still runs.
        let me = std::process::id().to_string();
        let children = common::host(&format!("ps -o pid= --ppid {me} | wc -l"));
        assert_eq!(children, "1", "only the ps itself is our child");

        assert!(
            common::eventually(5, || common::open_fds() == fds).await,
            "descriptors leaked: before {fds:?}, after {:?}",
            common::open_fds()
                .iter()
                .map(|fd| format!(
                    "{fd}->{:?}",
                    std::fs::read_link(format!("/proc/self/fd/{fd}"))
                ))
                .collect::<Vec<_>>()
        );
        assert!(
            common::eventually(5, || common::thread_count() <= base_threads).await,
            "blocking threads did not retire: {} > {base_threads}",
            common::thread_count()
        );
        println!(
            "fds {:?}, threads {} (baseline {base_threads})",
            common::open_fds().len(),
            common::thread_count()
        );
    });
}
