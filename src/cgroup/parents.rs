//! The shared `cellblock` parent directories.
//!
//! Each hierarchy gets one `<base>/cellblock` directory holding the containers' cgroups. We
//! count our own users of each. One made by this process stays while the process lives, so
//! that a supervisor running one container after another does not make and remove it for
//! each (a `mkdir` and an `rmdir` of a cgroup more per spawn); it is removed when the
//! process exits (`atexit`), if nobody else's cgroups are in it. Another process may remove
//! it between our check and our `mkdir` of a leaf; `create_leaf` then recreates it.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::error::Result;
use crate::sys;

use super::files::cg_err;

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
        // `remove_parents` neither unwinds nor blocks (try_lock), as atexit requires.
        if sys::atexit(remove_parents).is_err() {
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
