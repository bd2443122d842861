//! The peers' own tests, ported: bubblewrap, tini and dumb-init, tokio's process tests.
//! Run one peer's with `cargo test --release --test peers tini::`.
//!
//! Tests that change what belongs to the whole process (signal dispositions, the
//! environment) run in a process of their own: see `common::ran_alone`.

#[path = "../common/mod.rs"]
mod common;

mod bubblewrap;
mod tini;
mod tokio;
