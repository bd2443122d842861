//! The behaviour suites: one module per area, all in one test binary (linking one binary
//! instead of one per file is most of what a build of the tests costs). Run one area with
//! `cargo test --release --test it rootfs::`.
//!
//! Tests that count what belongs to the whole process (descriptors, threads, zombies, our
//! cgroups) or change it (environment, rlimits, the id pool, the tracing subscriber) run in
//! a process of their own: see `common::ran_alone`.

#[path = "../common/mod.rs"]
mod common;

mod cgroup_cleanup;
mod cgroup_v2;
mod claims;
mod cpu_limit;
mod create;
mod errors;
mod examples;
mod idpool;
mod init;
mod isolation_failures;
mod join;
mod leaks;
mod lifecycle;
mod lifeline;
mod limits;
mod namespaces;
mod nesting;
mod network;
mod pty;
mod rootfs;
mod rootless;
mod rootless_cgroups;
mod scale;
mod security;
mod signals;
mod stdio_channels;
mod supervisor;
mod time;
mod timeouts;
mod userns;
