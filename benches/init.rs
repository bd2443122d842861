//! Spawn + reap of `/bin/true` with the built-in init, against the raw single-exec loop.
//!
//! * `raw_clone`: bare `libc::clone(CLONE_VM|CLONE_VFORK|UTS|IPC|PID|MOUNT)` + `execve` +
//!   `waitpid` on one thread: the floor (one exec, no init);
//! * `cellblock_init`: `Container::builder("/bin/true").namespaces(UTS|IPC|PID|MOUNT)
//!   .status()`: the child execs the init from its memfd, the init vforks and execs the
//!   workload (two execs), the report pipe relays the result, the pidfd is awaited;
//! * `cellblock_noinit`: the same with `.init(false)` (one exec, cloned on a long-lived
//!   spawner thread, PR_SET_PDEATHSIG armed);
//! * `cellblock_init_heap1g`: `cellblock_init` while the process holds 1 GiB of touched
//!   4 KiB pages: must cost the same (no page-table copy anywhere).
//!
//! Target (issue 4): cellblock_init <= 1.6 x raw_clone. Run: `cargo bench --bench init`;
//! a summary with the ratios is printed at the end. Under `cargo test --benches` every
//! routine runs once.

use std::time::{Duration, Instant};

use cellblock::{Container, Namespaces};
use criterion::{criterion_group, Criterion};

#[path = "common/baseline.rs"]
mod baseline;
use baseline::{big_heap, raw_clone_loop};

const NS: Namespaces = Namespaces::UTS
    .union(Namespaces::IPC)
    .union(Namespaces::PID)
    .union(Namespaces::MOUNT);

fn cellblock_loop(rt: &tokio::runtime::Runtime, init: bool, iters: u64) -> Duration {
    rt.block_on(async {
        let mut b = Container::builder("/bin/true");
        b.namespaces(NS).init(init);
        let start = Instant::now();
        for _ in 0..iters {
            assert!(b.status().await.unwrap().success());
        }
        start.elapsed()
    })
}

fn full_run() -> bool {
    std::env::args().any(|a| a == "--bench")
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
    g.bench_function("cellblock_init", |b| {
        b.iter_custom(|n| cellblock_loop(&rt, true, n))
    });
    g.bench_function("cellblock_noinit", |b| {
        b.iter_custom(|n| cellblock_loop(&rt, false, n))
    });
    g.finish();

    // The summary: interleaved rounds, so the machine's noise hits every contender alike.
    let (rounds, per) = if full_run() { (10, 100) } else { (1, 3) };
    let (mut raw, mut init, mut noinit) = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    for _ in 0..rounds {
        raw += raw_clone_loop(NS, per);
        init += cellblock_loop(&rt, true, per);
        noinit += cellblock_loop(&rt, false, per);
    }
    let heap = big_heap(if full_run() { 1 << 30 } else { 64 << 20 });
    let mut init_heap = Duration::ZERO;
    let mut raw_heap = Duration::ZERO;
    for _ in 0..rounds {
        raw_heap += raw_clone_loop(NS, per);
        init_heap += cellblock_loop(&rt, true, per);
    }
    std::hint::black_box(&heap[0]);
    let n = (rounds * per) as f64;
    let ms = |d: Duration| d.as_secs_f64() * 1e3 / n;
    println!("\nsummary: spawn+reap /bin/true, UTS|IPC|PID|MOUNT, mean per spawn ({rounds}x{per})");
    println!("  raw_clone (1 exec)          {:.3} ms", ms(raw));
    println!(
        "  cellblock_init (2 execs)    {:.3} ms  ratio {:.2}x  (target <= 1.6x)",
        ms(init),
        ms(init) / ms(raw)
    );
    println!(
        "  cellblock_noinit            {:.3} ms  ratio {:.2}x",
        ms(noinit),
        ms(noinit) / ms(raw)
    );
    println!(
        "  with {} MiB heap: raw {:.3} ms, cellblock_init {:.3} ms  ratio {:.2}x",
        heap.len() >> 20,
        ms(raw_heap),
        ms(init_heap),
        ms(init_heap) / ms(raw_heap)
    );
}

criterion_group!(group, benches);

fn main() {
    group();
    Criterion::default().configure_from_args().final_summary();
}
