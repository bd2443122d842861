//! THE CHILD, user: the uid/gid maps of a new user namespace (written by the child itself,
//! or awaited from the supervisor), then the workload's groups, gid and uid.
//!
//! Same rules as `mod.rs`. The set*id calls are raw syscalls (`sys.rs`): glibc's wrappers
//! broadcast the change to every thread of the process (the "setxid" signal dance), and the
//! threads they would signal are the supervisor's, which is not what we want and hangs.

use libc::{c_int, gid_t, uid_t};

use super::sys::{self, check, errno, write_file, Step};
use crate::error::Stage;

/// Prepared by `plan/user.rs`.
pub(crate) struct UserSpec<'a> {
    /// Single-line maps of the caller's own ids, which the child writes itself.
    pub(crate) own_maps: Option<OwnMaps<'a>>,
    /// Read end of the "maps written" pipe, or -1 when the child writes its own maps (or
    /// has no user namespace). One byte means go; EOF means the supervisor failed.
    pub(crate) maps_ready_fd: c_int,
    /// Our copy of the pipe's write end, closed first so that the supervisor closing its
    /// own copy really gives EOF.
    pub(crate) maps_ready_close_fd: c_int,
    /// Right after the maps are written, become uid/gid 0 of the new namespace: the child
    /// starts with the supervisor's host ids, which a supervisor-written map need not
    /// cover, and files created by later steps (mount points in a tmpfs) need a mapped
    /// owner (EOVERFLOW otherwise).
    pub(crate) become_root: bool,
    /// The same right after joining a user namespace, where 0 may not be mapped.
    pub(crate) become_root_if_mapped: bool,
    /// Call `setgroups(groups)` (an empty list drops the supervisor's groups).
    pub(crate) set_groups: bool,
    pub(crate) groups: &'a [gid_t],
    /// Call `setresgid(gid)` and `setresuid(uid)`.
    pub(crate) set_ids: bool,
    pub(crate) uid: uid_t,
    pub(crate) gid: gid_t,
}

/// The map texts for `/proc/self/uid_map` and `gid_map`.
pub(crate) struct OwnMaps<'a> {
    pub(crate) uid_map: &'a [u8],
    pub(crate) gid_map: &'a [u8],
}

/// Blocks until the supervisor has written our uid/gid maps (a multi-range map needs
/// privilege in the parent user namespace, which we no longer have in here).
pub(crate) fn wait_for_maps(spec: &UserSpec<'_>) -> Step {
    if spec.maps_ready_fd < 0 {
        if spec.become_root_if_mapped {
            // A joined user namespace: become its root for the mount steps if it maps 0
            // (EINVAL otherwise: then the ids stay, and set_ids applies `user()` later).
            if sys::setresgid(0) == 0 {
                check(sys::setresuid(0), Stage::SetUid)?;
                // As below: keep our /proc files ours.
                check(sys::set_dumpable(), Stage::SetUid)?;
            } else if errno() != libc::EINVAL {
                return Err((Stage::SetGid, errno()));
            }
        }
        return Ok(());
    }
    sys::close(spec.maps_ready_close_fd);
    match sys::read_byte(spec.maps_ready_fd) {
        Ok(true) => {}
        // The supervisor gave up (it reports its own, more precise error).
        Ok(false) => return Err((Stage::WaitForMaps, libc::ECANCELED)),
        Err(err) => return Err((Stage::WaitForMaps, err)),
    }
    sys::close(spec.maps_ready_fd);
    if spec.become_root {
        // We still hold every capability in the new namespace: the kernel only drops them
        // when leaving *its* root uid.
        check(sys::setresgid(0), Stage::SetGid)?;
        check(sys::setresuid(0), Stage::SetUid)?;
        // Changing ids made us non-dumpable, which gives our /proc/self files to the
        // host's root: the later write of /proc/self/timens_offsets would get EACCES.
        // execve recomputes dumpability anyway.
        check(sys::set_dumpable(), Stage::SetUid)?;
    }
    Ok(())
}

/// Writes `setgroups` = deny, then `gid_map` and `uid_map` of our own new user namespace.
/// A single line mapping the caller's own id is the one map a process may write for
/// itself without privilege in the parent namespace.
pub(crate) fn write_own_maps(spec: &UserSpec<'_>) -> Step {
    let Some(maps) = &spec.own_maps else {
        return Ok(());
    };
    let stage = Stage::UserMap;
    write_file(c"/proc/self/setgroups", b"deny", stage)?;
    write_file(c"/proc/self/gid_map", maps.gid_map, stage)?;
    write_file(c"/proc/self/uid_map", maps.uid_map, stage)
}

/// setgroups, setresgid, setresuid: in this order, because dropping the uid first would
/// take away the right to change groups.
pub(crate) fn set_ids(spec: &UserSpec<'_>) -> Step {
    if spec.set_groups {
        check(sys::setgroups(spec.groups), Stage::SetGroups)?;
    }
    if spec.set_ids {
        check(sys::setresgid(spec.gid), Stage::SetGid)?;
        check(sys::setresuid(spec.uid), Stage::SetUid)?;
    }
    Ok(())
}
