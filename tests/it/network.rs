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

/// A bridge and subnet of the test's own (10.203.<third>.0/24: apart from the default
/// 10.201.0.0/16 that the example binaries use).
fn cfg(bridge: &str, third: u8) -> EgressConfig {
    EgressConfig::default()
        .bridge(bridge)
        .subnet(Ipv4Addr::new(10, 203, third, 0), 24)
}

/// Polls [`cellblock::net_leftovers`] until nothing is left (namespace teardown, which
/// takes the veths with it, is asynchronous in the kernel) or `secs` pass; returns the last.
async fn until_clean(c: &EgressConfig, secs: u64) -> cellblock::Leftovers {
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let left = cellblock::net_leftovers(c).await.unwrap();
        if left == cellblock::Leftovers::default() || std::time::Instant::now() > deadline {
            return left;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
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
    assert_eq!(until_clean(&c, 30).await, cellblock::Leftovers::default());
    drop(up);
}

/// A container running the test server on `bind:8080` (published on `host_port` if not
/// 0), once it listens.
async fn server(net: Network, bind: &str, host_port: u16) -> Container {
    use futures::StreamExt;
    let mut b = Container::builder("/usr/bin/python3");
    b.args(["-c", SERVER, bind, "8080"])
        .namespaces(common::ns())
        .network(net)
        .stdout(Stdio::piped())
        .kill_on_drop(true);
    if host_port != 0 {
        b.publish(host_port, 8080, Proto::Tcp);
    }
    let mut c = b.spawn().await.unwrap();
    let mut lines = c.take_stdout().unwrap().lines();
    let first = tokio::time::timeout(Duration::from_secs(20), lines.next())
        .await
        .expect("the server starts")
        .unwrap()
        .unwrap();
    assert_eq!(&first[..], b"ready");
    c
}

async fn stop(mut c: Container) {
    let _ = c.start_kill();
    let _ = c.wait().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_published_port_is_reached_from_the_host_loopback() {
    let c = cfg("cbt-pub", 2);
    let srv = server(Network::Egress(c.clone()), "0.0.0.0", 18082).await;
    let got = tokio::task::spawn_blocking(|| {
        use std::io::Read;
        let mut s = std::net::TcpStream::connect_timeout(
            &"127.0.0.1:18082".parse().unwrap(),
            Duration::from_secs(5),
        )
        .unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).unwrap();
        text
    })
    .await
    .unwrap();
    // From the loopback, masqueraded to the bridge's address on its way in.
    assert_eq!(got.trim(), format!("from {}", c.gateway()));
    stop(srv).await;
    // Publishing needs a network with ports: a typed error naming the field.
    let e = Container::builder("/bin/true")
        .namespaces(common::ns())
        .network(Network::None)
        .publish(18083, 80, Proto::Tcp)
        .status()
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            cellblock::Error::BadNetwork {
                field: "publish",
                ..
            }
        ),
        "{e}"
    );
    let e = Container::builder("/bin/true")
        .network(Network::Egress(c.clone()))
        .publish(0, 80, Proto::Tcp)
        .status()
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            cellblock::Error::BadNetwork {
                field: "publish host_port",
                ..
            }
        ),
        "{e}"
    );
    // The container's rules went with it.
    cellblock::net_shutdown("cbt-pub").await.unwrap();
    let left = until_clean(&c, 30).await;
    assert_eq!(left, cellblock::Leftovers::default());
}

/// What container B gets when it connects to container A's port 8080 directly, and to
/// A's published port through the gateway.
async fn b_reaches_a(c: &EgressConfig, host_port: u16) -> (String, String) {
    let a = server(Network::Egress(c.clone()), "0.0.0.0", host_port).await;
    // The first address of a fresh bridge.
    let a_addr = Ipv4Addr::from(u32::from(c.gateway()) + 1);
    assert!(std::path::Path::new(&format!(
        "/run/cellblock/net/{}/lease/{a_addr}",
        c.bridge_name()
    ))
    .exists());
    let direct = run(Network::Egress(c.clone()), &connect(a_addr, 8080, 3)).await;
    let published = run(
        Network::Egress(c.clone()),
        &connect(c.gateway(), host_port, 3),
    )
    .await;
    stop(a).await;
    cellblock::net_shutdown(c.bridge_name()).await.unwrap();
    (direct, published)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn egress_containers_cannot_reach_each_other_unless_isolation_is_off() {
    // The attack: B connects to A's address, and to A's published port via the host.
    let (direct, published) = b_reaches_a(&cfg("cbt-iso", 3), 18084).await;
    assert_eq!((direct.as_str(), published.as_str()), ("FAILED", "FAILED"));
    // The same attack with the protection off succeeds: it is the isolation that stops it.
    let open = cfg("cbt-open", 4).isolate(false);
    let (direct, published) = b_reaches_a(&open, 18085).await;
    assert!(direct.starts_with("from 10.203.4."), "{direct}");
    assert!(published.starts_with("from 10.203.4."), "{published}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pod_members_share_a_namespace() {
    let c = cfg("cbt-pod", 6);
    let pod = Network::Pod("web".into(), c.clone());
    let a = server(pod.clone(), "127.0.0.1", 0).await;
    let got = run(pod.clone(), &connect("127.0.0.1", 8080, 3)).await;
    assert_eq!(got, "from 127.0.0.1");
    // Outside the pod, on the same bridge: not reachable.
    let pod_addr = Ipv4Addr::from(u32::from(c.gateway()) + 1);
    let other = run(Network::Egress(c.clone()), &connect(pod_addr, 8080, 3)).await;
    assert_eq!(other, "FAILED");
    stop(a).await;
    cellblock::net_shutdown("cbt-pod").await.unwrap();
    let left = until_clean(&c, 30).await;
    assert_eq!(left, cellblock::Leftovers::default());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_is_left_after_1000_egress_containers() {
    use futures::StreamExt;
    let c = cfg("cbt-1k", 5).pool(8);
    let started = std::time::Instant::now();
    let results: Vec<bool> = futures::stream::iter(0..1000u16)
        .map(|i| {
            let c = c.clone();
            async move {
                let mut b = Container::builder("/bin/true");
                b.namespaces(common::ns()).network(Network::Egress(c));
                if i % 10 == 0 {
                    b.publish(30000 + i, 80, Proto::Tcp);
                }
                b.status().await.unwrap().success()
            }
        })
        .buffer_unordered(8)
        .collect()
        .await;
    assert!(results.iter().all(|ok| *ok));
    let stats = cellblock::pool_stats("cbt-1k").await;
    eprintln!(
        "1000 egress containers (8 at a time, pool of 8) in {:?}: {stats:?}",
        started.elapsed()
    );
    cellblock::net_shutdown("cbt-1k").await.unwrap();
    // Namespace teardown is asynchronous in the kernel: the veths go with it.
    let left = until_clean(&c, 60).await;
    assert_eq!(left, cellblock::Leftovers::default());
}

/// Two supervisors SIGKILLed with their containers up: `job_runner` with 50 egress
/// containers, and `service --publish` with a published port (an nftables rule). The next
/// supervisor that opens the bridge removes every lease, rule and veth they left.
#[test]
fn a_killed_supervisor_leaves_nothing_after_the_next_start() {
    let dir = std::env::temp_dir().join(format!("cbt-kill-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let jobs = dir.join("jobs");
    std::fs::write(&jobs, "sleep 120\n".repeat(50)).unwrap();
    let (_bin_dir, bin) = common::rootfs::example_binary("job_runner");
    let (_svc_dir, svc) = common::rootfs::example_binary("service");
    let mut runner = common::spawn_retrying(
        std::process::Command::new(&bin)
            .args(["--jobs", "50", "--network", "egress"])
            .arg(&jobs)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null()),
    );
    let mut service = common::spawn_retrying(
        std::process::Command::new(&svc)
            .args(["--publish", "18096:8000"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null()),
    );
    let lease_dir = std::path::Path::new("/run/cellblock/net/cellblock0/lease");
    let count = || std::fs::read_dir(lease_dir).map(|d| d.count()).unwrap_or(0);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let c = EgressConfig::default();
    let rules = || rt.block_on(cellblock::net_leftovers(&c)).unwrap().rules;
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    while (count() < 51 || rules().is_empty()) && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(count(), 51, "50 jobs and the web worker are up");
    assert_eq!(rules().len(), 1, "the web worker's published port");
    // An address is leased before its container's clone: let the last clones finish (a
    // child still in its setup holds a copy of the runner's descriptors, its owner lock
    // included, so the runner would look alive until that child execs).
    std::thread::sleep(Duration::from_secs(3));
    // The runner's read-only host view, which its exit would have removed.
    let view = std::env::temp_dir().join(format!("cellblock-jobs-{}", runner.id()));
    for p in [&mut runner, &mut service] {
        p.kill().unwrap(); // SIGKILL
        p.wait().unwrap();
    }
    assert!(
        view.is_dir(),
        "{} (a SIGKILLed runner keeps it)",
        view.display()
    );
    std::fs::remove_dir_all(&view).unwrap();
    // Their containers' cgroups too: the next supervisor to use a hierarchy sweeps them
    // there (cgroup/parents.rs), but not in the hierarchies none uses after them. They
    // empty once the containers are gone (killed with their supervisor).
    let left: Vec<_> = [runner.id(), service.id()]
        .into_iter()
        .flat_map(common::cgroup_dirs_of)
        .collect();
    assert!(!left.is_empty(), "the SIGKILLed supervisors left no cgroup");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    for d in &left {
        while std::fs::remove_dir(d).is_err() && d.exists() && std::time::Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(!d.exists(), "{} still holds processes", d.display());
    }
    assert_eq!(count(), 51, "a SIGKILLed supervisor cannot clean up");
    assert_eq!(rules().len(), 1);
    // The next start (any supervisor opening the bridge) sweeps it.
    rt.block_on(async {
        let st = Container::builder("/bin/true")
            .namespaces(common::ns())
            .network(Network::Egress(c.clone()))
            .status()
            .await
            .unwrap();
        assert!(st.success());
        let left = cellblock::net_leftovers(&c).await.unwrap();
        assert!(left.rules.is_empty(), "{left:?}");
        cellblock::net_shutdown("cellblock0").await.unwrap();
        let left = until_clean(&c, 60).await;
        assert_eq!(left, cellblock::Leftovers::default());
    });
    let _ = std::fs::remove_dir_all(&dir);
}

/// Rootless egress as uid 65534, through pasta. Everything runs inside a sandbox network
/// namespace this test makes (its only route leads to a veth with nothing behind it), so
/// that even a misrouted packet cannot leave it: the "host" pasta sees is the sandbox, and
/// the server the container reaches is on the sandbox's loopback.
///
/// This machine's `/dev/net/tun` is mode 0600 (distributions ship 0666), which keeps pasta
/// from running unprivileged; the test gives the unprivileged run a private mount
/// namespace with a 0666 node of the same device instead of changing the host's.
#[test]
fn rootless_egress_as_uid_65534() {
    for tool in ["pasta", "setpriv", "unshare", "python3"] {
        assert!(
            std::process::Command::new("sh")
                .args(["-c", &format!("command -v {tool}")])
                .stdout(std::process::Stdio::null())
                .status()
                .unwrap()
                .success(),
            "{tool} is needed (Debian packages passt, util-linux, python3): the rootless egress test cannot run"
        );
    }
    let ns = format!("cbt-rl-{}", std::process::id());
    sh(&format!(
        "ip netns add {ns} && ip -n {ns} link set lo up && \
         ip -n {ns} link add sb0 type veth peer name sb1 && ip -n {ns} link set sb1 up && \
         ip -n {ns} addr add 10.204.0.2/24 dev sb0 && ip -n {ns} link set sb0 up && \
         ip -n {ns} route add default via 10.204.0.1"
    ));
    struct Cleanup(String, Option<std::process::Child>);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            if let Some(mut c) = self.1.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
            let _ = std::process::Command::new("ip")
                .args(["netns", "del", &self.0])
                .status();
        }
    }
    let mut guard = Cleanup(ns.clone(), None);
    let mut server = std::process::Command::new("ip")
        .args([
            "netns",
            "exec",
            &ns,
            "python3",
            "-c",
            SERVER,
            "127.0.0.1",
            "18090",
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
    guard.1 = Some(server);
    let (_dir, bin) = common::rootfs::example_binary("rootless");
    let (_, out) = common::rootfs::output_retrying(|| {
        let mut c = std::process::Command::new("unshare");
        c.args(["-m", "sh", "-c"])
            .arg(format!(
                "mount -t tmpfs -o mode=755 tmpfs /dev/net && mknod -m 666 /dev/net/tun c 10 200 && \
                 exec ip netns exec {ns} setpriv --reuid=65534 --regid=65534 --clear-groups {}",
                bin.display()
            ))
            .env("CELLBLOCK_EGRESS_PORT", "18090")
            .current_dir("/");
        c
    });
    let text = String::from_utf8_lossy(&out.stdout);
    eprintln!("{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("ok egress: configured"), "{text}");
    // pasta's gateway mapping: the server on the (sandbox's) loopback answered.
    assert!(text.contains("ok egress-traffic: from 127.0.0.1"), "{text}");
    drop(guard);
}

/// An egress namespace belongs to the supervisor's user namespace, not the container's: a
/// workload that kept every capability still cannot change its own network (take another
/// container's address, add routes). The attack succeeds in a namespace the container's
/// own user namespace owns (`Namespaces::NET`), so it is that ownership that stops it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_egress_workload_cannot_reconfigure_its_network_even_with_capabilities() {
    let c = cfg("cbt-caps", 7);
    let attack = "ip addr add 10.203.7.200/32 dev lo 2>/dev/null && echo CHANGED || echo REFUSED";
    let run_caps = |net: Network| {
        let mut b = Container::builder("/bin/sh");
        b.args(["-c", attack])
            .namespaces(common::ns())
            .network(net)
            .keep_all_capabilities();
        b.output()
    };
    let out = run_caps(Network::Egress(c.clone())).await.unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "REFUSED");
    // The container's own namespace (`Namespaces::NET`, made at its clone in its user
    // namespace; not `Network::None`, which may come from the loopback pool).
    let mut own = Container::builder("/bin/sh");
    own.args(["-c", attack])
        .namespaces(common::ns() | Namespaces::NET)
        .keep_all_capabilities();
    let out = own.output().await.unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "CHANGED");
    cellblock::net_shutdown("cbt-caps").await.unwrap();
    assert_eq!(until_clean(&c, 30).await, cellblock::Leftovers::default());
}

/// `Network::None` from the loopback pool: only `lo`, up, in a namespace taken from the
/// pool (and never the same one twice: each is destroyed with its container).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_loopback_pool_serves_network_none() {
    cellblock::set_loopback_pool(4);
    run(Network::None, "true").await; // starts the refill
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while cellblock::loopback_pool_stats().ready < 4 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let before = cellblock::loopback_pool_stats();
    assert_eq!(before.ready, 4, "{before:?}");
    let a = run(Network::None, "ip -o link show; readlink /proc/self/ns/net").await;
    let b = run(Network::None, "ip -o link show; readlink /proc/self/ns/net").await;
    let after = cellblock::loopback_pool_stats();
    assert!(after.hits >= before.hits + 2, "{before:?} {after:?}");
    for out in [&a, &b] {
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 2, "{out}");
        assert!(lines[0].contains("lo:") && lines[0].contains("UP"), "{out}");
    }
    assert_ne!(
        a.lines().nth(1),
        b.lines().nth(1),
        "two containers, two namespaces"
    );
    cellblock::set_loopback_pool(0);
}
