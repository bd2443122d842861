//! `ContainerBuilder`: the configuration of a container, as plain data.
//!
//! Nothing here touches the system. Each concern's settings and setters are in a file of
//! their own beside this one; this file holds the `Command`-like part (program,
//! arguments, environment, working directory, namespaces, stdio). The verbs that start a
//! container ([`spawn`](ContainerBuilder::spawn), `status`, `output`) are in
//! `handle/spawn.rs`; `plan/` validates the configuration and turns it into what the child
//! needs.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::path::PathBuf;

#[cfg(doc)]
use crate::Container;
use crate::{Namespaces, Stdio};

mod from_std;

pub(crate) mod fs;

pub(crate) mod security;
pub(crate) mod session;
pub(crate) mod stdio;

pub(crate) mod join;
pub(crate) mod limits;
mod net;
pub(crate) mod time;
pub(crate) mod user;

/// Configuration for a container: the program to run and how to isolate it.
///
/// Built with [`Container::builder`]; the methods mirror `tokio::process::Command` and add
/// the isolation settings. A builder can be spawned any number of times.
///
/// One difference from tokio: the workload does **not** inherit the supervisor's
/// environment. It gets `PATH=`[`DEFAULT_PATH`] (and `TERM=xterm` with a pty) plus what
/// [`env`](Self::env) sets; [`env_inherit`](Self::env_inherit) restores tokio's behaviour.
///
/// ```no_run
/// # async fn demo() -> cellblock::Result<()> {
/// use cellblock::{Container, Namespaces, Stdio};
/// let out = Container::builder("/bin/sh")
///     .args(["-c", "hostname; echo $$"])
///     .namespaces(Namespaces::UTS | Namespaces::PID | Namespaces::MOUNT)
///     .hostname("container")
///     .output()
///     .await?;
/// assert_eq!(out.stdout, b"container\n1\n");
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct ContainerBuilder {
    pub(crate) program: OsString,
    pub(crate) args: Vec<OsString>,
    /// `argv[0]` when it is not the program as given (`arg0`).
    pub(crate) arg0: Option<OsString>,
    /// What the workload's environment starts from (see [`ContainerBuilder::env_inherit`]).
    pub(crate) env_base: EnvBase,
    /// `Some(v)` sets, `None` removes; applied over `env_base`.
    pub(crate) env: BTreeMap<OsString, Option<OsString>>,
    pub(crate) cwd: Option<PathBuf>,
    pub(crate) namespaces: Namespaces,
    pub(crate) hostname: Option<OsString>,
    pub(crate) domainname: Option<OsString>,
    pub(crate) stdin: Option<Stdio>,
    pub(crate) stdout: Option<Stdio>,
    pub(crate) stderr: Option<Stdio>,
    pub(crate) kill_on_drop: bool,
    /// `process_group(pgid)`.
    pub(crate) process_group: Option<i32>,
    /// Init, terminal, die-with-supervisor, merged-stderr settings (`session.rs`).
    pub(crate) session: session::SessionConfig,
    /// Root filesystem and mounts (`fs.rs`).
    pub(crate) fs: fs::FsConfig,
    /// uid/gid maps and the workload's identity (`user.rs`).
    pub(crate) user: user::UserConfig,
    /// Namespaces to join (`join.rs`).
    pub(crate) join: join::JoinConfig,
    /// Time namespace offsets (`time.rs`).
    pub(crate) time: time::TimeConfig,
    /// cgroup limits, rlimits, timeout, output limit (`limits.rs`).
    pub(crate) limits: limits::LimitsConfig,
    /// Hardening settings (`security.rs`).
    pub(crate) security: security::SecurityConfig,
    /// The network (`net.rs`, `crate::net`).
    pub(crate) network: crate::net::Network,
    /// Published ports (`net.rs`).
    pub(crate) publish: Vec<crate::net::Publish>,
    /// Set by the network step (`net/prepare.rs`), never by the user: a network namespace
    /// the cloning thread enters for the clone, so that the child starts in it.
    pub(crate) clone_in_netns: Option<std::sync::Arc<std::os::fd::OwnedFd>>,
}

impl ContainerBuilder {
    pub(crate) fn new(program: impl AsRef<OsStr>) -> ContainerBuilder {
        ContainerBuilder {
            program: program.as_ref().to_owned(),
            args: Vec::new(),
            arg0: None,
            env_base: EnvBase::Minimal,
            env: BTreeMap::new(),
            cwd: None,
            namespaces: Namespaces::empty(),
            hostname: None,
            domainname: None,
            stdin: None,
            stdout: None,
            stderr: None,
            kill_on_drop: false,
            process_group: None,
            session: Default::default(),
            fs: Default::default(),
            user: Default::default(),
            join: Default::default(),
            time: Default::default(),
            limits: Default::default(),
            security: Default::default(),
            network: Default::default(),
            publish: Vec::new(),
            clone_in_netns: None,
        }
    }

    /// Adds one argument.
    pub fn arg(&mut self, arg: impl AsRef<OsStr>) -> &mut Self {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    /// The workload's `argv[0]`, instead of the program as given (which is still what is
    /// looked up and executed), like `tokio::process::Command::arg0`.
    ///
    /// ```no_run
    /// # async fn demo() -> cellblock::Result<()> {
    /// use cellblock::Container;
    /// let out = Container::builder("/bin/sh").arg0("renamed").args(["-c", "echo $0"])
    ///     .output().await?;
    /// assert_eq!(out.stdout, b"renamed\n");
    /// # Ok(()) }
    /// ```
    pub fn arg0(&mut self, arg: impl AsRef<OsStr>) -> &mut Self {
        self.arg0 = Some(arg.as_ref().to_owned());
        self
    }

    /// Adds several arguments.
    pub fn args<I, S>(&mut self, args: I) -> &mut Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// Sets an environment variable for the workload.
    ///
    /// The workload's environment is, by default, **not** the supervisor's: it is
    /// `PATH=`[`DEFAULT_PATH`] (plus `TERM=xterm` with a [`pty`](Self::pty)) and what is
    /// set here. See [`env_inherit`](Self::env_inherit) and [`env_clear`](Self::env_clear).
    pub fn env(&mut self, key: impl AsRef<OsStr>, val: impl AsRef<OsStr>) -> &mut Self {
        self.env
            .insert(key.as_ref().to_owned(), Some(val.as_ref().to_owned()));
        self
    }

    /// Sets several environment variables.
    pub fn envs<I, K, V>(&mut self, vars: I) -> &mut Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        for (k, v) in vars {
            self.env(k, v);
        }
        self
    }

    /// Removes a variable from the workload's environment (one of the defaults, such as
    /// `PATH`, or, with [`env_inherit`](Self::env_inherit), an inherited one).
    pub fn env_remove(&mut self, key: impl AsRef<OsStr>) -> &mut Self {
        self.env.insert(key.as_ref().to_owned(), None);
        self
    }

    /// Starts from an empty environment: not even the default `PATH` (or `TERM`) is set,
    /// only what is set with [`env`](Self::env) afterwards. As in tokio, this also forgets
    /// the variables set (or removed) before it. A program named without a `/` is then
    /// still looked up, in a fallback search path (the supervisor's `PATH`; inside a root
    /// filesystem, `/usr/local/bin:/usr/bin:/bin`).
    pub fn env_clear(&mut self) -> &mut Self {
        self.env_base = EnvBase::Empty;
        self.env.clear();
        self
    }

    /// Starts from the supervisor's whole environment, as `tokio::process::Command` and
    /// `std::process::Command` do, with [`env`](Self::env) and
    /// [`env_remove`](Self::env_remove) applied over it. Variables already set are kept.
    ///
    /// The default (without this call) is a clean environment: only
    /// `PATH=`[`DEFAULT_PATH`], plus `TERM=xterm` when the container has a
    /// [`pty`](Self::pty), plus what is set with [`env`](Self::env).
    ///
    /// **Risk:** the supervisor's environment often holds its secrets (API tokens, database
    /// URLs with passwords, `AWS_*` and `SSH_AUTH_SOCK`): every one of them is handed to the
    /// workload, which can read its own environment however well it is otherwise isolated.
    /// Prefer passing the few variables the workload needs with [`env`](Self::env).
    ///
    /// ```
    /// use cellblock::Container;
    /// // A trusted helper that needs the caller's locale and proxy settings.
    /// Container::builder("/usr/bin/env").env_inherit();
    /// ```
    pub fn env_inherit(&mut self) -> &mut Self {
        self.env_base = EnvBase::Inherit;
        self
    }

    /// The workload's working directory.
    pub fn current_dir(&mut self, dir: impl Into<PathBuf>) -> &mut Self {
        self.cwd = Some(dir.into());
        self
    }

    /// Which namespaces to create (default: none).
    pub fn namespaces(&mut self, ns: Namespaces) -> &mut Self {
        self.namespaces = ns;
        self
    }

    /// The hostname inside; needs [`Namespaces::UTS`], created or joined (a joined UTS
    /// namespace is renamed for everyone in it). At most 64 bytes.
    pub fn hostname(&mut self, name: impl AsRef<OsStr>) -> &mut Self {
        self.hostname = Some(name.as_ref().to_owned());
        self
    }

    /// The NIS domain name inside; needs [`Namespaces::UTS`], created or joined. At most 64
    /// bytes.
    pub fn domainname(&mut self, name: impl AsRef<OsStr>) -> &mut Self {
        self.domainname = Some(name.as_ref().to_owned());
        self
    }

    /// The workload's stdin (default: inherit; null for [`output`](Self::output)).
    pub fn stdin(&mut self, s: impl Into<Stdio>) -> &mut Self {
        self.stdin = Some(s.into());
        self
    }

    /// The workload's stdout (default: inherit; piped for [`output`](Self::output)).
    pub fn stdout(&mut self, s: impl Into<Stdio>) -> &mut Self {
        self.stdout = Some(s.into());
        self
    }

    /// The workload's stderr (default: inherit; piped for [`output`](Self::output)).
    pub fn stderr(&mut self, s: impl Into<Stdio>) -> &mut Self {
        self.stderr = Some(s.into());
        self
    }

    /// Kill the container with SIGKILL when its [`Container`] handle is dropped before it
    /// was awaited. Either way a dropped container is reaped in the background.
    pub fn kill_on_drop(&mut self, kill: bool) -> &mut Self {
        self.kill_on_drop = kill;
        self
    }

    /// Puts the workload in process group `pgid`, like `tokio::process::Command::
    /// process_group` (std's `CommandExt::process_group`): `0` makes it the leader of a new
    /// group, another value joins the existing group of that id.
    ///
    /// In cellblock the workload **already** leads a process group of its own by default,
    /// so `process_group(0)` usually changes nothing:
    ///
    /// * with [`new_session`](Self::new_session) on (the default) it leads a new session,
    ///   hence a new group;
    /// * with the built-in [`init`](Self::init) (a new PID namespace) the init starts it in
    ///   a group of its own inside the container (`pgid` = its pid in there).
    ///
    /// It matters with `new_session(false)`: without an init the workload then leaves the
    /// supervisor's group for one of its own (`setpgid(0, 0)`); with the init on a
    /// terminal shared with the caller, where the init would keep the workload in the
    /// terminal's foreground group, it gets its own group (a background job there, as with
    /// std).
    ///
    /// Joining an existing group (`pgid > 0`) needs `new_session(false)` (a group of
    /// another session cannot be joined) and no [`Namespaces::PID`] (the group's id means
    /// nothing in a new PID namespace); otherwise, and for a negative `pgid`,
    /// [`spawn`](Self::spawn) fails with [`Error::BadConfig`](crate::Error::BadConfig)
    /// before anything runs. A group that does not exist in the session fails the spawn
    /// with [`Stage::ProcessGroup`](crate::Stage::ProcessGroup) (`EPERM`).
    ///
    /// ```no_run
    /// # async fn demo() -> cellblock::Result<()> {
    /// use cellblock::Container;
    /// let leader = Container::builder("/bin/sleep").arg("10")
    ///     .new_session(false).process_group(0).spawn().await?;
    /// let member = Container::builder("/bin/sleep").arg("10")
    ///     .new_session(false).process_group(leader.pid()).spawn().await?;
    /// // kill(-leader.pid(), SIGTERM) now ends both.
    /// # Ok(()) }
    /// ```
    pub fn process_group(&mut self, pgid: i32) -> &mut Self {
        self.process_group = Some(pgid);
        self
    }

    /// The program as given.
    pub fn get_program(&self) -> &OsStr {
        &self.program
    }

    /// The namespaces that will be created.
    pub fn get_namespaces(&self) -> Namespaces {
        self.namespaces
    }

    /// The arguments (without the program), like `tokio::process::Command::get_args`.
    pub fn get_args(&self) -> impl ExactSizeIterator<Item = &OsStr> {
        self.args.iter().map(OsString::as_os_str)
    }

    /// The environment changes made with [`env`](Self::env) (`Some(value)`) and
    /// [`env_remove`](Self::env_remove) (`None`), sorted by name, like
    /// `tokio::process::Command::get_envs`. The base they apply to (the clean default, the
    /// supervisor's environment or nothing) is not listed.
    pub fn get_envs(&self) -> impl ExactSizeIterator<Item = (&OsStr, Option<&OsStr>)> {
        self.env.iter().map(|(k, v)| (k.as_os_str(), v.as_deref()))
    }

    /// The working directory set with [`current_dir`](Self::current_dir).
    pub fn get_current_dir(&self) -> Option<&std::path::Path> {
        self.cwd.as_deref()
    }

    /// Whether [`kill_on_drop`](Self::kill_on_drop) is set.
    pub fn get_kill_on_drop(&self) -> bool {
        self.kill_on_drop
    }
}

/// The `PATH` of the workload's default environment: the usual one of a root shell, which
/// is what Docker and runc give a container too (a program named without a `/` is looked up
/// in it by the supervisor).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// What the workload's environment starts from, before the builder's own variables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EnvBase {
    /// `PATH=DEFAULT_PATH` (and `TERM=xterm` with a pty): the default.
    Minimal,
    /// Nothing (`env_clear`).
    Empty,
    /// The supervisor's environment (`env_inherit`).
    Inherit,
}

/// Which stdio defaults apply to unset streams.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Defaults {
    Spawn,
    Output,
}
