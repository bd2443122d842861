//! The identity layer of issue 11: what host uid 0 owns, tried by a workload of a root
//! supervisor. Each attack fails with the default identity (a user namespace mapping the
//! container's ids to a block of unprivileged host ids) and succeeds with `host_root()`,
//! the one switch that turns that layer off, so every test can fail for real.
//!
//! The containers here have no mount namespace unless said: the workload sees the host's
//! own `/dev`, `/sys`, cgroupfs and files, so the identity is the only layer between them
//! (the mount-side layers are proven in `escape_mounts.rs`). Every control is harmless: it
//! opens device nodes for writing and writes nothing, writes sysctl, sysfs and cgroup files
//! back with their current contents, and connects to a socket the test itself listens on.
//!
//! The probe is `tests/escape/identity.c`, compiled once per run with the system `cc`.

use crate::common;
use crate::common::rootfs::TempDir;

use std::collections::HashMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use cellblock::{Container, ContainerBuilder, Error, Namespaces};

/// The compiled probe.
fn probe() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| common::compile_probe("identity"))
}

/// `attempt path` → (worked, detail).
type Results = HashMap<(String, String), (bool, String)>;

fn probe_builder(args: &[&str], ns: Namespaces) -> ContainerBuilder {
    let mut b = Container::builder(probe());
    b.args(args).namespaces(ns);
    b
}

async fn run(b: &mut ContainerBuilder) -> Results {
    let out = b.output().await.expect("the container starts");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "probe failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        .filter_map(|l| l.strip_prefix("RESULT "))
        .filter_map(|l| {
            let mut f = l.splitn(4, ' ');
            let (what, path, verdict) = (f.next()?, f.next()?, f.next()?);
            Some((
                (what.to_string(), path.to_string()),
                (verdict == "OK", f.next().unwrap_or("").to_string()),
            ))
        })
        .collect()
}

fn get<'a>(r: &'a Results, what: &str, path: &str) -> &'a (bool, String) {
    r.get(&(what.to_string(), path.to_string()))
        .unwrap_or_else(|| panic!("no result for {what} {path} in {r:?}"))
}

/// Asserts that every attempt in `attempts` failed with EACCES or EPERM in `denied` and
/// worked in `allowed`.
fn assert_layer(denied: &Results, allowed: &Results, attempts: &[(&str, &str)]) {
    for (what, path) in attempts {
        let (ok, detail) = get(denied, what, path);
        assert!(
            !ok,
            "{what} {path} worked with the default identity: {detail}"
        );
        assert!(
            detail.starts_with("13 ") || detail.starts_with("1 "),
            "{what} {path} failed for another reason than permission: {detail}"
        );
        let (ok, detail) = get(allowed, what, path);
        assert!(ok, "control: {what} {path} failed as host root: {detail}");
    }
}

/// The same probe in a default container and in a `host_root()` one.
async fn default_and_host_root(args: &[&str], ns: Namespaces) -> (Results, Results) {
    let denied = run(&mut probe_builder(args, ns)).await;
    let allowed = run(probe_builder(args, ns).host_root()).await;
    (denied, allowed)
}

/// `open-w` attempts for the host's device nodes that exist here (said when one is absent).
fn device_attempts() -> Vec<(&'static str, &'static str)> {
    let mut v = Vec::new();
    for (what, dev) in [
        ("open-w", "/dev/loop0"),
        ("open-w", "/dev/kmsg"),
        ("open-rw", "/dev/userfaultfd"),
        ("open-rw", "/dev/kvm"),
    ] {
        if Path::new(dev).exists() {
            v.push((what, dev));
        } else {
            println!("{dev} does not exist on this host: not tried");
        }
    }
    assert!(v.len() >= 2, "too few device nodes to test: {v:?}");
    v
}

// Row 11 ---------------------------------------------------------------------------------

/// A user namespace with no map under a root supervisor is never `0 0 1`: it maps the
/// container's 0..65536 to a block of host ids at or above the pool's start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn row11_user_namespace_without_a_map_is_a_private_block() {
    let _d = common::deadline("row11", 60);
    let read = |b: &mut ContainerBuilder| {
        b.args([
            "read",
            "/proc/self/uid_map",
            "read",
            "/proc/self/gid_map",
            "read",
            "/etc/shadow",
            "ids",
        ]);
    };
    let mut def = Container::builder(probe());
    def.namespaces(Namespaces::USER);
    read(&mut def);
    let r = run(&mut def).await;
    let map = &get(&r, "read", "/proc/self/uid_map").1;
    let fields: Vec<u64> = map.split('_').filter_map(|f| f.parse().ok()).collect();
    assert_eq!(fields.len(), 3, "uid_map {map}");
    assert_eq!(fields[0], 0, "uid_map {map}");
    assert!(fields[1] >= 1 << 30, "the block is in the pool: {map}");
    assert_eq!(fields[2], 65536, "uid_map {map}");
    assert_eq!(get(&r, "read", "/proc/self/gid_map").1, *map, "gid_map");
    assert_eq!(get(&r, "ids", "-").1, "uid=0,gid=0");
    let (ok, detail) = get(&r, "read", "/etc/shadow");
    assert!(!ok && detail.starts_with("13 "), "/etc/shadow: {detail}");

    // Control: host_root() with USER gives the old `0 0 1`, and /etc/shadow is readable.
    let mut host = Container::builder(probe());
    host.namespaces(Namespaces::USER).host_root();
    read(&mut host);
    let r = run(&mut host).await;
    assert_eq!(
        get(&r, "read", "/proc/self/uid_map")
            .1
            .split('_')
            .filter(|f| !f.is_empty())
            .collect::<Vec<_>>(),
        ["0", "0", "1"]
    );
    assert!(
        get(&r, "read", "/etc/shadow").0,
        "control: host root reads /etc/shadow"
    );
}

/// Two live containers never share host ids; the host sees each one's processes owned by
/// its own block.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_containers_hold_disjoint_blocks() {
    let _d = common::deadline("disjoint blocks", 60);
    let mut live = Vec::new();
    let mut firsts = Vec::new();
    for _ in 0..4 {
        let c = Container::builder("/bin/sleep")
            .arg("30")
            .namespaces(Namespaces::PID)
            .kill_on_drop(true)
            .spawn()
            .await
            .unwrap();
        let map = std::fs::read_to_string(format!("/proc/{}/uid_map", c.pid())).unwrap();
        let first: u32 = map.split_whitespace().nth(1).unwrap().parse().unwrap();
        // Seen from the host: the init's real uid is the block's first id.
        let status = std::fs::read_to_string(format!("/proc/{}/status", c.pid())).unwrap();
        let uid_line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
        assert_eq!(
            uid_line.split_whitespace().nth(1).unwrap(),
            first.to_string(),
            "{uid_line}"
        );
        firsts.push(first);
        live.push(c);
    }
    let mut sorted = firsts.clone();
    sorted.sort();
    for w in sorted.windows(2) {
        assert!(w[1] - w[0] >= 65536, "overlapping blocks: {firsts:?}");
    }
}

// Rows 1–4 without a mount namespace: the identity alone -------------------------------

/// Row 1: the host's device nodes, visible without a mount namespace.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn row1_host_devices_without_a_mount_namespace() {
    let _d = common::deadline("row1", 60);
    let attempts = device_attempts();
    let args: Vec<&str> = attempts.iter().flat_map(|(w, p)| [*w, *p]).collect();
    for ns in [Namespaces::empty(), Namespaces::PID | Namespaces::NET] {
        let (denied, allowed) = default_and_host_root(&args, ns).await;
        assert_layer(&denied, &allowed, &attempts);
    }
}

/// Row 2: sysfs attributes (written back unchanged in the control).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn row2_sysfs_without_a_mount_namespace() {
    let _d = common::deadline("row2", 60);
    let attempts = [
        ("write-back", "/sys/kernel/rcu_expedited"),
        ("write-back", "/sys/kernel/mm/transparent_hugepage/enabled"),
        ("open-w", "/sys/devices/system/cpu/cpu1/online"),
    ];
    let args: Vec<&str> = attempts.iter().flat_map(|(w, p)| [*w, *p]).collect();
    let (denied, allowed) = default_and_host_root(&args, Namespaces::PID).await;
    assert_layer(&denied, &allowed, &attempts);
}

/// Row 3: sysctls check uid 0, not capabilities; with no namespace at all, and with some
/// but no mount namespace (where the masks cannot apply).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn row3_sysctls_without_a_mount_namespace() {
    let _d = common::deadline("row3", 60);
    let attempts = [
        ("write-back", "/proc/sys/kernel/core_pattern"),
        ("write-back", "/proc/sys/vm/overcommit_memory"),
    ];
    let args: Vec<&str> = attempts.iter().flat_map(|(w, p)| [*w, *p]).collect();
    for ns in [
        Namespaces::empty(),
        Namespaces::UTS | Namespaces::IPC | Namespaces::PID | Namespaces::NET,
    ] {
        let (denied, allowed) = default_and_host_root(&args, ns).await;
        assert_layer(&denied, &allowed, &attempts);
    }
}

/// Row 4: cgroupfs. A container with a memory limit tries to rewrite its own limit and to
/// open its parent's `cgroup.procs` (to move itself out); the control writes the limit back
/// unchanged and opens without writing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn row4_cgroupfs_without_a_mount_namespace() {
    let _d = common::deadline("row4", 60);
    let script = format!(
        "cg=$(grep -E '^[0-9]+:memory:' /proc/self/cgroup | cut -d: -f3)
         if [ -n \"$cg\" ]; then d=/sys/fs/cgroup/memory$cg; f=memory.limit_in_bytes
         else cg=$(grep '^0::' /proc/self/cgroup | cut -d: -f3); d=/sys/fs/cgroup$cg; f=memory.max; fi
         echo DIR $d
         exec {} write-back $d/$f open-w $d/../cgroup.procs",
        probe().display()
    );
    let run_sh = |host_root: bool| {
        let script = script.clone();
        async move {
            let mut b = Container::builder("/bin/sh");
            b.args(["-c", &script])
                .namespaces(Namespaces::PID)
                .memory_limit(64 << 20);
            if host_root {
                b.host_root();
            }
            let out = b.output().await.unwrap();
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            assert!(
                out.status.success(),
                "{text}{}",
                String::from_utf8_lossy(&out.stderr)
            );
            text
        }
    };
    let denied = run_sh(false).await;
    let allowed = run_sh(true).await;
    for text in [&denied, &allowed] {
        assert!(text.contains("DIR /sys/fs/cgroup"), "{text}");
    }
    let results = |text: &str| -> Vec<(bool, String)> {
        text.lines()
            .filter_map(|l| l.strip_prefix("RESULT "))
            .map(|l| (l.contains(" OK "), l.to_string()))
            .collect()
    };
    let (d, a) = (results(&denied), results(&allowed));
    assert_eq!(d.len(), 2, "{denied}");
    assert_eq!(a.len(), 2, "{allowed}");
    for (ok, line) in &d {
        assert!(
            !ok && (line.contains(" ERR 13 ") || line.contains(" ERR 1 ")),
            "default: {line}"
        );
    }
    for (ok, line) in &a {
        assert!(ok, "control as host root: {line}");
    }
}

// Rows 7 and 10 ---------------------------------------------------------------------------

/// Row 7: a root-only (0600) Unix socket, a stand-in for docker.sock; a read-only bind
/// mount does not stop `connect`, the identity does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn row7_root_only_unix_socket() {
    let _d = common::deadline("row7", 60);
    let s = TempDir::new("identity-sock");
    let sock = s.0.join("root.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o600)).unwrap();
    let path = sock.to_str().unwrap();
    let attempts = [("connect", path)];
    let (denied, allowed) = default_and_host_root(&["connect", path], Namespaces::PID).await;
    assert_layer(&denied, &allowed, &attempts);
    // With a mount namespace and the socket's directory bound read-only.
    let mut b = probe_builder(&["connect", path], Namespaces::PID | Namespaces::MOUNT);
    b.bind_ro(&s.0, &s.0);
    let denied = run(&mut b).await;
    let mut b = probe_builder(&["connect", path], Namespaces::PID | Namespaces::MOUNT);
    b.bind_ro(&s.0, &s.0).host_root();
    let allowed = run(&mut b).await;
    assert_layer(&denied, &allowed, &attempts);
    drop(listener);
}

/// Row 10: 0600 files: /etc/shadow and a secret the test writes, also through a read-only
/// bind mount.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn row10_root_only_files() {
    let _d = common::deadline("row10", 60);
    let s = TempDir::new("identity-files");
    let secret = s.0.join("secret");
    std::fs::write(&secret, "host secret").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    let secret = secret.to_str().unwrap();
    let attempts = [("read", "/etc/shadow"), ("read", secret)];
    let args = ["read", "/etc/shadow", "read", secret];
    let (denied, allowed) = default_and_host_root(&args, Namespaces::empty()).await;
    assert_layer(&denied, &allowed, &attempts);
    let mut b = probe_builder(&args, Namespaces::PID | Namespaces::MOUNT);
    b.bind_ro(&s.0, &s.0);
    let denied = run(&mut b).await;
    let mut b = probe_builder(&args, Namespaces::PID | Namespaces::MOUNT);
    b.bind_ro(&s.0, &s.0).host_root();
    let allowed = run(&mut b).await;
    assert_layer(&denied, &allowed, &attempts);
    assert_eq!(get(&allowed, "read", secret).1, "host_secret");
}

// Ownership ---------------------------------------------------------------------------------

/// What files written through a bind mount belong to: the container's block by default
/// (the workload cannot write a directory of the host's uid 1000 at all), and host uid
/// 1000 with `map_root_to(1000, 1000)`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn map_root_to_gives_written_files_that_owner() {
    let _d = common::deadline("map_root_to", 60);
    let s = TempDir::new("identity-owner");
    let dir = s.0.join("out");
    std::fs::create_dir(&dir).unwrap();
    std::os::unix::fs::chown(&dir, Some(1000), Some(1000)).unwrap();
    let file = dir.join("written");
    let script = format!("echo hi > {}", file.display());
    let spawn = |map: bool| {
        let script = script.clone();
        let dir = dir.clone();
        async move {
            let mut b = Container::builder("/bin/sh");
            b.args(["-c", &script])
                .namespaces(Namespaces::PID | Namespaces::MOUNT)
                .bind(&dir, &dir);
            if map {
                b.map_root_to(1000, 1000);
            }
            b.output().await.unwrap()
        }
    };
    let denied = spawn(false).await;
    assert!(
        !denied.status.success(),
        "default identity wrote into uid 1000's directory"
    );
    assert!(String::from_utf8_lossy(&denied.stderr).contains("Permission denied"));
    assert!(!file.exists());
    let allowed = spawn(true).await;
    assert!(
        allowed.status.success(),
        "{}",
        String::from_utf8_lossy(&allowed.stderr)
    );
    let meta = std::fs::metadata(&file).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (1000, 1000));

    // map_root_to(0, _) is host_root under another name: refused.
    let err = Container::builder("/bin/true")
        .map_root_to(0, 0)
        .output()
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::BadConfig(ref m) if m.contains("host_root")),
        "{err}"
    );
    let err = Container::builder("/bin/true")
        .map_root_to(1000, 1000)
        .host_root()
        .output()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::BadConfig(_)), "{err}");
}

// Joins ------------------------------------------------------------------------------------

/// A pod member joins its pod's user namespace with the namespaces it asked for, so it has
/// the pod's identity; joining namespaces of the supervisor's own user namespace needs
/// `host_root()` by name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joiners_take_the_identity_of_what_they_join() {
    let _d = common::deadline("joins", 60);
    let first = Container::builder("/bin/sleep")
        .arg("30")
        .namespaces(Namespaces::NET | Namespaces::UTS | Namespaces::PID)
        .kill_on_drop(true)
        .spawn()
        .await
        .unwrap();
    let mut b = Container::builder(probe());
    b.args(["read", "/proc/self/uid_map", "ids", "read", "/etc/shadow"])
        .join(Namespaces::NET, &first);
    let r = run(&mut b).await;
    let theirs = std::fs::read_to_string(format!("/proc/{}/uid_map", first.pid())).unwrap();
    let theirs: Vec<&str> = theirs.split_whitespace().collect();
    let ours: Vec<&str> = get(&r, "read", "/proc/self/uid_map")
        .1
        .split('_')
        .filter(|f| !f.is_empty())
        .collect();
    assert_eq!(
        ours, theirs,
        "the joiner is in the first container's user namespace"
    );
    assert_eq!(get(&r, "ids", "-").1, "uid=0,gid=0");
    assert!(
        !get(&r, "read", "/etc/shadow").0,
        "the joiner is not host root"
    );

    // A host_root() container's namespaces belong to the supervisor's user namespace.
    let host = Container::builder("/bin/sleep")
        .arg("30")
        .namespaces(Namespaces::NET)
        .host_root()
        .kill_on_drop(true)
        .spawn()
        .await
        .unwrap();
    let err = Container::builder("/bin/true")
        .join(Namespaces::NET, &host)
        .output()
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::BadJoin { ref reason, .. } if reason.contains("host_root")),
        "{err}"
    );
    let out = Container::builder("/bin/true")
        .join(Namespaces::NET, &host)
        .host_root()
        .output()
        .await
        .unwrap();
    assert!(out.status.success());
}

/// A spawn loop for profiling the default identity's cost (`perf record` on this test):
/// `CELLBLOCK_LOOP=N` spawns of `/bin/true` with UTS|IPC|PID|MOUNT and the mount-side
/// defaults off; `CELLBLOCK_LOOP_HOST_ROOT=1` for the same without the identity.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn identity_spawn_loop() {
    let n: usize = std::env::var("CELLBLOCK_LOOP")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500);
    let host_root = std::env::var_os("CELLBLOCK_LOOP_HOST_ROOT").is_some();
    let t = std::time::Instant::now();
    for _ in 0..n {
        let mut b = Container::builder("/bin/true");
        b.namespaces(Namespaces::UTS | Namespaces::IPC | Namespaces::PID | Namespaces::MOUNT)
            .host_dev(true)
            .writable_sys(true);
        if host_root {
            b.host_root();
        }
        assert!(b.status().await.unwrap().success());
    }
    println!(
        "{n} spawns, host_root {host_root}: {:?} each",
        t.elapsed() / n as u32
    );
}
