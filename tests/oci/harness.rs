//! The machinery of the OCI runtime tests: the offline busybox image, a private containerd
//! and a private podman, each driving the runtime under test, and the checks that nothing is
//! left behind. Self-contained on purpose (it shares no helpers with the library's tests).
//!
//! Every wait here is bounded: a command runs under [`run`]'s timeout, and a condition is
//! polled by [`wait_until`] until its deadline; a timeout fails the test with what was seen.

use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The image's name, as the archive's `org.opencontainers.image.ref.name` gives it to both
/// `ctr images import` and `podman load`.
pub const IMAGE: &str = "cellblock.test/busybox:latest";

/// Host paths a containerd or podman would create by default (sockets, fifos, runc state,
/// podman's blob cache and locks, CNI's lock). The harness points every one of them into its
/// own directory; [`assert_no_host_leftovers`] checks none of them appeared.
const HOST_DEFAULT_PATHS: &[&str] = &[
    "/run/containerd",
    "/var/lib/containerd",
    "/opt/containerd",
    "/run/runc",
    "/run/libpod",
    "/run/containers",
    "/var/lib/containers",
    "/etc/cni/net.d/cni.lock",
    "/dev/shm/libpod_lock",
];

// ---------------------------------------------------------------------------------------
// The runtime under test

/// An OCI runtime binary (runc-compatible command line) that the callers are pointed at.
#[derive(Clone, Debug)]
pub struct Runtime {
    pub path: PathBuf,
}

impl Runtime {
    /// The runtime called `name` in PATH or in /usr/sbin, /sbin (where Debian puts runc,
    /// and which a non-login PATH may lack).
    pub fn installed(name: &str) -> Runtime {
        Runtime { path: tool(name) }
    }

    /// A runtime that logs each of its invocations with `tests/oci/argv-logger.sh` into
    /// `log` (and the bundles' config.json next to it), then execs `self`: a wrapper
    /// script written next to the log.
    pub fn logged(&self, log: &Path) -> Runtime {
        let logger = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oci/argv-logger.sh");
        wrapper_script(
            &log.with_file_name("runtime-logged"),
            &format!(
                "OCI_ARGV_LOG={} OCI_RUNTIME={} exec {} \"$@\"",
                sh_quote(&log.to_string_lossy()),
                sh_quote(&self.path.to_string_lossy()),
                sh_quote(&logger.to_string_lossy())
            ),
        )
    }

    /// `self` with the global flag `--root ROOT` before the caller's arguments: a wrapper
    /// script at `at`. podman 4.3.1 passes its `--runtime-flag`s to create/start/exec but
    /// not to `delete --force` or `kill`, so a runtime root given that way loses track of
    /// containers; this keeps the runtime's state out of its default (/run/runc) for every
    /// call.
    pub fn with_root(&self, root: &Path, at: &Path) -> Runtime {
        wrapper_script(
            at,
            &format!(
                "exec {} --root {} \"$@\"",
                sh_quote(&self.path.to_string_lossy()),
                sh_quote(&root.to_string_lossy())
            ),
        )
    }
}

/// Writes an executable `#!/bin/sh` script `body` at `path`, as a runtime.
fn wrapper_script(path: &Path, body: &str) -> Runtime {
    std::fs::write(path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
    Runtime {
        path: path.to_path_buf(),
    }
}

/// The absolute path of the tool `name`; a missing tool fails the test and says what to
/// install.
pub fn tool(name: &str) -> PathBuf {
    let path = std::env::var("PATH").unwrap_or_default();
    let found = path
        .split(':')
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"])
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file());
    found.unwrap_or_else(|| {
        panic!(
            "`{name}` is missing: the OCI tests need the Debian packages containerd, \
                 podman, umoci, busybox-static, runc and util-linux (.ci/run installs them)"
        )
    })
}

/// Fails the test unless it runs as root: containerd, podman and runc need it here.
pub fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "the OCI tests drive containerd and podman, which need root (run them as root)"
    );
}

// ---------------------------------------------------------------------------------------
// Commands with timeouts

/// What a finished command printed and how it ended.
#[derive(Debug)]
pub struct Output {
    pub what: String,
    pub status: ExitStatus,
    pub stdout: String,
    #[allow(dead_code)] // shown in failure messages (Debug)
    pub stderr: String,
}

impl Output {
    /// The exit code; fails the test if a signal ended the command.
    pub fn code(&self) -> i32 {
        self.status
            .code()
            .unwrap_or_else(|| panic!("{} was killed by a signal: {self:?}", self.what))
    }

    /// Fails the test unless the command exited 0; returns self for chaining.
    pub fn ok(self) -> Output {
        assert!(self.status.success(), "{} failed: {self:#?}", self.what);
        self
    }
}

/// Runs `cmd` (stdin from /dev/null unless set) to completion, at most `secs` seconds: past
/// that, its whole process group (it gets one of its own) is SIGKILLed and the test fails
/// with whatever it printed so far.
pub fn run(cmd: &mut Command, secs: u64) -> Output {
    let what = format!("{cmd:?}");
    let mut child = spawn(cmd.stdout(Stdio::piped()).stderr(Stdio::piped()));
    let stdout = drain(child.stdout.take().unwrap());
    let stderr = drain(child.stderr.take().unwrap());
    let status = wait_child(&mut child, secs, &what);
    let (stdout, stderr) = (collect(&stdout, &what), collect(&stderr, &what));
    Output {
        what,
        status,
        stdout,
        stderr,
    }
}

/// Spawns `cmd` in a process group of its own (so a timeout can end all it started), with
/// stdin from /dev/null unless the caller set it.
pub fn spawn(cmd: &mut Command) -> Child {
    cmd.process_group(0);
    cmd.spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"))
}

/// Reads `r` to its end on a thread of its own; the text arrives on the returned channel.
fn drain(mut r: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        let _ = tx.send(String::from_utf8_lossy(&buf).into_owned());
    });
    rx
}

/// The rest of a drained pipe once its command has exited: at most 10 s, in case a process
/// the command left running (a daemonized shim or conmon) still holds the pipe open.
fn collect(rx: &mpsc::Receiver<String>, what: &str) -> String {
    rx.recv_timeout(Duration::from_secs(10))
        .unwrap_or_else(|_| {
            panic!("{what} exited, but something it started still holds its stdout or stderr open")
        })
}

/// Waits for `child` at most `secs` seconds; on timeout SIGKILLs its process group (one
/// this harness created with [`spawn`]) and fails the test.
pub fn wait_child(child: &mut Child, secs: u64, what: &str) -> ExitStatus {
    let end = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st;
        }
        if Instant::now() >= end {
            // SAFETY: kill(2) on the process group of a child this harness spawned.
            unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
            let _ = child.wait();
            panic!("{what} did not finish within {secs} s (killed)");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Polls `f` every 20 ms until it returns true, at most `secs` seconds; fails the test
/// with `what` and the last value of `show` otherwise.
pub fn wait_until(secs: u64, what: &str, mut f: impl FnMut() -> bool, show: impl Fn() -> String) {
    let end = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(
            Instant::now() < end,
            "{what}: not true after {secs} s ({})",
            show()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A command started in the background whose stdout lines arrive on a channel, so a test
/// can wait (bounded) for a line, act, then collect the exit status.
pub struct Background {
    pub child: Child,
    lines: mpsc::Receiver<String>,
    stderr: mpsc::Receiver<String>,
    what: String,
}

impl Background {
    pub fn start(cmd: &mut Command) -> Background {
        let what = format!("{cmd:?}");
        let mut child = spawn(cmd.stdout(Stdio::piped()).stderr(Stdio::piped()));
        let (tx, lines) = mpsc::channel();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        let stderr = drain(child.stderr.take().unwrap());
        Background {
            child,
            lines,
            stderr,
            what,
        }
    }

    /// Waits at most `secs` seconds for a stdout line equal to `line`.
    pub fn expect_line(&mut self, line: &str, secs: u64) {
        let end = Instant::now() + Duration::from_secs(secs);
        let mut seen = Vec::new();
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) if l.trim() == line => return,
                Ok(l) => seen.push(l),
                Err(_) => {
                    // SAFETY: kill(2) on the process group of a child this harness spawned.
                    unsafe { libc::kill(-(self.child.id() as i32), libc::SIGKILL) };
                    let _ = self.child.wait();
                    panic!(
                        "{}: no line {line:?} within {secs} s; stdout so far {seen:?}",
                        self.what
                    );
                }
            }
        }
    }

    /// Waits at most `secs` seconds for the command to exit.
    pub fn finish(mut self, secs: u64) -> (ExitStatus, String) {
        let st = wait_child(&mut self.child, secs, &self.what);
        let err = collect(&self.stderr, &self.what);
        (st, err)
    }
}

/// Runs `cmdline` (a shell command) with a pseudo-terminal as its stdin/stdout, through
/// util-linux `script`, as an interactive user would: `ctr run -t` and `podman run -t`
/// want a terminal on their side. Returns what the terminal showed and the exit code
/// (`script -e` passes the command's on).
pub fn run_in_pty(cmdline: &str, env: &[(&str, PathBuf)], secs: u64) -> Output {
    let mut cmd = Command::new(tool("script"));
    cmd.args(["-q", "-e", "-c", cmdline, "/dev/null"])
        .stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    run(&mut cmd, secs)
}

/// Quotes `s` for a POSIX shell.
pub fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// `cmd`'s program and arguments as one shell command line (for [`run_in_pty`]).
pub fn shell_line(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| sh_quote(&a.to_string_lossy()))
        .collect::<Vec<_>>()
        .join(" ")
}

// ---------------------------------------------------------------------------------------
// The image

/// The busybox OCI archive, built once per test process by `.ci/oci-image.sh` into
/// CARGO_TARGET_TMPDIR (offline; a failure fails every test that needs it).
pub fn image_archive() -> &'static Path {
    static IMAGE_TAR: OnceLock<PathBuf> = OnceLock::new();
    IMAGE_TAR.get_or_init(|| {
        require_root();
        host_paths_before();
        remove_stale_scratch();
        // One per test process (oci-PID-image), so two concurrent runs do not rebuild
        // each other's; the stale ones go with the other scratch directories.
        let out = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("oci-{}-image", std::process::id()));
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join(".ci/oci-image.sh");
        let o = run(Command::new(&script).arg(&out), 300);
        assert!(
            o.status.success(),
            ".ci/oci-image.sh failed (it needs umoci and busybox-static): {o:#?}"
        );
        let tar = out.join("busybox-oci.tar");
        assert!(tar.is_file(), "{} was not written: {o:#?}", tar.display());
        tar
    })
}

// ---------------------------------------------------------------------------------------
// Scratch directories, names, leftovers

static SEQ: AtomicU32 = AtomicU32::new(0);

/// A fresh directory for one caller instance, `CARGO_TARGET_TMPDIR/oci-PID-N` (short: it
/// holds Unix socket paths, limited to 108 bytes), and the name its containers' cgroups
/// get (`cellblock-oci-PID-N`, at the top of every hierarchy).
fn scratch() -> (PathBuf, String) {
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    let tag = format!("{}-{n}", std::process::id());
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("oci-{tag}"));
    // containerd's sockets are DIR/c.sock.ttrpc and the shim's console sockets
    // DIR/tmp/ptyNNNNNNNNNN/pty.sock: keep them well under sun_path's 108 bytes.
    assert!(
        dir.as_os_str().len() < 80,
        "{} is too long a directory for Unix sockets: build in a shorter target directory",
        dir.display()
    );
    let _ = std::fs::remove_dir_all(&dir);
    for sub in ["", "tmp"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
    }
    (dir, format!("cellblock-oci-{tag}"))
}

/// Removes the scratch directories of earlier test processes that are gone (a run that was
/// killed), unless something is still mounted below them.
fn remove_stale_scratch() {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    for e in std::fs::read_dir(tmp).into_iter().flatten().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix("oci-")
            .and_then(|r| r.split('-').next())
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists()
            && mounts_under(&e.path(), "self").is_empty()
        {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// Mount points at or below `dir` in the mount namespace of process `pid` ("self" for ours).
pub fn mounts_under(dir: &Path, pid: &str) -> Vec<String> {
    let dir = dir.to_string_lossy().into_owned();
    std::fs::read_to_string(format!("/proc/{pid}/mountinfo"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|m| *m == dir || m.starts_with(&format!("{dir}/")))
        .map(str::to_string)
        .collect()
}

/// Pids of the processes whose command line mentions `needle` (a path unique to one
/// caller instance: its socket, root or scratch directory).
pub fn pids_mentioning(needle: &str) -> Vec<i32> {
    let me = std::process::id() as i32;
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_string_lossy().parse::<i32>().ok())
        .filter(|&pid| pid != me)
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| {
                    String::from_utf8_lossy(&c)
                        .replace('\0', " ")
                        .contains(needle)
                })
                .unwrap_or(false)
        })
        .collect()
}

/// The cgroup directories called `name` at the top of every hierarchy mounted under
/// /sys/fs/cgroup (each v1 controller, the named systemd one, the v2 one; a v2-only host
/// has just /sys/fs/cgroup/NAME). Only those that exist.
pub fn cgroup_dirs(name: &str) -> Vec<PathBuf> {
    let root = Path::new("/sys/fs/cgroup");
    let mut tops = vec![root.to_path_buf()];
    if !root.join("cgroup.controllers").exists() {
        for e in std::fs::read_dir(root).into_iter().flatten().flatten() {
            // cpu -> cpu,cpuacct style aliases are symlinks: skip them.
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                tops.push(e.path());
            }
        }
    }
    tops.into_iter()
        .map(|t| t.join(name))
        .filter(|p| p.is_dir())
        .collect()
}

/// Every cgroup directory at or below `top`, deepest first.
fn cgroup_tree(top: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(top).into_iter().flatten().flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            out.extend(cgroup_tree(&e.path()));
        }
    }
    out.push(top.to_path_buf());
    out
}

/// The pids in any cgroup at or below the cgroups called `name`.
pub fn pids_in_cgroups(name: &str) -> Vec<i32> {
    let mut pids: Vec<i32> = cgroup_dirs(name)
        .iter()
        .flat_map(|d| cgroup_tree(d))
        .flat_map(|d| {
            std::fs::read_to_string(d.join("cgroup.procs"))
                .unwrap_or_default()
                .split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<i32>>()
        })
        .collect();
    pids.sort();
    pids.dedup();
    pids
}

/// Removes the (empty) cgroups called `name` and everything below them; returns what
/// could not be removed, with the error.
fn remove_cgroups(name: &str) -> Vec<String> {
    let mut failed = Vec::new();
    for top in cgroup_dirs(name) {
        for d in cgroup_tree(&top) {
            if let Err(e) = std::fs::remove_dir(&d) {
                failed.push(format!("{}: {e}", d.display()));
            }
        }
    }
    failed
}

/// Which of [`HOST_DEFAULT_PATHS`] existed before this test process touched anything.
fn host_paths_before() -> &'static Vec<&'static str> {
    static BEFORE: OnceLock<Vec<&'static str>> = OnceLock::new();
    BEFORE.get_or_init(|| {
        HOST_DEFAULT_PATHS
            .iter()
            .copied()
            .filter(|p| Path::new(p).exists())
            .collect()
    })
}

/// Fails the test if one of the default host paths of containerd, runc or podman appeared
/// during this test process (the harness redirects all of them into scratch directories).
pub fn assert_no_host_leftovers() {
    let before = host_paths_before();
    let appeared: Vec<_> = HOST_DEFAULT_PATHS
        .iter()
        .filter(|p| !before.contains(p) && Path::new(p).exists())
        .collect();
    assert!(
        appeared.is_empty(),
        "host paths appeared that the private instances should not create: {appeared:?}"
    );
}

/// SIGKILLs `pids` (processes a caller instance of this harness started, found by its
/// unique paths or cgroups).
fn kill_all(pids: &[i32]) {
    for &pid in pids {
        // SAFETY: kill(2) on a process this harness's instance started.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
}

/// The checks every instance makes when it is torn down: no process mentions its scratch
/// directory, no process is in its cgroups (which are then removed), nothing is mounted
/// below its directory, no default host path appeared. Then the directory is removed.
fn teardown_checks(dir: &Path, cgroup: &str) {
    wait_for_instance_processes(dir);
    wait_until(
        30,
        "the instance's cgroups are empty",
        || pids_in_cgroups(cgroup).is_empty(),
        || format!("{:?}", pids_in_cgroups(cgroup)),
    );
    let failed = remove_cgroups(cgroup);
    assert!(failed.is_empty(), "cgroups left behind: {failed:?}");
    assert!(
        cgroup_dirs(cgroup).is_empty(),
        "cgroups {cgroup} still exist"
    );
    let mounts = mounts_under(dir, "self");
    assert!(mounts.is_empty(), "mounts left behind: {mounts:?}");
    assert_no_host_leftovers();
    std::fs::remove_dir_all(dir).unwrap_or_else(|e| panic!("removing {}: {e}", dir.display()));
}

/// Waits (at most 30 s) until no process mentions the instance's directory (containerd's
/// shims, conmon, podman's cleanup processes).
fn wait_for_instance_processes(dir: &Path) {
    let d = dir.to_string_lossy().into_owned();
    wait_until(
        30,
        "processes of this instance (shims, conmon, podman cleanup) exit",
        || pids_mentioning(&d).is_empty(),
        || format!("{:?}", pids_mentioning(&d)),
    );
}

/// Best-effort cleanup when a test failed halfway (called from Drop while unwinding):
/// SIGKILL what the instance started, remove its cgroups, and its directory if nothing is
/// mounted there. Asserts nothing (a panic while unwinding would abort).
fn teardown_after_failure(dir: &Path, cgroup: &str) {
    let d = dir.to_string_lossy().into_owned();
    for _ in 0..100 {
        // A frozen (paused) container does not die of SIGKILL until thawed.
        for top in cgroup_dirs(cgroup) {
            for d in cgroup_tree(&top) {
                let _ = std::fs::write(d.join("freezer.state"), "THAWED");
                let _ = std::fs::write(d.join("cgroup.freeze"), "0");
            }
        }
        let mut pids = pids_mentioning(&d);
        pids.extend(pids_in_cgroups(cgroup));
        if pids.is_empty() {
            break;
        }
        kill_all(&pids);
        std::thread::sleep(Duration::from_millis(50));
    }
    // A killed process leaves its cgroup a moment after it is gone from cgroup.procs.
    for _ in 0..100 {
        if remove_cgroups(cgroup).is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // podman's per-container /dev/shm tmpfs lives below the directory, in our namespace;
    // detach what is left there (deepest first), then remove the directory.
    let mut mounts = mounts_under(dir, "self");
    mounts.sort_by_key(|m| std::cmp::Reverse(m.len()));
    for m in mounts {
        let _ = nix::mount::umount2(m.as_str(), nix::mount::MntFlags::MNT_DETACH);
    }
    if mounts_under(dir, "self").is_empty() {
        let _ = std::fs::remove_dir_all(dir);
    }
}

// ---------------------------------------------------------------------------------------
// containerd

/// A private containerd: its own config (CRI plugin disabled), root, state, sockets and
/// TMPDIR under a scratch directory, running in a mount namespace of its own in which /run
/// is a fresh tmpfs, so the runc v2 shim's hard-coded /run/containerd/s sockets stay out of
/// the host's /run. Containers run in the containerd namespace `cellblock-oci-PID-N`, which
/// is also their cgroup parent (`/cellblock-oci-PID-N/ID` in every hierarchy).
///
/// Call [`Containerd::finish`] at the end of a test: it stops containerd by pid and asserts
/// that nothing is left. Dropping an unfinished one (a failed test) cleans up silently.
pub struct Containerd {
    pub dir: PathBuf,
    pub namespace: String,
    pub sock: PathBuf,
    runtime: Runtime,
    daemon: Option<Child>,
    finished: bool,
}

impl Containerd {
    /// Starts containerd and waits (at most 30 s) until it answers on its socket.
    pub fn start(runtime: &Runtime) -> Containerd {
        image_archive();
        let (dir, namespace) = scratch();
        let sock = dir.join("c.sock");
        let config = dir.join("config.toml");
        std::fs::write(
            &config,
            format!(
                r#"version = 2
root = "{d}/root"
state = "{d}/state"
disabled_plugins = [
  "io.containerd.grpc.v1.cri",
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs",
]
[grpc]
  address = "{d}/c.sock"
[ttrpc]
  address = "{d}/c.sock.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "{d}/opt"
"#,
                d = dir.display()
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.join("containerd.log")).unwrap();
        let mut cmd = Command::new(tool("unshare"));
        cmd.args(["--mount", "--propagation", "private", "--"])
            .arg(tool("sh"))
            .arg("-c")
            .arg(r#"mount -t tmpfs -o mode=0755 cellblock-oci-run /run && exec "$0" --config "$1""#)
            .arg(tool("containerd"))
            .arg(&config)
            .env("TMPDIR", dir.join("tmp"))
            .env_remove("CONTAINERD_ADDRESS")
            .env_remove("CONTAINERD_NAMESPACE")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        let daemon = spawn(&mut cmd);
        let mut me = Containerd {
            dir,
            namespace,
            sock,
            runtime: runtime.clone(),
            daemon: Some(daemon),
            finished: false,
        };
        let end = Instant::now() + Duration::from_secs(30);
        loop {
            if std::os::unix::net::UnixStream::connect(&me.sock).is_ok() {
                break;
            }
            if let Some(st) = me.daemon.as_mut().unwrap().try_wait().unwrap() {
                panic!("containerd exited at start ({st}): {}", me.log());
            }
            assert!(
                Instant::now() < end,
                "containerd did not listen on {} within 30 s: {}",
                me.sock.display(),
                me.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        me
    }

    /// Starts containerd and imports the busybox image into it.
    pub fn with_image(runtime: &Runtime) -> Containerd {
        let c = Containerd::start(runtime);
        let o = c
            .ctr(&["images", "import"])
            .arg(image_archive())
            .output_within(120);
        assert!(o.status.success(), "ctr images import: {o:#?}");
        let o = c.ctr(&["images", "ls", "-q"]).output_within(30).ok();
        assert!(
            o.stdout.lines().any(|l| l == IMAGE),
            "{IMAGE} not imported: {o:#?}"
        );
        c
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("containerd.log")).unwrap_or_default()
    }

    pub fn pid(&self) -> i32 {
        self.daemon.as_ref().unwrap().id() as i32
    }

    /// `ctr --address SOCK --namespace NS ARGS...`.
    pub fn ctr(&self, args: &[&str]) -> Command {
        let mut c = Command::new(tool("ctr"));
        c.arg("--address")
            .arg(&self.sock)
            .args(["--namespace", &self.namespace])
            .args(args);
        c
    }

    /// The flags that make `ctr run` use the runtime under test, with its state (`--root`)
    /// and ctr's IO fifos in the scratch directory.
    pub fn runtime_flags(&self) -> Vec<String> {
        vec![
            "--runc-binary".into(),
            self.runtime.path.display().to_string(),
            "--runc-root".into(),
            self.dir.join("runc").display().to_string(),
            "--fifo-dir".into(),
            self.dir.join("fifo").display().to_string(),
        ]
    }

    /// `ctr run [FLAGS] --rm IMAGE ID ARGS...` with the runtime under test.
    pub fn run_rm(&self, flags: &[&str], id: &str, args: &[&str]) -> Command {
        let mut c = self.ctr(&["run", "--rm"]);
        c.args(self.runtime_flags())
            .args(flags)
            .arg(IMAGE)
            .arg(id)
            .args(args);
        c
    }

    /// Starts a detached task `ID` running ARGS and returns its host pid.
    pub fn run_detached(&self, id: &str, args: &[&str]) -> i32 {
        let mut c = self.ctr(&["run", "-d", "--null-io"]);
        c.args(self.runtime_flags()).arg(IMAGE).arg(id).args(args);
        c.output_within(60).ok();
        self.task_pid(id)
    }

    /// The task table: `ID -> (pid, status)`.
    pub fn tasks(&self) -> Vec<(String, i32, String)> {
        let o = self.ctr(&["task", "ls"]).output_within(30).ok();
        o.stdout
            .lines()
            .skip(1)
            .filter_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                Some((
                    f.first()?.to_string(),
                    f.get(1)?.parse().ok()?,
                    f.get(2)?.to_string(),
                ))
            })
            .collect()
    }

    pub fn task_status(&self, id: &str) -> Option<String> {
        self.tasks().into_iter().find(|t| t.0 == id).map(|t| t.2)
    }

    pub fn task_pid(&self, id: &str) -> i32 {
        let tasks = self.tasks();
        tasks
            .iter()
            .find(|t| t.0 == id)
            .map(|t| t.1)
            .unwrap_or_else(|| panic!("no task {id}: {tasks:?}"))
    }

    /// Waits (at most `secs`) until task `id` has status `status` (RUNNING, PAUSED, STOPPED).
    pub fn wait_status(&self, id: &str, status: &str, secs: u64) {
        wait_until(
            secs,
            &format!("task {id} becomes {status}"),
            || self.task_status(id).as_deref() == Some(status),
            || format!("{:?}", self.tasks()),
        );
    }

    /// Kills (SIGKILL, all processes), deletes the task and the container `id`.
    pub fn remove(&self, id: &str) {
        if self.task_status(id).as_deref() != Some("STOPPED") {
            self.ctr(&["task", "kill", "--all", "-s", "SIGKILL", id])
                .output_within(30)
                .ok();
            self.wait_status(id, "STOPPED", 30);
        }
        self.ctr(&["task", "rm", id]).output_within(30).ok();
        self.ctr(&["containers", "rm", id]).output_within(30).ok();
    }

    /// The cgroup name (relative to a hierarchy's root) of container `id`.
    pub fn cgroup_of(&self, id: &str) -> String {
        format!("{}/{id}", self.namespace)
    }

    /// Asserts that no task or container is left, that containerd holds no mount below the
    /// scratch directory, stops containerd by pid (SIGTERM, at most 20 s), and runs the
    /// common leftover checks.
    pub fn finish(mut self) {
        let tasks = self.tasks();
        assert!(tasks.is_empty(), "tasks left: {tasks:?}");
        let o = self.ctr(&["containers", "ls", "-q"]).output_within(30).ok();
        assert!(o.stdout.trim().is_empty(), "containers left: {o:#?}");
        // The rootfs mounts live in containerd's own mount namespace: look there.
        let mounts = mounts_under(&self.dir, &self.pid().to_string());
        assert!(mounts.is_empty(), "containerd still has mounts: {mounts:?}");
        let mut daemon = self.daemon.take().unwrap();
        // SAFETY: kill(2) on the containerd this instance started.
        unsafe { libc::kill(daemon.id() as i32, libc::SIGTERM) };
        let st = wait_child(&mut daemon, 20, "containerd after SIGTERM");
        assert!(
            st.success() || st.code().is_none(),
            "containerd ended with {st}: {}",
            self.log()
        );
        let runc_root = self.dir.join("runc").join(&self.namespace);
        let states: Vec<_> = std::fs::read_dir(&runc_root)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert!(
            states.is_empty(),
            "runtime state left in {}: {states:?}",
            runc_root.display()
        );
        teardown_checks(&self.dir, &self.namespace);
        self.finished = true;
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        if !self.finished {
            if let Some(mut d) = self.daemon.take() {
                let _ = d.kill();
                let _ = d.wait();
            }
            teardown_after_failure(&self.dir, &self.namespace);
        }
    }
}

// ---------------------------------------------------------------------------------------
// podman

/// A private podman: its own root, runroot, tmpdir, network config dir, hooks dir (empty),
/// containers.conf (file locks, no event log) and TMPDIR under a scratch directory, vfs
/// storage (no overlay mounts), cgroupfs with the cgroup parent `/cellblock-oci-PID-N`, the
/// runtime's state in the scratch directory (through a `--root` wrapper), no network.
///
/// Call [`Podman::finish`] at the end of a test. Dropping an unfinished one cleans up
/// silently.
pub struct Podman {
    pub dir: PathBuf,
    pub cgroup: String,
    runtime: Runtime,
    finished: bool,
}

impl Podman {
    /// Prepares the directories and loads the busybox image.
    pub fn with_image(runtime: &Runtime) -> Podman {
        Podman::start(runtime, None)
    }

    /// [`Podman::with_image`], with podman's calls to the runtime logged into `log` by
    /// `argv-logger.sh` (as podman makes them, before the `--root` wrapper).
    pub fn start(runtime: &Runtime, log: Option<&Path>) -> Podman {
        let archive = image_archive();
        let (dir, cgroup) = scratch();
        for sub in ["net", "hooks"] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
        let rooted = runtime.with_root(&dir.join("runtime"), &dir.join("runtime-rooted"));
        let runtime = match log {
            Some(log) => rooted.logged(log),
            None => rooted,
        };
        std::fs::write(
            dir.join("containers.conf"),
            format!(
                "[engine]\nlock_type = \"file\"\nevents_logger = \"none\"\n\
                 image_copy_tmp_dir = \"{}/tmp\"\n",
                dir.display()
            ),
        )
        .unwrap();
        let p = Podman {
            dir,
            cgroup,
            runtime,
            finished: false,
        };
        // containers/image keeps a blob-info cache in /var/lib/containers/cache for root,
        // whatever --root says: load in a mount namespace where /var/lib is a fresh tmpfs.
        let mut load = Command::new(tool("unshare"));
        load.args(["--mount", "--propagation", "private", "--"])
            .arg(tool("sh"))
            .arg("-c")
            .arg(r#"mount -t tmpfs cellblock-oci-varlib /var/lib && exec "$@""#)
            .arg("sh")
            .arg(tool("podman"))
            .args(p.global_flags())
            .args(["load", "-q", "-i"])
            .arg(archive);
        p.env(&mut load);
        let o = load.output_within(120);
        assert!(o.status.success(), "podman load: {o:#?}");
        let o = p
            .podman(&["images", "--format", "{{.Repository}}:{{.Tag}}"])
            .output_within(60)
            .ok();
        assert!(
            o.stdout.lines().any(|l| l == IMAGE),
            "{IMAGE} not loaded: {o:#?}"
        );
        p
    }

    fn global_flags(&self) -> Vec<String> {
        let d = |s: &str| self.dir.join(s).display().to_string();
        vec![
            format!("--root={}", d("root")),
            format!("--runroot={}", d("runroot")),
            format!("--tmpdir={}", d("libpod")),
            "--storage-driver=vfs".into(),
            format!("--runtime={}", self.runtime.path.display()),
            "--cgroup-manager=cgroupfs".into(),
            "--events-backend=none".into(),
            format!("--network-config-dir={}", d("net")),
            format!("--hooks-dir={}", d("hooks")),
        ]
    }

    fn env(&self, cmd: &mut Command) {
        cmd.env("CONTAINERS_CONF", self.dir.join("containers.conf"))
            .env("TMPDIR", self.dir.join("tmp"))
            .env_remove("CONTAINER_HOST")
            .env_remove("CONTAINER_CONNECTION");
    }

    /// `podman GLOBAL-FLAGS ARGS...`.
    pub fn podman(&self, args: &[&str]) -> Command {
        let mut c = Command::new(tool("podman"));
        c.args(self.global_flags()).args(args);
        self.env(&mut c);
        c
    }

    /// The `podman run` flags this host needs: no pull, no network, explicit rlimits (root
    /// lacks CAP_SYS_RESOURCE here, and podman's defaults exceed the hard limits), and the
    /// instance's cgroup parent.
    pub fn run_flags(&self) -> Vec<String> {
        vec![
            "--pull=never".into(),
            "--network=none".into(),
            "--ulimit=nofile=1024:1024".into(),
            "--ulimit=nproc=1024:1024".into(),
            format!("--cgroup-parent=/{}", self.cgroup),
        ]
    }

    /// `podman run [FLAGS] IMAGE ARGS...` (add `--rm` or `-d` in FLAGS).
    pub fn run(&self, flags: &[&str], args: &[&str]) -> Command {
        let mut c = self.podman(&["run"]);
        c.args(self.run_flags()).args(flags).arg(IMAGE).args(args);
        c
    }

    /// The same command line as one shell string, for [`run_in_pty`].
    pub fn shell_line(&self, args: &[&str]) -> String {
        let mut words = vec![tool("podman").display().to_string()];
        words.extend(self.global_flags());
        words.extend(args.iter().map(|s| s.to_string()));
        words
            .iter()
            .map(|w| sh_quote(w))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The environment the podman commands get (for [`run_in_pty`]).
    pub fn env_pairs(&self) -> Vec<(&'static str, PathBuf)> {
        vec![
            ("CONTAINERS_CONF", self.dir.join("containers.conf")),
            ("TMPDIR", self.dir.join("tmp")),
        ]
    }

    /// `podman inspect -f FORMAT NAME`, trimmed.
    pub fn inspect(&self, name: &str, format: &str) -> String {
        let o = self
            .podman(&["inspect", "-f", format, name])
            .output_within(60)
            .ok();
        o.stdout.trim().to_string()
    }

    /// Asserts that no container is left, then runs the common leftover checks.
    pub fn finish(mut self) {
        let o = self.podman(&["ps", "-aq"]).output_within(60).ok();
        assert!(o.stdout.trim().is_empty(), "containers left: {o:#?}");
        // `podman run --rm` may return before conmon's exit command (`podman container
        // cleanup`, which deletes the runtime's state) has finished.
        wait_for_instance_processes(&self.dir);
        let states: Vec<_> = std::fs::read_dir(self.dir.join("runtime"))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert!(states.is_empty(), "runtime state left: {states:?}");
        teardown_checks(&self.dir, &self.cgroup);
        self.finished = true;
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        if !self.finished {
            teardown_after_failure(&self.dir, &self.cgroup);
        }
    }
}

/// `Command::output` under a timeout ([`run`]).
pub trait OutputWithin {
    fn output_within(&mut self, secs: u64) -> Output;
}

impl OutputWithin for Command {
    fn output_within(&mut self, secs: u64) -> Output {
        run(self, secs)
    }
}

// ---------------------------------------------------------------------------------------
// Bundles, for running a runtime directly

/// A scratch directory with OCI bundles for running a runtime binary directly (no
/// caller): a copy of the image's rootfs (from `.ci/oci-image.sh`'s unpacked bundle),
/// shared by the bundles, and the runtime's `--root` (`DIR/state`). Each bundle's
/// `cgroupsPath` is `/NAME/BUNDLE`, `NAME` being this instance's cgroup name.
///
/// Call [`Bundles::finish`] at the end of a test (it checks nothing is left); dropping
/// an unfinished one cleans up silently.
#[cfg_attr(not(feature = "oci"), allow(dead_code))]
pub struct Bundles {
    pub dir: PathBuf,
    pub cgroup: String,
    runtime: Runtime,
    calls: AtomicU32,
    finished: bool,
}

#[cfg_attr(not(feature = "oci"), allow(dead_code))]
impl Bundles {
    pub fn new(runtime: &Runtime) -> Bundles {
        let image = image_archive().parent().unwrap().join("bundle");
        let (dir, cgroup) = scratch();
        let o = run(
            Command::new(tool("cp"))
                .arg("-a")
                .arg(image.join("rootfs"))
                .arg(dir.join("rootfs")),
            120,
        );
        assert!(o.status.success(), "copying the rootfs: {o:#?}");
        Bundles {
            dir,
            cgroup,
            runtime: runtime.clone(),
            calls: AtomicU32::new(0),
            finished: false,
        }
    }

    /// The shared rootfs (a file the workload writes at `/x` is `rootfs()/x` here).
    pub fn rootfs(&self) -> PathBuf {
        self.dir.join("rootfs")
    }

    /// The runtime's `--root`.
    pub fn state_root(&self) -> PathBuf {
        self.dir.join("state")
    }

    /// Writes the bundle `DIR/name`: umoci's config.json with `process.args` = `args`, no
    /// terminal, the shared rootfs, and the cgroupsPath `/NAME/name`. Returns its path.
    pub fn bundle(&self, name: &str, args: &[&str]) -> PathBuf {
        let image = image_archive().parent().unwrap().join("bundle");
        let text = std::fs::read_to_string(image.join("config.json")).unwrap();
        let mut cfg: serde_json::Value = serde_json::from_str(&text).unwrap();
        cfg["process"]["terminal"] = false.into();
        cfg["process"]["args"] = args.into();
        cfg["root"]["path"] = self.rootfs().display().to_string().into();
        cfg["linux"]["cgroupsPath"] = format!("/{}/{name}", self.cgroup).into();
        let b = self.dir.join(name);
        std::fs::create_dir_all(&b).unwrap();
        std::fs::write(b.join("config.json"), cfg.to_string()).unwrap();
        b
    }

    /// Runs the runtime with `--root STATE ARGS...` (at most 60 s). Its stdout and stderr
    /// are files (a container it creates inherits them and may outlive it), read back
    /// when it exits; the workload's own output is in [`Bundles::output_of`].
    pub fn runtime(&self, args: &[&str]) -> Output {
        let n = self.calls.fetch_add(1, Ordering::Relaxed);
        let (out, err) = (
            self.dir.join(format!("out.{n}")),
            self.dir.join(format!("err.{n}")),
        );
        let mut cmd = Command::new(&self.runtime.path);
        cmd.arg("--root")
            .arg(self.state_root())
            .args(args)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::fs::File::create(&err).unwrap());
        let what = format!("{cmd:?}");
        let status = wait_child(&mut spawn(&mut cmd), 60, &what);
        Output {
            what,
            status,
            stdout: std::fs::read_to_string(&out).unwrap_or_default(),
            stderr: std::fs::read_to_string(&err).unwrap_or_default(),
        }
    }

    /// What has been written so far to the stdout of the runtime's call `call` (0 for
    /// the first), which its container inherited.
    pub fn output_of(&self, call: u32) -> String {
        std::fs::read_to_string(self.dir.join(format!("out.{call}"))).unwrap_or_default()
    }

    /// The container ids that have a state directory.
    pub fn states(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.state_root())
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    /// Asserts that no container state is left, then runs the common leftover checks (no
    /// process in or naming the instance, no cgroup, no mount) and removes the directory.
    pub fn finish(mut self) {
        assert!(
            self.states().is_empty(),
            "runtime state left: {:?}",
            self.states()
        );
        teardown_checks(&self.dir, &self.cgroup);
        self.finished = true;
    }
}

impl Drop for Bundles {
    fn drop(&mut self) {
        if !self.finished {
            teardown_after_failure(&self.dir, &self.cgroup);
        }
    }
}
