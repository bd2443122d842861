//! Spawn + reap latency of `/bin/true`, cellblock against its baselines in the same run:
//!
//! * `raw_clone`: a bare `libc::clone(CLONE_VM|CLONE_VFORK|flags)` + `execve` + `waitpid`
//!   loop — the floor for any runtime with the same namespaces;
//! * `tokio_command`: `tokio::process::Command` (with `pre_exec(unshare(flags))` when
//!   namespaces are asked for, the hand-rolled way, which forces a fork-style spawn);
//! * `cellblock`: `Container::builder(..).namespaces(flags).status()`.
//!
//! for the flag sets none, UTS|IPC|PID|MOUNT, and that plus NET; then all of it again while
//! the process holds a 2 GiB heap of 4 KiB pages (the supervisor of a big service), where a
//! fork-style spawn pays for copying page tables and a vfork-style one must not.
//!
//! Every contender execs `/bin/true` with an empty environment, as the raw loop does. With
//! namespaces, a second raw loop also does in its child the setup those flags require of
//! any runtime (and of cellblock's core): `/` made private and a fresh /proc with PID and
//! MOUNT, `lo` brought up with NET.
//!
//! The tokio and cellblock loops run as tasks on a worker of a 2-worker multi-thread
//! runtime (`in_task`), as a supervisor's code does; the raw loop on the bench's thread.
//! Every contender runs the same iterations, interleaved, with the same flags.
//!
//! Run: `cargo bench --bench spawn`. A summary table with the ratios is printed at the end.
//! Under `cargo test --benches` (or with `CELLBLOCK_BENCH_QUICK=1`) it runs a few spawns.

use std::time::{Duration, Instant};

use cellblock::{Container, Namespaces};
use criterion::{criterion_group, Criterion};

#[path = "common/baseline.rs"]
mod baseline;
use baseline::{
    before_issue_11, big_heap, clone_flags, core_only, full_run, in_task, raw_clone_loop,
    raw_clone_loop_with,
};

const UIPM: Namespaces = Namespaces::UTS
    .union(Namespaces::IPC)
    .union(Namespaces::PID)
    .union(Namespaces::MOUNT);

fn flag_sets() -> [(&'static str, Namespaces); 3] {
    [
        ("none", Namespaces::empty()),
        ("uts_ipc_pid_mnt", UIPM),
        ("uts_ipc_pid_mnt_net", UIPM | Namespaces::NET),
    ]
}

fn tokio_command_loop(rt: &tokio::runtime::Runtime, ns: Namespaces, iters: u64) -> Duration {
    let flags = clone_flags(ns);
    in_task(rt, async move {
        let start = Instant::now();
        for _ in 0..iters {
            let mut cmd = tokio::process::Command::new("/bin/true");
            cmd.env_clear();
            if flags != 0 {
                // SAFETY: unshare is async-signal-safe.
                unsafe {
                    cmd.pre_exec(move || {
                        if libc::unshare(flags) == -1 {
                            return Err(std::io::Error::last_os_error());
                        }
                        Ok(())
                    });
                }
            }
            assert!(cmd.status().await.unwrap().success());
        }
        start.elapsed()
    })
}

fn cellblock_loop(rt: &tokio::runtime::Runtime, ns: Namespaces, iters: u64) -> Duration {
    cellblock_loop_with(rt, ns, iters, Config::Defaults)
}

#[derive(Clone, Copy, PartialEq)]
enum Config {
    Defaults,
    /// The defaults before issue 11 ([`before_issue_11`]).
    Pre11,
    /// The core path alone ([`core_only`]).
    Bare,
}

fn cellblock_loop_with(
    rt: &tokio::runtime::Runtime,
    ns: Namespaces,
    iters: u64,
    config: Config,
) -> Duration {
    in_task(rt, async move {
        let mut b = Container::builder("/bin/true");
        b.namespaces(ns).env_clear();
        match config {
            Config::Bare => {
                core_only(&mut b);
            }
            Config::Pre11 => {
                before_issue_11(&mut b);
            }
            Config::Defaults => {}
        }
        let start = Instant::now();
        for _ in 0..iters {
            let s = b.status().await.unwrap();
            assert!(s.success());
        }
        start.elapsed()
    })
}

struct Summary(Vec<(String, f64)>);

impl Summary {
    /// Mean per-spawn time of a fixed number of iterations, measured interleaved (A B C A B C
    /// …) so that the machine's noise hits every contender alike.
    fn measure(
        &mut self,
        label: &str,
        rt: &tokio::runtime::Runtime,
        ns: Namespaces,
        rounds: u32,
        per_round: u64,
    ) {
        let (mut raw, mut tok, mut cb, mut bare, mut raw_req, mut pre11) = (
            Duration::ZERO,
            Duration::ZERO,
            Duration::ZERO,
            Duration::ZERO,
            Duration::ZERO,
            Duration::ZERO,
        );
        // The flag sets that require setup work of the core (lo up, a fresh /proc).
        let required = !ns.is_empty();
        for _ in 0..rounds {
            raw += raw_clone_loop(ns, per_round);
            if required {
                raw_req += raw_clone_loop_with(ns, per_round, true);
            }
            tok += tokio_command_loop(rt, ns, per_round);
            cb += cellblock_loop(rt, ns, per_round);
            pre11 += cellblock_loop_with(rt, ns, per_round, Config::Pre11);
            bare += cellblock_loop_with(rt, ns, per_round, Config::Bare);
        }
        let n = (rounds as u64 * per_round) as f64;
        if required {
            self.0.push((
                format!("{label}/raw_clone_required"),
                raw_req.as_secs_f64() * 1e3 / n,
            ));
        }
        for (what, d) in [
            ("raw_clone", raw),
            ("cellblock_bare", bare),
            ("tokio_command", tok),
            ("cellblock_before_issue_11", pre11),
            ("cellblock", cb),
        ] {
            self.0
                .push((format!("{label}/{what}"), d.as_secs_f64() * 1e3 / n));
        }
    }

    fn try_get(&self, key: &str) -> Option<f64> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| *v)
    }

    fn get(&self, key: &str) -> f64 {
        self.try_get(key).unwrap()
    }
}

fn bench_group(c: &mut Criterion, rt: &tokio::runtime::Runtime, heap: &str) {
    for (name, ns) in flag_sets() {
        let mut g = c.benchmark_group(format!("spawn_{heap}/{name}"));
        g.sample_size(if heap == "heap2g" { 10 } else { 30 });
        g.measurement_time(Duration::from_secs(3));
        g.bench_function("raw_clone", |b| b.iter_custom(|n| raw_clone_loop(ns, n)));
        g.bench_function("tokio_command", |b| {
            b.iter_custom(|n| tokio_command_loop(rt, ns, n))
        });
        g.bench_function("cellblock", |b| {
            b.iter_custom(|n| cellblock_loop(rt, ns, n))
        });
        g.finish();
    }
}

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let quick = !full_run();
    let (rounds, per_round) = if quick { (1, 5) } else { (10, 100) };

    let mut summary = Summary(Vec::new());
    if !quick {
        bench_group(c, &rt, "noheap");
    }
    for (name, ns) in flag_sets() {
        summary.measure(&format!("noheap/{name}"), &rt, ns, rounds, per_round);
    }
    let heap = big_heap(if quick { 64 << 20 } else { 2 << 30 });
    if !quick {
        bench_group(c, &rt, "heap2g");
    }
    for (name, ns) in flag_sets() {
        // fork-style tokio spawns cost ~40-100 ms each with the heap: fewer of them.
        summary.measure(&format!("heap2g/{name}"), &rt, ns, rounds, per_round / 5);
    }
    std::hint::black_box(&heap[0]);

    println!("\nsummary (ms per spawn+reap of /bin/true, interleaved runs, same process):");
    println!("{:<44} {:>10}", "case", "ms");
    for (k, v) in &summary.0 {
        println!("{k:<44} {v:>10.3}");
    }
    println!("\nratios:");
    for (name, _) in flag_sets() {
        let cb = summary.get(&format!("noheap/{name}/cellblock"));
        let raw = summary.get(&format!("noheap/{name}/raw_clone"));
        let cbh = summary.get(&format!("heap2g/{name}/cellblock"));
        let tok = summary.get(&format!("noheap/{name}/tokio_command"));
        let tokh = summary.get(&format!("heap2g/{name}/tokio_command"));
        let bare = summary.get(&format!("noheap/{name}/cellblock_bare"));
        let bareh = summary.get(&format!("heap2g/{name}/cellblock_bare"));
        println!(
            "{name:<22} defaults/raw {:.2}x  bare/raw {:.2}x (target <= 1.10)   heap/noheap: defaults {:.2}x, bare {:.2}x, raw {:.2}x (target <= 1.2)   defaults/tokio {:.2}x   tokio heap/noheap {:.1}x",
            cb / raw,
            bare / raw,
            cbh / cb,
            bareh / bare,
            summary.get(&format!("heap2g/{name}/raw_clone")) / raw,
            cb / tok,
            tokh / tok
        );
        let pre11 = summary.get(&format!("noheap/{name}/cellblock_before_issue_11"));
        println!(
            "{:<22} defaults/defaults-before-issue-11 {:.2}x (target <= 1.15)",
            "",
            cb / pre11
        );
        if let Some(req) = summary.try_get(&format!("noheap/{name}/raw_clone_required")) {
            println!(
                "{:<22} bare/(raw + the setup these flags require: fresh /proc, lo up) {:.2}x",
                "",
                bare / req
            );
        }
    }
}

criterion_group!(spawn, benches);

fn main() {
    spawn();
    criterion::Criterion::default()
        .configure_from_args()
        .final_summary();
}
