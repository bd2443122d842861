//! THE CHILD, identities: waiting for the supervisor's uid/gid maps, then the workload's
//! groups, gid and uid.
//!
//! Same rules as `mod.rs`. The set*id calls are raw syscalls: glibc's wrappers broadcast
//! the change to every thread of the process (the "setxid" signal dance), and the threads
//! they would signal are the supervisor's, which is not what we want and hangs.

use libc::{c_int, gid_t, uid_t};

use super::{check, errno, Step};
use crate::error::Stage;

/// Prepared by `userns.rs`.
pub(crate) struct IdSpec {
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
    pub(crate) groups: *const gid_t,
    pub(crate) n_groups: usize,
    /// Call `setresgid(gid)` and `setresuid(uid)`.
    pub(crate) set_ids: bool,
    pub(crate) uid: uid_t,
    pub(crate) gid: gid_t,
}

impl IdSpec {
    pub(crate) const NONE: IdSpec = IdSpec {
        maps_ready_fd: -1,
        maps_ready_close_fd: -1,
        become_root: false,
        become_root_if_mapped: false,
        set_groups: false,
        groups: std::ptr::null(),
        n_groups: 0,
        set_ids: false,
        uid: 0,
        gid: 0,
    };
}

/// Blocks until the supervisor has written our uid/gid maps (a multi-range map needs
/// privilege in the parent user namespace, which we no longer have in here).
pub(crate) fn wait_for_maps(spec: &IdSpec) -> Step {
    if spec.maps_ready_fd < 0 {
        if spec.become_root_if_mapped {
            // A joined user namespace: become its root for the mount steps if it maps 0
            // (EINVAL otherwise: then the ids stay, and set_ids applies `user()` later).
            // SAFETY: raw syscalls, see the module docs.
            let ret = unsafe { libc::syscall(libc::SYS_setresgid, 0, 0, 0) };
            if ret == 0 {
                let ret = unsafe { libc::syscall(libc::SYS_setresuid, 0, 0, 0) };
                check(ret as c_int, Stage::SetUid)?;
                // As below: keep our /proc files ours. SAFETY: man 2 prctl.
                let ret = unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 1, 0, 0, 0) };
                check(ret, Stage::SetUid)?;
            } else if errno() != libc::EINVAL {
                return Err((Stage::SetGid, errno()));
            }
        }
        return Ok(());
    }
    // SAFETY: our own copy of the write end. man 2 close.
    unsafe { libc::close(spec.maps_ready_close_fd) };
    let mut byte = 0u8;
    loop {
        // SAFETY: one byte into our stack. man 2 read.
        let n = unsafe { libc::read(spec.maps_ready_fd, (&mut byte as *mut u8).cast(), 1) };
        match n {
            1 => break,
            // The supervisor gave up (it reports its own, more precise error).
            0 => return Err((Stage::WaitForMaps, libc::ECANCELED)),
            _ if errno() == libc::EINTR => continue,
            _ => return Err((Stage::WaitForMaps, errno())),
        }
    }
    // SAFETY: our own descriptor.
    unsafe { libc::close(spec.maps_ready_fd) };
    if spec.become_root {
        // SAFETY: raw syscalls (see the module docs). We still hold every capability in
        // the new namespace: the kernel only drops them when leaving *its* root uid.
        let ret = unsafe { libc::syscall(libc::SYS_setresgid, 0, 0, 0) };
        check(ret as c_int, Stage::SetGid)?;
        let ret = unsafe { libc::syscall(libc::SYS_setresuid, 0, 0, 0) };
        check(ret as c_int, Stage::SetUid)?;
        // Changing ids made us non-dumpable, which gives our /proc/self files to the
        // host's root: the later write of /proc/self/timens_offsets would get EACCES.
        // execve recomputes dumpability anyway. SAFETY: man 2 prctl.
        let ret = unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 1, 0, 0, 0) };
        check(ret, Stage::SetUid)?;
    }
    Ok(())
}

/// setgroups, setresgid, setresuid: in this order, because dropping the uid first would
/// take away the right to change groups.
pub(crate) fn set_ids(spec: &IdSpec) -> Step {
    // SAFETY (whole function): raw syscalls with plain integers / the plan's gid array.
    // man 2 setgroups, setresgid, setresuid.
    if spec.set_groups {
        let ret = unsafe { libc::syscall(libc::SYS_setgroups, spec.n_groups, spec.groups) };
        check(ret as c_int, Stage::SetGroups)?;
    }
    if spec.set_ids {
        let ret = unsafe { libc::syscall(libc::SYS_setresgid, spec.gid, spec.gid, spec.gid) };
        check(ret as c_int, Stage::SetGid)?;
        let ret = unsafe { libc::syscall(libc::SYS_setresuid, spec.uid, spec.uid, spec.uid) };
        check(ret as c_int, Stage::SetUid)?;
    }
    Ok(())
}
