//! Container networking: the [`Network`] a container gets, and what the supervisor does on
//! the host to give it (issue 15).
//!
//! The shape is the library's usual one, with the host side added: the builder holds plain
//! data ([`Network`], [`publish`](crate::ContainerBuilder::publish)); `net/` prepares a
//! network namespace **in the parent**, before the clone, and the container starts in it:
//! as root it is cloned in it (the cloning thread enters the namespace for the clone
//! alone), rootless it joins it through the existing join machinery (`plan/join.rs`,
//! `child/join.rs`). Either way nothing new runs between clone and execve.
//!
//! * `netns.rs`: making namespaces: as root by a short-lived dedicated thread that
//!   `unshare`s (never a tokio thread); rootless by a *created* container (`create()`,
//!   stopped before its execve) whose user and network namespaces are kept as descriptors
//!   for pasta and the container to join.
//! * `link.rs`: netlink (`rtnetlink`): the bridge, veth pairs (the peer is created straight
//!   into the namespace by descriptor), addresses, routes; inside a namespace through a
//!   netlink socket opened by a dedicated thread that entered it.
//! * `nft.rs`: nftables through the `nftables` crate (JSON, the `nft` binary): a table of
//!   our own per bridge, masquerade, DNAT for published ports, isolation between ports.
//! * `lease.rs`: the address allocator and its lease files (recovered after a SIGKILL).
//! * `bridge.rs`: one bridge's state in this process (shared by every container on it) and
//!   its pool of ready namespaces.
//! * `pasta.rs`: rootless egress.

use std::net::Ipv4Addr;

use crate::error::{Error, Result};

mod bridge;
mod lease;
mod link;
mod lo_pool;
pub(crate) mod netns;
mod nft;
mod pasta;
pub(crate) mod prepare;

pub use bridge::{leftovers, pool_stats, shutdown, Leftovers, PoolStats};
pub use lo_pool::{loopback_pool_stats, set_loopback_pool};

/// The network a container gets ([`ContainerBuilder::network`](crate::ContainerBuilder::network)).
///
/// ```no_run
/// # async fn demo() -> cellblock::Result<()> {
/// use cellblock::{Container, EgressConfig, Namespaces, Network, Proto};
/// // Reaches the outside through NAT; its port 8080 is published on the host's 18080.
/// let c = Container::builder("/usr/bin/python3").args(["-m", "http.server", "8080"])
///     .namespaces(Namespaces::PID | Namespaces::MOUNT)
///     .network(Network::Egress(EgressConfig::default()))
///     .publish(18080, 8080, Proto::Tcp)
///     .spawn().await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Network {
    /// What the builder's [`namespaces`](crate::ContainerBuilder::namespaces) say: with
    /// [`Namespaces::NET`](crate::Namespaces::NET) a namespace with only `lo`, without it
    /// the host's network. The default, so `namespaces(Namespaces::NET)` keeps working.
    #[default]
    Unset,
    /// A network namespace of its own with only `lo`, up: no route anywhere. The same as
    /// `namespaces(.. | Namespaces::NET)`.
    None,
    /// No network namespace: the host's network, every interface and port of it.
    Host,
    /// A namespace with `lo` and `eth0`, a veth whose host end is on the bridge of the
    /// [`EgressConfig`], an address from its subnet and a default route through the bridge;
    /// the host masquerades the container's traffic to wherever the host's routes lead.
    /// Without root, [pasta](EgressConfig#rootless) instead.
    Egress(EgressConfig),
    /// A namespace shared by every container naming the same pod on the same bridge (one
    /// address for them all; they reach each other on `lo`). Made by its first member,
    /// destroyed with its last.
    Pod(String, EgressConfig),
}

/// A published port's protocol ([`publish`](crate::ContainerBuilder::publish)).
///
/// ```
/// use cellblock::{Container, Proto};
/// Container::builder("/bin/true").publish(5353, 53, Proto::Udp);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Proto {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

impl Proto {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }
}

/// One [`publish`](crate::ContainerBuilder::publish).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Publish {
    pub(crate) host_port: u16,
    pub(crate) container_port: u16,
    pub(crate) proto: Proto,
}

/// Where egress containers are attached: a bridge, its subnet, the pool of ready
/// namespaces and whether containers on it are isolated from each other.
///
/// Two supervisors on one host that use different bridges and subnets never touch each
/// other's links, addresses, leases or rules; two that use the *same* bridge and subnet
/// share them safely (leases are files with an owner lock, `lease.rs`).
///
/// ```
/// use std::net::Ipv4Addr;
/// use cellblock::EgressConfig;
/// let cfg = EgressConfig::default()
///     .bridge("jobs0")
///     .subnet(Ipv4Addr::new(192, 168, 240, 0), 22)
///     .pool(8);
/// assert_eq!(cfg.gateway(), Ipv4Addr::new(192, 168, 240, 1));
/// ```
///
/// **What this changes on the host** (as docker and podman do): `net.ipv4.ip_forward` is
/// set to 1, so the host routes packets between all its interfaces, not only for
/// containers (a host that relied on forwarding being off must filter forwarded traffic
/// itself); `route_localnet` is set to 1 on the bridge only (published ports are reachable
/// from the host's `127.0.0.1`, as docker does without its userland proxy); a bridge
/// (default `cellblock0`) and an nftables table `ip cellblock-<bridge>` are created. Both
/// stay while a supervisor uses them; [`shutdown`](crate::net_shutdown) removes them when
/// no other supervisor holds the bridge, and the next supervisor start removes what a
/// killed one left.
///
/// # Rootless
/// Without root (`Namespaces::USER`, an unprivileged supervisor) no bridge can be made:
/// egress then uses **pasta** (Debian package `passt`), attached to the container's
/// namespace before its workload starts; it gives `eth0` the host's address and routes
/// and carries the traffic through ordinary sockets of the supervisor's user. Without the
/// `pasta` binary the spawn fails with [`Error::MissingTool`](crate::Error::MissingTool).
/// Published ports are not offered rootless.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EgressConfig {
    pub(crate) subnet: Ipv4Addr,
    pub(crate) prefix: u8,
    pub(crate) bridge: String,
    pub(crate) pool: usize,
    pub(crate) isolate: bool,
}

impl Default for EgressConfig {
    /// `10.201.0.0/16` on `cellblock0`, no pool, containers isolated.
    fn default() -> EgressConfig {
        EgressConfig {
            subnet: Ipv4Addr::new(10, 201, 0, 0),
            prefix: 16,
            bridge: "cellblock0".into(),
            pool: 0,
            isolate: true,
        }
    }
}

impl EgressConfig {
    /// The subnet containers get addresses from (private: 10/8, 172.16/12 or 192.168/16;
    /// prefix 8..=28). The first address is the bridge's (the gateway).
    pub fn subnet(mut self, network: Ipv4Addr, prefix: u8) -> Self {
        self.subnet = network;
        self.prefix = prefix;
        self
    }

    /// The bridge's name (at most 15 bytes of `[A-Za-z0-9_-]`).
    pub fn bridge(mut self, name: impl Into<String>) -> Self {
        self.bridge = name.into();
        self
    }

    /// Keep `n` namespaces ready (configured, veth and address included), refilled by a
    /// background task: a spawn takes one instead of making one. When demand outruns the
    /// refill, a spawn makes its namespace inline (as with no pool). Used namespaces are
    /// destroyed, never reused. One pool serves every identity (the namespaces belong to
    /// the supervisor); rootless egress (pasta) has no pool.
    pub fn pool(mut self, n: usize) -> Self {
        self.pool = n;
        self
    }

    /// Whether containers on the bridge are kept from reaching each other (default: yes):
    /// every veth is an isolated bridge port (`IFLA_BRPORT_ISOLATED`) and forwarding from
    /// the bridge back to it is dropped. Containers of one [`Network::Pod`] share a
    /// namespace and reach each other on `lo` either way.
    ///
    /// **Risk of `false`:** any container can connect to every port of every other on the
    /// bridge, published or not.
    pub fn isolate(mut self, on: bool) -> Self {
        self.isolate = on;
        self
    }

    /// The bridge's name.
    pub fn bridge_name(&self) -> &str {
        &self.bridge
    }

    /// The gateway: the bridge's address (the subnet's first host).
    pub fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.subnet) + 1)
    }

    /// Checks the settings; [`Error::BadNetwork`] names the field.
    pub(crate) fn validate(&self) -> Result<()> {
        let bad = |field: &'static str, reason: String| Err(Error::BadNetwork { field, reason });
        if !(8..=28).contains(&self.prefix) {
            return bad(
                "subnet",
                format!("prefix /{} is outside 8..=28", self.prefix),
            );
        }
        let net = u32::from(self.subnet);
        if net & !mask(self.prefix) != 0 {
            return bad(
                "subnet",
                format!(
                    "{}/{} has host bits set (the network is {}/{})",
                    self.subnet,
                    self.prefix,
                    Ipv4Addr::from(net & mask(self.prefix)),
                    self.prefix
                ),
            );
        }
        let private = [
            ((10, 0, 0, 0), 8),
            ((172, 16, 0, 0), 12),
            ((192, 168, 0, 0), 16),
        ];
        if !private.iter().any(|&((a, b, c, d), p)| {
            p <= self.prefix && net & mask(p) == u32::from(Ipv4Addr::new(a, b, c, d))
        }) {
            return bad(
                "subnet",
                format!(
                    "{}/{} is not inside a private range (10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16)",
                    self.subnet, self.prefix
                ),
            );
        }
        let name_ok = !self.bridge.is_empty()
            && self.bridge.len() <= 15
            && self
                .bridge
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !name_ok {
            return bad(
                "bridge",
                format!(
                    "{:?} is not 1..=15 bytes of [A-Za-z0-9_-] (an interface name)",
                    self.bridge
                ),
            );
        }
        Ok(())
    }

    /// Whether the two subnets share an address.
    pub(crate) fn overlaps(&self, other: &EgressConfig) -> bool {
        let m = mask(self.prefix.min(other.prefix));
        u32::from(self.subnet) & m == u32::from(other.subnet) & m
    }

    /// Host addresses the allocator hands out: the subnet less network, gateway and
    /// broadcast.
    pub(crate) fn host_range(&self) -> (u32, u32) {
        let net = u32::from(self.subnet);
        let size = 1u32 << (32 - self.prefix);
        (net + 2, net + size - 2)
    }
}

/// The netmask of a prefix length.
pub(crate) fn mask(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - prefix)
    }
}

/// Checks the network settings of one builder (pure; the host-side checks, such as a
/// subnet overlapping another bridge's, are made when the bridge is opened).
pub(crate) fn validate(network: &Network, publish: &[Publish]) -> Result<()> {
    let bad = |field: &'static str, reason: String| Err(Error::BadNetwork { field, reason });
    match network {
        Network::Egress(cfg) => cfg.validate()?,
        Network::Pod(name, cfg) => {
            cfg.validate()?;
            if name.is_empty() || name.contains('/') || name.len() > 64 {
                return bad("pod", format!("{name:?} is not 1..=64 bytes without '/'"));
            }
        }
        Network::Unset | Network::None | Network::Host => {
            if let Some(p) = publish.first() {
                return bad(
                    "publish",
                    format!(
                        "{} port {} is published but the network is {network:?}: only Egress and Pod networks have ports to publish",
                        p.proto.name(),
                        p.host_port
                    ),
                );
            }
        }
    }
    for (i, p) in publish.iter().enumerate() {
        if p.host_port == 0 {
            return bad(
                "publish host_port",
                "port 0 (give a port in 1..=65535)".into(),
            );
        }
        if p.container_port == 0 {
            return bad(
                "publish container_port",
                "port 0 (give a port in 1..=65535)".into(),
            );
        }
        if publish[..i]
            .iter()
            .any(|q| q.host_port == p.host_port && q.proto == p.proto)
        {
            return bad(
                "publish host_port",
                format!("{} port {} is published twice", p.proto.name(), p.host_port),
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(r: Result<()>) -> &'static str {
        match r {
            Err(Error::BadNetwork { field, .. }) => field,
            other => panic!("expected BadNetwork, got {other:?}"),
        }
    }

    #[test]
    fn bad_settings_name_their_field() {
        let p = |h, c| Publish {
            host_port: h,
            container_port: c,
            proto: Proto::Tcp,
        };
        let egress = Network::Egress(EgressConfig::default());
        validate(&egress, &[p(8080, 80)]).unwrap();
        assert_eq!(field(validate(&egress, &[p(0, 80)])), "publish host_port");
        assert_eq!(
            field(validate(&egress, &[p(80, 0)])),
            "publish container_port"
        );
        assert_eq!(
            field(validate(&egress, &[p(80, 1), p(80, 2)])),
            "publish host_port"
        );
        assert_eq!(field(validate(&Network::None, &[p(80, 80)])), "publish");
        assert_eq!(field(validate(&Network::Host, &[p(80, 80)])), "publish");
        let public = EgressConfig::default().subnet(Ipv4Addr::new(8, 8, 0, 0), 16);
        assert_eq!(field(validate(&Network::Egress(public), &[])), "subnet");
        let wide = EgressConfig::default().subnet(Ipv4Addr::new(172, 0, 0, 0), 8);
        assert_eq!(field(validate(&Network::Egress(wide), &[])), "subnet");
        let hostbits = EgressConfig::default().subnet(Ipv4Addr::new(10, 1, 2, 3), 16);
        assert_eq!(field(validate(&Network::Egress(hostbits), &[])), "subnet");
        let name = EgressConfig::default().bridge("a-very-long-bridge-name");
        assert_eq!(field(validate(&Network::Egress(name), &[])), "bridge");
        let pod = Network::Pod("a/b".into(), EgressConfig::default());
        assert_eq!(field(validate(&pod, &[])), "pod");
        let ok = EgressConfig::default().subnet(Ipv4Addr::new(192, 168, 77, 0), 24);
        validate(&Network::Egress(ok), &[]).unwrap();
    }

    #[test]
    fn overlap_and_ranges() {
        let a = EgressConfig::default();
        let b = EgressConfig::default().subnet(Ipv4Addr::new(10, 201, 5, 0), 24);
        let c = EgressConfig::default().subnet(Ipv4Addr::new(10, 202, 0, 0), 16);
        assert!(a.overlaps(&b) && b.overlaps(&a));
        assert!(!a.overlaps(&c));
        assert_eq!(a.gateway(), Ipv4Addr::new(10, 201, 0, 1));
        let (lo, hi) = b.host_range();
        assert_eq!(
            (Ipv4Addr::from(lo), Ipv4Addr::from(hi)),
            (Ipv4Addr::new(10, 201, 5, 2), Ipv4Addr::new(10, 201, 5, 254))
        );
    }
}
