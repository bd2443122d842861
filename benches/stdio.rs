//! Piped stdout throughput: a container writing 1 GiB, read as cellblock's `Stream` of
//! `Bytes` (and as its `AsyncRead`), against a `tokio::process` child running the same
//! program read with a `ChildStdout` read loop, in the same run.
//!
//! Target (issue 4): cellblock >= 0.8 x tokio::process. Run: `cargo bench --bench stdio`;
//! the summary line prints the ratios. Under `cargo test --benches` it moves 16 MiB once.

use std::future::Future;
use std::time::{Duration, Instant};

use cellblock::{Container, Stdio};
use criterion::{criterion_group, Criterion};
use futures::StreamExt;
use tokio::io::{AsyncRead, AsyncReadExt};

fn bytes_total() -> u64 {
    if std::env::args().any(|a| a == "--bench") {
        1 << 30
    } else {
        16 << 20
    }
}

fn writer_args(n: u64) -> [String; 3] {
    ["-c".into(), n.to_string(), "/dev/zero".into()]
}

/// Reads `r` to the end with a 64 KiB read loop: how many bytes came.
async fn read_loop(mut r: impl AsyncRead + Unpin) -> u64 {
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        let k = r.read(&mut buf).await.unwrap();
        if k == 0 {
            return total;
        }
        total += k as u64;
    }
}

async fn tokio_process(n: u64) -> Duration {
    let start = Instant::now();
    let mut child = tokio::process::Command::new("head")
        .args(writer_args(n))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let total = read_loop(child.stdout.take().unwrap()).await;
    assert!(child.wait().await.unwrap().success());
    assert_eq!(total, n);
    start.elapsed()
}

async fn cellblock_stream(n: u64) -> Duration {
    let start = Instant::now();
    let mut c = Container::builder("head")
        .args(writer_args(n))
        .stdout(Stdio::piped())
        .spawn()
        .await
        .unwrap();
    let mut out = c.take_stdout().unwrap();
    let mut total = 0u64;
    while let Some(chunk) = out.next().await {
        total += chunk.unwrap().len() as u64;
    }
    assert!(c.wait().await.unwrap().success());
    assert_eq!(total, n);
    start.elapsed()
}

async fn cellblock_read(n: u64) -> Duration {
    let start = Instant::now();
    let mut c = Container::builder("head")
        .args(writer_args(n))
        .stdout(Stdio::piped())
        .spawn()
        .await
        .unwrap();
    let total = read_loop(c.take_stdout().unwrap()).await;
    assert!(c.wait().await.unwrap().success());
    assert_eq!(total, n);
    start.elapsed()
}

/// `k` runs of `run` one after another on `rt`: their summed time (for `iter_custom`).
fn runs<F: Future<Output = Duration>>(
    rt: &tokio::runtime::Runtime,
    k: u64,
    run: impl Fn() -> F,
) -> Duration {
    rt.block_on(async {
        let mut d = Duration::ZERO;
        for _ in 0..k {
            d += run().await;
        }
        d
    })
}

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let n = bytes_total();
    let mut g = c.benchmark_group("stdout_1gib");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(10));
    g.throughput(criterion::Throughput::Bytes(n));
    g.bench_function("tokio_process", |b| {
        b.iter_custom(|k| runs(&rt, k, || tokio_process(n)))
    });
    g.bench_function("cellblock_stream", |b| {
        b.iter_custom(|k| runs(&rt, k, || cellblock_stream(n)))
    });
    g.bench_function("cellblock_asyncread", |b| {
        b.iter_custom(|k| runs(&rt, k, || cellblock_read(n)))
    });
    g.finish();

    // Interleaved rounds for the summary.
    let rounds = if n == 1 << 30 { 5 } else { 1 };
    let (mut t, mut s, mut r) = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    rt.block_on(async {
        for _ in 0..rounds {
            t += tokio_process(n).await;
            s += cellblock_stream(n).await;
            r += cellblock_read(n).await;
        }
    });
    let gibs = |d: Duration| (n * rounds) as f64 / d.as_secs_f64() / (1u64 << 30) as f64;
    println!(
        "\nsummary: {} MiB piped stdout, {rounds} interleaved rounds",
        n >> 20
    );
    println!("  tokio_process ChildStdout   {:.2} GiB/s", gibs(t));
    println!(
        "  cellblock Stream<Bytes>     {:.2} GiB/s  ratio {:.2}x  (target >= 0.8x)",
        gibs(s),
        gibs(s) / gibs(t)
    );
    println!(
        "  cellblock AsyncRead         {:.2} GiB/s  ratio {:.2}x",
        gibs(r),
        gibs(r) / gibs(t)
    );
}

criterion_group!(group, benches);

fn main() {
    group();
    Criterion::default().configure_from_args().final_summary();
}
