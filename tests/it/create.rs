//! Create, then start (issue 14): a container set up and stopped before `execve`
//! (`ContainerBuilder::create`), started here or by another process through its FIFO,
//! detached (`Created::detach`, `Detached`), the absolute `cgroup_path`, and joining a
//! namespace by path for every kind.

use crate::common;

use cellblock::{CgroupVersion, Container, Detached, DetachedState, Error, Namespaces, Stage};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A fresh directory of this test under the target's tmp.
fn scratch(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("create")
        .join(format!("{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    // Writable by the container's unprivileged default identity.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o777)).unwrap();
    d
}

fn exe_of(pid: i32) -> PathBuf {
    std::fs::read_link(format!("/proc/{pid}/exe")).unwrap()
}

/// Reaps `pid`, a child of ours that no handle owns any more (a detached container whose
/// parent we still are), returning its wait status.
fn reap(pid: i32) -> i32 {
    let mut status = 0;
    // SAFETY: waitpid on a child of this process.
    let r = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(r, pid, "waitpid({pid})");
    status
}

/// The workload has not run a single instruction before the start: its marker file is
/// absent and the process is still our own binary (a forked copy waiting at its gate),
/// in the container's new PID namespace; after `start` it runs and exits 0.
#[tokio::test(flavor = "multi_thread")]
async fn create_stops_before_execve_and_start_runs_it() {
    let dir = scratch("start");
    let marker = dir.join("marker");
    let created = Container::builder("/bin/sh")
        .args(["-c", &format!("echo $$ > {}", marker.display())])
        .namespaces(common::ns())
        .create()
        .await
        .unwrap();
    let pid = created.pid();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!marker.exists(), "the workload ran before start");
    assert_eq!(exe_of(pid), std::env::current_exe().unwrap());
    let theirs = std::fs::read_link(format!("/proc/{pid}/ns/pid")).unwrap();
    assert_ne!(theirs, std::fs::read_link("/proc/self/ns/pid").unwrap());
    let mut c = created.start().await.unwrap();
    assert_eq!(c.pid(), pid);
    assert!(c.wait().await.unwrap().success());
    // $$ inside is the workload's pid in its own namespace: 2 under the built-in init.
    assert_eq!(std::fs::read_to_string(&marker).unwrap().trim(), "2");
}

/// The same without the init: the workload is PID 1 of its namespace (as OCI runtimes
/// run it), and what it writes on stdout reaches the pipe.
#[tokio::test(flavor = "multi_thread")]
async fn create_without_init_makes_the_workload_pid_1() {
    let created = Container::builder("/bin/sh")
        .args(["-c", "echo $$"])
        .namespaces(common::ns())
        .init(false)
        .stdout(cellblock::Stdio::piped())
        .create()
        .await
        .unwrap();
    let c = created.start().await.unwrap();
    let out = c.wait_with_output().await.unwrap();
    assert!(out.status.success());
    assert_eq!(out.stdout, b"1\n");
}

/// Configuration errors come back from `create`, typed, and leave no child; an `execve` that fails
/// after the gate (the program removed between create and start) comes back from `start`.
#[tokio::test(flavor = "multi_thread")]
async fn create_and_start_report_failures_and_leave_nothing() {
    // Checked before the clone: no child at all.
    let e = Container::builder("/bin/true")
        .namespaces(common::ns())
        .current_dir("/nonexistent-dir")
        .create()
        .await
        .unwrap_err();
    assert!(matches!(e, Error::BadCurrentDir { .. }), "{e}");
    let dir = scratch("vanish");
    let prog = dir.join("prog");
    std::fs::copy("/bin/true", &prog).unwrap();
    let created = Container::builder(&prog)
        .namespaces(common::ns())
        .init(false)
        .create()
        .await
        .unwrap();
    let pid = created.pid();
    std::fs::remove_file(&prog).unwrap();
    let e = created.start().await.unwrap_err();
    assert!(
        matches!(e, Error::Setup { stage: Stage::Execve, errno } if errno.0 == libc::ENOENT),
        "{e}"
    );
    assert!(!common::alive(pid), "the failed child was not reaped");
}

/// Dropping a created container unstarted kills and reaps it and removes its cgroup and
/// its FIFO; with a FIFO gate too (which would otherwise hold it forever).
#[tokio::test(flavor = "multi_thread")]
async fn dropping_an_unstarted_container_leaves_nothing() {
    let dir = scratch("drop");
    for fifo in [None, Some(dir.join("gate"))] {
        let mut b = Container::builder("/bin/true");
        b.namespaces(common::ns()).pids_limit(8);
        if let Some(f) = &fifo {
            b.start_fifo(f);
        }
        let created = b.create().await.unwrap();
        let pid = created.pid();
        let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
        let pids_cg = cg
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{}:pids:", l.split(':').next().unwrap())))
            .expect("in a pids cgroup")
            .to_string();
        let pids_dir = Path::new("/sys/fs/cgroup/pids").join(pids_cg.trim_start_matches('/'));
        assert!(pids_dir.exists(), "{}", pids_dir.display());
        if let Some(f) = &fifo {
            use std::os::unix::fs::FileTypeExt;
            assert!(std::fs::metadata(f).unwrap().file_type().is_fifo());
        }
        drop(created);
        assert!(
            common::eventually(10, || !common::alive(pid) && !pids_dir.exists()).await,
            "pid {pid} or {} left",
            pids_dir.display()
        );
        if let Some(f) = &fifo {
            assert!(!f.exists(), "the FIFO was left behind");
        }
    }
}

/// `start_fifo` is for `create` only; a FIFO path that exists is refused; `detach` needs
/// `die_with_supervisor(false)` and a FIFO.
#[tokio::test(flavor = "multi_thread")]
async fn misuse_is_refused() {
    let dir = scratch("misuse");
    let e = Container::builder("/bin/true")
        .start_fifo(dir.join("f"))
        .spawn()
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::BadConfig(m) if m.contains("create()")),
        "{e}"
    );
    std::fs::write(dir.join("exists"), "").unwrap();
    let e = Container::builder("/bin/true")
        .start_fifo(dir.join("exists"))
        .create()
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::BadConfig(m) if m.contains("exists")),
        "{e}"
    );
    let created = Container::builder("/bin/true")
        .namespaces(common::ns())
        .start_fifo(dir.join("f2"))
        .create()
        .await
        .unwrap();
    let pid = created.pid();
    let e = created.detach().unwrap_err();
    assert!(
        matches!(&e, Error::BadConfig(m) if m.contains("die_with_supervisor")),
        "{e}"
    );
    assert!(common::eventually(10, || !common::alive(pid)).await);
    assert!(!dir.join("f2").exists());
}

/// A detached container, as an OCI runtime keeps it between its `create`, `start`,
/// `state`, `ps`, `pause`, `kill` and `delete` calls: started by another process writing
/// its FIFO; seen created, running, paused, stopped; listed, signalled and destroyed
/// through its cgroup and pidfd.
#[tokio::test(flavor = "multi_thread")]
async fn a_detached_container_is_started_and_managed_from_outside() {
    let _d = common::deadline("detached lifecycle", 60);
    let dir = scratch("detached");
    let fifo = dir.join("exec.fifo");
    let marker = dir.join("ran");
    let created = Container::builder("/bin/sh")
        .args([
            "-c",
            &format!(
                "trap 'echo term > {}; exit 3' TERM; touch {}; sleep 100 & wait",
                dir.join("term").display(),
                marker.display()
            ),
        ])
        .namespaces(common::ns())
        .init(false)
        .die_with_supervisor(false)
        .start_fifo(&fifo)
        .cgroup_path(format!("/cellblock-it-{}/detached", std::process::id()))
        .create()
        .await
        .unwrap();
    let d: Detached = created.detach().unwrap();
    assert_eq!(d.state(), DetachedState::Created);
    assert_eq!(d.pids().unwrap(), vec![d.pid]);
    assert!(fifo.exists());
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!marker.exists(), "ran before start");

    // Another process starts it: what `cellblock start` does from a process of its own.
    let st = std::process::Command::new("/bin/sh")
        .args(["-c", &format!("printf x > {}", fifo.display())])
        .status()
        .unwrap();
    assert!(st.success());
    assert!(
        common::eventually(10, || marker.exists()).await,
        "did not start"
    );
    assert!(common::eventually(10, || d.state() == DetachedState::Running).await);
    assert!(
        common::eventually(10, || d.pids().unwrap().len() == 2).await,
        "sh and sleep"
    );
    // A second start is refused: nobody waits at the gate any more.
    std::fs::remove_file(&fifo).unwrap();
    assert!(matches!(d.start(), Err(Error::NotCreated { .. })));

    d.pause().unwrap();
    assert_eq!(d.state(), DetachedState::Paused);
    let freezer = d
        .cgroup_dirs
        .iter()
        .map(|p| p.join("freezer.state"))
        .find(|p| p.exists())
        .expect("a freezer cgroup");
    assert_eq!(std::fs::read_to_string(&freezer).unwrap().trim(), "FROZEN");
    d.resume().unwrap();
    assert_eq!(d.state(), DetachedState::Running);
    assert_eq!(std::fs::read_to_string(&freezer).unwrap().trim(), "THAWED");

    // SIGTERM to the first process: its trap runs and it exits 3 (we are still its
    // parent here, so we reap it).
    d.signal(cellblock::Signal::SIGTERM).unwrap();
    let status = reap(d.pid);
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 3,
        "{status:#x}"
    );
    assert_eq!(d.state(), DetachedState::Stopped);
    assert!(matches!(
        d.signal(cellblock::Signal::SIGTERM),
        Err(Error::NotRunning { .. })
    ));
    // Its PID namespace went with it (the sleep too): the cgroup is empty, and destroy
    // removes the leaf.
    assert!(common::eventually(10, || d.pids().unwrap().is_empty()).await);
    d.destroy().unwrap();
    for dir in &d.cgroup_dirs {
        assert!(!dir.exists(), "{} left", dir.display());
        // The parents stay, as the caller's: this test removes them.
        std::fs::remove_dir(dir.parent().unwrap()).unwrap();
    }
    d.destroy().unwrap();
}

/// `Detached::start` releases the gate of a container detached by this process;
/// `destroy` SIGKILLs a running one and removes its cgroup.
#[tokio::test(flavor = "multi_thread")]
async fn detached_start_releases_the_gate_and_destroy_kills() {
    let dir = scratch("dstart");
    let marker = dir.join("ran");
    let created = Container::builder("/bin/sh")
        .args(["-c", &format!("touch {}; exec sleep 100", marker.display())])
        .namespaces(common::ns())
        .init(false)
        .die_with_supervisor(false)
        .start_fifo(dir.join("gate"))
        .create()
        .await
        .unwrap();
    let d = created.detach().unwrap();
    assert!(d.cgroup_dirs.iter().all(|p| p.exists()));
    // The attack: another user starts someone else's container. The FIFO is 0600 (in a
    // 0777 directory here), so opening it fails; control: made writable, it works.
    let gate = dir.join("gate");
    let as_nobody = || {
        std::process::Command::new("setpriv")
            .args([
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                "/bin/sh",
                "-c",
            ])
            .arg(format!("printf x > {}", gate.display()))
            .status()
            .unwrap()
            .success()
    };
    assert!(!as_nobody(), "uid 65534 could write the start FIFO");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(d.state(), DetachedState::Created);
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&gate, std::fs::Permissions::from_mode(0o666)).unwrap();
    }
    assert!(as_nobody(), "control: a writable FIFO starts it");
    assert!(common::eventually(10, || marker.exists()).await);
    d.destroy().unwrap();
    reap(d.pid);
    // A second container, started with Detached::start.
    let created = Container::builder("/bin/sh")
        .args(["-c", &format!("touch {}; exec sleep 100", marker.display())])
        .namespaces(common::ns())
        .init(false)
        .die_with_supervisor(false)
        .start_fifo(&gate)
        .create()
        .await
        .unwrap();
    std::fs::remove_file(&marker).unwrap();
    let d = created.detach().unwrap();
    d.start().unwrap();
    assert!(!dir.join("gate").exists(), "start removes the FIFO");
    assert!(common::eventually(10, || marker.exists()).await);
    assert_eq!(d.state(), DetachedState::Running);
    d.destroy().unwrap();
    let status = reap(d.pid);
    assert!(
        libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGKILL,
        "{status:#x}"
    );
    assert!(d.cgroup_dirs.iter().all(|p| !p.exists()));
}

/// `cgroup_path("/a/b")` is `/sys/fs/cgroup/<controller>/a/b` in every v1 hierarchy the
/// container uses (the freezer and devices included, which OCI callers use) and
/// `/sys/fs/cgroup/unified/a/b` on v2 here: not under our own cgroup. The leaf goes with
/// the container; the parents stay.
#[tokio::test(flavor = "multi_thread")]
async fn cgroup_path_is_read_from_each_hierarchys_root() {
    let base = format!("/cellblock-it-{}", std::process::id());
    for (version, roots) in [
        (
            CgroupVersion::V1,
            vec!["pids", "memory", "freezer", "devices", "cpu", "cpuacct"],
        ),
        (CgroupVersion::V2, vec!["unified"]),
    ] {
        let path = format!("{base}/{version:?}");
        let mut c = Container::builder("/bin/sleep")
            .arg("100")
            .namespaces(common::ns())
            .cgroup_version(version)
            .cgroup_path(&path)
            .spawn()
            .await
            .unwrap();
        let seen = std::fs::read_to_string(format!("/proc/{}/cgroup", c.pid())).unwrap();
        for root in &roots {
            let dir = Path::new("/sys/fs/cgroup").join(root).join(&path[1..]);
            assert!(dir.is_dir(), "{} missing", dir.display());
            let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap();
            assert!(
                procs.lines().any(|l| l == c.pid().to_string()),
                "{root}: {procs}"
            );
        }
        assert!(seen.lines().any(|l| l.ends_with(&path)), "{seen}");
        c.kill().await.unwrap();
        for root in &roots {
            let dir = Path::new("/sys/fs/cgroup").join(root).join(&path[1..]);
            assert!(
                common::eventually(10, || !dir.exists()).await,
                "{} left",
                dir.display()
            );
            let parent = dir.parent().unwrap();
            assert!(
                parent.is_dir(),
                "the parent {} was removed",
                parent.display()
            );
        }
    }
    for root in [
        "pids", "memory", "freezer", "devices", "cpu", "cpuacct", "unified",
    ] {
        let _ = std::fs::remove_dir(Path::new("/sys/fs/cgroup").join(root).join(&base[1..]));
    }
    for bad in ["", "/", "/a/../b", "a/../../b", "./"] {
        let e = Container::builder("/bin/true")
            .cgroup_path(bad)
            .spawn()
            .await
            .unwrap_err();
        assert!(
            matches!(
                &e,
                Error::InvalidLimit {
                    option: "cgroup_path",
                    ..
                }
            ),
            "{bad}: {e}"
        );
    }
    let e = Container::builder("/bin/true")
        .cgroup_path("/x")
        .cgroup_parent("y")
        .spawn()
        .await
        .unwrap_err();
    assert!(
        matches!(
            &e,
            Error::InvalidLimit {
                option: "cgroup_path",
                ..
            }
        ),
        "{e}"
    );
}

/// `join_path` enters a namespace of every kind through its file: the joiner's
/// `/proc/self/ns/<kind>` is the target's. (PID: the joiner is a process of that
/// namespace; USER and TIME: the fork-style clone.)
#[tokio::test(flavor = "multi_thread")]
async fn join_path_enters_every_kind() {
    let all = Namespaces::USER
        | Namespaces::PID
        | Namespaces::MOUNT
        | Namespaces::UTS
        | Namespaces::IPC
        | Namespaces::NET
        | Namespaces::CGROUP
        | Namespaces::TIME;
    let mut target = Container::builder("/bin/sleep")
        .arg("100")
        .namespaces(all)
        .spawn()
        .await
        .unwrap();
    let tpid = target.pid();
    for (kind, name) in [
        (Namespaces::UTS, "uts"),
        (Namespaces::IPC, "ipc"),
        (Namespaces::NET, "net"),
        (Namespaces::CGROUP, "cgroup"),
        (Namespaces::MOUNT, "mnt"),
        (Namespaces::PID, "pid"),
        (Namespaces::TIME, "time"),
        (Namespaces::USER, "user"),
    ] {
        let want = std::fs::read_link(format!("/proc/{tpid}/ns/{name}")).unwrap();
        assert_ne!(
            want,
            std::fs::read_link(format!("/proc/self/ns/{name}")).unwrap()
        );
        let mut b = Container::builder("/bin/sleep");
        b.arg("100")
            .namespaces(Namespaces::empty())
            .join_path(kind, format!("/proc/{tpid}/ns/{name}"));
        let mut c = b
            .spawn()
            .await
            .unwrap_or_else(|e| panic!("joining {name} by path: {e}"));
        let got = std::fs::read_link(format!("/proc/{}/ns/{name}", c.pid())).unwrap();
        assert_eq!(got, want, "{name}");
        c.kill().await.unwrap();
    }
    target.kill().await.unwrap();
}

/// The pid of process `pid`'s parent, from /proc/PID/stat.
fn ppid_of(pid: i32) -> i32 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let rest = stat.rsplit_once(')').unwrap().1;
    rest.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// `create` joining a PID namespace by path (OCI `create` with a `pid` namespace path:
/// runtime-tools `linux_ns_path`), and creating one after joining a user namespace. Both
/// need the workload forked during the setup. Seen from the host while it waits at its
/// gate: it has not exec'd, it is in the expected PID namespace, and it is our own child
/// (the intermediate that forked it is gone, reaped). After the start it runs there: in
/// the joined namespace as one more process, in the new one as its pid 1. A created
/// container of the kind dropped unstarted is killed and reaped.
#[tokio::test(flavor = "multi_thread")]
async fn create_joins_a_pid_namespace_or_makes_one_in_a_joined_user_namespace() {
    let _d = common::deadline("create joining a PID namespace", 60);
    let dir = scratch("pidjoin");
    let mut target = Container::builder("/bin/sleep")
        .arg("100")
        .namespaces(Namespaces::USER | common::ns())
        .spawn()
        .await
        .unwrap();
    let tpid = target.pid();
    let their_pidns = std::fs::read_link(format!("/proc/{tpid}/ns/pid")).unwrap();
    let ours = std::fs::read_link("/proc/self/ns/pid").unwrap();
    assert_ne!(their_pidns, ours);
    for (case, join, file, create) in [
        ("join PID", Namespaces::PID, "pid", Namespaces::empty()),
        (
            "new PID in a joined USER",
            Namespaces::USER,
            "user",
            Namespaces::PID,
        ),
    ] {
        let path = format!("/proc/{tpid}/ns/{file}");
        let marker = dir.join(format!("marker-{}", join.bits()));
        let mut b = Container::builder("/bin/sh");
        b.args(["-c", &format!("echo $$ > {}", marker.display())])
            .namespaces(create)
            .init(false)
            .join_path(join, &path);
        let created = b.create().await.unwrap_or_else(|e| panic!("{case}: {e}"));
        let pid = created.pid();
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(!marker.exists(), "{case}: the workload ran before start");
        assert_eq!(exe_of(pid), std::env::current_exe().unwrap(), "{case}");
        assert_eq!(
            ppid_of(pid),
            std::process::id() as i32,
            "{case}: not our child"
        );
        let pidns = std::fs::read_link(format!("/proc/{pid}/ns/pid")).unwrap();
        let mut c = created.start().await.unwrap();
        assert_eq!(c.pid(), pid, "{case}");
        assert!(c.wait().await.unwrap().success(), "{case}");
        let inside: i32 = std::fs::read_to_string(&marker)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        if join == Namespaces::PID {
            assert_eq!(pidns, their_pidns, "{case}");
            assert!(inside > 1, "{case}: pid {inside} in the joined namespace");
        } else {
            assert_ne!(pidns, their_pidns, "{case}");
            assert_ne!(pidns, ours, "{case}");
            assert_eq!(inside, 1, "{case}");
        }
        // Dropped unstarted: killed and reaped.
        let mut b = Container::builder("/bin/true");
        b.namespaces(create).join_path(join, &path);
        let created = b.create().await.unwrap();
        let pid = created.pid();
        drop(created);
        assert!(
            common::eventually(10, || !common::alive(pid)).await,
            "{case}: the dropped workload is still there ({:?})",
            common::state(pid)
        );
    }
    target.kill().await.unwrap();
}

/// `join_cgroup_path` puts a process in another container's cgroup (OCI `exec`) without
/// owning it: the limits stay the owner's, and ending the joiner neither empties nor
/// removes the cgroup. It takes no limits of its own, and a missing cgroup is an error.
#[tokio::test(flavor = "multi_thread")]
async fn join_cgroup_path_joins_without_owning() {
    let path = format!("/cellblock-it-{}/owner", std::process::id());
    let dir = Path::new("/sys/fs/cgroup/pids").join(&path[1..]);
    let mut owner = Container::builder("/bin/sleep")
        .arg("100")
        .namespaces(common::ns())
        .pids_limit(32)
        .cgroup_path(&path)
        .spawn()
        .await
        .unwrap();
    let mut joiner = Container::builder("/bin/sleep")
        .arg("100")
        .namespaces(common::ns())
        .join_cgroup_path(&path)
        .spawn()
        .await
        .unwrap();
    let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap();
    assert!(
        procs.lines().any(|l| l == joiner.pid().to_string()),
        "{procs}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("pids.max"))
            .unwrap()
            .trim(),
        "32"
    );
    joiner.kill().await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        common::running(owner.pid()),
        "ending the joiner killed the owner"
    );
    assert!(dir.is_dir(), "ending the joiner removed the cgroup");
    let e = Container::builder("/bin/true")
        .join_cgroup_path(&path)
        .pids_limit(4)
        .spawn()
        .await
        .unwrap_err();
    assert!(
        matches!(
            &e,
            Error::InvalidLimit {
                option: "join_cgroup_path",
                ..
            }
        ),
        "{e}"
    );
    let e = Container::builder("/bin/true")
        .join_cgroup_path(format!("{path}-missing"))
        .spawn()
        .await
        .unwrap_err();
    assert!(matches!(&e, Error::CgroupUnavailable(_)), "{e}");
    owner.kill().await.unwrap();
    assert!(common::eventually(10, || !dir.exists()).await);
    for root in ["pids", "memory", "freezer", "devices", "cpu", "cpuacct"] {
        let _ = std::fs::remove_dir(
            Path::new("/sys/fs/cgroup")
                .join(root)
                .join(Path::new(&path[1..]).parent().unwrap()),
        );
    }
}

/// Our own cgroup in each hierarchy: (mount directory under /sys/fs/cgroup, path in it).
fn own_cgroups() -> Vec<(String, String)> {
    let unified = Path::new("/sys/fs/cgroup/unified").is_dir();
    std::fs::read_to_string("/proc/self/cgroup")
        .unwrap()
        .lines()
        .filter_map(|l| {
            let mut f = l.splitn(3, ':');
            let (_, c, p) = (f.next()?, f.next()?, f.next()?);
            let mount = match c {
                "" if unified => "unified".to_string(),
                "" => String::new(),
                c if c.starts_with("name=") => return None,
                c => c.to_string(),
            };
            Some((mount, p.to_string()))
        })
        .collect()
}

/// A relative `cgroup_path` is read from our own cgroup *in each hierarchy* (as runc reads
/// a relative cgroupsPath): on this hybrid host our memory cgroup is deep and our pids and
/// v2 ones are the roots, and the container lands below each. `join_cgroup_of(pid)` then
/// joins those cgroups of that process, whatever their paths: the joiner is in the
/// owner's directory of every hierarchy the owner has, which the joiner's end leaves in
/// place; a pid that is gone is `CgroupUnavailable`, and limits are refused.
#[tokio::test(flavor = "multi_thread")]
async fn relative_cgroup_path_and_join_cgroup_of() {
    let rel = format!("cellblock-it-rel-{}/c", std::process::id());
    let mut owner = Container::builder("/bin/sleep")
        .arg("100")
        .namespaces(common::ns())
        .cgroup_version(CgroupVersion::V1)
        .cgroup_path(&rel)
        .spawn()
        .await
        .unwrap();
    let seen = std::fs::read_to_string(format!("/proc/{}/cgroup", owner.pid())).unwrap();
    let mut dirs = Vec::new();
    for (mount, own) in own_cgroups() {
        if !["memory", "pids", "freezer"].contains(&mount.as_str()) {
            continue;
        }
        let want = format!("{}/{rel}", own.trim_end_matches('/'));
        let line = seen
            .lines()
            .find(|l| l.split(':').nth(1) == Some(mount.as_str()))
            .unwrap_or_else(|| panic!("{mount}: {seen}"));
        assert_eq!(line.split(':').nth(2), Some(want.as_str()), "{seen}");
        let dir = Path::new("/sys/fs/cgroup").join(&mount).join(&want[1..]);
        assert!(dir.is_dir(), "{}", dir.display());
        dirs.push(dir);
    }
    assert_eq!(dirs.len(), 3, "{seen}");

    let mut joiner = Container::builder("/bin/sleep")
        .arg("100")
        .namespaces(common::ns())
        .cgroup_version(CgroupVersion::V1)
        .join_cgroup_of(owner.pid())
        .spawn()
        .await
        .unwrap();
    for dir in &dirs {
        let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap();
        assert!(
            procs.lines().any(|l| l == joiner.pid().to_string()),
            "{}: {procs}",
            dir.display()
        );
    }
    joiner.kill().await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        common::running(owner.pid()),
        "ending the joiner killed the owner"
    );
    assert!(
        dirs.iter().all(|d| d.is_dir()),
        "ending the joiner removed a cgroup"
    );

    let e = Container::builder("/bin/true")
        .join_cgroup_of(owner.pid())
        .memory_limit(1 << 30)
        .spawn()
        .await
        .unwrap_err();
    assert!(
        matches!(
            &e,
            Error::InvalidLimit {
                option: "join_cgroup_of",
                ..
            }
        ),
        "{e}"
    );
    owner.kill().await.unwrap();
    for dir in &dirs {
        assert!(
            common::eventually(10, || !dir.exists()).await,
            "{} left",
            dir.display()
        );
    }
    // The parent (kept, as the caller's) in every hierarchy the owner had a cgroup in.
    let parent = Path::new(&rel).parent().unwrap();
    for (mount, own) in own_cgroups() {
        let dir = Path::new("/sys/fs/cgroup")
            .join(&mount)
            .join(own.trim_start_matches('/'))
            .join(parent);
        let _ = std::fs::remove_dir(&dir);
        assert!(!dir.exists(), "{} left", dir.display());
    }
    let gone = owner.pid();
    let e = Container::builder("/bin/true")
        .cgroup_version(CgroupVersion::V1)
        .join_cgroup_of(gone)
        .spawn()
        .await
        .unwrap_err();
    assert!(matches!(&e, Error::CgroupUnavailable(_)), "{e}");
}

/// `Container::detach` lets go of a running container (OCI `exec --detach`): not killed
/// when the handle goes, found again by its `Detached`.
#[tokio::test(flavor = "multi_thread")]
async fn a_running_container_can_be_detached() {
    let c = Container::builder("/bin/sleep")
        .arg("100")
        .namespaces(common::ns())
        .die_with_supervisor(false)
        .spawn()
        .await
        .unwrap();
    let d = c.detach().unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(d.state(), DetachedState::Running);
    d.signal(cellblock::Signal::SIGKILL).unwrap();
    let status = reap(d.pid);
    assert!(libc::WIFSIGNALED(status), "{status:#x}");
    assert_eq!(d.state(), DetachedState::Stopped);
}

/// A `cgroup_path` whose parent another process removes while it is empty (the OCI
/// runtime's `delete` removes its emptied `cellblock-oci` parent) still spawns: a parent
/// that vanishes between the walk's `mkdir`s makes the walk start again. The remover
/// here tries `rmdir` on the parent in every v1 hierarchy the containers use, in a tight loop, while
/// 150 containers are made below it; every spawn must succeed.
#[tokio::test(flavor = "multi_thread")]
async fn cgroup_path_survives_its_parent_being_removed() {
    let parent = format!("cellblock-it-race-{}", std::process::id());
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let dirs: Vec<std::path::PathBuf> = own_cgroups()
        .into_iter()
        .filter(|(m, _)| {
            ["memory", "pids", "freezer", "devices", "cpu", "cpuacct"].contains(&m.as_str())
        })
        .map(|(m, own)| {
            Path::new("/sys/fs/cgroup")
                .join(m)
                .join(own.trim_start_matches('/'))
                .join(&parent)
        })
        .collect();
    let remover = {
        let (stop, dirs) = (stop.clone(), dirs.clone());
        std::thread::spawn(move || {
            let mut removed = 0u32;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                for d in &dirs {
                    if std::fs::remove_dir(d).is_ok() {
                        removed += 1;
                    }
                }
            }
            removed
        })
    };
    for i in 0..150 {
        let st = Container::builder("/bin/true")
            .namespaces(common::ns())
            .cgroup_version(CgroupVersion::V1)
            .cgroup_path(format!("{parent}/c{i}"))
            .status()
            .await;
        assert!(st.is_ok(), "spawn {i}: {st:?}");
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let removed = remover.join().unwrap();
    assert!(
        removed > 0,
        "the remover never removed the parent: no race was run"
    );
    for d in &dirs {
        let _ = std::fs::remove_dir(d);
    }
}
