//! Containers that outlive the process that made them ([`Created::detach`]): found again by
//! pid and start time, started through their FIFO, signalled through a pidfd, paused and
//! listed through their cgroup, and destroyed. What an OCI runtime's `start`, `kill`,
//! `pause`, `ps`, `state` and `delete` do, each from a process of its own.
//!
//! A pid alone could be recycled between two calls; every operation first checks that the
//! pid still has the recorded start time (field 22 of `/proc/PID/stat`), and signals go
//! through a pidfd opened *before* that check, so the process checked is the one signalled.

use std::fs;
use std::io;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{Error, Result};
#[cfg(doc)]
use crate::handle::create::Created;
use crate::{sys, Signal};

/// A container no `Container` handle owns: made by [`Created::detach`], or rebuilt from
/// its fields (which are plain data, for a state file) by a later process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detached {
    /// Its first process's pid, in the PID namespace of the process that created it.
    pub pid: i32,
    /// That process's start time (field 22 of `/proc/PID/stat`, clock ticks after boot):
    /// a recycled pid has another.
    pub start_time: u64,
    /// Its cgroup directories (absolute host paths; one per v1 hierarchy, or one on v2).
    pub cgroup_dirs: Vec<PathBuf>,
    /// Its start FIFO, while it waits at its start gate.
    pub start_fifo: Option<PathBuf>,
}

/// What a [`Detached`] container is doing, in OCI's terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DetachedState {
    /// Set up, waiting at its start gate.
    Created,
    /// Started and running.
    Running,
    /// Frozen by [`Detached::pause`].
    Paused,
    /// Its first process has exited (or its pid now names another process).
    Stopped,
}

/// The start time of process `pid` (field 22 of `/proc/PID/stat`).
pub(crate) fn start_time(pid: i32) -> io::Result<u64> {
    stat_fields(pid)
        .map(|(_, t)| t)
        .ok_or_else(|| io::Error::from_raw_os_error(libc::ESRCH))
}

/// `(state letter, start time)` of process `pid`, if it exists.
fn stat_fields(pid: i32) -> Option<(char, u64)> {
    parse_stat(&fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// `(state, start time)` from the text of a `/proc/PID/stat`.
fn parse_stat(stat: &str) -> Option<(char, u64)> {
    // The command name (field 2) may hold spaces and parentheses: fields resume after
    // the last ')'. There, field 3 (the state) is the first.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let start = fields.nth(22 - 4)?.parse().ok()?;
    Some((state, start))
}

impl Detached {
    /// Whether the first process still runs (exists, has the recorded start time, and is
    /// not a zombie waiting for its parent to reap it).
    fn alive(&self) -> bool {
        matches!(stat_fields(self.pid), Some((s, t)) if t == self.start_time && s != 'Z' && s != 'X')
    }

    /// What the container is doing now.
    pub fn state(&self) -> DetachedState {
        if !self.alive() {
            return DetachedState::Stopped;
        }
        if self.frozen() {
            return DetachedState::Paused;
        }
        if self.at_gate() {
            DetachedState::Created
        } else {
            DetachedState::Running
        }
    }

    /// Whether the first process still holds its start FIFO open, i.e. waits at the gate
    /// (the descriptor is close-on-exec, so `execve` drops it). Where its descriptors
    /// cannot be read (another user's process), whether the FIFO still exists.
    fn at_gate(&self) -> bool {
        use std::os::unix::fs::MetadataExt;
        let Some(fifo) = self.start_fifo.as_ref().and_then(|f| fs::metadata(f).ok()) else {
            return false;
        };
        let Ok(fds) = fs::read_dir(format!("/proc/{}/fd", self.pid)) else {
            return true;
        };
        fds.flatten().any(|fd| {
            fs::metadata(fd.path()).is_ok_and(|m| m.dev() == fifo.dev() && m.ino() == fifo.ino())
        })
    }

    /// Lets a created container through its start gate (one byte into its FIFO), then
    /// removes the FIFO. [`Error::NotCreated`] if it does not wait there (started
    /// already, or gone). Whether its `execve` then succeeds is for its exit status to
    /// say: the process that could read the setup report detached.
    pub fn start(&self) -> Result<()> {
        let not = |reason: String| Error::NotCreated {
            pid: self.pid,
            reason,
        };
        let Some(fifo) = &self.start_fifo else {
            return Err(not("it has no start FIFO".into()));
        };
        if !self.alive() {
            return Err(not("it is not running".into()));
        }
        match crate::plan::session::release_fifo(fifo) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(not(format!("{} is gone: started already", fifo.display())))
            }
            Err(e) if e.raw_os_error() == Some(libc::ENXIO) => {
                return Err(not(format!("nothing reads {}", fifo.display())))
            }
            Err(e) => return Err(Error::io("writing the start FIFO")(e)),
        }
        let _ = fs::remove_file(fifo);
        Ok(())
    }

    /// Sends `sig` to the container's first process (through a pidfd, checked against
    /// the start time). [`Error::NotRunning`] if it is gone.
    pub fn signal(&self, sig: Signal) -> Result<()> {
        let gone = || Error::NotRunning { pid: self.pid };
        let pidfd = sys::pidfd_open(self.pid).map_err(|_| gone())?;
        // Opened first, checked second: the pidfd pins the process we checked.
        if !self.alive() {
            return Err(gone());
        }
        sys::pidfd_send_signal(pidfd.as_fd(), sig as libc::c_int).map_err(|e| {
            match e.raw_os_error() {
                Some(libc::ESRCH) => gone(),
                _ => Error::io("signalling the container")(e),
            }
        })
    }

    /// Sends `sig` to every process in the container's cgroup, frozen meanwhile where a
    /// freezer is available (so none can fork or exit and have its pid reused in between).
    /// Without a cgroup, to the first process only.
    pub fn signal_all(&self, sig: Signal) -> Result<()> {
        let Some(procs) = self.procs_file() else {
            return self.signal(sig);
        };
        // An empty cgroup stays empty (a process enters it by forking from a member, or
        // by being moved in, which a freeze would not stop either): nothing to freeze or
        // signal. The common case at `delete`, and freezing is not free: the first frozen
        // cgroup of the host turns a kernel static key on, patching kernel text (and the
        // thaw patches it back), about 3% of the CPU time of an OCI `run` here.
        match crate::cgroup::read_pids(&procs) {
            Ok(pids) if pids.is_empty() => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            _ => {}
        }
        let was_frozen = self.frozen();
        let freezer = self.freezer();
        if let Some(f) = &freezer {
            f.set(true);
        }
        let pids = crate::cgroup::read_pids(&procs);
        if let Ok(pids) = &pids {
            crate::cgroup::kill_pids(pids, sig as libc::c_int);
        }
        if let Some(f) = &freezer {
            if !was_frozen {
                f.set(false);
            }
        }
        pids.map(drop)
            .map_err(|e| crate::cgroup::cg_err("read", &procs, e))
    }

    /// The host pids of every process in the container's cgroup (the first process alone
    /// without a cgroup; none once it is gone).
    pub fn pids(&self) -> Result<Vec<i32>> {
        match self.procs_file() {
            Some(procs) => match crate::cgroup::read_pids(&procs) {
                Ok(p) => Ok(p),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
                Err(e) => Err(crate::cgroup::cg_err("read", &procs, e)),
            },
            None if self.alive() => Ok(vec![self.pid]),
            None => Ok(Vec::new()),
        }
    }

    /// Freezes every process of the container (v1 `freezer.state`, v2 `cgroup.freeze`),
    /// returning once they are frozen.
    pub fn pause(&self) -> Result<()> {
        self.set_frozen(true)
    }

    /// Thaws a paused container.
    pub fn resume(&self) -> Result<()> {
        self.set_frozen(false)
    }

    fn set_frozen(&self, frozen: bool) -> Result<()> {
        if !self.alive() {
            return Err(Error::NotRunning { pid: self.pid });
        }
        let f = self.freezer().ok_or_else(|| {
            Error::CgroupUnavailable(format!(
                "the container (pid {}) has no freezer among its cgroups {:?}",
                self.pid, self.cgroup_dirs
            ))
        })?;
        if f.set(frozen) {
            Ok(())
        } else {
            Err(Error::CgroupUnavailable(format!(
                "{} did not reach the {} state",
                f.file.display(),
                if frozen { "frozen" } else { "thawed" }
            )))
        }
    }

    /// Kills every process of the container (SIGKILL, its cgroup thawed so the signal is
    /// delivered), waits (up to 10 s) until they are gone, and removes its cgroup
    /// directories and start FIFO. Idempotent: fine on a container that already exited,
    /// or whose directories are gone. The first process itself is not reaped: that is
    /// for its parent (the subreaper it was reparented to).
    pub fn destroy(&self) -> Result<()> {
        if self.alive() {
            let _ = self.signal(Signal::SIGKILL);
        }
        if self.procs_file().is_some() {
            let _ = self.signal_all(Signal::SIGKILL);
            if let Some(f) = self.freezer() {
                f.set(false);
            }
        }
        let dirs: Vec<PathBuf> = self
            .cgroup_dirs
            .iter()
            .filter(|d| d.exists())
            .cloned()
            .collect();
        let removed = crate::cgroup::remove_dirs_retrying(&dirs, Duration::from_secs(10));
        if let Some(f) = &self.start_fifo {
            let _ = fs::remove_file(f);
        }
        if removed {
            Ok(())
        } else {
            Err(Error::CgroupUnavailable(format!(
                "the container's cgroups {dirs:?} still hold processes after SIGKILL"
            )))
        }
    }

    /// The `cgroup.procs` that lists the container's processes (any of its directories).
    fn procs_file(&self) -> Option<PathBuf> {
        self.cgroup_dirs
            .iter()
            .map(|d| d.join("cgroup.procs"))
            .find(|p| p.exists())
    }

    fn freezer(&self) -> Option<Freezer> {
        self.cgroup_dirs.iter().find_map(|d| Freezer::of(d))
    }

    fn frozen(&self) -> bool {
        self.freezer().is_some_and(|f| f.is_frozen())
    }
}

/// A cgroup's freezer: v1's `freezer.state` or v2's `cgroup.freeze`.
struct Freezer {
    file: PathBuf,
    v2: bool,
}

impl Freezer {
    fn of(dir: &Path) -> Option<Freezer> {
        let v1 = dir.join("freezer.state");
        if v1.exists() {
            return Some(Freezer {
                file: v1,
                v2: false,
            });
        }
        let v2 = dir.join("cgroup.freeze");
        v2.exists().then_some(Freezer { file: v2, v2: true })
    }

    fn is_frozen(&self) -> bool {
        let s = fs::read_to_string(&self.file).unwrap_or_default();
        match self.v2 {
            true => s.trim() == "1",
            false => s.trim() == "FROZEN",
        }
    }

    /// Writes the state and waits (up to 2 s) until the kernel reports it.
    fn set(&self, frozen: bool) -> bool {
        let value = match (self.v2, frozen) {
            (true, true) => "1",
            (true, false) => "0",
            (false, true) => "FROZEN",
            (false, false) => "THAWED",
        };
        if fs::write(&self.file, value).is_err() {
            return false;
        }
        let events = self.file.with_file_name("cgroup.events");
        crate::cgroup::poll_until(Duration::from_secs(2), || match self.v2 {
            // v2: cgroup.freeze is the wish; `frozen` in cgroup.events is the fact.
            true => fs::read_to_string(&events)
                .map(|e| {
                    e.lines()
                        .any(|l| l == format!("frozen {}", u8::from(frozen)))
                })
                .unwrap_or(false),
            false => self.is_frozen() == frozen,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_survive_a_command_name_with_parentheses_and_spaces() {
        // A process can name itself anything (PR_SET_NAME): fields resume after the last
        // ')'. Fields 3..=22 of a real line, with comm "a) (b c".
        let line = "4242 (a) (b c) S 1 4242 4242 0 -1 4194560 136 0 0 0 0 0 0 0 20 0 1 0 \
                    987654 2236416 215 18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 0 17 1";
        assert_eq!(parse_stat(line), Some(('S', 987654)));
        assert_eq!(parse_stat("4242 (no end"), None);
        assert_eq!(parse_stat("4242 (x) S 1"), None);
        let me = std::process::id() as i32;
        let own = fs::read_to_string("/proc/self/stat").unwrap();
        let fields: Vec<&str> = own.rsplit_once(')').unwrap().1.split_whitespace().collect();
        assert_eq!(start_time(me).unwrap().to_string(), fields[22 - 3]);
        assert!(start_time(-1).is_err());
    }

    #[test]
    fn a_recycled_pid_is_not_the_container() {
        let me = std::process::id() as i32;
        let d = Detached {
            pid: me,
            start_time: start_time(me).unwrap() + 1,
            cgroup_dirs: Vec::new(),
            start_fifo: None,
        };
        assert_eq!(d.state(), DetachedState::Stopped);
        assert!(matches!(d.signal(Signal::SIGCONT), Err(Error::NotRunning { pid }) if pid == me));
        assert!(matches!(d.start(), Err(Error::NotCreated { .. })));
        assert_eq!(d.pids().unwrap(), Vec::<i32>::new());
    }
}
