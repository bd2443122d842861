//! Making network namespaces in the supervisor, before the container's clone.
//!
//! **As root** a namespace is made by a short-lived dedicated thread that `unshare`s and
//! hands back `/proc/thread-self/ns/net` (never a tokio thread: a namespace change applies
//! to one thread and would leave the runtime inconsistent). The container is then *cloned
//! in it*: the cloning thread enters it for the clone alone (`sys::ThreadNetns`), so the
//! child starts there whatever user namespace it creates, and the clone keeps its fast
//! `CLONE_VM | CLONE_VFORK` form. (Joining it from inside the container would not do:
//! with the default identity the child is in a new user namespace, which has no capability
//! over a namespace the host's owns; and joining a user namespace instead needs a clone
//! with a private copy of the supervisor's memory, whose cost grows with it: 35x with a
//! 2 GiB heap, measured.) The namespace stays owned by the host's user namespace, so the
//! container's root has no capability over its own network configuration, whatever
//! capabilities it keeps.
//!
//! **Without root** no such namespace can be entered, so it is made inside a user
//! namespace of the container's identity and the container joins both (the join machinery
//! orders the user namespace first and creates the others after it, `plan/join.rs`). That
//! pair is made by a *created* container (`create()`: cloned with `USER | NET`, its map
//! written, stopped at its start gate before any `execve`), whose two namespaces are kept
//! as descriptors; pasta attaches to them through its pid, and then it is killed.

use std::fs::File;
use std::os::fd::OwnedFd;

use crate::builder::ContainerBuilder;
use crate::error::{Error, Result};
use crate::Namespaces;

/// A ready network namespace, and the user namespace that owns it when it is not the
/// supervisor's.
#[derive(Debug)]
pub(crate) struct Netns {
    pub(crate) net: OwnedFd,
    pub(crate) user: Option<OwnedFd>,
    /// The block of host ids `user` maps (the default identity under root): held, given
    /// back when the namespaces are dropped.
    pub(crate) _ids: Option<crate::idpool::Lease>,
}

/// Whether the namespace is made by the supervisor in its own user namespace (root: the
/// cloning thread enters it for the clone, `sys::ThreadNetns`), rather than by a helper in
/// a user namespace of the container's identity (rootless: the container joins both).
pub(crate) fn host_owned() -> bool {
    nix::unistd::geteuid().as_raw() == 0
}

/// Makes a network namespace for a container of `b` (`lo` is brought up by whoever
/// configures it).
pub(crate) async fn make(b: &ContainerBuilder) -> Result<Netns> {
    make_keeping_helper(b).await.map(|(ns, _)| ns)
}

/// [`make`], also returning the helper still waiting at its gate (when there is one), so
/// that another program (pasta) can find the namespaces through its pid.
pub(crate) async fn make_keeping_helper(
    b: &ContainerBuilder,
) -> Result<(Netns, Option<crate::Created>)> {
    if host_owned() {
        let net = unshare_thread().await?;
        return Ok((
            Netns {
                net,
                user: None,
                _ids: None,
            },
            None,
        ));
    }
    with_userns(b).await
}

/// The pair of a user namespace of `b`'s identity and a network namespace it owns.
async fn with_userns(b: &ContainerBuilder) -> Result<(Netns, Option<crate::Created>)> {
    let exe = std::env::current_exe().map_err(Error::io("finding our own executable"))?;
    let mut helper = ContainerBuilder::new(exe);
    // Only what decides the user namespace's maps; the workload's ids inside are the
    // workload's business.
    helper.user.uid_maps = b.user.uid_maps.clone();
    helper.user.gid_maps = b.user.gid_maps.clone();
    helper.user.map_root_to = b.user.map_root_to;
    helper.namespaces(Namespaces::USER | Namespaces::NET);
    helper.stdin(crate::Stdio::null());
    helper.stdout(crate::Stdio::null());
    helper.stderr(crate::Stdio::null());
    let mut created = helper.create_without_network().await?;
    let pid = created.pid();
    let open = |kind: &str| -> Result<OwnedFd> {
        File::open(format!("/proc/{pid}/ns/{kind}"))
            .map(OwnedFd::from)
            .map_err(Error::io("opening the namespaces of a namespace helper"))
    };
    let net = open("net")?;
    let user = open("user")?;
    let ids = created.take_identity();
    // Dropping it (the caller does) kills and reaps it; the namespaces live on in our
    // descriptors.
    Ok((
        Netns {
            net,
            user: Some(user),
            _ids: ids,
        },
        Some(created),
    ))
}

/// A new network namespace owned by the supervisor's user namespace, made by a dedicated
/// thread.
async fn unshare_thread() -> Result<OwnedFd> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("cellblock-unshare".into())
        .spawn(move || {
            // SAFETY: plain syscall; this thread is ours and ends right after.
            let r = if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
                Err(std::io::Error::last_os_error())
            } else {
                File::open("/proc/thread-self/ns/net").map(OwnedFd::from)
            };
            let _ = tx.send(r);
        })
        .map_err(Error::io("starting the unshare thread"))?;
    let r = rx.await.map_err(|_| Error::Io {
        context: "unsharing a network namespace",
        source: std::io::Error::other("the unshare thread panicked"),
    })?;
    r.map_err(|e| {
        if e.raw_os_error() == Some(libc::EPERM) {
            Error::NeedsPrivilege {
                feature: "a network namespace made by the supervisor".into(),
                needs: "CAP_SYS_ADMIN",
                hint: "run as root, or leave the network to the container's own user namespace",
            }
        } else {
            Error::io("unsharing a network namespace")(e)
        }
    })
}
