//! What a cgroup costs per container: spawn + reap of `/bin/true`, one at a time and 16
//! in flight, without a cgroup, with accounting only, with limits, and on the v2 hierarchy.
//! Interleaved rounds; prints the median of the rounds. `cargo bench --bench limits`.
//! Under `cargo test --benches` (or with `CELLBLOCK_BENCH_QUICK=1`) it runs a few jobs.

use std::time::{Duration, Instant};

use cellblock::{CgroupVersion, Container, ContainerBuilder};
use futures::StreamExt;

#[path = "common/baseline.rs"]
#[allow(dead_code)]
mod baseline;

/// A named way to configure the container.
type Variant = (&'static str, Box<dyn Fn() -> ContainerBuilder>);

fn variants() -> Vec<Variant> {
    vec![
        ("no cgroup", Box::new(|| Container::builder("/bin/true"))),
        (
            "accounting (auto)",
            Box::new(|| {
                let mut b = Container::builder("/bin/true");
                b.cgroup_accounting(true);
                b
            }),
        ),
        (
            "pids+memory+cpu limits",
            Box::new(|| {
                let mut b = Container::builder("/bin/true");
                b.pids_limit(64).memory_limit(64 << 20).cpu_limit(0.5);
                b
            }),
        ),
        (
            "accounting on v2",
            Box::new(|| {
                let mut b = Container::builder("/bin/true");
                b.cgroup_accounting(true).cgroup_version(CgroupVersion::V2);
                b
            }),
        ),
    ]
}

async fn sequential(make: &dyn Fn() -> ContainerBuilder, n: usize) -> Duration {
    let t = Instant::now();
    for _ in 0..n {
        assert!(make().status().await.unwrap().success());
    }
    t.elapsed() / n as u32
}

async fn in_flight(make: &dyn Fn() -> ContainerBuilder, n: usize) -> f64 {
    let t = Instant::now();
    let ok = futures::stream::iter(0..n)
        .map(|_| async { make().status().await.map(|s| s.success()).unwrap_or(false) })
        .buffer_unordered(16)
        .filter(|ok| futures::future::ready(*ok))
        .count()
        .await;
    assert_eq!(ok, n);
    n as f64 / t.elapsed().as_secs_f64()
}

fn main() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let vs = variants();
        let (rounds, seq_jobs, par_jobs) = if baseline::full_run() {
            (5, 200, 500)
        } else {
            (1, 5, 20)
        };
        let mut seq = vec![Vec::new(); vs.len()];
        let mut par = vec![Vec::new(); vs.len()];
        for _ in 0..rounds {
            for (i, (_, make)) in vs.iter().enumerate() {
                seq[i].push(sequential(make.as_ref(), seq_jobs).await);
                par[i].push(in_flight(make.as_ref(), par_jobs).await);
            }
        }
        println!(
            "{:<26} {:>14} {:>22}",
            "variant", "per job (seq)", "jobs/s (16 in flight)"
        );
        for (i, (name, _)) in vs.iter().enumerate() {
            seq[i].sort();
            par[i].sort_by(|a, b| a.partial_cmp(b).unwrap());
            println!(
                "{:<26} {:>11.3} ms {:>22.0}",
                name,
                seq[i][rounds / 2].as_secs_f64() * 1e3,
                par[i][rounds / 2]
            );
        }
    });
}
