//! The pool of host id blocks behind the default identity (`src/idpool.rs`), with a pool of
//! two blocks so that running out can be seen: a block is never lent twice at once, not
//! across supervisors either; a block whose container may have left a process behind (no
//! PID namespace) is not lent again while such a process lives.
//!
//! The test runs in a process of its own (`common::ran_alone`): the pool is process-wide.

use crate::common;

use cellblock::{Container, Error, IdPool, Namespaces};

/// Two blocks far from the default pool, so that no other test's containers share them.
const POOL: IdPool = IdPool {
    first: 0x7000_0000,
    blocks: 2,
};

/// The first host id of a live container's block, from the host's side.
fn block_of(pid: i32) -> u32 {
    let map = std::fs::read_to_string(format!("/proc/{pid}/uid_map")).unwrap();
    map.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocks_are_exclusive_across_containers_and_supervisors() {
    if std::env::var_os("CELLBLOCK_IDPOOL_OTHER").is_some() {
        return other_supervisor().await;
    }
    if common::ran_alone(
        module_path!(),
        "blocks_are_exclusive_across_containers_and_supervisors",
    ) {
        return;
    }
    let d = common::deadline("id pool", 90);
    cellblock::set_id_pool(POOL).unwrap();
    assert_eq!(cellblock::id_pool(), POOL);

    // A: no PID namespace and no cgroup of its own (the default budget's cgroup would end
    // the daemon when A is reaped); it leaves a daemon behind and exits.
    let out = Container::builder("/bin/sh")
        .args([
            "-c",
            "setsid sleep 60 >/dev/null 2>&1 < /dev/null & echo $!",
        ])
        .namespaces(Namespaces::UTS)
        .default_budget(false)
        .output()
        .await
        .unwrap();
    assert!(out.status.success());
    let daemon: i32 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    d.kill_on_expiry(daemon);
    let a = block_of(daemon);
    assert!(a == POOL.first || a == POOL.first + 65536, "block {a}");

    // B: a PID namespace; it takes the other block (A's may still be in use).
    let mut b = Container::builder("/bin/sleep")
        .arg("60")
        .namespaces(Namespaces::PID)
        .kill_on_drop(true)
        .spawn()
        .await
        .unwrap();
    let bb = block_of(b.pid());
    assert_ne!(a, bb, "two live holders of one block");

    // C: no block is free; A's daemon still runs with A's ids, so A's is not lent.
    let err = Container::builder("/bin/true")
        .namespaces(Namespaces::PID)
        .output()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::IdPool { .. }), "{err}");

    // Another supervisor with the same pool while we hold both blocks: it gets none.
    let other = run_other_supervisor().await;
    assert!(other.contains("OTHER-ERR host id pool"), "{other}");

    // B ends (its PID namespace took everything of it): its block is lent again at once.
    b.start_kill().unwrap();
    b.wait().await.unwrap();
    let mut c = Container::builder("/bin/sleep")
        .arg("60")
        .namespaces(Namespaces::PID)
        .kill_on_drop(true)
        .spawn()
        .await
        .unwrap();
    assert_eq!(block_of(c.pid()), bb);
    c.start_kill().unwrap();
    c.wait().await.unwrap();

    // A's daemon ends: A's block may be lent again.
    // SAFETY: kill(2) on the daemon this test started (through its container).
    unsafe { libc::kill(daemon, libc::SIGKILL) };
    assert!(common::eventually(10, || !common::alive(daemon)).await);
    let mut live = Vec::new();
    for _ in 0..2 {
        live.push(
            Container::builder("/bin/sleep")
                .arg("60")
                .namespaces(Namespaces::PID)
                .kill_on_drop(true)
                .spawn()
                .await
                .unwrap(),
        );
    }
    let mut held: Vec<u32> = live.iter().map(|c| block_of(c.pid())).collect();
    held.sort();
    let mut both = vec![a, bb];
    both.sort();
    assert_eq!(held, both, "both blocks are lent again");
    for mut c in live {
        c.start_kill().unwrap();
        c.wait().await.unwrap();
    }

    // Changing the pool while a block is lent is refused.
    let live = Container::builder("/bin/sleep")
        .arg("60")
        .namespaces(Namespaces::PID)
        .kill_on_drop(true)
        .spawn()
        .await
        .unwrap();
    let err = cellblock::set_id_pool(IdPool::DEFAULT).unwrap_err();
    assert!(matches!(err, Error::BadConfig(_)), "{err}");
    drop(live);
    // Bad ranges are refused with the reason.
    let err = cellblock::set_id_pool(IdPool {
        first: 0,
        blocks: 4,
    })
    .unwrap_err();
    assert!(err.to_string().contains("below"), "{err}");
}

/// Runs this test binary again as a second supervisor (see `other_supervisor`).
async fn run_other_supervisor() -> String {
    let out = tokio::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            &common::test_name(
                module_path!(),
                "blocks_are_exclusive_across_containers_and_supervisors",
            ),
            "--nocapture",
        ])
        .env("CELLBLOCK_IDPOOL_OTHER", "1")
        .output()
        .await
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

/// The second supervisor: same pool; prints what its spawn got.
async fn other_supervisor() {
    cellblock::set_id_pool(POOL).unwrap();
    match Container::builder("/bin/true")
        .namespaces(Namespaces::PID)
        .output()
        .await
    {
        Ok(o) => println!("OTHER-OK {:?}", o.status),
        Err(e) => println!("OTHER-ERR {e}"),
    }
}
