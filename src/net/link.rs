//! Netlink (`rtnetlink`): the bridge, veth pairs, addresses and routes.
//!
//! No `ip` subprocess. A connection is made per group of operations rather than kept
//! globally: a netlink connection is a task on the runtime that made it, and a program
//! (a test suite) may run many runtimes one after another. Inside a container's namespace
//! the socket is opened by a dedicated short-lived thread that first entered the namespace
//! (`setns` on a thread of our own, never a tokio thread); the socket stays bound to that
//! namespace, and the thread runs the few requests on a small runtime of its own.

use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

use futures::TryStreamExt;
use rtnetlink::packet_route::link::{InfoData, InfoKind, InfoVeth, LinkAttribute};
use rtnetlink::{Handle, LinkBridge, LinkMessageBuilder, LinkUnspec, RouteMessageBuilder};

use crate::error::{Error, Result};

/// A netlink error as an `Error::Io` with context.
fn nl(context: &'static str) -> impl FnOnce(rtnetlink::Error) -> Error {
    move |e| Error::Io {
        context,
        source: match e {
            rtnetlink::Error::NetlinkError(m) => m
                .code
                .map(|c| std::io::Error::from_raw_os_error(-c.get()))
                .unwrap_or_else(|| std::io::Error::other("netlink error")),
            other => std::io::Error::other(other.to_string()),
        },
    }
}

/// Whether a netlink error is EEXIST.
fn exists(e: &Error) -> bool {
    matches!(e, Error::Io { source, .. } if source.raw_os_error() == Some(libc::EEXIST))
}

/// A connection in the supervisor's own network namespace, its task spawned on the
/// current runtime (it ends when the handle is dropped).
pub(crate) fn host() -> Result<Handle> {
    let (conn, handle, _) =
        rtnetlink::new_connection().map_err(Error::io("opening a netlink socket"))?;
    tokio::spawn(conn);
    Ok(handle)
}

/// The index of the link `name`, if there is one.
pub(crate) async fn index(h: &Handle, name: &str) -> Result<Option<u32>> {
    let mut links = h.link().get().match_name(name.to_string()).execute();
    match links.try_next().await {
        Ok(Some(m)) => Ok(Some(m.header.index)),
        Ok(None) => Ok(None),
        Err(rtnetlink::Error::NetlinkError(m))
            if m.code.map(|c| -c.get()) == Some(libc::ENODEV) =>
        {
            Ok(None)
        }
        Err(e) => Err(nl("looking up a link")(e)),
    }
}

/// Makes sure the bridge `name` exists, is up and holds `gateway/prefix`; returns its
/// index.
pub(crate) async fn ensure_bridge(
    h: &Handle,
    name: &str,
    gateway: Ipv4Addr,
    prefix: u8,
) -> Result<u32> {
    let idx = match index(h, name).await? {
        Some(i) => i,
        None => {
            let r = h
                .link()
                .add(LinkBridge::new(name).up().build())
                .execute()
                .await
                .map_err(nl("creating the bridge"));
            match r {
                Ok(()) => {}
                Err(e) if exists(&e) => {}
                Err(e) => return Err(e),
            }
            index(h, name).await?.ok_or_else(|| Error::Io {
                context: "creating the bridge",
                source: std::io::Error::other("the bridge vanished right after its creation"),
            })?
        }
    };
    h.link()
        .set(LinkUnspec::new_with_index(idx).up().build())
        .execute()
        .await
        .map_err(nl("bringing the bridge up"))?;
    let r = h
        .address()
        .add(idx, IpAddr::V4(gateway), prefix)
        .execute()
        .await
        .map_err(nl("adding the gateway address to the bridge"));
    match r {
        Ok(()) => Ok(idx),
        Err(e) if exists(&e) => Ok(idx),
        Err(e) => Err(e),
    }
}

/// Every IPv4 address of the host, with its prefix and the name of its link.
pub(crate) async fn host_addresses(h: &Handle) -> Result<Vec<(Ipv4Addr, u8, u32)>> {
    use rtnetlink::packet_route::address::AddressAttribute;
    let mut out = Vec::new();
    let mut addrs = h.address().get().execute();
    while let Some(m) = addrs.try_next().await.map_err(nl("listing addresses"))? {
        for a in &m.attributes {
            if let AddressAttribute::Address(IpAddr::V4(v4)) = a {
                out.push((*v4, m.header.prefix_len, m.header.index));
            }
        }
    }
    Ok(out)
}

/// Creates the veth pair `host_name` (on the bridge, up) / `eth0` (straight into the
/// namespace `netns`). A leftover link of the same name (a namespace of a former holder of
/// this address, whose teardown the kernel has not finished) is deleted first.
pub(crate) async fn add_veth(
    h: &Handle,
    host_name: &str,
    bridge: u32,
    netns: BorrowedFd<'_>,
) -> Result<u32> {
    for attempt in 0..2 {
        let peer = LinkMessageBuilder::<LinkUnspec>::new()
            .name("eth0".to_string())
            .setns_by_fd(netns.as_raw_fd())
            .build();
        let msg = LinkMessageBuilder::<rtnetlink::LinkVeth>::new_with_info_kind(InfoKind::Veth)
            .name(host_name.to_string())
            .set_info_data(InfoData::Veth(InfoVeth::Peer(peer)))
            .controller(bridge)
            .up()
            .build();
        match h
            .link()
            .add(msg)
            .execute()
            .await
            .map_err(nl("creating a veth pair"))
        {
            Ok(()) => break,
            Err(e) if exists(&e) && attempt == 0 => delete(h, host_name).await?,
            Err(e) => return Err(e),
        }
    }
    index(h, host_name).await?.ok_or_else(|| Error::Io {
        context: "creating a veth pair",
        source: std::io::Error::other("the host end vanished"),
    })
}

/// Deletes the link `name` if it exists.
pub(crate) async fn delete(h: &Handle, name: &str) -> Result<()> {
    if let Some(i) = index(h, name).await? {
        match h
            .link()
            .del(i)
            .execute()
            .await
            .map_err(nl("deleting a link"))
        {
            Ok(()) => {}
            Err(Error::Io { source, .. }) if source.raw_os_error() == Some(libc::ENODEV) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Names of the links whose name starts with `prefix`.
pub(crate) async fn links_named(h: &Handle, prefix: &str) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let mut links = h.link().get().execute();
    while let Some(m) = links.try_next().await.map_err(nl("listing links"))? {
        for a in &m.attributes {
            if let LinkAttribute::IfName(n) = a {
                if n.starts_with(prefix) {
                    out.push(n.clone());
                }
            }
        }
    }
    Ok(out)
}

/// What to configure inside a namespace.
pub(crate) struct Inside {
    /// `eth0`'s address, prefix and the default route's gateway; `None`: `lo` only.
    pub(crate) eth0: Option<(Ipv4Addr, u8, Ipv4Addr)>,
}

/// Configures the namespace `netns` from inside: `lo` up, and `eth0` with its address and
/// default route. Runs on a dedicated thread that enters the namespace (see the module
/// docs); awaits it without blocking the runtime.
pub(crate) async fn configure_inside(netns: &OwnedFd, what: Inside) -> Result<()> {
    let fd = netns
        .try_clone()
        .map_err(Error::io("duplicating a namespace fd"))?;
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("cellblock-netns".into())
        .spawn(move || {
            let _ = tx.send(inside_thread(fd, what));
        })
        .map_err(Error::io("starting the namespace thread"))?;
    rx.await.map_err(|_| Error::Io {
        context: "configuring a network namespace",
        source: std::io::Error::other("the namespace thread panicked"),
    })?
}

/// The body of [`configure_inside`]'s thread: it enters the namespace for good and exits
/// when done.
fn inside_thread(netns: OwnedFd, what: Inside) -> Result<()> {
    // SAFETY: plain syscall on a descriptor we own; this thread is ours and ends here.
    if unsafe { libc::setns(netns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(Error::Io {
            context: "entering a network namespace (setns)",
            source: std::io::Error::last_os_error(),
        });
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .map_err(Error::io("starting the namespace thread's runtime"))?;
    rt.block_on(async move {
        let h = host()?;
        let lo = index(&h, "lo").await?.unwrap_or(1);
        h.link()
            .set(LinkUnspec::new_with_index(lo).up().build())
            .execute()
            .await
            .map_err(nl("bringing lo up"))?;
        if let Some((addr, prefix, gw)) = what.eth0 {
            let eth0 = index(&h, "eth0").await?.ok_or_else(|| Error::Io {
                context: "configuring eth0",
                source: std::io::Error::other("eth0 is not in the namespace"),
            })?;
            h.address()
                .add(eth0, IpAddr::V4(addr), prefix)
                .execute()
                .await
                .map_err(nl("adding eth0's address"))?;
            h.link()
                .set(LinkUnspec::new_with_index(eth0).up().build())
                .execute()
                .await
                .map_err(nl("bringing eth0 up"))?;
            h.route()
                .add(
                    RouteMessageBuilder::<Ipv4Addr>::new()
                        .gateway(gw)
                        .output_interface(eth0)
                        .build(),
                )
                .execute()
                .await
                .map_err(nl("adding the default route"))?;
        }
        Ok(())
    })
}
