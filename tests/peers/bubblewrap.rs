//! bubblewrap's own tests, ported: same scenarios and assertions, only the API renamed.
//! Upstream: https://github.com/containers/bubblewrap, `tests/`. bubblewrap's `$RUN` is
//! `bwrap --bind / / --tmpfs /tmp`: a new mount namespace over the host's tree with a
//! private `/tmp`; here `namespaces(MOUNT).tmpfs("/tmp")`.
//!
//! Deliberate differences, asserted rather than skipped: none in the scenarios ported so far.

#[path = "../common/mod.rs"]
mod common;

use cellblock::{Container, ContainerBuilder, Namespaces, Stdio};
use tokio::io::AsyncBufReadExt;

/// `$RUN`: a new mount namespace with a private `/tmp`.
fn run(program: &str) -> ContainerBuilder {
    let mut b = Container::builder(program);
    b.namespaces(Namespaces::MOUNT).tmpfs("/tmp");
    b
}

/// Starts sandbox 1 of the two "specifying" tests: it prints `readlink /proc/self/ns/<ns>`,
/// then waits on stdin (upstream: `cat < donepipe`). Returns it and the line.
async fn first_sandbox(extra: Namespaces, ns: &str) -> (Container, String) {
    let mut b = run("/bin/sh");
    b.args(["-c", &format!("readlink /proc/self/ns/{ns}; cat")])
        .namespaces(Namespaces::MOUNT | Namespaces::USER | extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true);
    let mut c = b.spawn().await.unwrap();
    let mut lines = tokio::io::BufReader::new(c.take_stdout().unwrap()).lines();
    let line = lines.next_line().await.unwrap().expect("sandbox 1 printed its namespace");
    (c, line)
}

// Upstream: tests/test-specifying-userns.sh ("Test --userns"): a second sandbox given the
// first one's user namespace (`--userns FD`, with its own new mount namespace) is in it.
#[tokio::test(flavor = "multi_thread")]
async fn test_specifying_userns() {
    let _d = common::deadline("specifying userns", 60);
    let (mut first, sandbox_userns) = first_sandbox(Namespaces::empty(), "user").await;
    let out = run("/bin/readlink")
        .arg("/proc/self/ns/user")
        .join_path(Namespaces::USER, format!("/proc/{}/ns/user", first.pid()))
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    drop(first.take_stdin()); // echo foo > donepipe
    first.wait().await.unwrap();
    // assert_files_equal sandbox-userns sandbox2-userns
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), sandbox_userns);
}

// Upstream: tests/test-specifying-pidns.sh ("Test --pidns"): `--userns FD --pidns FD` of a
// sandbox made with `--unshare-user --unshare-pid` puts the second sandbox in its PID
// namespace.
#[tokio::test(flavor = "multi_thread")]
async fn test_specifying_pidns() {
    let _d = common::deadline("specifying pidns", 60);
    let (mut first, sandbox_pidns) = first_sandbox(Namespaces::PID, "pid").await;
    let out = run("/bin/readlink")
        .arg("/proc/self/ns/pid")
        .join_path(Namespaces::USER, format!("/proc/{}/ns/user", first.pid()))
        .join_path(Namespaces::PID, format!("/proc/{}/ns/pid", first.pid()))
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    drop(first.take_stdin());
    first.wait().await.unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), sandbox_pidns);
}
