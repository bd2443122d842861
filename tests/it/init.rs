//! The built-in PID-1 init: exit codes and signals with and without it, orphan reaping,
//! forwarded signals, setup errors relayed through it, and what the init is (a separate
//! program from a sealed memfd, not a fork of the supervisor).

use crate::common;

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::time::Duration;

use cellblock::{Container, Error, Namespaces, Signal, Stage, Stdio};
use futures::StreamExt;

/// Processes (host pids) whose PID namespace is `ns_ino`, with their state letter.
fn processes_in_pid_ns(ns_ino: u64) -> Vec<(i32, char)> {
    common::pids_in_pid_ns(ns_ino)
        .into_iter()
        .filter_map(|p| Some((p, common::state(p)?)))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn exit_codes_with_and_without_init() {
    for init in [true, false] {
        let out = Container::builder("/bin/sh")
            .args(["-c", "echo $$; exit 7"])
            .namespaces(common::ns())
            .init(init)
            .output()
            .await
            .unwrap();
        assert_eq!(out.status.code(), Some(7), "init={init}");
        // Inside, the workload is PID 2 under the init, PID 1 without it.
        let pid = String::from_utf8_lossy(&out.stdout).trim().to_string();
        assert_eq!(pid, if init { "2" } else { "1" }, "init={init}");
    }
    // No PID namespace: no init by default, the shell's own pid.
    let out = Container::builder("/bin/sh")
        .args(["-c", "exit 3"])
        .namespaces(Namespaces::UTS)
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
}

#[tokio::test(flavor = "multi_thread")]
async fn signals_come_back_as_signals() {
    // With init: the workload kills itself with SIGTERM; the init exits 128+15 but the
    // container reports the workload's signal.
    let st = Container::builder("/bin/sh")
        .args(["-c", "kill -TERM $$; sleep 5"])
        .namespaces(common::ns())
        .status()
        .await
        .unwrap();
    assert_eq!(st.signal(), Some(libc::SIGTERM), "{st:?}");
    assert_eq!(st.code(), None);
    // Without a PID namespace (no init): the same, straight from the kernel.
    let st = Container::builder("/bin/sh")
        .args(["-c", "kill -TERM $$; sleep 5"])
        .namespaces(Namespaces::UTS)
        .status()
        .await
        .unwrap();
    assert_eq!(st.signal(), Some(libc::SIGTERM));
    // init(false) in a PID namespace: the shell is PID 1 and ignores its own SIGTERM...
    let st = Container::builder("/bin/sh")
        .args(["-c", "kill -TERM $$; exit 4"])
        .namespaces(common::ns())
        .init(false)
        .status()
        .await
        .unwrap();
    assert_eq!(
        st.code(),
        Some(4),
        "PID 1 without a handler ignores SIGTERM"
    );
    // ...but SIGKILL from the host ends it, and comes back as signal 9.
    let mut c = Container::builder("/bin/sleep")
        .arg("100")
        .namespaces(common::ns())
        .init(false)
        .spawn()
        .await
        .unwrap();
    c.start_kill().unwrap();
    assert_eq!(c.wait().await.unwrap().signal(), Some(libc::SIGKILL));
    // SIGKILL to a container with an init kills the init: reported as such.
    let mut c = Container::builder("/bin/sleep")
        .arg("100")
        .namespaces(common::ns())
        .spawn()
        .await
        .unwrap();
    c.start_kill().unwrap();
    assert_eq!(c.wait().await.unwrap().signal(), Some(libc::SIGKILL));
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_stops_plain_sh_through_init() {
    let mut c = Container::builder("/bin/sh")
        .args(["-c", "sleep 100"])
        .namespaces(common::ns())
        .spawn()
        .await
        .unwrap();
    let pid = c.pid();
    // Give sh time to start its sleep; the signal must reach it wherever it is.
    tokio::time::sleep(Duration::from_millis(200)).await;
    c.signal(Signal::SIGTERM).unwrap();
    let st = tokio::time::timeout(Duration::from_secs(10), c.wait())
        .await
        .expect("SIGTERM was forwarded")
        .unwrap();
    assert_eq!(st.signal(), Some(libc::SIGTERM), "{st:?}");
    assert!(!common::alive(pid), "the init {pid} was not reaped");

    // Control: without the init, the same SIGTERM does nothing to `sh` as PID 1.
    let mut c = Container::builder("/bin/sh")
        .args(["-c", "sleep 100"])
        .namespaces(common::ns())
        .init(false)
        .spawn()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    c.signal(Signal::SIGTERM).unwrap();
    let r = tokio::time::timeout(Duration::from_millis(700), c.wait()).await;
    assert!(r.is_err(), "PID-1 sh ignored SIGTERM");
    c.start_kill().unwrap();
    c.wait().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn orphans_are_reaped_inside() {
    // Double forks leave orphans that get reparented to PID 1, exit after 0.2-0.4 s, and
    // must not stay zombies. The workload then lists the state of every process inside.
    let script = "(sleep 0.2 &); (sleep 0.3 &); (sh -c 'sleep 0.4' &); sleep 1.2; \
                  cat /proc/[0-9]*/stat; echo checked; sleep 30";
    let mut c = Container::builder("/bin/sh")
        .args(["-c", script])
        .namespaces(common::ns())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .await
        .unwrap();
    let ns_ino = c.namespace_ids().unwrap().get(Namespaces::PID).unwrap();
    let mut lines = c.take_stdout().unwrap().lines();
    let mut states = Vec::new();
    while let Some(line) = lines.next().await {
        let line = String::from_utf8(line.unwrap().to_vec()).unwrap();
        if line == "checked" {
            break;
        }
        let state = line
            .rsplit_once(')')
            .unwrap()
            .1
            .split_whitespace()
            .next()
            .unwrap()
            .to_string();
        states.push((line.split_whitespace().next().unwrap().to_string(), state));
    }
    // Inside: the init (1), the shell, sleep 30 is not started yet, cat itself.
    assert!(states.len() >= 2, "{states:?}");
    assert!(
        states.iter().all(|(_, s)| s != "Z"),
        "zombies inside: {states:?}"
    );
    // From the host: the same namespace has no zombie either, and holds just the init and
    // the shell (plus its sleep).
    let host = processes_in_pid_ns(ns_ino);
    assert!(
        host.iter().all(|(_, s)| *s != 'Z'),
        "zombies seen from the host: {host:?}"
    );
    assert!(host.len() <= 3, "orphans left: {host:?}");
    c.start_kill().unwrap();
    c.wait().await.unwrap();
    assert!(common::eventually(5, || processes_in_pid_ns(ns_ino).is_empty()).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn leftovers_are_ended_when_the_workload_exits() {
    // The workload starts a background process that ignores nothing, and exits at once:
    // the init sends SIGTERM to what is left and exits; a TERM-ignoring one gets SIGKILL
    // after the grace period. (The kernel would SIGKILL them all anyway once the init
    // exits, so the SIGTERM is shown by a leftover that traps it and says so, and the
    // grace period by how long the container takes to end.)
    let started = std::time::Instant::now();
    let mut c = Container::builder("/bin/sh")
        .args([
            "-c",
            "sleep 100 & sh -c 'trap \"echo got-term; exit 0\" TERM; sleep 100 & wait' & \
             sh -c 'trap \"\" TERM; sleep 100' & sleep 0.2; exit 5",
        ])
        .namespaces(common::ns())
        .init_grace_period(Duration::from_millis(300))
        .stdout(Stdio::piped())
        .spawn()
        .await
        .unwrap();
    let ns_ino = c.namespace_ids().unwrap().get(Namespaces::PID).unwrap();
    let mut stdout = c.take_stdout().unwrap();
    let st = tokio::time::timeout(Duration::from_secs(10), c.wait())
        .await
        .unwrap()
        .unwrap();
    let elapsed = started.elapsed();
    assert_eq!(st.code(), Some(5));
    assert!(processes_in_pid_ns(ns_ino).is_empty());
    let mut out = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut stdout, &mut out)
        .await
        .unwrap();
    assert_eq!(out, "got-term\n", "the leftovers were sent SIGTERM");
    // sleep 0.2, then the whole grace period for the TERM-ignoring one.
    assert!(
        elapsed >= Duration::from_millis(500),
        "ended after {elapsed:?}: the grace period was not waited"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn execve_failure_is_relayed_with_its_stage() {
    if common::ran_alone(module_path!(), "execve_failure_is_relayed_with_its_stage") {
        return;
    }
    let dir = common::rootfs::TempDir::new("init-test");
    let bad = dir.path().join("not-a-program");
    std::fs::write(&bad, b"\x01\x02\x03 neither ELF nor script\n").unwrap();
    std::fs::set_permissions(&bad, std::fs::Permissions::from_mode(0o755)).unwrap();
    for init in [true, false] {
        let err = Container::builder(&bad)
            .namespaces(common::ns())
            .init(init)
            .spawn()
            .await
            .unwrap_err();
        match err {
            Error::Setup { stage, errno } => {
                assert_eq!(stage, Stage::Execve, "init={init}");
                assert_eq!(errno.0, libc::ENOEXEC, "init={init}");
            }
            other => panic!("init={init}: {other}"),
        }
    }
    // The failed container was reaped on the spot (init and workload alike). The test runs
    // in a process of its own (above), so every child counted is this test's.
    assert!(common::eventually(5, || common::zombie_children().is_empty()).await);
}

/// `init(true)` without a PID namespace (tini `-s`): the init is the workload's parent, a
/// child subreaper, and reaps an orphan the workload leaves (its parent died first).
/// Control: without the init the orphan goes past the container to the host's init or
/// subreaper, and is no descendant of the container's process any more.
#[tokio::test(flavor = "multi_thread")]
async fn init_without_a_pid_namespace_is_a_subreaper() {
    for init in [true, false] {
        let mut c = Container::builder("/bin/sh")
            .args(["-c", "sh -c 'sleep 100 & echo $!' ; sleep 100"])
            .namespaces(Namespaces::UTS)
            .init(init)
            .stdout(Stdio::piped())
            .spawn()
            .await
            .unwrap();
        let mut lines = c.take_stdout().unwrap().lines();
        let line = tokio::time::timeout(Duration::from_secs(10), lines.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        let orphan: i32 = String::from_utf8_lossy(&line).trim().parse().unwrap();
        let ppid = |p: i32| {
            let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).unwrap();
            stat.rsplit_once(')')
                .unwrap()
                .1
                .split_whitespace()
                .nth(1)
                .unwrap()
                .parse::<i32>()
                .unwrap()
        };
        if init {
            // The orphan's parent is the init (the container's own process).
            assert!(common::eventually(5, || ppid(orphan) == c.pid()).await);
        } else {
            assert!(common::eventually(5, || ppid(orphan) != c.pid()).await);
            assert_ne!(ppid(orphan), c.pid());
            // SAFETY: kill(2) of the orphan this test started.
            unsafe { libc::kill(orphan, libc::SIGKILL) };
        }
        c.kill().await.unwrap();
        // With the init, the orphan is ended with the container.
        if init {
            assert!(common::eventually(5, || !common::running(orphan)).await);
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn init_is_a_separate_program_and_passes_no_descriptors() {
    let mut c = Container::builder("/bin/sh")
        .args([
            "-c",
            "ls /proc/self/fd; echo; cat /proc/1/cmdline | tr '\\0' ' '; echo; sleep 30",
        ])
        .namespaces(common::ns())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .await
        .unwrap();
    let pid = c.pid();
    let mut lines = c.take_stdout().unwrap().lines();
    let fds = String::from_utf8(lines.next().await.unwrap().unwrap().to_vec()).unwrap();
    let mut fd_list = vec![];
    let mut l = fds;
    while !l.is_empty() {
        fd_list.push(l.clone());
        l = String::from_utf8(lines.next().await.unwrap().unwrap().to_vec()).unwrap();
    }
    // 0, 1, 2 and ls's own directory fd (3): neither the report pipe nor the lifeline
    // leaked, and the listing did run (an empty one would not pass).
    assert_eq!(fd_list, ["0", "1", "2", "3"], "workload fds: {fd_list:?}");
    let pid1 = String::from_utf8(lines.next().await.unwrap().unwrap().to_vec()).unwrap();
    assert!(
        pid1.starts_with("cellblock-init "),
        "inside, PID 1 is {pid1:?}"
    );
    // From the host: the container's first process runs an image from a memfd, not the
    // supervisor's executable, in an address space of its own.
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap();
    assert!(
        exe.to_string_lossy().starts_with("/memfd:cellblock-init"),
        "{exe:?}"
    );
    // Execute-only (the kernel then starts the init non-dumpable; src/init.rs).
    let mode = std::os::unix::fs::MetadataExt::mode(
        &std::fs::metadata(format!("/proc/{pid}/exe")).unwrap(),
    );
    assert_eq!(mode & 0o7777, 0o111, "the init's image mode {mode:o}");
    let me = std::fs::read_link("/proc/self/exe").unwrap();
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
    assert!(
        !maps.contains(&*me.to_string_lossy()),
        "init maps the supervisor's binary"
    );
    let rss = |p: &str| -> u64 {
        std::fs::read_to_string(format!("/proc/{p}/status"))
            .unwrap()
            .lines()
            .find(|l| l.starts_with("VmRSS:"))
            .unwrap()
            .split_whitespace()
            .nth(1)
            .unwrap()
            .parse()
            .unwrap()
    };
    assert!(
        rss(&pid.to_string()) < rss("self"),
        "the init is smaller than the supervisor"
    );
    c.start_kill().unwrap();
    c.wait().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_inits_own_failure_is_relayed_with_its_stage() {
    if common::ran_alone(
        module_path!(),
        "the_inits_own_failure_is_relayed_with_its_stage",
    ) {
        return;
    }
    // RLIMIT_NPROC of 1 for a container whose root is an unprivileged host uid: the
    // init starts, but cannot fork the workload.
    let err = Container::builder("/bin/true")
        .namespaces(common::ns() | Namespaces::USER)
        .uid_map(0, 310_000, 1)
        .gid_map(0, 310_000, 1)
        .rlimit(cellblock::Resource::Nproc, 1, 1)
        .spawn()
        .await
        .unwrap_err();
    match err {
        Error::Setup { stage, errno } => {
            assert_eq!(stage, Stage::InitStart, "{err}");
            assert_eq!(errno.0, libc::EAGAIN);
            assert!(
                err.to_string().contains("init: start the workload"),
                "{err}"
            );
        }
        other => panic!("{other}"),
    }
    assert!(common::eventually(5, || common::zombie_children().is_empty()).await);
}

/// The synchronous fault signals, sent with kill() (here pidfd_send_signal from the host),
/// reach the workload through the init. The kernel drops them at a PID 1 that leaves them
/// at SIG_DFL unblocked, which the init used to do. Control: without the init, the same
/// signal to a PID-1 `sleep` does nothing.
#[tokio::test(flavor = "multi_thread")]
async fn fault_signals_sent_with_kill_are_forwarded() {
    let _d = common::deadline("fault_signals_sent_with_kill_are_forwarded", 60);
    let sigs = [
        Signal::SIGSEGV,
        Signal::SIGBUS,
        Signal::SIGILL,
        Signal::SIGFPE,
        Signal::SIGABRT,
        Signal::SIGTRAP,
        Signal::SIGSYS,
    ];
    let mut with_init = Vec::new();
    let mut without = Vec::new();
    for sig in sigs {
        for (init, list) in [(true, &mut with_init), (false, &mut without)] {
            let c = Container::builder("/bin/sleep")
                .arg("100")
                .namespaces(common::ns())
                .init(init)
                .kill_on_drop(true)
                .spawn()
                .await
                .unwrap();
            c.signal(sig).unwrap();
            list.push((sig, c));
        }
    }
    for (sig, c) in &mut with_init {
        let st = tokio::time::timeout(Duration::from_secs(10), c.wait())
            .await
            .unwrap_or_else(|_| panic!("{sig} was not forwarded"))
            .unwrap();
        assert_eq!(st.signal(), Some(*sig as i32), "{sig}: {st:?}");
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    for (sig, c) in &mut without {
        assert!(
            c.try_wait().unwrap().is_none(),
            "control: {sig} to a PID-1 sleep without handler ended it"
        );
        c.start_kill().unwrap();
        c.wait().await.unwrap();
    }
}

/// The workload gets the container's working directory; the init keeps none of its own
/// (its cwd is the container's `/`), so it pins no directory for the container's life.
/// Also: the workload leads a process group of its own, not the init's.
#[tokio::test(flavor = "multi_thread")]
async fn init_has_cwd_root_and_the_workload_its_own_group() {
    let _d = common::deadline("init_has_cwd_root_and_the_workload_its_own_group", 60);
    let dir = common::rootfs::TempDir::new("init-cwd");
    let mut c = Container::builder("/bin/sh")
        .args([
            "-c",
            "echo $$ $(cut -d' ' -f5 /proc/self/stat) $(cut -d' ' -f5 /proc/1/stat); exec sleep 30",
        ])
        .namespaces(common::ns())
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .await
        .unwrap();
    let init = c.pid();
    let mut lines = c.take_stdout().unwrap().lines();
    let ids = String::from_utf8(lines.next().await.unwrap().unwrap().to_vec()).unwrap();
    // pid 2, its group 2 (cut runs in the shell's group), the init's group 1.
    assert_eq!(ids, "2 2 1", "pid, its pgid, the init's pgid");
    let workload = common::children_of(init);
    assert_eq!(workload.len(), 1, "{workload:?}");
    let cwd = |p: i32| std::fs::read_link(format!("/proc/{p}/cwd")).unwrap();
    assert_eq!(cwd(workload[0]), dir.path(), "the workload's cwd");
    assert_eq!(cwd(init), std::path::Path::new("/"), "the init's cwd");
    c.start_kill().unwrap();
    c.wait().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn init_dumpable_needs_the_init() {
    for init in [None, Some(false)] {
        let mut b = Container::builder("/bin/true");
        b.namespaces(if init.is_none() {
            Namespaces::UTS
        } else {
            common::ns()
        })
        .init_dumpable(true);
        if let Some(i) = init {
            b.init(i);
        }
        let err = b.spawn().await.unwrap_err();
        match init {
            None => assert!(
                matches!(
                    err,
                    Error::NeedsNamespace {
                        option: "init_dumpable",
                        ..
                    }
                ),
                "{err}"
            ),
            Some(_) => assert!(
                matches!(&err, Error::BadConfig(m) if m.contains("init_dumpable")),
                "{err}"
            ),
        }
    }
}

const TTY_HELPER_ENV: &str = "CELLBLOCK_TEST_INIT_TTY_HELPER";

/// Run by `shared_terminal_keeps_the_workload_in_the_foreground` inside `script` (a
/// session with a terminal); otherwise does nothing.
#[test]
fn tty_helper_process() {
    if std::env::var_os(TTY_HELPER_ENV).is_none() {
        return;
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        for new_session in [false, true] {
            let out = Container::builder("/bin/sh")
                .args(["-c", "ps -o pgid=,tpgid= -p $$ | tr -s ' '"])
                .namespaces(common::ns())
                .new_session(new_session)
                .stdin(Stdio::inherit())
                .stdout(Stdio::piped())
                .output()
                .await
                .unwrap();
            println!(
                "TTYCASE new_session={new_session} {}",
                String::from_utf8_lossy(&out.stdout).trim()
            );
        }
    });
}

/// With `new_session(false)` the workload shares the caller's terminal: it then stays in
/// the foreground group (a group of its own would be a background job and stop on its
/// first terminal read). With the default new session there is no terminal, and the
/// workload leads its own group.
#[test]
fn shared_terminal_keeps_the_workload_in_the_foreground() {
    let d = common::deadline("shared_terminal_keeps_the_workload_in_the_foreground", 60);
    let exe = std::env::current_exe().unwrap();
    let cmd = format!(
        "{} --exact {} --nocapture --test-threads=1",
        exe.display(),
        common::test_name(module_path!(), "tty_helper_process")
    );
    let child = std::process::Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .env(TTY_HELPER_ENV, "1")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("script (util-linux) is needed to give the test a terminal");
    d.kill_on_expiry(child.id() as i32);
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let case = |s: &str| -> Vec<i64> {
        let l = text
            .lines()
            .find_map(|l| l.split_once(&format!("TTYCASE new_session={s} ")))
            .unwrap_or_else(|| panic!("no case {s} in {text}"))
            .1;
        l.split_whitespace().map(|v| v.parse().unwrap()).collect()
    };
    // Shared terminal: the workload's group (seen from inside: 0, the supervisor's group
    // is outside the namespace) is the terminal's foreground group.
    let shared = case("false");
    assert_eq!(shared.len(), 2, "{text}");
    assert_eq!(
        shared[0], shared[1],
        "workload pgid = terminal foreground: {text}"
    );
    // New session: no terminal (tpgid -1), its own group (pid 2).
    assert_eq!(case("true"), vec![2, -1], "{text}");
}

/// The tini/dumb-init options are checked before anything runs, each with a typed error
/// naming the option and the value: numbers out of range, signals the init never receives,
/// and options set for a container without an init.
#[tokio::test(flavor = "multi_thread")]
async fn init_options_are_validated() {
    async fn err(f: impl FnOnce(&mut cellblock::ContainerBuilder)) -> Error {
        let mut b = Container::builder("/bin/true");
        b.namespaces(common::ns());
        f(&mut b);
        b.spawn().await.unwrap_err()
    }
    for sig in [0, 65, -1] {
        let e = err(|b| {
            b.parent_death_signal(sig);
        })
        .await;
        assert!(
            matches!(e, Error::BadSignal { option: "parent_death_signal", signal, .. } if signal == sig),
            "{e}"
        );
    }
    for code in [-1, 256] {
        let e = err(|b| {
            b.success_exit_code(code);
        })
        .await;
        assert!(
            matches!(e, Error::BadExitCode { option: "success_exit_code", code: c } if c == code),
            "{e}"
        );
        assert!(e.to_string().contains("0..=255"), "{e}");
    }
    let e = err(|b| {
        b.rewrite_signal(libc::SIGTERM, 32);
    })
    .await;
    assert!(matches!(e, Error::BadSignal { signal: 32, .. }), "{e}");
    let e = err(|b| {
        b.parent_death_signal(libc::SIGTERM)
            .die_with_supervisor(false);
    })
    .await;
    assert!(
        matches!(&e, Error::BadConfig(m) if m.contains("parent_death_signal")),
        "{e}"
    );
    // Without the init: init(false), or no PID namespace and no init(true).
    let e = err(|b| {
        b.signal_process_group(true).init(false);
    })
    .await;
    assert!(
        matches!(
            e,
            Error::NeedsInit {
                option: "signal_process_group",
                ..
            }
        ),
        "{e}"
    );
    let e = err(|b| {
        b.namespaces(Namespaces::UTS)
            .rewrite_signal(libc::SIGTERM, 0);
    })
    .await;
    assert!(
        matches!(
            e,
            Error::NeedsInit {
                option: "rewrite_signal",
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("init(true)"), "{e}");
    // The valid extremes pass.
    let st = Container::builder("/bin/true")
        .namespaces(common::ns())
        .parent_death_signal(64)
        .success_exit_code(255)
        .rewrite_signal(1, 31)
        .rewrite_signal(31, 0)
        .status()
        .await
        .unwrap();
    assert!(st.success());
}

/// Without a PID namespace the init ends what the workload leaves behind by walking its
/// own descendants (never `kill(-1)`): a daemon that left the workload's session and
/// process group is gone once the container is reaped, and so is one that ignores SIGTERM
/// (SIGKILL after the grace period). This test process, which a `kill(-1)` from a root
/// init would have reached, lives on.
#[tokio::test(flavor = "multi_thread")]
async fn subreaper_init_ends_leftovers_without_kill_all() {
    let out = tokio::time::timeout(
        Duration::from_secs(20),
        Container::builder("/bin/sh")
            .args([
                "-c",
                "setsid sh -c 'sleep 100' >/dev/null & echo $!; \
                 sh -c 'trap \"\" TERM; sleep 101' >/dev/null & echo $!",
            ])
            .namespaces(Namespaces::UTS)
            .init(true)
            .init_grace_period(Duration::from_millis(300))
            .output(),
    )
    .await
    .unwrap()
    .unwrap();
    assert!(out.status.success(), "{out:?}");
    let pids: Vec<i32> = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect();
    assert_eq!(pids.len(), 2, "{out:?}");
    for p in pids {
        assert!(
            common::eventually(5, || !common::running(p)).await,
            "{p} lives on"
        );
    }
}

const TTY_INNER: &str = "CELLBLOCK_INIT_TTY_INNER";

/// `process_group(0)` with the init, on a terminal shared with the caller
/// (`new_session(false)`): the init normally leaves the workload in the group it shares
/// with the supervisor, the terminal's foreground (a new group there would be a background
/// job and stop on its first read); `process_group(0)` asks for a group of its own anyway.
/// The supervisor here is this binary re-run under `script` (util-linux), which gives it a
/// terminal as its controlling one. The workload reports its process group from its own
/// /proc (ids of its PID namespace: its own group is its pid 2; the supervisor's group is
/// outside the namespace, 0). Control: the same without `process_group(0)`.
#[test]
fn process_group_zero_with_the_init_on_a_shared_terminal() {
    if std::env::var(TTY_INNER).is_ok() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        return rt.block_on(async {
            for own in [true, false] {
                let mut b = Container::builder("/bin/sh");
                b.args([
                    "-c",
                    "read -r _ _ _ _ pgrp _ < /proc/self/stat; echo \"GROUP $pgrp\"",
                ])
                .namespaces(Namespaces::PID | Namespaces::MOUNT)
                .new_session(false)
                .stdin(Stdio::inherit())
                .stdout(Stdio::piped());
                if own {
                    b.process_group(0);
                }
                let o = b.output().await.unwrap();
                let text = String::from_utf8_lossy(&o.stdout);
                println!("\nRESULT own={own} {}", text.trim());
            }
        });
    }
    let _d = common::deadline("process_group_zero_with_the_init_on_a_shared_terminal", 60);
    let exe = std::env::current_exe().unwrap();
    let inner = format!(
        "{} --exact {} --nocapture",
        exe.display(),
        common::test_name(
            module_path!(),
            "process_group_zero_with_the_init_on_a_shared_terminal"
        )
    );
    let out = std::process::Command::new("script")
        .args(["-qfec", &inner, "/dev/null"])
        .env(TTY_INNER, "1")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("script (Debian package util-linux) gives the supervisor a terminal");
    let text = String::from_utf8_lossy(&out.stdout).replace('\r', "");
    assert!(out.status.success(), "{text}");
    let group = |own: bool| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("RESULT own={own} GROUP ")))
            .unwrap_or_else(|| panic!("no result for own={own}: {text}"))
            .trim()
            .to_string()
    };
    assert_eq!(group(true), "2", "its own group: {text}");
    assert_eq!(
        group(false),
        "0",
        "the control: the supervisor's group: {text}"
    );
}
