//! How the host mounts its cgroup hierarchies ([`CgroupLayout`]), and where this process
//! sits in them (`/proc/self/cgroup` against `/proc/self/mountinfo`).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// How the host mounts its cgroup hierarchies.
///
/// ```
/// if let Ok(layout) = cellblock::CgroupLayout::detect() {
///     println!("cgroup layout: {layout:?}");
/// }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CgroupLayout {
    /// cgroup v2 only: `/sys/fs/cgroup` is a `cgroup2` mount (most current distributions).
    Unified,
    /// cgroup v1 only: one `cgroup` mount per controller (or group of controllers) under a
    /// tmpfs at `/sys/fs/cgroup`.
    Legacy,
    /// v1 controllers plus a `cgroup2` hierarchy at `/sys/fs/cgroup/unified` (systemd's
    /// "hybrid" mode). The controllers are on v1, so cellblock uses v1 unless told
    /// otherwise with [`CgroupVersion::V2`](super::CgroupVersion::V2).
    Hybrid,
}

const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;
const CGROUP_SUPER_MAGIC: i64 = 0x0027_e0eb;
const TMPFS_MAGIC: i64 = 0x0102_1994;

impl CgroupLayout {
    /// Detects the layout from the filesystem magic of `/sys/fs/cgroup` (and of
    /// `/sys/fs/cgroup/unified`), the way systemd and crun do.
    pub fn detect() -> io::Result<CgroupLayout> {
        let root = fs_magic("/sys/fs/cgroup")?;
        match root {
            CGROUP2_SUPER_MAGIC => Ok(CgroupLayout::Unified),
            TMPFS_MAGIC | CGROUP_SUPER_MAGIC => {
                if fs_magic("/sys/fs/cgroup/unified").ok() == Some(CGROUP2_SUPER_MAGIC) {
                    Ok(CgroupLayout::Hybrid)
                } else {
                    Ok(CgroupLayout::Legacy)
                }
            }
            other => Err(io::Error::other(format!(
                "/sys/fs/cgroup is neither cgroup2, cgroup nor tmpfs (statfs magic {other:#x})"
            ))),
        }
    }
}

/// [`CgroupLayout::detect`], once per process (like the mounts in [`discovery`]: a host
/// does not change its cgroup layout under a running supervisor).
pub(super) fn layout() -> std::result::Result<CgroupLayout, &'static str> {
    static LAYOUT: OnceLock<std::result::Result<CgroupLayout, String>> = OnceLock::new();
    LAYOUT
        .get_or_init(|| CgroupLayout::detect().map_err(|e| e.to_string()))
        .as_ref()
        .map(|l| *l)
        .map_err(|e| e.as_str())
}

fn fs_magic(path: &str) -> io::Result<i64> {
    let st = nix::sys::statfs::statfs(path).map_err(io::Error::from)?;
    Ok(st.filesystem_type().0 as i64)
}

/// One line of `/proc/self/cgroup`: hierarchy id, controllers, path.
#[derive(Debug, Clone)]
struct OwnCgroup {
    controllers: Vec<String>,
    path: String,
}

/// One cgroup or cgroup2 mount from `/proc/self/mountinfo`.
#[derive(Debug, Clone)]
struct Mount {
    v2: bool,
    /// Controllers (v1 super options), empty for v2.
    controllers: Vec<String>,
    root: String,
    mount_point: PathBuf,
}

#[derive(Debug)]
struct Discovery {
    own: Vec<OwnCgroup>,
    mounts: Vec<Mount>,
}

/// Read once: the supervisor does not move between cgroups behind our back (if it is
/// moved, new containers still nest under the cgroup it started in).
fn discovery() -> io::Result<&'static Discovery> {
    static D: OnceLock<Discovery> = OnceLock::new();
    if let Some(d) = D.get() {
        return Ok(d);
    }
    let own = parse_proc_cgroup(&fs::read_to_string("/proc/self/cgroup")?);
    let mounts = parse_mountinfo(&fs::read_to_string("/proc/self/mountinfo")?);
    Ok(D.get_or_init(|| Discovery { own, mounts }))
}

fn parse_proc_cgroup(text: &str) -> Vec<OwnCgroup> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.splitn(3, ':');
            let _id = f.next()?;
            let ctrls = f.next()?;
            let path = f.next()?;
            Some(OwnCgroup {
                controllers: ctrls
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect(),
                path: path.to_owned(),
            })
        })
        .collect()
}

fn parse_mountinfo(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            let left: Vec<&str> = left.split(' ').collect();
            let mut right = right.split(' ');
            let fstype = right.next()?;
            let _source = right.next()?;
            let opts = right.next().unwrap_or("");
            let v2 = match fstype {
                "cgroup2" => true,
                "cgroup" => false,
                _ => return None,
            };
            let controllers = if v2 {
                Vec::new()
            } else {
                opts.split(',')
                    .filter(|o| !matches!(*o, "rw" | "ro") && !o.contains('='))
                    .map(str::to_owned)
                    .collect()
            };
            Some(Mount {
                v2,
                controllers,
                root: unescape_mount_field(left.get(3)?),
                mount_point: PathBuf::from(unescape_mount_field(left.get(4)?)),
            })
        })
        .collect()
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape_mount_field(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(u8::is_ascii_digit) {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `mount_point` + (`path` relative to the mount's root).
fn join_own(mount: &Mount, path: &str) -> PathBuf {
    let rel = path
        .strip_prefix(mount.root.as_str())
        .filter(|_| mount.root != "/")
        .unwrap_or(path);
    match rel.trim_start_matches('/') {
        "" => mount.mount_point.clone(),
        rel => mount.mount_point.join(rel),
    }
}

/// The v1 hierarchy holding `controller`: (mount point, the supervisor's directory in it).
pub(crate) fn v1_hierarchy(controller: &str) -> io::Result<Option<(PathBuf, PathBuf)>> {
    let d = discovery()?;
    let Some(mount) = d
        .mounts
        .iter()
        .find(|m| !m.v2 && m.controllers.iter().any(|c| c == controller))
    else {
        return Ok(None);
    };
    let own = d
        .own
        .iter()
        .find(|o| o.controllers.iter().any(|c| c == controller))
        .map_or("/", |o| o.path.as_str());
    Ok(Some((mount.mount_point.clone(), join_own(mount, own))))
}

/// The v2 hierarchy: (mount point, the supervisor's directory in it).
pub(crate) fn v2_hierarchy() -> io::Result<Option<(PathBuf, PathBuf)>> {
    let d = discovery()?;
    let Some(mount) = d.mounts.iter().find(|m| m.v2) else {
        return Ok(None);
    };
    let own = d
        .own
        .iter()
        .find(|o| o.controllers.is_empty())
        .map_or("/", |o| o.path.as_str());
    Ok(Some((mount.mount_point.clone(), join_own(mount, own))))
}

/// The base directory: the supervisor's own cgroup, or the delegated parent if given (see
/// `ContainerBuilder::cgroup_parent` for how its path is read).
pub(crate) fn base_dir(mount: &Path, own: &Path, explicit: Option<&Path>) -> PathBuf {
    match explicit {
        Some(p) if p.starts_with(mount) => p.to_path_buf(),
        Some(p) if p.is_absolute() => mount.join(p.strip_prefix("/").unwrap_or(p)),
        Some(p) => own.join(p),
        None => own.to_path_buf(),
    }
}

/// Where the caller's cgroup `path` (`ContainerBuilder::cgroup_path`, checked by the plan)
/// starts in a hierarchy mounted at `mount` in which the supervisor's own directory is
/// `own`: an absolute path at the hierarchy's root, a relative one at `own`.
pub(crate) fn path_start<'a>(path: &Path, mount: &'a Path, own: &'a Path) -> &'a Path {
    if path.is_absolute() {
        mount
    } else {
        own
    }
}

/// The directory of the caller's cgroup `path` in that hierarchy (see [`path_start`]).
pub(crate) fn path_dir(path: &Path, mount: &Path, own: &Path) -> PathBuf {
    let mut dir = path_start(path, mount, own).to_path_buf();
    dir.extend(normal_parts(path));
    dir
}

fn normal_parts(path: &Path) -> impl Iterator<Item = &std::ffi::OsStr> {
    path.components().filter_map(|c| match c {
        std::path::Component::Normal(p) => Some(p),
        _ => None,
    })
}

/// The directory of the caller's cgroup `path` in the hierarchy mounted at `mount` (see
/// [`path_start`]): created with its missing ancestors (each new one passed to `init`, as
/// cpuset needs), or joined if it exists.
pub(crate) fn explicit_dir(
    mount: &Path,
    own: &Path,
    path: &Path,
    init: &dyn Fn(&Path) -> crate::error::Result<()>,
) -> crate::error::Result<PathBuf> {
    // Another process may remove an emptied ancestor between our mkdirs (the OCI
    // runtime's `delete` removes its emptied `cellblock-oci` parent): a vanished parent
    // (ENOENT) makes the walk start again (at most 64 times).
    let mut attempts = 0;
    'walk: loop {
        let mut dir = path_start(path, mount, own).to_path_buf();
        for part in normal_parts(path) {
            dir.push(part);
            match std::fs::create_dir(&dir) {
                Ok(()) => init(&dir)?,
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound && attempts < 64 => {
                    attempts += 1;
                    continue 'walk;
                }
                Err(e) => return Err(super::files::cg_err("create", &dir, e)),
            }
        }
        return Ok(dir);
    }
}

/// The existing cgroup a container joins in the hierarchy mounted at `mount`: the caller's
/// `path` (`join_cgroup_path`, read as [`path_dir`] reads it) or the cgroup of process
/// `pid` (`join_cgroup_of`) for the v1 `controller` (`None`: v2).
pub(crate) fn joined_dir(
    path: Option<&Path>,
    pid: Option<i32>,
    mount: &Path,
    own: &Path,
    controller: Option<&str>,
) -> crate::error::Result<PathBuf> {
    use crate::error::Error;
    let dir = match (path, pid) {
        (Some(p), _) => path_dir(p, mount, own),
        (None, Some(pid)) => dir_of_pid(pid, mount, controller)
            .map_err(|e| Error::CgroupUnavailable(format!("reading /proc/{pid}/cgroup: {e}")))?
            .ok_or_else(|| {
                Error::CgroupUnavailable(format!(
                    "process {pid} is in no cgroup of {}",
                    mount.display()
                ))
            })?,
        (None, None) => {
            return Err(Error::CgroupUnavailable(
                "no cgroup to join was given".into(),
            ))
        }
    };
    if !dir.is_dir() {
        return Err(Error::CgroupUnavailable(format!(
            "{} does not exist: nothing to join",
            dir.display()
        )));
    }
    Ok(dir)
}

/// The directory of process `pid`'s cgroup in the hierarchy mounted at `mount` that holds
/// the v1 `controller` (`None`: the v2 hierarchy), read from `/proc/PID/cgroup`
/// (`ContainerBuilder::join_cgroup_of`). `Ok(None)`: it is in no cgroup of that hierarchy.
pub(crate) fn dir_of_pid(
    pid: i32,
    mount: &Path,
    controller: Option<&str>,
) -> io::Result<Option<PathBuf>> {
    let theirs = parse_proc_cgroup(&fs::read_to_string(format!("/proc/{pid}/cgroup"))?);
    let found = theirs.iter().find(|o| match controller {
        Some(c) => o.controllers.iter().any(|x| x == c),
        None => o.controllers.is_empty(),
    });
    let Some(found) = found else {
        return Ok(None);
    };
    let d = discovery()?;
    let Some(m) = d.mounts.iter().find(|m| m.mount_point == mount) else {
        return Ok(None);
    };
    Ok(Some(join_own(m, &found.path)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_hybrid_mountinfo_and_proc_cgroup() {
        let mi = "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n\
                  32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n\
                  40 31 0:37 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd\n\
                  41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n\
                  23 1 0:2 / /proc rw - proc proc rw\n";
        let m = parse_mountinfo(mi);
        assert_eq!(m.len(), 4);
        assert_eq!(m[1].controllers, ["cpu", "cpuacct"]);
        assert!(m[2].controllers.iter().all(|c| c != "name=systemd"));
        assert!(m[3].v2);
        let own = parse_proc_cgroup("4:memory:/a/b\n1:cpu,cpuacct:/\n0::/user.slice\n");
        assert_eq!(own[0].path, "/a/b");
        assert!(own[2].controllers.is_empty());
        assert_eq!(
            join_own(&m[0], "/a/b"),
            PathBuf::from("/sys/fs/cgroup/memory/a/b")
        );
        assert_eq!(
            join_own(&m[3], "/"),
            PathBuf::from("/sys/fs/cgroup/unified")
        );
    }

    #[test]
    fn mount_root_is_stripped() {
        let m = Mount {
            v2: true,
            controllers: vec![],
            root: "/sys.slice".into(),
            mount_point: "/sys/fs/cgroup".into(),
        };
        assert_eq!(
            join_own(&m, "/sys.slice/x"),
            PathBuf::from("/sys/fs/cgroup/x")
        );
        assert_eq!(unescape_mount_field("a\\040b"), "a b");
    }
}
