//! The per-container state directory `ROOT/ID/`: `state.json` (what a later call needs to
//! find the container again, see [`State`]), the start FIFO `exec.fifo`, and the lock.
//!
//! Every verb takes an exclusive `flock` on `ROOT/ID` for as long as it works on the
//! container, so a `delete` cannot remove the state under a `start` or a `kill` running at
//! the same time (the shim and conmon may call the runtime concurrently).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// Why the state directory could not be used.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The id is empty, too long, or holds characters other than `[A-Za-z0-9_+.-]` (runc's
    /// rule; it keeps the id a single path component).
    #[error("invalid container id {0:?}: use 1 to 1024 of the characters A-Z a-z 0-9 _ + - . (not only dots)")]
    BadId(String),
    /// `create` of an id that has a state directory already.
    #[error("container ID already exists: {0}")]
    Exists(String),
    /// No state directory for the id.
    #[error("container does not exist: {0}")]
    NotFound(String),
    /// A file of the state directory could not be read or written.
    #[error("{what} {}: {source}", path.display())]
    Io {
        /// What was being done.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// `state.json` is not what this version writes.
    #[error("corrupt state file {}: {source}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// The parse error.
        source: serde_json::Error,
    },
}

fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> StateError {
    let path = path.to_path_buf();
    move |source| StateError::Io { what, path, source }
}

/// What `state.json` holds: the library's [`cellblock::Detached`] fields, and what the OCI
/// `state` verb and the hooks report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct State {
    /// The container id.
    pub id: String,
    /// The bundle directory (absolute).
    pub bundle: PathBuf,
    /// The init's host pid ([`cellblock::Detached::pid`]).
    pub pid: i32,
    /// Field 22 of `/proc/PID/stat` when the container was created.
    pub start_time: u64,
    /// The container's cgroup directories (absolute host paths).
    pub cgroup_dirs: Vec<PathBuf>,
    /// The start FIFO while the container waits at its gate.
    pub start_fifo: Option<PathBuf>,
    /// When `create` ran, RFC 3339 (UTC).
    pub created: String,
    /// `config.json`'s annotations.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// The last status this runtime recorded (`created`, `running`); the live one comes
    /// from the library ([`cellblock::Detached::state`]).
    pub status: String,
    /// `config.json`'s hooks: `poststop` runs at `delete`, when the bundle may be gone.
    #[serde(default)]
    pub hooks: Option<oci_spec::runtime::Hooks>,
}

/// Checks `id` the way runc does (`^[\w+-\.]+$`), and refuses `.` and `..`.
pub fn check_id(id: &str) -> Result<(), StateError> {
    let ok_chars = id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"_+-.".contains(&b));
    if id.is_empty() || id.len() > 1024 || !ok_chars || id.bytes().all(|b| b == b'.') {
        return Err(StateError::BadId(id.to_string()));
    }
    Ok(())
}

/// The locked state directory of one container. The lock is released when this is dropped
/// (or the process exits).
///
/// The lock is a `flock` on an open file description of the directory: a process forked
/// while we hold it (the library's `create` forks the container, which keeps our
/// descriptors until its `execve`) would share the description and so the lock. `create`
/// therefore lets go of it around the fork ([`Dir::unlock_for_fork`], [`Dir::relock`]).
#[derive(Debug)]
pub struct Dir {
    pub path: PathBuf,
    pub id: String,
    lock: Option<File>,
}

impl Dir {
    /// Makes `root/id` (and `root`, mode 0700) for a new container and locks it. An
    /// existing directory is [`StateError::Exists`]: the atomic `mkdir` is what refuses a
    /// duplicate id, even between two concurrent `create`s.
    pub fn create(root: &Path, id: &str) -> Result<Dir, StateError> {
        check_id(id)?;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(root)
            .map_err(io("creating the state root", root))?;
        let path = root.join(id);
        match std::fs::DirBuilder::new().mode(0o700).create(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(StateError::Exists(id.to_string()))
            }
            r => r.map_err(io("creating the state directory", &path))?,
        }
        Dir::lock(path, id)
    }

    /// Locks the existing state directory `root/id`; [`StateError::NotFound`] without one.
    pub fn open(root: &Path, id: &str) -> Result<Dir, StateError> {
        check_id(id)?;
        let path = root.join(id);
        if !path.is_dir() {
            return Err(StateError::NotFound(id.to_string()));
        }
        let dir = Dir::lock(path, id)?;
        // A `delete` that held the lock before us removed the directory.
        if !dir.path.is_dir() {
            return Err(StateError::NotFound(id.to_string()));
        }
        Ok(dir)
    }

    fn lock(path: PathBuf, id: &str) -> Result<Dir, StateError> {
        let f = lock_dir(&path)?;
        Ok(Dir {
            path,
            id: id.to_string(),
            lock: Some(f),
        })
    }

    /// Closes the lock's descriptor before a fork that must not inherit it. Until
    /// [`relock`](Self::relock), another verb may lock the directory: it then finds no
    /// `state.json` yet, and refuses to act on a container being created.
    pub fn unlock_for_fork(&mut self) {
        self.lock = None;
    }

    /// Lets other verbs lock the directory while this process still uses it (a foreground
    /// `run`: `state`, `kill`, `pause` and `delete` act on its container meanwhile).
    pub fn unlock(&mut self) {
        self.lock = None;
    }

    /// Takes the lock again, on a new descriptor, after [`unlock_for_fork`](Self::unlock_for_fork)
    /// or [`unlock`](Self::unlock).
    pub fn relock(&mut self) -> Result<(), StateError> {
        self.lock = Some(lock_dir(&self.path)?);
        Ok(())
    }

    /// `ROOT/ID/state.json`.
    pub fn state_file(&self) -> PathBuf {
        self.path.join("state.json")
    }

    /// `ROOT/ID/exec.fifo`: the start FIFO the library makes at `create`.
    pub fn fifo(&self) -> PathBuf {
        self.path.join("exec.fifo")
    }

    /// Whether `state.json` exists (a `create` that died half-way leaves none).
    pub fn has_state(&self) -> bool {
        self.state_file().exists()
    }

    /// Reads `state.json`.
    pub fn load(&self) -> Result<State, StateError> {
        let path = self.state_file();
        let text = match std::fs::read(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(StateError::NotFound(self.id.clone()))
            }
            r => r.map_err(io("reading", &path))?,
        };
        serde_json::from_slice(&text).map_err(|source| StateError::Corrupt { path, source })
    }

    /// Writes `state.json` (a temporary file renamed over it: a reader never sees half).
    pub fn save(&self, state: &State) -> Result<(), StateError> {
        let json = serde_json::to_vec_pretty(state).expect("State serializes");
        write_atomic(&self.state_file(), &json, 0o600)
    }

    /// `ROOT/ID/config.json`: the container's config as `create` read it.
    fn config_file(&self) -> PathBuf {
        self.path.join("config.json")
    }

    /// Keeps a copy of the container's config, the bytes `create` parsed (`exec` applies
    /// its seccomp profile to the processes it adds, and the bundle may be changed or gone
    /// by then).
    pub fn save_config(&self, config_json: &[u8]) -> Result<(), StateError> {
        write_atomic(&self.config_file(), config_json, 0o600)
    }

    /// The copy [`save_config`](Self::save_config) kept.
    pub fn load_config(&self) -> Result<oci_spec::runtime::Spec, StateError> {
        let path = self.config_file();
        let text = std::fs::read(&path).map_err(io("reading", &path))?;
        serde_json::from_slice(&text).map_err(|source| StateError::Corrupt { path, source })
    }

    /// Removes the directory and everything in it. The lock goes with `self`.
    pub fn remove(self) -> Result<(), StateError> {
        match std::fs::remove_dir_all(&self.path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            r => r.map_err(io("removing the state directory", &self.path)),
        }
    }
}

/// Opens `path` (a directory) and takes an exclusive `flock` on it, waiting for it.
fn lock_dir(path: &Path) -> Result<File, StateError> {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open(path)
        .map_err(io("opening the state directory", path))?;
    // SAFETY: flock(2) on a descriptor we own; it blocks until the lock is ours.
    if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } != 0 {
        return Err(io("locking", path)(std::io::Error::last_os_error()));
    }
    Ok(f)
}

/// The ids under `root` that have a state file, sorted.
pub fn list(root: &Path) -> Vec<String> {
    let mut ids: Vec<String> = std::fs::read_dir(root)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().join("state.json").is_file())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    ids.sort();
    ids
}

/// Writes `data` to `path` through a temporary file in the same directory and a rename,
/// as runc writes its pid file: a caller polling `path` sees nothing or everything.
pub fn write_atomic(path: &Path, data: &[u8], mode: u32) -> Result<(), StateError> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
    let tmp = path.with_file_name(format!(
        ".{}.{}",
        name.unwrap_or_default(),
        std::process::id()
    ));
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .custom_flags(libc::O_CLOEXEC)
            .open(&tmp)?;
        f.write_all(data)?;
        // No fsync: the rename makes the update atomic for every reader, which is what
        // the verbs need; durability across a crash is not (the state describes processes,
        // which a crash ends; its default home /run is a tmpfs). An fsync cost 1-10 ms per
        // write on this VM's ext4 under load, three times per `run`.
        std::fs::rename(&tmp, path)
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        io("writing", path)(e)
    })
}

/// `t` as RFC 3339 in UTC with nanoseconds, e.g. `2026-12-02T21:16:39.123456789Z` (the
/// form runc writes in its state and logs).
pub fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    let (y, m, day) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}.{:09}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        d.subsec_nanos()
    )
}

/// Days since 1970-01-01 -> (year, month, day) in the proleptic Gregorian calendar
/// (Howard Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("cellblock-state-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    fn sample(id: &str) -> State {
        State {
            id: id.into(),
            bundle: "/b".into(),
            pid: 42,
            start_time: 7,
            cgroup_dirs: vec!["/sys/fs/cgroup/pids/x".into()],
            start_fifo: Some("/r/x/exec.fifo".into()),
            created: rfc3339(SystemTime::now()),
            annotations: [("k".to_string(), "v".to_string())].into(),
            status: "created".into(),
            hooks: None,
        }
    }

    #[test]
    fn rfc3339_known_instants() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000000000Z");
        // `date -u -d @1796332599` = Thu Dec  3 21:16:39 UTC 2026; a leap day; a year end.
        let at = |s: u64, n: u32| rfc3339(UNIX_EPOCH + Duration::new(s, n));
        assert_eq!(at(1_796_332_599, 5), "2026-12-03T21:16:39.000000005Z");
        assert_eq!(at(951_782_400, 0), "2000-02-29T00:00:00.000000000Z");
        assert_eq!(at(1_704_067_199, 0), "2023-12-31T23:59:59.000000000Z");
    }

    #[test]
    fn ids_are_single_path_components() {
        for good in ["a", "box", "0123abc", "x_y-z+1.2", &"a".repeat(1024)] {
            check_id(good).unwrap();
        }
        for bad in ["", ".", "..", "a/b", "../x", "a b", "é", &"a".repeat(1025)] {
            assert!(
                matches!(check_id(bad), Err(StateError::BadId(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn create_save_load_remove() {
        let root = scratch("roundtrip");
        let d = Dir::create(&root, "c1").unwrap();
        assert!(!d.has_state());
        assert!(matches!(d.load(), Err(StateError::NotFound(_))));
        let s = sample("c1");
        d.save(&s).unwrap();
        assert_eq!(d.load().unwrap(), s);
        assert_eq!(list(&root), ["c1"]);
        let mode = std::fs::metadata(&root).unwrap();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o777,
            0o700
        );
        drop(d);
        let d = Dir::open(&root, "c1").unwrap();
        d.remove().unwrap();
        assert!(!root.join("c1").exists());
        assert!(list(&root).is_empty());
        assert!(matches!(
            Dir::open(&root, "c1"),
            Err(StateError::NotFound(_))
        ));
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn a_duplicate_id_is_refused() {
        let root = scratch("dup");
        let d = Dir::create(&root, "c1").unwrap();
        let e = Dir::create(&root, "c1").unwrap_err();
        assert_eq!(e.to_string(), "container ID already exists: c1");
        d.remove().unwrap();
        std::fs::remove_dir_all(&root).unwrap();
    }

    /// A second opener waits until the first drops the lock, and then sees the removal
    /// the first did.
    #[test]
    fn the_lock_serializes_verbs() {
        let root = scratch("lock");
        let d = Dir::create(&root, "c1").unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let r = root.clone();
        let t = std::thread::spawn(move || {
            let got = Dir::open(&r, "c1").map(|_| ());
            tx.send(got.map_err(|e| e.to_string())).unwrap();
        });
        assert!(
            rx.recv_timeout(Duration::from_millis(300)).is_err(),
            "the second opener did not wait for the lock"
        );
        d.remove().unwrap();
        let got = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("still blocked");
        assert_eq!(got, Err("container does not exist: c1".to_string()));
        t.join().unwrap();
        std::fs::remove_dir_all(&root).unwrap();
    }

    /// A child forked without exec (as the library's `create` forks the container, which
    /// waits at its gate with our descriptors) that sleeps 30 s; returns its pid.
    fn fork_sleeper() -> libc::pid_t {
        // SAFETY: the child only calls async-signal-safe functions (sleep, _exit).
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            unsafe {
                libc::sleep(30);
                libc::_exit(0)
            }
        }
        pid
    }

    fn reap(pid: libc::pid_t) {
        // SAFETY: kill and waitpid of the child this test forked.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
            libc::waitpid(pid, std::ptr::null_mut(), 0);
        }
    }

    /// Whether another opener gets the lock of `root/c1` within `ms` milliseconds.
    fn others_get_in(root: &Path, ms: u64) -> bool {
        let (tx, rx) = std::sync::mpsc::channel();
        let r = root.to_path_buf();
        std::thread::spawn(move || {
            let _ = tx.send(Dir::open(&r, "c1").is_ok());
        });
        rx.recv_timeout(Duration::from_millis(ms)) == Ok(true)
    }

    /// A forked child shares the lock's open file description. Control: forked while we
    /// hold the lock, it keeps the directory locked after we let go. With
    /// `unlock_for_fork` before the fork and `relock` after, it does not.
    #[test]
    fn a_child_forked_while_unlocked_does_not_hold_the_lock() {
        let root = scratch("fork");
        let d = Dir::create(&root, "c1").unwrap();
        let child = fork_sleeper();
        drop(d);
        let held = !others_get_in(&root, 500);
        reap(child);
        assert!(held, "control: the forked child did not keep the lock");
        assert!(
            others_get_in(&root, 10_000),
            "the lock was not released with the child"
        );

        let mut d = Dir::open(&root, "c1").unwrap();
        d.unlock_for_fork();
        let child = fork_sleeper();
        d.relock().unwrap();
        assert!(!others_get_in(&root, 300), "relock did not take the lock");
        drop(d);
        let free = others_get_in(&root, 10_000);
        reap(child);
        assert!(free, "the directory stayed locked by the forked child");
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn write_atomic_leaves_no_temporary() {
        let root = scratch("atomic");
        std::fs::create_dir_all(&root).unwrap();
        let p = root.join("init.pid");
        write_atomic(&p, b"123", 0o644).unwrap();
        write_atomic(&p, b"45", 0o644).unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "45");
        let names: Vec<_> = std::fs::read_dir(&root)
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(names, ["init.pid"]);
        let e = write_atomic(&root.join("no/such/dir"), b"1", 0o644).unwrap_err();
        assert!(e.to_string().contains("no/such/dir"), "{e}");
        std::fs::remove_dir_all(&root).unwrap();
    }
}
