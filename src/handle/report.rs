//! The per-run report: how a container's run went.
//!
//! Each `Container` carries a [`RunState`]: when it started, its cgroup, why we killed it
//! (if we did: `watchdog.rs`), and, once reaped, its resource usage. [`RunReport`] is
//! built from that.

use std::fmt::Write as _;
use std::io;
use std::os::fd::BorrowedFd;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

use crate::builder::limits::LimitsConfig;
use crate::cgroup::{Cgroup, Stats};
use crate::error::{Errno, Error, Result, Stage};
use crate::{sys, Container, Output};

use super::reaper::Cleanup;
use super::watchdog::{self, mark_killed, KILLED_NONE, KILLED_OUTPUT, KILLED_TIMEOUT};

/// Why a container ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EndReason {
    /// Its first process exited on its own (with any exit code).
    Exited,
    /// Its first process was killed by a signal we did not send (a crash, an rlimit's
    /// SIGXCPU/SIGXFSZ/SIGKILL, or a signal from someone else).
    Signaled,
    /// The [`timeout`](ContainerBuilder::timeout) expired and we ended it.
    TimedOut,
    /// The kernel's OOM killer killed its first process under the cgroup memory limit.
    OomKilled,
    /// It wrote more than the [`output_limit`](ContainerBuilder::output_limit) and we
    /// killed it.
    OutputLimit,
    /// It never started its program: setup between clone and execve failed.
    SetupFailed {
        /// The step that failed.
        stage: Stage,
        /// The errno it failed with.
        errno: Errno,
    },
}

/// What happened in one run of a container, from [`Container::wait_with_report`] or
/// [`ContainerBuilder::output_with_report`].
///
/// It covers the fields of IOI isolate's meta file (see [`to_meta`](Self::to_meta)):
/// `time`, `time-wall`, `max-rss`, `csw-voluntary`, `csw-forced`, `cg-enabled`, `cg-mem`,
/// `cg-oom-killed`, `exitcode`, `exitsig`, `killed`, `status`, `message`.
///
/// Where the numbers come from: with a cgroup, CPU time, peak memory and OOM kills are
/// the cgroup's, covering every process the container ever had. Without one, CPU time and
/// context switches come from `waitid`'s rusage: the first process and the descendants it
/// waited for.
///
/// ```no_run
/// # async fn demo() -> cellblock::Result<()> {
/// use std::time::Duration;
/// use cellblock::{Container, EndReason};
/// let (out, report) = Container::builder("/bin/sh")
///     .args(["-c", "echo hi; sleep 10"])
///     .timeout(Duration::from_millis(200))
///     .cgroup_accounting(true)
///     .output_with_report()
///     .await?;
/// assert_eq!(out.stdout, b"hi\n");
/// assert_eq!(report.reason, EndReason::TimedOut);
/// println!("{}", report.to_meta());
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunReport {
    /// The first process's exit status (for a setup failure: exit code 127, which is how
    /// the child leaves).
    pub status: ExitStatus,
    /// Why it ended.
    pub reason: EndReason,
    /// Exit code, if it exited (isolate `exitcode`).
    pub exit_code: Option<i32>,
    /// Terminating signal, if killed by one (isolate `exitsig`).
    pub signal: Option<i32>,
    /// Whether we killed it: timeout or output limit (isolate `killed`).
    pub killed: bool,
    /// From the start of the spawn to the reaping (isolate `time-wall`).
    pub wall_time: Duration,
    /// User CPU time (isolate `time` is user + system).
    pub user_time: Duration,
    /// System CPU time.
    pub system_time: Duration,
    /// Peak memory use of the whole container from its cgroup, in bytes (isolate
    /// `cg-mem`); `None` without a memory controller.
    pub peak_memory: Option<u64>,
    /// `ru_maxrss` of the first process and its waited-for descendants, in bytes (isolate
    /// `max-rss`). Caveat: the first process is a `CLONE_VM` child that shares the
    /// supervisor's memory until execve, and the kernel folds that memory's high-water
    /// mark into it at execve, so this is never below the supervisor's own RSS at spawn.
    /// Prefer [`peak_memory`](Self::peak_memory).
    pub max_rss: u64,
    /// Whether the OOM killer killed any process of the container (isolate
    /// `cg-oom-killed`), even one that was not the first.
    pub oom_killed: bool,
    /// How many processes the OOM killer killed in the container.
    pub oom_kills: u64,
    /// The most processes the container had at once (cgroup `pids.peak`).
    pub pids_peak: Option<u64>,
    /// How many forks the pids limit refused (cgroup `pids.events` `max`).
    pub pids_limit_hits: Option<u64>,
    /// Voluntary context switches (isolate `csw-voluntary`; rusage).
    pub voluntary_context_switches: u64,
    /// Involuntary context switches (isolate `csw-forced`; rusage).
    pub involuntary_context_switches: u64,
    /// Whether the container had a cgroup (isolate `cg-enabled`).
    pub cgroup: bool,
    /// A one-line human summary (isolate `message`).
    pub message: String,
}

impl RunReport {
    /// Total CPU time, user + system (isolate `time`).
    pub fn cpu_time(&self) -> Duration {
        self.user_time + self.system_time
    }

    /// isolate's two-letter `status`: `RE` (nonzero exit), `SG` (signal, OOM kill or
    /// output limit), `TO` (timeout), `XX` (setup failure); `None` for a clean exit 0.
    pub fn isolate_status(&self) -> Option<&'static str> {
        match self.reason {
            EndReason::Exited if self.exit_code == Some(0) => None,
            EndReason::Exited => Some("RE"),
            EndReason::TimedOut => Some("TO"),
            EndReason::SetupFailed { .. } => Some("XX"),
            EndReason::Signaled | EndReason::OomKilled | EndReason::OutputLimit => Some("SG"),
        }
    }

    /// The report in the format of isolate's `--meta` file: `key:value` lines, times in
    /// seconds, memory in KiB.
    pub fn to_meta(&self) -> String {
        let mut m = String::new();
        let secs = |d: Duration| format!("{:.3}", d.as_secs_f64());
        let _ = writeln!(m, "time:{}", secs(self.cpu_time()));
        let _ = writeln!(m, "time-wall:{}", secs(self.wall_time));
        let _ = writeln!(m, "max-rss:{}", self.max_rss / 1024);
        let _ = writeln!(m, "csw-voluntary:{}", self.voluntary_context_switches);
        let _ = writeln!(m, "csw-forced:{}", self.involuntary_context_switches);
        if self.cgroup {
            let _ = writeln!(m, "cg-enabled:1");
        }
        if let Some(p) = self.peak_memory {
            let _ = writeln!(m, "cg-mem:{}", p / 1024);
        }
        if self.oom_killed {
            let _ = writeln!(m, "cg-oom-killed:1");
        }
        if let Some(c) = self.exit_code {
            let _ = writeln!(m, "exitcode:{c}");
        }
        if let Some(s) = self.signal {
            let _ = writeln!(m, "exitsig:{s}");
        }
        if self.killed {
            let _ = writeln!(m, "killed:1");
        }
        if let Some(s) = self.isolate_status() {
            let _ = writeln!(m, "status:{s}");
        }
        if !self.message.is_empty() {
            let _ = writeln!(m, "message:{}", self.message);
        }
        m
    }
}

/// `rusage` of the reaped first process, the parts the report uses.
#[derive(Debug, Clone, Copy, Default)]
struct Usage {
    user: Duration,
    system: Duration,
    max_rss: u64,
    nvcsw: u64,
    nivcsw: u64,
}

impl From<&libc::rusage> for Usage {
    fn from(r: &libc::rusage) -> Usage {
        let tv = |t: libc::timeval| {
            Duration::from_secs(t.tv_sec.max(0) as u64)
                + Duration::from_micros(t.tv_usec.max(0) as u64)
        };
        Usage {
            user: tv(r.ru_utime),
            system: tv(r.ru_stime),
            max_rss: (r.ru_maxrss.max(0) as u64) * 1024,
            nvcsw: r.ru_nvcsw.max(0) as u64,
            nivcsw: r.ru_nivcsw.max(0) as u64,
        }
    }
}

/// The run-time side of a container's limits: a field of `Container`.
#[derive(Debug)]
pub(crate) struct RunState {
    started: Instant,
    ended: Option<Instant>,
    cgroup: Option<Arc<Cgroup>>,
    had_cgroup: bool,
    killed: Arc<AtomicU8>,
    watchdog: Option<JoinHandle<()>>,
    usage: Option<Usage>,
    stats: Option<Stats>,
    output_limit: Option<usize>,
    /// The block of host ids of the container's default user namespace (`idpool.rs`):
    /// given back once the container has been reaped.
    identity: Option<crate::idpool::Lease>,
    /// The container's network (`net/`): released once it has been reaped.
    network: Option<crate::net::prepare::Attached>,
    /// Nobody can ask for the report (`ContainerBuilder::status`/`output` own the
    /// container): the cgroup's counters are not read at reaping.
    no_report: bool,
}

impl Default for RunState {
    fn default() -> RunState {
        RunState {
            started: Instant::now(),
            ended: None,
            cgroup: None,
            had_cgroup: false,
            killed: Arc::new(AtomicU8::new(KILLED_NONE)),
            watchdog: None,
            usage: None,
            stats: None,
            output_limit: None,
            identity: None,
            network: None,
            no_report: false,
        }
    }
}

impl RunState {
    /// Called by the spawn path once the container runs: starts the timeout watchdog.
    pub(crate) fn start(
        started: Instant,
        cgroup: Option<Arc<Cgroup>>,
        limits: &LimitsConfig,
        pidfd: Option<BorrowedFd<'_>>,
    ) -> RunState {
        let killed = Arc::new(AtomicU8::new(KILLED_NONE));
        let watchdog = watchdog::start(limits, cgroup.as_ref(), pidfd, &killed);
        RunState {
            started,
            ended: None,
            had_cgroup: cgroup.is_some(),
            cgroup,
            killed,
            watchdog,
            usage: None,
            stats: None,
            output_limit: limits.output_limit,
            identity: None,
            network: None,
            no_report: false,
        }
    }

    /// The directories of the container's own cgroup (none once it was reaped, or without
    /// one).
    pub(crate) fn cgroup_dirs(&self) -> Vec<std::path::PathBuf> {
        self.cgroup.as_ref().map_or_else(Vec::new, |cg| cg.dirs())
    }

    /// The container's report will never be asked for: skip reading the counters.
    pub(crate) fn skip_report(&mut self) {
        self.no_report = true;
    }

    /// Keeps the container's block of host ids until it has been reaped.
    pub(crate) fn hold_identity(&mut self, lease: Option<crate::idpool::Lease>) {
        self.identity = lease;
    }

    /// Takes the block of host ids away (a namespace helper of `net/netns.rs` hands it to
    /// the namespaces it made).
    pub(crate) fn take_identity(&mut self) -> Option<crate::idpool::Lease> {
        self.identity.take()
    }

    /// Keeps the container's network (namespace, address lease, published ports) until it
    /// has been reaped.
    pub(crate) fn hold_network(&mut self, net: Option<crate::net::prepare::Attached>) {
        self.network = net;
    }

    /// Called right after the first process was reaped: records the end, reads the
    /// cgroup's counters, stops the watchdog, kills any leftovers and removes the cgroup.
    pub(crate) fn reaped(&mut self, usage: &libc::rusage) {
        self.ended = Some(Instant::now());
        self.usage = Some(Usage::from(usage));
        if let Some(w) = self.watchdog.take() {
            w.abort();
        }
        if let Some(cg) = self.cgroup.take() {
            if !self.no_report {
                self.stats = Some(cg.stats());
            }
            cg.release();
        }
        self.identity = None;
        self.network = None;
    }

    /// For a `Container` dropped before it was reaped: what the reaper must do after
    /// reaping it (remove the cgroup). The watchdog keeps running until the exit.
    /// For a detached container: stops the watchdog, keeps the cgroup (returning its
    /// directories) and the id block.
    pub(crate) fn detach(&mut self) -> Vec<std::path::PathBuf> {
        if let Some(w) = self.watchdog.take() {
            w.abort();
        }
        std::mem::forget(self.identity.take());
        // A detached container keeps its network; the next supervisor start sweeps it.
        if let Some(n) = self.network.take() {
            n.forget();
        }
        match self.cgroup.take() {
            Some(cg) => {
                cg.keep();
                cg.dirs()
            }
            None => Vec::new(),
        }
    }

    pub(crate) fn drop_cleanup(&mut self) -> Option<Cleanup> {
        let cgroup = self.cgroup.take();
        let identity = self.identity.take();
        let network = self.network.take();
        if cgroup.is_none() && identity.is_none() && network.is_none() {
            return None;
        }
        Some(Box::new(move || {
            if let Some(cg) = cgroup {
                cg.release();
            }
            drop(identity);
            drop(network);
        }) as Cleanup)
    }

    pub(super) fn mark_killed(&self, why: u8) {
        mark_killed(&self.killed, why);
    }

    /// The cap on stdout and stderr together, if any (`watchdog::read_capped`).
    pub(super) fn output_limit(&self) -> Option<usize> {
        self.output_limit
    }

    /// The report, once `status` is known.
    fn report(&self, status: ExitStatus) -> RunReport {
        let wall_time = self.ended.unwrap_or_else(Instant::now) - self.started;
        let stats = self.stats.clone().unwrap_or_default();
        let usage = self.usage.unwrap_or_default();
        let oom_kills = stats.oom_kills.unwrap_or(0);
        let signal = status.signal();
        let reason = match self.killed.load(Ordering::SeqCst) {
            KILLED_TIMEOUT => EndReason::TimedOut,
            KILLED_OUTPUT => EndReason::OutputLimit,
            _ if signal == Some(libc::SIGKILL) && oom_kills > 0 => EndReason::OomKilled,
            _ if signal.is_some() => EndReason::Signaled,
            _ => EndReason::Exited,
        };
        let mut r = RunReport {
            status,
            reason,
            exit_code: status.code(),
            signal,
            killed: matches!(reason, EndReason::TimedOut | EndReason::OutputLimit),
            wall_time,
            user_time: stats.user.unwrap_or(usage.user),
            system_time: stats.system.unwrap_or(usage.system),
            peak_memory: stats.memory_peak,
            max_rss: usage.max_rss,
            oom_killed: oom_kills > 0,
            oom_kills,
            pids_peak: stats.pids_peak,
            pids_limit_hits: stats.pids_refused,
            voluntary_context_switches: usage.nvcsw,
            involuntary_context_switches: usage.nivcsw,
            cgroup: self.had_cgroup,
            message: String::new(),
        };
        r.message = message(&r);
        r
    }
}

fn message(r: &RunReport) -> String {
    let sig_name = |s: i32| {
        nix::sys::signal::Signal::try_from(s)
            .map(|s| s.as_str().to_owned())
            .unwrap_or_else(|_| format!("signal {s}"))
    };
    let mut m = match r.reason {
        EndReason::Exited if r.exit_code == Some(0) => "Exited normally".to_owned(),
        EndReason::Exited => format!("Exited with error status {}", r.exit_code.unwrap_or(-1)),
        EndReason::Signaled => {
            let s = r.signal.unwrap_or(0);
            let hint = match s {
                libc::SIGXCPU => " (CPU time rlimit exceeded)",
                libc::SIGXFSZ => " (file size rlimit exceeded)",
                _ => "",
            };
            format!("Caught fatal signal {}{hint}", sig_name(s))
        }
        EndReason::TimedOut => "Time limit exceeded (wall clock)".to_owned(),
        EndReason::OomKilled => "Out of memory: killed by the OOM killer".to_owned(),
        EndReason::OutputLimit => "Output limit exceeded".to_owned(),
        EndReason::SetupFailed { stage, errno } => format!("Setup failed at {stage}: {errno}"),
    };
    if let Some(hits) = r.pids_limit_hits.filter(|&n| n > 0) {
        let _ = write!(m, "; {hits} fork(s) refused by the pids limit");
    }
    if r.oom_killed && r.reason != EndReason::OomKilled {
        let _ = write!(m, "; the OOM killer killed {} process(es)", r.oom_kills);
    }
    m
}

/// Limits and reports (see `builder/limits.rs` for the settings).
impl Container {
    /// Waits for the container to exit, reaps it, and reports how the run went.
    ///
    /// Can be called again after the container was reaped (by [`wait`](Self::wait) too):
    /// the report is rebuilt from what was recorded at reaping.
    pub async fn wait_with_report(&mut self) -> Result<RunReport> {
        let status = self.wait().await?;
        Ok(self.run.report(status))
    }

    /// [`wait_with_output`](Self::wait_with_output) plus the [`RunReport`]: reads stdout
    /// and stderr (up to the [`output_limit`](ContainerBuilder::output_limit), if any)
    /// while waiting.
    pub async fn wait_with_output_and_report(mut self) -> Result<(Output, RunReport)> {
        drop(self.take_stdin());
        let (out, err) = (self.take_stdout(), self.take_stderr());
        let budget = AtomicUsize::new(0);
        let this = &self;
        let (stdout, stderr) = tokio::try_join!(
            watchdog::read_capped(out, &budget, this),
            watchdog::read_capped(err, &budget, this)
        )
        .map_err(Error::io("reading the container's output"))?;
        let status = self.wait().await?;
        let report = self.run.report(status);
        let truncated = self
            .run
            .output_limit
            .is_some_and(|limit| budget.load(Ordering::SeqCst) > limit);
        Ok((
            Output {
                status,
                stdout,
                stderr,
                truncated,
            },
            report,
        ))
    }

    /// SIGKILLs every process of the container: the whole cgroup when it has one (v2
    /// `cgroup.kill`; v1 freeze, kill each, thaw), so grandchildren and daemons go too;
    /// without one, the first process (with [`Namespaces::PID`](crate::Namespaces::PID) the kernel then kills
    /// the rest of the namespace). Await [`wait`](Self::wait) afterwards to reap.
    pub async fn kill_all(&self) -> Result<()> {
        let Some(fd) = self.pidfd() else {
            return Err(Error::AlreadyReaped);
        };
        let _ = sys::pidfd_send_signal(fd, libc::SIGKILL);
        if let Some(cg) = self.run.cgroup.clone() {
            tokio::task::spawn_blocking(move || cg.kill_all())
                .await
                .map_err(|e| Error::Io {
                    context: "joining the kill task",
                    source: io::Error::other(e),
                })?
                .map_err(Error::io("killing the container's cgroup"))?;
        }
        Ok(())
    }

    /// The container's cgroup directories (one per v1 hierarchy, or one on v2); empty
    /// without a cgroup or once it has been removed after reaping.
    pub fn cgroup_paths(&self) -> Vec<PathBuf> {
        self.run.cgroup.as_ref().map_or_else(Vec::new, |c| c.dirs())
    }

    /// Whether the container's cgroup is in the v2 hierarchy (`None` without a cgroup).
    pub fn cgroup_is_v2(&self) -> Option<bool> {
        self.run.cgroup.as_ref().map(|c| c.is_v2())
    }
}

/// The output and report of a spawn whose child failed at `stage` (see
/// `ContainerBuilder::output_with_report`): exit code 127, no output.
pub(crate) fn setup_failed(
    started: Instant,
    had_cgroup: bool,
    stage: Stage,
    errno: Errno,
) -> (Output, RunReport) {
    let status = ExitStatus::from_raw(127 << 8);
    let mut report = RunState {
        started,
        ended: Some(Instant::now()),
        had_cgroup,
        ..RunState::default()
    }
    .report(status);
    report.reason = EndReason::SetupFailed { stage, errno };
    report.message = message(&report);
    let output = Output {
        status,
        stdout: Vec::new(),
        stderr: Vec::new(),
        truncated: false,
    };
    (output, report)
}
