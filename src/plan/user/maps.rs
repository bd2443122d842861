//! uid/gid maps: their checks, their text, and the maps the supervisor writes for a child
//! whose maps it may not write itself.

use std::fmt::Write as _;
use std::io::Write as _;
use std::os::fd::OwnedFd;

use crate::builder::user::IdRange;
use crate::error::{Error, Result};

/// The kernel's limit on lines in a uid/gid map (since Linux 4.15).
const MAX_MAP_LINES: usize = 340;

/// Maps the supervisor writes for the child, and the pipe that releases it.
pub(crate) struct ParentMaps {
    pub(super) uid_map: Vec<u8>,
    pub(super) gid_map: Vec<u8>,
    /// The pipe's write end; taken when the child is released (or let go on error).
    pub(super) ready_write: Option<OwnedFd>,
}

pub(super) fn map_text(ranges: &[IdRange]) -> Vec<u8> {
    let mut s = String::new();
    for r in ranges {
        let _ = writeln!(s, "{} {} {}", r.inside, r.outside, r.count);
    }
    s.into_bytes()
}

pub(super) fn check_ranges(kind: &str, ranges: &[IdRange]) -> Result<()> {
    if ranges.len() > MAX_MAP_LINES {
        return Err(Error::BadConfig(format!(
            "{kind} map has {} lines; the kernel accepts at most {MAX_MAP_LINES}",
            ranges.len()
        )));
    }
    for (i, r) in ranges.iter().enumerate() {
        // The kernel's rule (map_write in kernel/user_namespace.c): no empty line, and
        // `first + count` must not wrap past 32 bits, so the id u32::MAX ((uid_t)-1) is
        // never mapped.
        if r.count == 0
            || r.inside.checked_add(r.count).is_none()
            || r.outside.checked_add(r.count).is_none()
        {
            return Err(Error::BadConfig(format!(
                "{kind} map line {} {} {} is empty or overflows 32 bits",
                r.inside, r.outside, r.count
            )));
        }
        for o in &ranges[..i] {
            // In 64 bits: the ends of two valid lines cannot wrap there.
            let overlap = |a: u32, b: u32| {
                let (a, b) = (u64::from(a), u64::from(b));
                a < b + u64::from(o.count) && b < a + u64::from(r.count)
            };
            if overlap(r.inside, o.inside) || overlap(r.outside, o.outside) {
                return Err(Error::BadConfig(format!(
                    "{kind} map lines {} {} {} and {} {} {} overlap (the kernel refuses that)",
                    o.inside, o.outside, o.count, r.inside, r.outside, r.count
                )));
            }
        }
    }
    Ok(())
}

pub(super) fn mapped(ranges: &[IdRange], id: u32) -> bool {
    ranges
        .iter()
        .any(|r| id >= r.inside && (id - r.inside) < r.count)
}

/// `maps`, or when none were given, the single line mapping `own` host id to 0 inside.
pub(super) fn maps_or_own(maps: &[IdRange], own: u32) -> Vec<IdRange> {
    if maps.is_empty() {
        vec![IdRange {
            inside: 0,
            outside: own,
            count: 1,
        }]
    } else {
        maps.to_vec()
    }
}

impl ParentMaps {
    /// The host uid that the uid map makes the container's root, if it is not 0: the
    /// owner the new user namespace should have (see `ParentState::clone_and_wait`).
    pub(crate) fn root_host_uid(&self) -> Option<u32> {
        let text = std::str::from_utf8(&self.uid_map).ok()?;
        text.lines().find_map(|l| {
            let f: Vec<u32> = l
                .split_whitespace()
                .filter_map(|x| x.parse().ok())
                .collect();
            (f.len() == 3 && f[0] == 0 && f[2] > 0 && f[1] != 0).then_some(f[1])
        })
    }

    /// Writes the maps of child `pid` and releases it. On error the release pipe is closed
    /// unwritten, so the child exits instead of running with no mapping.
    pub(crate) fn write_and_release(&mut self, pid: libc::pid_t) -> Result<()> {
        let write = |file: &'static str, data: &[u8]| -> Result<()> {
            std::fs::OpenOptions::new()
                .write(true)
                .open(format!("/proc/{pid}/{file}"))
                .and_then(|mut f| f.write_all(data))
                .map_err(|source| Error::IdMap { file, source })
        };
        let result = write("gid_map", &self.gid_map).and_then(|_| write("uid_map", &self.uid_map));
        // Taken either way: closing it unwritten (on error) makes the child exit.
        let ready = self.ready_write.take();
        if let (Ok(()), Some(fd)) = (&result, ready) {
            std::fs::File::from(fd)
                .write_all(b"1")
                .map_err(Error::io("releasing the child after writing its maps"))?;
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(inside: u32, outside: u32, count: u32) -> IdRange {
        IdRange {
            inside,
            outside,
            count,
        }
    }

    fn err(kind: &str, ranges: &[IdRange]) -> String {
        match check_ranges(kind, ranges) {
            Err(Error::BadConfig(msg)) => msg,
            other => panic!("{ranges:?}: expected BadConfig, got {other:?}"),
        }
    }

    #[test]
    fn disjoint_ranges_pass() {
        check_ranges("uid", &[r(0, 100_000, 65_536)]).unwrap();
        // Adjacent on both sides, in any order.
        check_ranges("uid", &[r(1, 1001, 9), r(0, 1000, 1), r(10, 5000, 5)]).unwrap();
        check_ranges("gid", &[r(u32::MAX - 10, u32::MAX - 10, 10), r(0, 0, 10)]).unwrap();
        check_ranges("gid", &[]).unwrap();
    }

    #[test]
    fn empty_and_overflowing_lines_are_refused() {
        let e = err("uid", &[r(0, 1000, 0)]);
        assert!(
            e.contains("uid map line 0 1000 0 is empty or overflows"),
            "{e}"
        );
        let e = err("gid", &[r(u32::MAX, 0, 2)]);
        assert!(e.contains("gid map line"), "{e}");
        let e = err("uid", &[r(0, u32::MAX - 1, 3)]);
        assert!(e.contains("overflows 32 bits"), "{e}");
        // The id u32::MAX itself, inside or outside: the kernel refuses the line.
        let e = err("uid", &[r(u32::MAX, 5, 1)]);
        assert!(e.contains("uid map line 4294967295 5 1"), "{e}");
        let e = err("gid", &[r(7, u32::MAX - 1, 2)]);
        assert!(e.contains("overflows 32 bits"), "{e}");
        // The highest line the kernel takes: up to u32::MAX - 1.
        check_ranges("uid", &[r(u32::MAX - 1, u32::MAX - 1, 1)]).unwrap();
    }

    #[test]
    fn overlaps_inside_or_outside_are_refused() {
        let e = err("uid", &[r(0, 1000, 10), r(5, 5000, 10)]);
        assert!(
            e.contains("lines 0 1000 10 and 5 5000 10 overlap"),
            "inside: {e}"
        );
        let e = err("gid", &[r(0, 1000, 10), r(100, 1009, 1)]);
        assert!(e.contains("overlap"), "outside: {e}");
        // One range inside another.
        let e = err("uid", &[r(0, 0, 100), r(10, 200, 1)]);
        assert!(e.contains("overlap"), "{e}");
        // Near the top of the id space the sums do not wrap.
        let e = err("uid", &[r(u32::MAX - 10, 0, 5), r(u32::MAX - 8, 100, 1)]);
        assert!(e.contains("overlap"), "{e}");
        let e = err("uid", &[r(u32::MAX - 3, 0, 3), r(u32::MAX - 1, 10, 1)]);
        assert!(e.contains("overlap"), "{e}");
        // Adjacent at the very top is fine.
        check_ranges("uid", &[r(u32::MAX - 3, 0, 2), r(u32::MAX - 1, 10, 1)]).unwrap();
    }

    #[test]
    fn at_most_the_kernels_line_count() {
        let lines: Vec<IdRange> = (0..MAX_MAP_LINES as u32).map(|i| r(i, i + 10, 1)).collect();
        check_ranges("uid", &lines).unwrap();
        let one_more: Vec<IdRange> = (0..=MAX_MAP_LINES as u32)
            .map(|i| r(i, i + 10, 1))
            .collect();
        let e = err("uid", &one_more);
        assert!(
            e.contains("uid map has 341 lines; the kernel accepts at most 340"),
            "{e}"
        );
    }

    #[test]
    fn mapped_covers_each_range_inside_only() {
        let maps = [r(0, 100_000, 10), r(1000, 20, 1)];
        for id in [0, 9, 1000] {
            assert!(mapped(&maps, id), "{id}");
        }
        // 100_000 and 20 are host ids, not ids inside.
        for id in [10, 999, 1001, 100_000, 20] {
            assert!(!mapped(&maps, id), "{id}");
        }
        assert!(!mapped(&[], 0));
        assert!(mapped(&[r(u32::MAX, 1, 1)], u32::MAX));
    }

    #[test]
    fn no_maps_means_own_id_as_root() {
        assert_eq!(maps_or_own(&[], 1000), [r(0, 1000, 1)]);
        let given = [r(0, 100_000, 65_536)];
        assert_eq!(maps_or_own(&given, 1000), given);
    }

    #[test]
    fn map_text_is_one_line_per_range() {
        assert_eq!(map_text(&[r(0, 1000, 1)]), b"0 1000 1\n");
        assert_eq!(
            map_text(&[r(0, 100_000, 65_536), r(65_536, 5, 1)]),
            b"0 100000 65536\n65536 5 1\n"
        );
        assert_eq!(map_text(&[]), b"");
    }

    #[test]
    fn root_host_uid_is_the_host_id_of_inside_0() {
        let maps = |text: &[u8]| ParentMaps {
            uid_map: text.to_vec(),
            gid_map: Vec::new(),
            ready_write: None,
        };
        assert_eq!(maps(b"0 100000 65536\n").root_host_uid(), Some(100_000));
        assert_eq!(maps(b"1 5 10\n0 7000 1\n").root_host_uid(), Some(7000));
        // Host root as the container's root: no owner to switch to.
        assert_eq!(maps(b"0 0 1\n").root_host_uid(), None);
        // 0 unmapped.
        assert_eq!(maps(b"1 100000 10\n").root_host_uid(), None);
    }
}
