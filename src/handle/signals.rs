//! Forwarding the supervisor's signals to containers.
//!
//! A [`SignalForwarder`] subscribes to host signals once, with signal-hook-tokio (the
//! handler only writes to a pipe; a task on the runtime reads it), and fans each signal
//! out through channels to whoever asked for it: a container (delivered through its
//! pidfd, so never to a recycled pid) or any task ([`SignalForwarder::subscribe`]).

use std::collections::HashMap;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use tokio::sync::mpsc;

use crate::error::{Error, Result};
use crate::{sys, Container, Signal};

type Subscribers = Arc<Mutex<HashMap<u64, (Vec<Signal>, mpsc::Sender<Signal>)>>>;

/// Receives host signals and forwards them to the containers (and tasks) that asked.
///
/// Create one per supervisor (within a tokio runtime) for the signals it wants to pass
/// on. From then on those signals no longer have their default effect on the supervisor
/// itself (SIGTERM no longer terminates it): the supervisor decides. signal-hook keeps
/// its handler installed for the life of the process, so this stays true after the
/// forwarder is dropped (the signals are then simply not delivered anywhere).
///
/// ```no_run
/// # async fn demo() -> cellblock::Result<()> {
/// use cellblock::{Container, Namespaces, Signal, SignalForwarder};
/// let fwd = SignalForwarder::new(&[Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP])?;
/// let mut c = Container::builder("/bin/sleep").arg("100").namespaces(Namespaces::PID).spawn().await?;
/// let _forwarding = fwd.forward_to(&c, &[Signal::SIGTERM, Signal::SIGINT])?;
/// c.wait().await?; // ends when a forwarded SIGTERM stops it
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct SignalForwarder {
    signals: Vec<Signal>,
    subscribers: Subscribers,
    next_id: std::sync::atomic::AtomicU64,
    handle: signal_hook_tokio::Handle,
    task: tokio::task::JoinHandle<()>,
}

/// The signals a typical supervisor forwards: SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1,
/// SIGUSR2, SIGWINCH.
pub const FORWARDED_SIGNALS: [Signal; 7] = [
    Signal::SIGTERM,
    Signal::SIGINT,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGWINCH,
];

impl SignalForwarder {
    /// Subscribes to `signals` on the host (e.g. [`FORWARDED_SIGNALS`]). Signals that
    /// cannot be caught (SIGKILL, SIGSTOP) or that the runtime relies on are refused with
    /// an error.
    pub fn new(signals: &[Signal]) -> Result<SignalForwarder> {
        let raw: Vec<i32> = signals.iter().map(|s| *s as i32).collect();
        let stream = signal_hook_tokio::Signals::new(&raw)
            .map_err(Error::io("subscribing to host signals"))?;
        let handle = stream.handle();
        let subscribers: Subscribers = Arc::default();
        let subs = subscribers.clone();
        let task = tokio::spawn(async move {
            let mut stream = stream;
            while let Some(raw) = stream.next().await {
                let Ok(sig) = Signal::try_from(raw) else {
                    continue;
                };
                let targets: Vec<mpsc::Sender<Signal>> = subs
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .values()
                    .filter(|(set, _)| set.contains(&sig))
                    .map(|(_, tx)| tx.clone())
                    .collect();
                for tx in targets {
                    // A full channel means a subscriber far behind: dropping one more
                    // copy of a signal is what the kernel does too (signals coalesce).
                    let _ = tx.try_send(sig);
                }
            }
        });
        Ok(SignalForwarder {
            signals: signals.to_vec(),
            subscribers,
            next_id: Default::default(),
            handle,
            task,
        })
    }

    /// The signals this forwarder listens to.
    pub fn signals(&self) -> &[Signal] {
        &self.signals
    }

    /// A channel that receives every host signal in `signals` (those this forwarder
    /// listens to) from now on, until the receiver is dropped.
    pub fn subscribe(&self, signals: &[Signal]) -> mpsc::Receiver<Signal> {
        let (tx, rx) = mpsc::channel(64);
        self.add(signals, tx);
        rx
    }

    fn add(&self, signals: &[Signal], tx: mpsc::Sender<Signal>) -> u64 {
        let id = self
            .next_id
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut subs = self.subscribers.lock().unwrap_or_else(|e| e.into_inner());
        // Forget receivers that were dropped.
        subs.retain(|_, (_, tx)| !tx.is_closed());
        subs.insert(id, (signals.to_vec(), tx));
        id
    }

    /// Forwards every host signal in `signals` to `container` (to its first process: the
    /// init, which passes it on to the workload) until the container exits or the
    /// returned [`Forwarding`] is dropped.
    pub fn forward_to(&self, container: &Container, signals: &[Signal]) -> Result<Forwarding> {
        let pidfd: OwnedFd = container
            .pidfd()
            .ok_or(Error::AlreadyReaped)?
            .try_clone_to_owned()
            .map_err(Error::io("duplicating the pidfd"))?;
        let exited = sys::register_pidfd(pidfd)
            .map_err(|e| Error::io("registering the pidfd")(e.into_parts().1))?;
        let (tx, mut rx) = mpsc::channel(64);
        let id = self.add(signals, tx);
        let subs = self.subscribers.clone();
        let task = tokio::spawn(async move {
            loop {
                tokio::select! {
                    sig = rx.recv() => match sig {
                        // Through the pidfd: safe even once the container was reaped
                        // (ESRCH, never somebody else's process).
                        Some(sig) => { let _ = sys::pidfd_send_signal(exited.get_ref().as_fd(), sig as i32); }
                        None => break,
                    },
                    // The pidfd becomes readable when the container exits.
                    _ = exited.readable() => break,
                }
            }
            subs.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
        });
        Ok(Forwarding { task })
    }
}

impl Drop for SignalForwarder {
    fn drop(&mut self) {
        // Unregisters the handlers' delivery and ends the fan-out task; subscribers see
        // their channels close.
        self.handle.close();
        self.task.abort();
    }
}

/// Forwarding of host signals to one container; stops when dropped or when the container
/// exits.
#[derive(Debug)]
pub struct Forwarding {
    task: tokio::task::JoinHandle<()>,
}

impl Forwarding {
    /// Whether forwarding has ended (the container exited).
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }
}

impl Drop for Forwarding {
    fn drop(&mut self) {
        self.task.abort();
    }
}
