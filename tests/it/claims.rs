//! README claims that no other test file backs, each checked so that the test fails when the
//! claim is broken:
//! - stdin as a channel is bounded: backpressure, not memory (`ContainerStdin::into_sender`);
//! - the supervisor's tracing spans: a `worker` span per worker, a `container` span per start
//!   carrying the name, attempt and host pid;
//! - no thread per container: awaiting containers costs no thread;
//! - `Namespaces::IPC` isolates POSIX message queues, seen from both sides;
//! - a pids limit holds inside a user namespace;
//! - the init is exec'd from a sealed memfd that nobody can change.

use crate::common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use cellblock::{Container, Namespaces, Stdio, Supervisor, Worker};
use tokio::io::AsyncReadExt;
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

const WAIT: Duration = Duration::from_secs(30);

/// Sends 64 KiB messages through `into_sender(4)` to a container and counts how many the
/// channel accepted before it reported itself full, after giving the writer task time to
/// move what it can into the pipe.
async fn accepted_sends(program: &str, args: &[&str]) -> (usize, Container) {
    let mut c = Container::builder(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .await
        .unwrap();
    let tx = c.take_stdin().unwrap().into_sender(4);
    let chunk = bytes::Bytes::from(vec![b'x'; 64 * 1024]);
    let mut accepted = 0;
    for _ in 0..200 {
        match tx.try_send(chunk.clone()) {
            Ok(()) => accepted += 1,
            Err(tokio::sync::mpsc::error::TrySendError::Full(_)) => {
                // Give the writer task (and the container) time, then try again once.
                tokio::time::sleep(Duration::from_millis(100)).await;
                match tx.try_send(chunk.clone()) {
                    Ok(()) => accepted += 1,
                    Err(_) => break,
                }
            }
            Err(e) => panic!("the stdin channel closed: {e}"),
        }
    }
    (accepted, c)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdin_channel_applies_backpressure() {
    // A container that never reads its stdin: the pipe (64 KiB) fills, the writer task
    // blocks on it, and the channel holds at most its capacity. Everything else waits in
    // the caller: at most 4 + 1 being written + 1 in the pipe.
    let (stuck, mut c) = accepted_sends("/bin/sleep", &["30"]).await;
    assert!(
        stuck <= 4 + 2,
        "{stuck} messages of 64 KiB accepted for a container that reads nothing: the channel is not bounded"
    );
    // ... and holds at least its capacity (a bound smaller than asked for is a bug too).
    assert!(
        stuck >= 4,
        "only {stuck} messages accepted: the channel holds fewer than its capacity of 4"
    );
    c.start_kill().unwrap();
    tokio::time::timeout(WAIT, c.wait()).await.unwrap().unwrap();
    // Control: a container that reads takes all 200 (12.5 MiB) through the same channel,
    // so the bound above is backpressure, not a broken channel.
    let (flowing, mut c) = accepted_sends("/bin/sh", &["-c", "exec cat > /dev/null"]).await;
    assert_eq!(
        flowing, 200,
        "a reading container should take every message"
    );
    drop(c.take_stdin());
    c.start_kill().unwrap();
    tokio::time::timeout(WAIT, c.wait()).await.unwrap().unwrap();
}

/// What the span recorder saw: for each event message, the spans it was inside, innermost
/// first, as `name{field=value ...}`.
type Seen = Arc<Mutex<Vec<(String, Vec<String>)>>>;

struct Fields(String);
impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        use std::fmt::Write;
        let _ = write!(self.0, " {}={:?}", field.name(), value);
    }
}

struct Recorder(Seen);
impl<S: tracing::Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Recorder {
    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        id: &tracing::span::Id,
        ctx: Context<'_, S>,
    ) {
        let mut f = Fields(String::new());
        attrs.record(&mut f);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut()
                .insert(format!("{}{{{}}}", attrs.metadata().name(), f.0.trim()));
        }
    }
    fn on_event(&self, event: &tracing::Event<'_>, ctx: Context<'_, S>) {
        let mut f = Fields(String::new());
        event.record(&mut f);
        let scope = ctx
            .event_scope(event)
            .map(|s| {
                s.map(|span| {
                    span.extensions()
                        .get::<String>()
                        .cloned()
                        .unwrap_or_default()
                })
                .collect()
            })
            .unwrap_or_default();
        self.0.lock().unwrap().push((f.0, scope));
    }
}

fn recorder() -> Seen {
    static SEEN: OnceLock<Seen> = OnceLock::new();
    SEEN.get_or_init(|| {
        let seen: Seen = Arc::default();
        tracing::subscriber::set_global_default(
            tracing_subscriber::registry().with(Recorder(seen.clone())),
        )
        .unwrap();
        seen
    })
    .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn supervisor_events_carry_worker_and_container_spans() {
    if common::ran_alone(
        module_path!(),
        "supervisor_events_carry_worker_and_container_spans",
    ) {
        return;
    }
    let seen = recorder();
    let mut sup = Supervisor::new();
    let mut b = Container::builder("/bin/true");
    b.namespaces(Namespaces::PID);
    let mut events = sup.events();
    sup.add(Worker::new("spanned", b)).unwrap();
    let summary = tokio::time::timeout(WAIT, sup.wait_all()).await.unwrap();
    assert!(summary.all_succeeded());
    let mut pid = None;
    while let Ok(Some(e)) = tokio::time::timeout(
        Duration::from_millis(200),
        futures::StreamExt::next(&mut events),
    )
    .await
    {
        if let cellblock::Event::Started { pid: p, .. } = e {
            pid = Some(p);
        }
    }
    let pid = pid.expect("a Started event");
    let seen = seen.lock().unwrap().clone();
    let spawned = seen
        .iter()
        .find(|(msg, scope)| {
            msg.trim() == "message=spawned" && scope.iter().any(|s| s.contains("name=spanned"))
        })
        .unwrap_or_else(|| panic!("no `spawned` event inside the worker's spans: {seen:?}"));
    let scope = &spawned.1;
    assert_eq!(scope.len(), 2, "container inside worker: {scope:?}");
    assert!(
        scope[0].starts_with("container{")
            && scope[0].contains("name=spanned")
            && scope[0].contains("id=1")
            && scope[0].contains(&format!("pid={pid}")),
        "the container span: {scope:?}"
    );
    assert_eq!(
        scope[1], "worker{name=spanned}",
        "the worker span: {scope:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn awaiting_containers_costs_no_thread_each() {
    if common::ran_alone(module_path!(), "awaiting_containers_costs_no_thread_each") {
        return;
    }
    // Warm up the runtime's pools and the spawn path, then count threads.
    let mut warm = Vec::new();
    for _ in 0..20 {
        warm.push(
            Container::builder("/bin/sleep")
                .arg("30")
                .kill_on_drop(true)
                .spawn()
                .await
                .unwrap(),
        );
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = common::thread_count();
    let mut live = Vec::new();
    for _ in 0..200 {
        let mut c = Container::builder("/bin/sleep")
            .arg("30")
            .kill_on_drop(true)
            .spawn()
            .await
            .unwrap();
        // Each container is awaited by a task of its own, as a supervisor does.
        live.push(tokio::spawn(async move { c.wait().await }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let during = common::thread_count();
    // Control: the counter does see threads.
    let parked: Vec<_> = (0..5)
        .map(|_| std::thread::spawn(|| std::thread::sleep(Duration::from_millis(500))))
        .collect();
    assert_eq!(common::thread_count(), during + 5);
    for t in parked {
        t.join().unwrap();
    }
    println!("threads: {before} before 200 awaited containers, {during} with them");
    assert!(
        during <= before + 4,
        "200 awaited containers took {} threads",
        during - before
    );
    for t in &live {
        t.abort();
    }
    drop(warm);
}

/// Lists the POSIX message queues that a container sees at /dev/mqueue after it creates
/// one of its own; `host_mount` bind-mounts the host's mqueue filesystem there instead of
/// a fresh one.
async fn queues_seen(ns: Namespaces, create: &str, host_mount: Option<&std::path::Path>) -> String {
    let mut b = Container::builder("/bin/sh");
    b.args(["-c", &format!(": > /dev/mqueue/{create} && ls /dev/mqueue")])
        .namespaces(ns);
    match host_mount {
        Some(dir) => b.bind(dir, "/dev/mqueue"),
        None => b.mount_mqueue(),
    };
    let out = b.output().await.unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `mq_open(name, O_RDONLY)` on the host: whether the queue exists here.
fn host_has_queue(name: &str) -> bool {
    let c = std::ffi::CString::new(format!("/{name}")).unwrap();
    // SAFETY: a valid C string; the descriptor is closed right away.
    let q = unsafe { libc::mq_open(c.as_ptr(), libc::O_RDONLY) };
    if q == -1 {
        return false;
    }
    unsafe { libc::mq_close(q) };
    true
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipc_namespace_isolates_posix_message_queues() {
    // The mount point the container's mqueue mount goes on; most hosts have it already.
    std::fs::create_dir_all("/dev/mqueue").unwrap();
    let me = std::process::id();
    let host_q = format!("cellblock-host-{me}");
    let c = std::ffi::CString::new(format!("/{host_q}")).unwrap();
    // SAFETY: valid C string and a null attribute pointer (defaults).
    let q = unsafe {
        libc::mq_open(
            c.as_ptr(),
            libc::O_CREAT | libc::O_RDWR,
            0o600,
            std::ptr::null_mut::<libc::mq_attr>(),
        )
    };
    assert!(q != -1, "mq_open: {}", std::io::Error::last_os_error());
    let inside_q = format!("cellblock-inside-{me}");
    let isolated = queues_seen(Namespaces::IPC | Namespaces::MOUNT, &inside_q, None).await;
    let inside_q2 = format!("cellblock-shared-{me}");
    // Control: the host's own mqueue filesystem, mounted by the test and bound in, in a
    // container without IPC (a fresh mqueue mount without IPC is refused by the builder).
    let host_mq = std::path::PathBuf::from(format!("/tmp/cellblock-mq-{me}"));
    std::fs::create_dir_all(&host_mq).unwrap();
    let host_mounts = common::host_mounts_lock().await;
    nix::mount::mount(
        Some("mqueue"),
        &host_mq,
        Some("mqueue"),
        nix::mount::MsFlags::empty(),
        None::<&str>,
    )
    .unwrap();
    let shared = queues_seen(Namespaces::MOUNT, &inside_q2, Some(&host_mq)).await;
    nix::mount::umount(&host_mq).unwrap();
    drop(host_mounts);
    std::fs::remove_dir(&host_mq).unwrap();
    let host_sees_isolated = host_has_queue(&inside_q);
    let host_sees_shared = host_has_queue(&inside_q2);
    // Clean up before asserting.
    for n in [&host_q, &inside_q2, &inside_q] {
        let c = std::ffi::CString::new(format!("/{n}")).unwrap();
        unsafe { libc::mq_unlink(c.as_ptr()) };
    }
    unsafe { libc::mq_close(q) };
    // With IPC: the host's queue is invisible inside, and the container's is gone from the
    // host (it lived in the container's namespace).
    assert!(!isolated.contains(&host_q), "inside with IPC: {isolated}");
    assert!(isolated.contains(&inside_q), "inside with IPC: {isolated}");
    assert!(
        !host_sees_isolated,
        "the container's queue reached the host"
    );
    // Control, without IPC: the same probe sees the host's queue and creates one on the host.
    assert!(shared.contains(&host_q), "inside without IPC: {shared}");
    assert!(
        host_sees_shared,
        "without IPC the container's queue is the host's"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pids_limit_holds_inside_a_user_namespace() {
    // Ten background sleeps under a limit of 5 processes (the init and the sh count too).
    let script =
        "n=0; for i in 1 2 3 4 5 6 7 8 9 10; do sleep 5 & [ $? -eq 0 ] && n=$((n+1)); done; \
                  echo started=$n; kill $(jobs -p) 2>/dev/null; wait";
    let run = |limit: Option<u64>| async move {
        let mut b = Container::builder("/bin/sh");
        b.args(["-c", script])
            .namespaces(Namespaces::USER | Namespaces::PID | Namespaces::MOUNT);
        if let Some(l) = limit {
            b.pids_limit(l);
        }
        let out = tokio::time::timeout(WAIT, b.output())
            .await
            .unwrap()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
    };
    let limited = run(Some(5)).await;
    let unlimited = run(None).await;
    let started = |text: &str| -> Option<u32> {
        text.lines()
            .find_map(|l| l.strip_prefix("started="))
            .and_then(|n| n.trim().parse().ok())
    };
    // Some forks failed (the shell reports them; dash gives up with "Cannot fork"), and
    // fewer than 10 sleeps started.
    assert!(
        limited.contains("fork") || limited.contains("Resource temporarily unavailable"),
        "limited: {limited}"
    );
    assert!(
        started(&limited).is_none_or(|n| n < 10),
        "limited: {limited}"
    );
    // Control: the same workload without the limit starts all ten.
    assert_eq!(started(&unlimited), Some(10), "unlimited: {unlimited}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_init_runs_from_a_sealed_memfd() {
    let mut c = Container::builder("/bin/sleep")
        .arg("30")
        .namespaces(Namespaces::PID)
        .kill_on_drop(true)
        .spawn()
        .await
        .unwrap();
    // The container's first process is the init; its executable is a memfd.
    let exe = std::fs::read_link(format!("/proc/{}/exe", c.pid())).unwrap();
    assert!(
        exe.to_string_lossy().starts_with("/memfd:"),
        "the init's executable: {exe:?}"
    );
    let f = std::fs::OpenOptions::new()
        .read(true)
        .open(format!("/proc/{}/exe", c.pid()))
        .unwrap();
    // SAFETY: fcntl on a descriptor we own.
    let seals = unsafe { libc::fcntl(std::os::fd::AsRawFd::as_raw_fd(&f), libc::F_GET_SEALS) };
    let want = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
    assert_eq!(seals & want, want, "seals {seals:#x}");
    // And the seals hold: even the host's root cannot open it for writing through
    // /proc/PID/exe's memfd... (ETXTBSY while it runs, EPERM from the write seal).
    let w = std::fs::OpenOptions::new()
        .write(true)
        .open(format!("/proc/{}/exe", c.pid()));
    assert!(w.is_err(), "the running init's memfd opened for writing");
    // Nor can its size change through a read descriptor.
    // SAFETY: ftruncate on a descriptor we own.
    let r = unsafe { libc::ftruncate(std::os::fd::AsRawFd::as_raw_fd(&f), 0) };
    assert_eq!(r, -1);
    c.start_kill().unwrap();
    tokio::time::timeout(WAIT, c.wait()).await.unwrap().unwrap();
    let mut buf = Vec::new();
    let mut f = tokio::fs::File::from_std(f);
    f.read_to_end(&mut buf).await.unwrap();
    assert!(
        buf.starts_with(b"\x7fELF"),
        "the memfd holds the init program"
    );
}

#[allow(dead_code)]
fn unused(_: HashMap<(), ()>) {}
