//! Stdio through channels: byte streams, lines, stdin as a channel sender, output limits,
//! merged stderr, descriptors as stdio, and bounded memory with a slow reader.

use crate::common;

use std::time::Duration;

use bytes::Bytes;
use cellblock::{Container, Stdio};
use futures::StreamExt;
use tokio::io::AsyncReadExt;

#[tokio::test(flavor = "multi_thread")]
async fn stdout_and_stderr_as_byte_streams() {
    let mut c = Container::builder("/bin/sh")
        .args(["-c", "hostname; echo err >&2; head -c 300000 /dev/zero"])
        .namespaces(common::ns())
        .hostname("streams")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .await
        .unwrap();
    let out = c.take_stdout().unwrap();
    let err = c.take_stderr().unwrap();
    let (chunks, errs): (Vec<Bytes>, Vec<Bytes>) = tokio::join!(
        out.map(|c| c.unwrap()).collect::<Vec<_>>(),
        err.map(|c| c.unwrap()).collect::<Vec<_>>()
    );
    let all: Vec<u8> = chunks.iter().flat_map(|c| c.iter().copied()).collect();
    assert!(all.starts_with(b"streams\n"));
    assert_eq!(all.len(), 8 + 300000);
    // Chunked as the pipe delivered it: no chunk exceeds the 64 KiB read size.
    assert!(
        chunks.len() >= 5 && chunks.iter().all(|c| c.len() <= 64 * 1024),
        "{}",
        chunks.len()
    );
    assert_eq!(errs.concat(), b"err\n");
    assert!(c.wait().await.unwrap().success());
}

#[tokio::test(flavor = "multi_thread")]
async fn stdout_is_still_an_async_read() {
    let mut c = Container::builder("/bin/echo")
        .arg("plain read")
        .stdout(Stdio::piped())
        .spawn()
        .await
        .unwrap();
    let mut s = String::new();
    c.take_stdout()
        .unwrap()
        .read_to_string(&mut s)
        .await
        .unwrap();
    assert_eq!(s, "plain read\n");
    c.wait().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn line_framed_output() {
    let mut c = Container::builder("/bin/sh")
        .args([
            "-c",
            "printf 'one\\ntwo\\r\\n\\nthree'; sleep 0.1; printf ' and more\\nlast'",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .await
        .unwrap();
    let lines: Vec<Bytes> = c
        .take_stdout()
        .unwrap()
        .lines()
        .map(|l| l.unwrap())
        .collect()
        .await;
    assert_eq!(
        lines,
        vec![&b"one"[..], b"two", b"", b"three and more", b"last"]
    );
    c.wait().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn stdin_as_a_channel_sender_and_eof_on_drop() {
    let mut c = Container::builder("/bin/sh")
        .args(["-c", "while read l; do echo \"got $l\"; done; echo eof"])
        .namespaces(common::ns())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .await
        .unwrap();
    let tx = c.take_stdin().unwrap().into_sender(4);
    let mut lines = c.take_stdout().unwrap().lines();
    tx.send(Bytes::from_static(b"a\n")).await.unwrap();
    assert_eq!(lines.next().await.unwrap().unwrap(), "got a");
    let tx2 = tx.clone();
    tx2.send(Bytes::from_static(b"b\nc\n")).await.unwrap();
    assert_eq!(lines.next().await.unwrap().unwrap(), "got b");
    assert_eq!(lines.next().await.unwrap().unwrap(), "got c");
    // Still open while one sender lives.
    drop(tx);
    let r = tokio::time::timeout(Duration::from_millis(300), lines.next()).await;
    assert!(r.is_err(), "stdin closed while a sender was alive");
    drop(tx2);
    assert_eq!(lines.next().await.unwrap().unwrap(), "eof");
    assert!(c.wait().await.unwrap().success());
}

#[tokio::test(flavor = "multi_thread")]
async fn stdin_async_write_view() {
    use tokio::io::AsyncWriteExt;
    let mut c = Container::builder("/usr/bin/wc")
        .arg("-c")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .await
        .unwrap();
    let mut w = c.take_stdin().unwrap();
    w.write_all(&[b'x'; 100_000]).await.unwrap();
    drop(w);
    let out = c.wait_with_output().await.unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "100000");
}

#[tokio::test(flavor = "multi_thread")]
async fn output_limit_kills_and_says_truncated() {
    let out = tokio::time::timeout(
        Duration::from_secs(20),
        Container::builder("/bin/sh")
            .args(["-c", "while :; do head -c 65536 /dev/zero; done"])
            .namespaces(common::ns())
            .output_limit(4096)
            .output(),
    )
    .await
    .expect("the endless writer was killed")
    .unwrap();
    assert_eq!(out.stdout.len(), 4096);
    assert!(out.truncated);
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(out.status.signal(), Some(libc::SIGKILL));
}

#[tokio::test(flavor = "multi_thread")]
async fn stderr_merged_into_stdout() {
    let out = Container::builder("/bin/sh")
        .args(["-c", "echo out1; echo err1 >&2; echo out2; echo err2 >&2"])
        .merge_stderr(true)
        .output()
        .await
        .unwrap();
    assert_eq!(out.stdout, b"out1\nerr1\nout2\nerr2\n");
    assert!(out.stderr.is_empty());
    // Inside, fds 1 and 2 are the same pipe.
    let out = Container::builder("/bin/sh")
        .args(["-c", "readlink /proc/self/fd/1 /proc/self/fd/2"])
        .merge_stderr(true)
        .output()
        .await
        .unwrap();
    let s = String::from_utf8(out.stdout).unwrap();
    let l: Vec<&str> = s.lines().collect();
    assert_eq!(l.len(), 2);
    assert_eq!(l[0], l[1]);
    assert!(l[0].starts_with("pipe:"));
}

#[tokio::test(flavor = "multi_thread")]
async fn stdio_from_a_file_and_an_owned_fd() {
    let dir = common::rootfs::TempDir::new("stdio");
    let input = dir.path().join("in");
    std::fs::write(&input, "from a file\n").unwrap();
    let outp = dir.path().join("out");
    let out_file = std::fs::File::create(&outp).unwrap();
    let in_fd: std::os::fd::OwnedFd = std::fs::File::open(&input).unwrap().into();
    let st = Container::builder("/bin/sh")
        .args(["-c", "cat; echo to the file"])
        .namespaces(common::ns())
        .stdin(in_fd)
        .stdout(out_file)
        .status()
        .await
        .unwrap();
    assert!(st.success());
    assert_eq!(
        std::fs::read_to_string(&outp).unwrap(),
        "from a file\nto the file\n"
    );
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn slow_reader_applies_backpressure_and_memory_stays_flat() {
    const GIB: u64 = 1 << 30;
    let mut c = Container::builder("head")
        .args(["-c", "1073741824", "/dev/zero"])
        .namespaces(common::ns())
        .stdout(Stdio::piped())
        .spawn()
        .await
        .unwrap();
    let mut out = c.take_stdout().unwrap();
    let base = rss_kib();
    let mut peak = base;
    let mut total = 0u64;
    let mut n = 0u64;
    let mut saw_blocked_writer = false;
    while let Some(chunk) = out.next().await {
        total += chunk.unwrap().len() as u64;
        n += 1;
        if n.is_multiple_of(64) {
            // The slow part: stop reading for a while every 64 chunks.
            tokio::time::sleep(Duration::from_millis(2)).await;
            peak = peak.max(rss_kib());
        }
        if n == 200 {
            // While we do not read, the writer inside must be asleep on the full pipe.
            tokio::time::sleep(Duration::from_millis(200)).await;
            // The container's first process is the init; its child is head.
            let child = common::children_of(c.pid())[0];
            let stat = std::fs::read_to_string(format!("/proc/{child}/stat")).unwrap();
            let state = stat
                .rsplit_once(')')
                .unwrap()
                .1
                .trim()
                .chars()
                .next()
                .unwrap();
            let wchan = std::fs::read_to_string(format!("/proc/{child}/wchan")).unwrap_or_default();
            eprintln!("writer state {state}, wchan {wchan:?}");
            assert_eq!(state, 'S', "writer not blocked while nobody reads");
            if !wchan.is_empty() && wchan != "0" {
                assert!(wchan.contains("pipe"), "{wchan}");
            }
            saw_blocked_writer = true;
        }
    }
    assert_eq!(total, GIB);
    assert!(saw_blocked_writer);
    assert!(c.wait().await.unwrap().success());
    let grew = peak.saturating_sub(base);
    eprintln!("RSS {base} KiB -> peak {peak} KiB (+{grew} KiB) over {n} chunks");
    assert!(grew < 64 * 1024, "supervisor RSS grew by {grew} KiB");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_streams_are_driven_by_the_reactor_not_threads() {
    // 24 containers streaming at once: reading them takes no thread per container.
    let mut outs = Vec::new();
    let mut cs = Vec::new();
    for _ in 0..24 {
        let mut c = Container::builder("/bin/sh")
            .args([
                "-c",
                "for i in 1 2 3 4 5; do head -c 100000 /dev/zero; sleep 0.05; done",
            ])
            .namespaces(common::ns())
            .stdout(Stdio::piped())
            .spawn()
            .await
            .unwrap();
        outs.push(c.take_stdout().unwrap());
        cs.push(c);
    }
    let before = common::thread_count();
    let readers: Vec<_> = outs
        .into_iter()
        .map(|o| {
            tokio::spawn(async move {
                o.fold(0usize, |n, c| async move { n + c.unwrap().len() })
                    .await
            })
        })
        .collect();
    let mut peak = before;
    let mut done = 0;
    for r in readers {
        peak = peak.max(common::thread_count());
        assert_eq!(r.await.unwrap(), 500_000);
        done += 1;
    }
    assert_eq!(done, 24);
    for c in &mut cs {
        assert!(c.wait().await.unwrap().success());
    }
    assert!(
        peak <= before + 2,
        "threads {before} -> {peak} while streaming"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn overlong_lines_come_out_in_bounded_pieces() {
    // 2.5 MiB without a newline, then "end": pieces of MAX_LINE, the rest, then "end".
    let mut c = Container::builder("/bin/sh")
        .args([
            "-c",
            "head -c 2621440 /dev/zero | tr '\\0' x; printf '\\nend\\n'",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .await
        .unwrap();
    let lines: Vec<Bytes> = c
        .take_stdout()
        .unwrap()
        .lines()
        .map(|l| l.unwrap())
        .collect()
        .await;
    let lens: Vec<usize> = lines.iter().map(|l| l.len()).collect();
    assert_eq!(
        lens,
        vec![
            cellblock::MAX_LINE,
            cellblock::MAX_LINE,
            2621440 - 2 * cellblock::MAX_LINE,
            3
        ]
    );
    assert!(lines[..3].iter().all(|l| l.iter().all(|&b| b == b'x')));
    assert_eq!(lines[3], "end");
    c.wait().await.unwrap();
}
