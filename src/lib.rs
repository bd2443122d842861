//! # cellblock
//!
//! Run and reap many isolated worker processes in Linux namespaces from an async (tokio)
//! program.
//!
//! A [`Container`] is a process started with `clone(CLONE_VM | CLONE_VFORK | CLONE_PIDFD |
//! CLONE_NEW*)` on a preallocated stack, from tokio's blocking pool. Its exit is awaited
//! through its pidfd on tokio's reactor and reaped with `waitid(P_PIDFD)`, so containers
//! coexist with `tokio::process` children and with any other child the program has.
//!
//! ```no_run
//! # #[tokio::main] async fn main() -> cellblock::Result<()> {
//! use cellblock::{Container, Namespaces, Stdio};
//!
//! let out = Container::builder("/bin/sh")
//!     .args(["-c", "hostname; echo $$; ps ax"])
//!     .namespaces(Namespaces::UTS | Namespaces::IPC | Namespaces::PID | Namespaces::MOUNT | Namespaces::NET)
//!     .hostname("container")
//!     .stdout(Stdio::piped())
//!     .output()
//!     .await?;
//! assert!(out.status.success());
//! print!("{}", String::from_utf8_lossy(&out.stdout));
//! # Ok(()) }
//! ```
//!
//! ## Security
//!
//! Every container is hardened by default: all capabilities dropped, `no_new_privs`, a
//! seccomp filter denying what Docker's default profile denies, masked `/proc` and `/sys`
//! paths (with [`Namespaces::MOUNT`]), every descriptor but stdio closed, a new session
//! and umask `022`. Each has an opt-out on [`ContainerBuilder`] whose documentation names
//! the risk ([`ContainerBuilder::capabilities`], [`ContainerBuilder::seccomp`],
//! [`ContainerBuilder::pass_fd`], [`ContainerBuilder::nesting`], …). `tests/escape.rs`
//! tries nine ways out against those defaults.
//!
//! ## Layout
//! configuration ([`ContainerBuilder`], `builder.rs`) → a prepared plan (`plan.rs`, every
//! allocation happens here, in the parent) → the child (`child.rs`: no allocation, raw
//! syscalls only) → the async handle ([`Container`], `container.rs`) and the background
//! reaper (`reaper.rs`). Raw syscall wrappers for the parent live in `sys.rs`.

#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

mod builder;
mod child;
mod container;
mod error;
mod namespaces;
mod plan;
mod reaper;
mod security;
mod spawn;
mod stdio;
mod sys;

pub use builder::ContainerBuilder;
pub use container::{Container, ContainerStderr, ContainerStdin, ContainerStdout, Output};
pub use error::{Errno, Error, Result, Stage};
pub use namespaces::{NamespaceIds, Namespaces};
pub use reaper::pending_orphans;
pub use security::{
    Capability, Seccomp, DEFAULT_MASKED_PATHS, DEFAULT_READONLY_PATHS, DEFAULT_UMASK,
};
pub use stdio::Stdio;

/// The signal type accepted by [`Container::signal`] (re-exported from `nix`).
pub use nix::sys::signal::Signal;
