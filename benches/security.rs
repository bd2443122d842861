//! What the hardening defaults cost per spawn: `/bin/true` in UTS|IPC|PID|MOUNT, with the
//! defaults (seccomp compiled and installed, capabilities dropped, paths masked, …) and
//! with every protection switched off.

use cellblock::{Container, ContainerBuilder, Namespaces, Seccomp};
use criterion::{criterion_group, criterion_main, Criterion};

fn builder() -> ContainerBuilder {
    let mut b = Container::builder("/bin/true");
    b.namespaces(Namespaces::UTS | Namespaces::IPC | Namespaces::PID | Namespaces::MOUNT);
    b
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut g = c.benchmark_group("spawn_true");
    g.sample_size(30);
    let mut hardened = builder();
    g.bench_function("hardened_defaults", |b| {
        b.iter(|| rt.block_on(async { hardened.status().await.unwrap() }))
    });
    let mut open = builder();
    open.keep_all_capabilities()
        .no_new_privs(false)
        .seccomp(Seccomp::disabled())
        .masked_paths(false)
        .new_session(false);
    g.bench_function("all_protections_off", |b| {
        b.iter(|| rt.block_on(async { open.status().await.unwrap() }))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
