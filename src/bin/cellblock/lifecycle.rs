//! The verbs: create, start, run, delete, kill, state, ps, pause, resume, exec, list,
//! features. Each takes the container's state-directory lock (`state.rs`) for as long as
//! it works on the container (`exec` only while it reads the state: the process it runs
//! may live long).
//!
//! `create` sets the container up with the library (`ContainerBuilder::create` with a
//! start FIFO in the state directory), hands the pty master over the console socket,
//! writes the pid file and `state.json`, then detaches: the container's process stays at
//! its gate, reparented to the caller (a subreaper) when we exit; we never wait for it.
//! `start` writes the gate byte from another process (`Detached::start`).

use crate::console::{self, ConsoleError};
use crate::hooks::{self, HookError, HookKind};
use crate::spec::{self, BuildOpts, SpecError};
use crate::state::{self, Dir, State, StateError};
use crate::{Cli, Cmd, CreateOpts, ExecOpts, PsFormat};
use cellblock::{Detached, DetachedState};
use cellblock::{Signal, Stdio};
use oci_spec::runtime::{Process, Spec};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// The OCI runtime-spec version of the state this runtime prints.
const OCI_VERSION: &str = "1.0.2";

/// Everything a verb can fail with; the message is what the caller shows.
#[derive(Debug, thiserror::Error)]
pub enum RtError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error(transparent)]
    Hook(#[from] HookError),
    #[error(transparent)]
    Console(#[from] ConsoleError),
    /// A library error, worded for the callers ([`lib_message`]).
    #[error("{0}")]
    Lib(String),
    #[error("{0}")]
    Msg(String),
}

impl From<cellblock::Error> for RtError {
    fn from(e: cellblock::Error) -> RtError {
        RtError::Lib(lib_message(&e))
    }
}

fn msg(m: impl Into<String>) -> RtError {
    RtError::Msg(m.into())
}

/// The library's message, with the phrases podman classifies by (it maps "no such file or
/// directory" / "executable file not found" to exit 127 and "permission denied" to 126,
/// case-sensitively in places) and the program's path, as runc words them.
pub fn lib_message(e: &cellblock::Error) -> String {
    use cellblock::Error as E;
    match e {
        // A path (with a `/`) is not searched for: the library then names the root it was
        // looked up in, in `searched`.
        E::ProgramNotFound { program, searched } if program.contains('/') => {
            let within = if searched.is_empty() {
                String::new()
            } else {
                format!(" (looked up: {searched})")
            };
            format!("exec: {program:?}: stat {program}: no such file or directory{within}")
        }
        E::ProgramNotFound { program, searched } => {
            format!(
                "exec: {program:?}: executable file not found in $PATH (searched PATH={searched})"
            )
        }
        E::NotExecutable { path, reason } => {
            format!(
                "exec: {:?}: permission denied ({reason})",
                path.display().to_string()
            )
        }
        _ => {
            let m = e.to_string();
            let lower = m.to_lowercase();
            for phrase in ["no such file or directory", "permission denied"] {
                if lower.contains(phrase) && !m.contains(phrase) {
                    return format!("{m}: {phrase}");
                }
            }
            m
        }
    }
}

/// Runs the verb `cli` names; the exit code on success.
pub async fn dispatch(cli: &Cli) -> Result<i32, RtError> {
    let root = cli.root.as_path();
    match &cli.cmd {
        Cmd::Create(o) => create(root, o).await.map(|_| 0),
        Cmd::Start { id } => start(root, id).map(|_| 0),
        Cmd::Run { create: o, detach } => run(root, o, *detach).await,
        Cmd::Delete { force, id } => delete(root, id, *force).map(|_| 0),
        Cmd::Kill { all, id, signal } => kill(root, id, signal, *all).map(|_| 0),
        Cmd::State { id } => {
            let dir = Dir::open(root, id)?;
            let st = dir.load()?;
            let (status, _) = live(&st);
            let v = oci_state(&st, status);
            println!("{}", serde_json::to_string_pretty(&v).expect("JSON"));
            Ok(0)
        }
        Cmd::Ps { format, id, .. } => ps(root, id, *format).map(|_| 0),
        Cmd::Pause { id } => freeze(root, id, true).map(|_| 0),
        Cmd::Resume { id } => freeze(root, id, false).map(|_| 0),
        Cmd::Exec(o) => exec(root, o).await,
        Cmd::List { format, quiet } => list(root, *format, *quiet).map(|_| 0),
        Cmd::Features => {
            println!(
                "{}",
                serde_json::to_string_pretty(&features()).expect("JSON")
            );
            Ok(0)
        }
    }
}

// ---------------------------------------------------------------------------------------
// State helpers

/// The library's handle on a container recorded in `st`.
fn detached(st: &State) -> Detached {
    Detached {
        pid: st.pid,
        start_time: st.start_time,
        cgroup_dirs: st.cgroup_dirs.clone(),
        start_fifo: st.start_fifo.clone(),
    }
}

/// The container's live status (from the library: its init, checked by start time, and
/// its freezer) as the OCI word, with the handle.
fn live(st: &State) -> (&'static str, Detached) {
    let d = detached(st);
    let s = match d.state() {
        DetachedState::Created => "created",
        DetachedState::Running => "running",
        DetachedState::Paused => "paused",
        DetachedState::Stopped => "stopped",
        _ => "unknown",
    };
    (s, d)
}

/// The OCI state (runtime-spec "State"), as `state` prints it and hooks read it on stdin.
fn oci_state(st: &State, status: &str) -> serde_json::Value {
    serde_json::json!({
        "ociVersion": OCI_VERSION,
        "id": st.id,
        "status": status,
        // runc reports 0 once the init is gone: the recorded pid may be someone else's.
        "pid": if status == "stopped" { 0 } else { st.pid },
        "bundle": st.bundle,
        "created": st.created,
        "annotations": st.annotations,
    })
}

/// Runs `st`'s hooks of `kind` with the state (status `status`) on stdin: in the
/// container's namespaces for `createContainer` and `startContainer` (runtime-spec), in
/// ours for the others. Failures of `poststart` and `poststop` hooks are warnings.
fn run_hooks(st: &State, status: &str, kind: HookKind) -> Result<(), HookError> {
    let Some(list) = st.hooks.as_ref().map(|h| kind.of(h)) else {
        return Ok(());
    };
    if list.is_empty() {
        return Ok(());
    }
    let state_json = oci_state(st, status).to_string();
    match kind {
        HookKind::CreateContainer | HookKind::StartContainer => {
            let warn = &mut |e: &HookError| eprintln!("cellblock: warning: {e}");
            hooks::run_hooks_in_container(kind, list, &state_json, st.pid, warn)
        }
        _ => hooks::run_hooks(kind, list, &state_json),
    }
}

/// The bundle's config.json, parsed, and its bytes (kept in the state directory).
fn load_spec(bundle: &Path) -> Result<(Spec, Vec<u8>), RtError> {
    let path = bundle.join("config.json");
    // serde_json's own error names the bad value and its line (oci-spec's load says
    // only "serde failed"): e.g. an unknown capability or rlimit name.
    let text = std::fs::read(&path).map_err(|e| msg(format!("reading {}: {e}", path.display())))?;
    let spec = serde_json::from_slice(&text)
        .map_err(|e| msg(format!("reading {}: {e}", path.display())))?;
    Ok((spec, text))
}

// ---------------------------------------------------------------------------------------
// create, start, run

/// `create`: on any failure nothing is left (the library tears down what it set up, and
/// the state directory goes).
pub async fn create(root: &Path, o: &CreateOpts) -> Result<(), RtError> {
    create_prepared(root, o, None).await
}

/// [`create`] with the bundle already read ([`prepare`]), or reading it.
async fn create_prepared(
    root: &Path,
    o: &CreateOpts,
    prepared: Option<Prepared>,
) -> Result<(), RtError> {
    let mut dir = Dir::create(root, &o.id)?;
    let r = async {
        let p = match prepared {
            Some(p) => p,
            None => prepare(o)?,
        };
        create_in(&mut dir, o, p).await
    }
    .await;
    if r.is_err() {
        let _ = dir.remove();
    }
    r
}

/// The bundle read, checked and mapped onto a builder: what `create` and a direct `run`
/// share.
struct Prepared {
    bundle: PathBuf,
    spec: Spec,
    /// config.json's bytes, as parsed into `spec`.
    config_json: Vec<u8>,
    builder: cellblock::ContainerBuilder,
}

fn prepare(o: &CreateOpts) -> Result<Prepared, RtError> {
    let bundle = std::fs::canonicalize(&o.bundle)
        .map_err(|e| msg(format!("bundle {}: {e}", o.bundle.display())))?;
    let (spec, config_json) = load_spec(&bundle)?;
    if let Some(h) = spec.hooks() {
        hooks::validate(h)?;
    }
    let terminal = spec
        .process()
        .as_ref()
        .and_then(|p| p.terminal())
        .unwrap_or(false);
    if o.console_socket.is_some() && !terminal {
        return Err(ConsoleError::NoTerminal.into());
    }
    if o.preserve_fds != 0 {
        return Err(msg("--preserve-fds is not supported (only 0)"));
    }
    let opts = BuildOpts {
        id: o.id.clone(),
        bundle: bundle.clone(),
        console: o.console_socket.is_some(),
    };
    let mut b = spec::builder_for(&spec, &opts)?;
    b.die_with_supervisor(false).init(false);
    if !terminal {
        // The caller's stdio is the container's (ctr: pipes to the shim's fifos; podman:
        // /dev/null and pipes to conmon).
        b.stdin(Stdio::inherit())
            .stdout(Stdio::inherit())
            .stderr(Stdio::inherit());
    }
    Ok(Prepared {
        bundle,
        spec,
        config_json,
        builder: b,
    })
}

async fn create_in(dir: &mut Dir, o: &CreateOpts, p: Prepared) -> Result<(), RtError> {
    let Prepared {
        bundle,
        spec,
        config_json,
        builder: mut b,
    } = p;
    b.start_fifo(dir.fifo());
    // The container is forked and keeps our descriptors until its execve: it must not
    // share the lock's, or the directory would stay locked (and `start` block) until then.
    dir.unlock_for_fork();
    let mut created = b.create().await?;
    let pty = created.take_pty_fd();
    let d = created.detach()?;
    if let Err(e) = dir.relock() {
        let _ = d.destroy();
        return Err(e.into());
    }
    // From here on a failure must take the container down with it.
    let r = finish_create(dir, o, (&spec, &config_json), bundle, &d, pty);
    if r.is_err() {
        let _ = d.destroy();
    }
    r
}

/// The state a new container is recorded with: `d`'s process and cgroups, config.json's
/// annotations and hooks, `status`.
fn new_state(o: &CreateOpts, bundle: PathBuf, spec: &Spec, d: &Detached, status: &str) -> State {
    State {
        id: o.id.clone(),
        bundle,
        pid: d.pid,
        start_time: d.start_time,
        cgroup_dirs: d.cgroup_dirs.clone(),
        start_fifo: d.start_fifo.clone(),
        created: state::rfc3339(SystemTime::now()),
        annotations: spec
            .annotations()
            .iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        status: status.into(),
        hooks: spec.hooks().clone(),
    }
}

fn finish_create(
    dir: &Dir,
    o: &CreateOpts,
    (spec, config_json): (&Spec, &[u8]),
    bundle: PathBuf,
    d: &Detached,
    pty: Option<OwnedFd>,
) -> Result<(), RtError> {
    spec::after_create(spec, d)?;
    if let Some(sock) = &o.console_socket {
        let pty = pty.ok_or_else(|| msg("the library returned no pty master for a terminal"))?;
        console::send_master(sock, &pty)?;
    }
    let st = new_state(o, bundle, spec, d, "created");
    // `exec` reads the container's config from here (its seccomp profile), not from the
    // bundle, which the caller may change or remove once the container runs.
    dir.save_config(config_json)?;
    // runtime-spec: prestart (deprecated) and createRuntime after the environment is
    // created, createContainer after them, all before `start`. A failure fails `create`
    // (the caller tears the container down) and, as after a delete, runs poststop.
    let hooked = run_hooks(&st, "created", HookKind::Prestart)
        .and_then(|()| run_hooks(&st, "created", HookKind::CreateRuntime))
        .and_then(|()| run_hooks(&st, "created", HookKind::CreateContainer));
    if let Err(e) = hooked {
        let _ = run_hooks(&st, "stopped", HookKind::Poststop);
        return Err(e.into());
    }
    dir.save(&st)?;
    if let Some(p) = &o.pid_file {
        state::write_atomic(p, d.pid.to_string().as_bytes(), 0o644)?;
    }
    Ok(())
}

/// `start`: releases a created container's gate.
pub fn start(root: &Path, id: &str) -> Result<(), RtError> {
    let dir = Dir::open(root, id)?;
    let mut st = dir.load()?;
    let (status, d) = live(&st);
    if status != "created" {
        return Err(msg(format!(
            "cannot start a container that is {status}: {id}"
        )));
    }
    // runtime-spec: a failing startContainer hook stops the container (delete follows).
    if let Err(e) = run_hooks(&st, status, HookKind::StartContainer) {
        let _ = d.destroy();
        return Err(e.into());
    }
    d.start()?;
    st.status = "running".into();
    dir.save(&st)?;
    // runtime-spec: a failing poststart hook is a warning; the container runs on.
    run_hooks(&st, "running", HookKind::Poststart)?;
    Ok(())
}

/// `run`: create and start; without `detach`, wait for the init, delete the container
/// and return the init's exit code (128 + signal if a signal ended it).
///
/// In the foreground, without a terminal, and with nothing to do between create and
/// start (no `prestart`, `createRuntime`, `createContainer` or `startContainer` hook, no
/// sysctl, no `oomScoreAdj`), nobody can tell a create and a start from a spawn: the
/// container is spawned directly ([`run_direct`]), without the start gate's fork.
pub async fn run(root: &Path, o: &CreateOpts, detach: bool) -> Result<i32, RtError> {
    if !detach && o.console_socket.is_none() {
        let p = prepare(o)?;
        if nothing_between_create_and_start(&p.spec) {
            return run_direct(root, o, p).await;
        }
        create_prepared(root, o, Some(p)).await?;
    } else {
        create(root, o).await?;
    }
    let d = detached(&Dir::open(root, &o.id)?.load()?);
    let pid = d.pid;
    if let Err(e) = start(root, &o.id) {
        let _ = delete(root, &o.id, true);
        return Err(e);
    }
    if detach {
        return Ok(0);
    }
    // The init is our child (the library detached it: it neither waits for nor reaps it).
    // While it runs, our signals go to it, as runc's foreground `run` does (the caller's
    // Ctrl-C or SIGTERM stops the container, not just us).
    let fwd = cellblock::SignalForwarder::new(&cellblock::FORWARDED_SIGNALS)?;
    let mut signals = fwd.subscribe(&cellblock::FORWARDED_SIGNALS);
    let mut waited = tokio::task::spawn_blocking(move || wait_exit(pid));
    let code = loop {
        tokio::select! {
            r = &mut waited => break r.map_err(|e| msg(format!("waiting: {e}")))?,
            Some(sig) = signals.recv() => {
                let _ = d.signal(sig);
            }
        }
    };
    let code = match code {
        Ok(c) => c,
        Err(e) => {
            let _ = delete(root, &o.id, true);
            return Err(msg(format!("waiting for the container's init {pid}: {e}")));
        }
    };
    delete(root, &o.id, true)?;
    Ok(code)
}

/// Whether `spec` asks for nothing the runtime does between `create` and `start`: a hook
/// that runs before the start, a sysctl, `oomScoreAdj` (see `spec::after_create`).
fn nothing_between_create_and_start(spec: &Spec) -> bool {
    let hooks = spec.hooks().as_ref();
    let none = |h: Option<&Vec<oci_spec::runtime::Hook>>| h.is_none_or(|v| v.is_empty());
    #[allow(deprecated)] // prestart: deprecated by the runtime-spec, still run
    let no_hooks = hooks.is_none_or(|h| {
        none(h.prestart().as_ref())
            && none(h.create_runtime().as_ref())
            && none(h.create_container().as_ref())
            && none(h.start_container().as_ref())
    });
    let no_sysctl = spec
        .linux()
        .as_ref()
        .and_then(|l| l.sysctl().as_ref())
        .is_none_or(|s| s.is_empty());
    let process = spec.process().as_ref();
    let no_oom = process.and_then(|p| p.oom_score_adj()).is_none();
    // (A terminal without a console socket keeps create's handling of the pty.)
    let no_terminal = !process.and_then(|p| p.terminal()).unwrap_or(false);
    no_hooks && no_sysctl && no_oom && no_terminal
}

/// A foreground `run` without a start gate: the container is spawned (its device rules
/// went in with its cgroup, `cgroup_setup`), recorded as running (so `state`, `kill`,
/// `ps`, `pause` and `delete --force` from another process find it), waited for with our
/// signals forwarded to it, and deleted: its cgroup, the emptied `cellblock-oci` parent,
/// the state directory; then the `poststop` hooks.
async fn run_direct(root: &Path, o: &CreateOpts, p: Prepared) -> Result<i32, RtError> {
    let mut dir = Dir::create(root, &o.id)?;
    let (code, st) = match run_direct_in(&mut dir, o, p).await {
        Ok(r) => r,
        Err(e) => {
            let _ = dir.remove();
            return Err(e);
        }
    };
    // A `delete` from another process while it ran has done the rest (as the gated path's
    // `delete --force` then finds nothing to do).
    if dir.relock().is_err() || !dir.has_state() {
        return Ok(code);
    }
    dir.remove()?;
    remove_default_parents(&st.cgroup_dirs);
    // runtime-spec: poststop after the container is deleted; a failure is a warning.
    run_hooks(&st, "stopped", HookKind::Poststop)?;
    Ok(code)
}

/// [`run_direct`] up to the container's end; returns with the directory unlocked.
async fn run_direct_in(
    dir: &mut Dir,
    o: &CreateOpts,
    p: Prepared,
) -> Result<(i32, State), RtError> {
    let Prepared {
        bundle,
        spec,
        config_json,
        builder: mut b,
    } = p;
    // On an error before the wait, the container must not run on untracked.
    b.kill_on_drop(true);
    let mut c = b.spawn().await?;
    let pid = c.pid();
    // On an error from here, dropping `c` kills the container.
    let d = Detached {
        pid,
        start_time: c.start_time()?,
        cgroup_dirs: c.cgroup_dirs(),
        start_fifo: None,
    };
    let st = new_state(o, bundle, &spec, &d, "running");
    dir.save_config(&config_json)?;
    dir.save(&st)?;
    if let Some(p) = &o.pid_file {
        state::write_atomic(p, pid.to_string().as_bytes(), 0o644)?;
    }
    // From here the other verbs may act on the container.
    dir.unlock();
    // runtime-spec: a failing poststart hook is a warning; the container runs on.
    run_hooks(&st, "running", HookKind::Poststart)?;
    let fwd = cellblock::SignalForwarder::new(&cellblock::FORWARDED_SIGNALS)?;
    let mut signals = fwd.subscribe(&cellblock::FORWARDED_SIGNALS);
    let status = loop {
        tokio::select! {
            r = c.wait() => break r?,
            Some(sig) = signals.recv() => {
                let _ = c.signal(sig);
            }
        }
    };
    use std::os::unix::process::ExitStatusExt;
    let code = match (status.code(), status.signal()) {
        (Some(c), _) => c,
        (None, Some(s)) => 128 + s,
        (None, None) => 1,
    };
    Ok((code, st))
}

/// Waits for our child `pid` to exit: its exit code, or 128 + the signal that ended it.
fn wait_exit(pid: i32) -> nix::Result<i32> {
    use nix::sys::wait::{waitpid, WaitStatus};
    loop {
        match waitpid(nix::unistd::Pid::from_raw(pid), None) {
            Ok(WaitStatus::Exited(_, c)) => return Ok(c),
            Ok(WaitStatus::Signaled(_, s, _)) => return Ok(128 + s as i32),
            Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e),
        }
    }
}

// ---------------------------------------------------------------------------------------
// delete, kill, ps, pause/resume

/// `delete`: kills what is left, removes the cgroups, the FIFO and the state. A running
/// (or paused) container needs `force`, as with runc; an unknown id is fine with `force`
/// (the shim calls `delete` and then `delete --force`).
pub fn delete(root: &Path, id: &str, force: bool) -> Result<(), RtError> {
    let dir = match Dir::open(root, id) {
        Err(StateError::NotFound(_)) if force => return Ok(()),
        r => r?,
    };
    if !dir.has_state() {
        // A `create` under way (it lets go of the lock around its fork), or one that died
        // before saving: nothing of the container is recorded yet.
        if !force {
            return Err(msg(format!(
                "container {id} is being created (no state yet)"
            )));
        }
        dir.remove()?;
        return Ok(());
    }
    let st = dir.load()?;
    let (status, d) = live(&st);
    if matches!(status, "created" | "running" | "paused") && !force {
        return Err(msg(format!(
            "cannot delete container {id} that is not stopped: {status}"
        )));
    }
    d.destroy()?;
    remove_default_parents(&d.cgroup_dirs);
    dir.remove()?;
    // runtime-spec: poststop after the container is deleted; a failure is a warning.
    run_hooks(&st, "stopped", HookKind::Poststop)?;
    Ok(())
}

/// Removes the `cellblock-oci` parent of a container's cgroup (the one given to
/// containers without `linux.cgroupsPath`) in each hierarchy once it is empty, so that a
/// run leaves nothing in cgroupfs; `rmdir` fails (and is ignored) while another container
/// of ours is in it.
fn remove_default_parents(dirs: &[PathBuf]) {
    for dir in dirs {
        let Some(parent) = dir.parent() else { continue };
        if parent.file_name() == Some(std::ffi::OsStr::new(crate::spec::DEFAULT_CGROUP_PARENT)) {
            let _ = std::fs::remove_dir(parent);
        }
    }
}

/// A signal as runc takes it: a number (`9`), a name (`KILL`) or `SIGKILL`, any case.
pub fn parse_signal(s: &str) -> Result<Signal, RtError> {
    let bad = || msg(format!("unknown signal {s:?}"));
    if let Ok(n) = s.parse::<i32>() {
        return Signal::try_from(n).map_err(|_| bad());
    }
    let up = s.to_ascii_uppercase();
    let name = if up.starts_with("SIG") {
        up
    } else {
        format!("SIG{up}")
    };
    name.parse::<Signal>().map_err(|_| bad())
}

/// `kill`: the init (`Detached::signal`, through a pidfd checked against the start time)
/// or, with `all`, every process in the container's cgroup.
pub fn kill(root: &Path, id: &str, signal: &str, all: bool) -> Result<(), RtError> {
    let sig = parse_signal(signal)?;
    let dir = Dir::open(root, id)?;
    let st = dir.load()?;
    let (status, d) = live(&st);
    match (status, all) {
        // runc: `kill --all` of a stopped container kills its leftovers, if any.
        ("stopped", true) => Ok(d.signal_all(sig)?),
        ("stopped", false) => Err(msg(format!("container not running: {id}"))),
        (_, true) => Ok(d.signal_all(sig)?),
        (_, false) => Ok(d.signal(sig)?),
    }
}

/// `ps`: the host pids in the container's cgroup.
pub fn ps(root: &Path, id: &str, format: PsFormat) -> Result<(), RtError> {
    let dir = Dir::open(root, id)?;
    let st = dir.load()?;
    let (_, d) = live(&st);
    let pids = d.pids()?;
    match format {
        PsFormat::Json => println!("{}", serde_json::to_string(&pids).expect("JSON")),
        PsFormat::Table => {
            println!("{:>8} CMD", "PID");
            for p in pids {
                let cmd = std::fs::read(format!("/proc/{p}/cmdline")).unwrap_or_default();
                let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
                println!("{p:>8} {}", cmd.trim_end());
            }
        }
    }
    Ok(())
}

/// `pause` (`freeze`) and `resume` (`!freeze`).
pub fn freeze(root: &Path, id: &str, freeze: bool) -> Result<(), RtError> {
    let dir = Dir::open(root, id)?;
    let st = dir.load()?;
    let (status, d) = live(&st);
    match (freeze, status) {
        (true, "running") | (true, "created") => Ok(d.pause()?),
        (false, "paused") => Ok(d.resume()?),
        (true, _) => Err(msg(format!(
            "cannot pause a container that is {status}: {id}"
        ))),
        (false, _) => Err(msg(format!("container {id} is not paused: {status}"))),
    }
}

/// `list`: the containers under the root.
pub fn list(root: &Path, format: PsFormat, quiet: bool) -> Result<(), RtError> {
    let mut rows = Vec::new();
    for id in state::list(root) {
        let Ok(dir) = Dir::open(root, &id) else {
            continue;
        };
        let Ok(st) = dir.load() else { continue };
        let (status, _) = live(&st);
        rows.push(oci_state(&st, status));
    }
    if quiet {
        for r in &rows {
            println!("{}", r["id"].as_str().unwrap_or_default());
        }
    } else if format == PsFormat::Json {
        println!("{}", serde_json::Value::from(rows));
    } else {
        println!("ID\tPID\tSTATUS\tBUNDLE\tCREATED");
        for r in &rows {
            println!(
                "{}\t{}\t{}\t{}\t{}",
                r["id"].as_str().unwrap_or_default(),
                r["pid"],
                r["status"].as_str().unwrap_or_default(),
                r["bundle"].as_str().unwrap_or_default(),
                r["created"].as_str().unwrap_or_default()
            );
        }
    }
    Ok(())
}

/// `features` (runtime-spec features.md), what this runtime implements.
fn features() -> serde_json::Value {
    serde_json::json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": OCI_VERSION,
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer",
                  "poststart", "poststop"],
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"],
            "cgroup": {"v1": true, "v2": true, "systemd": false},
        },
        "annotations": {"org.opencontainers.runtime-spec.features.runtime": "cellblock"},
    })
}

// ---------------------------------------------------------------------------------------
// exec

/// The process `exec` runs: `--process FILE`, or the command line's.
fn exec_process(o: &ExecOpts) -> Result<Process, RtError> {
    if let Some(f) = &o.process {
        let text =
            std::fs::read(f).map_err(|e| msg(format!("reading --process {}: {e}", f.display())))?;
        return serde_json::from_slice(&text)
            .map_err(|e| msg(format!("parsing --process {}: {e}", f.display())));
    }
    if o.command.is_empty() {
        return Err(msg("exec: no command given (and no --process)"));
    }
    let (uid, gid) = match &o.user {
        None => (0, 0),
        Some(u) => {
            let (a, b) = u.split_once(':').unwrap_or((u, "0"));
            let num = |s: &str| {
                s.parse::<u32>()
                    .map_err(|_| msg(format!("--user {u:?}: use numeric UID[:GID]")))
            };
            (num(a)?, num(b)?)
        }
    };
    let mut env = vec![format!("PATH={}", cellblock::DEFAULT_PATH)];
    env.extend(o.env.iter().cloned());
    let v = serde_json::json!({
        "args": o.command,
        "env": env,
        "cwd": o.cwd.as_deref().unwrap_or("/"),
        "terminal": o.tty,
        "user": {"uid": uid, "gid": gid},
    });
    serde_json::from_value(v).map_err(|e| msg(format!("exec: {e}")))
}

/// `exec`: another process in the running container; with `detach` return once it runs
/// (it outlives us, reparented to the caller), else wait and return its exit code.
pub async fn exec(root: &Path, o: &ExecOpts) -> Result<i32, RtError> {
    let dir = Dir::open(root, &o.id)?;
    let st = dir.load()?;
    let (status, _) = live(&st);
    if status != "running" {
        return Err(msg(format!(
            "cannot exec in a container that is {status}: {}",
            o.id
        )));
    }
    let process = exec_process(o)?;
    let terminal = process.terminal().unwrap_or(false);
    match (terminal, o.console_socket.is_some()) {
        (true, false) => return Err(msg("exec: a terminal needs --console-socket")),
        (false, true) => return Err(ConsoleError::NoTerminal.into()),
        _ => {}
    }
    if o.preserve_fds != 0 {
        return Err(msg("--preserve-fds is not supported (only 0)"));
    }
    let config = dir.load_config()?;
    let mut b = spec::exec_builder_in(&config, &process, st.pid, terminal)?;
    // In the container's cgroups (so `ps`, `kill --all`, pause and its limits cover it),
    // without owning them: those of its init, whatever path they were made at.
    b.join_cgroup_of(st.pid);
    b.die_with_supervisor(false).kill_on_drop(false);
    if !terminal {
        b.stdin(Stdio::inherit())
            .stdout(Stdio::inherit())
            .stderr(Stdio::inherit());
    }
    let mut c = b.spawn().await?;
    if let Some(sock) = &o.console_socket {
        // The terminal is in the container's devpts (the library makes it there for a
        // joined mount namespace); its master goes to the caller, as `create` sends its.
        let sent = c
            .take_pty_fd()
            .ok_or_else(|| msg("the library returned no pty master for a terminal"))
            .and_then(|pty| Ok(console::send_master(sock, &pty)?));
        if let Err(e) = sent {
            let _ = c.kill().await;
            return Err(e);
        }
    }
    if let Some(p) = &o.pid_file {
        state::write_atomic(p, c.pid().to_string().as_bytes(), 0o644)?;
    }
    if o.detach {
        // Neither killed nor reaped by us: the caller (a subreaper: the shim, conmon) reaps
        // it and takes its exit status once we have exited. Not dropped: the handle's drop
        // hands the process to the library's background reaper, which reaped a process
        // that exited before we did, and the caller then lost its status (podman exec
        // reported 255 for `exit 5`).
        c.detach()?;
        return Ok(0);
    }
    // Our signals go to the process while we wait for it, as with `run`.
    let fwd = cellblock::SignalForwarder::new(&cellblock::FORWARDED_SIGNALS)?;
    let _forwarding = fwd.forward_to(&c, &cellblock::FORWARDED_SIGNALS)?;
    use std::os::unix::process::ExitStatusExt;
    let st = c.wait().await?;
    Ok(st.code().unwrap_or_else(|| 128 + st.signal().unwrap_or(0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_by_number_and_name() {
        for s in ["9", "KILL", "kill", "SIGKILL", "sigkill"] {
            assert_eq!(parse_signal(s).unwrap(), Signal::SIGKILL, "{s}");
        }
        assert_eq!(parse_signal("15").unwrap(), Signal::SIGTERM);
        assert_eq!(parse_signal("TERM").unwrap(), Signal::SIGTERM);
        assert_eq!(parse_signal("SIGUSR1").unwrap(), Signal::SIGUSR1);
        for bad in ["0", "99", "-1", "NOPE", "SIG", ""] {
            let e = parse_signal(bad).unwrap_err().to_string();
            assert!(e.contains("unknown signal"), "{bad}: {e}");
        }
    }

    /// podman's classification of the runtime's message (exit 127/126) needs these phrases,
    /// lower case, with the path.
    #[test]
    fn missing_and_unexecutable_programs_are_worded_for_podman() {
        let m = lib_message(&cellblock::Error::ProgramNotFound {
            program: "/nonexistent".into(),
            searched: String::new(),
        });
        assert!(
            m.contains("/nonexistent") && m.contains("no such file or directory"),
            "{m}"
        );
        // As the library reports a path missing below a rootfs.
        let m = lib_message(&cellblock::Error::ProgramNotFound {
            program: "/nonexistent".into(),
            searched: "/nonexistent inside the root filesystem /b/rootfs".into(),
        });
        assert!(
            m.contains("no such file or directory") && m.contains("/b/rootfs"),
            "{m}"
        );
        let m = lib_message(&cellblock::Error::ProgramNotFound {
            program: "nx".into(),
            searched: "/bin".into(),
        });
        assert!(
            m.contains("\"nx\"") && m.contains("executable file not found"),
            "{m}"
        );
        let m = lib_message(&cellblock::Error::NotExecutable {
            path: "/etc/passwd".into(),
            reason: "no execute permission".into(),
        });
        assert!(
            m.contains("/etc/passwd") && m.contains("permission denied"),
            "{m}"
        );
    }

    #[test]
    fn exec_process_from_the_command_line() {
        let o = ExecOpts {
            process: None,
            detach: false,
            pid_file: None,
            console_socket: None,
            tty: false,
            cwd: Some("/tmp".into()),
            env: vec!["A=1".into()],
            user: Some("5:6".into()),
            no_new_privs: false,
            preserve_fds: 0,
            id: "x".into(),
            command: vec!["sh".into(), "-c".into(), "true".into()],
        };
        let p = exec_process(&o).unwrap();
        assert_eq!(p.args().as_deref(), Some(&o.command[..]));
        assert_eq!(p.cwd(), Path::new("/tmp"));
        assert_eq!((p.user().uid(), p.user().gid()), (5, 6));
        assert!(p.env().as_ref().unwrap().contains(&"A=1".to_string()));
        assert_eq!(p.terminal(), Some(false));
        let bad = ExecOpts {
            user: Some("root".into()),
            ..o
        };
        assert!(exec_process(&bad)
            .unwrap_err()
            .to_string()
            .contains("--user"));
    }
}
