//! Time namespaces: per-container offsets of CLOCK_MONOTONIC and CLOCK_BOOTTIME.
//!
//! The child creates the namespace itself (`child/time.rs` says how and why); this file
//! holds the settings and prepares the offsets text.

use std::fmt::Write as _;

use crate::builder::ContainerBuilder;
use crate::child::time::TimeSpec;
use crate::error::{Error, Result};
use crate::Namespaces;

/// Clock offsets of a container's time namespace (part of [`ContainerBuilder`]).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct TimeConfig {
    monotonic: Option<i64>,
    boottime: Option<i64>,
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

/// The prepared time settings.
pub(crate) struct PreparedTime {
    pub(crate) spec: TimeSpec,
    _text: Vec<u8>,
}

// SAFETY: `spec.offsets` points into `_text`, owned by the same value.
unsafe impl Send for PreparedTime {}

pub(crate) fn prepare(b: &ContainerBuilder) -> Result<PreparedTime> {
    let t = &b.time;
    let wants_ns = b.namespaces.contains(Namespaces::TIME);
    if (t.monotonic.is_some() || t.boottime.is_some()) && !wants_ns {
        return Err(Error::NeedsNamespace {
            option: "monotonic_offset/boottime_offset",
            needs: Namespaces::TIME,
        });
    }
    let mut text = String::new();
    if let Some(s) = t.monotonic {
        let _ = writeln!(text, "monotonic {s} 0");
    }
    if let Some(s) = t.boottime {
        let _ = writeln!(text, "boottime {s} 0");
    }
    let text = text.into_bytes();
    let spec = TimeSpec {
        unshare: wants_ns,
        offsets: if text.is_empty() {
            (std::ptr::null(), 0)
        } else {
            (text.as_ptr(), text.len())
        },
    };
    Ok(PreparedTime { spec, _text: text })
}
