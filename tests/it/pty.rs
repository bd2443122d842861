//! Terminals: a pty as the container's controlling terminal in a new session, the
//! supervisor's side as channels, window sizes, and the interactive `shell` example driven
//! through a pty the way a person would use it.

use crate::common;

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::process::Command;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cellblock::{Container, PtySize, Stdio};
use futures::StreamExt;

/// Fields of /proc/<pid>/stat after the command: (state, ppid, pgrp, session, tty_nr, tpgid).
fn stat_fields(stat: &str) -> Vec<i64> {
    stat.rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .skip(1)
        .take(5)
        .map(|f| f.parse().unwrap())
        .collect()
}

async fn read_until(
    rx: &mut tokio::sync::mpsc::Receiver<Bytes>,
    needle: &str,
    acc: &mut String,
) -> bool {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !acc.contains(needle) {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(b)) => acc.push_str(&String::from_utf8_lossy(&b)),
            _ => return false,
        }
    }
    true
}

#[tokio::test(flavor = "multi_thread")]
async fn pty_is_the_controlling_terminal_of_a_new_session() {
    let mut c = Container::builder("/bin/sh")
        .args(["-c", "cat /proc/self/stat; tty; stty size; sleep 30"])
        .namespaces(common::ns())
        .pty_size(PtySize {
            rows: 40,
            cols: 100,
        })
        .kill_on_drop(true)
        .spawn()
        .await
        .unwrap();
    let pty = c.take_pty().unwrap().unwrap();
    assert!(c.take_pty().unwrap().is_none());
    let mut out = pty.map(|b| String::from_utf8_lossy(&b.unwrap()).into_owned());
    let mut acc = String::new();
    while !acc.contains("40 100") {
        acc.push_str(
            &tokio::time::timeout(Duration::from_secs(10), out.next())
                .await
                .unwrap()
                .unwrap(),
        );
    }
    let lines: Vec<&str> = acc.lines().map(|l| l.trim_end_matches('\r')).collect();
    // Inside: cat (pid 3: init 1, sh 2) has the pty as controlling terminal, in the
    // session the init leads (sid 1), and sh's group is the terminal's foreground group.
    let f = stat_fields(lines[0]);
    let (pgrp, session, tty_nr, tpgid) = (f[1], f[2], f[3], f[4]);
    assert_eq!(session, 1, "{lines:?}");
    assert_ne!(tty_nr, 0, "no controlling terminal");
    assert_eq!(pgrp, 2, "sh leads its own process group");
    assert_eq!(tpgid, 2, "sh's group is in the foreground");
    assert!(lines[1].starts_with("/dev/pts/"), "{lines:?}");
    assert_eq!(lines[2], "40 100");
    // From the host: a session of its own, not the supervisor's, and not our terminal.
    let host = std::fs::read_to_string(format!("/proc/{}/stat", c.pid())).unwrap();
    let me = std::fs::read_to_string("/proc/self/stat").unwrap();
    let (hf, mf) = (stat_fields(&host), stat_fields(&me));
    assert_eq!(hf[2], c.pid() as i64, "the init leads a new session");
    assert_ne!(hf[2], mf[2]);
    assert_eq!(hf[3], tty_nr, "host and container agree on the terminal");
    assert_ne!(hf[3], mf[3]);
    c.start_kill().unwrap();
    c.wait().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn pty_channels_and_resize() {
    let mut c = Container::builder("/bin/sh")
        .args([
            "-c",
            "trap 'echo WINCH $(stty size)' WINCH; hostname; read line; echo \"got $line\"; \
                      while :; do sleep 0.05; done",
        ])
        .namespaces(common::ns())
        .hostname("ptyhost")
        .pty()
        .kill_on_drop(true)
        .spawn()
        .await
        .unwrap();
    let ch = c.take_pty().unwrap().unwrap().into_channels(16);
    let (input, mut output, resizer) = (ch.input, ch.output, ch.resizer);
    let mut acc = String::new();
    assert!(
        read_until(&mut output, "ptyhost\r\n", &mut acc).await,
        "{acc:?}"
    );
    assert_eq!(resizer.size().unwrap(), PtySize { rows: 24, cols: 80 });
    // Typed input comes back as the terminal's echo, then as what the program read.
    input.send("typed\n".into()).await.unwrap();
    assert!(
        read_until(&mut output, "got typed", &mut acc).await,
        "{acc:?}"
    );
    // A new window size: the kernel sends SIGWINCH to the foreground group inside.
    resizer.resize(PtySize { rows: 33, cols: 77 }).unwrap();
    assert!(
        read_until(&mut output, "WINCH 33 77", &mut acc).await,
        "{acc:?}"
    );
    c.start_kill().unwrap();
    c.wait().await.unwrap();
    // The container is gone: the output channel closes.
    assert!(tokio::time::timeout(Duration::from_secs(10), async {
        while output.recv().await.is_some() {}
    })
    .await
    .is_ok());
}

#[tokio::test(flavor = "multi_thread")]
async fn explicit_stdio_wins_over_the_pty() {
    let out = Container::builder("/bin/sh")
        .args(["-c", "echo piped; tty"])
        .namespaces(common::ns())
        .pty()
        .stdout(Stdio::piped())
        .stdin(Stdio::null())
        .output()
        .await
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "piped\nnot a tty\n");
}

/// A pty pair for driving a program as a person would: (master, slave).
fn openpty() -> (std::fs::File, OwnedFd) {
    let r = nix::pty::openpty(None, None).unwrap();
    (std::fs::File::from(r.master), r.slave)
}

#[test]
fn shell_example_through_a_terminal() {
    // `cargo test` builds the examples; only a lone test binary run lacks it.
    let shell = common::example("shell");
    let (mut master, slave) = openpty();
    let ws = libc::winsize {
        ws_row: 30,
        ws_col: 90,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: valid winsize on our own pty.
    unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
    let before = nix::sys::termios::tcgetattr(&slave).unwrap();
    let slave_raw = slave.as_raw_fd();
    let mut cmd = Command::new(shell);
    let dup = |fd: &OwnedFd| fd.try_clone().unwrap();
    cmd.stdin(dup(&slave))
        .stdout(dup(&slave))
        .stderr(dup(&slave));
    // SAFETY: setsid and ioctl are async-signal-safe.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, move || {
            if libc::setsid() == -1 || libc::ioctl(slave_raw, libc::TIOCSCTTY, 0) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().unwrap();
    // Read the screen from a thread; the master is a blocking fd here.
    let mut reader = master.try_clone().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0
                || tx
                    .send(String::from_utf8_lossy(&buf[..n]).into_owned())
                    .is_err()
            {
                break;
            }
        }
    });
    let mut screen = String::new();
    let wait_for = |needle: &str, screen: &mut String| {
        let deadline = Instant::now() + Duration::from_secs(15);
        while !screen.contains(needle) {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(s) => screen.push_str(&s),
                Err(_) => panic!("never saw {needle:?} on the screen: {screen:?}"),
            }
        }
    };
    wait_for("root@container:", &mut screen);
    // While the example runs, the terminal is in raw mode.
    let during = nix::sys::termios::tcgetattr(&slave).unwrap();
    assert!(
        !during
            .local_flags
            .contains(nix::sys::termios::LocalFlags::ICANON),
        "not raw"
    );
    // Type as a person: a carriage return, which raw mode passes on to the container's
    // terminal, which turns it into a newline for bash.
    master.write_all(b"hostname\r").unwrap();
    // (The prompt holds "container:" too; the output line is "container" alone.)
    wait_for("container\r\n", &mut screen);
    // The window size came along, and a resize reaches bash as SIGWINCH.
    screen.clear();
    master.write_all(b"stty size\r").unwrap();
    wait_for("30 90", &mut screen);
    let ws = libc::winsize {
        ws_row: 20,
        ws_col: 70,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: valid winsize on our own pty; the kernel signals the example (its
    // foreground group), which forwards the new size.
    unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
    std::thread::sleep(Duration::from_millis(300));
    screen.clear();
    master
        .write_all(b"echo cols=$COLUMNS; stty size\r")
        .unwrap();
    wait_for("20 70", &mut screen);
    screen.clear();
    master.write_all(b"exit 7\r").unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        assert!(
            Instant::now() < deadline,
            "the example did not exit: {screen:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(7));
    // The terminal is back the way it was.
    let after = nix::sys::termios::tcgetattr(&slave).unwrap();
    assert_eq!(after.local_flags, before.local_flags);
    assert_eq!(after.input_flags, before.input_flags);
    assert_eq!(after.output_flags, before.output_flags);
}

/// A pty for a process that joins a container's mount namespace (`docker exec -t`, OCI
/// `exec -t`) is made in that container's own devpts instance: the master's device is
/// the container's `/dev/pts`, not the host's, and the name the process's `tty` prints
/// exists there. Control: the same process without the join gets a pty of the host's
/// devpts, as the library's pty always did without a mount namespace.
#[tokio::test(flavor = "multi_thread")]
async fn pty_of_a_joiner_is_made_in_the_joined_containers_devpts() {
    use std::os::unix::fs::MetadataExt;
    let mut a = Container::builder("/bin/sleep")
        .arg("100")
        .namespaces(common::ns())
        .kill_on_drop(true)
        .spawn()
        .await
        .unwrap();
    let theirs = std::fs::metadata(format!("/proc/{}/root/dev/pts", a.pid())).unwrap();
    let host = std::fs::metadata("/dev/pts").unwrap().dev();
    assert_ne!(theirs.dev(), host, "the container has no devpts of its own");
    for joined in [true, false] {
        let mut b = Container::builder("/bin/sh");
        b.args(["-c", "tty; sleep 30"]).pty().kill_on_drop(true);
        match joined {
            true => b.join(
                cellblock::Namespaces::MOUNT | cellblock::Namespaces::PID,
                &a,
            ),
            false => b.namespaces(cellblock::Namespaces::UTS),
        };
        let mut b = b.spawn().await.unwrap();
        let master = b.take_pty_fd().unwrap();
        let dev = std::fs::File::from(master.try_clone().unwrap())
            .metadata()
            .unwrap()
            .dev();
        let mut out = String::new();
        let mut f = std::fs::File::from(master);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !out.contains('\n') && Instant::now() < deadline {
            let mut buf = [0u8; 256];
            let n = f.read(&mut buf).unwrap();
            out.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
        let tty = out.lines().next().unwrap().trim().to_string();
        assert!(tty.starts_with("/dev/pts/"), "{out:?}");
        if joined {
            assert_eq!(dev, theirs.dev(), "not the container's devpts");
            let inside = format!("/proc/{}/root{tty}", a.pid());
            assert!(std::path::Path::new(&inside).exists(), "{inside} missing");
        } else {
            // The host's /dev/ptmx (a devtmpfs node) made it, in the host's devpts.
            assert_ne!(dev, theirs.dev(), "control: made in the container's devpts");
            assert!(
                std::path::Path::new(&tty).exists(),
                "control: {tty} not the host's"
            );
        }
        b.start_kill().unwrap();
        b.wait().await.unwrap();
    }
    a.start_kill().unwrap();
    a.wait().await.unwrap();
}
