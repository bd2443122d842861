//! One container's cgroup: [`Cgroup`], over either backend.

use std::fs;
use std::io;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::builder::limits::LimitsConfig;
use crate::error::{Error, Result};

use super::files::cg_err;
use super::layout::{self, CgroupLayout};
use super::parents::release_parent;
use super::{v1, v2, CgroupVersion, Mode, Stats};

/// A container's cgroup, on either backend.
#[derive(Debug)]
pub(crate) struct Cgroup {
    backend: Backend,
    /// Set once the directories are gone (or handed to a background remover), or kept
    /// for a detached container ([`Cgroup::keep`]).
    released: Mutex<bool>,
    /// At a path of the caller's (`cgroup_path`): no shared `cellblock` parent to release.
    explicit: bool,
}

#[derive(Debug, Clone)]
enum Backend {
    V1(v1::V1Cgroup),
    V2(v2::V2Cgroup),
}

impl Cgroup {
    /// Creates the container's cgroup and writes its limits (the caller's, and the
    /// default budget's where the caller set none). On error nothing is left.
    pub(crate) fn create(limits: &LimitsConfig) -> Result<Cgroup> {
        Cgroup::create_as(limits, Mode::Full)
    }

    /// The default budget alone, for a container with no limit of the caller's: the
    /// `pids` cgroup with [`DEFAULT_PIDS_LIMIT`](crate::DEFAULT_PIDS_LIMIT), on v1 or v2. No accounting
    /// controllers, to keep the spawn cheap. On error nothing is left, and the caller goes
    /// on without a cgroup.
    pub(crate) fn create_budget(limits: &LimitsConfig) -> Result<Cgroup> {
        Cgroup::create_as(limits, Mode::Budget)
    }

    fn create_as(limits: &LimitsConfig, mode: Mode) -> Result<Cgroup> {
        let version = match limits.cgroup_version {
            CgroupVersion::Auto => match layout::layout() {
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
            // A joined cgroup is another container's: never removed or emptied by us.
            released: Mutex::new(limits.cgroup_join),
            explicit: limits.placed(),
        })
    }

    /// The file of every directory the child must join, opened for writing; the child
    /// writes `"0"` (itself) to each.
    ///
    /// On v1 that is `tasks`, which moves one thread, not `cgroup.procs`, which moves a
    /// thread group: the child is a process of one thread, so both move all of it, but the
    /// kernel moves the calling thread without taking its global threadgroup lock, whose
    /// write side waits for an RCU grace period unless another move happened just before
    /// (milliseconds per join, against a fraction of one through `tasks`). v2's
    /// `cgroup.threads` only works in threaded subtrees, so v2 keeps `cgroup.procs`.
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
            explicit: self.explicit,
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

    /// Leaves the directories in place for good (a detached container, which someone
    /// else destroys later): neither `release` nor `Drop` touches them any more.
    pub(crate) fn keep(&self) {
        *self.released.lock().unwrap_or_else(|e| e.into_inner()) = true;
    }

    fn parents(&self) -> Vec<PathBuf> {
        if self.explicit {
            return Vec::new();
        }
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
