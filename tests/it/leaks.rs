//! No path — success, failure, drop, cancellation — leaves a zombie, an open descriptor or
//! a stuck blocking thread. The test runs in a process of its own (`common::ran_alone`),
//! so that nothing else runs there while it counts descriptors, children and threads.

use crate::common;

use std::time::Duration;

use cellblock::{Container, Error, Namespaces, Stage, Stdio};

#[test]
fn nothing_is_left_behind() {
    if common::ran_alone(module_path!(), "nothing_is_left_behind") {
        return;
    }
    // Blocking threads retire after 200 ms idle, so a stuck one would show up.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_keep_alive(Duration::from_millis(200))
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        // Warm up: start the reaper thread and the runtime's pools, then take the baseline
        // (a still-running dropped container makes the reaper start its epoll thread; a
        // mount namespace makes the process's /dev template, one descriptor held for the
        // life of the process).
        drop(
            Container::builder("/bin/sleep")
                .arg("0.2")
                .namespaces(common::ns())
                .spawn()
                .await
                .unwrap(),
        );
        // A container armed with the parent-death signal starts the spawner threads (one
        // per CPU, for the life of the process), which the loop's own such containers use.
        let warm = Container::builder("/bin/true")
            .namespaces(common::ns())
            .init(false)
            .status()
            .await
            .unwrap();
        assert!(warm.success());
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

        // Inputs for the failures inside the child: a directory that exists on the host
        // under /mnt (hidden inside by a tmpfs over /mnt), and an executable file that is
        // not a program.
        let scratch = std::path::PathBuf::from(format!("/mnt/cellblock-leaks-{}", std::process::id()));
        let hidden_dir = scratch.join("cwd");
        std::fs::create_dir_all(&hidden_dir).unwrap();
        let not_a_program = scratch.join("garbage");
        std::fs::write(&not_a_program, b"\x01\x02 not an ELF, no #! line\n").unwrap();
        std::fs::set_permissions(&not_a_program, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();

        for i in 0..50 {
            // Success with every kind of stdio.
            let out = Container::builder("/bin/sh")
                .args(["-c", "echo out; echo err >&2"])
                .namespaces(common::ns())
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
            // Rejected before clone as well (the parent checks both).
            let err = Container::builder("/etc/hostname-cellblock-missing")
                .spawn()
                .await;
            assert!(err.is_err());
            let err = Container::builder("/bin/true")
                .namespaces(common::ns())
                .current_dir("/nonexistent")
                .stdout(Stdio::piped())
                .spawn()
                .await;
            assert!(err.is_err());
            // Failing inside the child (after clone, pipes open), asserted by the stage the
            // child reported: the working directory exists on the host but is hidden by a
            // tmpfs mounted over its parent inside...
            let err = Container::builder("/bin/true")
                .namespaces(common::ns())
                .tmpfs("/mnt")
                .current_dir(&hidden_dir)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .await;
            assert!(
                matches!(err, Err(Error::Setup { stage: Stage::Chdir, errno }) if errno.0 == libc::ENOENT),
                "{err:?}"
            );
            // ...and a program that passes every check in the parent and then fails its execve
            // (ENOEXEC), with the init (in the init's start) and without it...
            for init in [true, false] {
                let err = Container::builder(&not_a_program)
                    .namespaces(common::ns())
                    .init(init)
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .spawn()
                    .await;
                assert!(
                    matches!(err, Err(Error::Setup { stage: Stage::Execve | Stage::InitStart, errno }) if errno.0 == libc::ENOEXEC),
                    "init {init}: {err:?}"
                );
            }
            // Dropped while running: killed (kill_on_drop) or left to finish.
            let c = Container::builder("/bin/sleep")
                .arg("10")
                .namespaces(common::ns())
                .stdout(Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .await
                .unwrap();
            drop(c);
            let c = Container::builder("/bin/true")
                .namespaces(common::ns())
                .spawn()
                .await
                .unwrap();
            drop(c);
            // Spawn cancelled half-way (the future dropped while the clone runs).
            let mut b = Container::builder("/bin/sleep");
            b.arg("10").namespaces(common::ns() | Namespaces::NET);
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
        std::fs::remove_dir_all(&scratch).unwrap();
        println!(
            "fds {:?}, threads {} (baseline {base_threads})",
            common::open_fds().len(),
            common::thread_count()
        );
    });
}
