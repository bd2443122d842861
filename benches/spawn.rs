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
//! Then the network modes (issue 15, as root), interleaved in the same way: a spawn with
//! UTS|IPC|PID|MOUNT and no network namespace (the baseline), `Network::None`,
//! `Network::None` from the loopback pool, `Network::Egress` making its namespace inline,
//! `Network::Egress` from a pool of ready namespaces, and the same for a `host_root()`
//! container; against the raw clone loop
//! with and without `CLONE_NEWNET`. `CELLBLOCK_BENCH_ONLY=network` runs only that part.
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
    if std::env::var("CELLBLOCK_BENCH_ONLY").as_deref() == Ok("network") {
        network_summary(&rt, quick);
        return;
    }

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
    network_summary(&rt, quick);
}

/// A loop of `/bin/true` spawns with UTS|IPC|PID|MOUNT and `net` (and `host_root()`).
fn network_loop(
    rt: &tokio::runtime::Runtime,
    net: cellblock::Network,
    host_root: bool,
    iters: u64,
) -> Duration {
    network_loop_ns(rt, UIPM, net, host_root, iters)
}

/// [`network_loop`] with other namespaces.
fn network_loop_ns(
    rt: &tokio::runtime::Runtime,
    ns: Namespaces,
    net: cellblock::Network,
    host_root: bool,
    iters: u64,
) -> Duration {
    in_task(rt, async move {
        let mut b = Container::builder("/bin/true");
        b.namespaces(ns).env_clear().network(net);
        if host_root {
            b.host_root();
        }
        let start = Instant::now();
        for _ in 0..iters {
            assert!(b.status().await.unwrap().success());
        }
        start.elapsed()
    })
}

/// The network modes against their baselines (see the module docs).
fn network_summary(rt: &tokio::runtime::Runtime, quick: bool) {
    use cellblock::{EgressConfig, Network};
    if nix::unistd::geteuid().as_raw() != 0 {
        println!("\nnetwork modes: skipped (egress needs root)");
        return;
    }
    let (rounds, per_round) = if quick { (1, 3) } else { (10, 30) };
    let inline = EgressConfig::default()
        .bridge("cbbench0")
        .subnet(std::net::Ipv4Addr::new(10, 205, 0, 0), 16);
    let pooled = EgressConfig::default()
        .bridge("cbbench1")
        .subnet(std::net::Ipv4Addr::new(10, 206, 0, 0), 16)
        .pool(32);
    let pooled_root = EgressConfig::default()
        .bridge("cbbench2")
        .subnet(std::net::Ipv4Addr::new(10, 207, 0, 0), 16)
        .pool(32);
    // Warm up: bridges, tables, and full pools before the first measured round. The first
    // pooled spawn starts the refill: the time until the pool is full is its refill rate.
    network_loop(rt, Network::Egress(inline.clone()), false, 1);
    let refill = |cfg: &EgressConfig, host_root: bool, label: &str| {
        let t = Instant::now();
        network_loop(rt, Network::Egress(cfg.clone()), host_root, 1);
        let deadline = Instant::now() + Duration::from_secs(60);
        let bridge = cfg.bridge_name().to_string();
        while rt.block_on(cellblock::pool_stats(&bridge)).ready < 32 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        let secs = t.elapsed().as_secs_f64();
        println!(
            "pool refill ({label}): 32 namespaces in {secs:.3} s = {:.0}/s",
            32.0 / secs
        );
    };
    refill(&pooled, false, "default identity");
    refill(&pooled_root, true, "host_root");
    // Demand against the refill: bursts from a full pool, one at a time and 8 at a time.
    for parallel in [1usize, 8] {
        while rt.block_on(cellblock::pool_stats("cbbench1")).ready < 32 {
            std::thread::sleep(Duration::from_millis(5));
        }
        let before = rt.block_on(cellblock::pool_stats("cbbench1"));
        let cfg = pooled.clone();
        let t = Instant::now();
        let per = if quick { 2 } else { 200 / parallel as u64 };
        let tasks: Vec<_> = (0..parallel)
            .map(|_| {
                let cfg = cfg.clone();
                rt.spawn(async move {
                    let mut b = Container::builder("/bin/true");
                    b.namespaces(UIPM).env_clear().network(Network::Egress(cfg));
                    for _ in 0..per {
                        assert!(b.status().await.unwrap().success());
                    }
                })
            })
            .collect();
        for t in tasks {
            rt.block_on(t).unwrap();
        }
        let total = per * parallel as u64;
        let secs = t.elapsed().as_secs_f64();
        let after = rt.block_on(cellblock::pool_stats("cbbench1"));
        println!(
            "burst of {total} pooled spawns, {parallel} at a time, from a full pool of 32: {:.0} spawns/s; {} from the pool, {} made inline",
            total as f64 / secs,
            after.hits - before.hits,
            after.misses - before.misses
        );
    }
    std::thread::sleep(Duration::from_secs(if quick { 1 } else { 5 }));
    cellblock::set_loopback_pool(32);
    network_loop(rt, Network::None, false, 1);
    let cases: [(&str, Option<Network>, bool); 7] = [
        ("cellblock_no_netns", None, false),
        ("cellblock_none", None, false),
        ("cellblock_none_pooled", Some(Network::None), false),
        (
            "cellblock_egress",
            Some(Network::Egress(inline.clone())),
            false,
        ),
        (
            "cellblock_egress_pooled",
            Some(Network::Egress(pooled.clone())),
            false,
        ),
        ("cellblock_host_root_no_netns", None, true),
        (
            "cellblock_host_root_egress_pooled",
            Some(Network::Egress(pooled_root.clone())),
            true,
        ),
    ];
    let mut totals = vec![Duration::ZERO; cases.len()];
    let (mut raw, mut raw_net) = (Duration::ZERO, Duration::ZERO);
    for _ in 0..rounds {
        raw += raw_clone_loop(UIPM, per_round);
        raw_net += raw_clone_loop_with(UIPM | Namespaces::NET, per_round, true);
        for (i, (name, net, host_root)) in cases.iter().enumerate() {
            totals[i] += match net {
                // `Network::None` without the pool: the same as `Namespaces::NET`.
                _ if *name == "cellblock_none" => {
                    network_loop_ns(rt, UIPM | Namespaces::NET, Network::Unset, false, per_round)
                }
                Some(n) => network_loop(rt, n.clone(), *host_root, per_round),
                None => network_loop(rt, Network::Unset, *host_root, per_round),
            };
        }
        // The pools refill between rounds, as they would between bursts of jobs.
        std::thread::sleep(Duration::from_millis(if quick { 10 } else { 500 }));
    }
    let n = (rounds as u64 * per_round) as f64;
    let ms = |d: Duration| d.as_secs_f64() * 1e3 / n;
    println!(
        "\nnetwork modes (ms per spawn+reap of /bin/true with UTS|IPC|PID|MOUNT, interleaved):"
    );
    println!(
        "{:<44} {:>10}",
        "raw_clone (no NET)",
        format!("{:.3}", ms(raw))
    );
    println!(
        "{:<44} {:>10}",
        "raw_clone + NET (lo up)",
        format!("{:.3}", ms(raw_net))
    );
    for (i, (name, _, _)) in cases.iter().enumerate() {
        println!("{name:<44} {:>10.3}", ms(totals[i]));
    }
    let base = ms(totals[0]);
    let base_root = ms(totals[5]);
    println!(
        "ratios: none/no-netns {:.2}x  none-pooled/no-netns {:.2}x (target <= 1.10)  egress/no-netns {:.2}x  egress-pooled/no-netns {:.2}x (target <= 1.10)  host_root egress-pooled/no-netns {:.2}x  raw NET/no NET {:.2}x",
        ms(totals[1]) / base,
        ms(totals[2]) / base,
        ms(totals[3]) / base,
        ms(totals[4]) / base,
        ms(totals[6]) / base_root,
        ms(raw_net) / ms(raw),
    );
    // Paced: one spawn every 20 ms, timing the spawns alone, so that the refill (and the
    // kernel's teardown of used namespaces) runs in the idle time between them, as in a
    // service that does not saturate its CPUs: the pool's latency without its CPU.
    let paced = |ns: Namespaces, net: Network, iters: u64| -> Duration {
        in_task(rt, async move {
            let mut b = Container::builder("/bin/true");
            b.namespaces(ns).env_clear().network(net);
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let t = Instant::now();
                assert!(b.status().await.unwrap().success());
                total += t.elapsed();
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            total
        })
    };
    let (pr, pp) = if quick { (1, 2) } else { (5, 40) };
    let (mut p_base, mut p_none, mut p_nonep, mut p_pool) = (
        Duration::ZERO,
        Duration::ZERO,
        Duration::ZERO,
        Duration::ZERO,
    );
    for _ in 0..pr {
        p_base += paced(UIPM, Network::Unset, pp);
        p_none += paced(UIPM | Namespaces::NET, Network::Unset, pp);
        p_nonep += paced(UIPM, Network::None, pp);
        p_pool += paced(UIPM, Network::Egress(pooled.clone()), pp);
    }
    let pn = (pr as u64 * pp) as f64;
    let pms = |d: Duration| d.as_secs_f64() * 1e3 / pn;
    println!(
        "paced (one spawn per 20 ms): no-netns {:.3} ms, none {:.3} ms ({:.2}x), none pooled {:.3} ms ({:.2}x), egress pooled {:.3} ms ({:.2}x, target <= 1.10)",
        pms(p_base),
        pms(p_none),
        pms(p_none) / pms(p_base),
        pms(p_nonep),
        pms(p_nonep) / pms(p_base),
        pms(p_pool),
        pms(p_pool) / pms(p_base)
    );
    // With a 2 GiB heap: the pooled spawn must not grow with the supervisor's memory (the
    // clone stays CLONE_VM|CLONE_VFORK: the cloning thread enters the namespace).
    let heap = big_heap(if quick { 64 << 20 } else { 2 << 30 });
    let (hr, hp) = if quick { (1, 2) } else { (3, 10) };
    let (mut h_base, mut h_pool, mut h_root) = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    for _ in 0..hr {
        h_base += network_loop(rt, Network::Unset, false, hp);
        h_pool += network_loop(rt, Network::Egress(pooled.clone()), false, hp);
        h_root += network_loop(rt, Network::Egress(pooled_root.clone()), true, hp);
        std::thread::sleep(Duration::from_millis(if quick { 10 } else { 500 }));
    }
    std::hint::black_box(&heap[0]);
    let hn = (hr as u64 * hp) as f64;
    let hms = |d: Duration| d.as_secs_f64() * 1e3 / hn;
    println!(
        "with a 2 GiB heap: no-netns {:.3} ms, egress pooled {:.3} ms ({:.2}x), host_root egress pooled {:.3} ms",
        hms(h_base),
        hms(h_pool),
        hms(h_pool) / hms(h_base),
        hms(h_root)
    );
    rt.block_on(async {
        for b in ["cbbench1", "cbbench2"] {
            println!("pool {b}: {:?}", cellblock::pool_stats(b).await);
        }
        println!("loopback pool: {:?}", cellblock::loopback_pool_stats());
        for b in ["cbbench0", "cbbench1", "cbbench2"] {
            cellblock::net_shutdown(b).await.unwrap();
        }
    });
}

criterion_group!(spawn, benches);

fn main() {
    spawn();
    criterion::Criterion::default()
        .configure_from_args()
        .final_summary();
}
