//! `ContainerBuilder`: the configuration of a container, as plain data.
//!
//! Nothing here touches the system: [`ContainerBuilder::spawn`] hands the configuration to
//! `plan.rs`, which validates it and turns it into what the child needs.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::path::PathBuf;
use std::process::ExitStatus;

use crate::{Container, Namespaces, Output, Result, Stdio};

/// Configuration for a container: the program to run and how to isolate it.
///
/// Built with [`Container::builder`]; the methods mirror `tokio::process::Command` and add
/// the isolation settings. A builder can be spawned any number of times.
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
    pub(crate) env_clear: bool,
    /// `Some(v)` sets, `None` removes; applied over the inherited environment.
    pub(crate) env: BTreeMap<OsString, Option<OsString>>,
    pub(crate) cwd: Option<PathBuf>,
    pub(crate) namespaces: Namespaces,
    pub(crate) hostname: Option<OsString>,
    pub(crate) domainname: Option<OsString>,
    pub(crate) stdin: Option<Stdio>,
    pub(crate) stdout: Option<Stdio>,
    pub(crate) stderr: Option<Stdio>,
    pub(crate) kill_on_drop: bool,
    /// Init, terminal, die-with-supervisor, merged-stderr settings (`session.rs`).
    pub(crate) session: crate::session::SessionConfig,
    /// Root filesystem and mounts (`mounts.rs`).
    pub(crate) fs: crate::mounts::FsConfig,
    /// uid/gid maps and the workload's identity (`userns.rs`).
    pub(crate) user: crate::userns::UserConfig,
    /// Namespaces to join (`join.rs`).
    pub(crate) joins: crate::join::JoinConfig,
    /// Time namespace offsets (`time.rs`).
    pub(crate) time: crate::time::TimeConfig,
    /// cgroup limits, rlimits, timeout, output limit (`limits.rs`).
    pub(crate) limits: crate::limits::Limits,
    /// Hardening settings (`security.rs`).
    pub(crate) security: crate::security::Security,
}

impl ContainerBuilder {
    pub(crate) fn new(program: impl AsRef<OsStr>) -> ContainerBuilder {
        ContainerBuilder {
            program: program.as_ref().to_owned(),
            args: Vec::new(),
            env_clear: false,
            env: BTreeMap::new(),
            cwd: None,
            namespaces: Namespaces::empty(),
            hostname: None,
            domainname: None,
            stdin: None,
            stdout: None,
            stderr: None,
            kill_on_drop: false,
            session: Default::default(),
            fs: Default::default(),
            user: Default::default(),
            joins: Default::default(),
            time: Default::default(),
            limits: Default::default(),
            security: Default::default(),
        }
    }

    /// Adds one argument.
    pub fn arg(&mut self, arg: impl AsRef<OsStr>) -> &mut Self {
        self.args.push(arg.as_ref().to_owned());
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

    /// Removes a variable from the environment the workload would inherit.
    pub fn env_remove(&mut self, key: impl AsRef<OsStr>) -> &mut Self {
        self.env.insert(key.as_ref().to_owned(), None);
        self
    }

    /// Starts from an empty environment instead of the supervisor's.
    pub fn env_clear(&mut self) -> &mut Self {
        self.env_clear = true;
        self.env.clear();
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

    /// The hostname inside; needs [`Namespaces::UTS`]. At most 64 bytes.
    pub fn hostname(&mut self, name: impl AsRef<OsStr>) -> &mut Self {
        self.hostname = Some(name.as_ref().to_owned());
        self
    }

    /// The NIS domain name inside; needs [`Namespaces::UTS`]. At most 64 bytes.
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

    /// The program as given.
    pub fn get_program(&self) -> &OsStr {
        &self.program
    }

    /// The namespaces that will be created.
    pub fn get_namespaces(&self) -> Namespaces {
        self.namespaces
    }

    /// Validates the configuration and starts the container.
    ///
    /// Returns once the workload's program has been exec'd (or with the error that kept
    /// it from starting: bad configuration, the kernel refusing the namespaces, or a
    /// failed setup stage inside the child).
    pub async fn spawn(&mut self) -> Result<Container> {
        crate::spawn::spawn(self, Defaults::Spawn).await
    }

    /// Runs the container to completion and returns its exit status. Stdio defaults to
    /// inherit.
    pub async fn status(&mut self) -> Result<ExitStatus> {
        let mut c = crate::spawn::spawn(self, Defaults::Spawn).await?;
        // Like std, drop our ends of any pipes so the workload sees EOF / EPIPE.
        drop(c.take_stdin());
        c.wait().await
    }

    /// Runs the container to completion, collecting stdout and stderr (piped unless set
    /// otherwise; stdin defaults to null).
    pub async fn output(&mut self) -> Result<Output> {
        let c = crate::spawn::spawn(self, Defaults::Output).await?;
        c.wait_with_output().await
    }
}

/// Which stdio defaults apply to unset streams.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Defaults {
    Spawn,
    Output,
}
