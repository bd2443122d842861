//! tokio's own process tests, ported to cellblock (issue 12).
//!
//! Sources, read at tokio-rs/tokio commit ea91b33ca57f: `tokio/tests/process_*.rs`,
//! `tests-integration/tests/process_stdio.rs` and the module-level doc examples of
//! `tokio/src/process/mod.rs`. Each test keeps the upstream scenario and assertions; only
//! the API is renamed:
//!
//! | tokio                               | cellblock                                      |
//! |-------------------------------------|------------------------------------------------|
//! | `Command::new(p)`                   | `Container::builder(p)`                        |
//! | `cmd.spawn()` (sync)                | `cmd.spawn().await` (the clone runs off-thread) |
//! | `child.stdin.take()` (a field)      | `child.take_stdin()` (same for stdout/stderr)  |
//! | `std::process::Stdio`               | `cellblock::Stdio`                             |
//! | `io::Result`                        | `cellblock::Result` (`From<Error> for io::Error` exists) |
//! | `child.raw_handle()` (Windows)      | `child.pidfd()` (the Linux process handle)     |
//! | `env!("CARGO_BIN_EXE_test-cat")`    | `/bin/cat` (what tokio's test-cat imitates)    |
//!
//! Expected differences kept as explicit assertions (none of them silently skipped):
//! - `process_spawned_outside_runtime`: tokio's `spawn()` is synchronous and panics
//!   outside a runtime; ours is async, so the port polls it with a non-tokio executor and
//!   asserts the same panic message.
//! - `process_issue_7144`: not a difference, a note: `strace -D` traces its own child
//!   inside a default container here (ptrace of a child needs no capability); the
//!   upstream test only asserts that `wait()` returns after SIGINT.
//!
//! Scenarios: 21 (the 9 tokio/tests files give 10 tests, process_stdio.rs 6, mod.rs 5
//! doc examples). Before the issue 12 fixes: 10 of 21 pass (reasoned per scenario from
//! main's API and bugs, since this port does not compile there; bugs 1-4 were also shown
//! failing by the regression tests in tests/it/lifecycle.rs). Failing before:
//! - `simple`, `try_wait`: no `id()` that is `None` once reaped;
//! - `kill_after_wait`: bug 3, `kill()` after `wait()` was `Err(AlreadyReaped)`;
//! - `issue_2174`: no async `kill()` (reaping); the sync one had tokio's `start_kill` role;
//! - `process_spawned_and_wait_in_different_runtime`: bug 4 ("A Tokio 1.x context was
//!   found, but it is being shutdown");
//! - `arg0`: no `arg0`;
//! - `status_closes_any_pipes`, `doc_output_future`: E0716, the `status()`/`output()`
//!   futures borrowed the temporary builder;
//! - `wait_with_output_captures`: no `From<cellblock::Error> for io::Error` for the `?`
//!   mix in its async block;
//! - `pipe_from_one_command_to_another`, `doc_pipe_echo_into_tr`: a pipe end did not
//!   convert into a `Stdio`.
//!
//! After: 21 of 21.
//!
//! **Second round (uid/gid/process_group/from_std):** std's tests of the `CommandExt`
//! settings that tokio re-exports, ported the same way: `test_process_group_posix_spawn`
//! and `test_process_group_no_posix_spawn` (std's two spawn paths; cellblock has one, so
//! one test, run with and without `new_session`), `uid_works`, `uid_to_root_fails`
//! (upstream returns early as root; here its claim is asserted on a user namespace that
//! does not map 0: an expected difference). Before: 0 of these 3 compiled (no `uid`, `gid`,
//! `process_group`). After: 3 of 3. Three tests of cellblock's own pin down what these
//! settings mean next to its defaults: `process_group_joins_and_with_init`,
//! `uid_and_gid_separately`, `from_std_command` (tokio has no test for its
//! `From<std::process::Command>`). The whole file: 27 of 27.

use crate::common;

use std::io;
use std::os::fd::AsRawFd;
use std::time::Duration;

use cellblock::{Container, ContainerBuilder, Stdio};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

// ---------------------------------------------------------------------------------------
// tokio/tests/process_smoke.rs: simple
#[tokio::test]
async fn simple() {
    let _d = common::deadline("simple", 60);
    let mut cmd;
    cmd = Container::builder("sh");
    cmd.arg("-c");
    let mut child = cmd.arg("exit 2").spawn().await.unwrap();
    let id = child.id().expect("missing id");
    assert!(id > 0);
    let status = child.wait().await.unwrap();
    assert_eq!(status.code(), Some(2));
    // wait() is fused, like std's
    let status = child.wait().await.unwrap();
    assert_eq!(status.code(), Some(2));
    // no id once the process has exited
    assert_eq!(child.id(), None);
    drop(child.kill());
}

// tokio/tests/process_kill_on_drop.rs: kill_on_drop
#[tokio::test]
async fn kill_on_drop() {
    let _d = common::deadline("kill_on_drop", 60);
    let mut cmd = Container::builder("bash");
    cmd.args([
        "-c",
        "
       # a grandchild that is not killed
       sh -c 'sleep 1; echo child ran' &
       disown -a
       # wait to be killed
       sleep 5
       echo hello from beyond the grave
    ",
    ]);
    let e = cmd.kill_on_drop(true).stdout(Stdio::piped()).spawn().await;
    if let Err(cellblock::Error::ProgramNotFound { .. }) = &e {
        println!("bash not available; skipping test");
        return;
    }
    let mut child = e.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut out = child.take_stdout().unwrap();
    drop(child);
    let mut msg = String::new();
    out.read_to_string(&mut msg).await.unwrap();
    assert_eq!("child ran\n", msg);
}

// tokio/tests/process_issue_2174.rs: issue_2174
// (Before issue 12 there was no async `kill()`: the port needed `start_kill()` + `wait()`
// under another name, which is more than a rename, so it is counted as failing.)
#[tokio::test]
async fn issue_2174() {
    let _d = common::deadline("issue_2174", 60);
    let mut child = Container::builder("sleep")
        .arg("2")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .await
        .unwrap();
    let mut input = child.take_stdin().unwrap();
    // More than the pipe holds: the writer ends up waiting for writability.
    let handle = tokio::spawn(async move {
        let data = [0u8; 8192];
        loop {
            input.write_all(&data).await.unwrap();
        }
    });
    // Long enough for the pipe to fill.
    tokio::time::sleep(Duration::from_secs(1)).await;
    child.kill().await.unwrap();
    // The writer saw EPIPE and its unwrap panicked.
    assert!(handle.await.is_err());
}

// tokio/tests/process_issue_42.rs: issue_42
#[tokio::test]
async fn issue_42() {
    let _d = common::deadline("issue_42", 120);
    let join_handles = (0..10usize).map(|_| {
        tokio::task::spawn(async {
            let processes = (0..10usize).map(|i| async move {
                let mut child = Container::builder("echo")
                    .arg(format!("I am spawned process #{i}"))
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .kill_on_drop(true)
                    .spawn()
                    .await
                    .unwrap();
                child.wait().await
            });
            for r in futures::future::join_all(processes).await {
                r.unwrap();
            }
        })
    });
    for r in futures::future::join_all(join_handles).await {
        r.unwrap();
    }
}

// tokio/tests/process_raw_handle.rs: obtain_raw_handle (Windows-only upstream: the raw
// process handle names the same process as `id()`). The Linux process handle is the
// pidfd; /proc/self/fdinfo says which pid it refers to.
#[tokio::test]
async fn obtain_raw_handle() {
    let _d = common::deadline("obtain_raw_handle", 60);
    let mut cmd = Container::builder("sleep");
    cmd.kill_on_drop(true);
    cmd.arg("30");
    let child = cmd.spawn().await.unwrap();
    let orig_id = child.id().expect("missing id");
    assert!(orig_id > 0);
    let handle = child.pidfd().expect("process stopped");
    let info =
        std::fs::read_to_string(format!("/proc/self/fdinfo/{}", handle.as_raw_fd())).unwrap();
    let handled_id: u32 = info
        .lines()
        .find_map(|l| l.strip_prefix("Pid:"))
        .expect("a pidfd's fdinfo has Pid:")
        .trim()
        .parse()
        .unwrap();
    assert_eq!(handled_id, orig_id);
}

// tokio/tests/process_change_of_runtime.rs: process_spawned_and_wait_in_different_runtime
#[test]
fn process_spawned_and_wait_in_different_runtime() {
    let _d = common::deadline("process_spawned_and_wait_in_different_runtime", 60);
    let mut child = tokio::runtime::Runtime::new().unwrap().block_on(async {
        Container::builder("true")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .await
            .unwrap()
    });
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let _ = child.wait().await.unwrap();
    });
}

// tokio/tests/process_change_of_runtime.rs: process_spawned_outside_runtime
// Expected difference: our spawn() is async. Polled outside any tokio runtime (a plain
// executor), it panics with the same message as tokio's synchronous spawn().
#[test]
#[should_panic(
    expected = "there is no reactor running, must be called from the context of a Tokio 1.x runtime"
)]
fn process_spawned_outside_runtime() {
    let _d = common::deadline("process_spawned_outside_runtime", 60);
    let _ = futures::executor::block_on(
        Container::builder("true")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn(),
    );
}

// tokio/tests/process_arg0.rs: arg0
#[tokio::test]
async fn arg0() {
    let _d = common::deadline("arg0", 60);
    let mut cmd = Container::builder("sh");
    cmd.arg0("test_string").arg("-c").arg("echo $0");
    let output = cmd.output().await.unwrap();
    assert_eq!(output.stdout, b"test_string\n");
}

// tokio/tests/process_kill_after_wait.rs: kill_after_wait
#[tokio::test]
async fn kill_after_wait() {
    let _d = common::deadline("kill_after_wait", 60);
    let mut cmd;
    cmd = Container::builder("sh");
    cmd.arg("-c");
    let mut child = cmd.arg("exit 2").spawn().await.unwrap();
    child.start_kill().unwrap();
    child.wait().await.unwrap();
    // Killing after wait is fine.
    child.start_kill().unwrap();
    child.kill().await.unwrap();
}

// tokio/tests/process_issue_7144.rs: issue_7144
#[tokio::test]
async fn issue_7144() {
    let _d = common::deadline("issue_7144", 120);
    let mut threads = vec![];
    for _ in 0..20 {
        threads.push(tokio::spawn(test_one()));
    }
    for thread in threads {
        thread.await.unwrap();
    }
}

async fn has_strace() -> bool {
    Container::builder("strace")
        .arg("-V")
        .output()
        .await
        .is_ok()
}

async fn test_one() {
    // Upstream returns early without strace; here that would pass unrun, so it fails
    // instead (.ci/run installs strace).
    assert!(
        has_strace().await,
        "strace (Debian package strace) is needed for process_issue_7144"
    );
    let mut t = Container::builder("strace")
        .args("-o /dev/null -D sleep 5".split(' '))
        .spawn()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    // SAFETY: kill(2) of our own, not yet reaped, child.
    unsafe { libc::kill(t.id().unwrap() as _, libc::SIGINT) };
    t.wait().await.unwrap();
}

// ---------------------------------------------------------------------------------------
// tests-integration/tests/process_stdio.rs

fn cat() -> ContainerBuilder {
    let mut cmd = Container::builder("/bin/cat");
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped());
    cmd
}

async fn feed_cat(mut cat: Container, n: usize) -> cellblock::Result<std::process::ExitStatus> {
    let mut stdin = cat.take_stdin().unwrap();
    let stdout = cat.take_stdout().unwrap();
    // n lines through cat.
    let write = async {
        for i in 0..n {
            let bytes = format!("line {i}\n").into_bytes();
            stdin.write_all(&bytes).await.unwrap();
        }
        drop(stdin);
    };
    let read = async {
        let mut reader = BufReader::new(stdout).lines();
        let mut num_lines = 0;
        // Read up to n + 1 lines: EOF must come right after the n-th.
        loop {
            let data = reader
                .next_line()
                .await
                .unwrap_or_else(|_| Some(String::new()))
                .expect("failed to read line");
            let num_read = data.len();
            let done = num_lines >= n;
            match (done, num_read) {
                (false, 0) => panic!("broken pipe"),
                (true, n) if n != 0 => panic!("extraneous data"),
                _ => {
                    let expected = format!("line {num_lines}");
                    assert_eq!(expected, data);
                }
            };
            num_lines += 1;
            if num_lines >= n {
                break;
            }
        }
    };
    let (_, _, status) = futures::future::join3(write, read, cat.wait()).await;
    status
}

// process_stdio.rs: feed_a_lot
#[tokio::test]
async fn feed_a_lot() {
    let _d = common::deadline("feed_a_lot", 60);
    let child = cat().spawn().await.unwrap();
    let status = feed_cat(child, 10000).await.unwrap();
    assert_eq!(status.code(), Some(0));
}

// process_stdio.rs: wait_with_output_captures
#[tokio::test]
async fn wait_with_output_captures() {
    let _d = common::deadline("wait_with_output_captures", 60);
    let mut child = cat().spawn().await.unwrap();
    let mut stdin = child.take_stdin().unwrap();
    let write_bytes = b"1234";
    let future = async {
        stdin.write_all(write_bytes).await?;
        drop(stdin);
        let out = child.wait_with_output();
        out.await.map_err(io::Error::from)
    };
    let output: std::process::Output = future.await.unwrap().into();
    assert!(output.status.success());
    assert_eq!(output.stdout, write_bytes);
    assert_eq!(output.stderr.len(), 0);
}

// process_stdio.rs: status_closes_any_pipes
#[tokio::test]
async fn status_closes_any_pipes() {
    let _d = common::deadline("status_closes_any_pipes", 60);
    // cat reads a piped stdin: unless status() closes our end, this never returns.
    let child = cat().status();
    child.await.unwrap();
}

// process_stdio.rs: try_wait
#[tokio::test]
async fn try_wait() {
    let _d = common::deadline("try_wait", 60);
    let mut child = cat().spawn().await.unwrap();
    let id = child.id().expect("missing id");
    assert!(id > 0);
    assert_eq!(None, child.try_wait().unwrap());
    // Close our ends so it can exit.
    drop(child.take_stdin());
    drop(child.take_stderr());
    drop(child.take_stdout());
    child.wait().await.unwrap();
    // try_wait() is fused, like std's
    assert!(child.try_wait().unwrap().unwrap().success());
    // no id once the process has exited
    assert_eq!(child.id(), None);
}

// process_stdio.rs: pipe_from_one_command_to_another
#[tokio::test]
async fn pipe_from_one_command_to_another() {
    let _d = common::deadline("pipe_from_one_command_to_another", 60);
    let mut first = cat().spawn().await.expect("first cmd");
    let mut third = cat().spawn().await.expect("third cmd");
    // stdout end into a Stdio
    let second_stdin: Stdio = first
        .take_stdout()
        .expect("first.stdout")
        .try_into()
        .expect("first.stdout into Stdio");
    // stdin end into a Stdio
    let second_stdout: Stdio = third
        .take_stdin()
        .expect("third.stdin")
        .try_into()
        .expect("third.stdin into Stdio");
    let mut second = cat()
        .stdin(second_stdin)
        .stdout(second_stdout)
        .spawn()
        .await
        .expect("first cmd");
    let msg = "hello world! please pipe this message through";
    let mut stdin = first.take_stdin().expect("first.stdin");
    let write = async move { stdin.write_all(msg.as_bytes()).await };
    let mut stdout = third.take_stdout().expect("third.stdout");
    let read = async move {
        let mut data = String::new();
        stdout.read_to_string(&mut data).await.map(|_| data)
    };
    let (read, write, first_status, second_status, third_status) =
        tokio::join!(read, write, first.wait(), second.wait(), third.wait());
    assert_eq!(msg, read.expect("read result"));
    write.expect("write result");
    assert!(first_status.expect("first status").success());
    assert!(second_status.expect("second status").success());
    assert!(third_status.expect("third status").success());
}

// process_stdio.rs: vectored_writes
#[tokio::test]
async fn vectored_writes() {
    use bytes::{Buf, Bytes};
    use std::{io::IoSlice, pin::Pin, task::ready};
    use tokio::io::AsyncWrite;
    let _d = common::deadline("vectored_writes", 60);
    let mut cat = cat().spawn().await.unwrap();
    let mut stdin = cat.take_stdin().unwrap();
    let are_writes_vectored = stdin.is_write_vectored();
    let mut stdout = cat.take_stdout().unwrap();
    let write = async {
        let mut input = Bytes::from_static(b"hello\n").chain(Bytes::from_static(b"world!\n"));
        let mut writes_completed = 0;
        std::future::poll_fn(|cx| loop {
            let mut slices = [IoSlice::new(&[]); 2];
            let vectored = input.chunks_vectored(&mut slices);
            if vectored == 0 {
                return std::task::Poll::Ready(std::io::Result::Ok(()));
            }
            let n = ready!(Pin::new(&mut stdin).poll_write_vectored(cx, &slices))?;
            writes_completed += 1;
            input.advance(n);
        })
        .await?;
        drop(stdin);
        std::io::Result::Ok(writes_completed)
    };
    let read = async {
        let mut buffer = Vec::with_capacity(6 + 7);
        stdout.read_to_end(&mut buffer).await?;
        std::io::Result::Ok(buffer)
    };
    let (write, read, status) = futures::future::join3(write, read, cat.wait()).await;
    assert!(status.unwrap().success());
    let writes_completed = write.unwrap();
    // One writev for the small payload exactly when vectored writes are forwarded.
    assert_eq!(writes_completed == 1, are_writes_vectored);
    assert_eq!(&read.unwrap(), b"hello\nworld!\n");
}

// ---------------------------------------------------------------------------------------
// tokio/src/process/mod.rs, module doc examples (no_run upstream; run here).

// mod.rs doc example 1: spawn echo, wait.
#[tokio::test]
async fn doc_spawn_and_wait() -> Result<(), Box<dyn std::error::Error>> {
    let _d = common::deadline("doc_spawn_and_wait", 60);
    let mut child = Container::builder("echo")
        .arg("hello")
        .arg("world")
        .spawn()
        .await
        .expect("failed to spawn");
    let status = child.wait().await?;
    println!("the command exited with: {}", status);
    Ok(())
}

// mod.rs doc example 2: `output()` as a future made from a temporary builder.
#[tokio::test]
async fn doc_output_future() -> Result<(), Box<dyn std::error::Error>> {
    let _d = common::deadline("doc_output_future", 60);
    let output = Container::builder("echo")
        .arg("hello")
        .arg("world")
        .output();
    let output = output.await?;
    assert!(output.status.success());
    assert_eq!(output.stdout, b"hello world\n");
    Ok(())
}

// mod.rs doc example 3: read cat's stdout line by line while a task waits for it.
#[tokio::test]
async fn doc_read_lines_while_a_task_waits() -> Result<(), Box<dyn std::error::Error>> {
    let _d = common::deadline("doc_read_lines_while_a_task_waits", 60);
    let mut cmd = Container::builder("cat");
    cmd.stdout(Stdio::piped());
    // Upstream's cat reads the terminal; here stdin is null so that it ends.
    cmd.stdin(Stdio::null());
    let mut child = cmd.spawn().await.expect("failed to spawn command");
    let stdout = child
        .take_stdout()
        .expect("child did not have a handle to stdout");
    let mut reader = BufReader::new(stdout).lines();
    let waiter = tokio::spawn(async move {
        let status = child
            .wait()
            .await
            .expect("child process encountered an error");
        println!("child status was: {}", status);
    });
    while let Some(line) = reader.next_line().await? {
        println!("Line: {}", line);
    }
    waiter.await?;
    Ok(())
}

// mod.rs doc example 4: sort with piped stdin and stdout.
#[tokio::test]
// `write`, not `write_all`, as in the upstream example (a short write there is its bug).
#[allow(clippy::unused_io_amount)]
async fn doc_sort_through_pipes() -> Result<(), Box<dyn std::error::Error>> {
    let _d = common::deadline("doc_sort_through_pipes", 60);
    let mut cmd = Container::builder("sort");
    cmd.stdout(Stdio::piped());
    cmd.stdin(Stdio::piped());
    let mut child = cmd.spawn().await.expect("failed to spawn command");
    let animals: &[&str] = &["dog", "bird", "frog", "cat", "fish"];
    let mut stdin = child
        .take_stdin()
        .expect("child did not have a handle to stdin");
    stdin
        .write(animals.join("\n").as_bytes())
        .await
        .expect("could not write to stdin");
    drop(stdin);
    let op = child.wait_with_output().await?;
    assert_eq!(op.stdout, "bird\ncat\ndog\nfish\nfrog\n".as_bytes());
    Ok(())
}

// mod.rs doc example 5: echo's stdout becomes tr's stdin.
#[tokio::test]
async fn doc_pipe_echo_into_tr() -> Result<(), Box<dyn std::error::Error>> {
    let _d = common::deadline("doc_pipe_echo_into_tr", 60);
    let mut echo = Container::builder("echo")
        .arg("hello world!")
        .stdout(Stdio::piped())
        .spawn()
        .await
        .expect("failed to spawn echo");
    let tr_stdin: Stdio = echo
        .take_stdout()
        .unwrap()
        .try_into()
        .expect("failed to convert to Stdio");
    let tr = Container::builder("tr")
        .arg("a-z")
        .arg("A-Z")
        .stdin(tr_stdin)
        .stdout(Stdio::piped())
        .spawn()
        .await
        .expect("failed to spawn tr");
    let (echo_result, tr_output) = tokio::join!(echo.wait(), tr.wait_with_output());
    assert!(echo_result.unwrap().success());
    let tr_output = tr_output.expect("failed to await tr");
    assert!(tr_output.status.success());
    assert_eq!(tr_output.stdout, b"HELLO WORLD!\n");
    Ok(())
}

// ---------------------------------------------------------------------------------------
// std's process tests for the `CommandExt` settings tokio re-exports (`uid`, `gid`,
// `process_group`), and the conversion from a std `Command` (issue 12, second round).

/// The workload's process group id, as the host sees it (`/proc/PID/stat`, field 5).
fn pgid_of(pid: i32) -> i32 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // After the command name in parentheses: state, ppid, pgrp.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    rest.split_whitespace().nth(2).unwrap().parse().unwrap()
}

/// `kill(-pgid, sig)`: 0 or the errno.
fn kill_group(pgid: i32, sig: i32) -> i32 {
    // SAFETY: plain syscall. man 2 kill.
    if unsafe { libc::kill(-pgid, sig) } == 0 {
        0
    } else {
        io::Error::last_os_error().raw_os_error().unwrap()
    }
}

/// std's `test_process_group_posix_spawn` / `test_process_group_no_posix_spawn` body: a
/// `cat` with `process_group(0)` and piped stdin/stdout hangs; killing its process group
/// with SIGINT must work ("which means there *is* one") and end it.
async fn cat_in_its_own_group(mut cmd: ContainerBuilder) {
    cmd.process_group(0)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped());
    let mut cat = cmd.spawn().await.unwrap();
    // Seen from the host too: it leads a group of its own.
    assert_eq!(pgid_of(cat.pid()), cat.pid());
    assert_eq!(kill_group(cat.id().unwrap() as i32, libc::SIGINT), 0);
    let status = cat.wait().await.unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(libc::SIGINT)
    );
}

// rust-lang/rust library/std/src/sys/pal/unix/process/process_common/tests.rs:
// test_process_group_posix_spawn and test_process_group_no_posix_spawn (the same scenario
// through std's two spawn paths; cellblock has one). Run twice: with the defaults, where
// the new session already makes `cat` a group leader, and with new_session(false), where
// process_group(0) alone does it. Control: new_session(false) without process_group, `cat`
// stays in our group and no group of its pid exists (ESRCH).
#[tokio::test]
async fn process_group_posix_spawn() {
    let _d = common::deadline("process_group", 60);
    cat_in_its_own_group(Container::builder("cat")).await;
    let mut cmd = Container::builder("cat");
    cmd.new_session(false);
    cat_in_its_own_group(cmd).await;
    // Control.
    let mut cat = Container::builder("cat")
        .new_session(false)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .await
        .unwrap();
    // SAFETY: plain syscall.
    assert_eq!(pgid_of(cat.pid()), unsafe { libc::getpgrp() });
    assert_eq!(kill_group(cat.pid(), libc::SIGINT), libc::ESRCH);
    cat.kill().await.unwrap();
}

// Not an upstream test: what process_group means next to cellblock's own settings (see
// its docs). With the built-in init the workload (not the init) leads its group; a
// workload given process_group(leader) joins the leader's group, and killing the group
// ends both; the combinations that cannot work are refused before anything runs.
#[tokio::test]
async fn process_group_joins_and_with_init() {
    let _d = common::deadline("process_group join", 60);
    // With the init: the workload, a child of the init, leads its own group.
    let mut c = Container::builder("sleep")
        .arg("30")
        .namespaces(cellblock::Namespaces::PID)
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .await
        .unwrap();
    let workload = *common::children_of(c.pid())
        .first()
        .expect("the init's child");
    assert_eq!(pgid_of(workload), workload);
    assert_ne!(pgid_of(workload), pgid_of(c.pid()));
    c.kill().await.unwrap();

    let mut leader = Container::builder("sleep")
        .arg("30")
        .new_session(false)
        .process_group(0)
        .spawn()
        .await
        .unwrap();
    let mut member = Container::builder("sleep")
        .arg("30")
        .new_session(false)
        .process_group(leader.pid())
        .spawn()
        .await
        .unwrap();
    assert_eq!(pgid_of(member.pid()), leader.pid());
    assert_eq!(kill_group(leader.pid(), libc::SIGTERM), 0);
    for c in [&mut leader, &mut member] {
        let status = c.wait().await.unwrap();
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(libc::SIGTERM)
        );
    }

    // Refused before the clone, naming the setting.
    for (b, words) in [
        (Container::builder("true").process_group(-1).clone(), "-1"),
        (
            Container::builder("true")
                .process_group(leader.pid())
                .clone(),
            "new_session(false)",
        ),
        (
            Container::builder("true")
                .new_session(false)
                .namespaces(cellblock::Namespaces::PID)
                .process_group(leader.pid())
                .clone(),
            "Namespaces::PID",
        ),
    ] {
        let err = b.clone().status().await.unwrap_err();
        assert!(
            matches!(&err, cellblock::Error::BadConfig(m) if m.contains(words) && m.contains("process_group")),
            "{err}"
        );
    }
    // A group that does not exist: the child's setpgid fails, named.
    // SAFETY: plain syscall.
    let err = Container::builder("true")
        .new_session(false)
        .process_group(unsafe { libc::getpid() } + 1_000_000)
        .status()
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            cellblock::Error::Setup {
                stage: cellblock::Stage::ProcessGroup,
                ..
            }
        ),
        "{err:?}"
    );
}

// rust-lang/rust src/libstd/process.rs (its test module, before std's tests moved):
// uid_works. `/bin/sh -c true` with uid(getuid()) and gid(getgid()) succeeds: as root the
// caller's ids are 0, which the container's user namespace maps (the default identity);
// run unprivileged (this binary under `setpriv --reuid=65534`), there is no user namespace
// and switching to one's own ids needs no privilege, as in std.
#[tokio::test]
async fn uid_works() {
    let _d = common::deadline("uid_works", 60);
    // SAFETY: plain syscalls.
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    let mut p = Container::builder("/bin/sh")
        .arg("-c")
        .arg("true")
        .uid(uid)
        .gid(gid)
        .spawn()
        .await
        .unwrap();
    assert!(p.wait().await.unwrap().success());
}

// rust-lang/rust src/libstd/process.rs: uid_to_root_fails. Upstream returns early when
// the caller is root ("not a valid test"), which it is here. Expected difference,
// asserted: the same claim (switching to ids the spawn may not have fails at spawn)
// holds for a container whose user namespace does not map 0, and is refused before the
// clone with a message naming the id.
#[tokio::test]
async fn uid_to_root_fails() {
    let _d = common::deadline("uid_to_root_fails", 60);
    let err = Container::builder("/bin/ls")
        .namespaces(cellblock::Namespaces::USER)
        .uid_map(1000, 200_000, 1)
        .gid_map(1000, 200_000, 1)
        .uid(0)
        .gid(0)
        .spawn()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("uid 0 is not mapped"), "{err}");
}

/// `(uid, gid)` from /proc/PID/status (real ids).
fn ids_of(pid: i32) -> (u32, u32) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| -> u32 {
        let line = status.lines().find(|l| l.starts_with(name)).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    };
    (field("Uid:"), field("Gid:"))
}

// Not an upstream test: uid() and gid() alone, seen from both sides. The unset one stays
// what it is without either call (0 in the user namespace); the host sees the mapped ids.
#[tokio::test]
async fn uid_and_gid_separately() {
    let _d = common::deadline("uid and gid", 60);
    for (uid, gid, want) in [
        (Some(1000), None, (1000, 0)),
        (None, Some(1000), (0, 1000)),
        (Some(7), Some(9), (7, 9)),
    ] {
        let mut b = Container::builder("/bin/sh");
        b.args(["-c", "echo $(id -u) $(id -g); exec sleep 30"])
            .namespaces(cellblock::Namespaces::USER)
            .uid_map(0, 300_000, 2000)
            .gid_map(0, 300_000, 2000)
            .stdout(Stdio::piped())
            .kill_on_drop(true);
        if let Some(u) = uid {
            b.uid(u);
        }
        if let Some(g) = gid {
            b.gid(g);
        }
        let mut c = b.spawn().await.unwrap();
        let mut line = String::new();
        BufReader::new(c.take_stdout().unwrap())
            .read_line(&mut line)
            .await
            .unwrap();
        assert_eq!(line, format!("{} {}\n", want.0, want.1));
        assert_eq!(ids_of(c.pid()), (300_000 + want.0, 300_000 + want.1));
        c.kill().await.unwrap();
    }
}

// Not an upstream test (tokio's `From<std::process::Command>` has none): everything std
// lets us read back crosses over, and the workload reports it. `env_clear` drops
// cellblock's default PATH too; the std command's implicit inheritance of our whole
// environment does not cross (documented difference, asserted: the workload's environment
// is exactly cellblock's default plus what the std command set).
#[tokio::test]
async fn from_std_command() {
    use std::os::unix::process::CommandExt;
    let _d = common::deadline("from_std", 60);
    let mut std_cmd = std::process::Command::new("/bin/sh");
    std_cmd
        .arg0("renamed")
        .args(["-c", "echo $0; echo $(/usr/bin/env); pwd; /usr/bin/id -u; /usr/bin/id -g; /usr/bin/cut -d' ' -f5 /proc/self/stat; echo $$"])
        .env_clear()
        .env("A", "1")
        .env("B", "2")
        .env_remove("B")
        .current_dir("/usr")
        .uid(1000)
        .gid(1001)
        .process_group(0);
    let mut b = ContainerBuilder::from(std_cmd);
    b.namespaces(cellblock::Namespaces::USER)
        .uid_map(0, 300_000, 2000)
        .gid_map(0, 300_000, 2000)
        .new_session(false);
    assert_eq!(b.get_program(), "/bin/sh");
    assert_eq!(b.get_args().len(), 2);
    assert_eq!(b.get_current_dir(), Some(std::path::Path::new("/usr")));
    let out = b.output().await.unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "renamed");
    // The whole environment: B removed, no default PATH after env_clear (PWD is the
    // shell's own export).
    assert_eq!(lines[1], "A=1 PWD=/usr");
    assert_eq!(lines[2], "/usr");
    assert_eq!(lines[3], "1000");
    assert_eq!(lines[4], "1001");
    // process_group(0): cut's group is the shell's own pid (`$$`), not ours.
    assert_eq!(lines[5], lines[6], "{text}");
    assert!(out.status.success());

    // Without env_clear: the default environment (PATH only), not the caller's.
    let mut std_cmd = std::process::Command::new("/usr/bin/env");
    std_cmd.env("A", "1");
    let out = ContainerBuilder::from_std(&std_cmd).output().await.unwrap();
    let env = String::from_utf8(out.stdout).unwrap();
    // Exactly the default environment plus A: nothing of ours crossed.
    let mut lines: Vec<&str> = env.lines().collect();
    lines.sort();
    assert_eq!(
        lines,
        [
            "A=1".to_string(),
            format!("PATH={}", cellblock::DEFAULT_PATH)
        ]
    );

    // A setting that crosses over is checked like one made on the builder: a negative
    // process group is refused by name rather than dropped.
    let mut std_cmd = std::process::Command::new("/bin/true");
    std_cmd.process_group(-1);
    let err = ContainerBuilder::from(std_cmd).status().await.unwrap_err();
    assert!(
        matches!(&err, cellblock::Error::BadConfig(m) if m.contains("process_group(-1)")),
        "{err}"
    );
}
