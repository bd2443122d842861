//! The spawn path's network step: turns the builder's [`Network`] into namespaces the
//! container joins (a builder with joins added) and what the container holds until it is
//! reaped ([`Attached`]).

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex, Weak};

use super::bridge::{self, Bridge, Ready};
use super::netns::{self, Netns};
use super::{nft, pasta, Network};
use crate::builder::join::{Join, Source};
use crate::builder::ContainerBuilder;
use crate::error::{Error, Result};
use crate::Namespaces;

/// What a container holds of its network until it has been reaped: its namespace's
/// descriptors, its address lease and published rules, its pod, its pasta.
#[derive(Debug, Default)]
pub(crate) struct Attached {
    _own: Option<Holding>,
    _pod: Option<Arc<Pod>>,
}

/// One namespace and what comes with it.
#[derive(Debug)]
struct Holding {
    ns: Netns,
    lease: Option<(Arc<Bridge>, Ipv4Addr)>,
    published: bool,
    _pasta: Option<pasta::Pasta>,
}

impl Drop for Holding {
    fn drop(&mut self) {
        if let Some((b, addr)) = self.lease.take() {
            b.release(addr, self.published);
        }
    }
}

impl Attached {
    /// Keeps everything on the host (a detached container): the next supervisor start
    /// sweeps the lease and rules once this process is gone.
    pub(crate) fn forget(self) {
        std::mem::forget(self);
    }
}

/// A pod's shared namespace, alive while a member is.
#[derive(Debug)]
struct Pod {
    holding: Mutex<Holding>,
    addr: Ipv4Addr,
}

/// Live pods by (bridge, name).
type Pods = Mutex<HashMap<(String, String), Weak<Pod>>>;

fn pods() -> &'static Pods {
    static P: std::sync::OnceLock<Pods> = std::sync::OnceLock::new();
    P.get_or_init(|| Mutex::new(HashMap::new()))
}

/// The builder to spawn instead of `b` and what the container holds, or `None` when the
/// network needs nothing (the default, `Host`).
pub(crate) async fn prepare(b: &ContainerBuilder) -> Result<Option<(ContainerBuilder, Attached)>> {
    super::validate(&b.network, &b.publish)?;
    if !matches!(b.network, Network::Unset | Network::Host)
        && b.join.kinds().contains(Namespaces::NET)
    {
        return Err(Error::BadNetwork {
            field: "network",
            reason: format!(
                "{:?} together with a joined NET namespace (join/join_path): give one or the other",
                b.network
            ),
        });
    }
    match &b.network {
        Network::Unset => Ok(None),
        Network::Host => {
            if b.namespaces.contains(Namespaces::NET) {
                return Err(Error::BadNetwork {
                    field: "network",
                    reason: "Network::Host together with Namespaces::NET".into(),
                });
            }
            Ok(None)
        }
        Network::None => {
            let mut nb = b.clone();
            nb.network = Network::Unset;
            match super::lo_pool::take() {
                // A ready namespace (`lo_pool.rs`): cloned in it.
                Some(fd) => {
                    nb.namespaces.remove(Namespaces::NET);
                    nb.clone_in_netns = Some(Arc::new(fd));
                }
                None => nb.namespaces |= Namespaces::NET,
            }
            Ok(Some((nb, Attached::default())))
        }
        Network::Egress(cfg) => {
            if nix::unistd::geteuid().as_raw() != 0 {
                let (ns, helper) = netns::make_keeping_helper(b).await?;
                let publish = b.publish.clone();
                let helper_pid = helper.as_ref().map_or(0, |h| h.pid());
                let (ns, p) = bridge::blocking(move || {
                    let p = pasta::attach(&ns, helper_pid, &publish)?;
                    Ok((ns, p))
                })
                .await?;
                drop(helper);
                let nb = joining(b, &ns)?;
                let holding = Holding {
                    ns,
                    lease: None,
                    published: false,
                    _pasta: Some(p),
                };
                return Ok(Some((
                    nb,
                    Attached {
                        _own: Some(holding),
                        _pod: None,
                    },
                )));
            }
            let br = bridge::get(cfg).await?;
            let Ready { ns, addr } = br.ready(b).await?;
            let mut holding = Holding {
                ns,
                lease: Some((br.clone(), addr)),
                published: false,
                _pasta: None,
            };
            publish(&br, addr, b, &mut holding).await?;
            let nb = joining(b, &holding.ns)?;
            Ok(Some((
                nb,
                Attached {
                    _own: Some(holding),
                    _pod: None,
                },
            )))
        }
        Network::Pod(name, cfg) => {
            let br = bridge::get(cfg).await?;
            let key = (cfg.bridge.clone(), name.clone());
            let existing = pods()
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(&key)
                .and_then(Weak::upgrade);
            let pod = match existing {
                Some(p) => p,
                None => {
                    // The pod's namespace belongs to its first member's identity.
                    let Ready { ns, addr } = br.make(b).await?;
                    let p = Arc::new(Pod {
                        holding: Mutex::new(Holding {
                            ns,
                            lease: Some((br.clone(), addr)),
                            published: false,
                            _pasta: None,
                        }),
                        addr,
                    });
                    pods()
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(key, Arc::downgrade(&p));
                    p
                }
            };
            if !b.publish.is_empty() {
                let (bridge, addr, ports) = (cfg.bridge.clone(), pod.addr, b.publish.clone());
                bridge::blocking(move || nft::publish(&bridge, addr, &ports)).await?;
                pod.holding
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .published = true;
            }
            let nb = {
                let h = pod.holding.lock().unwrap_or_else(|e| e.into_inner());
                joining(b, &h.ns)?
            };
            Ok(Some((
                nb,
                Attached {
                    _own: None,
                    _pod: Some(pod),
                },
            )))
        }
    }
}

async fn publish(
    br: &Arc<Bridge>,
    addr: Ipv4Addr,
    b: &ContainerBuilder,
    holding: &mut Holding,
) -> Result<()> {
    if b.publish.is_empty() {
        return Ok(());
    }
    let (bridge, ports) = (br.cfg.bridge.clone(), b.publish.clone());
    // Marked first: a failure half-way still removes whatever was added.
    holding.published = true;
    bridge::blocking(move || nft::publish(&bridge, addr, &ports)).await
}

/// `b`, started in `ns` instead of creating its network namespace: cloned in it (a
/// namespace the supervisor made), or joining it and the user namespace that owns it
/// (rootless). For a join the id maps were realized by that user namespace; the
/// workload's ids inside (`uid`, `gid`, `groups`) stay.
fn joining(b: &ContainerBuilder, ns: &Netns) -> Result<ContainerBuilder> {
    let mut nb = b.clone();
    nb.network = Network::Unset;
    nb.publish.clear();
    nb.namespaces.remove(Namespaces::NET);
    let dup = |fd: &std::os::fd::OwnedFd| {
        fd.try_clone()
            .map(Arc::new)
            .map_err(Error::io("duplicating a namespace fd"))
    };
    if ns.user.is_none() {
        // Made by the supervisor (root): the child is cloned in it (`netns.rs`).
        nb.clone_in_netns = Some(dup(&ns.net)?);
        return Ok(nb);
    }
    if let Some(user) = ns.user.as_ref() {
        let user = dup(user)?;
        nb.namespaces.remove(Namespaces::USER);
        nb.user.uid_maps.clear();
        nb.user.gid_maps.clear();
        nb.user.map_root_to = None;
        nb.join.joins.push(Join {
            namespaces: Namespaces::USER,
            source: Source::Fd(user),
        });
    }
    nb.join.joins.push(Join {
        namespaces: Namespaces::NET,
        source: Source::Fd(dup(&ns.net)?),
    });
    Ok(nb)
}
