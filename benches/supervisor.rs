//! Job throughput and per-container memory of the supervisor side.
//!
//! 1. 1,000 `/bin/true` jobs with 16 in flight, each in new UTS|IPC|PID|MOUNT namespaces
//!    (as a loop of `status()` calls and through a `Supervisor` with `max_concurrent(16)`),
//!    against plain `tokio::process::Command` without isolation and against `bwrap`
//!    (Debian's bubblewrap, same namespaces) in the same run, interleaved.
//!    Targets: >= 0.8x plain tokio's jobs/s, >= 4x bwrap's.
//!    Also, in the same rounds: cellblock with namespaces only (`core_only`: no init, no
//!    hardening, no die-with-supervisor), and
//!    the floor: raw `clone(CLONE_VM|CLONE_VFORK|flags)` + execve + waitpid loops on 16
//!    threads with the same namespaces.
//! 2. 10,000 live `sleep` containers under one `Supervisor`: the supervisor's RSS growth
//!    per container. Target: <= 16 KiB.
//!
//! Every contender runs `/bin/true` with an empty environment.
//!
//! Run: `cargo bench --bench supervisor` (as root; `bwrap` on PATH for its baseline).
//! `CELLBLOCK_BENCH_QUICK=1` (or running it as a test, `cargo test --benches`) makes it small.

use std::time::{Duration, Instant};

use cellblock::{Container, Namespaces, Supervisor, Worker};
use futures::StreamExt;

#[path = "common/baseline.rs"]
#[allow(dead_code)]
mod baseline;

const NS: Namespaces = Namespaces::UTS
    .union(Namespaces::IPC)
    .union(Namespaces::PID)
    .union(Namespaces::MOUNT);

async fn run_jobs<F, Fut>(jobs: usize, in_flight: usize, job: F) -> f64
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let start = Instant::now();
    futures::stream::iter(0..jobs)
        .for_each_concurrent(in_flight, |_| job())
        .await;
    jobs as f64 / start.elapsed().as_secs_f64()
}

/// `jobs` workers of one `Supervisor` with `max_concurrent(in_flight)` (its job queue),
/// every default on, awaited with `wait_all`: jobs/s.
async fn supervisor_jobs(jobs: usize, in_flight: usize) -> f64 {
    let start = Instant::now();
    let mut sup = Supervisor::new();
    sup.max_concurrent(in_flight);
    for i in 0..jobs {
        let mut b = Container::builder("/bin/true");
        b.namespaces(NS).env_clear();
        sup.add(Worker::new(format!("j{i}"), b)).unwrap();
    }
    let summary = sup.wait_all().await;
    assert!(summary.all_succeeded());
    assert_eq!(summary.workers.len(), jobs);
    jobs as f64 / start.elapsed().as_secs_f64()
}

/// The floor: `jobs` raw `clone(CLONE_VM|CLONE_VFORK|NS)` + execve + waitpid loops spread
/// over `in_flight` threads (what any runtime creating these namespaces pays).
fn raw_clone_jobs(jobs: usize, in_flight: usize) -> f64 {
    let per = (jobs / in_flight).max(1);
    let start = Instant::now();
    let threads: Vec<_> = (0..in_flight)
        .map(|_| std::thread::spawn(move || baseline::raw_clone_loop(NS, per as u64)))
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    (per * in_flight) as f64 / start.elapsed().as_secs_f64()
}

fn rss_kib() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap()
        .parse()
        .unwrap()
}

fn main() {
    let quick = !baseline::full_run();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (_, hard) =
        nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE).unwrap();
    // Each live container holds its pidfd and, with the built-in init, the read end of its
    // status pipe: raise the limit (root may raise the hard limit too).
    let want = hard.max(65536);
    if nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE, want, want)
        .is_err()
    {
        nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE, hard, hard)
            .unwrap();
    }
    let have_bwrap = std::process::Command::new("bwrap")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    let (jobs, rounds, live) = if quick {
        (50, 1, 200)
    } else {
        (1000, 3, 10_000)
    };

    rt.block_on(async {
        let mut results: Vec<(&str, Vec<f64>)> = Vec::new();
        let mut record = |name: &'static str, v: f64| match results.iter_mut().find(|r| r.0 == name) {
            Some(r) => r.1.push(v),
            None => results.push((name, vec![v])),
        };
        for _ in 0..rounds {
            record(
                "cellblock, defaults",
                run_jobs(jobs, 16, || async {
                    let s = Container::builder("/bin/true").namespaces(NS).env_clear().status().await.unwrap();
                    assert!(s.success());
                })
                .await,
            );
            record("cellblock Supervisor, defaults", supervisor_jobs(jobs, 16).await);
            record(
                "cellblock, defaults before #11",
                run_jobs(jobs, 16, || async {
                    let mut b = Container::builder("/bin/true");
                    baseline::before_issue_11(b.namespaces(NS).env_clear());
                    assert!(b.status().await.unwrap().success());
                })
                .await,
            );
            record(
                "cellblock, namespaces only",
                run_jobs(jobs, 16, || async {
                    let mut b = Container::builder("/bin/true");
                    baseline::core_only(b.namespaces(NS));
                    assert!(b.status().await.unwrap().success());
                })
                .await,
            );
            record(
                "tokio::process (no isolation)",
                run_jobs(jobs, 16, || async {
                    let s = tokio::process::Command::new("/bin/true").env_clear().status().await.unwrap();
                    assert!(s.success());
                })
                .await,
            );
            record("raw clone loop x16 (same ns)", raw_clone_jobs(jobs, 16));
            if have_bwrap {
                record(
                    "bwrap (same namespaces)",
                    run_jobs(jobs, 16, || async {
                        let s = tokio::process::Command::new("bwrap")
                            .env_clear()
                            .args(["--dev-bind", "/", "/", "--unshare-uts", "--unshare-ipc", "--unshare-pid", "/bin/true"])
                            .status()
                            .await
                            .unwrap();
                        assert!(s.success());
                    })
                    .await,
                );
            }
        }
        let median = |v: &[f64]| {
            let mut v = v.to_vec();
            v.sort_by(|a, b| a.partial_cmp(b).unwrap());
            v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
        };
        let get = |name: &str| results.iter().find(|r| r.0 == name).map(|r| median(&r.1));
        let tok = get("tokio::process (no isolation)").unwrap();
        let bw = get("bwrap (same namespaces)");
        println!("jobs/s, {jobs} x /bin/true, 16 in flight, median of {rounds} interleaved rounds:");
        for (name, v) in &results {
            let m = median(v);
            let vs_bwrap = bw.map(|b| format!("  {:.2}x bwrap", m / b)).unwrap_or_default();
            println!("  {name:<30} {m:>8.0}   {:.2}x tokio{vs_bwrap}", m / tok);
        }
        println!("  targets (issue 6): cellblock >= 0.8x tokio, >= 4x bwrap; the raw clone loop is the floor any runtime with these namespaces pays");
        if !have_bwrap {
            println!("  bwrap: not installed (apt-get install bubblewrap) — baseline skipped");
        }

        // Per-container supervisor memory with `live` sleeping containers: without the
        // built-in init (one descriptor per container: its pidfd) at the full count, and
        // with it (more descriptors: the status pipe and its duplicate) at what the limit
        // allows (20,000 here, which this machine's root may not raise).
        let (_, nofile) = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE).unwrap();
        let with_init = live.min((nofile as usize).saturating_sub(1000) / 3);
        for (init, n) in [(false, live), (true, with_init)] {
            live_containers(n, init).await;
        }
    });
}

/// Starts `live` sleeping containers under one supervisor, reports the supervisor's RSS
/// growth per container, stops them all.
async fn live_containers(live: usize, init: bool) {
    let mut sup = Supervisor::new();
    sup.grace_period(Duration::from_millis(10));
    let mut events = sup.events();
    let before = rss_kib();
    let start = Instant::now();
    for i in 0..live {
        let mut b = Container::builder("/bin/sleep");
        b.arg("1000")
            .namespaces(Namespaces::UTS | Namespaces::IPC | Namespaces::PID)
            .init(init);
        sup.add(Worker::new(format!("s{i}"), b)).unwrap();
    }
    let mut started = 0;
    while started < live {
        match events.next().await.unwrap() {
            cellblock::Event::Started { .. } => started += 1,
            cellblock::Event::SetupFailed { error, .. } => panic!("{error}"),
            _ => {}
        }
    }
    let spawn_time = start.elapsed();
    drop(events); // stop buffering events
    let after = rss_kib();
    println!(
        "{live} live sleep containers (init: {init}): started in {spawn_time:.1?}; supervisor RSS {before} KiB -> {after} KiB = {:.1} KiB per container (target <= 16)",
        (after.saturating_sub(before)) as f64 / live as f64
    );
    let t = Instant::now();
    let summary = sup.stop_all().await;
    println!(
        "stopped and reaped {} in {:.1?}",
        summary.workers.len(),
        t.elapsed()
    );
}
