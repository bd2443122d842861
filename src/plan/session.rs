//! Prepares the session: validates the init's options, loads the init, opens the
//! lifeline and the pty, and builds the init's argv. The child's share is a
//! [`ChildSession`] borrowed from the [`SessionPlan`]; the supervisor's share is a
//! [`ParentSession`] (the report pipe the init writes the workload's final status to, and
//! the pty master).
//!
//! [`validate`] is pure (unit-tested below without privileges); [`prepare`] then opens
//! what the session needs.

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

use crate::builder::session::{SessionConfig, DEFAULT_INIT_GRACE};
use crate::child::session::{ChildSession, InitExec};
use crate::error::{Error, Result};
use crate::plan::arena::CStrArray;
use crate::plan::stdio::PreparedStdio;
use crate::plan::Ctx;
use crate::{init, Namespaces};

#[cfg(doc)]
use crate::ContainerBuilder;

/// The child's session settings and the storage they borrow from.
pub(crate) struct SessionPlan {
    uses_init: bool,
    /// The init to exec instead of the workload.
    init: Option<InitPlan>,
    pty_slave: Option<OwnedFd>,
    /// Arm `PR_SET_PDEATHSIG` (no init to watch the lifeline).
    death_signal: bool,
    /// This container's lifeline (a pidfd of the supervisor), closed in the supervisor
    /// once the child has its copy.
    lifeline: Option<OwnedFd>,
    /// Per-spawn duplicates of process-wide descriptors, moved above `pass_fd` targets.
    _moved: Vec<OwnedFd>,
    /// The child's end of the start gate (`create`), closed here once the child waits.
    gate_child: Option<OwnedFd>,
    /// Our end of the start gate.
    gate: Option<Gate>,
}

/// The releasing end of a created container's start gate (`ContainerBuilder::create`).
#[derive(Debug)]
pub(crate) enum Gate {
    /// The write end of a pipe only the `Created` handle holds: dropping it unstarted
    /// makes the child read EOF and exit.
    Pipe(OwnedFd),
    /// `start_fifo`: a FIFO any process allowed to open it can write into.
    Fifo(FifoFile),
}

/// A FIFO made for a start gate: removed on drop unless kept.
#[derive(Debug)]
pub(crate) struct FifoFile {
    pub(crate) path: std::path::PathBuf,
    pub(crate) keep: bool,
}

impl Drop for FifoFile {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

impl Gate {
    /// Lets the container through its gate (one byte).
    pub(crate) fn release(&self) -> std::io::Result<()> {
        match self {
            Gate::Pipe(w) => crate::sys::write(w.as_fd(), b"s").map(drop),
            Gate::Fifo(f) => release_fifo(&f.path),
        }
    }
}

/// Writes the start byte into the FIFO at `path`. Opened without blocking: `ENXIO` means
/// nobody reads it, i.e. no container waits at that gate (it was started or is gone).
pub(crate) fn release_fifo(path: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let f = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    crate::sys::write(f.as_fd(), b"s").map(drop)
}

/// Opens the child's end of the start gate (`cfg.gated`): a pipe, or the FIFO of
/// `start_fifo`, made here. The child's descriptor goes above `min_fd` (the `pass_fd`
/// targets). `(child's end, our end)`.
fn prepare_gate(cfg: &SessionConfig, min_fd: RawFd) -> Result<(Option<OwnedFd>, Option<Gate>)> {
    if !cfg.gated {
        if let Some(p) = &cfg.start_fifo {
            return Err(Error::BadConfig(format!(
                "start_fifo({}) is for create(); spawn() starts the container at once",
                p.display()
            )));
        }
        return Ok((None, None));
    }
    let io = |what: &'static str| Error::io(what);
    let (child, ours) = match &cfg.start_fifo {
        None => {
            let (r, w) = crate::sys::pipe_cloexec().map_err(io("creating the start gate"))?;
            (r, Gate::Pipe(w))
        }
        Some(path) => {
            nix::unistd::mkfifo(path, nix::sys::stat::Mode::from_bits_truncate(0o600)).map_err(
                |e| {
                    Error::BadConfig(format!(
                        "start_fifo: cannot make the FIFO {}: {e}",
                        path.display()
                    ))
                },
            )?;
            let file = FifoFile {
                path: path.clone(),
                keep: false,
            };
            // Read and write: the child's reads then never see EOF, whoever else opens
            // and closes the FIFO; it waits for a byte.
            let fd = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(path)
                .map_err(io("opening the start FIFO"))?;
            (OwnedFd::from(fd), Gate::Fifo(file))
        }
    };
    let child = crate::sys::move_above(child, min_fd).map_err(io("creating the start gate"))?;
    Ok((Some(child), Some(ours)))
}

/// The init's memfd, its argv and the descriptors it inherits.
struct InitPlan {
    fd: RawFd,
    argv: CStrArray,
    pass_fds: [RawFd; 2],
}

/// The supervisor's side, handed to the `Container`.
#[derive(Debug, Default)]
pub(crate) struct ParentSession {
    /// Our duplicate of the report pipe's read end, when an init will write the
    /// workload's status to it.
    pub(crate) status: Option<OwnedFd>,
    /// The pty master.
    pub(crate) pty: Option<OwnedFd>,
}

/// The init's tini/dumb-init options, validated.
#[derive(Debug, PartialEq)]
struct InitOptions {
    success_codes: Vec<u8>,
    rewrites: Vec<(i32, i32)>,
}

/// Validates the session settings and prepares both sides.
///
/// `path` and `args` are the workload's (the init execs them); `err` is the error pipe
/// `(read, write)`, which the init also reports the workload's status on; `devpts` is the
/// container's own devpts, when the fs plan made one for the pty.
pub(crate) fn prepare(
    cfg: &SessionConfig,
    ctx: &Ctx,
    path: &CString,
    args: &[CString],
    err: (&OwnedFd, RawFd),
    devpts: Option<BorrowedFd<'_>>,
) -> Result<(SessionPlan, ParentSession)> {
    let init_options = validate(cfg, ctx)?;
    let (gate_child, gate) = prepare_gate(cfg, ctx.min_setup_fd)?;
    let uses_init = ctx.uses_init;
    // The process-wide pieces are all set up by the first spawn, whatever its kind, so a
    // program (or a leak test) that takes a descriptor baseline after one warm-up spawn
    // sees no later growth: the init's memfd (1 fd).
    let mut memfd = init::memfd();
    // `pass_fd` dup2s onto its targets late in the child's setup; descriptors needed after
    // that (the init's memfd, the lifeline) must not sit on a target. The lifeline is
    // opened above every target; a per-spawn duplicate above them stands in for the memfd.
    let min_fd = ctx.min_setup_fd;
    let mut moved = Vec::new();
    if let Ok(m) = memfd {
        if m < min_fd {
            let d = crate::sys::dup_above(m, min_fd)
                .map_err(Error::io("moving a descriptor above the pass_fd targets"))?;
            memfd = Ok(d.as_raw_fd());
            moved.push(d);
        }
    }
    // This container's own lifeline: a pidfd of the supervisor process (init.rs), for the
    // init to watch, or for the child without an init to check once after arming its
    // parent-death signal. None when the container may outlive us.
    let lifeline = if cfg.outlive_supervisor {
        None
    } else {
        Some(init::lifeline(min_fd).map_err(Error::io("opening a pidfd of the supervisor"))?)
    };
    let lifeline_fd = lifeline.as_ref().map_or(-1, |l| l.as_raw_fd());

    let (pty_master, pty_slave) = match cfg.pty {
        Some(size) => {
            let (m, s) = crate::handle::pty::open(size, devpts)
                .map_err(Error::io("opening a pseudo-terminal"))?;
            (Some(m), Some(s))
        }
        None => (None, None),
    };

    let mut parent = ParentSession {
        status: None,
        pty: pty_master,
    };
    let mut init_plan = None;
    let mut death_signal = false;
    if uses_init {
        let fd = memfd.map_err(Error::io("loading the init into a memfd"))?;
        let argv = init::InitArgs {
            report_fd: err.1,
            lifeline_fd,
            grace_ms: cfg.init_grace.unwrap_or(DEFAULT_INIT_GRACE).as_millis() as u64,
            foreground_tty: pty_slave.is_some(),
            own_group: ctx.process_group == Some(0),
            dumpable: cfg.init_dumpable,
            signal_group: cfg.signal_group,
            subreaper: !ctx.namespaces.contains(Namespaces::PID),
            parent_death_signal: cfg.parent_death_signal.unwrap_or(0),
            success_codes: &init_options.success_codes,
            rewrites: &init_options.rewrites,
            path,
            args,
        }
        .to_argv();
        init_plan = Some(InitPlan {
            fd,
            argv: CStrArray::new(argv),
            pass_fds: [err.1, lifeline_fd],
        });
        parent.status = Some(
            err.0
                .try_clone()
                .map_err(Error::io("duplicating the report pipe"))?,
        );
    } else if !cfg.outlive_supervisor {
        // No init to watch the lifeline: the kernel's parent-death signal, armed from a
        // spawner thread that lives as long as the process (spawner.rs).
        death_signal = true;
    }
    Ok((
        SessionPlan {
            uses_init,
            init: init_plan,
            pty_slave,
            death_signal,
            lifeline,
            _moved: moved,
            gate_child,
            gate,
        },
        parent,
    ))
}

/// Checks the session settings before anything is opened: `init_dumpable` needs the
/// init, and so does each of the init's options; numbers in range.
fn validate(cfg: &SessionConfig, ctx: &Ctx) -> Result<InitOptions> {
    let pid_ns = ctx.namespaces.contains(Namespaces::PID);
    // init(true) without a PID namespace: the init runs as a subreaper (see `init`).
    let uses_init = ctx.uses_init;
    if cfg.init_dumpable && !uses_init && !pid_ns {
        return Err(Error::NeedsNamespace {
            option: "init_dumpable",
            needs: Namespaces::PID,
        });
    }
    if cfg.init_dumpable && !uses_init {
        return Err(Error::BadConfig(
            "init_dumpable(true) with init(false): there is no init to leave dumpable".into(),
        ));
    }
    validate_init_options(cfg, uses_init, pid_ns)
}

/// Checks the init's options (each needs the init; numbers in range) before anything runs.
fn validate_init_options(
    cfg: &SessionConfig,
    uses_init: bool,
    pid_ns: bool,
) -> Result<InitOptions> {
    let set = [
        ("signal_process_group", cfg.signal_group),
        ("parent_death_signal", cfg.parent_death_signal.is_some()),
        ("success_exit_code", !cfg.success_codes.is_empty()),
        ("rewrite_signal", !cfg.rewrites.is_empty()),
    ];
    if let Some((option, _)) = set.iter().find(|(_, on)| *on).filter(|_| !uses_init) {
        return Err(Error::NeedsInit {
            option,
            reason: if pid_ns {
                "init(false) was set"
            } else {
                "without Namespaces::PID it runs only with init(true) (as a subreaper)"
            },
        });
    }
    let bad = |option, signal, reason| Error::BadSignal {
        option,
        signal,
        reason,
    };
    if let Some(sig) = cfg.parent_death_signal {
        if !(1..=64).contains(&sig) {
            return Err(bad("parent_death_signal", sig, "is outside 1..=64"));
        }
        if cfg.outlive_supervisor {
            return Err(Error::BadConfig(
                "parent_death_signal with die_with_supervisor(false): the container does not \
                 watch the supervisor, so no signal would ever be sent"
                    .into(),
            ));
        }
    }
    let mut success_codes = Vec::new();
    for &code in &cfg.success_codes {
        let c = u8::try_from(code).map_err(|_| Error::BadExitCode {
            option: "success_exit_code",
            code,
        })?;
        success_codes.push(c);
    }
    for &(from, to) in &cfg.rewrites {
        let option = "rewrite_signal";
        if !(1..=31).contains(&from) {
            return Err(bad(option, from, "is outside 1..=31"));
        }
        if from == libc::SIGKILL || from == libc::SIGSTOP {
            return Err(bad(
                option,
                from,
                "cannot be caught, so the init never receives it",
            ));
        }
        if from == libc::SIGCHLD {
            return Err(bad(option, from, "is the init's own (it reaps on SIGCHLD)"));
        }
        if !(0..=31).contains(&to) {
            return Err(bad(option, to, "is outside 0..=31 (0 drops the signal)"));
        }
    }
    Ok(InitOptions {
        success_codes,
        rewrites: cfg.rewrites.clone(),
    })
}

impl SessionPlan {
    /// The child's view.
    pub(crate) fn spec(&self) -> ChildSession<'_> {
        ChildSession {
            pty_slave: self.pty_slave.as_ref().map_or(-1, |s| s.as_raw_fd()),
            init: self.init.as_ref().map(|i| InitExec {
                fd: i.fd,
                argv: i.argv.list(),
                pass_fds: i.pass_fds,
            }),
            death_signal: self.death_signal,
            lifeline: self.lifeline.as_ref().map_or(-1, |l| l.as_raw_fd()),
            gate: self.gate_child.as_ref().map_or(-1, |g| g.as_raw_fd()),
        }
    }

    /// Whether the child stops at a start gate (`create`).
    pub(crate) fn gated(&self) -> bool {
        self.gate.is_some()
    }

    /// Once the child waits at its gate: closes our copy of its end and hands over ours.
    pub(crate) fn take_gate(&mut self) -> Option<Gate> {
        self.gate_child = None;
        self.gate.take()
    }

    /// Whether the built-in init runs (it reports the workload's start on the pipe).
    pub(crate) fn uses_init(&self) -> bool {
        self.uses_init
    }

    /// Whether the clone must run on a long-lived spawner thread (a parent-death signal
    /// follows the cloning thread).
    pub(crate) fn needs_long_lived_thread(&self) -> bool {
        self.death_signal
    }
}

/// `stderr` for [`ContainerBuilder::merge_stderr`]: a second descriptor for whatever the
/// child's stdout is. `None` when not merging.
pub(crate) fn merged_stderr(
    cfg: &SessionConfig,
    stdout: &PreparedStdio,
) -> Result<Option<PreparedStdio>> {
    if !cfg.merge_stderr {
        return Ok(None);
    }
    let child = match &stdout.child {
        // Duplicates at 3 or above, where every stdio source must be (`sys::above_stdio`).
        Some(fd) => Some(crate::sys::dup_above(fd.as_raw_fd(), 3)),
        // Inherited stdout: a pty's (the terminal step puts it on 2 as well) or ours.
        None if cfg.pty.is_some() => None,
        None => Some(crate::sys::dup_above(1, 3)),
    };
    let child = child
        .transpose()
        .map_err(Error::io("duplicating stdout for stderr"))?;
    Ok(Some(PreparedStdio {
        child,
        parent: None,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(namespaces: Namespaces, cfg: &SessionConfig) -> Ctx {
        Ctx {
            namespaces,
            uses_init: cfg.uses_init(namespaces),
            ..Ctx::default()
        }
    }

    #[test]
    fn the_init_runs_with_a_pid_namespace_or_when_asked() {
        let mut cfg = SessionConfig::default();
        assert!(cfg.uses_init(Namespaces::PID));
        assert!(!cfg.uses_init(Namespaces::MOUNT));
        cfg.init = Some(true);
        assert!(cfg.uses_init(Namespaces::empty()));
        cfg.init = Some(false);
        assert!(!cfg.uses_init(Namespaces::PID));
    }

    /// Each init option without the init is refused by name, with the reason that fits
    /// (init(false), or no PID namespace); with the init (PID 1 or subreaper) it passes.
    #[test]
    fn init_options_need_the_init() {
        type Set = fn(&mut SessionConfig);
        let options: [(&str, Set); 4] = [
            ("signal_process_group", |c| c.signal_group = true),
            ("parent_death_signal", |c| {
                c.parent_death_signal = Some(libc::SIGTERM)
            }),
            ("success_exit_code", |c| c.success_codes.push(143)),
            ("rewrite_signal", |c| {
                c.rewrites.push((libc::SIGTERM, libc::SIGQUIT))
            }),
        ];
        for (name, set) in options {
            let mut cfg = SessionConfig::default();
            set(&mut cfg);
            match validate(&cfg, &ctx(Namespaces::MOUNT, &cfg)) {
                Err(Error::NeedsInit { option, reason }) => {
                    assert_eq!(option, name);
                    assert!(reason.contains("init(true)"), "{reason}");
                }
                other => panic!("{name}: {other:?}"),
            }
            cfg.init = Some(false);
            match validate(&cfg, &ctx(Namespaces::PID, &cfg)) {
                Err(Error::NeedsInit { option, reason }) => {
                    assert_eq!((option, reason), (name, "init(false) was set"))
                }
                other => panic!("{name}: {other:?}"),
            }
            cfg.init = None;
            assert!(
                validate(&cfg, &ctx(Namespaces::PID, &cfg)).is_ok(),
                "{name}"
            );
            cfg.init = Some(true);
            assert!(
                validate(&cfg, &ctx(Namespaces::MOUNT, &cfg)).is_ok(),
                "{name}"
            );
        }
    }

    #[test]
    fn init_dumpable_needs_the_init() {
        let mut cfg = SessionConfig {
            init_dumpable: true,
            ..Default::default()
        };
        match validate(&cfg, &ctx(Namespaces::MOUNT, &cfg)) {
            Err(Error::NeedsNamespace { option, needs }) => {
                assert_eq!((option, needs), ("init_dumpable", Namespaces::PID))
            }
            other => panic!("{other:?}"),
        }
        cfg.init = Some(false);
        match validate(&cfg, &ctx(Namespaces::PID, &cfg)) {
            Err(Error::BadConfig(m)) => assert!(m.contains("init(false)"), "{m}"),
            other => panic!("{other:?}"),
        }
        cfg.init = None;
        assert!(validate(&cfg, &ctx(Namespaces::PID, &cfg)).is_ok());
    }

    /// The numbers: signals and codes in range, the signals the init cannot or must not
    /// rewrite refused with the reason, a parent-death signal refused when nothing watches
    /// the supervisor; what passes comes out as the init will read it.
    #[test]
    fn init_option_values_validated() {
        let with = |set: &dyn Fn(&mut SessionConfig)| {
            let mut cfg = SessionConfig::default();
            set(&mut cfg);
            validate(&cfg, &ctx(Namespaces::PID, &cfg))
        };
        let bad_signal =
            |set: &dyn Fn(&mut SessionConfig), name: &str, sig: i32, words: &str| match with(set) {
                Err(Error::BadSignal {
                    option,
                    signal,
                    reason,
                }) => {
                    assert_eq!((option, signal), (name, sig));
                    assert!(reason.contains(words), "{reason}");
                }
                other => panic!("{name} {sig}: {other:?}"),
            };
        for sig in [0, 65, -1] {
            bad_signal(
                &|c| c.parent_death_signal = Some(sig),
                "parent_death_signal",
                sig,
                "1..=64",
            );
        }
        for (from, to, bad, words) in [
            (0, 1, 0, "1..=31"),
            (32, 1, 32, "1..=31"),
            (libc::SIGKILL, 1, libc::SIGKILL, "cannot be caught"),
            (libc::SIGSTOP, 1, libc::SIGSTOP, "cannot be caught"),
            (libc::SIGCHLD, 1, libc::SIGCHLD, "reaps on SIGCHLD"),
            (libc::SIGTERM, 32, 32, "0..=31"),
            (libc::SIGTERM, -1, -1, "0..=31"),
        ] {
            bad_signal(
                &|c| c.rewrites.push((from, to)),
                "rewrite_signal",
                bad,
                words,
            );
        }
        for code in [-1, 256] {
            match with(&|c| c.success_codes.push(code)) {
                Err(Error::BadExitCode { option, code: c }) => {
                    assert_eq!((option, c), ("success_exit_code", code))
                }
                other => panic!("{code}: {other:?}"),
            }
        }
        match with(&|c| {
            c.parent_death_signal = Some(libc::SIGTERM);
            c.outlive_supervisor = true;
        }) {
            Err(Error::BadConfig(m)) => assert!(m.contains("die_with_supervisor(false)"), "{m}"),
            other => panic!("{other:?}"),
        }
        let ok = with(&|c| {
            c.success_codes = vec![0, 143, 255];
            c.rewrites = vec![(libc::SIGTERM, libc::SIGQUIT), (libc::SIGWINCH, 0)];
            c.parent_death_signal = Some(64);
        });
        assert_eq!(
            ok.unwrap(),
            InitOptions {
                success_codes: vec![0, 143, 255],
                rewrites: vec![(libc::SIGTERM, libc::SIGQUIT), (libc::SIGWINCH, 0)],
            }
        );
    }
}
