//! One supervisor, 1,000 containers alive at once: all run, all are reaped, and afterwards
//! no zombie remains and the supervisor's descriptor count is back at its baseline.
//! In a process of its own (`common::ran_alone`) so that nothing else opens descriptors
//! meanwhile, and so that its raised descriptor limit is nobody else's.

use crate::common;

use std::time::Duration;

use cellblock::{Container, Event, Namespaces, Supervisor, Worker};
use futures::StreamExt;

const N: usize = 1000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_containers_alive_at_once() {
    if common::ran_alone(module_path!(), "a_thousand_containers_alive_at_once") {
        return;
    }
    // 1,000 pidfds plus pipes: make sure the soft descriptor limit allows it.
    let (_, hard) =
        nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE).unwrap();
    nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE, hard, hard).unwrap();

    // Warm up (reaper thread, runtime pools), then take the baseline.
    Container::builder("/bin/true").status().await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let fds = common::open_fds();

    let release = std::env::temp_dir().join(format!("cellblock-scale-{}", std::process::id()));
    let _ = std::fs::remove_file(&release);
    let mut sup = Supervisor::new();
    sup.grace_period(Duration::from_secs(1));
    let mut events = sup.events();
    // Each worker waits until the release file exists, then exits 0: all are alive at once.
    let script = format!("while [ ! -e {} ]; do sleep 0.2; done", release.display());
    for i in 0..N {
        let mut b = Container::builder("/bin/sh");
        b.args(["-c", &script])
            .namespaces(Namespaces::UTS | Namespaces::IPC | Namespaces::PID);
        sup.add(Worker::new(format!("w{i}"), b)).unwrap();
    }
    let mut pids = Vec::with_capacity(N);
    while pids.len() < N {
        match events.next().await.unwrap() {
            Event::Started { pid, .. } => pids.push(pid),
            Event::SetupFailed { error, .. } => panic!("setup failed: {error}"),
            _ => {}
        }
    }
    let alive = pids.iter().filter(|p| common::alive(**p)).count();
    assert_eq!(alive, N, "every container is alive at the same time");
    std::fs::write(&release, b"").unwrap();
    let summary = tokio::time::timeout(Duration::from_secs(120), sup.wait_all())
        .await
        .expect("all exit");
    std::fs::remove_file(&release).unwrap();
    assert_eq!(summary.workers.len(), N);
    assert!(summary.all_succeeded(), "{summary}");
    assert!(pids.iter().all(|p| !common::alive(*p)), "all reaped");
    assert!(common::zombie_children().is_empty());
    assert!(
        common::eventually(5, || common::open_fds() == fds).await,
        "descriptors: baseline {} now {}",
        fds.len(),
        common::open_fds().len()
    );
}
