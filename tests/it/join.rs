//! Joining namespaces: pods sharing a namespace, join_path, exec into a running container
//! (PID, mount, user and time namespaces included), and the errors.

use crate::common;

use cellblock::{Container, Error, NamespaceIds, Namespaces, Stdio};
use tokio::io::AsyncBufReadExt;

async fn first_line(c: &mut Container) -> String {
    let mut lines = tokio::io::BufReader::new(c.take_stdout().unwrap()).lines();
    lines.next_line().await.unwrap().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pod_shares_one_network_namespace() {
    if !std::path::Path::new("/usr/bin/python3").exists() {
        eprintln!("python3 missing: pod checked through namespace ids only");
    }
    // The first worker listens on an abstract unix socket: those belong to the network
    // namespace, so only a process in the same one can connect.
    let server = "import socket; s=socket.socket(socket.AF_UNIX); s.bind('\\0cellblock-pod'); s.listen(); print('listening', flush=True); c,_=s.accept(); c.sendall(b'hello from the pod')";
    let client = "import socket; s=socket.socket(socket.AF_UNIX); s.connect('\\0cellblock-pod'); print(s.recv(100).decode())";
    let python = std::path::Path::new("/usr/bin/python3").exists();
    let mut first = if python {
        Container::builder("/usr/bin/python3")
            .args(["-c", server])
            .namespaces(Namespaces::NET | Namespaces::UTS)
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .await
            .unwrap()
    } else {
        Container::builder("/bin/sh")
            .args(["-c", "echo listening; exec sleep 30"])
            .namespaces(Namespaces::NET | Namespaces::UTS)
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .await
            .unwrap()
    };
    assert_eq!(first_line(&mut first).await, "listening");
    let mut b = Container::builder(if python {
        "/usr/bin/python3"
    } else {
        "/bin/true"
    });
    if python {
        b.args(["-c", client]);
    }
    b.namespaces(Namespaces::UTS)
        .join(Namespaces::NET, &first)
        .stdout(Stdio::piped())
        .kill_on_drop(true);
    let mut second = b.spawn().await.unwrap();
    let ids1 = first.namespace_ids().unwrap();
    let ids2 = second.namespace_ids().unwrap();
    let host = NamespaceIds::current().unwrap();
    // Host side: same NET, different UTS, and NET is not the host's.
    assert_eq!(ids1.get(Namespaces::NET), ids2.get(Namespaces::NET));
    assert_ne!(ids1.get(Namespaces::NET), host.get(Namespaces::NET));
    assert_ne!(ids1.get(Namespaces::UTS), ids2.get(Namespaces::UTS));
    if python {
        assert_eq!(first_line(&mut second).await, "hello from the pod");
        // The host, in another network namespace, cannot reach the socket.
        let e = std::os::unix::net::UnixStream::connect_addr(
            &<std::os::unix::net::SocketAddr as std::os::linux::net::SocketAddrExt>::from_abstract_name(b"cellblock-pod").unwrap(),
        );
        assert!(e.is_err(), "the host reached the pod's socket");
        assert!(second.wait().await.unwrap().success());
        assert!(first.wait().await.unwrap().success());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn join_path_enters_the_namespace_of_that_file() {
    let mut a = Container::builder("/bin/sleep")
        .arg("30")
        .namespaces(Namespaces::UTS)
        .hostname("pod-a")
        .kill_on_drop(true)
        .spawn()
        .await
        .unwrap();
    let out = Container::builder("/bin/hostname")
        .join_path(Namespaces::UTS, format!("/proc/{}/ns/uts", a.pid()))
        .output()
        .await
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "pod-a\n");
    assert_ne!(common::host("hostname"), "pod-a");
    a.start_kill().unwrap();
    a.wait().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_joins_are_rejected_before_clone() {
    if common::ran_alone(module_path!(), "bad_joins_are_rejected_before_clone") {
        return;
    }
    let err = Container::builder("/bin/true")
        .join_path(Namespaces::NET, "/proc/self/ns/uts")
        .status()
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::BadJoin { ref reason, .. } if reason.contains("another kind (uts)")),
        "{err}"
    );
    let err = Container::builder("/bin/true")
        .join_path(Namespaces::NET, "/nonexistent/ns")
        .status()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::BadJoin { .. }), "{err}");
    let err = Container::builder("/bin/true")
        .join_path(Namespaces::NET, "/etc/hostname")
        .status()
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::BadJoin { ref reason, .. } if reason.contains("not a namespace file")),
        "{err}"
    );
    let err = Container::builder("/bin/true")
        .namespaces(Namespaces::NET)
        .join_path(Namespaces::NET, "/proc/self/ns/net")
        .status()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::BadJoin { .. }), "{err}");
    let err = Container::builder("/bin/true")
        .namespaces(Namespaces::USER)
        .join_path(Namespaces::NET, "/proc/self/ns/net")
        .status()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::BadConfig(_)), "{err}");
    let mut gone = Container::builder("/bin/true")
        .namespaces(Namespaces::UTS)
        .spawn()
        .await
        .unwrap();
    gone.wait().await.unwrap();
    let err = Container::builder("/bin/true")
        .join(Namespaces::UTS, &gone)
        .status()
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::BadJoin { ref reason, .. } if reason.contains("reaped")),
        "{err}"
    );
    assert!(common::eventually(5, || common::zombie_children().is_empty()).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn exec_runs_inside_a_live_container_and_is_reaped() {
    if common::ran_alone(
        module_path!(),
        "exec_runs_inside_a_live_container_and_is_reaped",
    ) {
        return;
    }
    let t = common::rootfs::TempDir::new("exec");
    let root = common::rootfs::make_root(t.path());
    std::fs::write(root.join("marker"), "in-the-target-root\n").unwrap();
    let mut b = Container::builder("/bin/sh");
    b.args(["-c", "sleep 60"])
        .namespaces(
            Namespaces::UTS
                | Namespaces::PID
                | Namespaces::MOUNT
                | Namespaces::IPC
                | Namespaces::NET
                | Namespaces::CGROUP,
        )
        .hostname("target")
        .kill_on_drop(true);
    common::rootfs::use_root(&mut b, &root);
    let mut target = b.spawn().await.unwrap();
    let mut e = target
        .exec("/bin/sh")
        .unwrap()
        .args([
            "-c",
            "hostname; echo $$; cat /marker; ls /proc | grep -c '^[0-9]'; exec sleep 30",
        ])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .await
        .unwrap();
    let mut lines = tokio::io::BufReader::new(e.take_stdout().unwrap()).lines();
    let mut inside = Vec::new();
    for _ in 0..4 {
        inside.push(lines.next_line().await.unwrap().unwrap());
    }
    assert_eq!(inside[0], "target");
    let pid_inside: i32 = inside[1].parse().unwrap();
    assert!(
        pid_inside > 1,
        "the exec'd process is not the container's init"
    );
    assert_eq!(inside[2], "in-the-target-root");
    let procs: usize = inside[3].parse().unwrap();
    // (+1 for the target's built-in init, issue 4.)
    assert!(
        (2..=6).contains(&procs),
        "{procs} processes in the target's /proc"
    );
    // Host side: the exec'd process is in every namespace of the target, is our child
    // (we hold its pidfd) and is reaped like any container.
    let want = target.namespace_ids().unwrap();
    let got = e.namespace_ids().unwrap();
    assert!(want.differing(&got).is_empty(), "{want} vs {got}");
    assert_ne!(e.pid(), target.pid());
    let ppid = std::fs::read_to_string(format!("/proc/{}/stat", e.pid())).unwrap();
    let ppid: i32 = ppid
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        ppid,
        std::process::id() as i32,
        "the exec'd process is the supervisor's child"
    );
    e.start_kill().unwrap();
    let status = e.wait().await.unwrap();
    assert!(!status.success());
    // The exit status comes through unchanged.
    let status = target
        .exec("/bin/sh")
        .unwrap()
        .args(["-c", "exit 7"])
        .status()
        .await
        .unwrap();
    assert_eq!(status.code(), Some(7));
    target.start_kill().unwrap();
    target.wait().await.unwrap();
    assert!(common::eventually(5, || common::zombie_children().is_empty()).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn exec_into_a_user_and_time_namespace() {
    // Joining user and time namespaces takes the private-memory clone path.
    let mut target = Container::builder("/bin/sleep")
        .arg("60")
        .namespaces(
            Namespaces::USER
                | Namespaces::TIME
                | Namespaces::PID
                | Namespaces::MOUNT
                | Namespaces::UTS,
        )
        .uid_map(0, 400_000, 1000)
        .gid_map(0, 400_000, 1000)
        .boottime_offset(30 * 86_400)
        .hostname("timeuser")
        .kill_on_drop(true)
        .spawn()
        .await
        .unwrap();
    let out = target
        .exec("/bin/sh")
        .unwrap()
        .args(["-c", "hostname; id -u; cat /proc/self/uid_map; cut -d' ' -f1 /proc/uptime; readlink /proc/self/ns/user"])
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "timeuser");
    // The exec becomes the root of the user namespace it joined (host uid 400000), never
    // the supervisor's host uid 0 (which is unmapped there, and would show as 65534).
    assert_eq!(lines[1], "0");
    assert_eq!(
        lines[2].split_whitespace().collect::<Vec<_>>(),
        ["0", "400000", "1000"]
    );
    let uptime: f64 = lines[3].parse().unwrap();
    let host_uptime = common::host_uptime();
    assert!(
        uptime > host_uptime + 29.0 * 86_400.0,
        "inside {uptime}, host {host_uptime}"
    );
    let ids = target.namespace_ids().unwrap();
    assert_eq!(
        lines[4],
        format!("user:[{}]", ids.get(Namespaces::USER).unwrap())
    );
    // With user(): root of the joined namespace, i.e. host uid 400000 seen from here.
    let mut e = target.exec("/bin/sleep").unwrap();
    e.arg("30").user(0, 0).kill_on_drop(true);
    let mut e = e.spawn().await.unwrap();
    let status = std::fs::read_to_string(format!("/proc/{}/status", e.pid())).unwrap();
    let uid_line = status
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .unwrap()
        .to_string();
    assert_eq!(
        uid_line.split_whitespace().nth(1),
        Some("400000"),
        "{uid_line}"
    );
    e.start_kill().unwrap();
    e.wait().await.unwrap();
    target.start_kill().unwrap();
    target.wait().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn failed_exec_into_a_pid_namespace_leaves_no_zombie() {
    if common::ran_alone(
        module_path!(),
        "failed_exec_into_a_pid_namespace_leaves_no_zombie",
    ) {
        return;
    }
    let mut target = Container::builder("/bin/sleep")
        .arg("60")
        .namespaces(Namespaces::PID | Namespaces::MOUNT)
        .kill_on_drop(true)
        .spawn()
        .await
        .unwrap();
    // The working directory is only checked inside (the joined mount namespace), by the
    // workload cloned in the joined PID namespace: its failure must reap it and the
    // intermediate.
    let err = target
        .exec("/bin/true")
        .unwrap()
        .current_dir("/no/such/dir")
        .status()
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Setup { stage: cellblock::Stage::Chdir, errno } if errno.0 == libc::ENOENT),
        "{err}"
    );
    // Many exec'd processes at once, all reaped.
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let b = target.exec("/bin/sh").unwrap();
            tokio::spawn(async move {
                let mut b = b;
                b.args(["-c", &format!("exit {i}")]).status().await.unwrap()
            })
        })
        .collect();
    for (i, t) in tasks.into_iter().enumerate() {
        assert_eq!(t.await.unwrap().code(), Some(i as i32));
    }
    assert!(common::eventually(5, || common::zombie_children().is_empty()).await);
    target.start_kill().unwrap();
    target.wait().await.unwrap();
}

/// New namespaces next to a joined user namespace belong to it (issue 12, bug 9: making `/`
/// private in a mount namespace made at clone, owned by the host's user namespace, failed
/// with EPERM after the join): mount, UTS and a new PID namespace with the init.
#[tokio::test(flavor = "multi_thread")]
async fn new_namespaces_beside_a_joined_user_namespace() {
    let _d = common::deadline("join user + new namespaces", 60);
    let mut pod = Container::builder("/bin/sleep")
        .arg("60")
        .namespaces(Namespaces::UTS)
        .kill_on_drop(true)
        .spawn()
        .await
        .unwrap();
    let out = Container::builder("/bin/sh")
        .args([
            "-c",
            "echo $$; hostname; id -u; readlink /proc/self/ns/user; cat /proc/1/comm",
        ])
        .join(Namespaces::USER, &pod)
        .namespaces(Namespaces::MOUNT | Namespaces::UTS | Namespaces::PID)
        .hostname("beside")
        .tmpfs("/tmp")
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0], "2",
        "PID 2 under the init of a new PID namespace: {text}"
    );
    assert_eq!(lines[1], "beside");
    assert_eq!(lines[2], "0");
    let theirs = std::fs::read_link(format!("/proc/{}/ns/user", pod.pid())).unwrap();
    assert_eq!(lines[3], theirs.to_string_lossy());
    assert!(
        lines[4].contains("cellblock"),
        "a fresh /proc of the new PID namespace: {text}"
    );
    pod.start_kill().unwrap();
    pod.wait().await.unwrap();
}

/// `mount_mqueue` in a joined IPC namespace mounts that namespace's queues (OCI: an `ipc`
/// namespace with a `path` and the usual `/dev/mqueue` mount; runtime-tools'
/// linux_ns_path): a queue the first container makes (a file created in its mqueue) is
/// listed by a second one that joins its IPC namespace. Control: with an IPC namespace of
/// its own, the second sees no such queue.
#[tokio::test(flavor = "multi_thread")]
async fn mqueue_in_a_joined_ipc_namespace_is_that_namespaces() {
    let mut a = Container::builder("/bin/sh")
        .args(["-c", "touch /dev/mqueue/from-a && echo made; exec sleep 60"])
        .namespaces(Namespaces::MOUNT | Namespaces::IPC | Namespaces::PID)
        .mount_mqueue()
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .await
        .unwrap();
    assert_eq!(first_line(&mut a).await, "made");
    for joined in [true, false] {
        let mut b = Container::builder("/bin/ls");
        b.arg("/dev/mqueue").mount_mqueue().stdout(Stdio::piped());
        match joined {
            true => b.namespaces(Namespaces::MOUNT).join(Namespaces::IPC, &a),
            false => b.namespaces(Namespaces::MOUNT | Namespaces::IPC),
        };
        let out = b.output().await.unwrap();
        assert!(out.status.success(), "{out:?}");
        let listed = String::from_utf8_lossy(&out.stdout).into_owned();
        assert_eq!(
            listed.contains("from-a"),
            joined,
            "joined {joined}: {listed:?}"
        );
    }
    a.start_kill().unwrap();
    a.wait().await.unwrap();
}

/// `hostname` with a joined UTS namespace names that namespace (OCI: a `uts` namespace
/// with a `path` and a `hostname`, as runc sets it; runtime-tools' linux_ns_path): after a
/// second container that joins the first's UTS namespace with `hostname("renamed")`, a
/// third that joins it reads "renamed". Control: the second with a UTS namespace of its own
/// leaves the first's name alone.
#[tokio::test(flavor = "multi_thread")]
async fn hostname_in_a_joined_uts_namespace_renames_it() {
    for joined in [false, true] {
        let mut a = Container::builder("/bin/sleep")
            .arg("60")
            .namespaces(Namespaces::UTS)
            .hostname("first")
            .kill_on_drop(true)
            .spawn()
            .await
            .unwrap();
        let mut b = Container::builder("/bin/true");
        b.hostname("renamed");
        match joined {
            true => b.join(Namespaces::UTS, &a),
            false => b.namespaces(Namespaces::UTS),
        };
        assert!(b.status().await.unwrap().success());
        let out = Container::builder("/bin/hostname")
            .join(Namespaces::UTS, &a)
            .output()
            .await
            .unwrap();
        let want = if joined { "renamed\n" } else { "first\n" };
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            want,
            "joined {joined}"
        );
        a.start_kill().unwrap();
        a.wait().await.unwrap();
    }
}
