//! The default identity: which user namespace a spawn really gets, decided before anything
//! is prepared (a block of pooled host ids, the supervisor's own ids, or the user namespace
//! of the namespaces joined).
//!
//! The decision is pure ([`decide`], from the user settings and the `Ctx`); carrying it out
//! may lease ids or look up the joined namespaces' owner. That look-up is the one question
//! the user concern asks the join concern (`plan::join::owner_userns`, which answers with
//! data the builder's `JoinConfig` applies); the join concern asks nothing of this one.

use crate::builder::user::UserConfig;
use crate::builder::ContainerBuilder;
use crate::error::{Error, Result};
use crate::plan::ctx::has_setid_caps;
use crate::plan::Ctx;
use crate::Namespaces;

/// Which user namespace a spawn really gets (see [`default_identity`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Identity {
    /// The builder as configured.
    AsConfigured,
    /// The user namespace that owns the joined namespaces is joined too.
    JoinOwner,
    /// A new user namespace is added: with `0 -> (uid, gid)` for `count` ids, or the
    /// supervisor's own ids (`None`).
    NewUserns(Option<(u32, u32, u32)>),
    /// A new user namespace whose ids `0..ID_BLOCK` are a leased block of host ids.
    Pooled,
}

/// The default identity: decides, before anything is prepared, which user namespace a
/// spawn of `b` really gets. Returns `None` when `b` is spawned as configured, or the
/// builder to spawn instead and the block of host ids it holds:
///
/// * [`host_root`](ContainerBuilder::host_root): as configured.
/// * joining namespaces: the joined namespaces' own user namespace is joined too (see
///   `plan::join::owner_userns`), so a pod member has its pod's identity.
/// * a privileged supervisor (see [`pool_usable`]): a new user namespace, whose ids
///   `0..65536` are a block of host ids no other live container holds (`idpool.rs`),
///   unless the caller gave maps or [`map_root_to`](ContainerBuilder::map_root_to).
/// * an unprivileged supervisor: a new user namespace mapping its own ids to 0 whenever
///   other namespaces are asked for (they need `CAP_SYS_ADMIN`, which only a user namespace
///   of its own gives it); with no namespace at all, nothing changes.
pub(crate) fn default_identity(
    b: &ContainerBuilder,
) -> Result<Option<(ContainerBuilder, Option<crate::idpool::Lease>)>> {
    let ctx = Ctx::new(b);
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
    Ok(match decide(&b.user, &ctx)? {
        Identity::AsConfigured => None,
        Identity::JoinOwner => {
            crate::plan::join::owner_userns(&b.join, ctx.setid_caps.get())?.map(|owner| {
                let mut nb = b.clone();
                nb.join.add_owner(owner);
                (nb, None)
            })
        }
        Identity::NewUserns(maps) => Some((with_user(maps), None)),
        Identity::Pooled => {
            let lease = crate::idpool::lease(ctx.namespaces.contains(Namespaces::PID))?;
            let first = lease.first();
            Some((
                with_user(Some((first, first, crate::idpool::ID_BLOCK))),
                Some(lease),
            ))
        }
    })
}

/// The pure part of [`default_identity`].
fn decide(u: &UserConfig, ctx: &Ctx) -> Result<Identity> {
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
        return Ok(Identity::AsConfigured);
    }
    let userns = ctx.namespaces.contains(Namespaces::USER);
    if ctx.joining {
        // Joining a user namespace chooses the identity; creating one while joining is
        // refused by the join concern, which says why.
        if ctx.joined.contains(Namespaces::USER) || userns {
            return Ok(Identity::AsConfigured);
        }
        return Ok(Identity::JoinOwner);
    }
    if let Some((uid, gid)) = u.map_root_to {
        return Ok(Identity::NewUserns(Some((uid, gid, 1))));
    }
    if !ctx.pool_usable.get() {
        if userns || (ctx.namespaces.is_empty() && !explicit_maps) {
            return Ok(Identity::AsConfigured);
        }
        return Ok(Identity::NewUserns(None));
    }
    if explicit_maps {
        return Ok(if userns {
            Identity::AsConfigured
        } else {
            Identity::NewUserns(None)
        });
    }
    Ok(Identity::Pooled)
}

/// Whether containers get a pooled block of host ids by default: the supervisor holds
/// `CAP_SETUID` and `CAP_SETGID` (it can write multi-range maps) and the pool's ids exist in
/// its user namespace (not so in a nested supervisor, whose namespace maps only what its
/// own container was given). Asked once per process, like `has_setid_caps`.
pub(crate) fn pool_usable() -> bool {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::ctx::HostFact;

    /// A Ctx for `ns`, with or without a usable id pool.
    fn ctx(ns: Namespaces, pool: bool) -> Ctx {
        let mut ctx = Ctx::for_test(ns);
        ctx.pool_usable = HostFact::known(pool);
        ctx
    }

    fn decided(b: &mut ContainerBuilder, ctx: &Ctx) -> Identity {
        decide(&b.user, ctx).unwrap()
    }

    fn bad_config(b: &mut ContainerBuilder) -> String {
        match decide(&b.user, &ctx(Namespaces::empty(), true)) {
            Err(Error::BadConfig(msg)) => msg,
            other => panic!("expected BadConfig, got {other:?}"),
        }
    }

    fn builder() -> ContainerBuilder {
        ContainerBuilder::new("/bin/true")
    }

    #[test]
    fn host_root_is_spawned_as_configured() {
        for pool in [false, true] {
            for ns in [Namespaces::empty(), Namespaces::PID, Namespaces::USER] {
                let id = decided(builder().host_root(), &ctx(ns, pool));
                assert_eq!(id, Identity::AsConfigured, "{ns} pool {pool}");
            }
        }
    }

    #[test]
    fn a_privileged_supervisor_leases_a_block() {
        for ns in [Namespaces::empty(), Namespaces::PID, Namespaces::USER] {
            assert_eq!(
                decided(&mut builder(), &ctx(ns, true)),
                Identity::Pooled,
                "{ns}"
            );
        }
        // Maps of the caller's own: used as given, in a user namespace added if need be.
        let mut b = builder();
        b.uid_map(0, 5000, 10).gid_map(0, 5000, 10);
        assert_eq!(
            decided(&mut b, &ctx(Namespaces::USER, true)),
            Identity::AsConfigured
        );
        assert_eq!(
            decided(&mut b, &ctx(Namespaces::PID, true)),
            Identity::NewUserns(None)
        );
    }

    #[test]
    fn an_unprivileged_supervisor_adds_its_own_user_namespace_only_for_namespaces() {
        // tokio's case: no namespace, nothing changes.
        assert_eq!(
            decided(&mut builder(), &ctx(Namespaces::empty(), false)),
            Identity::AsConfigured
        );
        assert_eq!(
            decided(&mut builder(), &ctx(Namespaces::USER, false)),
            Identity::AsConfigured
        );
        assert_eq!(
            decided(
                &mut builder(),
                &ctx(Namespaces::PID | Namespaces::MOUNT, false)
            ),
            Identity::NewUserns(None)
        );
        // Maps without a user namespace: one is added (prepare then checks the maps).
        let mut b = builder();
        b.uid_map(0, 1000, 1);
        assert_eq!(
            decided(&mut b, &ctx(Namespaces::empty(), false)),
            Identity::NewUserns(None)
        );
    }

    #[test]
    fn map_root_to_maps_one_id_pool_or_not() {
        for pool in [false, true] {
            let mut b = builder();
            b.map_root_to(1234, 5678);
            assert_eq!(
                decided(&mut b, &ctx(Namespaces::PID, pool)),
                Identity::NewUserns(Some((1234, 5678, 1)))
            );
        }
    }

    #[test]
    fn map_root_to_refuses_host_root_and_mixing() {
        let e = bad_config(builder().map_root_to(0, 5));
        assert!(
            e.contains("map_root_to(0, 5)") && e.contains("host uid 0"),
            "{e}"
        );
        let e = bad_config(builder().map_root_to(5, 0));
        assert!(e.contains("host gid 0"), "{e}");
        let e = bad_config(builder().map_root_to(5, 5).uid_map(0, 5, 1));
        assert!(e.contains("together with uid_map()/gid_map()"), "{e}");
        let e = bad_config(builder().map_root_to(5, 5).host_root());
        assert!(e.contains("together with host_root()"), "{e}");
    }

    #[test]
    fn a_joiner_gets_the_owner_of_what_it_joins() {
        let joining = |joined: Namespaces, ns: Namespaces| {
            let mut c = ctx(ns, true);
            c.joining = true;
            c.joined = joined;
            c
        };
        assert_eq!(
            decided(&mut builder(), &joining(Namespaces::NET, Namespaces::UTS)),
            Identity::JoinOwner
        );
        // A join naming no kind still counts as joining (the join concern refuses it).
        assert_eq!(
            decided(
                &mut builder(),
                &joining(Namespaces::empty(), Namespaces::empty())
            ),
            Identity::JoinOwner
        );
        // Joining a user namespace chooses the identity; creating one is refused later.
        assert_eq!(
            decided(
                &mut builder(),
                &joining(Namespaces::USER | Namespaces::NET, Namespaces::empty())
            ),
            Identity::AsConfigured
        );
        assert_eq!(
            decided(&mut builder(), &joining(Namespaces::NET, Namespaces::USER)),
            Identity::AsConfigured
        );
        assert_eq!(
            decided(
                builder().host_root(),
                &joining(Namespaces::NET, Namespaces::empty())
            ),
            Identity::AsConfigured
        );
    }
}
