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
//!   `setgroups=deny`, `gid_map` and `uid_map` itself (`child/user.rs`), and the clone keeps
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

use std::os::fd::{AsRawFd, OwnedFd};

use libc::{c_int, gid_t};

use crate::builder::user::{IdRange, UserConfig};
use crate::child::user::{OwnMaps, UserSpec};
use crate::error::{Errno, Error, Result};
use crate::plan::Ctx;
use crate::{sys, Namespaces};

mod identity;
mod maps;

pub(crate) use identity::{default_identity, pool_usable};
pub(crate) use maps::ParentMaps;
use maps::{check_ranges, map_text, mapped, maps_or_own};

/// The prepared user settings: what the child reads ([`UserSpec`]).
pub(crate) struct PreparedUser {
    /// Single-line maps of the caller's own ids (uid map, gid map), which the child
    /// writes itself.
    own_maps: Option<(Vec<u8>, Vec<u8>)>,
    /// Maps the supervisor writes after the clone (uid map, gid map); `prepare` moves
    /// them into [`ParentMaps`].
    supervisor_maps: Option<(Vec<u8>, Vec<u8>)>,
    become_root: bool,
    become_root_if_mapped: bool,
    set_groups: bool,
    groups: Vec<gid_t>,
    /// `(uid, gid)` to switch to before exec.
    ids: Option<(u32, u32)>,
    /// The child's end of the pipe that releases it once the maps are written; kept open
    /// until the clone.
    maps_ready: Option<OwnedFd>,
    /// The number of the pipe's write end (the child closes its copy).
    maps_ready_close_fd: c_int,
}

impl PreparedUser {
    /// The child's view.
    pub(crate) fn spec(&self) -> UserSpec<'_> {
        let (set_ids, (uid, gid)) = match self.ids {
            Some(ids) => (true, ids),
            None => (false, (0, 0)),
        };
        UserSpec {
            own_maps: self
                .own_maps
                .as_ref()
                .map(|(uid_map, gid_map)| OwnMaps { uid_map, gid_map }),
            maps_ready_fd: self.maps_ready.as_ref().map_or(-1, |fd| fd.as_raw_fd()),
            maps_ready_close_fd: self.maps_ready_close_fd,
            become_root: self.become_root,
            become_root_if_mapped: self.become_root_if_mapped,
            set_groups: self.set_groups,
            groups: &self.groups,
            set_ids,
            uid,
            gid,
        }
    }
}

/// Validates the user settings and prepares the maps and the child's identity step; with
/// maps the supervisor writes, also what it writes them with.
pub(crate) fn prepare(cfg: &UserConfig, ctx: &Ctx) -> Result<(PreparedUser, Option<ParentMaps>)> {
    let mut prepared = plan(cfg, ctx)?;
    let Some((uid_map, gid_map)) = prepared.supervisor_maps.take() else {
        return Ok((prepared, None));
    };
    let (ready_read, ready_write) =
        sys::pipe_cloexec().map_err(Error::io("creating the uid-map pipe"))?;
    prepared.maps_ready_close_fd = ready_write.as_raw_fd();
    prepared.maps_ready = Some(ready_read);
    let parent = ParentMaps {
        uid_map,
        gid_map,
        ready_write: Some(ready_write),
    };
    Ok((prepared, Some(parent)))
}

/// The pure part of [`prepare`]: the checks, the maps and the identity steps.
fn plan(u: &UserConfig, ctx: &Ctx) -> Result<PreparedUser> {
    let userns = ctx.namespaces.contains(Namespaces::USER);
    let joins_user = ctx.joined.contains(Namespaces::USER);
    let mut prepared = PreparedUser {
        own_maps: None,
        supervisor_maps: None,
        become_root: false,
        become_root_if_mapped: false,
        set_groups: false,
        // Read by the child only where `set_groups` is set below.
        groups: u.groups.clone().unwrap_or_default(),
        ids: None,
        maps_ready: None,
        maps_ready_close_fd: -1,
    };
    if !userns {
        if !u.uid_maps.is_empty() || !u.gid_maps.is_empty() {
            return Err(Error::NeedsNamespace {
                option: "uid_map/gid_map",
                needs: Namespaces::USER,
            });
        }
        if !u.ids_set() && u.groups.is_none() && (u.host_root || !joins_user) {
            return Ok(prepared);
        }
        if joins_user {
            // Ids of the joined user namespace; we hold every capability in it after
            // setns. Its setgroups may be denied, so only set groups when asked to.
            prepared.set_groups = u.groups.is_some();
            // The joined namespace's root for the mount steps (mount points made in a
            // tmpfs need a mapped owner), unless the caller keeps the host's ids.
            prepared.become_root_if_mapped = !u.host_root;
            // An id left unset is the joined namespace's root (as without either).
            if let Some(user) = u.ids_or((0, 0)) {
                prepared.ids = Some(user);
            } else if !u.host_root {
                // Without a switch the workload would keep the supervisor's kernel ids
                // (host uid 0: unmapped inside, but still the owner of the host's files).
                // Become the namespace's root, and drop a privileged supervisor's groups
                // (a namespace whose maps the supervisor wrote allows setgroups).
                prepared.ids = Some((0, 0));
                prepared.set_groups = u.groups.is_some() || ctx.setid_caps.get();
            }
            return Ok(prepared);
        }
        // Without a user namespace an unset id stays the supervisor's, as in std.
        let own = (ctx.euid, ctx.egid);
        if !ctx.setid_caps.get() {
            // std's case: switching to the ids one already has needs no privilege (and
            // std, unprivileged, leaves the supplementary groups alone too).
            if u.groups.is_none() && u.ids_or(own) == Some(own) {
                prepared.ids = Some(own);
                return Ok(prepared);
            }
            return Err(Error::NeedsPrivilege {
                feature: "user()/groups() without a user namespace".into(),
                needs: "CAP_SETUID and CAP_SETGID",
                hint: "run the supervisor as root, or add Namespaces::USER to choose ids inside a user namespace",
            });
        }
        prepared.set_groups = true;
        prepared.ids = u.ids_or(own);
        return Ok(prepared);
    }

    let (euid, egid) = (ctx.euid, ctx.egid);
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
    if let Some(g) = prepared.groups.iter().find(|g| !mapped(&gid_maps, **g)) {
        return Err(Error::BadConfig(format!(
            "supplementary group {g} is not mapped by the gid map"
        )));
    }

    // Only asked (a read of /proc/self/status) where it decides something: not for the
    // default self-written maps without groups().
    let privileged = (!self_maps || u.groups.is_some()) && ctx.setid_caps.get();
    // groups() needs setgroups allowed, which only a supervisor-written gid map allows.
    if self_maps && !(u.groups.is_some() && privileged) {
        if u.groups.is_some() {
            return Err(Error::NeedsPrivilege {
                feature: "groups() with a self-written gid map".into(),
                needs: "CAP_SETGID in the supervisor's user namespace",
                hint: "an unprivileged process may write its own one-line gid_map only after denying setgroups; run as root with a gid_map, or drop groups()",
            });
        }
        prepared.own_maps = Some((map_text(&uid_maps), map_text(&gid_maps)));
        if u.ids_set() {
            prepared.ids = Some((uid, gid));
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
    prepared.become_root = mapped(&uid_maps, 0) && mapped(&gid_maps, 0);
    // The child starts with our root's kernel ids, which the new maps need not cover:
    // always switch to the configured (default 0:0) ids, and replace the supervisor's
    // supplementary groups.
    prepared.ids = Some((uid, gid));
    prepared.set_groups = true;
    prepared.supervisor_maps = Some((map_text(&uid_maps), map_text(&gid_maps)));
    Ok(prepared)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builder::ContainerBuilder;
    use crate::plan::ctx::HostFact;

    fn ctx(ns: Namespaces, setid_caps: bool) -> Ctx {
        let mut ctx = Ctx::for_test(ns);
        ctx.setid_caps = HostFact::known(setid_caps);
        ctx
    }

    fn builder() -> ContainerBuilder {
        ContainerBuilder::new("/bin/true")
    }

    /// A uid map and a gid map, as text.
    type MapTexts<'a> = Option<(&'a str, &'a str)>;

    /// The ids the child switches to, its own maps, and the supervisor's maps.
    fn summary(p: &PreparedUser) -> (Option<(u32, u32)>, MapTexts<'_>, MapTexts<'_>) {
        fn text(m: &Option<(Vec<u8>, Vec<u8>)>) -> Option<(&str, &str)> {
            m.as_ref().map(|(u, g)| {
                (
                    std::str::from_utf8(u).unwrap(),
                    std::str::from_utf8(g).unwrap(),
                )
            })
        }
        (p.ids, text(&p.own_maps), text(&p.supervisor_maps))
    }

    #[test]
    fn nothing_asked_nothing_done() {
        let p = plan(&builder().user, &ctx(Namespaces::PID, true)).unwrap();
        assert_eq!(summary(&p), (None, None, None));
        assert!(!p.set_groups && !p.become_root && !p.become_root_if_mapped);
        let spec = p.spec();
        assert!(!spec.set_ids && !spec.set_groups && spec.own_maps.is_none());
        assert_eq!(spec.maps_ready_fd, -1);
    }

    #[test]
    fn the_default_user_namespace_maps_our_own_ids_and_the_child_writes_them() {
        let p = plan(&builder().user, &ctx(Namespaces::USER, false)).unwrap();
        assert_eq!(
            summary(&p),
            (None, Some(("0 1000 1\n", "0 1000 1\n")), None)
        );
        let spec = p.spec();
        let maps = spec.own_maps.as_ref().unwrap();
        assert_eq!(
            (maps.uid_map, maps.gid_map),
            (&b"0 1000 1\n"[..], &b"0 1000 1\n"[..])
        );
        // uid() alone: the gid is the namespace's root.
        let p = plan(&builder().uid(0).user, &ctx(Namespaces::USER, false)).unwrap();
        assert_eq!(p.ids, Some((0, 0)));
    }

    #[test]
    fn ids_inside_must_be_mapped() {
        let e = plan(&builder().uid(5).user, &ctx(Namespaces::USER, false)).err();
        assert!(
            matches!(&e, Some(Error::BadConfig(m)) if m == "uid 5 is not mapped by the uid map"),
            "{e:?}"
        );
        let e = plan(
            &builder().uid_map(1, 1000, 1).gid_map(0, 1000, 1).user,
            &ctx(Namespaces::USER, true),
        )
        .err();
        assert!(
            matches!(&e, Some(Error::BadConfig(m)) if m.contains("uid 0 is not mapped") && m.contains("set uid() or user()")),
            "{e:?}"
        );
        let e = plan(&builder().groups([7]).user, &ctx(Namespaces::USER, true)).err();
        assert!(
            matches!(&e, Some(Error::BadConfig(m)) if m.contains("supplementary group 7 is not mapped")),
            "{e:?}"
        );
    }

    #[test]
    fn other_maps_need_privilege() {
        let mut b = builder();
        b.uid_map(0, 100_000, 65_536).gid_map(0, 100_000, 65_536);
        let e = plan(&b.user, &ctx(Namespaces::USER, false)).err();
        assert!(
            matches!(&e, Some(Error::NeedsPrivilege { feature, .. }) if feature.contains("\"0 100000 65536\"")),
            "{e:?}"
        );
        // groups() with our own one-line maps: setgroups must be denied for those.
        let mut b = builder();
        b.groups([0]);
        let e = plan(&b.user, &ctx(Namespaces::USER, false)).err();
        assert!(
            matches!(&e, Some(Error::NeedsPrivilege { feature, .. }) if feature.contains("groups()")),
            "{e:?}"
        );
    }

    #[test]
    fn a_privileged_supervisor_writes_the_maps_and_the_child_becomes_root_first() {
        let mut b = builder();
        b.uid_map(0, 100_000, 65_536)
            .gid_map(0, 100_000, 65_536)
            .user(1000, 1000)
            .groups([1000, 27]);
        let p = plan(&b.user, &ctx(Namespaces::USER, true)).unwrap();
        assert_eq!(
            summary(&p),
            (
                Some((1000, 1000)),
                None,
                Some(("0 100000 65536\n", "0 100000 65536\n"))
            )
        );
        assert!(p.become_root && p.set_groups);
        assert_eq!(p.spec().groups, [1000, 27]);
        // A map that leaves 0 unmapped: no root step.
        let mut b = builder();
        b.uid_map(1, 100_000, 10).gid_map(1, 100_000, 10).user(1, 1);
        let p = plan(&b.user, &ctx(Namespaces::USER, true)).unwrap();
        assert!(!p.become_root);
        // groups() with our own one-line maps, privileged: written by the supervisor too.
        let mut b = builder();
        b.groups([0]);
        let p = plan(&b.user, &ctx(Namespaces::USER, true)).unwrap();
        assert_eq!(
            p.supervisor_maps.as_ref().map(|m| &m.0[..]),
            Some(&b"0 1000 1\n"[..])
        );
    }

    #[test]
    fn without_a_user_namespace_ids_are_std_s() {
        // Maps need the namespace.
        let e = plan(
            &builder().uid_map(0, 0, 1).user,
            &ctx(Namespaces::PID, true),
        )
        .err();
        assert!(
            matches!(
                e,
                Some(Error::NeedsNamespace {
                    needs: Namespaces::USER,
                    ..
                })
            ),
            "{e:?}"
        );
        // Unprivileged: only our own ids, as std allows.
        let p = plan(&builder().uid(1000).user, &ctx(Namespaces::PID, false)).unwrap();
        assert_eq!(p.ids, Some((1000, 1000)));
        assert!(!p.set_groups);
        let e = plan(&builder().uid(0).user, &ctx(Namespaces::PID, false)).err();
        assert!(matches!(e, Some(Error::NeedsPrivilege { .. })), "{e:?}");
        let e = plan(&builder().groups([1000]).user, &ctx(Namespaces::PID, false)).err();
        assert!(matches!(e, Some(Error::NeedsPrivilege { .. })), "{e:?}");
        // Privileged: any ids, the unset one the supervisor's; groups replaced.
        let p = plan(&builder().gid(5).user, &ctx(Namespaces::PID, true)).unwrap();
        assert_eq!(p.ids, Some((1000, 5)));
        assert!(p.set_groups);
    }

    #[test]
    fn a_joined_user_namespace_gives_its_root() {
        let joined = |setid: bool| {
            let mut c = ctx(Namespaces::empty(), setid);
            c.joined = Namespaces::USER | Namespaces::NET;
            c.joining = true;
            c
        };
        let p = plan(&builder().user, &joined(true)).unwrap();
        assert_eq!(p.ids, Some((0, 0)));
        assert!(p.become_root_if_mapped);
        // A privileged supervisor's groups are dropped; an unprivileged one keeps them
        // (the joined namespace may deny setgroups).
        assert!(p.set_groups);
        assert!(!plan(&builder().user, &joined(false)).unwrap().set_groups);
        let p = plan(&builder().uid(7).user, &joined(false)).unwrap();
        assert_eq!(p.ids, Some((7, 0)));
        // host_root(): the supervisor's ids, no root step.
        let p = plan(&builder().host_root().user, &joined(true)).unwrap();
        assert_eq!(p.ids, None);
        assert!(!p.become_root_if_mapped && !p.set_groups);
    }
}
