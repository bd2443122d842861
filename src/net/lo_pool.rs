//! A pool of ready `Network::None` namespaces (only `lo`, up), for supervisors running as
//! root ([`set_loopback_pool`](crate::set_loopback_pool)).
//!
//! The namespaces are made like egress ones (a dedicated thread `unshare`s, `netns.rs`),
//! `lo` is brought up from inside (`link.rs`), and a spawn takes one and is cloned in it
//! (`sys::ThreadNetns`). An empty pool is not waited for: the spawn creates its namespace
//! at clone as without a pool (`CLONE_NEWNET`, cheaper than making one outside).

use std::collections::VecDeque;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

use super::PoolStats;

static SIZE: AtomicUsize = AtomicUsize::new(0);
static READY: Mutex<VecDeque<OwnedFd>> = Mutex::new(VecDeque::new());
static REFILLING: AtomicBool = AtomicBool::new(false);
static HITS: AtomicU64 = AtomicU64::new(0);
static MISSES: AtomicU64 = AtomicU64::new(0);
static MADE: AtomicU64 = AtomicU64::new(0);

/// Keeps `n` ready `Network::None` namespaces (only `lo`, up) for this process's spawns,
/// refilled by a background task on the runtime of the spawn that takes one; `0` (the
/// default) turns the pool off and destroys the ready ones. Only as root (otherwise the
/// spawns create their namespace at clone, as without a pool). A used namespace is
/// destroyed, never reused.
///
/// A pooled namespace belongs to the supervisor's user namespace, not the container's, so
/// the workload cannot reconfigure it whatever capabilities it keeps (with the pool off, a
/// workload that keeps `CAP_NET_ADMIN` may change its own `lo`).
///
/// ```no_run
/// # async fn demo() -> cellblock::Result<()> {
/// use cellblock::{Container, Network};
/// cellblock::set_loopback_pool(16);
/// Container::builder("/bin/true").network(Network::None).status().await?;
/// # Ok(()) }
/// ```
pub fn set_loopback_pool(n: usize) {
    SIZE.store(n, Ordering::SeqCst);
    if n == 0 {
        READY.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}

/// The counters of the [`set_loopback_pool`] pool.
pub fn loopback_pool_stats() -> PoolStats {
    PoolStats {
        hits: HITS.load(Ordering::Relaxed),
        misses: MISSES.load(Ordering::Relaxed),
        made: MADE.load(Ordering::Relaxed),
        ready: READY.lock().unwrap_or_else(|e| e.into_inner()).len(),
    }
}

/// A ready namespace, if the pool is on and has one (and starts the refill).
pub(crate) fn take() -> Option<OwnedFd> {
    if SIZE.load(Ordering::SeqCst) == 0 || !super::netns::host_owned() {
        return None;
    }
    let taken = READY.lock().unwrap_or_else(|e| e.into_inner()).pop_front();
    refill();
    match taken {
        Some(fd) => {
            HITS.fetch_add(1, Ordering::Relaxed);
            Some(fd)
        }
        None => {
            MISSES.fetch_add(1, Ordering::Relaxed);
            None
        }
    }
}

fn refill() {
    if REFILLING.swap(true, Ordering::SeqCst) {
        return;
    }
    /// Clears the flag however the task ends (done, or dropped with its runtime).
    struct Running;
    impl Drop for Running {
        fn drop(&mut self) {
            REFILLING.store(false, Ordering::SeqCst);
        }
    }
    tokio::spawn(async move {
        let _running = Running;
        // Off the taking spawn's critical path (see `bridge.rs`).
        tokio::time::sleep(std::time::Duration::from_millis(3)).await;
        loop {
            if READY.lock().unwrap_or_else(|e| e.into_inner()).len() >= SIZE.load(Ordering::SeqCst)
            {
                break;
            }
            let made = async {
                let (ns, _) =
                    super::netns::make_keeping_helper(&crate::ContainerBuilder::new("/bin/true"))
                        .await?;
                super::link::configure_inside(&ns.net, super::link::Inside { eth0: None }).await?;
                Ok::<_, crate::Error>(ns.net)
            }
            .await;
            match made {
                Ok(fd) => {
                    MADE.fetch_add(1, Ordering::Relaxed);
                    READY
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push_back(fd);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "refilling the loopback pool failed");
                    break;
                }
            }
        }
    });
}
