//! Helpers shared by the integration tests: each test binary (`tests/it`, `tests/escape`,
//! `tests/peers`) includes this module, and each of their modules uses some of it.
#![allow(dead_code)]

pub mod rootfs;

use std::collections::BTreeSet;
use std::path::Path;

/// Pids of our own zombie children (state `Z`, parent = this process).
pub fn zombie_children() -> Vec<i32> {
    let me = std::process::id() as i32;
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // Fields after the parenthesised command: state, ppid, ...
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r.trim().to_string()) else {
            continue;
        };
        let mut f = rest.split_whitespace();
        let (state, ppid) = (
            f.next().unwrap_or(""),
            f.next().and_then(|p| p.parse::<i32>().ok()).unwrap_or(0),
        );
        if state == "Z" && ppid == me {
            out.push(pid);
        }
    }
    out
}

/// The set of open descriptor numbers of this process.
pub fn open_fds() -> BTreeSet<i32> {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_string_lossy().parse().ok())
        .collect()
}

/// Whether process `pid` still exists (in any state but reaped).
pub fn alive(pid: i32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// The state letter of process `pid` (`R`, `S`, `Z`, ...) from /proc/<pid>/stat; `None`
/// once it is reaped.
pub fn state(pid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

/// Whether process `pid` exists and is not a zombie (a dead process its parent has not
/// reaped yet is dead for our purpose).
pub fn running(pid: i32) -> bool {
    !matches!(state(pid), None | Some('Z' | 'X'))
}

/// Host pids of the processes whose PID namespace has inode `ino`, in any state.
pub fn pids_in_pid_ns(ino: u64) -> Vec<i32> {
    use std::os::unix::fs::MetadataExt;
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_string_lossy().parse::<i32>().ok())
        .filter(|pid| {
            std::fs::metadata(format!("/proc/{pid}/ns/pid")).is_ok_and(|m| m.ino() == ino)
        })
        .collect()
}

/// Host pids of the processes of the PID namespace with inode `ino` that are still
/// running (zombies left out).
pub fn live_in_pid_ns(ino: u64) -> Vec<i32> {
    let mut pids = pids_in_pid_ns(ino);
    pids.retain(|&p| running(p));
    pids
}

/// Pids of the direct children of `pid` (its main thread's).
pub fn children_of(pid: i32) -> Vec<i32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// The number of threads of this process.
pub fn thread_count() -> usize {
    std::fs::read_dir("/proc/self/task").unwrap().count()
}

/// The host's uptime in seconds (CLOCK_BOOTTIME, from /proc/uptime).
pub fn host_uptime() -> f64 {
    std::fs::read_to_string("/proc/uptime")
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

/// Path of the example binary `name` of this crate: target/<profile>/examples/<name>, next
/// to this test binary's deps/ directory (`cargo test` builds the examples).
pub fn example(name: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    let p = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples")
        .join(name);
    assert!(
        p.exists(),
        "{} is missing: run the tests with `cargo test` (which builds the examples)",
        p.display()
    );
    p
}

/// Whether an unprivileged user (uid 65534, through `setpriv`) may create user namespaces
/// here; false as well when `setpriv` is missing.
pub fn unprivileged_userns_allowed() -> bool {
    std::process::Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "unshare",
            "--user",
            "true",
        ])
        .current_dir("/")
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// The host's mount table, one line per mount point (mount point field of mountinfo).
pub fn host_mount_points() -> Vec<String> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .map(|l| l.split_whitespace().nth(4).unwrap_or("").to_string())
        .collect()
}

/// Waits (polling, up to `secs`) until `f` is true.
pub async fn eventually(secs: u64, mut f: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while std::time::Instant::now() < deadline {
        if f() {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    f()
}

/// stdout of a command run on the host, trimmed.
pub fn host(cmd: &str) -> String {
    let out = std::process::Command::new("/bin/sh")
        .args(["-c", cmd])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Cgroup directories this test process created (`cellblock/<our pid>-*`) that still
/// exist, in every v1 hierarchy and the v2 one, under our own cgroup or the root.
pub fn our_cgroup_dirs() -> Vec<std::path::PathBuf> {
    cgroup_dirs_of(std::process::id())
}

/// [`our_cgroup_dirs`] of the supervisor `pid`, a child of ours (so in our cgroups).
pub fn cgroup_dirs_of(pid: u32) -> Vec<std::path::PathBuf> {
    let prefix = format!("{pid}-");
    let mut parents = Vec::new();
    for line in std::fs::read_to_string("/proc/self/cgroup")
        .unwrap()
        .lines()
    {
        let mut f = line.splitn(3, ':');
        let (_, ctrls, path) = (f.next(), f.next().unwrap_or(""), f.next().unwrap_or("/"));
        let rel = path.trim_start_matches('/');
        if ctrls.is_empty() {
            for m in ["/sys/fs/cgroup/unified", "/sys/fs/cgroup"] {
                parents.push(Path::new(m).join(rel).join("cellblock"));
            }
        } else {
            for c in ctrls.split(',') {
                let c = c.trim_start_matches("name=");
                parents.push(
                    Path::new("/sys/fs/cgroup")
                        .join(c)
                        .join(rel)
                        .join("cellblock"),
                );
            }
        }
    }
    let mut out = Vec::new();
    for p in parents {
        let Ok(rd) = std::fs::read_dir(&p) else {
            continue;
        };
        for e in rd.flatten() {
            if e.file_name().to_string_lossy().starts_with(&prefix) && e.path().is_dir() {
                out.push(e.path());
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// `cmd.spawn()`, retried while the kernel says ETXTBSY: a file just written by this
/// (multithreaded) test process can still be open for writing in a child that another test
/// thread is cloning right now, until that child execs. Go and Rust's own test suites meet
/// the same race.
pub fn spawn_retrying(cmd: &mut std::process::Command) -> std::process::Child {
    for _ in 0..200 {
        match cmd.spawn() {
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) => {
                std::thread::sleep(std::time::Duration::from_millis(10))
            }
            r => return r.unwrap(),
        }
    }
    panic!("still ETXTBSY after 2 s");
}

/// A deadline for one test: if the guard is still alive after `secs` seconds, the whole
/// test binary prints what hung, SIGKILLs `pids` (processes the test started) and exits
/// with status 101, so a hang fails the run instead of stalling it. Dropping the guard (the
/// test returned or panicked) disarms it.
///
/// Use it for waits that are not under a `tokio::time::timeout` of their own, such as
/// `std::process::Child::wait` or a whole `#[tokio::test]` body.
pub struct Deadline {
    _disarm: std::sync::mpsc::Sender<()>,
    pids: std::sync::Arc<std::sync::Mutex<Vec<i32>>>,
}

impl Deadline {
    /// Also SIGKILL `pid` when the deadline passes.
    pub fn kill_on_expiry(&self, pid: i32) {
        self.pids.lock().unwrap().push(pid);
    }
}

pub fn deadline(what: &'static str, secs: u64) -> Deadline {
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let pids = std::sync::Arc::new(std::sync::Mutex::new(Vec::<i32>::new()));
    let to_kill = pids.clone();
    std::thread::spawn(move || {
        if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
            rx.recv_timeout(std::time::Duration::from_secs(secs))
        {
            eprintln!("DEADLINE: `{what}` did not finish within {secs} s: failing the test binary");
            for &pid in to_kill.lock().unwrap().iter() {
                // SAFETY: kill(2) on a pid this test started.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
            std::process::exit(101);
        }
    });
    Deadline { _disarm: tx, pids }
}

/// Compiles `tests/escape/<name>.c` with the system `cc` into a directory of this test
/// process under the target's tmp (mode 0755, so a container's unprivileged ids can run
/// it), after removing the builds of earlier test processes that are gone. Call it once
/// per process and probe (behind a `OnceLock` in the one module that uses that probe).
pub fn compile_probe(name: &str) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    // The target's tmp, or (a suite run as another user than the build, which may not
    // write there) a directory of that user's under the system's.
    let mut tmp = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    if nix::unistd::access(&tmp, nix::unistd::AccessFlags::W_OK).is_err() {
        tmp = std::env::temp_dir().join(format!("cellblock-probes-{}", nix::unistd::geteuid()));
        std::fs::create_dir_all(&tmp)
            .unwrap_or_else(|e| panic!("no directory for the probes: {}: {e}", tmp.display()));
    }
    let prefix = format!("probe-{name}-");
    for e in std::fs::read_dir(&tmp).into_iter().flatten().flatten() {
        let file = e.file_name().to_string_lossy().into_owned();
        if let Some(pid) = file
            .strip_prefix(&prefix)
            .and_then(|p| p.parse::<i32>().ok())
        {
            if !alive(pid) {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
    let dir = tmp.join(format!("{prefix}{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = dir.join(name);
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/escape")
        .join(format!("{name}.c"));
    let st = std::process::Command::new("cc")
        .args(["-O1", "-Wall", "-o"])
        .arg(&out)
        .arg(&src)
        .status()
        .expect("running cc (gcc is needed to build the escape suites' probes)");
    assert!(st.success(), "compiling {}", src.display());
    out
}

/// Runs a container whose workload prints `RESULT <name> <outcome>` lines (the escape
/// suites' probes), asserts it exited 0, and returns `name -> outcome` with the whole
/// stdout (for failure messages). The container's stderr is echoed to the test's.
pub async fn probe_results(
    mut b: cellblock::ContainerBuilder,
) -> (std::collections::HashMap<String, String>, String) {
    let out = b.output().await.expect("the container starts");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !stderr.is_empty() {
        eprintln!("container stderr: {stderr}");
    }
    assert!(
        out.status.success(),
        "the probe failed: {:?}: {stdout}",
        out.status
    );
    let results = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("RESULT "))
        .filter_map(|l| l.split_once(' '))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    (results, stdout)
}

/// The outcome of `name` in [`probe_results`]' map; fails the test if the probe printed none.
pub fn probe_result<'a>(r: &'a std::collections::HashMap<String, String>, name: &str) -> &'a str {
    r.get(name)
        .map(String::as_str)
        .unwrap_or_else(|| panic!("no result for {name} in {r:?}"))
}

/// The name the test harness knows a test by, `module::function` (the binary's crate name
/// left out), from the test's `module_path!()`: what `--exact` needs when a test runs its
/// own binary again.
pub fn test_name(module_path: &str, function: &str) -> String {
    match module_path.split_once("::") {
        Some((_, module)) => format!("{module}::{function}"),
        None => function.to_string(),
    }
}

/// Set (to the test's name) in the process [`ran_alone`] starts.
const ALONE_ENV: &str = "CELLBLOCK_TEST_ALONE";

/// Runs the calling test in a process of its own. For a test that counts what belongs to
/// the whole process (descriptors, threads, zombie children, the cgroups named after our
/// pid) or changes it (the environment, rlimits, signal dispositions, the id pool, the
/// global tracing subscriber): a test binary holds many modules' tests, and whatever runs
/// next to it would disturb its counts, or be disturbed by its changes.
///
/// In the test binary it runs the binary again with only this test (`--exact`, one test
/// thread), fails unless that run passed exactly this one test, and returns true: the
/// caller returns at once. In that second process it returns false, and the caller goes on
/// with the test's body. Only one such process runs at a time.
///
/// ```ignore
/// if common::ran_alone(module_path!(), "nothing_is_left_behind") {
///     return;
/// }
/// ```
pub fn ran_alone(module_path: &str, function: &str) -> bool {
    let name = test_name(module_path, function);
    if std::env::var_os(ALONE_ENV).is_some_and(|v| v == name.as_str()) {
        return false;
    }
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let d = deadline("a test in a process of its own", 900);
    let mut cmd = std::process::Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "--exact",
        &name,
        "--include-ignored",
        "--test-threads=1",
        "--nocapture",
    ])
    .env(ALONE_ENV, &name)
    .stdin(std::process::Stdio::null())
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped());
    let child = spawn_retrying(&mut cmd);
    d.kill_on_expiry(child.id() as i32);
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Shown by the harness when this test fails, or with --nocapture.
    println!("--- {name}, in a process of its own ---\n{stdout}");
    eprintln!("{stderr}");
    assert!(
        out.status.success() && stdout.contains("test result: ok. 1 passed"),
        "{name} in a process of its own: {:?} (output above)",
        out.status
    );
    true
}

/// Held by a test that mounts on the host (outside any container) and by a test that
/// compares the host's mount table before and after, which a test binary would otherwise
/// run at the same time.
pub async fn host_mounts_lock() -> tokio::sync::MutexGuard<'static, ()> {
    static HOST_MOUNTS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    HOST_MOUNTS.lock().await
}

/// The namespaces most tests run their containers in: PID, MOUNT, UTS and IPC (not NET,
/// whose teardown is the slowest and is serialized by the kernel).
pub fn ns() -> cellblock::Namespaces {
    use cellblock::Namespaces;
    Namespaces::PID | Namespaces::MOUNT | Namespaces::UTS | Namespaces::IPC
}

/// [`ns`] and NET: the set the escape suites and the hardening tests attack, every
/// namespace a container gets without a user namespace or a time offset of its own.
pub fn default_ns() -> cellblock::Namespaces {
    ns() | cellblock::Namespaces::NET
}

/// `name -> outcome` of the `RESULT <name> <outcome>` lines in a probe's `stdout`, found
/// anywhere in a line (on a terminal, injected input is echoed in front of it).
pub fn results_in(stdout: &str) -> std::collections::HashMap<String, String> {
    stdout
        .lines()
        .filter_map(|l| l.find("RESULT ").map(|i| l[i + 7..].trim_end()))
        .filter_map(|l| l.split_once(' '))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A python3 harness that runs `argv[1..]` on a new pty whose master it reads, then prints
/// all it read and `EXIT <code>`: whatever a workload injects into its controlling
/// terminal (TIOCSTI) shows in that output.
pub const PTY_HARNESS: &str = r#"
import os, pty, sys
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[1], sys.argv[1:])
out = b""
while True:
    try:
        d = os.read(fd, 4096)
    except OSError:
        break
    if not d:
        break
    out += d
_, st = os.waitpid(pid, 0)
sys.stdout.write(out.decode(errors="replace"))
sys.stdout.write("\nEXIT %d\n" % os.waitstatus_to_exitcode(st))
"#;

/// This process's own directory in the v1 hierarchy of controller `ctrl`, if that
/// hierarchy is mounted.
pub fn own_v1_dir(ctrl: &str) -> Option<std::path::PathBuf> {
    let text = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    let path = text.lines().find_map(|l| {
        let mut f = l.splitn(3, ':');
        let (_, ctrls, path) = (f.next()?, f.next()?, f.next()?);
        ctrls.split(',').any(|c| c == ctrl).then(|| path.to_owned())
    })?;
    let dir = Path::new("/sys/fs/cgroup")
        .join(ctrl)
        .join(path.trim_start_matches('/'));
    dir.exists().then_some(dir)
}

/// This process's own cgroup directory that counts its pids: the v1 pids hierarchy's, or
/// on a unified host the v2 one.
pub fn own_pids_dir() -> std::path::PathBuf {
    if let Some(dir) = own_v1_dir("pids") {
        return dir;
    }
    let text = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    match (
        text.lines().find_map(|l| l.strip_prefix("0::")),
        cellblock::CgroupLayout::detect(),
    ) {
        (Some(rel), Ok(cellblock::CgroupLayout::Unified)) => {
            Path::new("/sys/fs/cgroup").join(rel.trim_start_matches('/'))
        }
        _ => panic!("no pids hierarchy here\n{text}"),
    }
}
