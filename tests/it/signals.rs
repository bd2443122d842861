//! Host signals forwarded to containers through a `SignalForwarder`.
//!
//! These tests raise real signals on the test process itself. They are safe because a
//! forwarder subscribed to each signal before it is raised (SIGTERM then no longer
//! terminates the process), and they share one forwarder per signal set so that the
//! tests of this module do not interfere; no other test of the binary subscribes to or
//! raises a signal in the test process.

use crate::common;

use std::time::Duration;

use bytes::Bytes;
use cellblock::{Container, PtySize, Signal, SignalForwarder, Stdio};
use futures::StreamExt;

fn raise(sig: Signal) {
    nix::sys::signal::kill(nix::unistd::Pid::this(), sig).unwrap();
}

async fn next_line(
    lines: &mut (impl futures::Stream<Item = std::io::Result<Bytes>> + Unpin),
) -> String {
    let l = tokio::time::timeout(Duration::from_secs(10), lines.next())
        .await
        .expect("a line in time");
    String::from_utf8(l.unwrap().unwrap().to_vec()).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn host_sigterm_reaches_the_containers_that_asked() {
    let fwd = SignalForwarder::new(&[Signal::SIGTERM, Signal::SIGUSR1]).unwrap();
    let mut all = fwd.subscribe(&[Signal::SIGTERM, Signal::SIGUSR1]);
    let script = "trap 'echo got TERM; exit 0' TERM; trap 'echo got USR1' USR1; echo ready; \
                  while :; do sleep 0.05; done";
    // One container with the init (the default), one without (its own trap makes it
    // handle signals as PID 1), one that asks only for SIGUSR1.
    let spawn = |init: bool| {
        let mut b = Container::builder("/bin/sh");
        b.args(["-c", script])
            .namespaces(common::ns())
            .init(init)
            .stdout(Stdio::piped())
            .kill_on_drop(true);
        b
    };
    let mut with_init = spawn(true).spawn().await.unwrap();
    let mut without_init = spawn(false).spawn().await.unwrap();
    let mut usr1_only = spawn(true).spawn().await.unwrap();
    let mut l1 = with_init.take_stdout().unwrap().lines();
    let mut l2 = without_init.take_stdout().unwrap().lines();
    let mut l3 = usr1_only.take_stdout().unwrap().lines();
    for l in [&mut l1, &mut l2, &mut l3] {
        assert_eq!(next_line(l).await, "ready");
    }
    let _f1 = fwd
        .forward_to(&with_init, &[Signal::SIGTERM, Signal::SIGUSR1])
        .unwrap();
    let _f2 = fwd.forward_to(&without_init, &[Signal::SIGTERM]).unwrap();
    let _f3 = fwd.forward_to(&usr1_only, &[Signal::SIGUSR1]).unwrap();

    raise(Signal::SIGUSR1);
    assert_eq!(next_line(&mut l1).await, "got USR1");
    assert_eq!(next_line(&mut l3).await, "got USR1");
    raise(Signal::SIGTERM);
    assert_eq!(next_line(&mut l1).await, "got TERM");
    assert_eq!(next_line(&mut l2).await, "got TERM");
    assert!(with_init.wait().await.unwrap().success());
    assert!(without_init.wait().await.unwrap().success());
    // The one that asked only for SIGUSR1 did not get SIGTERM: still running.
    let r = tokio::time::timeout(Duration::from_millis(300), l3.next()).await;
    assert!(
        r.is_err(),
        "SIGTERM reached a container that did not ask for it"
    );
    assert!(usr1_only.try_wait().unwrap().is_none());
    // A plain subscriber saw both, in order.
    assert_eq!(all.recv().await, Some(Signal::SIGUSR1));
    assert_eq!(all.recv().await, Some(Signal::SIGTERM));
    usr1_only.start_kill().unwrap();
    usr1_only.wait().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn host_sigwinch_reaches_a_pty_container() {
    // A supervisor relays its own SIGWINCH as a new window size for the container's
    // terminal; the kernel then signals the foreground group inside.
    let fwd = SignalForwarder::new(&[Signal::SIGWINCH]).unwrap();
    let mut winch = fwd.subscribe(&[Signal::SIGWINCH]);
    let mut c = Container::builder("/bin/sh")
        .args([
            "-c",
            "trap 'echo WINCH $(stty size)' WINCH; echo ready; while :; do sleep 0.05; done",
        ])
        .namespaces(common::ns())
        .pty_size(PtySize { rows: 24, cols: 80 })
        .kill_on_drop(true)
        .spawn()
        .await
        .unwrap();
    let pty = c.take_pty().unwrap().unwrap();
    let resizer = pty.resizer();
    let mut out = pty.map(|b| String::from_utf8_lossy(&b.unwrap()).into_owned());
    let mut acc = String::new();
    while !acc.contains("ready") {
        acc.push_str(
            &tokio::time::timeout(Duration::from_secs(10), out.next())
                .await
                .unwrap()
                .unwrap(),
        );
    }
    raise(Signal::SIGWINCH);
    tokio::time::timeout(Duration::from_secs(10), winch.recv())
        .await
        .unwrap()
        .unwrap();
    resizer
        .resize(PtySize {
            rows: 50,
            cols: 132,
        })
        .unwrap();
    while !acc.contains("WINCH 50 132") {
        acc.push_str(
            &tokio::time::timeout(Duration::from_secs(10), out.next())
                .await
                .expect(&acc)
                .unwrap(),
        );
    }
    // And directly: SIGWINCH forwarded through the pidfd to the init reaches the
    // workload as well.
    let _f = fwd.forward_to(&c, &[Signal::SIGWINCH]).unwrap();
    acc.clear();
    raise(Signal::SIGWINCH);
    while !acc.contains("WINCH 50 132") {
        acc.push_str(
            &tokio::time::timeout(Duration::from_secs(10), out.next())
                .await
                .expect(&acc)
                .unwrap(),
        );
    }
    c.start_kill().unwrap();
    c.wait().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn forwarding_ends_with_the_container() {
    let fwd = SignalForwarder::new(&[Signal::SIGUSR2]).unwrap();
    let mut c = Container::builder("/bin/true")
        .namespaces(common::ns())
        .spawn()
        .await
        .unwrap();
    let f = fwd.forward_to(&c, &[Signal::SIGUSR2]).unwrap();
    c.wait().await.unwrap();
    assert!(common::eventually(5, || f.is_finished()).await);
    // Forwarding to a reaped container is refused, not sent to a recycled pid.
    assert!(matches!(
        fwd.forward_to(&c, &[Signal::SIGUSR2]),
        Err(cellblock::Error::AlreadyReaped)
    ));
}
