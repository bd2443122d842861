//! OCI hooks (runtime-spec `config.md`, "POSIX-platform Hooks", and `runtime.md`,
//! "Lifecycle"): programs the runtime runs at fixed points of a container's life.
//!
//! A hook is run as the spec says:
//! * `path` is executed as is (it MUST be absolute: a relative one is refused, never looked
//!   up in `PATH`);
//! * `args` is the whole argv, `args[0]` included (execv semantics); without `args` the
//!   argv is just `path`;
//! * `env` is the whole environment: the runtime's own is never inherited (no `env` means
//!   an empty one), so nothing of the caller's (containerd's, podman's) leaks in;
//! * the container's state (the JSON of `cellblock state`) is written to its stdin;
//! * `timeout` (seconds, > 0): when it expires the hook is killed (SIGKILL to its process
//!   group, so a shell's children die with it) and counted as failed;
//! * a non-zero exit (or death by a signal) is a failure, reported with the hook's kind,
//!   index, path and the tail of its stderr.
//!
//! What a failure does depends on the kind ([`HookKind::aborts_on_failure`]): a failing
//! `prestart`, `createRuntime`, `createContainer` or `startContainer` hook stops the hooks
//! of its kind and is returned as an error (the caller then stops the container and runs
//! the `poststop` hooks); a failing `poststart` or `poststop` hook is only a warning, and
//! the remaining hooks still run.
//!
//! Where a hook runs: [`run_hooks`] runs them in the calling process's namespaces (the
//! runtime namespace of `prestart`, `createRuntime`, `poststart` and `poststop`);
//! [`run_hooks_in_container`] in the namespaces of the container (`createContainer`,
//! `startContainer`).
//!
//! The hook's stdout and stderr are pipes read while it runs, and only until it exits: a
//! hook that leaves a daemon holding them open does not hang the runtime.

use std::ffi::OsStr;
use std::fmt;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use oci_spec::runtime::{Hook, Hooks};

/// How much of a hook's stdout and stderr is kept for the error message (the tail).
const OUTPUT_KEEP: usize = 16 * 1024;

/// The points of the lifecycle where hooks run, named as the keys of `config.json`'s
/// `hooks` object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HookKind {
    /// Deprecated by the spec in favour of the three below; run with `createRuntime`'s rules.
    Prestart,
    /// After the runtime environment is created, before pivot_root: runtime namespace.
    CreateRuntime,
    /// After the runtime environment is created, before pivot_root: container namespace.
    CreateContainer,
    /// At `start`, before the user process is executed: container namespace.
    StartContainer,
    /// After the user process has started, before `start` returns.
    Poststart,
    /// After the container is deleted, before `delete` returns.
    Poststop,
}

impl HookKind {
    /// Every kind, in lifecycle order.
    pub const ALL: [HookKind; 6] = [
        HookKind::Prestart,
        HookKind::CreateRuntime,
        HookKind::CreateContainer,
        HookKind::StartContainer,
        HookKind::Poststart,
        HookKind::Poststop,
    ];

    /// The key of `config.json`'s `hooks` object.
    pub fn name(self) -> &'static str {
        match self {
            HookKind::Prestart => "prestart",
            HookKind::CreateRuntime => "createRuntime",
            HookKind::CreateContainer => "createContainer",
            HookKind::StartContainer => "startContainer",
            HookKind::Poststart => "poststart",
            HookKind::Poststop => "poststop",
        }
    }

    /// Whether a failing hook of this kind is an error that stops the container (the
    /// runtime-spec's "MUST generate an error, stop the container, and continue the lifecycle
    /// at step 12") rather than a warning after which "the remaining hooks and lifecycle
    /// continue as if the hook had succeeded" (`poststart`, `poststop`).
    pub fn aborts_on_failure(self) -> bool {
        !matches!(self, HookKind::Poststart | HookKind::Poststop)
    }

    /// This kind's hooks in `hooks` (empty when `config.json` has none).
    #[allow(deprecated)] // `prestart` is deprecated by the spec, and still ours to run.
    pub fn of(self, hooks: &Hooks) -> &[Hook] {
        let list = match self {
            HookKind::Prestart => hooks.prestart(),
            HookKind::CreateRuntime => hooks.create_runtime(),
            HookKind::CreateContainer => hooks.create_container(),
            HookKind::StartContainer => hooks.start_container(),
            HookKind::Poststart => hooks.poststart(),
            HookKind::Poststop => hooks.poststop(),
        };
        list.as_deref().unwrap_or(&[])
    }
}

impl fmt::Display for HookKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A hook that could not be run, failed or timed out. Every variant names the hook as
/// `hooks.KIND[INDEX]` (its place in `config.json`) and its path.
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    /// `path` is not absolute (the spec requires it; we never search `PATH`).
    #[error("hooks.{kind}[{index}]: path {path:?} is not absolute")]
    RelativePath {
        kind: HookKind,
        index: usize,
        path: PathBuf,
    },
    /// `timeout` is zero or negative (the spec requires it to be greater than zero).
    #[error("hooks.{kind}[{index}] ({path:?}): timeout {timeout} is not greater than zero")]
    BadTimeout {
        kind: HookKind,
        index: usize,
        path: PathBuf,
        timeout: i64,
    },
    /// An `env` entry without `=`, or with an empty name.
    #[error("hooks.{kind}[{index}] ({path:?}): env entry {entry:?} is not NAME=VALUE")]
    BadEnv {
        kind: HookKind,
        index: usize,
        path: PathBuf,
        entry: String,
    },
    /// The hook could not be started (missing, not executable, ...).
    #[error("hooks.{kind}[{index}]: cannot execute {path:?}: {source}")]
    Spawn {
        kind: HookKind,
        index: usize,
        path: PathBuf,
        source: io::Error,
    },
    /// The hook exited with a non-zero code or was killed by a signal.
    #[error("hooks.{kind}[{index}] ({path:?}) failed: {}; stderr: {stderr:?}", describe(*status))]
    Failed {
        kind: HookKind,
        index: usize,
        path: PathBuf,
        status: ExitStatus,
        /// The tail of what it wrote to stderr (lossy UTF-8, at most 16 KiB).
        stderr: String,
        /// The tail of what it wrote to stdout.
        stdout: String,
    },
    /// The namespaces of the container (for `run_hooks_in_container`) could not be opened.
    #[error("hooks.{kind}[{index}] ({path:?}): cannot join the namespaces of pid {pid}: {source}")]
    Join {
        kind: HookKind,
        index: usize,
        path: PathBuf,
        pid: i32,
        source: io::Error,
    },
    /// The hook ran longer than its `timeout` and was killed.
    #[error("hooks.{kind}[{index}] ({path:?}) killed after its timeout of {timeout} s; stderr: {stderr:?}")]
    TimedOut {
        kind: HookKind,
        index: usize,
        path: PathBuf,
        timeout: i64,
        stderr: String,
    },
    /// Waiting for the hook or talking to it failed on our side.
    #[error("hooks.{kind}[{index}] ({path:?}): {what}: {source}")]
    Io {
        kind: HookKind,
        index: usize,
        path: PathBuf,
        what: &'static str,
        source: io::Error,
    },
}

fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(sig)) => format!("killed by signal {sig}"),
        _ => format!("{status}"),
    }
}

/// Runs `hooks` of `kind` in order, each with `state_json` on its stdin.
///
/// For kinds that abort ([`HookKind::aborts_on_failure`]) the first failure stops the run and
/// is returned. For `poststart` and `poststop` every hook runs, each failure is printed to
/// stderr as a warning, and the result is `Ok(())`; use [`run_hooks_with`] to route the
/// warnings elsewhere (the `--log` file).
pub fn run_hooks(kind: HookKind, hooks: &[Hook], state_json: &str) -> Result<(), HookError> {
    run_hooks_with(kind, hooks, state_json, &mut |warning| {
        eprintln!("cellblock: warning: {warning}")
    })
}

/// [`run_hooks`], with the failures of `poststart` and `poststop` hooks (which are warnings,
/// not errors) passed to `warn`.
pub fn run_hooks_with(
    kind: HookKind,
    hooks: &[Hook],
    state_json: &str,
    warn: &mut dyn FnMut(&HookError),
) -> Result<(), HookError> {
    run_all(kind, hooks, state_json, None, warn)
}

/// [`run_hooks_with`] for the hooks the spec runs "in the container namespace"
/// (`createContainer`, `startContainer`): each hook joins the namespaces of the process
/// `container_pid` (the container's init, waiting at its gate) that differ from ours, in
/// this order: user, mount, UTS, IPC, network, cgroup. Joining the mount namespace also
/// makes its root (the container's root) the hook's root and working directory, so the
/// hook's `path` is looked up inside the container, as the spec asks of `startContainer`
/// (for `createContainer` the spec resolves it in the runtime's namespace: a deliberate
/// difference, since the container's root is already pivoted when the library's `create`
/// returns). The PID namespace is not joined (only a hook's children would enter it).
pub fn run_hooks_in_container(
    kind: HookKind,
    hooks: &[Hook],
    state_json: &str,
    container_pid: i32,
    warn: &mut dyn FnMut(&HookError),
) -> Result<(), HookError> {
    run_all(kind, hooks, state_json, Some(container_pid), warn)
}

fn run_all(
    kind: HookKind,
    hooks: &[Hook],
    state_json: &str,
    join: Option<i32>,
    warn: &mut dyn FnMut(&HookError),
) -> Result<(), HookError> {
    for (index, hook) in hooks.iter().enumerate() {
        if let Err(e) = run_one(kind, index, hook, state_json.as_bytes(), join) {
            if kind.aborts_on_failure() {
                return Err(e);
            }
            warn(&e);
        }
    }
    Ok(())
}

/// The namespaces a container hook joins, in the order it joins them (user first: it
/// grants the capabilities needed to join the others).
const JOINED: [(&str, libc::c_int); 6] = [
    ("user", libc::CLONE_NEWUSER),
    ("mnt", libc::CLONE_NEWNS),
    ("uts", libc::CLONE_NEWUTS),
    ("ipc", libc::CLONE_NEWIPC),
    ("net", libc::CLONE_NEWNET),
    ("cgroup", libc::CLONE_NEWCGROUP),
];

/// Opens `/proc/PID/ns/*` for each namespace of [`JOINED`] that differs from ours.
fn namespaces_of(pid: i32) -> io::Result<Vec<(std::fs::File, libc::c_int)>> {
    use std::os::unix::fs::MetadataExt;
    let mut out = Vec::new();
    for (name, flag) in JOINED {
        let theirs = std::fs::File::open(format!("/proc/{pid}/ns/{name}"))?;
        let ours = std::fs::metadata(format!("/proc/self/ns/{name}"))?;
        let meta = theirs.metadata()?;
        if (meta.dev(), meta.ino()) != (ours.dev(), ours.ino()) {
            out.push((theirs, flag));
        }
    }
    Ok(out)
}

/// Checks every hook of `hooks` without running any (absolute paths, positive timeouts,
/// `NAME=VALUE` env entries): what `create` should refuse before it sets anything up.
pub fn validate(hooks: &Hooks) -> Result<(), HookError> {
    for kind in HookKind::ALL {
        for (index, hook) in kind.of(hooks).iter().enumerate() {
            check(kind, index, hook)?;
        }
    }
    Ok(())
}

/// A hook's checked fields: the environment split into names and values.
struct Checked<'h> {
    timeout: Option<i64>,
    env: Vec<(&'h str, &'h str)>,
}

fn check(kind: HookKind, index: usize, hook: &Hook) -> Result<Checked<'_>, HookError> {
    let path = hook.path();
    if !path.is_absolute() {
        return Err(HookError::RelativePath {
            kind,
            index,
            path: path.clone(),
        });
    }
    if let Some(timeout) = hook.timeout() {
        if timeout <= 0 {
            return Err(HookError::BadTimeout {
                kind,
                index,
                path: path.clone(),
                timeout,
            });
        }
    }
    let mut env = Vec::new();
    for entry in hook.env().as_deref().unwrap_or(&[]) {
        match entry.split_once('=') {
            Some((name, value)) if !name.is_empty() => env.push((name, value)),
            _ => {
                return Err(HookError::BadEnv {
                    kind,
                    index,
                    path: path.clone(),
                    entry: entry.clone(),
                })
            }
        }
    }
    Ok(Checked {
        timeout: hook.timeout(),
        env,
    })
}

fn run_one(
    kind: HookKind,
    index: usize,
    hook: &Hook,
    state: &[u8],
    join: Option<i32>,
) -> Result<(), HookError> {
    let checked = check(kind, index, hook)?;
    let path = hook.path();
    let io_err = |what: &'static str| {
        move |source: io::Error| HookError::Io {
            kind,
            index,
            path: path.clone(),
            what,
            source,
        }
    };

    let mut cmd = Command::new(path);
    match hook.args().as_deref() {
        Some([argv0, rest @ ..]) => {
            cmd.arg0(argv0).args(rest);
        }
        // No args: execv's argv is then just the path.
        _ => {
            cmd.arg0(path);
        }
    }
    cmd.env_clear()
        .envs(
            checked
                .env
                .iter()
                .map(|(n, v)| (OsStr::new(n), OsStr::new(v))),
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group, so that a timeout kills what a shell hook started too.
        .process_group(0);
    // Opened before the fork; O_CLOEXEC (std's default), so the hook does not inherit them.
    let namespaces = match join {
        None => Vec::new(),
        Some(pid) => namespaces_of(pid).map_err(|source| HookError::Join {
            kind,
            index,
            path: path.clone(),
            pid,
            source,
        })?,
    };
    if !namespaces.is_empty() {
        let fds: Vec<(i32, libc::c_int)> = namespaces
            .iter()
            .map(|(f, t)| (f.as_raw_fd(), *t))
            .collect();
        // SAFETY: the closure runs in the forked child before execve and only makes setns
        // calls (async-signal-safe raw syscalls) on fds opened before the fork; it does not
        // allocate (io::Error::last_os_error builds an Os variant, no heap).
        unsafe {
            cmd.pre_exec(move || {
                for &(fd, nstype) in &fds {
                    if libc::setns(fd, nstype) == -1 {
                        return Err(io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
    }
    let mut child = cmd.spawn().map_err(|source| HookError::Spawn {
        kind,
        index,
        path: path.clone(),
        source,
    })?;
    // From here the hook must be reaped on every path: the guard kills its group and reaps
    // it if we leave early (an error on our side).
    let guard = Unreaped(child.id() as i32);
    let mut stdin = child.stdin.take();
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    for fd in [
        stdin.as_ref().map(|p| p.as_raw_fd()),
        stdout.as_ref().map(|p| p.as_raw_fd()),
        stderr.as_ref().map(|p| p.as_raw_fd()),
    ]
    .into_iter()
    .flatten()
    {
        set_nonblocking(fd).map_err(io_err("making its pipes non-blocking"))?;
    }
    let pidfd = pidfd_open(guard.0).map_err(io_err("pidfd_open"))?;
    // A timeout too large for the clock (i64::MAX seconds) is no deadline at all.
    let deadline = checked
        .timeout
        .and_then(|secs| Instant::now().checked_add(Duration::from_secs(secs as u64)));

    let mut written = 0;
    let (mut out, mut err) = (Tail::default(), Tail::default());
    let exited = loop {
        let timeout = match deadline {
            None => PollTimeout::NONE,
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break false;
                }
                // Rounded up, so that we never wake just before the deadline and spin.
                let ms = left.as_millis().saturating_add(1).min(i32::MAX as u128);
                PollTimeout::try_from(ms as i32).unwrap_or(PollTimeout::MAX)
            }
        };
        let mut fds = vec![PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
        let in_at = slot(&mut fds, stdin.as_ref(), PollFlags::POLLOUT);
        let out_at = slot(&mut fds, stdout.as_ref(), PollFlags::POLLIN);
        let err_at = slot(&mut fds, stderr.as_ref(), PollFlags::POLLIN);
        match poll(&mut fds, timeout) {
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(io_err("poll")(e.into())),
        }
        let ready = |at: Option<usize>| {
            at.and_then(|i| fds[i].revents())
                .is_some_and(|r| !r.is_empty())
        };
        let (pid_ready, in_ready, out_ready, err_ready) =
            (ready(Some(0)), ready(in_at), ready(out_at), ready(err_at));
        drop(fds);
        if in_ready {
            if let Some(s) = stdin.as_mut() {
                match s.write(&state[written..]) {
                    Ok(n) => written += n,
                    // The hook closed its stdin without reading all of it: its choice.
                    Err(e) if e.kind() == io::ErrorKind::BrokenPipe => written = state.len(),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => return Err(io_err("writing the state to its stdin")(e)),
                }
                if written >= state.len() {
                    stdin = None; // EOF for the hook
                }
            }
        }
        if out_ready && !out.read_from(&mut stdout) {
            stdout = None;
        }
        if err_ready && !err.read_from(&mut stderr) {
            stderr = None;
        }
        if pid_ready {
            break true;
        }
    };
    drop(stdin);
    if !exited {
        // Timed out: kill the hook and whatever it started in its group.
        guard.kill_group();
    }
    let status = child.wait().map_err(io_err("waiting for it"))?;
    std::mem::forget(guard); // reaped
                             // What it wrote before exiting is still in the pipes: take it, without waiting for EOF
                             // (a daemon it left behind may hold the pipes open).
    while out.read_from(&mut stdout) {}
    while err.read_from(&mut stderr) {}
    if !exited {
        return Err(HookError::TimedOut {
            kind,
            index,
            path: path.clone(),
            timeout: checked.timeout.unwrap_or_default(),
            stderr: err.text(),
        });
    }
    if status.success() {
        Ok(())
    } else {
        Err(HookError::Failed {
            kind,
            index,
            path: path.clone(),
            status,
            stderr: err.text(),
            stdout: out.text(),
        })
    }
}

/// Adds `fd` (if still open) to the poll set; returns its index there.
fn slot<'a>(fds: &mut Vec<PollFd<'a>>, fd: Option<&'a impl AsFd>, ev: PollFlags) -> Option<usize> {
    fd.map(|fd| {
        fds.push(PollFd::new(fd.as_fd(), ev));
        fds.len() - 1
    })
}

/// A hook we started and have not reaped yet: dropped (we leave early on an error of ours),
/// it kills the hook's process group and reaps the hook.
struct Unreaped(i32);

impl Unreaped {
    fn kill_group(&self) {
        // SAFETY: plain syscall. The group's leader is our child, not reaped yet, so its
        // pid (the group id) cannot have been recycled.
        unsafe { libc::kill(-self.0, libc::SIGKILL) };
    }
}

impl Drop for Unreaped {
    fn drop(&mut self) {
        self.kill_group();
        let mut status = 0;
        // SAFETY: waits for our own child, by pid.
        unsafe { libc::waitpid(self.0, &mut status, 0) };
    }
}

/// The last [`OUTPUT_KEEP`] bytes of a stream.
#[derive(Default)]
struct Tail(Vec<u8>);

impl Tail {
    /// Reads once from `pipe`; false at EOF, on an error or when there is nothing to read
    /// now (the pipe is non-blocking).
    fn read_from<R: Read>(&mut self, pipe: &mut Option<R>) -> bool {
        let Some(p) = pipe.as_mut() else { return false };
        let mut buf = [0u8; 4096];
        match p.read(&mut buf) {
            Ok(0) | Err(_) => false,
            Ok(n) => {
                self.0.extend_from_slice(&buf[..n]);
                if self.0.len() > OUTPUT_KEEP {
                    self.0.drain(..self.0.len() - OUTPUT_KEEP);
                }
                true
            }
        }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0).trim_end().to_string()
    }
}

fn set_nonblocking(fd: i32) -> io::Result<()> {
    // SAFETY: fcntl on an fd we own.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    // SAFETY: as above.
    if flags == -1 || unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// pidfd_open(2): readable when the process exits.
fn pidfd_open(pid: i32) -> io::Result<OwnedFd> {
    // SAFETY: plain syscall; on success it returns a new fd that we own.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh, valid fd owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

#[cfg(test)]
mod tests {
    //! Real hooks (`/bin/sh` scripts) run by `run_hooks`, observed from both sides: what the
    //! hook saw (files it writes, its own /proc entries) and what `run_hooks` reported.

    use super::*;
    use std::path::Path;
    use std::sync::mpsc;

    /// A scratch directory of one test, removed at the end.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(name: &str) -> Scratch {
            let dir = std::env::temp_dir().join(format!(
                "cellblock-hooks-{name}-{}-{}",
                std::process::id(),
                unique_suffix()
            ));
            std::fs::create_dir_all(&dir).unwrap();
            Scratch(dir)
        }
        fn path(&self, name: &str) -> PathBuf {
            self.0.join(name)
        }
        fn read(&self, name: &str) -> String {
            std::fs::read_to_string(self.path(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn unique_suffix() -> u128 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    }

    /// A hook running `/bin/sh -c SCRIPT` with argv[0] `argv0` and `$1..` = `params`.
    fn sh(argv0: &str, script: &str, params: &[&str]) -> serde_json::Value {
        let mut args = vec![argv0, "-c", script, "hook-sh"];
        args.extend_from_slice(params);
        serde_json::json!({ "path": "/bin/sh", "args": args })
    }

    fn hooks(list: serde_json::Value) -> Vec<Hook> {
        serde_json::from_value(list).unwrap()
    }

    /// Runs `f` on a thread and fails the test if it does not return within `secs`.
    fn within<T: Send + 'static>(
        secs: u64,
        what: &str,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> T {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(f());
        });
        rx.recv_timeout(Duration::from_secs(secs))
            .unwrap_or_else(|_| panic!("{what}: did not return within {secs} s"))
    }

    const STATE: &str = r#"{"ociVersion":"1.0.2","id":"hooked","status":"created","pid":4242,"bundle":"/tmp/b","annotations":{"a":"b c"}}"#;

    /// Waits (bounded) until `pid` no longer exists or is a zombie.
    fn gone(pid: i32) -> bool {
        let end = Instant::now() + Duration::from_secs(10);
        while Instant::now() < end {
            match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
                Err(_) => return true,
                Ok(s)
                    if s.rsplit_once(')')
                        .is_some_and(|(_, r)| r.trim_start().starts_with('Z')) =>
                {
                    return true
                }
                Ok(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
        false
    }

    #[test]
    fn hooks_stdin_receives_the_state_and_args0_is_argv0() {
        let dir = Scratch::new("stdin");
        let (state, cmdline) = (dir.path("state"), dir.path("cmdline"));
        let list = hooks(serde_json::json!([sh(
            "custom-argv0",
            r#"cat > "$1"; tr '\0' ' ' < /proc/$$/cmdline > "$2""#,
            &[state.to_str().unwrap(), cmdline.to_str().unwrap()],
        )]));
        for kind in HookKind::ALL {
            run_hooks(kind, &list, STATE).unwrap();
            // The hook read exactly the state, to EOF.
            assert_eq!(dir.read("state"), STATE, "{kind}");
            // args[0] became argv[0] (the kernel's view of the hook's argv).
            assert_eq!(
                dir.read("cmdline"),
                format!(
                    "custom-argv0 -c {} hook-sh {} {} ",
                    r#"cat > "$1"; tr '\0' ' ' < /proc/$$/cmdline > "$2""#,
                    state.display(),
                    cmdline.display()
                ),
                "{kind}"
            );
        }
    }

    #[test]
    fn hooks_without_args_get_their_path_as_argv0() {
        let dir = Scratch::new("noargs");
        let script = dir.path("hook");
        let out = dir.path("cmdline");
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\ntr '\\0' ' ' < /proc/$$/cmdline > {}\n",
                out.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let list = hooks(serde_json::json!([{ "path": script }]));
        run_hooks(HookKind::CreateRuntime, &list, STATE).unwrap();
        // The kernel runs the interpreter with the script's path (argv[0] = path) after it.
        assert_eq!(
            dir.read("cmdline"),
            format!("/bin/sh {} ", script.display())
        );
    }

    #[test]
    fn hooks_env_replaces_the_runtimes() {
        let dir = Scratch::new("env");
        let out = dir.path("environ");
        // /proc/$$/environ is the environment the hook was executed with, before the shell
        // adds anything of its own.
        let script = r#"tr '\0' '\n' < /proc/$$/environ > "$1""#;
        let mut hook = sh("env-hook", script, &[out.to_str().unwrap()]);
        hook["env"] = serde_json::json!(["HOOK_A=1", "HOOK_B=two words=x", "EMPTY="]);
        run_hooks(HookKind::Prestart, &hooks(serde_json::json!([hook])), STATE).unwrap();
        let mut seen: Vec<String> = dir.read("environ").lines().map(String::from).collect();
        seen.sort(); // std's Command passes the environment sorted by name
        assert_eq!(seen, ["EMPTY=", "HOOK_A=1", "HOOK_B=two words=x"]);
        // The control: our own environment is not empty, so the hook's was replaced, not
        // inherited.
        assert!(std::env::vars_os().next().is_some());

        // No env at all: an empty environment, not ours.
        let hook = sh("env-hook", script, &[out.to_str().unwrap()]);
        run_hooks(HookKind::Prestart, &hooks(serde_json::json!([hook])), STATE).unwrap();
        assert_eq!(dir.read("environ"), "");
    }

    #[test]
    fn hooks_timeout_kills_the_hook_and_its_children() {
        let dir = Scratch::new("timeout");
        let pids = dir.path("pids");
        let mut hook = sh(
            "slow",
            r#"sleep 60 & echo "$$ $!" > "$1"; echo about to hang >&2; wait"#,
            &[pids.to_str().unwrap()],
        );
        hook["timeout"] = serde_json::json!(1);
        let list = hooks(serde_json::json!([hook]));
        let err = within(30, "a hook with timeout 1", move || {
            run_hooks(HookKind::CreateRuntime, &list, STATE)
        })
        .unwrap_err();
        match &err {
            HookError::TimedOut {
                kind,
                index,
                timeout,
                stderr,
                ..
            } => {
                assert_eq!((*kind, *index, *timeout), (HookKind::CreateRuntime, 0, 1));
                assert_eq!(stderr, "about to hang");
            }
            other => panic!("expected TimedOut, got {other:?}"),
        }
        assert!(err.to_string().contains("hooks.createRuntime[0]"), "{err}");
        let text = dir.read("pids");
        let (shell, sleeper) = text.trim().split_once(' ').unwrap();
        assert!(
            gone(shell.parse().unwrap()),
            "the hook survived its timeout"
        );
        assert!(
            gone(sleeper.parse().unwrap()),
            "the hook's child survived its timeout"
        );
    }

    #[test]
    fn hooks_within_their_timeout_succeed() {
        // The control of the timeout test: the same kind of hook, finishing in time.
        let mut hook = sh("quick", "sleep 0.2", &[]);
        hook["timeout"] = serde_json::json!(20);
        let mut huge = sh("quick", "true", &[]);
        huge["timeout"] = serde_json::json!(i64::MAX);
        let list = hooks(serde_json::json!([hook, huge]));
        within(30, "a hook that sleeps 0.2 s", move || {
            run_hooks(HookKind::CreateRuntime, &list, STATE)
        })
        .unwrap();
    }

    #[test]
    fn hooks_failure_is_reported_with_its_stderr_and_stops_aborting_kinds() {
        let dir = Scratch::new("fail");
        let second = dir.path("second-ran");
        let list = hooks(serde_json::json!([
            sh("ok", "true", &[]),
            sh(
                "bad",
                "echo partial out; echo boom on stderr >&2; exit 3",
                &[]
            ),
            sh("after", r#"touch "$1""#, &[second.to_str().unwrap()]),
        ]));
        for kind in HookKind::ALL.into_iter().filter(|k| k.aborts_on_failure()) {
            let err = run_hooks(kind, &list, STATE).unwrap_err();
            match &err {
                HookError::Failed {
                    kind: k,
                    index,
                    path,
                    status,
                    stderr,
                    stdout,
                } => {
                    assert_eq!(
                        (*k, *index, path.as_path()),
                        (kind, 1, Path::new("/bin/sh"))
                    );
                    assert_eq!(status.code(), Some(3));
                    assert_eq!(stderr, "boom on stderr");
                    assert_eq!(stdout, "partial out");
                }
                other => panic!("expected Failed, got {other:?}"),
            }
            let msg = err.to_string();
            assert!(
                msg.contains(&format!("hooks.{kind}[1]"))
                    && msg.contains("exit code 3")
                    && msg.contains("boom on stderr"),
                "{msg}"
            );
            assert!(!second.exists(), "{kind}: a hook after the failed one ran");
        }
    }

    #[test]
    fn hooks_failure_of_poststart_and_poststop_is_a_warning_and_the_rest_run() {
        let dir = Scratch::new("warn");
        let second = dir.path("second-ran");
        let list = hooks(serde_json::json!([
            sh("bad", "echo boom >&2; kill -9 $$", &[]),
            sh("after", r#"touch "$1""#, &[second.to_str().unwrap()]),
        ]));
        for kind in [HookKind::Poststart, HookKind::Poststop] {
            let _ = std::fs::remove_file(&second);
            let mut warnings = Vec::new();
            run_hooks_with(kind, &list, STATE, &mut |w| warnings.push(w.to_string())).unwrap();
            assert_eq!(warnings.len(), 1, "{warnings:?}");
            assert!(
                warnings[0].contains(&format!("hooks.{kind}[0]"))
                    && warnings[0].contains("killed by signal 9")
                    && warnings[0].contains("boom"),
                "{warnings:?}"
            );
            assert!(
                second.exists(),
                "{kind}: the hook after the failed one did not run"
            );
        }
    }

    #[test]
    fn hooks_that_ignore_stdin_or_leave_a_daemon_do_not_hang() {
        let dir = Scratch::new("daemon");
        let pid_file = dir.path("daemon-pid");
        // 1 MiB of state, more than a pipe holds, to a hook that never reads it; then a hook
        // whose background child keeps the hook's stdout and stderr open after it exits.
        let big = format!(r#"{{"id":"big","pad":"{}"}}"#, "x".repeat(1 << 20));
        let list = hooks(serde_json::json!([
            sh("deaf", "exit 0", &[]),
            sh(
                "daemonizing",
                r#"sleep 60 & echo $! > "$1""#,
                &[pid_file.to_str().unwrap()]
            ),
        ]));
        within(30, "hooks ignoring stdin / leaving a daemon", move || {
            run_hooks(HookKind::CreateRuntime, &list, &big)
        })
        .unwrap();
        // The daemon is ours (started by our hook): end it by its pid.
        let pid: i32 = dir.read("daemon-pid").trim().parse().unwrap();
        // SAFETY: plain syscall on a pid our hook just wrote.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }

    #[test]
    fn hooks_in_container_join_its_mount_and_uts_namespaces() {
        let dir = Scratch::new("join");
        let (mnt, ready, out) = (dir.path("m"), dir.path("ready"), dir.path("seen"));
        std::fs::create_dir(&mnt).unwrap();
        // The "container": a process in new mount and UTS namespaces with a tmpfs (and a
        // marker in it) that only its mount namespace has, and a hostname of its own.
        let mut target = Command::new("unshare")
            .args(["-m", "-u", "sh", "-c"])
            .arg(r#"mount -t tmpfs tmpfs "$1" && echo inside > "$1/marker" && hostname hook-target && echo > "$2" && exec sleep 60"#)
            .args(["sh", mnt.to_str().unwrap(), ready.to_str().unwrap()])
            .spawn()
            .unwrap();
        let end = Instant::now() + Duration::from_secs(20);
        while !ready.exists() {
            assert!(
                Instant::now() < end,
                "the target namespace was not ready in 20 s"
            );
            assert!(target.try_wait().unwrap().is_none(), "unshare failed");
            std::thread::sleep(Duration::from_millis(20));
        }
        let list = hooks(serde_json::json!([sh(
            "in-container",
            r#"cat "$1/marker" > "$2" && hostname >> "$2""#,
            &[mnt.to_str().unwrap(), out.to_str().unwrap()],
        )]));
        let pid = target.id() as i32;
        let result =
            run_hooks_in_container(HookKind::StartContainer, &list, STATE, pid, &mut |_| {});
        // `out` is outside the tmpfs, so both views share it.
        let seen = std::fs::read_to_string(&out);
        // The control, run in our own namespaces: no marker there (the tmpfs is not ours).
        let control = run_hooks(HookKind::StartContainer, &list, STATE);
        target.kill().unwrap();
        target.wait().unwrap();
        result.unwrap();
        assert_eq!(seen.unwrap(), "inside\nhook-target\n");
        assert!(
            matches!(&control, Err(HookError::Failed { stderr, .. }) if stderr.contains("marker")),
            "{control:?}"
        );
        let ours = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
        assert_ne!(ours.trim(), "hook-target");

        // A container that is gone: a clear error naming the pid.
        let err = run_hooks_in_container(HookKind::CreateContainer, &list, STATE, pid, &mut |_| {})
            .unwrap_err();
        assert!(matches!(err, HookError::Join { .. }), "{err:?}");
        assert!(err.to_string().contains(&format!("pid {pid}")), "{err}");
    }

    #[test]
    fn hooks_bad_definitions_are_refused_by_name() {
        let relative = hooks(serde_json::json!([{ "path": "bin/true" }]));
        let err = run_hooks(HookKind::CreateRuntime, &relative, STATE).unwrap_err();
        assert!(
            matches!(err, HookError::RelativePath { index: 0, .. }),
            "{err:?}"
        );
        assert!(
            err.to_string().contains("\"bin/true\" is not absolute"),
            "{err}"
        );

        let zero = hooks(serde_json::json!([{ "path": "/bin/true", "timeout": 0 }]));
        let err = run_hooks(HookKind::StartContainer, &zero, STATE).unwrap_err();
        assert!(
            matches!(err, HookError::BadTimeout { timeout: 0, .. }),
            "{err:?}"
        );

        let env = hooks(serde_json::json!([{ "path": "/bin/true", "env": ["NOEQUALS"] }]));
        let err = run_hooks(HookKind::Prestart, &env, STATE).unwrap_err();
        assert!(
            err.to_string().contains("\"NOEQUALS\" is not NAME=VALUE"),
            "{err}"
        );

        let missing = hooks(serde_json::json!([{ "path": "/nonexistent/hook" }]));
        let err = run_hooks(HookKind::CreateContainer, &missing, STATE).unwrap_err();
        match &err {
            HookError::Spawn { source, .. } => {
                assert_eq!(source.kind(), io::ErrorKind::NotFound)
            }
            other => panic!("expected Spawn, got {other:?}"),
        }
        assert!(err.to_string().contains("/nonexistent/hook"), "{err}");

        // `validate` finds the same problems in a whole `hooks` object, running nothing.
        let all: Hooks = serde_json::from_value(serde_json::json!({
            "poststop": [{ "path": "/bin/true" }, { "path": "relative" }]
        }))
        .unwrap();
        let err = validate(&all).unwrap_err();
        assert!(err.to_string().starts_with("hooks.poststop[1]"), "{err}");
    }
}
