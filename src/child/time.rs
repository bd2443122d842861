//! THE CHILD, time namespace: `unshare(CLONE_NEWTIME)` and the clock offsets.
//!
//! Same rules as `mod.rs`. `clone()` cannot create a time namespace (`CLONE_NEWTIME`
//! shares its bit with the exit-signal byte), so the child unshares one. `unshare` only
//! sets the namespace *for children*; the offsets must be written to
//! `/proc/self/timens_offsets` before any process enters it, and `execve` then moves this
//! very process into it (since Linux 5.8 exec switches to `time_for_children` once it has
//! its own fresh address space, which is why sharing the supervisor's memory until then
//! is fine: the vDSO data page of the old mm is never switched).

use super::sys::{self, write_file, Step};
use crate::error::Stage;

/// Prepared by `plan/time.rs`.
pub(crate) struct TimeSpec<'a> {
    /// Create a new time namespace.
    pub(crate) unshare: bool,
    /// The text for `/proc/self/timens_offsets` (`None` when no offsets).
    pub(crate) offsets: Option<&'a [u8]>,
}

pub(crate) fn enter(spec: &TimeSpec<'_>) -> Step {
    if !spec.unshare {
        return Ok(());
    }
    sys::unshare(libc::CLONE_NEWTIME, Stage::TimeUnshare)?;
    let Some(offsets) = spec.offsets else {
        return Ok(());
    };
    // man 7 time_namespaces.
    write_file(c"/proc/self/timens_offsets", offsets, Stage::TimeOffsets)
}
