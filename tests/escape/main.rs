//! The attack suites: each protection of the threat model, attacked with the defaults and
//! with only that protection switched off (the control). The C probes they compile with
//! `common::compile_probe` live next to them in this directory. Run one suite with
//! `cargo test --release --test escape escape_kernel::`.
//!
//! Tests that count what belongs to the whole process or change it run in a process of
//! their own: see `common::ran_alone`.

#[path = "../common/mod.rs"]
mod common;

mod escape;
mod escape_argcmp;
mod escape_budget;
mod escape_identity;
mod escape_init;
mod escape_kernel;
mod escape_mounts;
mod escape_seccomp;
