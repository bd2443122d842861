//! Container networking (issue 15): egress through a veth and NAT, published ports,
//! isolation between containers, pods, cleanup, rootless egress.
//!
//! Traffic goes only to servers these tests start themselves: on the host's loopback, or
//! in an "upstream" network namespace a test creates and routes the host to. Never to any
//! other address. Each test uses a bridge and subnet of its own, so they run in parallel.

use std::net::Ipv4Addr;
use std::time::Duration;

use cellblock::{Container, EgressConfig, Namespaces, Network, Proto, Stdio};

use crate::common;

/// An "upstream" host made by the test: a network namespace with a veth to the host
/// (`10.<a>.<b>.1` on the host's side, `.2` inside) and a TCP server in it that answers
/// every connection with `from <peer address>`. Removed on drop.
struct Upstream {
    ns: String,
    link: String,
    server: std::process::Child,
    addr: Ipv4Addr,
    host_side: Ipv4Addr,
}

const SERVER: &str = r#"
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(64)
print("ready", flush=True)
while True:
    c, peer = s.accept()
    c.sendall(("from %s\n" % peer[0]).encode()); c.close()
"#;

fn sh(cmd: &str) {
    let st = std::process::Command::new("/bin/sh")
        .args(["-c", cmd])
        .status()
        .unwrap();
    assert!(st.success(), "{cmd}");
}

impl Upstream {
    fn new(tag: &str, a: u8, b: u8) -> Upstream {
        let ns = format!("cbt-{tag}-{}", std::process::id());
        let link = format!("cbu{tag}");
        let host_side = Ipv4Addr::new(10, a, b, 1);
        let addr = Ipv4Addr::new(10, a, b, 2);
        sh(&format!(
            "ip netns add {ns} && ip link add {link} type veth peer name up0 netns {ns} && \
             ip addr add {host_side}/30 dev {link} && ip link set {link} up && \
             ip -n {ns} addr add {addr}/30 dev up0 && ip -n {ns} link set up0 up && \
             ip -n {ns} link set lo up"
        ));
        let mut server = std::process::Command::new("ip")
            .args([
                "netns",
                "exec",
                &ns,
                "python3",
                "-c",
                SERVER,
                &addr.to_string(),
                "8000",
            ])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        use std::io::BufRead;
        std::io::BufReader::new(server.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready");
        Upstream {
            ns,
            link,
            server,
            addr,
            host_side,
        }
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
        let _ = std::process::Command::new("ip")
            .args(["link", "del", &self.link])
            .status();
        let _ = std::process::Command::new("ip")
            .args(["netns", "del", &self.ns])
            .status();
    }
}

/// A bash command that connects to `addr:port` (at most `secs` seconds) and prints what
/// it reads, or `FAILED`.
fn connect(addr: impl std::fmt::Display, port: u16, secs: u32) -> String {
    format!("timeout {secs} bash -c 'exec 3<>/dev/tcp/{addr}/{port} && cat <&3' 2>/dev/null || echo FAILED")
}

fn cfg(bridge: &str, third: u8) -> EgressConfig {
    EgressConfig::default()
        .bridge(bridge)
        .subnet(Ipv4Addr::new(10, 201, third, 0), 24)
}

async fn run(net: Network, cmd: &str) -> String {
    let out = Container::builder("/bin/bash")
        .args(["-c", cmd])
        .namespaces(common::ns())
        .network(net)
        .output()
        .await
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn egress_reaches_an_upstream_through_nat_and_none_does_not() {
    let up = Upstream::new("eg", 202, 1);
    let c = cfg("cbt-eg", 1);
    let got = run(Network::Egress(c.clone()), &connect(up.addr, 8000, 5)).await;
    // The server sees the host's address on the upstream link: the container's
    // 10.201.1.x was masqueraded.
    assert_eq!(got, format!("from {}", up.host_side));
    let none = run(Network::None, &connect(up.addr, 8000, 2)).await;
    assert_eq!(none, "FAILED");
    // The old spelling is the same: lo only.
    let out = Container::builder("/bin/bash")
        .args(["-c", &connect(up.addr, 8000, 2)])
        .namespaces(common::ns() | Namespaces::NET)
        .stdout(Stdio::piped())
        .output()
        .await
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "FAILED");
    cellblock::net_shutdown("cbt-eg").await.unwrap();
    let left = cellblock::net_leftovers(&c).await.unwrap();
    assert_eq!(left, cellblock::Leftovers::default(), "{left:?}");
    drop(up);
    let _ = Duration::from_secs(1);
}
