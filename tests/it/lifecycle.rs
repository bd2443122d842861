//! Spawning, waiting, signalling and dropping containers; the Command-like settings; and
//! coexistence with tokio::process children in one program.

use crate::common;

use std::os::unix::process::ExitStatusExt;
use std::time::Duration;

use cellblock::{Container, Namespaces, Signal, Stdio};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn exit_codes_and_signals_come_back() {
    for code in [0, 1, 7, 255] {
        let s = Container::builder("/bin/sh")
            .args(["-c", &format!("exit {code}")])
            .namespaces(Namespaces::PID)
            .status()
            .await
            .unwrap();
        assert_eq!(s.code(), Some(code));
    }
    let s = Container::builder("/bin/sh")
        .args(["-c", "kill -SEGV $$"])
        .status()
        .await
        .unwrap();
    assert_eq!(s.signal(), Some(libc::SIGSEGV));
}

#[tokio::test]
async fn signal_and_kill_through_the_pidfd() {
    // Without a PID namespace SIGTERM ends `sleep`.
    let mut c = Container::builder("/bin/sleep")
        .arg("30")
        .namespaces(Namespaces::UTS)
        .spawn()
        .await
        .unwrap();
    c.signal(Signal::SIGTERM).unwrap();
    assert_eq!(c.wait().await.unwrap().signal(), Some(libc::SIGTERM));

    // As PID 1 a workload only gets the signals it handles: a trap sees SIGTERM.
    let mut c = Container::builder("/bin/sh")
        .args([
            "-c",
            "trap 'exit 42' TERM; echo ready; while :; do sleep 0.05; done",
        ])
        .namespaces(Namespaces::PID)
        .stdout(Stdio::piped())
        .spawn()
        .await
        .unwrap();
    let mut out = c.take_stdout().unwrap();
    let mut buf = [0u8; 6];
    out.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"ready\n");
    c.signal(Signal::SIGTERM).unwrap();
    assert_eq!(c.wait().await.unwrap().code(), Some(42));

    // start_kill() is SIGKILL, which even PID 1 cannot ignore.
    let mut c = Container::builder("/bin/sleep")
        .arg("30")
        .namespaces(Namespaces::PID)
        .spawn()
        .await
        .unwrap();
    let pid = c.pid();
    c.start_kill().unwrap();
    assert_eq!(c.wait().await.unwrap().signal(), Some(libc::SIGKILL));
    assert!(!common::alive(pid));
    // After reaping, signalling is refused rather than hitting a recycled pid.
    assert!(matches!(
        c.signal(Signal::SIGTERM),
        Err(cellblock::Error::AlreadyReaped)
    ));
    // wait() again returns the same status.
    assert_eq!(c.wait().await.unwrap().signal(), Some(libc::SIGKILL));
}

#[tokio::test]
async fn env_args_cwd_and_stdin() {
    if common::ran_alone(module_path!(), "env_args_cwd_and_stdin") {
        return;
    }
    std::env::set_var("CELLBLOCK_INHERITED", "yes");
    let out = Container::builder("/bin/sh")
        .args([
            "-c",
            "echo \"$A|$B|$CELLBLOCK_INHERITED|$0|$1\"; pwd; cat",
            "zero",
            "one",
        ])
        .env("A", "1")
        .envs([("B", "2")])
        // The environment is clean by default; inheriting is asked for (issue 11).
        .env_inherit()
        .current_dir("/usr")
        .stdin(Stdio::piped())
        .output()
        .await;
    // output() sets stdin to null by default; a piped stdin is closed at once.
    let out = out.unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "1|2|yes|zero|one\n/usr\n"
    );

    let out = Container::builder("/usr/bin/env")
        .env_clear()
        .env("ONLY", "this")
        .output()
        .await
        .unwrap();
    assert_eq!(out.stdout, b"ONLY=this\n");
    let out = Container::builder("/bin/sh")
        .args(["-c", "echo ${CELLBLOCK_INHERITED:-gone}"])
        .env_inherit()
        .env_remove("CELLBLOCK_INHERITED")
        .output()
        .await
        .unwrap();
    assert_eq!(out.stdout, b"gone\n");

    let mut c = Container::builder("/usr/bin/tr")
        .args(["a-z", "A-Z"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .await
        .unwrap();
    let mut stdin = c.take_stdin().unwrap();
    stdin.write_all(b"hello container").await.unwrap();
    drop(stdin);
    let out = c.wait_with_output().await.unwrap();
    assert_eq!(out.stdout, b"HELLO CONTAINER");
    assert!(out.stderr.is_empty());
}

#[tokio::test]
async fn stderr_and_stdio_from_files() {
    let out = Container::builder("/bin/sh")
        .args(["-c", "echo out; echo err >&2"])
        .output()
        .await
        .unwrap();
    assert_eq!(
        (out.stdout.as_slice(), out.stderr.as_slice()),
        (&b"out\n"[..], &b"err\n"[..])
    );

    let path = std::env::temp_dir().join(format!("cellblock-stdio-{}", std::process::id()));
    let f = std::fs::File::create(&path).unwrap();
    let s = Container::builder("/bin/echo")
        .arg("to a file")
        .stdout(f)
        .status()
        .await
        .unwrap();
    assert!(s.success());
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "to a file\n");
    std::fs::remove_file(&path).unwrap();

    let out = Container::builder("/bin/cat")
        .stdin(Stdio::null())
        .output()
        .await
        .unwrap();
    assert!(out.stdout.is_empty() && out.status.success());
}

#[tokio::test]
async fn a_builder_spawns_many_times() {
    let mut b = Container::builder("/bin/sh");
    b.args(["-c", "echo $$"]).namespaces(Namespaces::PID);
    for _ in 0..3 {
        // PID 2: the built-in init is PID 1 (issue 4).
        assert_eq!(b.output().await.unwrap().stdout, b"2\n");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coexists_with_tokio_process_children() {
    // Containers and tokio::process children, interleaved and concurrent, each reaped by
    // its own owner: no ECHILD, no stolen status.
    let mut tasks = Vec::new();
    for i in 0..20 {
        tasks.push(tokio::spawn(async move {
            let code = i % 7;
            if i % 2 == 0 {
                let s = Container::builder("/bin/sh")
                    .args(["-c", &format!("sleep 0.0{i}; exit {code}")])
                    .namespaces(Namespaces::PID)
                    .status()
                    .await
                    .unwrap();
                assert_eq!(s.code(), Some(code), "container {i}");
            } else {
                let s = tokio::process::Command::new("/bin/sh")
                    .args(["-c", &format!("sleep 0.0{i}; exit {code}")])
                    .status()
                    .await
                    .unwrap();
                assert_eq!(s.code(), Some(code), "tokio child {i}");
            }
        }));
    }
    // And a std child waited on synchronously in the middle of it all.
    let s = std::process::Command::new("/bin/sh")
        .args(["-c", "exit 3"])
        .status()
        .unwrap();
    assert_eq!(s.code(), Some(3));
    for t in tasks {
        t.await.unwrap();
    }
}

#[tokio::test]
async fn kill_on_drop_kills_and_reaps_in_background() {
    let c = Container::builder("/bin/sleep")
        .arg("30")
        .namespaces(Namespaces::PID)
        .kill_on_drop(true)
        .spawn()
        .await
        .unwrap();
    let pid = c.pid();
    drop(c);
    assert!(
        common::eventually(5, || !common::alive(pid)).await,
        "killed and reaped"
    );
}

#[tokio::test]
async fn dropped_container_keeps_running_then_is_reaped() {
    let c = Container::builder("/bin/sleep")
        .arg("0.3")
        .spawn()
        .await
        .unwrap();
    let pid = c.pid();
    drop(c);
    // Without kill_on_drop it is left to finish...
    tokio::time::sleep(Duration::from_millis(100)).await;
    let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    assert!(!state.contains(") Z "), "still running: {state}");
    // ...and is reaped by the background reaper once it exits: no zombie remains.
    assert!(
        common::eventually(5, || !common::alive(pid)).await,
        "reaped after exit"
    );
}

// Issue 12, bug 1: `status()` with piped stdout/stderr and a workload that writes more
// than a pipe holds. tokio closes our ends of every pipe in `status()`, so the workload
// gets EPIPE/SIGPIPE instead of blocking forever; before the fix this hung.
#[tokio::test(flavor = "multi_thread")]
async fn status_closes_stdout_and_stderr_pipes() {
    let _d = common::deadline("status_closes_stdout_and_stderr_pipes", 60);
    let mut b = Container::builder("/bin/sh");
    b.args([
        "-c",
        "head -c 1048576 /dev/zero; head -c 1048576 /dev/zero >&2; exit 0",
    ])
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let fut = b.status();
    let status = tokio::time::timeout(Duration::from_secs(20), fut)
        .await
        .expect("status() did not return within 20 s: a piped stream was left open")
        .unwrap();
    // `head` died of SIGPIPE or failed with EPIPE; the shell still ran to `exit 0`.
    assert_eq!(status.code(), Some(0));
}

// Issue 12, bug 2: `output()` captures stdout and stderr whatever they were set to, as
// tokio's does. Before the fix `stdout(null)` made `output()` return nothing.
#[tokio::test(flavor = "multi_thread")]
async fn output_always_captures_stdout_and_stderr() {
    let _d = common::deadline("output_always_captures_stdout_and_stderr", 60);
    for (out, err) in [
        (Stdio::null(), Stdio::null()),
        (Stdio::inherit(), Stdio::inherit()),
    ] {
        let o = Container::builder("/bin/sh")
            .args(["-c", "echo out; echo err >&2"])
            .stdout(out)
            .stderr(err)
            .output()
            .await
            .unwrap();
        assert_eq!(o.stdout, b"out\n");
        assert_eq!(o.stderr, b"err\n");
    }
}

// Issue 12, bug 4: a container spawned in one runtime and awaited in another (the first
// one shut down). Before the fix the pidfd stayed registered with the dead runtime's
// reactor and `wait()` failed with "A Tokio 1.x context was found, but it is being
// shutdown".
#[test]
fn spawned_in_one_runtime_waited_in_another() {
    let _d = common::deadline("spawned_in_one_runtime_waited_in_another", 60);
    for flavor in ["multi", "current"] {
        let rt = || {
            if flavor == "multi" {
                tokio::runtime::Builder::new_multi_thread()
                    .enable_all()
                    .build()
                    .unwrap()
            } else {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap()
            }
        };
        let mut c = rt().block_on(async {
            Container::builder("/bin/sh")
                .args(["-c", "exit 5"])
                .namespaces(Namespaces::PID)
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .spawn()
                .await
                .unwrap()
        });
        let status = rt().block_on(async { c.wait().await.unwrap() });
        assert_eq!(status.code(), Some(5), "{flavor}");
    }
}

// Issue 12, bug 3: killing a container that has been reaped is `Ok`, as tokio's
// `start_kill()`/`kill()` after `wait()` are (before the fix, `kill()` after `wait()`
// returned `Err(AlreadyReaped)`); `id()` is `None` from then on. The async `kill()` also
// reaps.
#[tokio::test(flavor = "multi_thread")]
async fn kill_after_wait_is_ok_and_kill_reaps() {
    let _d = common::deadline("kill_after_wait_is_ok_and_kill_reaps", 60);
    let mut c = Container::builder("/bin/sh")
        .args(["-c", "exit 2"])
        .spawn()
        .await
        .unwrap();
    assert_eq!(c.id(), Some(c.pid() as u32));
    assert_eq!(c.wait().await.unwrap().code(), Some(2));
    assert_eq!(c.id(), None);
    c.start_kill().unwrap();
    c.kill().await.unwrap();
    // signal() still refuses: it names a signal for a process that is gone.
    assert!(matches!(
        c.signal(Signal::SIGTERM),
        Err(cellblock::Error::AlreadyReaped)
    ));

    let mut c = Container::builder("/bin/sleep")
        .arg("30")
        .namespaces(Namespaces::PID)
        .spawn()
        .await
        .unwrap();
    let pid = c.pid();
    c.kill().await.unwrap();
    assert_eq!(c.id(), None);
    assert!(!common::alive(pid), "kill() reaped it");
    assert_eq!(c.wait().await.unwrap().signal(), Some(libc::SIGKILL));
}

// Issue 12, bug 11: an argument list too long for execve is the workload's, not the init's
// (the init is exec'd with the workload's argv); before the fix the message blamed
// "exec the init".
#[tokio::test(flavor = "multi_thread")]
async fn too_long_an_argument_list_is_blamed_on_the_workload() {
    let _d = common::deadline("too_long_an_argument_list_is_blamed_on_the_workload", 60);
    // One string over MAX_ARG_STRLEN (128 KiB): E2BIG at exec, whatever the stack rlimit.
    let big = "x".repeat(200 * 1024);
    for pid_ns in [false, true] {
        let mut b = Container::builder("/bin/true");
        b.arg(&big);
        if pid_ns {
            b.namespaces(Namespaces::PID);
        }
        let err = b.spawn().await.unwrap_err();
        assert_eq!(err.errno(), Some(libc::E2BIG), "{err}");
        let msg = err.to_string();
        assert!(
            msg.contains("the workload's arguments and environment are too long"),
            "{msg}"
        );
        assert!(!msg.contains("exec the init"), "{msg}");
    }
}

// Issue 12, bug 11: a missing namespace is named as the constant to add, not as its Debug
// form ("needs Namespaces::Namespaces(UTS)" before the fix).
#[tokio::test(flavor = "multi_thread")]
async fn a_missing_namespace_is_named_as_its_constant() {
    let _d = common::deadline("a_missing_namespace_is_named_as_its_constant", 60);
    let err = Container::builder("/bin/true")
        .hostname("x")
        .spawn()
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("needs Namespaces::UTS "), "{msg}");
    assert!(!msg.contains("Namespaces(UTS)"), "{msg}");
}
