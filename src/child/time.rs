//! THE CHILD, time namespace: `unshare(CLONE_NEWTIME)` and the clock offsets.
//!
//! Same rules as `mod.rs`. `clone()` cannot create a time namespace (`CLONE_NEWTIME`
//! shares its bit with the exit-signal byte), so the child unshares one. `unshare` only
//! sets the namespace *for children*; the offsets must be written to
//! `/proc/self/timens_offsets` before any process enters it, and `execve` then moves this
//! very process into it (since Linux 5.8 exec switches to `time_for_children` once it has
//! its own fresh address space, which is why sharing the supervisor's memory until then
//! is fine: the vDSO data page of the old mm is never switched).

use super::{check, write_file, Step};
use crate::error::Stage;

/// Prepared by `time.rs`.
pub(crate) struct TimeSpec {
    /// Create a new time namespace.
    pub(crate) unshare: bool,
    /// The text for `/proc/self/timens_offsets` (`(ptr, len)`, null when no offsets).
    pub(crate) offsets: (*const u8, usize),
}

impl TimeSpec {
    pub(crate) const NONE: TimeSpec = TimeSpec {
        unshare: false,
        offsets: (std::ptr::null(), 0),
    };
}

pub(crate) fn enter(spec: &TimeSpec) -> Step {
    if !spec.unshare {
        return Ok(());
    }
    // SAFETY: plain syscall. man 2 unshare.
    check(
        unsafe { libc::unshare(libc::CLONE_NEWTIME) },
        Stage::TimeUnshare,
    )?;
    if spec.offsets.0.is_null() {
        return Ok(());
    }
    // man 7 time_namespaces.
    write_file(
        c"/proc/self/timens_offsets",
        super::slice(spec.offsets),
        Stage::TimeOffsets,
    )
}
