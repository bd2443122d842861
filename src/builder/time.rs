//! Time namespace settings: per-container offsets of CLOCK_MONOTONIC and CLOCK_BOOTTIME.
//!
//! Plain data; `plan/time.rs` checks it and writes the offsets text, `child/time.rs` says
//! how the child creates the namespace.

use crate::builder::ContainerBuilder;
#[cfg(doc)]
use crate::Namespaces;

/// Clock offsets of a container's time namespace (part of [`ContainerBuilder`]).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct TimeConfig {
    pub(crate) monotonic: Option<i64>,
    pub(crate) boottime: Option<i64>,
}

/// Time namespace settings.
///
/// ```no_run
/// # async fn demo() -> cellblock::Result<()> {
/// use cellblock::{Container, Namespaces};
/// // The container believes the machine booted ten days earlier.
/// let out = Container::builder("/bin/cat")
///     .arg("/proc/uptime")
///     .namespaces(Namespaces::TIME)
///     .boottime_offset(10 * 86_400)
///     .monotonic_offset(10 * 86_400)
///     .output()
///     .await?;
/// # Ok(()) }
/// ```
impl ContainerBuilder {
    /// Shifts CLOCK_MONOTONIC inside the container by `secs` seconds (may be negative, but
    /// the clock may not go below zero). Needs [`Namespaces::TIME`].
    pub fn monotonic_offset(&mut self, secs: i64) -> &mut Self {
        self.time.monotonic = Some(secs);
        self
    }

    /// Shifts CLOCK_BOOTTIME (and so `/proc/uptime`) inside the container by `secs`
    /// seconds. Needs [`Namespaces::TIME`].
    pub fn boottime_offset(&mut self, secs: i64) -> &mut Self {
        self.time.boottime = Some(secs);
        self
    }
}
