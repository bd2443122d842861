//! Spawn + reap of `/bin/true` with the built-in init, against the raw single-exec loop.
//!
//! * `raw_clone`: bare `libc::clone(CLONE_VM|CLONE_VFORK|UTS|IPC|PID|MOUNT)` + `execve` +
//!   `waitpid` on one thread: the floor (one exec, no init);
//! * `core_init`: the core path (`core_only`: no hardening, the raw loop's empty
//!   environment) with the init and die-with-supervisor turned back on: the child execs the init from its memfd,
//!   the init vforks and execs the workload (two execs), the report pipe relays the
//!   result, the pidfd is awaited. This is what the init itself costs;
//! * `core_noinit`: the core path, one exec;
//! * `defaults_init`, `defaults_noinit`: `Container::builder("/bin/true")
//!   .namespaces(UTS|IPC|PID|MOUNT)` with every default (hardening on), with and without
//!   the init;
//! * the init cases again while the process holds 1 GiB of touched 4 KiB pages: must cost
//!   the same (no page-table copy anywhere).
//!
//! Every cellblock loop runs as a task on a runtime worker (`in_task`), interleaved with
//! the others. Target (issue 4): the init path <= 1.6 x raw_clone. Run:
//! `cargo bench --bench init`; a summary with the ratios is printed at the end. Under
//! `cargo test --benches` every routine runs once.

use std::time::{Duration, Instant};

use cellblock::{Container, Namespaces};
use criterion::{criterion_group, Criterion};

#[path = "common/baseline.rs"]
mod baseline;
use baseline::{big_heap, core_only, full_run, in_task, raw_clone_loop};

const NS: Namespaces = Namespaces::UTS
    .union(Namespaces::IPC)
    .union(Namespaces::PID)
    .union(Namespaces::MOUNT);

/// What a cellblock loop spawns: the core path or every default, with or without init.
#[derive(Clone, Copy)]
struct Config {
    defaults: bool,
    init: bool,
}

const CONFIGS: [(&str, Config); 4] = [
    (
        "core_init",
        Config {
            defaults: false,
            init: true,
        },
    ),
    (
        "core_noinit",
        Config {
            defaults: false,
            init: false,
        },
    ),
    (
        "defaults_init",
        Config {
            defaults: true,
            init: true,
        },
    ),
    (
        "defaults_noinit",
        Config {
            defaults: true,
            init: false,
        },
    ),
];

fn cellblock_loop(rt: &tokio::runtime::Runtime, config: Config, iters: u64) -> Duration {
    in_task(rt, async move {
        let mut b = Container::builder("/bin/true");
        b.namespaces(NS).env_clear(); // the raw loop's empty environment
        if !config.defaults {
            core_only(&mut b);
        }
        // With the init, dying with the supervisor costs nothing at spawn (the init
        // watches the lifeline), so it stays on as by default.
        b.init(config.init)
            .die_with_supervisor(config.defaults || config.init);
        let start = Instant::now();
        for _ in 0..iters {
            assert!(b.status().await.unwrap().success());
        }
        start.elapsed()
    })
}

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut g = c.benchmark_group("spawn_reap_true");
    g.sample_size(20);
    g.measurement_time(Duration::from_secs(3));
    g.bench_function("raw_clone", |b| b.iter_custom(|n| raw_clone_loop(NS, n)));
    for (name, config) in CONFIGS {
        g.bench_function(name, |b| b.iter_custom(|n| cellblock_loop(&rt, config, n)));
    }
    g.finish();

    // The summary: interleaved rounds, so the machine's noise hits every contender alike.
    let (rounds, per) = if full_run() { (10, 100) } else { (1, 3) };
    let mut raw = Duration::ZERO;
    let mut cb = [Duration::ZERO; CONFIGS.len()];
    for _ in 0..rounds {
        raw += raw_clone_loop(NS, per);
        for (i, (_, config)) in CONFIGS.iter().enumerate() {
            cb[i] += cellblock_loop(&rt, *config, per);
        }
    }
    let heap = big_heap(if full_run() { 1 << 30 } else { 64 << 20 });
    let (mut raw_heap, mut core_heap, mut defaults_heap) =
        (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    for _ in 0..rounds {
        raw_heap += raw_clone_loop(NS, per);
        core_heap += cellblock_loop(&rt, CONFIGS[0].1, per);
        defaults_heap += cellblock_loop(&rt, CONFIGS[2].1, per);
    }
    std::hint::black_box(&heap[0]);
    let n = (rounds * per) as f64;
    let ms = |d: Duration| d.as_secs_f64() * 1e3 / n;
    println!("\nsummary: spawn+reap /bin/true, UTS|IPC|PID|MOUNT, mean per spawn ({rounds}x{per})");
    println!("  {:<28} {:.3} ms", "raw_clone (1 exec)", ms(raw));
    for (i, (name, _)) in CONFIGS.iter().enumerate() {
        let target = if i == 0 { "  (target <= 1.6x)" } else { "" };
        println!(
            "  {name:<28} {:.3} ms  ratio {:.2}x{target}",
            ms(cb[i]),
            ms(cb[i]) / ms(raw)
        );
    }
    println!(
        "  with {} MiB heap: raw {:.3} ms, core_init {:.3} ms ({:.2}x), defaults_init {:.3} ms ({:.2}x)",
        heap.len() >> 20,
        ms(raw_heap),
        ms(core_heap),
        ms(core_heap) / ms(raw_heap),
        ms(defaults_heap),
        ms(defaults_heap) / ms(raw_heap),
    );
}

criterion_group!(group, benches);

fn main() {
    group();
    Criterion::default().configure_from_args().final_summary();
}
