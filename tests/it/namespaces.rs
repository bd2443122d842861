//! Each namespace of the core, proven from both sides of the boundary: what the workload
//! sees inside, and what the host sees at the same time. Each test also runs a control
//! (the same workload without the namespace) where that is what makes the check able to fail.

use crate::common;

use std::os::unix::process::ExitStatusExt;

use cellblock::{Container, NamespaceIds, Namespaces, Output};
use common::host;

const CORE: Namespaces = Namespaces::UTS
    .union(Namespaces::IPC)
    .union(Namespaces::PID)
    .union(Namespaces::MOUNT)
    .union(Namespaces::NET);

async fn sh(ns: Namespaces, script: &str) -> Output {
    let out = Container::builder("/bin/sh")
        .args(["-c", script])
        .namespaces(ns)
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "script {script:?} failed: {:?}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[tokio::test]
async fn uts_hostname_and_domainname_inside_host_unchanged() {
    let host_before = (
        host("cat /proc/sys/kernel/hostname"),
        host("cat /proc/sys/kernel/domainname"),
    );
    let out = Container::builder("/bin/sh")
        .args([
            "-c",
            "cat /proc/sys/kernel/hostname /proc/sys/kernel/domainname; hostname",
        ])
        .namespaces(Namespaces::UTS)
        .hostname("container")
        .domainname("cell.example")
        .output()
        .await
        .unwrap();
    assert!(out.status.success());
    assert_eq!(text(&out.stdout), "container\ncell.example\ncontainer\n");
    let host_after = (
        host("cat /proc/sys/kernel/hostname"),
        host("cat /proc/sys/kernel/domainname"),
    );
    assert_eq!(host_before, host_after, "the host's names must not change");
    assert_ne!(host_after.0, "container");

    // Control: a UTS namespace without a hostname starts as a copy of the host's.
    let out = sh(Namespaces::UTS, "cat /proc/sys/kernel/hostname").await;
    assert_eq!(text(&out.stdout).trim(), host_after.0);
}

/// Creates a SysV message queue on the host with a unique key; removed on drop.
struct HostQueue {
    id: i32,
    key: i32,
}

impl HostQueue {
    fn new() -> HostQueue {
        let key = 0x4342_0000 | (std::process::id() as i32 & 0xffff);
        // SAFETY: plain syscall.
        let id = unsafe { libc::msgget(key, libc::IPC_CREAT | 0o600) };
        assert!(id >= 0, "msgget: {}", std::io::Error::last_os_error());
        HostQueue { id, key }
    }
}

impl Drop for HostQueue {
    fn drop(&mut self) {
        // SAFETY: removing our own queue.
        unsafe { libc::msgctl(self.id, libc::IPC_RMID, std::ptr::null_mut()) };
    }
}

/// The keys (hex, as /proc/sysvipc/msg prints them in decimal) of the message queues listed.
fn queue_keys(sysvipc_msg: &str) -> Vec<i64> {
    sysvipc_msg
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next()?.parse().ok())
        .collect()
}

#[tokio::test]
async fn ipc_queues_do_not_cross_the_boundary() {
    let q = HostQueue::new();
    let key = q.key as i64;
    assert!(
        queue_keys(&host("cat /proc/sysvipc/msg")).contains(&key),
        "host sees its own queue"
    );

    // Inside: the host's queue is invisible; a queue made inside is visible inside.
    let out = sh(
        Namespaces::IPC,
        "cat /proc/sysvipc/msg; echo ---; ipcmk -Q >/dev/null && cat /proc/sysvipc/msg",
    )
    .await;
    let stdout = text(&out.stdout);
    let (before, after) = stdout.split_once("---\n").unwrap();
    assert!(
        !queue_keys(before).contains(&key),
        "host queue visible inside: {before}"
    );
    let inside_keys = queue_keys(after);
    assert_eq!(
        inside_keys.len(),
        1,
        "exactly the queue made inside: {after}"
    );
    // ...and it never appears on the host (the namespace died with the container).
    assert!(!queue_keys(&host("cat /proc/sysvipc/msg")).contains(&inside_keys[0]));

    // Control: without IPC the host's queue is visible.
    let out = sh(Namespaces::empty(), "cat /proc/sysvipc/msg").await;
    assert!(queue_keys(&text(&out.stdout)).contains(&key));
}

#[tokio::test]
async fn ipc_queue_made_inside_is_invisible_on_host_while_alive() {
    let mut c = Container::builder("/bin/sh")
        .args([
            "-c",
            "ipcmk -Q | tr -dc 0-9; echo; cat /proc/sysvipc/msg; read x || true",
        ])
        .namespaces(Namespaces::IPC)
        .stdin(cellblock::Stdio::piped())
        .stdout(cellblock::Stdio::piped())
        .spawn()
        .await
        .unwrap();
    let mut stdout = tokio::io::BufReader::new(c.take_stdout().unwrap());
    use tokio::io::AsyncBufReadExt;
    let mut lines = Vec::new();
    for _ in 0..3 {
        let mut l = String::new();
        stdout.read_line(&mut l).await.unwrap();
        lines.push(l);
    }
    let inside_key: i64 = lines[2].split_whitespace().next().unwrap().parse().unwrap();
    // The container is still running: its queue exists, but not on the host.
    assert!(!queue_keys(&host("cat /proc/sysvipc/msg")).contains(&inside_key));
    drop(c.take_stdin());
    assert!(c.wait().await.unwrap().success());
}

/// Without the built-in init (`init(false)`) the workload itself is PID 1 of its namespace
/// and `ps` shows it alone (with ps itself); the host sees an ordinary pid whose NSpid ends
/// in 1.
#[tokio::test]
async fn pid_workload_is_pid1_without_init() {
    let out = Container::builder("/bin/sh")
        .args(["-c", "echo $$; ps -e -o pid=,comm="])
        .namespaces(Namespaces::PID | Namespaces::MOUNT)
        .init(false)
        .output()
        .await
        .unwrap();
    assert!(out.status.success());
    let stdout = text(&out.stdout);
    let mut lines = stdout.lines();
    assert_eq!(lines.next(), Some("1"), "echo $$ inside");
    let procs: Vec<(i32, String)> = lines
        .map(|l| {
            let mut f = l.split_whitespace();
            (
                f.next().unwrap().parse().unwrap(),
                f.next().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert_eq!(procs[0], (1, "sh".to_string()), "{stdout}");
    assert_eq!(procs.len(), 2, "sh and ps only: {stdout}");
}

#[tokio::test]
async fn pid_workload_is_pid2_under_the_init_and_ps_shows_only_the_container() {
    let out = sh(
        Namespaces::PID | Namespaces::MOUNT,
        "echo $$; ps -e -o pid= ; ps ax",
    )
    .await;
    let stdout = text(&out.stdout);
    let mut lines = stdout.lines();
    // The built-in init is PID 1 (issue 4), the workload PID 2.
    assert_eq!(lines.next(), Some("2"), "echo $$ inside");
    let pids: Vec<i32> = lines
        .clone()
        .take_while(|l| !l.contains("PID"))
        .map(|l| l.trim().parse().unwrap())
        .collect();
    // init (1), sh (2) and the first ps; nothing of the host's hundreds of processes.
    assert!(pids.contains(&1) && pids.contains(&2));
    assert!(
        pids.len() <= 4,
        "ps -e inside lists only the container: {pids:?}"
    );
    let host_count = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
        .count();
    assert!(host_count > pids.len());
    assert!(
        !stdout.contains("cargo") && !stdout.contains("tokio"),
        "host processes leaked into ps: {stdout}"
    );
}

#[tokio::test]
async fn pid_seen_from_host_is_a_normal_pid_with_nspid_1() {
    let mut c = Container::builder("/bin/sleep")
        .arg("30")
        .namespaces(Namespaces::PID)
        .spawn()
        .await
        .unwrap();
    assert_ne!(c.pid(), 1);
    let status = std::fs::read_to_string(format!("/proc/{}/status", c.pid())).unwrap();
    let nspid = status.lines().find(|l| l.starts_with("NSpid:")).unwrap();
    let ids: Vec<&str> = nspid.split_whitespace().skip(1).collect();
    assert_eq!(
        ids,
        vec![c.pid().to_string().as_str(), "1"],
        "host pid, then 1 inside"
    );
    c.start_kill().unwrap();
    assert_eq!(c.wait().await.unwrap().signal(), Some(libc::SIGKILL));
}

#[tokio::test]
async fn mount_inside_never_reaches_host_and_nothing_stays() {
    let t = common::rootfs::TempDir::new("mnt");
    let dir = t.path();
    let d = dir.display().to_string();
    let mut c = Container::builder("/bin/sh")
        // The workload itself holds no CAP_SYS_ADMIN (hardening, tests/it/security.rs), so
        // the mount is made inside by the container's setup: a tmpfs on the directory.
        .args([
            "-c",
            &format!(
                "echo hello > {d}/inside; grep -c ' {d} ' /proc/self/mountinfo; \
             grep -c shared: /proc/self/mountinfo; read x || true"
            ),
        ])
        .namespaces(Namespaces::MOUNT)
        .tmpfs(dir)
        .stdin(cellblock::Stdio::piped())
        .stdout(cellblock::Stdio::piped())
        .spawn()
        .await
        .unwrap();
    let mut stdout = tokio::io::BufReader::new(c.take_stdout().unwrap());
    use tokio::io::AsyncBufReadExt;
    let (mut seen, mut shared) = (String::new(), String::new());
    stdout.read_line(&mut seen).await.unwrap();
    stdout.read_line(&mut shared).await.unwrap();
    assert_eq!(seen.trim(), "1", "the mount exists inside");
    assert_eq!(
        shared.trim(),
        "0",
        "every mount inside is private (no shared: peer groups)"
    );
    // While the container lives: the host has neither the mount nor the file.
    assert!(
        !common::host_mount_points().contains(&d),
        "mount leaked to the host"
    );
    assert!(!dir.join("inside").exists());
    drop(c.take_stdin());
    assert!(c.wait().await.unwrap().success());
    assert!(!common::host_mount_points().contains(&d));
    // Empty: the file went to the container's tmpfs.
    std::fs::remove_dir(dir).unwrap();
}

#[tokio::test]
async fn mount_of_proc_does_not_stack_on_the_host() {
    let before = common::host_mount_points()
        .iter()
        .filter(|m| *m == "/proc")
        .count();
    for _ in 0..3 {
        sh(Namespaces::PID | Namespaces::MOUNT, "true").await;
    }
    let after = common::host_mount_points()
        .iter()
        .filter(|m| *m == "/proc")
        .count();
    assert_eq!(before, after);
}

#[tokio::test]
async fn net_only_lo_up_and_no_route() {
    let script = r#"
        ip -o link show | awk -F': ' '{print $2}'
        echo ---
        ip -o link show lo | grep -q 'state UNKNOWN\|,UP' && echo lo-up
        echo ---
        ip route show; ip -6 route show | grep -v '^\(::1\|fe80\|local\|multicast\)' || true
        echo ---
        python3 - <<'PY'
import socket, errno
# Loopback works: a TCP round trip on 127.0.0.1.
srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen(1)
cli = socket.create_connection(srv.getsockname()); conn, _ = srv.accept()
cli.sendall(b"ping"); print(conn.recv(4).decode())
# No route anywhere: a UDP connect (which sends nothing) to a TEST-NET address fails.
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
try:
    s.connect(("192.0.2.1", 9)); print("routed")
except OSError as e:
    print(errno.errorcode[e.errno])
PY
    "#;
    let out = sh(Namespaces::NET, script).await;
    let stdout = text(&out.stdout);
    let parts: Vec<&str> = stdout.split("---\n").collect();
    assert_eq!(parts[0].trim(), "lo", "only lo inside: {stdout}");
    assert_eq!(parts[1].trim(), "lo-up");
    assert_eq!(parts[2].trim(), "", "no routes inside: {stdout}");
    assert_eq!(parts[3].trim(), "ping\nENETUNREACH");
    // Control: the host side keeps its own devices (more than lo) and its routing, so the
    // checks above can fail.
    let host_links = host("ip -o link show | wc -l");
    assert!(
        host_links.parse::<u32>().unwrap() >= 2,
        "host links: {host_links}"
    );
    assert!(!host("ip route show").is_empty(), "the host has no route");
}

#[tokio::test]
async fn cgroup_namespace_shows_its_root() {
    // No cgroup of its own (no default budget), so that from the host it is in the
    // supervisor's cgroups, as compared below.
    let mut c = Container::builder("/bin/sh")
        .args(["-c", "cat /proc/self/cgroup; read x || true"])
        .namespaces(Namespaces::CGROUP)
        .default_budget(false)
        .stdin(cellblock::Stdio::piped())
        .stdout(cellblock::Stdio::piped())
        .spawn()
        .await
        .unwrap();
    use tokio::io::AsyncReadExt;
    let mut stdout = c.take_stdout().unwrap();
    let mut buf = vec![0u8; 4096];
    let mut inside = String::new();
    while inside.lines().count() < host("cat /proc/self/cgroup").lines().count() {
        let n = stdout.read(&mut buf).await.unwrap();
        assert!(n > 0);
        inside.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    for line in inside.lines() {
        assert!(
            line.ends_with(":/"),
            "inside, every hierarchy shows the namespace root: {line}"
        );
    }
    // From the host, the same process is in the host's real cgroups (the supervisor's).
    let from_host = std::fs::read_to_string(format!("/proc/{}/cgroup", c.pid())).unwrap();
    let ours = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    assert_eq!(from_host, ours);
    if ours.lines().all(|l| l.ends_with(":/")) {
        eprintln!(
            "note: this host's own cgroups are all root, so inside and outside paths coincide"
        );
    } else {
        assert_ne!(from_host.trim(), inside.trim());
    }
    drop(c.take_stdin());
    assert!(c.wait().await.unwrap().success());
}

#[tokio::test]
async fn namespace_ids_differ_exactly_for_created_kinds() {
    let me = NamespaceIds::current().unwrap();
    let kinds = [
        Namespaces::UTS,
        Namespaces::IPC,
        Namespaces::PID,
        Namespaces::MOUNT,
        Namespaces::NET,
        Namespaces::USER,
        Namespaces::CGROUP,
    ];
    // host_root(): exactly the kinds asked for. By default a user namespace is added (the
    // default identity of a root supervisor, or of any supervisor asking for namespaces).
    for (kind, host_root) in kinds.iter().flat_map(|&k| [(k, true), (k, false)]) {
        let mut b = Container::builder("/bin/sleep");
        b.arg("30").namespaces(kind).kill_on_drop(true);
        if host_root {
            b.host_root();
        }
        let mut c = b.spawn().await.unwrap();
        let ids = c.namespace_ids().unwrap();
        let expected = if host_root {
            kind
        } else {
            kind | Namespaces::USER
        };
        assert_eq!(
            ids.differing(&me),
            expected,
            "only {expected} differs (host_root: {host_root}): {ids} vs {me}"
        );
        c.start_kill().unwrap();
        c.wait().await.unwrap();
        assert!(matches!(
            c.namespace_ids(),
            Err(cellblock::Error::AlreadyReaped)
        ));
    }
    // Everything at once, twice: every created kind differs from the host and between the two.
    let all = Namespaces::UTS
        | Namespaces::IPC
        | Namespaces::PID
        | Namespaces::MOUNT
        | Namespaces::NET
        | Namespaces::CGROUP
        | Namespaces::USER;
    let mut a = Container::builder("/bin/sleep")
        .arg("30")
        .namespaces(all)
        .kill_on_drop(true)
        .spawn()
        .await
        .unwrap();
    let mut b = Container::builder("/bin/sleep")
        .arg("30")
        .namespaces(all)
        .kill_on_drop(true)
        .spawn()
        .await
        .unwrap();
    let (ia, ib) = (a.namespace_ids().unwrap(), b.namespace_ids().unwrap());
    assert_eq!(ia.differing(&me), all);
    assert_eq!(ib.differing(&me), all);
    assert_eq!(
        ia.differing(&ib),
        all,
        "two containers never share a created namespace"
    );
    // The ids match what /proc/<pid>/ns links say.
    let link = std::fs::read_link(format!("/proc/{}/ns/net", a.pid())).unwrap();
    assert_eq!(
        link.to_string_lossy(),
        format!("net:[{}]", ia.get(Namespaces::NET).unwrap())
    );
    a.start_kill().unwrap();
    b.start_kill().unwrap();
    a.wait().await.unwrap();
    b.wait().await.unwrap();
}

#[tokio::test]
async fn the_issue_example_runs() {
    let out = Container::builder("/bin/sh")
        .args(["-c", "hostname; echo $$; ps ax"])
        .namespaces(CORE)
        .hostname("container")
        .stdout(cellblock::Stdio::piped())
        .output()
        .await
        .unwrap();
    assert!(out.status.success());
    let s = text(&out.stdout);
    // PID 2: the built-in init is PID 1 (issue 4).
    assert!(s.starts_with("container\n2\n"), "{s}");
}
