//! The network settings ([`ContainerBuilder::network`], [`ContainerBuilder::publish`]).
//!
//! Plain data; `crate::net` prepares the namespace in the parent before the clone.

use crate::builder::ContainerBuilder;
use crate::net::{Network, Proto, Publish};

impl ContainerBuilder {
    /// The container's network (default [`Network::Unset`]: what
    /// [`namespaces`](Self::namespaces) says, so `Namespaces::NET` still means `lo` only).
    ///
    /// [`Network::Egress`] and [`Network::Pod`] prepare the namespace in the supervisor
    /// before the clone (veth, address, route, NAT rules) and the container joins it: the
    /// workload starts with its network ready. See [`EgressConfig`](crate::EgressConfig)
    /// for what this changes on the host.
    ///
    /// ```no_run
    /// # async fn demo() -> cellblock::Result<()> {
    /// use cellblock::{Container, EgressConfig, Namespaces, Network};
    /// let out = Container::builder("/bin/sh").args(["-c", "ip -4 addr show eth0"])
    ///     .namespaces(Namespaces::PID | Namespaces::MOUNT)
    ///     .network(Network::Egress(EgressConfig::default()))
    ///     .output().await?;
    /// # Ok(()) }
    /// ```
    pub fn network(&mut self, network: Network) -> &mut Self {
        self.network = network;
        self
    }

    /// Publishes the container's `container_port` on the host's `host_port` (every host
    /// address, the loopback included), for [`Network::Egress`] and [`Network::Pod`].
    /// A port of 0, a port published twice, or publishing with another network is
    /// [`Error::BadNetwork`](crate::Error::BadNetwork) at spawn.
    ///
    /// ```no_run
    /// # async fn demo() -> cellblock::Result<()> {
    /// use cellblock::{Container, EgressConfig, Network, Proto};
    /// let c = Container::builder("/usr/bin/python3").args(["-m", "http.server", "8080"])
    ///     .network(Network::Egress(EgressConfig::default()))
    ///     .publish(18080, 8080, Proto::Tcp)
    ///     .spawn().await?;
    /// // curl http://127.0.0.1:18080/ on the host reaches it.
    /// # Ok(()) }
    /// ```
    pub fn publish(&mut self, host_port: u16, container_port: u16, proto: Proto) -> &mut Self {
        self.publish.push(Publish {
            host_port,
            container_port,
            proto,
        });
        self
    }
}
