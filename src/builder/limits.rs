//! Resource limits: the builder methods, their constants, and the settings as plain data.
//!
//! `plan/limits.rs` validates them and prepares the cgroup and the rlimit table; the cgroup
//! mechanics are in `cgroup/`, the child's steps in `child/limits.rs`, the timeout watchdog
//! and the per-run report in `report.rs`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::cgroup::CgroupVersion;
use crate::ContainerBuilder;
#[cfg(doc)]
use crate::{Error, Namespaces};

/// The CFS period used for [`ContainerBuilder::cpu_limit`], in microseconds (100 ms, the
/// kernel's default).
pub(crate) const CPU_PERIOD_US: u64 = 100_000;

/// The largest [`cpu_limit`](ContainerBuilder::cpu_limit) accepted: 8192 CPUs, the most a
/// Linux kernel can be built for (x86-64's `CONFIG_MAXSMP` `NR_CPUS`).
///
/// A limit at or above the host's CPU count limits nothing, but it is still accepted up
/// to this bound, so that a configuration written for a larger host runs unchanged on a
/// smaller one. Above it the number is a mistake (`1e300` would turn into a CFS quota the
/// kernel refuses only after the clone), and [`spawn`](ContainerBuilder::spawn) fails with
/// [`Error::InvalidLimit`] before anything runs. Far below the kernel's own ceiling for a
/// quota (2^44 µs per period).
pub const MAX_CPU_LIMIT: f64 = 8192.0;

/// The default pause between SIGTERM and SIGKILL when a [`timeout`](ContainerBuilder::timeout)
/// expires.
pub const DEFAULT_KILL_GRACE: Duration = Duration::from_millis(500);

/// The pids budget every container gets unless the caller sets its own
/// ([`pids_limit`](ContainerBuilder::pids_limit)) or opts out
/// ([`default_budget(false)`](ContainerBuilder::default_budget)).
///
/// Why 1024: a container's processes and threads count against every cgroup above it,
/// the supervisor's own included, and on a host without a pids limit against the
/// kernel's `pid_max` (32768 by default, the figure on the test machine). 1024 is 3% of
/// that, so one runaway container cannot use up the pid space, and it is a fifth of the
/// budget systemd gives a service by default (`DefaultTasksMax=15%` of 32768 = 4915), so
/// a supervisor running as a service keeps most of its own budget with a runaway
/// container or two. It is ample for ordinary workloads (a shell pipeline needs a handful,
/// a `make -j8` build a few dozen, a JVM a few hundred threads); podman's default
/// (`pids_limit = 2048` in containers.conf) is of the same order.
pub const DEFAULT_PIDS_LIMIT: u64 = 1024;

/// The CPU weight of all containers *together* against the supervisor's own threads,
/// in `cpu.weight` units (1..=10000, kernel default 100): 50, i.e. v1 `cpu.shares` 512
/// against 1024 per supervisor thread.
///
/// It is written to the `cellblock` directory that holds the containers' `cpu` cgroups
/// (when cellblock makes it, or finds it at the kernel's default), because that directory
/// is what competes with the supervisor's threads for CPU: weights only count between
/// siblings, and the containers' own cgroups are siblings of each other, not of the
/// supervisor. It applies to the containers that have a `cpu` cgroup, that is those with
/// a [`cpu_limit`](ContainerBuilder::cpu_limit) or [`cpu_weight`](ContainerBuilder::cpu_weight)
/// of the caller's: each of them then weighs as one against the others however many
/// processes it runs, and together they get half of what one busy supervisor thread gets
/// under contention (all of an otherwise idle CPU).
///
/// The [default budget](ContainerBuilder::default_budget) does not give every container a
/// `cpu` cgroup, because on v1 it made the spawn of a `/bin/true` container 40–80% slower
/// here (a task in a `cpu` cgroup of its own starts and runs slower on a busy host), far
/// above the 15% the budget may cost, while the pids budget alone already keeps the
/// supervisor's 10 ms timer within target under a fork bomb (measured in
/// `benches/forkbomb.rs`: at most 10.7 ms late, against 367 ms without the budget).
/// `cpu_weight(100)` (the kernel's default weight) asks for the `cpu` cgroup without
/// changing the container's share among containers.
pub const CONTAINERS_CPU_WEIGHT: u64 = 50;

/// A resource for [`ContainerBuilder::rlimit`] (`RLIMIT_*`, see `man 2 setrlimit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Resource {
    /// `RLIMIT_AS`: address space size, bytes.
    As,
    /// `RLIMIT_CORE`: core file size, bytes.
    Core,
    /// `RLIMIT_CPU`: CPU time, seconds (SIGXCPU at the soft limit, SIGKILL at the hard).
    Cpu,
    /// `RLIMIT_DATA`: data segment size, bytes.
    Data,
    /// `RLIMIT_FSIZE`: largest file the process may create, bytes (SIGXFSZ beyond).
    Fsize,
    /// `RLIMIT_LOCKS`: file locks.
    Locks,
    /// `RLIMIT_MEMLOCK`: locked memory, bytes.
    Memlock,
    /// `RLIMIT_MSGQUEUE`: POSIX message queue bytes.
    Msgqueue,
    /// `RLIMIT_NICE`: ceiling for the nice value (20 - limit).
    Nice,
    /// `RLIMIT_NOFILE`: one more than the highest file descriptor number.
    Nofile,
    /// `RLIMIT_NPROC`: processes of the real user id (not enforced for root; use
    /// [`pids_limit`](ContainerBuilder::pids_limit) to bound a container).
    Nproc,
    /// `RLIMIT_RSS`: ignored by Linux since 2.6, kept for completeness.
    Rss,
    /// `RLIMIT_RTPRIO`: ceiling for the real-time priority.
    Rtprio,
    /// `RLIMIT_RTTIME`: CPU time without a blocking syscall under real-time scheduling, µs.
    Rttime,
    /// `RLIMIT_SIGPENDING`: queued signals.
    Sigpending,
    /// `RLIMIT_STACK`: main thread stack size, bytes.
    Stack,
}

impl Resource {
    pub(crate) fn raw(self) -> libc::c_int {
        (match self {
            Resource::As => libc::RLIMIT_AS,
            Resource::Core => libc::RLIMIT_CORE,
            Resource::Cpu => libc::RLIMIT_CPU,
            Resource::Data => libc::RLIMIT_DATA,
            Resource::Fsize => libc::RLIMIT_FSIZE,
            Resource::Locks => libc::RLIMIT_LOCKS,
            Resource::Memlock => libc::RLIMIT_MEMLOCK,
            Resource::Msgqueue => libc::RLIMIT_MSGQUEUE,
            Resource::Nice => libc::RLIMIT_NICE,
            Resource::Nofile => libc::RLIMIT_NOFILE,
            Resource::Nproc => libc::RLIMIT_NPROC,
            Resource::Rss => libc::RLIMIT_RSS,
            Resource::Rtprio => libc::RLIMIT_RTPRIO,
            Resource::Rttime => libc::RLIMIT_RTTIME,
            Resource::Sigpending => libc::RLIMIT_SIGPENDING,
            Resource::Stack => libc::RLIMIT_STACK,
        }) as libc::c_int
    }
}

/// `RLIM_INFINITY`, for [`ContainerBuilder::rlimit`]: no limit.
pub const RLIM_INFINITY: u64 = u64::MAX;

/// The limits part of a [`ContainerBuilder`]: plain data, validated at spawn.
#[derive(Debug, Clone, Default)]
pub(crate) struct LimitsConfig {
    pub(crate) memory: Option<u64>,
    pub(crate) memory_swap: Option<u64>,
    pub(crate) pids: Option<u64>,
    pub(crate) cpu: Option<f64>,
    pub(crate) cpu_weight: Option<u64>,
    pub(crate) cpuset: Option<String>,
    /// [`cpu_period`](ContainerBuilder::cpu_period), µs.
    pub(crate) cpu_period: Option<u64>,
    /// [`cpuset_mems`](ContainerBuilder::cpuset_mems).
    pub(crate) cpuset_mems: Option<String>,
    pub(crate) rlimits: Vec<(Resource, u64, u64)>,
    pub(crate) timeout: Option<Duration>,
    pub(crate) kill_grace: Option<Duration>,
    pub(crate) output_limit: Option<usize>,
    pub(crate) accounting: bool,
    pub(crate) cgroup_version: CgroupVersion,
    pub(crate) cgroup_parent: Option<PathBuf>,
    /// `cgroup_path(path)`: the container's cgroup is exactly this path (absolute: from
    /// each hierarchy's root; relative: from the supervisor's own cgroup in it).
    pub(crate) cgroup_path: Option<PathBuf>,
    /// `join_cgroup_of(pid)`: join the cgroups the process `pid` is in (with `cgroup_join`).
    pub(crate) cgroup_of: Option<i32>,
    /// `join_cgroup_path(path)`: that cgroup exists and is another container's: join it,
    /// never write its limits, never remove or kill it.
    pub(crate) cgroup_join: bool,
    /// `default_budget(false)`: no default pids budget, no CPU weighting.
    pub(crate) no_default_budget: bool,
    /// [`cgroup_setup`](ContainerBuilder::cgroup_setup).
    pub(crate) setup: Option<CgroupSetup>,
}

/// The callback type of [`cgroup_setup`](ContainerBuilder::cgroup_setup).
type SetupFn = dyn Fn(&[PathBuf]) -> std::io::Result<()> + Send + Sync;

/// The caller's [`cgroup_setup`](ContainerBuilder::cgroup_setup) callback.
#[derive(Clone)]
pub(crate) struct CgroupSetup(pub(crate) Arc<SetupFn>);

impl std::fmt::Debug for CgroupSetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CgroupSetup(..)")
    }
}

impl LimitsConfig {
    /// Whether the container gets a cgroup.
    pub(crate) fn wants_cgroup(&self) -> bool {
        self.accounting
            || self.memory.is_some()
            || self.memory_swap.is_some()
            || self.pids.is_some()
            || self.cpu.is_some()
            || self.cpu_weight.is_some()
            || self.cpuset.is_some()
            || self.cpuset_mems.is_some()
            || self.setup.is_some()
            || self.placed()
    }

    /// Whether the cgroup is one the caller placed (`cgroup_path`, `join_cgroup_path`,
    /// `join_cgroup_of`) rather than ours under the supervisor's own cgroup.
    pub(crate) fn placed(&self) -> bool {
        self.cgroup_path.is_some() || self.cgroup_of.is_some()
    }

    /// Whether the default budget applies ([`DEFAULT_PIDS_LIMIT`],
    /// [`CONTAINERS_CPU_WEIGHT`]).
    pub(crate) fn default_budget(&self) -> bool {
        !self.no_default_budget
    }

    /// The pids limit to write: the caller's, else the default budget's.
    pub(crate) fn effective_pids(&self) -> Option<u64> {
        self.pids
            .or_else(|| self.default_budget().then_some(DEFAULT_PIDS_LIMIT))
    }

    /// Whether a limit of the caller's needs the cpu controller.
    pub(crate) fn wants_cpu(&self) -> bool {
        self.cpu.is_some() || self.cpu_weight.is_some()
    }

    /// The CFS quota for [`cpu_limit`](ContainerBuilder::cpu_limit), in µs per period.
    pub(crate) fn cpu_quota_us(&self) -> Option<u64> {
        let period = self.cpu_period_us();
        self.cpu.map(|cores| (cores * period as f64).round() as u64)
    }

    /// The CFS period: [`cpu_period`](ContainerBuilder::cpu_period)'s, else 100 ms.
    pub(crate) fn cpu_period_us(&self) -> u64 {
        self.cpu_period.unwrap_or(CPU_PERIOD_US)
    }

    /// Whether a limit of the caller's needs the cpuset controller.
    pub(crate) fn wants_cpuset(&self) -> bool {
        self.cpuset.is_some() || self.cpuset_mems.is_some()
    }
}

/// Resource limits, timeouts and accounting (see also `report.rs` for the results).
impl ContainerBuilder {
    /// Limits the container's memory (RAM and page cache, all its processes together) to
    /// `bytes`: cgroup `memory.max` (v2) or `memory.limit_in_bytes` (v1). Beyond it the
    /// kernel reclaims, then OOM-kills a process of the container; the
    /// [report](crate::RunReport) then says [`EndReason::OomKilled`](crate::EndReason).
    ///
    /// ```no_run
    /// # async fn demo() -> cellblock::Result<()> {
    /// use cellblock::{Container, EndReason};
    /// let (_, report) = Container::builder("/usr/bin/tail").arg("/dev/zero")
    ///     .memory_limit(32 << 20)
    ///     .output_with_report()
    ///     .await?;
    /// assert_eq!(report.reason, EndReason::OomKilled);
    /// # Ok(()) }
    /// ```
    pub fn memory_limit(&mut self, bytes: u64) -> &mut Self {
        self.limits.memory = Some(bytes);
        self
    }

    /// Limits swap use on top of [`memory_limit`](Self::memory_limit) (which it needs):
    /// `memory.swap.max` (v2) or `memory.memsw.limit_in_bytes` = memory + swap (v1).
    /// `0` forbids swapping. Unset, swap is not limited.
    pub fn memory_swap_limit(&mut self, bytes: u64) -> &mut Self {
        self.limits.memory_swap = Some(bytes);
        self
    }

    /// Limits the number of processes and threads in the container (`pids.max`); a fork
    /// beyond it fails with EAGAIN. Contains fork bombs. Replaces the
    /// [default budget](Self::default_budget)'s [`DEFAULT_PIDS_LIMIT`], higher or lower.
    pub fn pids_limit(&mut self, max: u64) -> &mut Self {
        self.limits.pids = Some(max);
        self
    }

    /// Whether the container gets the default budget (default `true`): a cgroup of its own
    /// with `pids.max` = [`DEFAULT_PIDS_LIMIT`] unless [`pids_limit`](Self::pids_limit)
    /// says otherwise. It keeps a runaway container (a fork bomb) from using up the
    /// supervisor's pids, which would fail the supervisor's next spawn (and its own new
    /// threads) with EAGAIN, and from flooding the scheduler with runnable processes that
    /// push the supervisor's timers late.
    ///
    /// The cgroup is the container's like any other (see
    /// [`Container::cgroup_paths`](crate::Container::cgroup_paths)): a
    /// [`timeout`](Self::timeout) or [`Container::kill_all`](crate::Container::kill_all)
    /// reaches every process in it, and the [report](crate::RunReport) has `pids_peak` and
    /// `pids_limit_hits`. Without limits or accounting of the caller's, it has only the
    /// `pids` controller, for a cheap spawn: one `mkdir` before the clone, one write of
    /// `pids.max`, the child's joining (on v1 through `tasks`, which moves only the
    /// calling thread and so avoids the kernel's global threadgroup lock and the RCU grace
    /// period its writers wait for; on v2 through `cgroup.procs`), one `rmdir` after the
    /// reaping. CPU weighting is not part of it (see [`CONTAINERS_CPU_WEIGHT`] for why and
    /// how to ask for it).
    ///
    /// When the first process has been reaped, whatever is left in the cgroup is killed
    /// and the cgroup removed, as for any container with a cgroup: background processes
    /// of a container without a PID namespace no longer outlive it.
    ///
    /// `false` brings back the old behaviour: a container with no limit of the caller's
    /// has no cgroup and its processes count against the supervisor's own cgroup. **Risk:**
    /// a fork bomb in it can then use up the supervisor's (or the host's) pids, so that the
    /// supervisor's next spawn and its own threads fail with EAGAIN, and its thousands of
    /// runnable processes push the supervisor's timers late (measured here with 4096: a
    /// 10 ms timer up to 219–367 ms late). Turn it off only for trusted
    /// workloads, or when the caller bounds them otherwise (its own `pids_limit` is kept
    /// either way).
    ///
    /// When the budget cannot be had, the container runs without it, as before, and the
    /// first such spawn logs a warning (`tracing`) saying why. That is the case for a
    /// rootless supervisor without a delegated cgroup ([`cgroup_parent`](Self::cgroup_parent)
    /// gives one: the budget then applies), for a read-only cgroupfs (a nested supervisor
    /// inside a container), and on cgroup v2 when the `pids` controller is not available in
    /// the supervisor's cgroup, or the kernel refuses to enable it below a cgroup that holds
    /// processes (move the supervisor into a leaf of its own and pass the parent with
    /// `cgroup_parent`, or run it under systemd with `Delegate=yes`). Without the budget
    /// **nothing** of the above is protected: the container's processes count against the
    /// supervisor's cgroup (for a rootless supervisor, also against its user's
    /// `RLIMIT_NPROC`, which the supervisor and all its containers share), so a fork bomb
    /// can make the supervisor's spawns fail. What stays protected then is only what the
    /// caller sets explicitly: an [`rlimit`](Self::rlimit) such as
    /// [`Resource::Nproc`] works rootless (it counts every process of the user, the
    /// supervisor's included). The caller's explicit cgroup limits never fall back: they
    /// fail the spawn with a typed error, as before.
    ///
    /// ```
    /// use cellblock::Container;
    /// // A trusted helper that may start many threads: no default budget.
    /// Container::builder("/usr/bin/make").arg("-j64").default_budget(false);
    /// // The default budget, but a bigger pids limit.
    /// Container::builder("/usr/bin/make").arg("-j64").pids_limit(8192);
    /// ```
    pub fn default_budget(&mut self, on: bool) -> &mut Self {
        self.limits.no_default_budget = !on;
        self
    }

    /// Limits CPU bandwidth to `cpus` CPUs' worth (0.5 = half of one CPU, 2.0 = two), with
    /// CFS quota over a 100 ms period (`cpu.max`; v1 `cpu.cfs_quota_us`). At least 0.01,
    /// at most [`MAX_CPU_LIMIT`]; NaN, infinities, zero, negative numbers and values out of
    /// that range make [`spawn`](Self::spawn) fail with [`Error::InvalidLimit`] naming the
    /// value, before anything is cloned.
    pub fn cpu_limit(&mut self, cpus: f64) -> &mut Self {
        self.limits.cpu = Some(cpus);
        self
    }

    /// Relative CPU share under contention, 1..=10000 (default 100): `cpu.weight` (v2);
    /// v1 `cpu.shares` = weight × 1024 / 100. It weighs this container against the other
    /// containers (its siblings under the shared `cellblock` cgroup); the containers
    /// together weigh [`CONTAINERS_CPU_WEIGHT`] against the supervisor's own threads.
    pub fn cpu_weight(&mut self, weight: u64) -> &mut Self {
        self.limits.cpu_weight = Some(weight);
        self
    }

    /// Restricts the container to these CPUs, e.g. `"0"` or `"0-2,5"` (`cpuset.cpus`).
    pub fn cpuset(&mut self, cpus: impl Into<String>) -> &mut Self {
        self.limits.cpuset = Some(cpus.into());
        self
    }

    /// Restricts the container's memory to these NUMA nodes, e.g. `"0"` (`cpuset.mems`).
    /// A node the machine lacks makes the spawn fail when the kernel refuses it.
    ///
    /// ```
    /// use cellblock::Container;
    /// Container::builder("/bin/true").cpuset("0").cpuset_mems("0");
    /// ```
    pub fn cpuset_mems(&mut self, nodes: impl Into<String>) -> &mut Self {
        self.limits.cpuset_mems = Some(nodes.into());
        self
    }

    /// The CFS period over which [`cpu_limit`](Self::cpu_limit)'s quota is measured, in
    /// microseconds: 1000 (1 ms) to 1,000,000 (1 s), the kernel's bounds; 100,000 (100 ms)
    /// by default. A longer period lets a bursty workload use its whole quota at once; a
    /// shorter one throttles it sooner. Out of bounds, [`spawn`](Self::spawn) fails with
    /// [`Error::InvalidLimit`].
    ///
    /// ```
    /// use cellblock::Container;
    /// // Half a CPU, as 250 ms in every 500 ms.
    /// Container::builder("/bin/true").cpu_period(500_000).cpu_limit(0.5);
    /// ```
    pub fn cpu_period(&mut self, period_us: u64) -> &mut Self {
        self.limits.cpu_period = Some(period_us);
        self
    }

    /// Sets a resource limit for the container's first process (inherited by its
    /// children), with the raw `prlimit64` syscall in the child before execve. Use
    /// [`RLIM_INFINITY`] for "unlimited". Raising a hard limit needs CAP_SYS_RESOURCE.
    ///
    /// ```
    /// use cellblock::{Container, Resource};
    /// Container::builder("/bin/true")
    ///     .rlimit(Resource::Nofile, 64, 64)
    ///     .rlimit(Resource::Core, 0, 0);
    /// ```
    pub fn rlimit(&mut self, resource: Resource, soft: u64, hard: u64) -> &mut Self {
        self.limits.rlimits.retain(|(r, _, _)| *r != resource);
        self.limits.rlimits.push((resource, soft, hard));
        self
    }

    /// Ends the container after `limit` of wall time: SIGTERM, then after the
    /// [grace period](Self::kill_grace) SIGKILL of the whole container, and the report
    /// says [`EndReason::TimedOut`](crate::EndReason). The clock starts when the
    /// container has started and runs whether or not anyone awaits it.
    ///
    /// "The whole container" is its cgroup when it has one (the
    /// [default budget](Self::default_budget), any limit, or
    /// [`cgroup_accounting`](Self::cgroup_accounting)): every process in it, however
    /// deep, is signalled (v2 `cgroup.kill`; v1 freeze, kill, thaw). Without a cgroup but
    /// with [`Namespaces::PID`], SIGTERM goes to PID 1 (the built-in init passes it on to
    /// the workload; with `init(false)` a workload that is PID 1 ignores it unless it has a
    /// handler) and SIGKILL of PID 1 makes the kernel kill the rest of the namespace.
    /// With neither (`default_budget(false)` and no limit, or the budget unavailable), only
    /// the first process is signalled: its descendants survive.
    pub fn timeout(&mut self, limit: Duration) -> &mut Self {
        self.limits.timeout = Some(limit);
        self
    }

    /// The pause between SIGTERM and SIGKILL when the [`timeout`](Self::timeout) expires
    /// (default [`DEFAULT_KILL_GRACE`]). Zero sends SIGKILL straight away.
    pub fn kill_grace(&mut self, grace: Duration) -> &mut Self {
        self.limits.kill_grace = Some(grace);
        self
    }

    /// Caps what [`output`](Self::output) (and `output_with_report`) collects from stdout
    /// and stderr together: past `bytes` the container is killed and the report says
    /// [`EndReason::OutputLimit`](crate::EndReason). The output is cut at the limit.
    pub fn output_limit(&mut self, bytes: usize) -> &mut Self {
        self.limits.output_limit = Some(bytes);
        self
    }

    /// Gives the container a cgroup even without limits, for accounting (peak memory,
    /// CPU time of all its processes) and whole-container kills. Implied by any cgroup
    /// limit.
    pub fn cgroup_accounting(&mut self, on: bool) -> &mut Self {
        self.limits.accounting = on;
        self
    }

    /// Which cgroup hierarchy to use (default [`CgroupVersion::Auto`]).
    pub fn cgroup_version(&mut self, version: CgroupVersion) -> &mut Self {
        self.limits.cgroup_version = version;
        self
    }

    /// A delegated cgroup to create containers' cgroups in (under `cellblock/` in it),
    /// instead of the supervisor's own cgroup. For a rootless supervisor this is how it
    /// gets cgroups at all: systemd's `Delegate=yes`, or a directory chowned to it.
    ///
    /// The path is read per hierarchy: a path under the hierarchy's mount point is used as
    /// is (`/sys/fs/cgroup/user.slice/…` on v2); another absolute path is taken from the
    /// mount point (`/ci` → `/sys/fs/cgroup/memory/ci`, `/sys/fs/cgroup/pids/ci`, … on
    /// v1); a relative path is taken from the supervisor's own cgroup in each hierarchy.
    ///
    /// On v2 the kernel also wants the supervisor to be able to write `cgroup.procs` of
    /// the common ancestor of its own cgroup and the container's, so a rootless
    /// supervisor must itself live inside the delegated subtree.
    ///
    /// ```
    /// use cellblock::Container;
    /// Container::builder("/bin/true").pids_limit(64).cgroup_parent("delegated");
    /// ```
    pub fn cgroup_parent(&mut self, dir: impl Into<PathBuf>) -> &mut Self {
        self.limits.cgroup_parent = Some(dir.into());
        self
    }

    /// Puts the container in exactly the cgroup `path`, as OCI's `linux.cgroupsPath` and
    /// runc read it. An absolute path is read from the root of each hierarchy: `/jobs/j42`
    /// is `/sys/fs/cgroup/<controller>/jobs/j42` in every mounted v1 hierarchy the container
    /// uses (memory, cpu, cpuacct, pids, freezer and devices), or `/sys/fs/cgroup/jobs/j42`
    /// on v2. A relative path is read from the supervisor's own cgroup in each hierarchy
    /// (on a hybrid host these may differ: `jobs/j42` under the memory cgroup the
    /// supervisor is in, and under its v2 cgroup). Missing parents are created and left in
    /// place; the leaf may already exist (it is then joined) and is removed when the
    /// container's cgroup is released, or by [`Detached::destroy`](crate::Detached::destroy).
    /// Instead of the default nesting under the supervisor's own cgroup (and of
    /// [`cgroup_parent`](Self::cgroup_parent), which it excludes). A container with a cgroup
    /// path always gets a cgroup with every controller available, as if
    /// [`cgroup_accounting`](Self::cgroup_accounting) were on.
    ///
    /// Two live containers must not be given the same path: the second would share the
    /// first one's cgroup and limits.
    ///
    /// ```
    /// use cellblock::Container;
    /// Container::builder("/bin/true").cgroup_path("/ci/job-42");
    /// Container::builder("/bin/true").cgroup_path("jobs/job-43"); // below our own
    /// ```
    pub fn cgroup_path(&mut self, path: impl Into<PathBuf>) -> &mut Self {
        self.limits.cgroup_path = Some(path.into());
        self.limits.cgroup_of = None;
        self.limits.cgroup_join = false;
        self
    }

    /// Puts the container in the existing cgroup `path` of another container (read as in
    /// [`cgroup_path`](Self::cgroup_path)), as `docker exec` / OCI `exec` do: its
    /// processes then count against that container's limits, are frozen with it and killed
    /// with it. This container neither writes the cgroup's limits nor removes or empties
    /// it when it ends, so it takes no limits of its own ([`Error::InvalidLimit`]
    /// otherwise) and no default budget. A hierarchy in which `path` does not exist is
    /// skipped; none at all is [`Error::CgroupUnavailable`].
    ///
    /// [`Error::InvalidLimit`]: crate::Error::InvalidLimit
    /// [`Error::CgroupUnavailable`]: crate::Error::CgroupUnavailable
    pub fn join_cgroup_path(&mut self, path: impl Into<PathBuf>) -> &mut Self {
        self.limits.cgroup_path = Some(path.into());
        self.limits.cgroup_of = None;
        self.limits.cgroup_join = true;
        self
    }

    /// Puts the container in the cgroups the running process `pid` is in, in every
    /// hierarchy (read from `/proc/PID/cgroup` when it is spawned), as
    /// [`join_cgroup_path`](Self::join_cgroup_path) does with a path: for running a process
    /// in a container whose cgroup path is not known, or differs between the hierarchies of
    /// a hybrid host (a relative [`cgroup_path`](Self::cgroup_path) read from another
    /// supervisor's cgroups). An OCI runtime's `exec` joins its container's init this way.
    /// A `pid` that is gone is [`Error::CgroupUnavailable`](crate::Error::CgroupUnavailable).
    ///
    /// ```no_run
    /// # async fn demo(other: &cellblock::Container) -> cellblock::Result<()> {
    /// use cellblock::{Container, Namespaces};
    /// let mut helper = Container::builder("/bin/true")
    ///     .join(Namespaces::PID | Namespaces::MOUNT, other)
    ///     .join_cgroup_of(other.pid())
    ///     .spawn().await?;
    /// helper.wait().await?;
    /// # Ok(()) }
    /// ```
    pub fn join_cgroup_of(&mut self, pid: i32) -> &mut Self {
        self.limits.cgroup_path = None;
        self.limits.cgroup_of = Some(pid);
        self.limits.cgroup_join = true;
        self
    }

    /// Runs `setup` with the container's cgroup directories (one per hierarchy, as
    /// [`Detached::cgroup_dirs`](crate::Detached::cgroup_dirs) lists them) once they exist
    /// with the library's limits written, and before any process is in them: for settings
    /// the library has no method for (a device cgroup's rules, a v2 device program, a
    /// controller file), in place of a [`create`](Self::create) and
    /// [`start`](crate::Created::start) round trip around them. It runs inside `spawn`
    /// (or `create`, `output`...) on the calling task's thread, before the clone, and
    /// blocks that thread as the library's own cgroup writes do: keep it to a few file
    /// writes. An error fails the spawn ([`Error::Io`] "in the cgroup_setup callback")
    /// and the cgroup is removed. The container gets a cgroup of
    /// its own (as with [`cgroup_accounting`](Self::cgroup_accounting)); with
    /// [`join_cgroup_path`](Self::join_cgroup_path) or
    /// [`join_cgroup_of`](Self::join_cgroup_of) the spawn fails with
    /// [`Error::InvalidLimit`]: that cgroup is another container's.
    ///
    /// [`Error::Io`]: crate::Error::Io
    /// [`Error::InvalidLimit`]: crate::Error::InvalidLimit
    ///
    /// ```no_run
    /// # async fn demo() -> cellblock::Result<()> {
    /// use cellblock::Container;
    /// let mut c = Container::builder("/bin/true")
    ///     .cgroup_setup(|dirs| {
    ///         // No block device at all, on a host with the v1 devices controller.
    ///         for d in dirs.iter().filter(|d| d.join("devices.deny").exists()) {
    ///             std::fs::write(d.join("devices.deny"), "b *:* rwm")?;
    ///         }
    ///         Ok(())
    ///     })
    ///     .spawn().await?;
    /// c.wait().await?;
    /// # Ok(()) }
    /// ```
    pub fn cgroup_setup(
        &mut self,
        setup: impl Fn(&[PathBuf]) -> std::io::Result<()> + Send + Sync + 'static,
    ) -> &mut Self {
        self.limits.setup = Some(CgroupSetup(Arc::new(setup)));
        self
    }
}
