//! Small file helpers shared by the backends.

use std::fs;
use std::io;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::sys;

/// Writes `value` to a cgroup control file (one `write`, as the kernel expects).
pub(crate) fn write(path: &Path, value: &str) -> io::Result<()> {
    use std::io::Write;
    let mut f = fs::OpenOptions::new().write(true).open(path)?;
    f.write_all(value.as_bytes())
}

/// Like [`write()`], mapping failure to a typed error naming the file.
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
            let _ = sys::kill(pid, sig);
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
