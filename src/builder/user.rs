//! User namespace and identity settings: the uid/gid maps, the workload's ids, and the
//! opt-outs of the default identity ([`host_root`](ContainerBuilder::host_root),
//! [`map_root_to`](ContainerBuilder::map_root_to)).
//!
//! Plain data; `plan/user.rs` validates it, decides the default identity and says who
//! writes the maps.

use crate::builder::ContainerBuilder;
#[cfg(doc)]
use crate::{Error, Namespaces};

/// One line of a uid or gid map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct IdRange {
    pub(crate) inside: u32,
    pub(crate) outside: u32,
    pub(crate) count: u32,
}

/// User namespace and identity settings (part of [`ContainerBuilder`]).
#[derive(Debug, Clone, Default)]
pub(crate) struct UserConfig {
    pub(crate) uid_maps: Vec<IdRange>,
    pub(crate) gid_maps: Vec<IdRange>,
    /// `uid()`/`user()`, `gid()`/`user()`: each may be set alone.
    pub(crate) uid: Option<u32>,
    pub(crate) gid: Option<u32>,
    pub(crate) groups: Option<Vec<u32>>,
    /// `host_root()`: no user namespace of our choosing; the workload keeps the
    /// supervisor's host identity.
    pub(crate) host_root: bool,
    /// `map_root_to(uid, gid)`.
    pub(crate) map_root_to: Option<(u32, u32)>,
}

/// User namespace and identity settings.
///
/// With [`Namespaces::USER`] and no map, the supervisor's euid and egid become 0 inside: a
/// map the kernel lets even an unprivileged process write, so containers work rootless.
/// Several ranges (or another host id) need `CAP_SETUID`/`CAP_SETGID`, i.e. root; without
/// them [`spawn`](ContainerBuilder::spawn) fails with [`Error::NeedsPrivilege`] before
/// anything runs.
///
/// ```no_run
/// # async fn demo() -> cellblock::Result<()> {
/// use cellblock::{Container, Namespaces};
/// // As root: 65536 ids starting at host id 100000, the workload runs as 1000:1000.
/// let out = Container::builder("/usr/bin/id")
///     .namespaces(Namespaces::USER | Namespaces::MOUNT)
///     .uid_map(0, 100_000, 65_536)
///     .gid_map(0, 100_000, 65_536)
///     .user(1000, 1000)
///     .groups([1000, 27])
///     .output()
///     .await?;
/// assert!(String::from_utf8_lossy(&out.stdout).starts_with("uid=1000"));
/// # Ok(()) }
/// ```
impl ContainerBuilder {
    /// Adds a line to the uid map: ids `inside..inside+count` in the container are host ids
    /// `outside..outside+count`. Repeatable; needs [`Namespaces::USER`].
    pub fn uid_map(&mut self, inside: u32, outside: u32, count: u32) -> &mut Self {
        self.user.uid_maps.push(IdRange {
            inside,
            outside,
            count,
        });
        self
    }

    /// Adds a line to the gid map (see [`uid_map`](Self::uid_map)).
    pub fn gid_map(&mut self, inside: u32, outside: u32, count: u32) -> &mut Self {
        self.user.gid_maps.push(IdRange {
            inside,
            outside,
            count,
        });
        self
    }

    /// The workload's uid and gid (inside the user namespace if there is one). Set with
    /// raw `setresgid`/`setresuid` right before exec; supplementary groups are replaced by
    /// [`groups`](Self::groups) (empty by default) where the kernel allows `setgroups`.
    ///
    /// The same as [`uid(uid)`](Self::uid) and [`gid(gid)`](Self::gid) together.
    pub fn user(&mut self, uid: u32, gid: u32) -> &mut Self {
        self.uid(uid).gid(gid)
    }

    /// The workload's uid alone, like `tokio::process::Command::uid` (std's
    /// `CommandExt::uid`); the gid is then what it would be without this call: 0 inside a
    /// user namespace (the container's root, the default identity), the supervisor's egid
    /// without one. Inside a user namespace the uid must be mapped.
    ///
    /// ```no_run
    /// # async fn demo() -> cellblock::Result<()> {
    /// use cellblock::{Container, Namespaces};
    /// let out = Container::builder("/usr/bin/id").args(["-u"])
    ///     .namespaces(Namespaces::USER).uid(0).output().await?;
    /// assert_eq!(out.stdout, b"0\n");
    /// # Ok(()) }
    /// ```
    pub fn uid(&mut self, uid: u32) -> &mut Self {
        self.user.uid = Some(uid);
        self
    }

    /// The workload's gid alone, like `tokio::process::Command::gid`; the uid is then what
    /// it would be without this call (see [`uid`](Self::uid)).
    pub fn gid(&mut self, gid: u32) -> &mut Self {
        self.user.gid = Some(gid);
        self
    }

    /// Opt out of the default identity: the workload keeps the supervisor's host ids (host
    /// uid 0 under a root supervisor), with no user namespace added for it. With
    /// [`Namespaces::USER`] and no map, the map is then the supervisor's own ids (`0 0 1`
    /// under root).
    ///
    /// **Risk:** capabilities are still dropped, but uid 0 keeps what it *owns*: root-owned
    /// device nodes in a visible `/dev` (block devices, `/dev/kmsg`, `/dev/userfaultfd`),
    /// sysfs attributes and sysctls (`/proc/sys/kernel/core_pattern` runs a program as host
    /// root), cgroupfs (a workload can move itself out of its limits), `connect()` to 0600
    /// root Unix sockets such as `docker.sock`, and 0600 files such as `/etc/shadow`. The
    /// mount-side defences (a fresh `/dev`, read-only `/sys`) then stand alone, and only
    /// with a mount namespace.
    pub fn host_root(&mut self) -> &mut Self {
        self.user.host_root = true;
        self
    }

    /// Maps the container's root (uid and gid 0) to one host uid and gid, and nothing else:
    /// files the workload writes through a bind mount then belong to `uid:gid` on the host,
    /// and it may write what `uid` may write. Adds [`Namespaces::USER`]. The workload's other
    /// ids are unmapped: files of other owners show as `nobody` (65534) inside.
    ///
    /// Refuses host uid or gid 0 (that is [`host_root`](Self::host_root), named for its
    /// risk). Under an unprivileged supervisor only its own ids can be mapped.
    pub fn map_root_to(&mut self, uid: u32, gid: u32) -> &mut Self {
        self.user.map_root_to = Some((uid, gid));
        self
    }

    /// The workload's supplementary groups. In a user namespace this needs a gid map
    /// written by a privileged supervisor: with a self-written map the kernel requires
    /// `setgroups` to be denied.
    pub fn groups<I: IntoIterator<Item = u32>>(&mut self, groups: I) -> &mut Self {
        self.user.groups = Some(groups.into_iter().collect());
        self
    }
}

impl UserConfig {
    /// Whether `uid()`, `gid()` or `user()` was called.
    pub(crate) fn ids_set(&self) -> bool {
        self.uid.is_some() || self.gid.is_some()
    }

    /// The ids to switch to when either was set, the unset one taken from `default`.
    pub(crate) fn ids_or(&self, default: (u32, u32)) -> Option<(u32, u32)> {
        self.ids_set()
            .then(|| (self.uid.unwrap_or(default.0), self.gid.unwrap_or(default.1)))
    }
}
