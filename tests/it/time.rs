//! TIME namespaces: CLOCK_BOOTTIME / CLOCK_MONOTONIC offsets seen inside, not on the host.

use crate::common;

use cellblock::{Container, Error, NamespaceIds, Namespaces, Stdio};
use tokio::io::AsyncBufReadExt;

fn monotonic_secs() -> i64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec
}

const TEN_DAYS: i64 = 10 * 86_400;

#[tokio::test(flavor = "multi_thread")]
async fn uptime_inside_is_shifted_and_the_hosts_is_not() {
    let before = common::host_uptime();
    let mut c = Container::builder("/bin/sh")
        .args([
            "-c",
            "cat /proc/uptime; readlink /proc/self/ns/time; exec sleep 30",
        ])
        .namespaces(Namespaces::TIME | Namespaces::PID)
        .boottime_offset(TEN_DAYS)
        .monotonic_offset(TEN_DAYS)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .await
        .unwrap();
    let mut lines = tokio::io::BufReader::new(c.take_stdout().unwrap()).lines();
    let uptime: f64 = lines
        .next_line()
        .await
        .unwrap()
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let ns_inside = lines.next_line().await.unwrap().unwrap();
    let after = common::host_uptime();
    // Inside: the host's uptime plus ten days (give or take the spawn).
    assert!(
        uptime >= before + TEN_DAYS as f64 - 1.0,
        "inside {uptime}, host {before}"
    );
    assert!(
        uptime <= after + TEN_DAYS as f64 + 1.0,
        "inside {uptime}, host {after}"
    );
    // Host: unshifted (the host's uptime read after the container's is still ten days
    // behind it), the host sees the container's offsets, and the container is in another
    // time namespace.
    assert!(
        after < uptime - TEN_DAYS as f64 + 1.0,
        "the host's uptime {after} is shifted too (inside {uptime})"
    );
    let offsets = std::fs::read_to_string(format!("/proc/{}/timens_offsets", c.pid())).unwrap();
    assert!(
        offsets
            .lines()
            .any(|l| l.split_whitespace().eq(["boottime", "864000", "0"]))
            && offsets
                .lines()
                .any(|l| l.split_whitespace().eq(["monotonic", "864000", "0"])),
        "offsets seen from the host: {offsets}"
    );
    let ids = c.namespace_ids().unwrap();
    let host = NamespaceIds::current().unwrap();
    assert_ne!(ids.get(Namespaces::TIME), host.get(Namespaces::TIME));
    assert_eq!(
        ns_inside,
        format!("time:[{}]", ids.get(Namespaces::TIME).unwrap())
    );
    c.start_kill().unwrap();
    c.wait().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn monotonic_clock_inside_is_shifted() {
    // CLOCK_MONOTONIC through the vDSO needs a program that reads it: python3. (No shell
    // tool prints it; /proc/uptime is CLOCK_BOOTTIME, checked above.)
    assert!(
        std::path::Path::new("/usr/bin/python3").exists(),
        "this test needs /usr/bin/python3 (Debian package python3) to read CLOCK_MONOTONIC inside"
    );
    let host = monotonic_secs();
    let out = Container::builder("/usr/bin/python3")
        .args([
            "-c",
            "import time; print(int(time.clock_gettime(time.CLOCK_MONOTONIC)))",
        ])
        .namespaces(Namespaces::TIME)
        .monotonic_offset(-(host / 2))
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let inside: i64 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    let host_after = monotonic_secs();
    assert!(
        inside <= host_after - host / 2 + 1 && inside >= host - host / 2 - 1,
        "inside {inside}, host {host}"
    );
    assert!(host_after >= host);
}

#[tokio::test]
async fn offsets_need_a_time_namespace() {
    let err = Container::builder("/bin/true")
        .boottime_offset(5)
        .status()
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::NeedsNamespace {
                needs: Namespaces::TIME,
                ..
            }
        ),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn time_namespace_without_offsets_and_with_others() {
    let out = Container::builder("/bin/sh")
        .args(["-c", "readlink /proc/self/ns/time; hostname"])
        .namespaces(Namespaces::TIME | Namespaces::UTS | Namespaces::MOUNT | Namespaces::PID)
        .hostname("timely")
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let host = std::fs::read_link("/proc/self/ns/time").unwrap();
    let mut l = text.lines();
    assert_ne!(l.next().unwrap(), host.to_string_lossy());
    assert_eq!(l.next().unwrap(), "timely");
}
