//! cgroups: one interface over the v1 (`v1.rs`) and v2 (`v2.rs`) backends.
//!
//! Every container gets a cgroup of its own: for the default budget alone (`Mode::Budget`:
//! `pids` only), or with every controller when it asks for a limit or for accounting
//! (`Mode::Full`). It is `<base>/cellblock/<supervisor pid>-<counter>`, where `<base>` is
//! the supervisor's own cgroup for that hierarchy (read from `/proc/self/cgroup`) or a
//! delegated directory given with [`cgroup_parent`](crate::ContainerBuilder::cgroup_parent).
//! Nesting under our own cgroup respects the limits the supervisor itself runs under and
//! systemd's delegation.
//!
//! Lifecycle: [`Cgroup::create`] makes the directories and writes the limits in the parent,
//! before the clone; the child joins by writing `"0"` to the descriptors opened here
//! (`tasks` on v1, `cgroup.procs` on v2: see [`Cgroup::open_procs`]; the child's side is
//! `child/limits.rs`); after the container is reaped, [`Cgroup::release`] reads nothing
//! more, kills whatever is left inside and removes the directories. `Drop` does the same,
//! so every failure path (a bad limit, a failed setup, a cancelled spawn) removes what was
//! created.
//!
//! All of this runs in the parent, which may allocate; nothing here runs in the child.

pub(crate) mod v1;
pub(crate) mod v2;

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::builder::limits::LimitsConfig as Limits;
use crate::error::{Error, Result};

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
    /// otherwise with [`CgroupVersion::V2`].
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
fn layout() -> std::result::Result<CgroupLayout, &'static str> {
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

/// Which cgroup hierarchy to put containers in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum CgroupVersion {
    /// v2 on a unified host, v1 on a legacy or hybrid one.
    #[default]
    Auto,
    /// The v1 controllers' hierarchies.
    V1,
    /// The v2 hierarchy: `/sys/fs/cgroup` on a unified host, `/sys/fs/cgroup/unified`
    /// on a hybrid one. Limits need their controller enabled there.
    V2,
}

/// What the cgroup measured over the container's life.
#[derive(Debug, Clone, Default)]
pub(crate) struct Stats {
    pub(crate) user: Option<Duration>,
    pub(crate) system: Option<Duration>,
    pub(crate) memory_peak: Option<u64>,
    pub(crate) oom_kills: Option<u64>,
    pub(crate) pids_peak: Option<u64>,
    /// How many forks the pids controller refused.
    pub(crate) pids_refused: Option<u64>,
}

/// What a cgroup is made for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// The caller asked for limits or accounting: every accounting controller, the
    /// caller's limits, the default budget where the caller set no limit of its own.
    Full,
    /// The default budget only (`pids`).
    Budget,
}

/// A container's cgroup, on either backend.
#[derive(Debug)]
pub(crate) struct Cgroup {
    backend: Backend,
    /// Set once the directories are gone (or handed to a background remover).
    released: Mutex<bool>,
}

#[derive(Debug, Clone)]
enum Backend {
    V1(v1::V1Cgroup),
    V2(v2::V2Cgroup),
}

impl Cgroup {
    /// Creates the container's cgroup and writes its limits (the caller's, and the
    /// default budget's where the caller set none). On error nothing is left.
    pub(crate) fn create(limits: &Limits) -> Result<Cgroup> {
        Cgroup::create_as(limits, Mode::Full)
    }

    /// The default budget alone, for a container with no limit of the caller's: the
    /// `pids` cgroup with [`DEFAULT_PIDS_LIMIT`](crate::DEFAULT_PIDS_LIMIT), on v1 or v2. No accounting
    /// controllers, to keep the spawn cheap. On error nothing is left, and the caller goes
    /// on without a cgroup.
    pub(crate) fn create_budget(limits: &Limits) -> Result<Cgroup> {
        Cgroup::create_as(limits, Mode::Budget)
    }

    fn create_as(limits: &Limits, mode: Mode) -> Result<Cgroup> {
        let version = match limits.cgroup_version {
            CgroupVersion::Auto => match layout() {
                Ok(CgroupLayout::Unified) => CgroupVersion::V2,
                Ok(_) => CgroupVersion::V1,
                Err(e) => {
                    return Err(Error::CgroupUnavailable(format!(
                        "cannot detect the cgroup layout: {e}"
                    )))
                }
            },
            v => v,
        };
        let name = unique_name();
        let backend = match version {
            CgroupVersion::V2 => Backend::V2(v2::V2Cgroup::create(limits, &name, mode)?),
            _ => Backend::V1(v1::V1Cgroup::create(limits, &name, mode)?),
        };
        Ok(Cgroup {
            backend,
            released: Mutex::new(false),
        })
    }

    /// The file of every directory the child must join, opened for writing; the child
    /// writes `"0"` (itself) to each.
    ///
    /// On v1 that is `tasks`, which moves one thread, not `cgroup.procs`, which moves a
    /// thread group: the child is a process of one thread, so both move all of it, but the
    /// kernel moves the calling thread without taking its global threadgroup lock, whose
    /// write side waits for an RCU grace period unless another move happened just before
    /// (measured here: 10–14 ms per join with moves 20 ms apart through `cgroup.procs`,
    /// ~0.1 ms through `tasks`). v2's `cgroup.threads` only works in threaded subtrees, so
    /// v2 keeps `cgroup.procs`.
    pub(crate) fn open_procs(&self) -> Result<Vec<OwnedFd>> {
        let file = if self.is_v2() {
            "cgroup.procs"
        } else {
            "tasks"
        };
        self.dirs()
            .iter()
            .map(|d| {
                let p = d.join(file);
                fs::OpenOptions::new()
                    .write(true)
                    .open(&p)
                    .map(OwnedFd::from)
                    .map_err(|e| cg_err("open", &p, e))
            })
            .collect()
    }

    /// The container's directories (one per hierarchy on v1, one on v2).
    pub(crate) fn dirs(&self) -> Vec<PathBuf> {
        match &self.backend {
            Backend::V1(c) => c.dirs(),
            Backend::V2(c) => vec![c.dir().to_path_buf()],
        }
    }

    /// Whether this is a v2 cgroup.
    pub(crate) fn is_v2(&self) -> bool {
        matches!(self.backend, Backend::V2(_))
    }

    /// SIGKILLs every process in the cgroup, grandchildren and escaped daemons included.
    /// v2: `cgroup.kill`; v1: freeze, kill each task, thaw.
    pub(crate) fn kill_all(&self) -> io::Result<()> {
        match &self.backend {
            Backend::V1(c) => c.kill_all(),
            Backend::V2(c) => c.kill_all(),
        }
    }

    /// Sends `sig` to every process in the cgroup, frozen while we list and signal them so
    /// that none can exit (and have its pid reused) or fork in between.
    pub(crate) fn signal_all(&self, sig: libc::c_int) -> io::Result<()> {
        match &self.backend {
            Backend::V1(c) => c.signal_all(sig),
            Backend::V2(c) => c.signal_all(sig),
        }
    }

    /// Reads the accounting files.
    pub(crate) fn stats(&self) -> Stats {
        match &self.backend {
            Backend::V1(c) => c.stats(),
            Backend::V2(c) => c.stats(),
        }
    }

    /// Kills whatever is still inside and removes the directories. Idempotent. Does not
    /// block: if processes are still dying, a short-lived thread finishes the removal.
    pub(crate) fn release(&self) {
        let mut released = self.released.lock().unwrap_or_else(|e| e.into_inner());
        if *released {
            return;
        }
        *released = true;
        let dirs = self.dirs();
        if remove_dirs(&dirs).is_ok() {
            self.release_parents();
            return;
        }
        // Something is still inside (a grandchild that outlived the first process, or one
        // still exiting): the container is over, so everything in it goes. Killing polls
        // the freezer and waits for the dying, so it runs on a thread of its own rather
        // than on the caller's (often a tokio worker).
        let parents = self.parents();
        let doomed = Cgroup {
            backend: self.backend.clone(),
            released: Mutex::new(true),
        };
        let spawned = std::thread::Builder::new()
            .name("cellblock-cgroup-rm".into())
            .spawn(move || {
                let _ = doomed.kill_all();
                if remove_dirs_retrying(&dirs, Duration::from_secs(10)) {
                    parents.iter().for_each(|p| release_parent(p));
                }
            });
        if spawned.is_err() {
            tracing::warn!("could not start a thread to remove a busy cgroup");
        }
    }

    fn parents(&self) -> Vec<PathBuf> {
        self.dirs()
            .iter()
            .filter_map(|d| d.parent().map(Path::to_path_buf))
            .collect()
    }

    fn release_parents(&self) {
        self.parents().iter().for_each(|p| release_parent(p));
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        self.release();
    }
}

/// `<supervisor pid>-<counter>`: unique among live cgroups on the machine, since pids are.
fn unique_name() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Removes each directory that still exists; `Err` if any is still busy.
fn remove_dirs(dirs: &[PathBuf]) -> io::Result<()> {
    let mut last = Ok(());
    for d in dirs {
        match fs::remove_dir(d) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => last = Err(e),
        }
    }
    last
}

/// Retries [`remove_dirs`] until it succeeds or `limit` passes. Blocking.
pub(crate) fn remove_dirs_retrying(dirs: &[PathBuf], limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    let mut pause = Duration::from_millis(1);
    loop {
        match remove_dirs(dirs) {
            Ok(()) => return true,
            Err(e) if Instant::now() >= deadline => {
                tracing::warn!(?dirs, error = %e, "could not remove a container's cgroup");
                return false;
            }
            Err(_) => {}
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

// ---------------------------------------------------------------------------------------
// The shared `cellblock` parent directories.
//
// Each hierarchy gets one `<base>/cellblock` directory holding the containers' cgroups. We
// count our own users of each. One made by this process stays while the process lives, so
// that a supervisor running one container after another does not make and remove it for
// each (a `mkdir` and an `rmdir` of a cgroup: about 0.07 ms of a 2 ms spawn here); it is
// removed when the process exits (`atexit`), if nobody else's cgroups are in it. Another
// process may remove it between our check and our `mkdir` of a leaf; `create_leaf` then
// recreates it.

static PARENTS: Mutex<BTreeMap<PathBuf, usize>> = Mutex::new(BTreeMap::new());

/// Makes sure `parent` exists (running `init` on it) and counts one user.
pub(crate) fn acquire_parent(parent: &Path, init: &dyn Fn(&Path) -> Result<()>) -> Result<()> {
    let mut map = PARENTS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(count) = map.get_mut(parent) {
        *count += 1;
        return Ok(());
    }
    make_parent(parent, init)?;
    map.insert(parent.to_path_buf(), 1);
    remove_parents_at_exit();
    sweep_dead_supervisors(parent);
    Ok(())
}

/// Removes what supervisors that died without cleaning up (SIGKILL) left in `parent`:
/// empty container cgroups named `<pid>-<n>` whose supervisor `pid` no longer exists.
/// Once per parent and process. A live process with that pid (reused) keeps them; a
/// cgroup with processes inside cannot be removed (EBUSY), so nothing running is touched.
fn sweep_dead_supervisors(parent: &Path) {
    let Ok(entries) = fs::read_dir(parent) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.split_once('-'))
            .and_then(|(pid, n)| n.parse::<u64>().ok().and(pid.parse::<u32>().ok()))
        else {
            continue;
        };
        if pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        if fs::remove_dir(e.path()).is_ok() {
            tracing::debug!(dir = %e.path().display(), "removed a dead supervisor's cgroup");
        }
    }
}

/// `mkdir parent` (if missing) and `init` it; a directory made here is removed again if
/// `init` fails.
fn make_parent(parent: &Path, init: &dyn Fn(&Path) -> Result<()>) -> Result<()> {
    let made = match fs::create_dir(parent) {
        Ok(()) => true,
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => false,
        Err(e) => return Err(cg_err("create", parent, e)),
    };
    init(parent).inspect_err(|_| {
        if made {
            let _ = fs::remove_dir(parent);
        }
    })
}

/// Drops one user of `parent`. The directory itself stays until the process exits.
pub(crate) fn release_parent(parent: &Path) {
    let mut map = PARENTS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(count) = map.get_mut(parent) {
        *count = count.saturating_sub(1);
    }
}

/// Registers (once) the exit handler that removes the parents this process used: an
/// `rmdir` each, which the kernel refuses (EBUSY) while any cgroup is still in one, ours
/// (a container still running at exit) or another process's.
fn remove_parents_at_exit() {
    extern "C" fn remove_parents() {
        // try_lock: exit() may run while another thread holds the lock; then leave them.
        let map = match PARENTS.try_lock() {
            Ok(m) => m,
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => return,
        };
        for parent in map.keys() {
            let _ = fs::remove_dir(parent);
        }
    }
    static REGISTERED: std::sync::Once = std::sync::Once::new();
    REGISTERED.call_once(|| {
        // SAFETY: registers a handler with C linkage that neither unwinds nor blocks.
        if unsafe { libc::atexit(remove_parents) } != 0 {
            tracing::warn!("could not register the removal of the cgroup parents at exit");
        }
    });
}

/// `mkdir parent/name`, recreating `parent` if another process removed it meanwhile.
pub(crate) fn create_leaf(
    parent: &Path,
    name: &str,
    init: &dyn Fn(&Path) -> Result<()>,
) -> Result<PathBuf> {
    let leaf = parent.join(name);
    for _ in 0..5 {
        match fs::create_dir(&leaf) {
            Ok(()) => return Ok(leaf),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let _guard = PARENTS.lock().unwrap_or_else(|e| e.into_inner());
                make_parent(parent, init)?;
            }
            Err(e) => return Err(cg_err("create", &leaf, e)),
        }
    }
    Err(cg_err(
        "create",
        &leaf,
        io::Error::other("its parent keeps disappearing"),
    ))
}

// ---------------------------------------------------------------------------------------
// Where the hierarchies are mounted and where we sit in them.

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

// ---------------------------------------------------------------------------------------
// Small file helpers shared by the backends.

/// Writes `value` to a cgroup control file (one `write`, as the kernel expects).
pub(crate) fn write(path: &Path, value: &str) -> io::Result<()> {
    use std::io::Write;
    let mut f = fs::OpenOptions::new().write(true).open(path)?;
    f.write_all(value.as_bytes())
}

/// Like [`write`], mapping failure to a typed error naming the file.
pub(crate) fn write_setting(dir: &Path, file: &str, value: &str) -> Result<()> {
    let p = dir.join(file);
    write(&p, value).map_err(|e| match e.raw_os_error() {
        Some(libc::ENOENT) => Error::CgroupUnavailable(format!(
            "{} does not exist: the controller or feature behind it is not available here",
            p.display()
        )),
        _ => Error::CgroupSetting {
            path: p.clone(),
            value: value.to_owned(),
            source: e,
        },
    })
}

/// Reads a single-number file such as `memory.max_usage_in_bytes`.
pub(crate) fn read_u64(path: &Path) -> Option<u64> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Reads `key` from a flat keyed file (`key value` lines) such as `cpu.stat`.
pub(crate) fn read_keyed(path: &Path, key: &str) -> Option<u64> {
    let text = fs::read_to_string(path).ok()?;
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok())?
    })
}

/// The pids listed in a `cgroup.procs` file.
pub(crate) fn read_pids(path: &Path) -> io::Result<Vec<libc::pid_t>> {
    Ok(fs::read_to_string(path)?
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect())
}

/// `kill(pid, sig)` for each pid. The pids come from a frozen cgroup (or one whose
/// processes cannot be reaped by anyone but us before we signal), see the callers.
pub(crate) fn kill_pids(pids: &[libc::pid_t], sig: libc::c_int) {
    for &pid in pids {
        if pid > 0 {
            // SAFETY: plain syscall. man 2 kill.
            unsafe { libc::kill(pid, sig) };
        }
    }
}

/// A typed error for a failed cgroup filesystem operation, with a hint for the rootless
/// case.
pub(crate) fn cg_err(action: &'static str, path: &Path, source: io::Error) -> Error {
    Error::Cgroup {
        action,
        path: path.to_path_buf(),
        source,
    }
}

/// Polls `done` for up to `limit`, sleeping briefly between tries. Blocking.
pub(crate) fn poll_until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    let mut pause = Duration::from_micros(200);
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(10));
    }
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
