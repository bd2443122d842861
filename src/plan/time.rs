//! Time namespaces: checks the clock offsets and writes the text the child puts in
//! `/proc/self/timens_offsets`.
//!
//! The child creates the namespace itself (`child/time.rs` says how and why). Nothing here
//! touches the system.

use std::fmt::Write as _;

use crate::builder::time::TimeConfig;
use crate::child::time::TimeSpec;
use crate::error::{Error, Result};
use crate::plan::Ctx;
use crate::Namespaces;

/// The prepared time settings.
pub(crate) struct PreparedTime {
    unshare: bool,
    /// Empty when no offset is set.
    offsets: Vec<u8>,
}

impl PreparedTime {
    /// The child's view.
    pub(crate) fn spec(&self) -> TimeSpec<'_> {
        TimeSpec {
            unshare: self.unshare,
            offsets: (!self.offsets.is_empty()).then_some(&self.offsets[..]),
        }
    }
}

pub(crate) fn prepare(cfg: &TimeConfig, ctx: &Ctx) -> Result<PreparedTime> {
    let wants_ns = ctx.namespaces.contains(Namespaces::TIME);
    if (cfg.monotonic.is_some() || cfg.boottime.is_some()) && !wants_ns {
        return Err(Error::NeedsNamespace {
            option: "monotonic_offset/boottime_offset",
            needs: Namespaces::TIME,
        });
    }
    Ok(PreparedTime {
        unshare: wants_ns,
        offsets: offsets_text(cfg),
    })
}

/// The `timens_offsets` lines (man 7 time_namespaces): `<clock> <secs> <nanosecs>`.
fn offsets_text(cfg: &TimeConfig) -> Vec<u8> {
    let mut text = String::new();
    if let Some(s) = cfg.monotonic {
        let _ = writeln!(text, "monotonic {s} 0");
    }
    if let Some(s) = cfg.boottime {
        let _ = writeln!(text, "boottime {s} 0");
    }
    text.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_text_has_one_line_per_clock_set() {
        let none = TimeConfig::default();
        assert_eq!(offsets_text(&none), b"");
        let both = TimeConfig {
            monotonic: Some(-5),
            boottime: Some(864_000),
        };
        assert_eq!(offsets_text(&both), b"monotonic -5 0\nboottime 864000 0\n");
        let boot = TimeConfig {
            boottime: Some(1),
            ..TimeConfig::default()
        };
        assert_eq!(offsets_text(&boot), b"boottime 1 0\n");
    }

    #[test]
    fn offsets_need_the_time_namespace() {
        let cfg = TimeConfig {
            monotonic: Some(1),
            ..TimeConfig::default()
        };
        let e = prepare(&cfg, &Ctx::for_test(Namespaces::empty())).err();
        assert!(
            matches!(
                e,
                Some(Error::NeedsNamespace {
                    needs: Namespaces::TIME,
                    ..
                })
            ),
            "{e:?}"
        );
        let p = prepare(&cfg, &Ctx::for_test(Namespaces::TIME)).unwrap();
        let spec = p.spec();
        assert!(spec.unshare);
        assert_eq!(spec.offsets, Some(&b"monotonic 1 0\n"[..]));
        // A time namespace without offsets: unshared, nothing written.
        let p = prepare(&TimeConfig::default(), &Ctx::for_test(Namespaces::TIME)).unwrap();
        assert!(p.spec().unshare && p.spec().offsets.is_none());
        let p = prepare(&TimeConfig::default(), &Ctx::for_test(Namespaces::empty())).unwrap();
        assert!(!p.spec().unshare);
    }
}
