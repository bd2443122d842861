//! The prepared plan: everything the child needs, validated and allocated in the parent.
//!
//! `prepare` checks the configuration, resolves the program, builds every C string and
//! pointer array, opens every descriptor, and returns a [`Plan`] whose [`ChildSpec`] holds
//! only raw pointers into memory the plan owns. The child (`child/`) then allocates
//! nothing. `Plan::run` performs the clone; it blocks (vfork semantics) and so runs on
//! tokio's blocking pool.

use crate::builder::{ContainerBuilder, Defaults};
use crate::child::{self, ChildSpec};
use crate::error::{Errno, Error, Result, Stage};
use crate::handle::reaper::ChildGuard;
use crate::namespaces;
use crate::protocol::{self, RECORD_LEN};
use crate::sys::{self, Stack};
use crate::{Namespaces, Stdio};
use std::ffi::{CString, OsStr, OsString};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

/// The kernel's HOST_NAME_MAX (and the UTS domain name limit).
const UTS_NAME_MAX: usize = 64;

mod arena;
mod ctx;
pub(crate) mod fs;
pub(crate) mod join;
pub(crate) mod limits;
mod resolve;
pub(crate) mod seccomp;
pub(crate) mod security;
pub(crate) mod session;
pub(crate) mod stdio;
pub(crate) mod time;
pub(crate) mod user;

use arena::CStrArray;
pub(crate) use ctx::Ctx;

/// A spawn, ready to run.
pub(crate) struct Plan {
    /// What the child reads (`ChildSpec`'s storage).
    child: ChildParts,
    /// What the parent uses during and after the clone.
    parent: ParentState,
    /// Init, terminal and die-with-supervisor settings (`session.rs`).
    pub(crate) session: session::SessionPlan,
    /// The cgroup and rlimits (`limits.rs`).
    pub(crate) limits: limits::PreparedLimits,
}

/// The storage the child's [`ChildSpec`] borrows, owned by the plan until the child has
/// exec'd or exited.
struct ChildParts {
    path: CString,
    args: CStrArray,
    env: CStrArray,
    hostname: Option<CString>,
    domainname: Option<CString>,
    cwd: Option<CString>,
    stdio: [libc::c_int; 3],
    err_fd: libc::c_int,
    mount_private: bool,
    mount_proc: bool,
    loopback_up: bool,
    fs: fs::PreparedFs,
    user: user::PreparedUser,
    join: join::PreparedJoin,
    time: time::PreparedTime,
    security: security::PreparedSecurity,
}

/// The parent's side of the clone.
struct ParentState {
    namespaces: Namespaces,
    /// The uid/gid maps we write after the clone, if the child cannot write its own.
    user_maps: Option<user::ParentMaps>,
    join: join::ParentJoin,
    /// Our copies of the child's descriptors; closed once the child has exec'd.
    child_fds: Vec<OwnedFd>,
    err_read: OwnedFd,
    err_write: Option<OwnedFd>,
}

impl ChildParts {
    /// The child's view of the plan. Taken once, by `Plan::run`.
    fn spec<'a>(
        &'a mut self,
        session: &'a session::SessionPlan,
        limits: &'a limits::PreparedLimits,
    ) -> ChildSpec<'a> {
        ChildSpec {
            path: &self.path,
            argv: self.args.list(),
            envp: self.env.list(),
            hostname: self.hostname.as_deref(),
            domainname: self.domainname.as_deref(),
            cwd: self.cwd.as_deref(),
            stdio: self.stdio,
            err_fd: self.err_fd,
            mount_private: self.mount_private,
            mount_proc: self.mount_proc,
            loopback_up: self.loopback_up,
            session: session.spec(),
            join: self.join.spec(),
            user: self.user.spec(),
            time: self.time.spec(),
            fs: self.fs.spec(),
            limits: limits.spec(),
            security: self.security.spec(),
        }
    }
}

/// Our ends of the container's pipes.
pub(crate) struct ParentPipes {
    pub(crate) stdin: Option<OwnedFd>,
    pub(crate) stdout: Option<OwnedFd>,
    pub(crate) stderr: Option<OwnedFd>,
    /// The init's status pipe and the pty master (`session.rs`).
    pub(crate) session: session::ParentSession,
}

/// Validates `b` and prepares a plan. Nothing is started; on error nothing is left open.
pub(crate) fn prepare(b: &ContainerBuilder, defaults: Defaults) -> Result<(Plan, ParentPipes)> {
    validate(b)?;
    let ctx = Ctx::new(b);
    let fs = fs::prepare(&b.fs, &ctx)?;
    let (user, user_maps) = user::prepare(&b.user, &ctx)?;
    let (mut join, parent_join) = join::prepare(&b.join, &ctx)?;
    let time = time::prepare(&b.time, &ctx)?;
    let env = build_env(b)?;
    // With a root filesystem or a joined mount namespace, the program and the working
    // directory are paths inside the container.
    let place = match fs.root_model() {
        Some(model) => resolve::Place::Root(model),
        None if ctx.joined.contains(Namespaces::MOUNT) => resolve::Place::Joined,
        None => resolve::Place::Host,
    };
    let path = resolve::program(&b.program, &env, place)?;
    let cwd = b
        .cwd
        .as_ref()
        .map(|dir| resolve::cwd(dir, place))
        .transpose()?;

    let args: Vec<CString> = std::iter::once(b.arg0.as_ref().unwrap_or(&b.program))
        .chain(b.args.iter())
        .enumerate()
        .map(|(i, a)| {
            cstring(a, || {
                if i == 0 {
                    "the program".into()
                } else {
                    format!("argument {i}")
                }
            })
        })
        .collect::<Result<_>>()?;
    let env: Vec<CString> = env
        .into_iter()
        .map(|(k, v)| {
            // `KEY=value` built once, with room for the NUL: no second copy.
            let mut kv = Vec::with_capacity(k.len() + v.len() + 2);
            kv.extend_from_slice(k.as_bytes());
            kv.push(b'=');
            kv.extend_from_slice(v.as_bytes());
            CString::new(kv).map_err(|e| Error::NulByte {
                what: format!("environment variable {}", k.to_string_lossy()),
                value: String::from_utf8_lossy(&e.into_vec()).into_owned(),
            })
        })
        .collect::<Result<_>>()?;
    let args = CStrArray::new(args);
    let env = CStrArray::new(env);
    let hostname = b
        .hostname
        .as_ref()
        .map(|h| cstring(h, || "the hostname".into()))
        .transpose()?;
    let domainname = b
        .domainname
        .as_ref()
        .map(|h| cstring(h, || "the domain name".into()))
        .transpose()?;
    let path_c = cstring(path.as_os_str(), || "the program path".into())?;

    let (stdin_kind, stdout_kind, stderr_kind) = match defaults {
        Defaults::Spawn => (Stdio::inherit(), Stdio::inherit(), Stdio::inherit()),
        Defaults::Output => (Stdio::null(), Stdio::piped(), Stdio::piped()),
    };
    let open = |s: &Option<Stdio>, default: &Stdio, input: bool| {
        stdio::prepare(s.as_ref().unwrap_or(default), input)
            .map_err(Error::io("opening the container's stdio"))
    };
    let limits = limits::prepare(&b.limits, &ctx)?;
    let stdin = open(&b.stdin, &stdin_kind, true)?;
    let stdout = open(&b.stdout, &stdout_kind, false)?;
    let stderr = match session::merged_stderr(&b.session, &stdout)? {
        Some(merged) => merged,
        None => open(&b.stderr, &stderr_kind, false)?,
    };
    let (err_read, err_write) =
        sys::pipe_cloexec().map_err(Error::io("creating the error pipe"))?;
    // Above every pass_fd target, so the child's dup2s never overwrite the error pipe
    // (and before the session captures its number for the init).
    let err_write = sys::move_above(err_write, ctx.min_setup_fd)
        .map_err(Error::io("creating the error pipe"))?;
    let (session, parent_session) = session::prepare(
        &b.session,
        &ctx,
        &path_c,
        args.strings(),
        (&err_read, err_write.as_raw_fd()),
        fs.devpts(),
    )?;
    let security = security::prepare(&b.security, &ctx)?;

    let raw = |fd: &Option<OwnedFd>| fd.as_ref().map_or(-1, |f| f.as_raw_fd());
    let ns = ctx.namespaces;
    // A cgroup namespace that limits.rs creates after the cgroup join is not unshared
    // with the joins too.
    join.unshare_flags &= !limits.deferred_clone_flags();
    let child = ChildParts {
        stdio: [raw(&stdin.child), raw(&stdout.child), raw(&stderr.child)],
        err_fd: err_write.as_raw_fd(),
        path: path_c,
        args,
        env,
        hostname,
        domainname,
        cwd,
        mount_private: ns.contains(Namespaces::MOUNT),
        mount_proc: ns.contains(Namespaces::MOUNT | Namespaces::PID) && !fs.mounts_proc(),
        loopback_up: ns.contains(Namespaces::NET),
        fs,
        user,
        join,
        time,
        security,
    };
    let child_fds = [stdin.child, stdout.child, stderr.child]
        .into_iter()
        .flatten()
        .collect();
    let plan = Plan {
        child,
        parent: ParentState {
            namespaces: ns,
            user_maps,
            join: parent_join,
            child_fds,
            err_read,
            err_write: Some(err_write),
        },
        session,
        limits,
    };
    Ok((
        plan,
        ParentPipes {
            stdin: stdin.parent,
            stdout: stdout.parent,
            stderr: stderr.parent,
            session: parent_session,
        },
    ))
}

impl Plan {
    /// Clones the child and waits (vfork) until it has exec'd or failed. Blocking.
    pub(crate) fn run(mut self) -> Result<ChildGuard> {
        let stack = Stack::take().map_err(Error::io("allocating the child stack"))?;
        let mut spec = self.child.spec(&self.session, &self.limits);
        let old_mask = sys::block_all_signals();
        let result = self
            .parent
            .clone_and_wait(&mut spec, &self.session, &self.limits, &stack);
        // Only now is the child surely off our stack and memory: it exec'd or exited (in
        // the clone modes without CLONE_VFORK that is what EOF or the report on the error
        // pipe, plus reaping, established). Until then no signal handler may run on this
        // thread either: the child shares this thread's TLS (errno) in CLONE_VM modes.
        sys::restore_signals(&old_mask);
        stack.give_back();
        result
    }
}

impl ParentState {
    fn clone_and_wait(
        &mut self,
        spec: &mut ChildSpec<'_>,
        session: &session::SessionPlan,
        limits: &limits::PreparedLimits,
        stack: &Stack,
    ) -> Result<ChildGuard> {
        use join::CloneMode;
        let mode = if self.join.mode_private_memory {
            CloneMode::PrivateMemory
        } else if self.user_maps.is_some() {
            CloneMode::VmNoVfork
        } else {
            CloneMode::Vfork
        };
        let arg = spec as *mut ChildSpec<'_> as *mut libc::c_void;
        // SAFETY: `child::entry` follows the rules of child/mod.rs; `spec` and the
        // storage it borrows live until after `run` returns, and `run` keeps the stack
        // until the child has exec'd or exited.
        // A cgroup namespace waits until the child has joined its cgroup (limits.rs), so
        // that the namespace's root is the container's own cgroup.
        let ns_flags = self.namespaces.clone_flags()
            & !limits.deferred_clone_flags()
            & !self.join.deferred.clone_flags();
        // A new user namespace is owned by the euid that creates it, and a process with that
        // euid in the parent namespace holds every capability in it, capabilities of its own
        // or not: owned by uid 0, any capability-less uid-0 process (a `host_root()`
        // container without a PID namespace) could ptrace the container's processes, its
        // setup child included, which still shares our memory. So this thread takes the
        // container root's host uid as its effective uid for the clone alone (ruid and suid
        // stay 0, so it can come back; only this thread changes).
        let owner = (ns_flags & libc::CLONE_NEWUSER != 0)
            .then(|| self.user_maps.as_ref().and_then(|m| m.root_host_uid()))
            .flatten()
            .filter(|_| sys::geteuid_thread() == 0);
        // SAFETY: see above.
        let clone = || unsafe { sys::clone_with(child::entry, stack, mode.flags(), ns_flags, arg) };
        let mut cloned = match owner {
            Some(uid) => {
                let _as_owner = sys::ThreadEuid::switch(uid);
                clone()
            }
            None => clone(),
        };
        if owner.is_some() && matches!(&cloned, Err(e) if e.raw_os_error() == Some(libc::EPERM)) {
            // A host that lets only CAP_SYS_ADMIN create user namespaces (a Debian sysctl,
            // AppArmor's restriction): as ourselves.
            cloned = clone();
        }
        let (pid, pidfd) = cloned
            .map_err(|e| user::clone_error(self.namespaces, e.raw_os_error().unwrap_or(0)))?;
        let guard = ChildGuard::new(pid, pidfd);
        if let Some(maps) = self.user_maps.as_mut() {
            if let Err(e) = maps.write_and_release(pid) {
                // The child reads EOF on its release pipe and exits.
                guard.reap_now();
                return Err(e);
            }
        }
        let guard = self.join.adopt_workload(guard)?;

        // The child has exec'd or exited: close our copy of the write end and read the
        // report. EOF means execve succeeded.
        self.err_write = None;
        self.child_fds.clear();
        let mut buf = [0u8; RECORD_LEN];
        let n = sys::read_retry(self.err_read.as_fd(), &mut buf)
            .map_err(Error::io("reading the error pipe"))?;
        if n == 0 {
            if let Err(e) = session.on_eof() {
                guard.reap_now();
                return Err(e);
            }
            return Ok(guard);
        }
        if session.is_started(n, &buf) {
            return Ok(guard);
        }
        // Setup failed; the child has _exit'ed. Reap it now so nothing is left behind.
        guard.reap_now();
        let (stage, errno) = protocol::decode(&buf);
        match (n, Stage::from_u32(stage)) {
            (RECORD_LEN, Some(stage)) => Err(Error::Setup {
                stage,
                errno: Errno(errno),
            }),
            _ => Err(Error::Io {
                context: "reading the error pipe",
                source: std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    "malformed setup report",
                ),
            }),
        }
    }
}

fn validate(b: &ContainerBuilder) -> Result<()> {
    if b.program.is_empty() {
        return Err(Error::EmptyProgram);
    }
    for (what, name) in [("hostname", &b.hostname), ("domainname", &b.domainname)] {
        if let Some(name) = name {
            if !b.namespaces.contains(Namespaces::UTS) {
                return Err(Error::NeedsNamespace {
                    option: what,
                    needs: Namespaces::UTS,
                });
            }
            if name.len() > UTS_NAME_MAX {
                return Err(Error::NameTooLong {
                    what,
                    len: name.len(),
                    max: UTS_NAME_MAX,
                });
            }
        }
    }
    let missing = namespaces::unsupported(b.namespaces);
    if !missing.is_empty() {
        return Err(Error::NamespaceUnsupported {
            namespaces: missing,
        });
    }
    for key in b.env.keys() {
        if key.is_empty() || key.as_bytes().contains(&b'=') {
            return Err(Error::BadEnvName {
                name: key.to_string_lossy().into_owned(),
            });
        }
    }
    Ok(())
}

/// The workload's environment: the base the builder chose (by default only `PATH`, and
/// `TERM` with a pty; the supervisor's own with `env_inherit`; nothing with `env_clear`)
/// with the builder's variables applied over it.
fn build_env(b: &ContainerBuilder) -> Result<Vec<(OsString, OsString)>> {
    use crate::builder::{EnvBase, DEFAULT_PATH};
    let mut env: std::collections::BTreeMap<OsString, OsString> = match b.env_base {
        EnvBase::Empty => Default::default(),
        EnvBase::Inherit => std::env::vars_os().collect(),
        EnvBase::Minimal => {
            let mut m = std::collections::BTreeMap::new();
            m.insert("PATH".into(), DEFAULT_PATH.into());
            if b.session.pty.is_some() {
                // The terminal type: what the user's real terminal is, we cannot know;
                // xterm is what nearly every terminal emulates (Docker's choice for -t).
                m.insert("TERM".into(), "xterm".into());
            }
            m
        }
    };
    for (k, v) in &b.env {
        match v {
            Some(v) => env.insert(k.clone(), v.clone()),
            None => env.remove(k),
        };
    }
    Ok(env.into_iter().collect())
}

fn cstring(s: &OsStr, what: impl FnOnce() -> String) -> Result<CString> {
    CString::new(s.as_bytes()).map_err(|_| Error::NulByte {
        what: what(),
        value: s.to_string_lossy().into_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn builder(program: &str) -> ContainerBuilder {
        ContainerBuilder::new(program)
    }

    /// Each refusal names what was wrong; a plain configuration passes.
    #[test]
    fn validation_names_what_is_wrong() {
        assert!(validate(&builder("/bin/true")).is_ok());
        assert!(matches!(validate(&builder("")), Err(Error::EmptyProgram)));
        let mut b = builder("/bin/true");
        b.hostname("box");
        assert!(matches!(
            validate(&b),
            Err(Error::NeedsNamespace { option: "hostname", needs }) if needs == Namespaces::UTS
        ));
        b.namespaces(Namespaces::UTS);
        assert!(validate(&b).is_ok());
        b.hostname("h".repeat(UTS_NAME_MAX + 1));
        assert!(matches!(
            validate(&b),
            Err(Error::NameTooLong {
                what: "hostname",
                len: 65,
                max: UTS_NAME_MAX
            })
        ));
        b.hostname("h".repeat(UTS_NAME_MAX))
            .domainname("d".repeat(UTS_NAME_MAX + 1));
        assert!(matches!(
            validate(&b),
            Err(Error::NameTooLong {
                what: "domainname",
                ..
            })
        ));
        for bad in ["", "A=B"] {
            let mut b = builder("/bin/true");
            b.env(bad, "v");
            assert!(
                matches!(validate(&b), Err(Error::BadEnvName { ref name }) if name == bad),
                "{bad:?}"
            );
        }
    }

    /// The workload's environment: PATH only by default (TERM too with a pty), nothing
    /// after env_clear, the supervisor's after env_inherit; the builder's variables and
    /// removals apply over each base.
    #[test]
    fn the_environment_starts_from_the_chosen_base() {
        let env = |b: &ContainerBuilder| -> Vec<(String, String)> {
            build_env(b)
                .unwrap()
                .into_iter()
                .map(|(k, v)| (k.into_string().unwrap(), v.into_string().unwrap()))
                .collect()
        };
        let pair = |k: &str, v: &str| (k.to_string(), v.to_string());
        let mut b = builder("/bin/true");
        assert_eq!(env(&b), [pair("PATH", crate::DEFAULT_PATH)]);
        b.env("A", "1").env_remove("PATH");
        assert_eq!(env(&b), [pair("A", "1")]);
        let mut b = builder("/bin/true");
        b.pty();
        assert_eq!(
            env(&b),
            [pair("PATH", crate::DEFAULT_PATH), pair("TERM", "xterm")]
        );
        let mut b = builder("/bin/true");
        b.env_clear().env("X", "y");
        assert_eq!(env(&b), [pair("X", "y")]);
        let mut b = builder("/bin/true");
        b.env_inherit();
        assert_eq!(env(&b).len(), std::env::vars_os().count());
    }
}
