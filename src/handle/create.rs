//! Create, then start: a container set up and stopped just before `execve`
//! ([`ContainerBuilder::create`]), and what becomes of it: started here ([`Created::start`]),
//! or detached for another process to start and manage ([`Created::detach`]).
//!
//! A created child is cloned with a private copy of our memory and without `CLONE_VFORK`
//! (`plan/join.rs`, `CloneMode::Fork`): its setup runs to the gate while we go on, and
//! waiting there, it borrows nothing of ours. Its last steps before the gate are the
//! capability drop and descriptor marking; only `PR_SET_PDEATHSIG` bookkeeping, seccomp
//! and `execve` come after it (`child/mod.rs`).

use std::os::fd::OwnedFd;

use crate::builder::{ContainerBuilder, Defaults};
use crate::error::{Error, Result};
use crate::handle::detached::Detached;
use crate::plan::Gated;
use crate::Container;

/// A container whose namespaces, mounts, cgroup, identity and capabilities are set up,
/// stopped just before `execve` at its start gate. From [`ContainerBuilder::create`].
///
/// Dropping it unstarted kills the child (and reaps it), removes its cgroup and its start
/// FIFO: nothing is left.
#[derive(Debug)]
pub struct Created {
    container: Option<Container>,
    gated: Option<Gated>,
    /// `die_with_supervisor(false)` was set: it may be detached.
    may_outlive: bool,
    /// The gate is a FIFO: another process can start it.
    fifo: Option<std::path::PathBuf>,
}

impl ContainerBuilder {
    /// Sets the container up and returns with it stopped just before `execve`: the
    /// first half of [`spawn`](Self::spawn), as OCI's `create` (the second is
    /// [`Created::start`]). Everything that can fail in the setup fails here, with the
    /// same typed errors as `spawn` (a missing working directory is
    /// [`Error::Setup`] at [`Stage::Chdir`](crate::Stage::Chdir), say); after the start only
    /// `execve` itself, seccomp and die-with-supervisor remain.
    ///
    /// The child is cloned with a private copy of the supervisor's memory (a fork, whose
    /// cost grows with the supervisor's size) rather than `spawn`'s `CLONE_VM` clone, so
    /// that it can wait at its gate while the supervisor goes on. A [`timeout`](Self::timeout)
    /// counts from the create.
    ///
    /// While it waits, the child holds copies of every descriptor the supervisor had open
    /// at the clone (all are closed or marked close-on-exec for its `execve`, so the
    /// workload never sees them): a pipe's write end stays open and an `flock` on a
    /// shared open file stays held until the start. Release locks around `create`, or
    /// take them on descriptors opened close-on-exec after it.
    ///
    /// Joining a PID namespace ([`join`](Self::join) with [`Namespaces::PID`](crate::Namespaces::PID)),
    /// or creating one after joining a user namespace, takes one more fork: `setns` into a
    /// PID namespace only places the caller's future children, so the cloned child joins
    /// and forks the workload as the supervisor's own child (`CLONE_PARENT`), reports its
    /// pid and exits; the workload then waits at the gate (runc's scheme). That second
    /// copy of the supervisor's memory costs as much as the first.
    ///
    /// ```no_run
    /// # async fn demo() -> cellblock::Result<()> {
    /// use cellblock::{Container, Namespaces};
    /// let created = Container::builder("/bin/echo").arg("now")
    ///     .namespaces(Namespaces::PID | Namespaces::MOUNT)
    ///     .create().await?;
    /// // ... the container exists (its pid, namespaces and cgroup can be used) but has not
    /// // run a single instruction of /bin/echo yet ...
    /// let mut c = created.start().await?;
    /// assert!(c.wait().await?.success());
    /// # Ok(()) }
    /// ```
    pub async fn create(&mut self) -> Result<Created> {
        let mut b = self.clone();
        b.session.gated = true;
        let (container, gated) = super::spawn::spawn_gated(&b, Defaults::Spawn).await?;
        Created::new(b, container, gated)
    }

    /// [`create`](Self::create) without the network step (the namespace helpers of
    /// `net/netns.rs`, which the network step itself runs).
    pub(crate) async fn create_without_network(&mut self) -> Result<Created> {
        let mut b = self.clone();
        b.session.gated = true;
        let (container, gated) = super::spawn::spawn_prepared(&b, Defaults::Spawn, None).await?;
        Created::new(b, container, gated)
    }
}

impl Created {
    fn new(b: ContainerBuilder, container: Container, gated: Option<Gated>) -> Result<Created> {
        let gated = gated.ok_or_else(|| Error::Io {
            context: "creating the container",
            source: std::io::Error::other("the child did not stop at its start gate"),
        })?;
        Ok(Created {
            container: Some(container),
            gated: Some(gated),
            may_outlive: b.session.outlive_supervisor,
            fifo: b.session.start_fifo.clone(),
        })
    }
}

impl Created {
    /// The container's pid (in our PID namespace).
    pub fn pid(&self) -> i32 {
        self.container.as_ref().map_or(0, Container::pid)
    }

    /// The running-to-be container's handle, to read its namespaces or pidfd before the
    /// start.
    pub fn container(&self) -> &Container {
        self.container
            .as_ref()
            .expect("present until started or detached")
    }

    /// Takes the pty master (with [`pty`](ContainerBuilder::pty)) as a plain descriptor:
    /// to send over an OCI console socket, say. `None` without a pty or once taken.
    pub fn take_pty_fd(&mut self) -> Option<OwnedFd> {
        self.container.as_mut()?.session.pty.take()
    }

    /// Lets the container through its gate, waits until its program has been exec'd (or
    /// its init reports the workload started), and returns the running container. A
    /// failure of the last steps (`execve` itself, seccomp) comes back here as
    /// [`Error::Setup`], and the child is reaped.
    pub async fn start(mut self) -> Result<Container> {
        let gated = self
            .gated
            .take()
            .expect("present until started or detached");
        let started = tokio::task::spawn_blocking(move || gated.start())
            .await
            .map_err(|e| Error::Io {
                context: "joining the start task",
                source: std::io::Error::other(e),
            })?;
        let mut container = self.container.take().expect("present until started");
        match started {
            Ok(()) => Ok(container),
            Err(e) => {
                // It has exited: reap it (and release its cgroup) before returning.
                let _ = container.wait().await;
                Err(e)
            }
        }
    }

    /// Lets the container outlive us: it is neither killed nor reaped by this process
    /// (its parent, when we exit, becomes our nearest subreaper: containerd's shim,
    /// conmon, or the host's init), its cgroup and start FIFO stay, and the returned
    /// [`Detached`] finds it again, from this process or another: to start, signal, pause
    /// and destroy it.
    ///
    /// Needs [`die_with_supervisor(false)`](ContainerBuilder::die_with_supervisor)
    /// (otherwise the container would die with us) and [`start_fifo`](ContainerBuilder::start_fifo)
    /// (otherwise only this handle could start it): [`Error::BadConfig`] if either is
    /// missing, and the container is then killed as on drop.
    pub fn detach(mut self) -> Result<Detached> {
        let Some(fifo) = self.fifo.clone().filter(|_| self.may_outlive) else {
            return Err(Error::BadConfig(
                "Created::detach needs die_with_supervisor(false) and start_fifo(path)".into(),
            ));
        };
        let container = self
            .container
            .take()
            .expect("present until started or detached");
        if let Some(gated) = self.gated.take() {
            gated.keep_fifo();
        }
        let mut detached = container.detach()?;
        detached.start_fifo = Some(fifo);
        Ok(detached)
    }
}

impl Created {
    /// Takes the block of host ids of its user namespace (see `net/netns.rs`).
    pub(crate) fn take_identity(&mut self) -> Option<crate::idpool::Lease> {
        self.container.as_mut()?.run.take_identity()
    }
}

impl Drop for Created {
    fn drop(&mut self) {
        // Unstarted: kill it (a FIFO gate would otherwise hold it forever); the
        // container's own drop then reaps it and releases its cgroup, and the gate's drop
        // removes the FIFO.
        if let Some(c) = &self.container {
            let _ = c.start_kill();
        }
    }
}
