//! Issue 11, row 13: what a fork bomb in a container does to the supervisor, with the
//! default budget and without it (`default_budget(false)`), and what the budget costs.
//!
//! 1. Spawn cost: sequential spawn + reap of `/bin/true` in UTS|IPC|PID|MOUNT, the
//!    defaults (a `pids` cgroup per container, the shared `cpu` one joined) against
//!    `default_budget(false)` (no cgroup, as before the budget), interleaved rounds, the
//!    median of the rounds. Target: the defaults within 15% of the opt-out.
//! 2. Timer lateness: a 10 ms tokio timer of the supervisor (a 2-worker multi-thread
//!    runtime, as a service has), p50/p99/max lateness over a few seconds, with no bomb
//!    (baseline), with an unlimited fork bomb (`tests/escape/forkbomb.c`) in a default
//!    container, and in a `default_budget(false)` one, in the same run. Every 250 ms the
//!    supervisor also spawns a `/bin/true` container and counts the failures. Target: at
//!    most 20 ms late with the defaults, and no failed spawn.
//!
//! The supervisor's own budget: first of all the bench moves itself into a pids cgroup it
//! makes, `<own pids cgroup>/cellblock-bench-<pid>` with `pids.max` = [`SUPERVISOR_BUDGET`]
//! (4096: about what systemd gives a service, `DefaultTasksMax=15%` of pid_max 32768 =
//! 4915). It stands for the supervisor's budget, and it keeps the opt-out bomb from the
//! host's pid space (on this host the supervisor's pids cgroup is the root, without a
//! limit, so an unbounded bomb would take every pid of the machine). The bench moves back
//! and removes it at the end.
//!
//! Run: `cargo bench --bench forkbomb` (as root). Under `cargo test --benches` (or with
//! `CELLBLOCK_BENCH_QUICK=1`) it runs a few spawns and one second per scenario.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cellblock::{Container, Namespaces};

#[path = "common/baseline.rs"]
#[allow(dead_code)]
mod baseline;

const NS: Namespaces = Namespaces::UTS
    .union(Namespaces::IPC)
    .union(Namespaces::PID)
    .union(Namespaces::MOUNT);

const SUPERVISOR_BUDGET: u64 = 4096;

fn forkbomb() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("forkbomb-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("forkbomb");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/escape/forkbomb.c");
    let st = std::process::Command::new("cc")
        .args(["-O1", "-Wall", "-o"])
        .arg(&out)
        .arg(&src)
        .status()
        .expect("running cc (gcc is needed to build the fork bomb)");
    assert!(st.success());
    out
}

/// The pids hierarchy directory of `pid`'s cgroup (v1 `pids` here; v2 on unified hosts).
fn pids_dir_of_self() -> (PathBuf, PathBuf) {
    let text = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    for line in text.lines() {
        let mut f = line.splitn(3, ':');
        let (_, ctrls, path) = (f.next().unwrap(), f.next().unwrap(), f.next().unwrap());
        let rel = path.trim_start_matches('/');
        if ctrls.split(',').any(|c| c == "pids") {
            let m = PathBuf::from("/sys/fs/cgroup/pids");
            return (m.join(rel), m);
        }
    }
    // v2 (unified): the pids controller there.
    let path = text
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .expect("no cgroup of our own");
    let m = PathBuf::from("/sys/fs/cgroup");
    (m.join(path.trim_start_matches('/')), m)
}

/// The bench's own bounded pids cgroup; moves back out and removes it when dropped.
struct Bound {
    dir: PathBuf,
    home: PathBuf,
}

impl Bound {
    fn enter() -> Bound {
        let (home, _) = pids_dir_of_self();
        let dir = home.join(format!("cellblock-bench-{}", std::process::id()));
        std::fs::create_dir(&dir).expect("making the bench's bounded pids cgroup (run as root)");
        std::fs::write(dir.join("pids.max"), SUPERVISOR_BUDGET.to_string()).unwrap();
        std::fs::write(dir.join("cgroup.procs"), std::process::id().to_string()).unwrap();
        Bound { dir, home }
    }

    fn current(&self) -> u64 {
        read_u64(&self.dir.join("pids.current"))
    }
}

impl Drop for Bound {
    fn drop(&mut self) {
        let _ = std::fs::write(
            self.home.join("cgroup.procs"),
            std::process::id().to_string(),
        );
        for _ in 0..200 {
            if std::fs::remove_dir(&self.dir).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        eprintln!("could not remove {}", self.dir.display());
    }
}

fn read_u64(p: &Path) -> u64 {
    std::fs::read_to_string(p)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

async fn spawn_loop(default_budget: bool, n: usize) -> Duration {
    let t = Instant::now();
    for _ in 0..n {
        let st = Container::builder("/bin/true")
            .namespaces(NS)
            .default_budget(default_budget)
            .status()
            .await
            .unwrap();
        assert!(st.success());
    }
    t.elapsed() / n as u32
}

#[derive(Default)]
struct Lateness {
    samples: Vec<Duration>,
    spawns: usize,
    spawn_failures: usize,
    first_failure: Option<String>,
    peak_bomb: u64,
}

impl Lateness {
    fn pct(&mut self, p: f64) -> f64 {
        self.samples.sort();
        let i = ((self.samples.len() as f64 - 1.0) * p).round() as usize;
        self.samples[i].as_secs_f64() * 1e3
    }
}

/// The supervisor's 10 ms timer for `run`, with `bomb` (default budget or not) running
/// in a container meanwhile, if any.
async fn measure(bomb: Option<(&Path, bool)>, run: Duration, bound: &Bound) -> Lateness {
    let mut l = Lateness::default();
    let mut c = match bomb {
        Some((bin, budget)) => {
            let c = Container::builder(bin)
                .arg("60")
                .namespaces(NS)
                .default_budget(budget)
                .kill_on_drop(true)
                .spawn()
                .await
                .expect("the bomb's container starts");
            // Let it get going.
            tokio::time::sleep(Duration::from_millis(300)).await;
            Some(c)
        }
        None => None,
    };
    // Spawns run as their own task, so a slow spawn does not hold the timer up.
    let tally = std::sync::Arc::new(std::sync::Mutex::new((0usize, 0usize, None::<String>)));
    let t2 = tally.clone();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop2 = stop.clone();
    // Stopped by the flag, never aborted: dropping a container mid-spawn while the pids are
    // used up would need a reaper thread that cannot be started then.
    let spawner = tokio::spawn(async move {
        while !stop2.load(std::sync::atomic::Ordering::Relaxed) {
            tokio::time::sleep(Duration::from_millis(250)).await;
            let r = Container::builder("/bin/true")
                .namespaces(NS)
                .status()
                .await;
            let mut t = t2.lock().unwrap();
            t.0 += 1;
            let failure = match r {
                Ok(s) if s.success() => None,
                Ok(s) => Some(format!("{s}")),
                Err(e) => Some(e.to_string()),
            };
            if let Some(f) = failure {
                t.1 += 1;
                t.2.get_or_insert(f);
            }
        }
    });
    let start = Instant::now();
    let period = Duration::from_millis(10);
    while start.elapsed() < run {
        let t = Instant::now();
        tokio::time::sleep(period).await;
        l.samples.push(t.elapsed().saturating_sub(period));
        l.peak_bomb = l.peak_bomb.max(bound.current());
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = spawner.await;
    (l.spawns, l.spawn_failures, l.first_failure) = tally.lock().unwrap().clone();
    if let Some(c) = c.as_mut() {
        c.kill_all().await.unwrap();
        let _ = c.wait().await;
    }
    l
}

fn main() {
    let full = baseline::full_run();
    let bin = forkbomb();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();

    // Bounded first: cellblock reads the supervisor's cgroups once, at its first spawn, so
    // the containers' cgroups (default budget) nest under the bound as they would under a
    // service's cgroup.
    let bound = Bound::enter();

    // 1. Spawn cost.
    let (rounds, jobs) = if full { (5, 200) } else { (1, 10) };
    let (mut def, mut off) = (Vec::new(), Vec::new());
    rt.block_on(async {
        spawn_loop(true, jobs / 4).await; // warm-up
        for _ in 0..rounds {
            def.push(spawn_loop(true, jobs).await);
            off.push(spawn_loop(false, jobs).await);
        }
    });
    def.sort();
    off.sort();
    let (d, o) = (def[rounds / 2], off[rounds / 2]);
    println!("spawn + reap /bin/true, UTS|IPC|PID|MOUNT, {rounds} rounds x {jobs}, median:");
    println!(
        "  default budget        {:>8.3} ms/job  (rounds: {def:?})",
        d.as_secs_f64() * 1e3
    );
    println!(
        "  default_budget(false) {:>8.3} ms/job  (rounds: {off:?})",
        o.as_secs_f64() * 1e3
    );
    println!(
        "  defaults / opt-out    {:>8.3}  (target <= 1.15)",
        d.as_secs_f64() / o.as_secs_f64()
    );

    // 2. Timer lateness under a fork bomb.
    let run = if full {
        Duration::from_secs(5)
    } else {
        Duration::from_secs(1)
    };
    let rounds = if full { 2 } else { 1 };
    let scenarios: [(&str, Option<bool>); 3] = [
        ("no bomb (baseline)", None),
        ("bomb, default budget", Some(true)),
        ("bomb, default_budget(false)", Some(false)),
    ];
    let mut results: Vec<Lateness> = scenarios.iter().map(|_| Lateness::default()).collect();
    for _ in 0..rounds {
        for (i, (_, bomb)) in scenarios.iter().enumerate() {
            let l = rt.block_on(measure(bomb.map(|b| (bin.as_path(), b)), run, &bound));
            let r = &mut results[i];
            r.samples.extend(l.samples);
            r.spawns += l.spawns;
            r.spawn_failures += l.spawn_failures;
            r.first_failure = r.first_failure.take().or(l.first_failure);
            r.peak_bomb = r.peak_bomb.max(l.peak_bomb);
            // Let the dead bomb's pids go before the next scenario.
            std::thread::sleep(Duration::from_millis(500));
        }
    }
    println!(
        "\nsupervisor's 10 ms timer, lateness in ms ({rounds} x {run:?} per scenario; supervisor budget \
         pids.max {SUPERVISOR_BUDGET}):"
    );
    println!(
        "{:<30} {:>8} {:>8} {:>8} {:>8} {:>16} {:>12}",
        "scenario", "p50", "p99", "max", "ticks", "spawns failed", "peak pids*"
    );
    for (i, (name, _)) in scenarios.iter().enumerate() {
        let r = &mut results[i];
        println!(
            "{:<30} {:>8.2} {:>8.2} {:>8.2} {:>8} {:>10}/{:<5} {:>12}",
            name,
            r.pct(0.5),
            r.pct(0.99),
            r.pct(1.0),
            r.samples.len(),
            r.spawn_failures,
            r.spawns,
            r.peak_bomb
        );
        if let Some(f) = &r.first_failure {
            println!("    first spawn failure: {f}");
        }
    }
    println!(
        "* pids.current of the supervisor's cgroup (its threads and every container), sampled"
    );
    drop(rt);
    drop(bound);
    let _ = std::fs::remove_dir_all(bin.parent().unwrap());
}
