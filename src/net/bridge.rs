//! One bridge's state in this process: its leases, its host setup, and its pool of ready
//! namespaces. Shared by every container on the bridge (a process-wide registry keyed by
//! the bridge's name).

use std::collections::{HashMap, VecDeque};
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::lease::{self, Leases};
use super::netns::{self, Netns};
use super::{link, nft, EgressConfig};
use crate::builder::ContainerBuilder;
use crate::error::{Error, Result};

/// A namespace with its veth and address configured, ready for one container.
#[derive(Debug)]
pub(crate) struct Ready {
    pub(crate) ns: Netns,
    pub(crate) addr: Ipv4Addr,
}

/// A bridge in use by this process.
#[derive(Debug)]
pub(crate) struct Bridge {
    pub(crate) cfg: EgressConfig,
    pub(crate) leases: Leases,
    index: u32,
    /// Ready namespaces (slot 0; slot 1 is unused while every identity shares slot 0).
    pool: Mutex<[VecDeque<Ready>; 2]>,
    refilling: Mutex<[bool; 2]>,
    hits: AtomicU64,
    misses: AtomicU64,
    made: AtomicU64,
    /// Releases under way (a thread removing a container's rules).
    releasing: AtomicU64,
    /// `shutdown` was called: the refill stops and gives back what it makes.
    closed: std::sync::atomic::AtomicBool,
}

type Registry = HashMap<String, Arc<Bridge>>;

/// How long the refill waits after a namespace was taken (see `Bridge::refill`).
const REFILL_DELAY: std::time::Duration = std::time::Duration::from_millis(3);

fn registry() -> &'static tokio::sync::Mutex<Registry> {
    static R: std::sync::OnceLock<tokio::sync::Mutex<Registry>> = std::sync::OnceLock::new();
    R.get_or_init(|| tokio::sync::Mutex::new(HashMap::new()))
}

/// The bridge of `cfg`, set up on first use in this process (and swept of what killed
/// supervisors left).
pub(crate) async fn get(cfg: &EgressConfig) -> Result<Arc<Bridge>> {
    let mut reg = registry().lock().await;
    if let Some(b) = reg.get(&cfg.bridge) {
        if b.cfg.subnet != cfg.subnet || b.cfg.prefix != cfg.prefix {
            return Err(Error::BadNetwork {
                field: "subnet",
                reason: format!(
                    "bridge {} is already in use with {}/{}, not {}/{}",
                    cfg.bridge, b.cfg.subnet, b.cfg.prefix, cfg.subnet, cfg.prefix
                ),
            });
        }
        return Ok(b.clone());
    }
    if let Some(other) = reg.values().find(|b| b.cfg.overlaps(cfg)) {
        return Err(Error::BadNetwork {
            field: "subnet",
            reason: format!(
                "{}/{} overlaps {}/{} of bridge {}",
                cfg.subnet, cfg.prefix, other.cfg.subnet, other.cfg.prefix, other.cfg.bridge
            ),
        });
    }
    let b = Arc::new(open(cfg).await?);
    reg.insert(cfg.bridge.clone(), b.clone());
    Ok(b)
}

/// Sets the host up for `cfg` and sweeps stale leases.
async fn open(cfg: &EgressConfig) -> Result<Bridge> {
    if nix::unistd::geteuid().as_raw() != 0 {
        return Err(Error::NeedsPrivilege {
            feature: "Network::Egress with a bridge".into(),
            needs: "root (CAP_NET_ADMIN on the host)",
            hint: "without root, egress uses pasta: give the container Namespaces::USER",
        });
    }
    let leases = Leases::open(&cfg.bridge, cfg.host_range())?;
    let _setup = lease::lock(&leases.dir.join("setup.lock"))?;
    let h = link::host()?;
    sweep(&h, &cfg.bridge, &leases).await?;
    // A host address inside the subnet on another link: the subnets would collide.
    let bridge_idx = link::index(&h, &cfg.bridge).await?;
    for (a, p, idx) in link::host_addresses(&h).await? {
        let other =
            EgressConfig::default().subnet(Ipv4Addr::from(u32::from(a) & super::mask(p)), p);
        if Some(idx) != bridge_idx && other.overlaps(cfg) && p > 0 {
            return Err(Error::BadNetwork {
                field: "subnet",
                reason: format!(
                    "{}/{} overlaps the host's address {a}/{p} on another interface",
                    cfg.subnet, cfg.prefix
                ),
            });
        }
    }
    std::fs::write("/proc/sys/net/ipv4/ip_forward", "1")
        .map_err(Error::io("turning on net.ipv4.ip_forward"))?;
    let index = link::ensure_bridge(&h, &cfg.bridge, cfg.gateway(), cfg.prefix).await?;
    std::fs::write(
        format!("/proc/sys/net/ipv4/conf/{}/route_localnet", cfg.bridge),
        "1",
    )
    .map_err(Error::io("setting route_localnet on the bridge"))?;
    let c = cfg.clone();
    blocking(move || nft::ensure_table(&c)).await?;
    Ok(Bridge {
        cfg: cfg.clone(),
        leases,
        index,
        pool: Mutex::new([VecDeque::new(), VecDeque::new()]),
        refilling: Mutex::new([false, false]),
        hits: AtomicU64::new(0),
        misses: AtomicU64::new(0),
        made: AtomicU64::new(0),
        releasing: AtomicU64::new(0),
        closed: std::sync::atomic::AtomicBool::new(false),
    })
}

/// Removes what supervisors that died left on the bridge: their veths (normally gone with
/// their namespaces), nftables rules and lease files.
async fn sweep(h: &rtnetlink::Handle, bridge: &str, leases: &Leases) -> Result<()> {
    let stale = leases.stale();
    if stale.is_empty() {
        leases.finish_sweep(&stale);
        return Ok(());
    }
    for s in &stale {
        link::delete(h, &lease::veth_name(s.addr)).await?;
    }
    let addrs: Vec<Ipv4Addr> = stale.iter().map(|s| s.addr).collect();
    let br = bridge.to_string();
    blocking(move || nft::unpublish(&br, &addrs)).await?;
    tracing::info!(bridge, count = stale.len(), "removed stale network leases");
    leases.finish_sweep(&stale);
    Ok(())
}

/// Runs `f` on the blocking pool (the `nft` binary).
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Io {
            context: "joining a blocking network task",
            source: std::io::Error::other(e),
        })?
}

/// Which pool a builder's namespaces come from: as root every namespace is the
/// supervisor's, whatever the container's identity (`netns.rs`), so one pool serves all.
fn pool_slot(_b: &ContainerBuilder) -> Option<usize> {
    Some(0)
}

impl Bridge {
    /// A ready namespace for a container of `b`: from the pool if one is there, else made
    /// now.
    pub(crate) async fn ready(self: &Arc<Self>, b: &ContainerBuilder) -> Result<Ready> {
        if self.cfg.pool > 0 {
            if let Some(slot) = pool_slot(b) {
                let taken = self.pool.lock().unwrap_or_else(|e| e.into_inner())[slot].pop_front();
                self.refill(slot, b.user.host_root);
                if let Some(r) = taken {
                    self.hits.fetch_add(1, Ordering::Relaxed);
                    return Ok(r);
                }
                self.misses.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.make(b).await
    }

    /// Makes a ready namespace: the namespace, an address, the veth (peer straight into
    /// the namespace), and the inside configuration.
    pub(crate) async fn make(&self, b: &ContainerBuilder) -> Result<Ready> {
        let ns = netns::make(b).await?;
        let addr = self.leases.claim()?;
        match self.attach(&ns, addr).await {
            Ok(()) => {
                self.made.fetch_add(1, Ordering::Relaxed);
                Ok(Ready { ns, addr })
            }
            Err(e) => {
                if let Ok(h) = link::host() {
                    let _ = link::delete(&h, &lease::veth_name(addr)).await;
                }
                self.leases.release(addr);
                Err(e)
            }
        }
    }

    async fn attach(&self, ns: &Netns, addr: Ipv4Addr) -> Result<()> {
        use std::os::fd::AsFd;
        let h = link::host()?;
        let name = lease::veth_name(addr);
        link::add_veth(&h, &name, self.index, ns.net.as_fd()).await?;
        if self.cfg.isolate {
            std::fs::write(format!("/sys/class/net/{name}/brport/isolated"), "1")
                .map_err(Error::io("isolating the bridge port"))?;
        }
        link::configure_inside(
            &ns.net,
            link::Inside {
                eth0: Some((addr, self.cfg.prefix, self.cfg.gateway())),
            },
        )
        .await
    }

    /// Starts the refill task for `slot` unless it runs (on the current runtime).
    fn refill(self: &Arc<Self>, slot: usize, host_root: bool) {
        {
            let mut r = self.refilling.lock().unwrap_or_else(|e| e.into_inner());
            if r[slot] {
                return;
            }
            r[slot] = true;
        }
        let me = self.clone();
        /// Clears the flag however the task ends: done, or dropped with its runtime.
        struct Running(Arc<Bridge>, usize);
        impl Drop for Running {
            fn drop(&mut self) {
                self.0.refilling.lock().unwrap_or_else(|e| e.into_inner())[self.1] = false;
            }
        }
        tokio::spawn(async move {
            let _running = Running(me.clone(), slot);
            // Start after the spawn that took a namespace has cloned (a few ms): making one
            // costs CPU (the kernel's namespace setup, netlink), which would otherwise
            // compete with that spawn's own critical path on a small machine.
            tokio::time::sleep(REFILL_DELAY).await;
            let mut proto = ContainerBuilder::new("/bin/true");
            if host_root {
                proto.host_root();
            }
            loop {
                let len = me.pool.lock().unwrap_or_else(|e| e.into_inner())[slot].len();
                if len >= me.cfg.pool || me.closed.load(Ordering::SeqCst) {
                    break;
                }
                match me.make(&proto).await {
                    Ok(r) if me.closed.load(Ordering::SeqCst) => {
                        me.leases.release(r.addr);
                        break;
                    }
                    Ok(r) => me.pool.lock().unwrap_or_else(|e| e.into_inner())[slot].push_back(r),
                    Err(e) => {
                        tracing::warn!(error = %e, "refilling the network pool failed");
                        break;
                    }
                }
            }
        });
    }

    /// Gives back what a container held: its published rules, then its address.
    pub(crate) fn release(self: &Arc<Self>, addr: Ipv4Addr, published: bool) {
        if !published {
            self.leases.release(addr);
            return;
        }
        let me = self.clone();
        self.releasing.fetch_add(1, Ordering::SeqCst);
        // Not on a runtime necessarily (a container dropped anywhere): a thread of its own.
        let spawned = std::thread::Builder::new()
            .name("cellblock-unpublish".into())
            .spawn(move || {
                if let Err(e) = nft::unpublish(&me.cfg.bridge, &[addr]) {
                    tracing::warn!(error = %e, %addr, "removing published ports failed");
                }
                me.leases.release(addr);
                me.releasing.fetch_sub(1, Ordering::SeqCst);
            });
        if spawned.is_err() {
            // Left to the next start's sweep (the lease stays ours until we exit).
            self.releasing.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// Counters of a bridge's pool of ready namespaces.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Spawns that took a ready namespace.
    pub hits: u64,
    /// Spawns that found the pool empty and made theirs inline.
    pub misses: u64,
    /// Namespaces made (by the pool and inline).
    pub made: u64,
    /// Namespaces ready now.
    pub ready: usize,
}

/// The pool counters of the bridge `bridge` in this process (zero if it is not in use).
///
/// ```no_run
/// # async fn demo() -> cellblock::Result<()> {
/// use cellblock::{Container, EgressConfig, Network};
/// let net = Network::Egress(EgressConfig::default().pool(16));
/// Container::builder("/bin/true").network(net).status().await?;
/// let stats = cellblock::pool_stats("cellblock0").await;
/// println!("{} from the pool, {} made inline", stats.hits, stats.misses);
/// # Ok(()) }
/// ```
pub async fn pool_stats(bridge: &str) -> PoolStats {
    let reg = registry().lock().await;
    reg.get(bridge).map_or(PoolStats::default(), |b| {
        let pool = b.pool.lock().unwrap_or_else(|e| e.into_inner());
        PoolStats {
            hits: b.hits.load(Ordering::Relaxed),
            misses: b.misses.load(Ordering::Relaxed),
            made: b.made.load(Ordering::Relaxed),
            ready: pool[0].len() + pool[1].len(),
        }
    })
}

/// Stops using the bridge `bridge` in this process: its ready namespaces are destroyed,
/// and when no other live supervisor uses the bridge and no container of ours holds an
/// address on it, the bridge and our nftables table are removed. Containers still running
/// keep their network until they end; call this after them.
///
/// ```no_run
/// # async fn demo() -> cellblock::Result<()> {
/// // ... every egress container has ended ...
/// cellblock::net_shutdown("cellblock0").await?;
/// # Ok(()) }
/// ```
pub async fn shutdown(bridge: &str) -> Result<()> {
    let b = registry().lock().await.remove(bridge);
    let Some(b) = b else {
        return Ok(());
    };
    // Let the refill task and the releases under way finish (bounded).
    b.closed.store(true, Ordering::SeqCst);
    for _ in 0..200 {
        let refilling = b
            .refilling
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .any(|r| *r);
        if !refilling && b.releasing.load(Ordering::SeqCst) == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let ready: Vec<Ready> = {
        let mut pool = b.pool.lock().unwrap_or_else(|e| e.into_inner());
        pool.iter_mut().flat_map(|q| q.drain(..)).collect()
    };
    for r in ready {
        b.leases.release(r.addr);
    }
    let _setup = lease::lock(&b.leases.dir.join("setup.lock"))?;
    if b.leases.others_alive() || b.leases.count() > 0 {
        return Ok(());
    }
    let br = bridge.to_string();
    blocking(move || nft::delete_table(&br)).await?;
    let h = link::host()?;
    link::delete(&h, bridge).await
}

/// What is left of cellblock's networking for one [`EgressConfig`] on the host: for leak
/// checks and tests ([`net_leftovers`](crate::net_leftovers)).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Leftovers {
    /// Host ends of veths whose address is in the subnet (`cb` + the address in hex).
    pub veths: Vec<String>,
    /// Lease files under `/run/cellblock/net/<bridge>/lease`.
    pub leases: usize,
    /// Per-container nftables rules (their comments: `cellblock <address>`).
    pub rules: Vec<String>,
    /// Whether the table `ip cellblock-<bridge>` exists.
    pub table: bool,
    /// Whether the bridge exists.
    pub bridge: bool,
}

/// What is left on the host for `cfg` (see [`Leftovers`]).
///
/// ```no_run
/// # async fn demo() -> cellblock::Result<()> {
/// use cellblock::EgressConfig;
/// cellblock::net_shutdown("cellblock0").await?;
/// let left = cellblock::net_leftovers(&EgressConfig::default()).await?;
/// assert!(left.veths.is_empty() && left.rules.is_empty() && !left.table);
/// # Ok(()) }
/// ```
pub async fn leftovers(cfg: &EgressConfig) -> Result<Leftovers> {
    let h = link::host()?;
    let (lo, hi) = cfg.host_range();
    let veths = link::links_named(&h, "cb")
        .await?
        .into_iter()
        .filter(|n| {
            n.len() == 10 && u32::from_str_radix(&n[2..], 16).is_ok_and(|a| (lo..=hi).contains(&a))
        })
        .collect();
    let leases = std::fs::read_dir(
        std::path::Path::new(lease::RUN_DIR)
            .join(&cfg.bridge)
            .join("lease"),
    )
    .map(|d| d.count())
    .unwrap_or(0);
    let br = cfg.bridge.clone();
    let (rules, table) =
        blocking(move || Ok((nft::marked_rules(&br)?, nft::table_exists(&br)?))).await?;
    let bridge = link::index(&h, &cfg.bridge).await?.is_some();
    Ok(Leftovers {
        veths,
        leases,
        rules,
        table,
        bridge,
    })
}
