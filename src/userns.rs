//! User namespaces: uid/gid maps, the workload's identity, and rootless operation.
//!
//! ## Who writes the maps
//! The kernel lets a process write a map of its *own* new user namespace only when the map
//! is a single line mapping its own euid (and, for `gid_map`, only after `setgroups` was
//! set to `deny`). Anything else — several ranges, another host id — must be written by a
//! process with `CAP_SETUID`/`CAP_SETGID` in the *parent* user namespace, i.e. by the
//! supervisor. So there are two modes:
//!
//! * **self-map** (the default, and what works unprivileged): the child writes
//!   `setgroups=deny`, `gid_map` and `uid_map` itself (`child/mod.rs`), and the clone keeps
//!   its `CLONE_VM | CLONE_VFORK` fast path.
//! * **supervisor-written maps**: with `CLONE_VFORK` the cloning thread would sleep until
//!   the child execs, and the child cannot tell another thread its pid (inside a new PID
//!   namespace `getpid()` is 1). So for this mode the clone drops `CLONE_VFORK` (keeping
//!   `CLONE_VM`): `clone()` returns the pid and pidfd at once, the cloning thread writes
//!   `/proc/<pid>/uid_map` and `gid_map`, then releases the child through a pipe it blocks
//!   on. The cloning thread then keeps the stack, the plan and its signal mask untouched
//!   until the error pipe reports exec or failure — exactly what vfork's sleep guaranteed
//!   before (EOF on the close-on-exec pipe comes after execve has switched to a new address
//!   space). This costs no page-table copy, so spawn cost still does not grow with the
//!   supervisor's memory. Right after the maps are written the child switches to uid/gid 0
//!   of the new namespace (if the maps cover 0), so that the mount steps run as a mapped
//!   root; the configured `user()` is applied last, before exec. With maps that leave 0
//!   unmapped, creating mount points in a tmpfs (e.g. for `mount_dev`) fails with
//!   EOVERFLOW.

use std::fmt::Write as _;
use std::io::Write as _;
use std::os::fd::{AsRawFd, OwnedFd};

use crate::builder::ContainerBuilder;
use crate::child::ids::IdSpec;
use crate::error::{Errno, Error, Result};
use crate::{sys, Namespaces};

/// The kernel's limit on lines in a uid/gid map (since Linux 4.15).
const MAX_MAP_LINES: usize = 340;

/// One line of a uid or gid map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct IdRange {
    inside: u32,
    outside: u32,
    count: u32,
}

/// User namespace and identity settings (part of [`ContainerBuilder`]).
#[derive(Debug, Clone, Default)]
pub(crate) struct UserConfig {
    uid_maps: Vec<IdRange>,
    gid_maps: Vec<IdRange>,
    /// `uid()`/`user()`, `gid()`/`user()`: each may be set alone.
    uid: Option<u32>,
    gid: Option<u32>,
    groups: Option<Vec<u32>>,
    /// `host_root()`: no user namespace of our choosing; the workload keeps the
    /// supervisor's host identity.
    pub(crate) host_root: bool,
    /// `map_root_to(uid, gid)`.
    map_root_to: Option<(u32, u32)>,
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

/// Maps the supervisor writes for the child, and the pipe that releases it.
pub(crate) struct ParentMaps {
    uid_map: Vec<u8>,
    gid_map: Vec<u8>,
    ready_write: Option<OwnedFd>,
    /// Kept open until the clone (the child reads it).
    _ready_read: OwnedFd,
}

/// The prepared user settings.
pub(crate) struct PreparedUser {
    /// Single-line maps the child writes itself (core's `uid_map`/`gid_map` spec fields).
    pub(crate) self_uid_map: Option<Vec<u8>>,
    pub(crate) self_gid_map: Option<Vec<u8>>,
    pub(crate) parent: Option<ParentMaps>,
    pub(crate) ids: IdSpec,
    _groups: Vec<libc::gid_t>,
}

// SAFETY: `ids.groups` points into `_groups`, owned by the same value.
unsafe impl Send for PreparedUser {}

fn map_text(ranges: &[IdRange]) -> Vec<u8> {
    let mut s = String::new();
    for r in ranges {
        let _ = writeln!(s, "{} {} {}", r.inside, r.outside, r.count);
    }
    s.into_bytes()
}

fn check_ranges(kind: &str, ranges: &[IdRange]) -> Result<()> {
    if ranges.len() > MAX_MAP_LINES {
        return Err(Error::BadConfig(format!(
            "{kind} map has {} lines; the kernel accepts at most {MAX_MAP_LINES}",
            ranges.len()
        )));
    }
    for (i, r) in ranges.iter().enumerate() {
        if r.count == 0
            || r.inside.checked_add(r.count - 1).is_none()
            || r.outside.checked_add(r.count - 1).is_none()
        {
            return Err(Error::BadConfig(format!(
                "{kind} map line {} {} {} is empty or overflows 32 bits",
                r.inside, r.outside, r.count
            )));
        }
        for o in &ranges[..i] {
            let overlap = |a: u32, b: u32| {
                a < b + o.count.min(u32::MAX - b) && b < a + r.count.min(u32::MAX - a)
            };
            if overlap(r.inside, o.inside) || overlap(r.outside, o.outside) {
                return Err(Error::BadConfig(format!(
                    "{kind} map lines {} {} {} and {} {} {} overlap (the kernel refuses that)",
                    o.inside, o.outside, o.count, r.inside, r.outside, r.count
                )));
            }
        }
    }
    Ok(())
}

fn mapped(ranges: &[IdRange], id: u32) -> bool {
    ranges
        .iter()
        .any(|r| id >= r.inside && (id - r.inside) < r.count)
}

/// The effective capability set of the supervisor (from /proc/self/status).
pub(crate) fn effective_caps() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapEff:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .unwrap_or(0)
}

const CAP_SETGID: u64 = 1 << 6;
const CAP_SETUID: u64 = 1 << 7;

/// Whether the supervisor holds both `CAP_SETUID` and `CAP_SETGID`.
///
/// Read once per process (parsing /proc/self/status costs tens of microseconds, and every
/// spawn of the default identity asks): a supervisor that drops these capabilities later
/// gets an `IdMap` error from the kernel instead of a silent change of identity.
fn has_setid_caps() -> bool {
    static CAPS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *CAPS.get_or_init(|| effective_caps() & (CAP_SETUID | CAP_SETGID) == CAP_SETUID | CAP_SETGID)
}

/// `maps`, or when none were given, the single line mapping `own` host id to 0 inside.
fn maps_or_own(maps: &[IdRange], own: u32) -> Vec<IdRange> {
    if maps.is_empty() {
        vec![IdRange {
            inside: 0,
            outside: own,
            count: 1,
        }]
    } else {
        maps.to_vec()
    }
}

impl UserConfig {
    /// Whether `uid()`, `gid()` or `user()` was called.
    fn ids_set(&self) -> bool {
        self.uid.is_some() || self.gid.is_some()
    }

    /// The ids to switch to when either was set, the unset one taken from `default`.
    fn ids_or(&self, default: (u32, u32)) -> Option<(u32, u32)> {
        self.ids_set()
            .then(|| (self.uid.unwrap_or(default.0), self.gid.unwrap_or(default.1)))
    }
}

impl PreparedUser {
    /// Makes the child switch to `uid`/`gid` before exec.
    fn set_user(&mut self, (uid, gid): (u32, u32)) {
        self.ids.set_ids = true;
        self.ids.uid = uid;
        self.ids.gid = gid;
    }
}

/// Whether containers get a pooled block of host ids by default: the supervisor holds
/// `CAP_SETUID` and `CAP_SETGID` (it can write multi-range maps) and the pool's ids exist in
/// its user namespace (not so in a nested supervisor, whose namespace maps only what its
/// own container was given). Asked once per process, like [`has_setid_caps`].
fn pool_usable() -> bool {
    static USABLE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *USABLE.get_or_init(|| {
        let pool = crate::idpool::id_pool();
        let end = pool.first as u64 + pool.blocks as u64 * crate::idpool::ID_BLOCK as u64;
        let covers = |file: &str| {
            std::fs::read_to_string(file).is_ok_and(|text| {
                text.lines().any(|l| {
                    let f: Vec<u64> = l
                        .split_whitespace()
                        .filter_map(|x| x.parse().ok())
                        .collect();
                    f.len() == 3 && f[0] <= pool.first as u64 && end <= f[0] + f[2]
                })
            })
        };
        has_setid_caps() && covers("/proc/self/uid_map") && covers("/proc/self/gid_map")
    })
}

/// The default identity: decides, before anything is prepared, which user namespace a
/// spawn of `b` really gets. Returns `None` when `b` is spawned as configured, or the
/// builder to spawn instead and the block of host ids it holds:
///
/// * [`host_root`](ContainerBuilder::host_root): as configured.
/// * joining namespaces: the joined namespaces' own user namespace is joined too (see
///   `join::join_owner_userns`), so a pod member has its pod's identity.
/// * a privileged supervisor (see [`pool_usable`]): a new user namespace, whose ids
///   `0..65536` are a block of host ids no other live container holds (`idpool.rs`),
///   unless the caller gave maps or [`map_root_to`](ContainerBuilder::map_root_to).
/// * an unprivileged supervisor: a new user namespace mapping its own ids to 0 whenever
///   other namespaces are asked for (they need `CAP_SYS_ADMIN`, which only a user namespace
///   of its own gives it); with no namespace at all, nothing changes.
pub(crate) fn default_identity(
    b: &ContainerBuilder,
) -> Result<Option<(ContainerBuilder, Option<crate::idpool::Lease>)>> {
    let u = &b.user;
    let explicit_maps = !u.uid_maps.is_empty() || !u.gid_maps.is_empty();
    if let Some((uid, gid)) = u.map_root_to {
        if uid == 0 || gid == 0 {
            return Err(Error::BadConfig(format!(
                "map_root_to({uid}, {gid}) would make the container's root host {}; call host_root() to ask for host root by name",
                if uid == 0 { "uid 0" } else { "gid 0" }
            )));
        }
        if explicit_maps {
            return Err(Error::BadConfig(
                "map_root_to() together with uid_map()/gid_map(): give one or the other".into(),
            ));
        }
        if u.host_root {
            return Err(Error::BadConfig(
                "map_root_to() together with host_root(): the workload either keeps the supervisor's ids or gets mapped ones".into(),
            ));
        }
    }
    if u.host_root {
        return Ok(None);
    }
    if crate::join::has_joins(b) {
        // Joining a user namespace chooses the identity; creating one while joining is
        // refused by `join::prepare`, which says why.
        if crate::join::joins_user(b) || b.namespaces.contains(Namespaces::USER) {
            return Ok(None);
        }
        let mut nb = b.clone();
        crate::join::join_owner_userns(&mut nb, has_setid_caps())?;
        return Ok(Some((nb, None)));
    }
    let userns = b.namespaces.contains(Namespaces::USER);
    // The builder is copied only where the spawn really changes (not for an unprivileged
    // supervisor's spawn without namespaces, tokio's case).
    let with_user = |maps: Option<(u32, u32, u32)>| {
        let mut nb = b.clone();
        nb.namespaces |= Namespaces::USER;
        if let Some((uid, gid, count)) = maps {
            nb.uid_map(0, uid, count).gid_map(0, gid, count);
        }
        nb
    };
    if let Some((uid, gid)) = u.map_root_to {
        return Ok(Some((with_user(Some((uid, gid, 1))), None)));
    }
    if !pool_usable() {
        if userns || (b.namespaces.is_empty() && !explicit_maps) {
            return Ok(None);
        }
        return Ok(Some((with_user(None), None)));
    }
    if explicit_maps {
        return Ok(if userns {
            None
        } else {
            Some((with_user(None), None))
        });
    }
    let lease = crate::idpool::lease(b.namespaces.contains(Namespaces::PID))?;
    let first = lease.first();
    Ok(Some((
        with_user(Some((first, first, crate::idpool::ID_BLOCK))),
        Some(lease),
    )))
}

/// Validates the user settings and prepares the maps and the child's identity step.
pub(crate) fn prepare(b: &ContainerBuilder) -> Result<PreparedUser> {
    let u = &b.user;
    let userns = b.namespaces.contains(Namespaces::USER);
    let groups: Vec<libc::gid_t> = u.groups.clone().unwrap_or_default();
    let mut prepared = PreparedUser {
        self_uid_map: None,
        self_gid_map: None,
        parent: None,
        ids: IdSpec::NONE,
        _groups: groups,
    };
    // Read by the child only where `ids.set_groups` is set below.
    prepared.ids.groups = prepared._groups.as_ptr();
    prepared.ids.n_groups = prepared._groups.len();
    if !userns {
        if !u.uid_maps.is_empty() || !u.gid_maps.is_empty() {
            return Err(Error::NeedsNamespace {
                option: "uid_map/gid_map",
                needs: Namespaces::USER,
            });
        }
        if !u.ids_set() && u.groups.is_none() && (u.host_root || !crate::join::joins_user(b)) {
            return Ok(prepared);
        }
        if crate::join::joins_user(b) {
            // Ids of the joined user namespace; we hold every capability in it after
            // setns. Its setgroups may be denied, so only set groups when asked to.
            prepared.ids.set_groups = u.groups.is_some();
            // The joined namespace's root for the mount steps (mount points made in a
            // tmpfs need a mapped owner), unless the caller keeps the host's ids.
            prepared.ids.become_root_if_mapped = !u.host_root;
            // An id left unset is the joined namespace's root (as without either).
            if let Some(user) = u.ids_or((0, 0)) {
                prepared.set_user(user);
            } else if !u.host_root {
                // Without a switch the workload would keep the supervisor's kernel ids
                // (host uid 0: unmapped inside, but still the owner of the host's files).
                // Become the namespace's root, and drop a privileged supervisor's groups
                // (a namespace whose maps the supervisor wrote allows setgroups).
                prepared.set_user((0, 0));
                prepared.ids.set_groups = u.groups.is_some() || has_setid_caps();
            }
            return Ok(prepared);
        }
        // Without a user namespace an unset id stays the supervisor's, as in std.
        let own = (
            nix::unistd::geteuid().as_raw(),
            nix::unistd::getegid().as_raw(),
        );
        if !has_setid_caps() {
            // std's case: switching to the ids one already has needs no privilege (and
            // std, unprivileged, leaves the supplementary groups alone too).
            if u.groups.is_none() && u.ids_or(own) == Some(own) {
                prepared.set_user(own);
                return Ok(prepared);
            }
            return Err(Error::NeedsPrivilege {
                feature: "user()/groups() without a user namespace".into(),
                needs: "CAP_SETUID and CAP_SETGID",
                hint: "run the supervisor as root, or add Namespaces::USER to choose ids inside a user namespace",
            });
        }
        prepared.ids.set_groups = true;
        if let Some(user) = u.ids_or(own) {
            prepared.set_user(user);
        }
        return Ok(prepared);
    }

    let euid = nix::unistd::geteuid().as_raw();
    let egid = nix::unistd::getegid().as_raw();
    let uid_maps = maps_or_own(&u.uid_maps, euid);
    let gid_maps = maps_or_own(&u.gid_maps, egid);
    check_ranges("uid", &uid_maps)?;
    check_ranges("gid", &gid_maps)?;
    let is_self = |m: &[IdRange], own: u32| m.len() == 1 && m[0].count == 1 && m[0].outside == own;
    let self_maps = is_self(&uid_maps, euid) && is_self(&gid_maps, egid);

    let (uid, gid) = u.ids_or((0, 0)).unwrap_or((0, 0));
    if !mapped(&uid_maps, uid) {
        return Err(Error::BadConfig(format!(
            "uid {uid} is not mapped by the uid map{}",
            if u.uid.is_none() {
                " (set uid() or user() to a mapped uid)"
            } else {
                ""
            }
        )));
    }
    if !mapped(&gid_maps, gid) {
        return Err(Error::BadConfig(format!(
            "gid {gid} is not mapped by the gid map{}",
            if u.gid.is_none() {
                " (set gid() or user() to a mapped gid)"
            } else {
                ""
            }
        )));
    }
    if let Some(g) = prepared._groups.iter().find(|g| !mapped(&gid_maps, **g)) {
        return Err(Error::BadConfig(format!(
            "supplementary group {g} is not mapped by the gid map"
        )));
    }

    // Only asked (a read of /proc/self/status) where it decides something: not for the
    // default self-written maps without groups().
    let privileged = (!self_maps || u.groups.is_some()) && has_setid_caps();
    // groups() needs setgroups allowed, which only a supervisor-written gid map allows.
    if self_maps && !(u.groups.is_some() && privileged) {
        if u.groups.is_some() {
            return Err(Error::NeedsPrivilege {
                feature: "groups() with a self-written gid map".into(),
                needs: "CAP_SETGID in the supervisor's user namespace",
                hint: "an unprivileged process may write its own one-line gid_map only after denying setgroups; run as root with a gid_map, or drop groups()",
            });
        }
        prepared.self_uid_map = Some(map_text(&uid_maps));
        prepared.self_gid_map = Some(map_text(&gid_maps));
        if u.ids_set() {
            prepared.set_user((uid, gid));
        }
        return Ok(prepared);
    }

    if !privileged {
        return Err(Error::NeedsPrivilege {
            feature: format!(
                "uid/gid maps other than one line for your own ids (uid map {:?}, gid map {:?})",
                String::from_utf8_lossy(&map_text(&uid_maps)).trim(),
                String::from_utf8_lossy(&map_text(&gid_maps)).trim()
            ),
            needs: "CAP_SETUID and CAP_SETGID in the supervisor's user namespace",
            hint: "run the supervisor as root, or map only your own uid and gid (the default)",
        });
    }
    let (ready_read, ready_write) =
        sys::pipe_cloexec().map_err(Error::io("creating the uid-map pipe"))?;
    prepared.ids.maps_ready_fd = ready_read.as_raw_fd();
    prepared.ids.maps_ready_close_fd = ready_write.as_raw_fd();
    prepared.ids.become_root = mapped(&uid_maps, 0) && mapped(&gid_maps, 0);
    // The child starts with our root's kernel ids, which the new maps need not cover:
    // always switch to the configured (default 0:0) ids, and replace the supervisor's
    // supplementary groups.
    prepared.set_user((uid, gid));
    prepared.ids.set_groups = true;
    prepared.parent = Some(ParentMaps {
        uid_map: map_text(&uid_maps),
        gid_map: map_text(&gid_maps),
        ready_write: Some(ready_write),
        _ready_read: ready_read,
    });
    Ok(prepared)
}

impl ParentMaps {
    /// The host uid that the uid map makes the container's root, if it is not 0: the
    /// owner the new user namespace should have (see `plan.rs`, `owned_by`).
    pub(crate) fn root_host_uid(&self) -> Option<u32> {
        let text = std::str::from_utf8(&self.uid_map).ok()?;
        text.lines().find_map(|l| {
            let f: Vec<u32> = l
                .split_whitespace()
                .filter_map(|x| x.parse().ok())
                .collect();
            (f.len() == 3 && f[0] == 0 && f[2] > 0 && f[1] != 0).then_some(f[1])
        })
    }

    /// Writes the maps of child `pid` and releases it. On error the release pipe is closed
    /// unwritten, so the child exits instead of running with no mapping.
    pub(crate) fn write_and_release(&mut self, pid: libc::pid_t) -> Result<()> {
        let write = |file: &'static str, data: &[u8]| -> Result<()> {
            std::fs::OpenOptions::new()
                .write(true)
                .open(format!("/proc/{pid}/{file}"))
                .and_then(|mut f| f.write_all(data))
                .map_err(|source| Error::IdMap { file, source })
        };
        let result = write("gid_map", &self.gid_map).and_then(|_| write("uid_map", &self.uid_map));
        // Taken either way: closing it unwritten (on error) makes the child exit.
        let ready = self.ready_write.take();
        if let (Ok(()), Some(fd)) = (&result, ready) {
            std::fs::File::from(fd)
                .write_all(b"1")
                .map_err(Error::io("releasing the child after writing its maps"))?;
        }
        result
    }
}

/// Turns a failed clone into the most helpful error: with a new user namespace, EPERM and
/// ENOSPC usually mean user namespaces are disabled or exhausted, and the system settings
/// say which.
pub(crate) fn clone_error(namespaces: Namespaces, errno: i32) -> Error {
    let read = |p: &str| {
        std::fs::read_to_string(p)
            .ok()
            .map(|s| s.trim().to_string())
    };
    if namespaces.contains(Namespaces::USER) {
        let max = read("/proc/sys/user/max_user_namespaces");
        let reason = match errno {
            libc::ENOSPC if max.as_deref() == Some("0") => Some(
                "user.max_user_namespaces is 0 in this user namespace (sysctl user.max_user_namespaces)".to_string(),
            ),
            libc::ENOSPC => Some(format!(
                "the user namespace limit is reached (user.max_user_namespaces = {}, or an ancestor namespace's limit)",
                max.unwrap_or_else(|| "?".into())
            )),
            libc::EPERM => Some(
                if read("/proc/sys/kernel/unprivileged_userns_clone").as_deref() == Some("0") {
                    "kernel.unprivileged_userns_clone is 0 (unprivileged user namespaces are disabled)".to_string()
                } else if read("/proc/sys/kernel/apparmor_restrict_unprivileged_userns").as_deref() == Some("1") {
                    "AppArmor restricts unprivileged user namespaces (kernel.apparmor_restrict_unprivileged_userns = 1)".to_string()
                } else {
                    "the kernel refused CLONE_NEWUSER (EPERM): a security policy (sysctl, AppArmor, SELinux, seccomp) forbids it, or the caller is in a chroot".to_string()
                },
            ),
            libc::EUSERS => Some("user namespaces are nested too deeply (32 levels)".to_string()),
            _ => None,
        };
        if let Some(reason) = reason {
            return Error::UserNamespacesDisabled {
                reason,
                errno: Errno(errno),
            };
        }
    }
    Error::Clone {
        namespaces,
        errno: Errno(errno),
    }
}
