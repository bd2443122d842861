//! Failure paths of the isolation features leave no descriptor and no zombie behind.
//! One test alone in its binary, so the descriptor table is not shared with other tests.

use crate::common;

use cellblock::{Container, Error, Namespaces};
use common::rootfs::{make_root, use_root, TempDir};

#[tokio::test(flavor = "multi_thread")]
async fn failures_leave_no_fd_and_no_zombie() {
    if common::ran_alone(module_path!(), "failures_leave_no_fd_and_no_zombie") {
        return;
    }
    let t = TempDir::new("failures");
    let root = make_root(t.path());
    // Warm up: the background reaper and the stack pool exist from here on.
    let mut target = Container::builder("/bin/sleep")
        .arg("60")
        .namespaces(Namespaces::PID | Namespaces::MOUNT | Namespaces::UTS)
        .kill_on_drop(true)
        .spawn()
        .await
        .unwrap();
    target.exec("/bin/true").unwrap().status().await.unwrap();
    let before = common::open_fds();

    // Rejected before clone.
    let mut b = Container::builder("/bin/true");
    b.namespaces(Namespaces::MOUNT);
    use_root(&mut b, &root);
    assert!(matches!(
        b.bind("/nope", "/tmp").status().await,
        Err(Error::BadMount { .. })
    ));
    let r = Container::builder("/bin/true")
        .join_path(Namespaces::NET, "/proc/self/ns/uts")
        .status()
        .await;
    assert!(matches!(r, Err(Error::BadJoin { .. })));
    // Failing inside the child, on each clone path.
    let r = Container::builder("/bin/true")
        .namespaces(Namespaces::USER | Namespaces::MOUNT)
        .mount_proc()
        .status()
        .await;
    assert!(matches!(r, Err(Error::Setup { .. })), "{r:?}");
    let r = Container::builder("/bin/true")
        .namespaces(Namespaces::USER | Namespaces::MOUNT)
        .uid_map(0, 100_000, 10)
        .gid_map(0, 100_000, 10)
        .mount_proc()
        .status()
        .await;
    assert!(matches!(r, Err(Error::Setup { .. })), "{r:?}");
    let r = target
        .exec("/bin/true")
        .unwrap()
        .current_dir("/nonexistent")
        .status()
        .await;
    assert!(matches!(r, Err(Error::Setup { .. })), "{r:?}");
    let mut b = Container::builder("/bin/true");
    b.namespaces(Namespaces::MOUNT | Namespaces::PID)
        .tmpfs("/tmp")
        .mount_dev();
    use_root(&mut b, &root);
    b.current_dir("/tmp/none");
    assert!(matches!(b.status().await, Err(Error::Setup { .. })));
    // And successes on every path, for good measure.
    Container::builder("/bin/true")
        .namespaces(Namespaces::USER | Namespaces::TIME)
        .uid_map(0, 100_000, 10)
        .gid_map(0, 100_000, 10)
        .boottime_offset(1)
        .status()
        .await
        .unwrap();
    target.exec("/bin/true").unwrap().status().await.unwrap();

    assert!(common::eventually(5, || common::zombie_children().is_empty()).await);
    assert!(
        common::eventually(5, || common::open_fds() == before).await,
        "{:?} vs {before:?}",
        common::open_fds()
    );
    target.start_kill().unwrap();
    target.wait().await.unwrap();
}
