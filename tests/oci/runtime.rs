//! The `cellblock` runtime driven directly, as a caller would, on a busybox bundle
//! (`harness::Bundles`): create stops the workload before it runs and start lets it run,
//! the host's view of the container at each step, kill and delete, and the errors (unknown
//! id, duplicate id, bad config.json, missing or unexecutable program): each clear, with
//! nothing left behind (state directory, cgroups, processes, mounts).

use crate::harness::{self, Bundles, Output, Runtime};
use std::path::Path;

fn cellblock() -> Runtime {
    Runtime {
        path: env!("CARGO_BIN_EXE_cellblock").into(),
    }
}

/// `state ID`, parsed.
fn state(b: &Bundles, id: &str) -> serde_json::Value {
    let o = b.runtime(&["state", id]).ok();
    serde_json::from_str(&o.stdout).unwrap_or_else(|e| panic!("state {id}: {e}: {o:#?}"))
}

fn status(b: &Bundles, id: &str) -> String {
    state(b, id)["status"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Fails unless `o` failed (exit 1) with a message containing every one of `words`.
fn assert_fails_with(o: &Output, words: &[&str]) {
    assert_eq!(o.status.code(), Some(1), "{o:#?}");
    for w in words {
        assert!(o.stderr.contains(w), "stderr lacks {w:?}: {o:#?}");
    }
}

/// Whether host process `pid` is a live (not zombie) process.
fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit(')').next().map(|r| r.trim_start().to_string()))
        .is_some_and(|r| !r.starts_with('Z'))
}

/// create: the pid file names a host process in the container's cgroup and in a PID
/// namespace of its own, `state` says "created", and the workload has not run (its marker
/// file and its line are absent after a while); start: it runs (marker and line appear,
/// `state` says "running", `ps` lists it); `delete` without `--force` refuses a running
/// container; `kill --all ID 9` stops it; `delete` removes its state and cgroups.
#[test]
fn create_stops_before_the_workload_and_start_runs_it() {
    let b = Bundles::new(&cellblock());
    let marker = b.rootfs().join("ran-gate");
    let bundle = b.bundle(
        "gate",
        &["sh", "-c", "touch /ran-gate; echo started; exec sleep 1000"],
    );
    let pid_file = bundle.join("init.pid");
    let bs = bundle.display().to_string();
    let ps = pid_file.display().to_string();
    b.runtime(&["create", "--bundle", &bs, "--pid-file", &ps, "gate"])
        .ok();
    let pid: i32 = std::fs::read_to_string(&pid_file).unwrap().parse().unwrap();
    assert!(alive(pid), "the init {pid} does not outlive create");
    let cg = format!("{}/gate", b.cgroup);
    assert!(
        harness::pids_in_cgroups(&cg).contains(&pid),
        "{pid} is not in the cgroup {cg}"
    );
    let ns = |p: &str| std::fs::read_link(format!("/proc/{p}/ns/pid")).unwrap();
    assert_ne!(
        ns(&pid.to_string()),
        ns("self"),
        "no PID namespace of its own"
    );
    let st = state(&b, "gate");
    assert_eq!(st["status"], "created", "{st}");
    assert_eq!(st["pid"], pid, "{st}");
    assert_eq!(st["id"], "gate");
    assert_eq!(st["bundle"], bs.as_str());
    // Not a speed bound: a window in which a workload let through would have run.
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert!(!marker.exists(), "the workload ran before start");
    assert_eq!(b.output_of(0), "", "the workload printed before start");
    assert_eq!(status(&b, "gate"), "created");

    b.runtime(&["start", "gate"]).ok();
    harness::wait_until(
        30,
        "the started workload writes its marker and its line",
        || marker.exists() && b.output_of(0) == "started\n",
        || b.output_of(0),
    );
    harness::wait_until(
        30,
        "the workload execs sleep",
        || {
            std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default()
                == b"sleep\x001000\x00"
        },
        String::new,
    );
    assert_eq!(status(&b, "gate"), "running");
    let o = b.runtime(&["ps", "--format", "json", "gate"]).ok();
    let listed: Vec<i32> = serde_json::from_str(&o.stdout).unwrap();
    assert_eq!(listed, [pid], "{o:#?}");

    let o = b.runtime(&["delete", "gate"]);
    assert_fails_with(&o, &["not stopped", "running"]);
    assert!(alive(pid), "a refused delete killed the container");

    b.runtime(&["kill", "--all", "gate", "9"]).ok();
    harness::wait_until(
        30,
        "the killed container is stopped",
        || status(&b, "gate") == "stopped",
        || state(&b, "gate").to_string(),
    );
    b.runtime(&["delete", "gate"]).ok();
    assert!(b.states().is_empty(), "state left: {:?}", b.states());
    assert!(
        harness::cgroup_dirs(&cg).is_empty(),
        "the container's cgroup is left"
    );
    // The shim's second call.
    b.runtime(&["delete", "--force", "gate"]).ok();
    b.finish();
}

/// `delete` of a created container (never started) without `--force` fails and leaves it
/// alone (runtime-spec: deleting a container that is not stopped MUST fail; runtime-tools'
/// `delete`): its init lives on, `state` still says "created", and `start` still runs the
/// workload. containerd's shim sequence (`delete ID`, then `delete --force ID`) still
/// cleans a created container up: state, cgroup and init gone.
#[test]
fn delete_of_a_created_container_needs_force() {
    let b = Bundles::new(&cellblock());
    let marker = b.rootfs().join("ran-created");
    let bundle = b.bundle(
        "created",
        &["sh", "-c", "touch /ran-created; exec sleep 1000"],
    );
    let bs = bundle.display().to_string();
    let pid_file = bundle.join("init.pid");
    let ps = pid_file.display().to_string();
    for round in ["start after the refusal", "the shim's sequence"] {
        b.runtime(&["create", "--bundle", &bs, "--pid-file", &ps, "created"])
            .ok();
        let pid: i32 = std::fs::read_to_string(&pid_file).unwrap().parse().unwrap();
        let o = b.runtime(&["delete", "created"]);
        assert_fails_with(&o, &["not stopped", "created"]);
        assert!(alive(pid), "{round}: a refused delete killed the init");
        assert_eq!(status(&b, "created"), "created", "{round}");
        if round == "start after the refusal" {
            b.runtime(&["start", "created"]).ok();
            harness::wait_until(
                30,
                "the workload runs after the refused delete",
                || marker.exists(),
                String::new,
            );
            b.runtime(&["kill", "--all", "created", "9"]).ok();
            harness::wait_until(
                30,
                "the killed container is stopped",
                || status(&b, "created") == "stopped",
                || state(&b, "created").to_string(),
            );
            b.runtime(&["delete", "created"]).ok();
        } else {
            b.runtime(&["delete", "--force", "created"]).ok();
            harness::wait_until(30, "the init is gone", || !alive(pid), String::new);
        }
        assert!(
            b.states().is_empty(),
            "{round}: state left: {:?}",
            b.states()
        );
        let cg = format!("{}/created", b.cgroup);
        assert!(
            harness::cgroup_dirs(&cg).is_empty(),
            "{round}: the container's cgroup is left"
        );
    }
    b.finish();
}

/// `kill ID` (SIGTERM by default, and by name or number) reaches the init: a trap
/// writes which one.
#[test]
fn kill_delivers_the_named_signal() {
    let b = Bundles::new(&cellblock());
    let bundle = b.bundle(
        "trap",
        &[
            "sh",
            "-c",
            "trap 'echo TERM >> /trap-log' TERM; trap 'echo USR1 >> /trap-log' USR1; \
             echo ready; while :; do sleep 0.1; done",
        ],
    );
    let bs = bundle.display().to_string();
    b.runtime(&["create", "--bundle", &bs, "trap"]).ok();
    b.runtime(&["start", "trap"]).ok();
    harness::wait_until(
        30,
        "ready",
        || b.output_of(0) == "ready\n",
        || b.output_of(0),
    );
    let log = b.rootfs().join("trap-log");
    for (args, want) in [
        (&["kill", "trap"][..], "TERM\n"),
        (&["kill", "trap", "USR1"][..], "TERM\nUSR1\n"),
        (&["kill", "trap", "SIGTERM"][..], "TERM\nUSR1\nTERM\n"),
        (&["kill", "trap", "10"][..], "TERM\nUSR1\nTERM\nUSR1\n"),
    ] {
        b.runtime(args).ok();
        harness::wait_until(
            30,
            &format!("{args:?} reaches the trap"),
            || std::fs::read_to_string(&log).unwrap_or_default() == want,
            || std::fs::read_to_string(&log).unwrap_or_default(),
        );
    }
    let o = b.runtime(&["kill", "trap", "NOSUCH"]);
    assert_fails_with(&o, &["unknown signal", "NOSUCH"]);
    b.runtime(&["delete", "--force", "trap"]).ok();
    b.finish();
}

/// An unknown id fails every verb with a message naming it, except `delete --force`
/// (which the shim calls after `delete`); a duplicate id is refused and the first
/// container is untouched.
#[test]
fn unknown_and_duplicate_ids() {
    let b = Bundles::new(&cellblock());
    for verb in ["state", "start", "delete", "pause", "resume", "ps"] {
        let o = b.runtime(&[verb, "nope"]);
        assert_fails_with(&o, &["container does not exist: nope"]);
    }
    assert_fails_with(
        &b.runtime(&["kill", "nope", "9"]),
        &["does not exist: nope"],
    );
    b.runtime(&["delete", "--force", "nope"]).ok();
    assert_fails_with(&b.runtime(&["state", "../x"]), &["invalid container id"]);

    let bs = b.bundle("dup", &["sleep", "1000"]).display().to_string();
    b.runtime(&["create", "--bundle", &bs, "dup"]).ok();
    let before = state(&b, "dup");
    let o = b.runtime(&["create", "--bundle", &bs, "dup"]);
    assert_fails_with(&o, &["container ID already exists: dup"]);
    assert_eq!(
        state(&b, "dup"),
        before,
        "the refused create changed the first"
    );
    assert!(alive(before["pid"].as_i64().unwrap() as i32));
    b.runtime(&["delete", "--force", "dup"]).ok();
    b.finish();
}

/// A create that fails leaves nothing: no state directory, no cgroup, no process, no
/// mount (checked by `finish`), and says why, on stderr and as the last JSON `msg` of
/// `--log` (what containerd's shim reports): a config.json that is not JSON, a bundle
/// without one, a missing program (worded "no such file or directory", which podman maps
/// to 127) and one that is not executable ("permission denied": 126).
#[test]
fn failed_creates_are_clear_and_leave_nothing() {
    let b = Bundles::new(&cellblock());
    let log = b.dir.join("log.json");
    let ls = log.display().to_string();
    let create = |name: &str| -> Output {
        let bs = b.dir.join(name).display().to_string();
        b.runtime(&[
            "--log",
            &ls,
            "--log-format",
            "json",
            "create",
            "--bundle",
            &bs,
            name,
        ])
    };
    let bad = b.bundle("badjson", &["true"]);
    std::fs::write(bad.join("config.json"), "{ not json").unwrap();
    std::fs::create_dir_all(b.dir.join("noconfig")).unwrap();
    let cases: [(&str, Vec<&str>); 4] = [
        ("badjson", vec!["config.json"]),
        ("noconfig", vec!["config.json"]),
        ("nx", vec!["/nonexistent", "no such file or directory"]),
        ("noexec", vec!["/etc/passwd", "permission denied"]),
    ];
    b.bundle("nx", &["/nonexistent"]);
    b.bundle("noexec", &["/etc/passwd"]);
    for (name, words) in cases {
        check(&b, name, create(name), &words, &log);
    }
    assert!(!Path::new(&b.dir.join("nx/init.pid")).exists());

    // A failure after the container was set up (the console socket is missing): the
    // container waiting at its gate is destroyed too.
    let tty = b.bundle("tty", &["true"]);
    let mut cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(tty.join("config.json")).unwrap()).unwrap();
    cfg["process"]["terminal"] = true.into();
    std::fs::write(tty.join("config.json"), cfg.to_string()).unwrap();
    let sock = b.dir.join("no-such-dir/pty.sock").display().to_string();
    let ts = tty.display().to_string();
    let o = b.runtime(&[
        "--log",
        &ls,
        "--log-format",
        "json",
        "create",
        "--bundle",
        &ts,
        "--console-socket",
        &sock,
        "tty",
    ]);
    check(&b, "tty", o, &["console socket", &sock], &log);
    b.finish();
}

/// `o` failed with `words`, said so as `log`'s last JSON line too, and container `name`
/// left nothing: no state, no cgroup, no process naming the scratch directory.
fn check(b: &Bundles, name: &str, o: Output, words: &[&str], log: &Path) {
    assert_fails_with(&o, words);
    let last = std::fs::read_to_string(log).unwrap();
    let last: serde_json::Value = serde_json::from_str(last.lines().last().unwrap()).unwrap();
    assert_eq!(last["level"], "error");
    let msg = last["msg"].as_str().unwrap();
    assert!(
        o.stderr.trim_end().ends_with(msg),
        "--log's msg {msg:?} is not the stderr message {:?}",
        o.stderr
    );
    assert!(
        b.states().is_empty(),
        "{name}: state left: {:?}",
        b.states()
    );
    let cg = format!("{}/{name}", b.cgroup);
    assert!(harness::cgroup_dirs(&cg).is_empty(), "{name}: cgroup left");
    assert!(
        harness::pids_mentioning(&b.dir.to_string_lossy()).is_empty(),
        "{name}: a process of the failed create is left"
    );
}

/// `run` (create + start + wait + delete) returns the workload's exit code and leaves no
/// state; `run --detach` returns at once with the container
/// running.
#[test]
fn run_returns_the_exit_code() {
    let b = Bundles::new(&cellblock());
    let bs = b.bundle("seven", &["sh", "-c", "echo in-run; exit 7"]);
    let o = b.runtime(&["run", "--bundle", &bs.display().to_string(), "seven"]);
    assert_eq!(
        (o.status.code(), o.stdout.as_str()),
        (Some(7), "in-run\n"),
        "{o:#?}"
    );
    assert!(b.states().is_empty(), "state left: {:?}", b.states());

    let bs = b.bundle("bg", &["sleep", "1000"]).display().to_string();
    b.runtime(&["run", "--detach", "--bundle", &bs, "bg"]).ok();
    assert_eq!(status(&b, "bg"), "running");
    b.runtime(&["delete", "--force", "bg"]).ok();
    b.finish();
}

/// A foreground `run` passes the signals it gets to the container, as runc's does: a
/// SIGTERM to the runtime reaches the workload's trap (which exits 9, and `run` returns
/// that code and deletes the container), rather than ending the runtime alone and
/// orphaning a running container.
#[test]
fn foreground_run_forwards_signals() {
    let b = Bundles::new(&cellblock());
    let bs = b.bundle(
        "fwd",
        &[
            "sh",
            "-c",
            "trap 'echo got-term > /fwd-log; exit 9' TERM; touch /fwd-ready; \
             while :; do sleep 0.1; done",
        ],
    );
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_cellblock"));
    cmd.arg("--root")
        .arg(b.state_root())
        .args(["run", "--bundle", &bs.display().to_string(), "fwd"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null());
    let mut child = harness::spawn(&mut cmd);
    let ready = b.rootfs().join("fwd-ready");
    harness::wait_until(
        30,
        "the workload's trap is set",
        || ready.exists(),
        String::new,
    );
    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    let st = harness::wait_child(&mut child, 30, "run after SIGTERM");
    assert_eq!(st.code(), Some(9), "run's exit code");
    assert_eq!(
        std::fs::read_to_string(b.rootfs().join("fwd-log")).unwrap_or_default(),
        "got-term\n"
    );
    assert!(b.states().is_empty(), "state left: {:?}", b.states());
    b.finish();
}

/// A foreground `run` is one container for the other verbs while it runs, on both of its
/// paths: spawned directly (no hook or other work between create and start) and through
/// create and start (here with a `createRuntime` hook, which must run between them). In
/// each, with `--pid-file`: `state` says "running" with that pid, `ps` lists it, `pause`
/// and `resume` work, and `kill ID KILL` from another process ends it: `run` returns 137
/// (128 + SIGKILL, as runc) and leaves no state, cgroup or process; the hook ran once, on
/// its path only. Then a `delete --force` from outside during a direct `run`: the same.
#[test]
fn a_foreground_run_is_managed_from_outside_on_both_paths() {
    let b = Bundles::new(&cellblock());
    let hook_log = b.rootfs().join("hook-log");
    let ids = ["direct", "gated", "deleted"];
    for id in ids {
        let bundle = b.bundle(id, &["sleep", "1000"]);
        if id == "gated" {
            let log = hook_log.display().to_string();
            edit_config(&bundle, |c| {
                c["hooks"] = serde_json::json!({
                    "createRuntime": [recording_hook("createRuntime", &log, 0)]
                });
            });
        }
        let pid_file = bundle.join("run.pid");
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_cellblock"));
        cmd.arg("--root")
            .arg(b.state_root())
            .args([
                "run",
                "--bundle",
                &bundle.display().to_string(),
                "--pid-file",
            ])
            .arg(&pid_file)
            .arg(id)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null());
        let mut run = harness::spawn(&mut cmd);
        harness::wait_until(30, "the pid file", || pid_file.exists(), String::new);
        let pid: i32 = std::fs::read_to_string(&pid_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let st = state(&b, id);
        assert_eq!(
            (st["status"].as_str(), st["pid"].as_i64()),
            (Some("running"), Some(pid as i64)),
            "{id}: {st}"
        );
        let ps = b.runtime(&["ps", "--format", "json", id]).ok();
        assert_eq!(ps.stdout.trim(), format!("[{pid}]"), "{id}");
        b.runtime(&["pause", id]).ok();
        assert_eq!(status(&b, id), "paused", "{id}");
        b.runtime(&["resume", id]).ok();
        assert_eq!(status(&b, id), "running", "{id}");
        let verb: &[&str] = if id == "deleted" {
            &["delete", "--force", id]
        } else {
            &["kill", id, "KILL"]
        };
        b.runtime(verb).ok();
        let code = harness::wait_child(&mut run, 30, "run after the verb").code();
        assert_eq!(code, Some(137), "{id}: run's exit code");
        assert!(!alive(pid), "{id}: the container outlived its run");
        assert!(b.states().is_empty(), "{id}: state left: {:?}", b.states());
    }
    let logged = std::fs::read_to_string(&hook_log).unwrap_or_default();
    assert_eq!(
        logged.lines().count(),
        1,
        "createRuntime ran once, for `gated`: {logged:?}"
    );
    assert!(logged.starts_with("createRuntime "), "{logged:?}");
    b.finish();
}

/// `exec` runs a process in the running container: it sees the container's init as its
/// PID 1 and its exit code is `exec`'s; with `--detach --pid-file --process FILE` (the
/// shim's form) it returns at once, the process runs on in the container's cgroup (`ps`
/// lists it) and `kill --all` ends it with the init.
#[test]
fn exec_joins_the_container() {
    let b = Bundles::new(&cellblock());
    let bs = b.bundle("box", &["sleep", "1000"]).display().to_string();
    let pid_file = b.dir.join("box/init.pid").display().to_string();
    b.runtime(&["create", "--bundle", &bs, "--pid-file", &pid_file, "box"])
        .ok();
    b.runtime(&["start", "box"]).ok();
    let init: i32 = std::fs::read_to_string(&pid_file).unwrap().parse().unwrap();

    let o = b.runtime(&["exec", "box", "sh", "-c", "cat /proc/1/cmdline; exit 5"]);
    assert_eq!(
        (o.status.code(), o.stdout.as_str()),
        (Some(5), "sleep\x001000\x00"),
        "{o:#?}"
    );

    let process = b.dir.join("process.json");
    let spec = serde_json::json!({
        "args": ["sleep", "999"], "cwd": "/", "env": ["PATH=/bin:/usr/bin"],
        "user": {"uid": 0, "gid": 0},
    });
    std::fs::write(&process, spec.to_string()).unwrap();
    let exec_pid = b.dir.join("exec.pid");
    let (pf, ep) = (
        process.display().to_string(),
        exec_pid.display().to_string(),
    );
    b.runtime(&[
        "exec",
        "--process",
        &pf,
        "--detach",
        "--pid-file",
        &ep,
        "box",
    ])
    .ok();
    let pid: i32 = std::fs::read_to_string(&exec_pid).unwrap().parse().unwrap();
    assert!(
        alive(pid),
        "the detached exec {pid} does not outlive the runtime"
    );
    let o = b.runtime(&["ps", "--format", "json", "box"]).ok();
    let mut listed: Vec<i32> = serde_json::from_str(&o.stdout).unwrap();
    listed.sort();
    let mut want = vec![init, pid];
    want.sort();
    assert_eq!(listed, want, "ps lists the init and the exec: {o:#?}");

    b.runtime(&["kill", "--all", "box", "KILL"]).ok();
    harness::wait_until(
        30,
        "the init and the exec die",
        || !alive(init) && !alive(pid),
        || format!("init alive {}, exec alive {}", alive(init), alive(pid)),
    );
    b.runtime(&["delete", "box"]).ok();
    b.finish();
}

/// `pause` freezes the container (the host's freezer says FROZEN, `state` says paused, a
/// running counter stops) and `resume` thaws it; `list` shows it with its status.
#[test]
fn pause_resume_and_list() {
    let b = Bundles::new(&cellblock());
    let bs = b
        .bundle(
            "ticker",
            &[
                "sh",
                "-c",
                "i=0; while :; do i=$((i+1)); echo $i > /ticks; sleep 0.05; done",
            ],
        )
        .display()
        .to_string();
    b.runtime(&["create", "--bundle", &bs, "ticker"]).ok();
    b.runtime(&["start", "ticker"]).ok();
    let ticks = b.rootfs().join("ticks");
    let read = || std::fs::read_to_string(&ticks).unwrap_or_default();
    harness::wait_until(
        30,
        "the ticker ticks",
        || read().trim().parse::<u32>().is_ok_and(|n| n >= 3),
        read,
    );
    b.runtime(&["pause", "ticker"]).ok();
    assert_eq!(status(&b, "ticker"), "paused");
    let freezer = harness::cgroup_dirs(&format!("{}/ticker", b.cgroup))
        .into_iter()
        .map(|d| d.join("freezer.state"))
        .find(|f| f.exists());
    if let Some(f) = &freezer {
        assert_eq!(std::fs::read_to_string(f).unwrap().trim(), "FROZEN");
    }
    let frozen_at = read();
    // Not a speed bound: a window in which a thawed ticker would tick several times.
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert_eq!(read(), frozen_at, "the paused container went on");
    let o = b.runtime(&["list", "--format", "json"]).ok();
    let listed: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
    assert_eq!(listed[0]["id"], "ticker", "{o:#?}");
    assert_eq!(listed[0]["status"], "paused", "{o:#?}");
    assert_fails_with(
        &b.runtime(&["pause", "ticker"]),
        &["cannot pause", "paused"],
    );

    b.runtime(&["resume", "ticker"]).ok();
    assert_eq!(status(&b, "ticker"), "running");
    if let Some(f) = &freezer {
        assert_eq!(std::fs::read_to_string(f).unwrap().trim(), "THAWED");
    }
    harness::wait_until(
        30,
        "the resumed ticker ticks again",
        || read() != frozen_at,
        read,
    );
    assert_eq!(b.runtime(&["list", "-q"]).ok().stdout, "ticker\n");
    b.runtime(&["delete", "--force", "ticker"]).ok();
    assert_eq!(b.runtime(&["list", "-q"]).ok().stdout, "");
    b.finish();
}

/// Rewrites the bundle's config.json with `f`.
fn edit_config(bundle: &Path, f: impl FnOnce(&mut serde_json::Value)) {
    let path = bundle.join("config.json");
    let mut cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    f(&mut cfg);
    std::fs::write(&path, cfg.to_string()).unwrap();
}

/// A hook that appends `KIND HOSTNAME STATUS` to `log` (HOSTNAME: the UTS namespace it
/// runs in; STATUS: the `status` of the state it reads on stdin), then exits `code`.
fn recording_hook(kind: &str, log: &str, code: i32) -> serde_json::Value {
    serde_json::json!({
        "path": "/bin/sh",
        "args": ["sh", "-c", format!(
            "s=$(cat | grep -o '\"status\":\"[a-z]*\"' | cut -d'\"' -f4); \
             echo \"{kind} $(hostname) $s\" >> {log}; exit {code}")],
        "env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"],
    })
}

/// runtime-spec hooks, the six kinds, each where and when the spec runs it: `prestart`
/// and `createRuntime` at `create` in the runtime's namespaces (they see the host's
/// hostname and status "created"), `createContainer` at `create` and `startContainer` at
/// `start` in the container's (its hostname, its root: their log is inside the rootfs),
/// `poststart` after the start ("running"), `poststop` at `delete` ("stopped"). Then the
/// failure path: a failing `createContainer` hook fails `create` with a message naming it,
/// the container is torn down (nothing left) and `poststop` still runs.
#[test]
fn hooks_run_where_and_when_the_spec_says() {
    let b = Bundles::new(&cellblock());
    let host_log = b.dir.join("hooks.log");
    let host_log_s = host_log.display().to_string();
    let in_log = b.rootfs().join("hooks-in.log");
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_string();
    let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
    let configure = |bundle: &Path, fail_create_container: bool| {
        edit_config(bundle, |cfg| {
            cfg["hostname"] = "hooked".into();
            let ns = cfg["linux"]["namespaces"].as_array_mut().unwrap();
            if !ns.iter().any(|n| n["type"] == "uts") {
                ns.push(serde_json::json!({"type": "uts"}));
            }
            let cc_code = if fail_create_container { 3 } else { 0 };
            cfg["hooks"] = serde_json::json!({
                "prestart": [recording_hook("prestart", &host_log_s, 0)],
                "createRuntime": [recording_hook("createRuntime", &host_log_s, 0)],
                "createContainer": [recording_hook("createContainer", "/hooks-in.log", cc_code)],
                "startContainer": [recording_hook("startContainer", "/hooks-in.log", 0)],
                "poststart": [recording_hook("poststart", &host_log_s, 0)],
                "poststop": [recording_hook("poststop", &host_log_s, 0)],
            });
        })
    };
    let bundle = b.bundle("hooked", &["sh", "-c", "hostname > /workload-ran"]);
    configure(&bundle, false);
    let bs = bundle.display().to_string();

    b.runtime(&["create", "--bundle", &bs, "hooked"]).ok();
    assert_eq!(
        read(&host_log),
        format!("prestart {host} created\ncreateRuntime {host} created\n")
    );
    assert_eq!(read(&in_log), "createContainer hooked created\n");
    assert!(
        !b.rootfs().join("workload-ran").exists(),
        "ran before start"
    );

    b.runtime(&["start", "hooked"]).ok();
    assert_eq!(
        read(&in_log),
        "createContainer hooked created\nstartContainer hooked created\n"
    );
    assert!(
        read(&host_log).ends_with(&format!("poststart {host} running\n")),
        "{}",
        read(&host_log)
    );
    harness::wait_until(
        30,
        "the workload ran and stopped",
        || status(&b, "hooked") == "stopped",
        || read(&b.rootfs().join("workload-ran")),
    );
    assert_eq!(read(&b.rootfs().join("workload-ran")), "hooked\n");
    b.runtime(&["delete", "hooked"]).ok();
    assert_eq!(
        read(&host_log),
        format!(
            "prestart {host} created\ncreateRuntime {host} created\npoststart {host} running\n\
             poststop {host} stopped\n"
        )
    );

    // A failing createContainer hook.
    std::fs::remove_file(&host_log).unwrap();
    std::fs::remove_file(&in_log).unwrap();
    let bundle = b.bundle("hookfail", &["sh", "-c", "touch /must-not-run"]);
    configure(&bundle, true);
    let o = b.runtime(&[
        "create",
        "--bundle",
        &bundle.display().to_string(),
        "hookfail",
    ]);
    assert_fails_with(&o, &["createContainer"]);
    assert_eq!(read(&in_log), "createContainer hooked created\n");
    assert_eq!(
        read(&host_log),
        format!("prestart {host} created\ncreateRuntime {host} created\npoststop {host} stopped\n")
    );
    assert!(!b.rootfs().join("must-not-run").exists());
    b.finish();
}

/// `/proc/PID/cgroup` as (controllers field, path) lines.
fn cgroups_of(pid: i32) -> Vec<(String, String)> {
    std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let mut f = l.splitn(3, ':');
            let (_, c, p) = (f.next()?, f.next()?, f.next()?);
            Some((c.to_string(), p.to_string()))
        })
        .collect()
}

/// `exec` adds a process under the container's own protections. Its seccomp profile: runc
/// applies config.json's to exec'd processes, and the attack is a syscall the profile
/// denies (`mkdir`, EPERM here) tried through `exec`; the control is the same exec in a
/// container without the profile, which succeeds. Its cgroup, also when config.json has
/// no cgroupsPath (umoci's config; the runtime then makes `cellblock-oci/ID` under its own
/// cgroup in each hierarchy, and `exec` joins the init's): `ps` lists the exec'd process,
/// it is in the init's cgroups, and `delete` removes them, and the emptied `cellblock-oci`.
#[test]
fn exec_gets_the_containers_seccomp_profile_and_cgroup() {
    let b = Bundles::new(&cellblock());
    let profile = serde_json::json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}],
    });
    for (id, seccomp) in [("sec", true), ("nosec", false)] {
        let bundle = b.bundle(id, &["sleep", "1000"]);
        edit_config(&bundle, |cfg| {
            cfg["linux"].as_object_mut().unwrap().remove("cgroupsPath");
            match seccomp {
                true => cfg["linux"]["seccomp"] = profile.clone(),
                false => drop(cfg["linux"].as_object_mut().unwrap().remove("seccomp")),
            }
        });
        let pid_file = b.dir.join(format!("{id}.pid")).display().to_string();
        let bs = bundle.display().to_string();
        b.runtime(&["create", "--bundle", &bs, "--pid-file", &pid_file, id])
            .ok();
        b.runtime(&["start", id]).ok();
        let init: i32 = std::fs::read_to_string(&pid_file).unwrap().parse().unwrap();

        let o = b.runtime(&["exec", id, "mkdir", &format!("/made-by-exec-{id}")]);
        let made = b.rootfs().join(format!("made-by-exec-{id}")).is_dir();
        match seccomp {
            true => {
                assert_eq!(o.status.code(), Some(1), "{o:#?}");
                assert!(o.stderr.contains("Operation not permitted"), "{o:#?}");
                assert!(!made);
            }
            false => assert!(o.status.success() && made, "control: {o:#?}"),
        }

        // The cgroup: `cellblock-oci/ID` below ours, shared by the exec'd process.
        let ours = cgroups_of(std::process::id() as i32);
        let theirs = cgroups_of(init);
        let own_dirs: Vec<(String, String)> = theirs
            .iter()
            .filter(|(c, p)| {
                let mine = ours.iter().find(|(oc, _)| oc == c).map(|(_, p)| p.as_str());
                let want = format!(
                    "{}/cellblock-oci/{id}",
                    mine.unwrap_or("").trim_end_matches('/')
                );
                *p == want
            })
            .cloned()
            .collect();
        assert!(
            own_dirs
                .iter()
                .any(|(c, _)| c.contains("memory") || c.is_empty()),
            "the init is not in cellblock-oci/{id} below our cgroups: {theirs:?} (ours {ours:?})"
        );
        let process = b.dir.join("process.json");
        std::fs::write(
            &process,
            serde_json::json!({"args": ["sleep", "999"], "cwd": "/", "user": {"uid": 0, "gid": 0}})
                .to_string(),
        )
        .unwrap();
        let exec_pid = b.dir.join("exec.pid");
        b.runtime(&[
            "exec",
            "--process",
            &process.display().to_string(),
            "--detach",
            "--pid-file",
            &exec_pid.display().to_string(),
            id,
        ])
        .ok();
        let pid: i32 = std::fs::read_to_string(&exec_pid).unwrap().parse().unwrap();
        let exec_cgroups = cgroups_of(pid);
        for dir in &own_dirs {
            assert!(
                exec_cgroups.contains(dir),
                "{dir:?} not in {exec_cgroups:?}"
            );
        }
        let o = b.runtime(&["ps", "--format", "json", id]).ok();
        let listed: Vec<i32> = serde_json::from_str(&o.stdout).unwrap();
        assert!(listed.contains(&init) && listed.contains(&pid), "{o:#?}");

        b.runtime(&["delete", "--force", id]).ok();
        for (c, p) in &own_dirs {
            // v2: /sys/fs/cgroup/unified on a hybrid host, /sys/fs/cgroup on a v2-only one.
            let hierarchy = match c.as_str() {
                "" if Path::new("/sys/fs/cgroup/unified").is_dir() => "unified",
                c => c,
            };
            let dir = Path::new("/sys/fs/cgroup")
                .join(hierarchy)
                .join(p.trim_start_matches('/'));
            assert!(!dir.exists(), "{} left", dir.display());
            // And its `cellblock-oci` parent, empty now (no other test of this suite
            // leaves out cgroupsPath).
            let parent = dir.parent().unwrap();
            assert!(!parent.exists(), "{} left", parent.display());
        }
    }
    b.finish();
}

/// A cgroup layout other than this host's hybrid one, made for the runtime alone: each of
/// its calls runs in a private mount namespace where `/sys/fs/cgroup` shows only the v1
/// controllers (the v2 hierarchy at `unified` unmounted: a v1-only host), or only the v2
/// hierarchy, mounted at `/sys/fs/cgroup` (a v2-only host; its controllers are bound to v1
/// here, so it has none, as on a v2 host without delegated controllers).
fn in_layout(b_dir: &Path, v2_only: bool) -> Runtime {
    let setup = if v2_only {
        "umount -R -l /sys/fs/cgroup && mount -t cgroup2 cgroup2 /sys/fs/cgroup"
    } else {
        "umount /sys/fs/cgroup/unified"
    };
    let script = b_dir.join(if v2_only { "runtime-v2" } else { "runtime-v1" });
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nexec {} -m --propagation private /bin/sh -c '{setup} || exit 90; exec \"$0\" \"$@\"' {} \"$@\"\n",
            harness::tool("unshare").display(),
            harness::sh_quote(env!("CARGO_BIN_EXE_cellblock")),
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    Runtime { path: script }
}

/// The issue asks for hybrid, v1-only and v2-only hosts; every other test here runs on
/// this hybrid host, and this one runs the runtime under the two others (`in_layout`).
/// In each, seen from both sides: `run` returns the workload's exit code; a created
/// container is placed in the layout's hierarchies (its `/proc/PID/cgroup` from the host:
/// the container's path in the v1 controllers and our own v2 cgroup on v1-only, the
/// reverse on v2-only); `pause` freezes it (v1 `freezer.state`, v2 `cgroup.events`) and
/// `resume` thaws it; `delete` leaves nothing; on v2-only, a memory limit is refused
/// clearly (all about limits that this host's controller-less v2 can show). The device
/// rules hold in each (v1 `devices.deny`, or the v2 BPF program): the attack, with
/// `CAP_MKNOD` given, makes a block device node (the default rules let any be made,
/// `b *:* m`, as runc's do) and opens it, and opens one the rootfs holds: both opens are
/// refused with the config's rules (deny all, then the default devices), and both get
/// past the cgroup (the open then fails in the driver, or succeeds) when the config
/// allows every device, the control.
#[test]
fn the_runtime_works_on_v1_only_and_v2_only_cgroup_layouts() {
    harness::require_root();
    for v2_only in [false, true] {
        let layout = if v2_only { "v2-only" } else { "v1-only" };
        let scratch = TempDir::new(layout);
        let b = Bundles::new(&in_layout(&scratch.0, v2_only));
        // A block device node in the rootfs (7:0, loop0), made by the host.
        let node = b.rootfs().join("blk");
        nix::sys::stat::mknod(
            &node,
            nix::sys::stat::SFlag::S_IFBLK,
            nix::sys::stat::Mode::from_bits_truncate(0o600),
            nix::sys::stat::makedev(7, 0),
        )
        .unwrap();

        let code = b.bundle("code", &["sh", "-c", "exit 7"]);
        let o = b.runtime(&["run", "--bundle", &code.display().to_string(), "code"]);
        assert_eq!(o.status.code(), Some(7), "{layout}: {o:#?}");

        // (Made in the rootfs: the container's /dev is mounted nodev.)
        let attack = "rm -f /made; mknod /made b 7 0 && head -c1 /made 2>&1 >/dev/null; \
                      head -c1 /blk 2>&1 >/dev/null; echo done";
        let mut seen = Vec::new();
        for (name, allow_all) in [("attack", false), ("control", true)] {
            let bundle = b.bundle(name, &["sh", "-c", attack]);
            edit_config(&bundle, |c| {
                for set in ["bounding", "effective", "permitted"] {
                    c["process"]["capabilities"][set]
                        .as_array_mut()
                        .unwrap()
                        .push("CAP_MKNOD".into());
                }
                if allow_all {
                    c["linux"]["resources"]["devices"] =
                        serde_json::json!([{"allow": true, "access": "rwm"}]);
                }
            });
            let o = b.runtime(&["run", "--bundle", &bundle.display().to_string(), name]);
            assert_eq!(o.status.code(), Some(0), "{layout} {name}: {o:#?}");
            seen.push(o.stdout);
        }
        let denied = seen[0].matches("Operation not permitted").count();
        assert_eq!(
            denied, 2,
            "{layout}: the attack got past the device rules: {seen:?}"
        );
        assert!(
            !seen[1].contains("Operation not permitted") && seen[1].ends_with("done\n"),
            "{layout}: the control (every device allowed) was refused: {seen:?}"
        );

        if v2_only {
            // The limits cannot be shown on v2 here (this host binds the memory, pids and
            // cpu controllers to v1, so the v2 hierarchy has none of them): what can be
            // shown is that asking for one fails clearly and leaves nothing (b.finish()).
            let limited = b.bundle("limited", &["true"]);
            edit_config(&limited, |c| {
                c["linux"]["resources"]["memory"] = serde_json::json!({"limit": 67108864});
            });
            let o = b.runtime(&["run", "--bundle", &limited.display().to_string(), "limited"]);
            assert_fails_with(&o, &["memory controller is not available"]);
            eprintln!("v2-only: memory, pids and cpu limits not testable on this host's v2");
        }

        let sleeper = b.bundle("sleeper", &["sleep", "1000"]);
        let pid_file = sleeper.join("init.pid");
        b.runtime(&[
            "create",
            "--bundle",
            &sleeper.display().to_string(),
            "--pid-file",
            &pid_file.display().to_string(),
            "sleeper",
        ])
        .ok();
        b.runtime(&["start", "sleeper"]).ok();
        let pid: i32 = std::fs::read_to_string(&pid_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let ours = cgroups_of(std::process::id() as i32);
        let theirs = cgroups_of(pid);
        let want = format!("/{}/sleeper", b.cgroup);
        // The runtime's hierarchies: v2, or the v1 controllers it uses (the device rules,
        // pause, and the memory, pids and cpu limits); cpuset, blkio and named ones stay.
        let used: &[&str] = if v2_only {
            &[""]
        } else {
            &["devices", "freezer", "memory", "pids", "cpu", "cpuacct"]
        };
        assert!(!theirs.is_empty(), "{layout}: no /proc/{pid}/cgroup");
        for (controllers, path) in &theirs {
            let placed = path == &want;
            if used.contains(&controllers.as_str()) {
                assert!(placed, "{layout}: {controllers:?} at {path}, not {want}");
            } else {
                let own = ours.iter().find(|(c, _)| c == controllers).map(|(_, p)| p);
                assert_eq!(
                    own,
                    Some(path),
                    "{layout}: {controllers:?} moved: {theirs:?}"
                );
            }
        }
        b.runtime(&["pause", "sleeper"]).ok();
        assert_eq!(status(&b, "sleeper"), "paused", "{layout}");
        let (file, frozen, thawed) = if v2_only {
            (
                Path::new("/sys/fs/cgroup/unified")
                    .join(&want[1..])
                    .join("cgroup.events"),
                "frozen 1",
                "frozen 0",
            )
        } else {
            (
                Path::new("/sys/fs/cgroup/freezer")
                    .join(&want[1..])
                    .join("freezer.state"),
                "FROZEN",
                "THAWED",
            )
        };
        let read = || std::fs::read_to_string(&file).unwrap_or_default();
        assert!(
            read().contains(frozen),
            "{layout}: {}: {}",
            file.display(),
            read()
        );
        b.runtime(&["resume", "sleeper"]).ok();
        assert_eq!(status(&b, "sleeper"), "running", "{layout}");
        assert!(
            read().contains(thawed),
            "{layout}: {}: {}",
            file.display(),
            read()
        );
        b.runtime(&["delete", "--force", "sleeper"]).ok();
        assert!(!alive(pid), "{layout}: the container outlived delete");
        b.finish();
    }
}

/// A directory for a test's wrapper scripts, removed however the test ends.
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new(what: &str) -> TempDir {
        let d = std::env::temp_dir().join(format!("cellblock-oci-{what}-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        TempDir(d)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
