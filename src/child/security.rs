//! THE CHILD, security steps. Same rules as `mod.rs`: this runs between clone and execve
//! on a borrowed stack in the supervisor's memory. No allocation, no locks, no panics, no
//! glibc wrappers that touch process-wide state: the system calls of `sys.rs`, on data
//! `plan/security.rs` prepared in the parent.
//!
//! Order (see `mod.rs`): [`mask_paths`] right after the mounts; [`fds`] after stdio and
//! chdir; [`before_id_change`] (bounding set, keep-caps) right before the id changes;
//! [`drop_privileges`] (session, umask, capabilities, no_new_privs) after the id changes;
//! [`seccomp`] last, right before execve, so that setup itself may still use
//! what the filter forbids.

use std::ffi::{CStr, CString};
use std::sync::Arc;

use libc::{c_int, c_ulong};

use super::sys::{self, CapData};
use super::{check, errno, Step};
use crate::builder::security::CapSets;
use crate::error::Stage;

/// One descriptor to pass: `src` (above every `dst`, close-on-exec) goes to `dst`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FdPass {
    pub(crate) src: c_int,
    pub(crate) dst: c_int,
}

/// The prepared security settings, borrowed from the plan's `PreparedSecurity`.
#[derive(Clone, Copy)]
pub(crate) struct SecuritySpec<'a> {
    /// Paths to cover (`/dev/null` over files, an empty read-only tmpfs over directories).
    pub(crate) masks: &'a [CString],
    /// Paths to make read-only (bind onto themselves, remount read-only).
    pub(crate) readonly: &'a [CString],
    /// Capabilities kept, as a bit mask; applied only if `drop_caps`.
    pub(crate) keep_caps: u64,
    pub(crate) drop_caps: bool,
    /// The other four sets (`capability_sets`), `keep_caps` being the bounding set; `None`:
    /// `keep_caps` in all five.
    pub(crate) cap_sets: Option<CapSets>,
    pub(crate) no_new_privs: bool,
    /// The compiled filters, installed in order; none for no filter.
    pub(crate) seccomp: &'a [Arc<[libc::sock_filter]>],
    /// `-1` keeps the inherited umask.
    pub(crate) umask: c_int,
    pub(crate) new_session: bool,
    /// `setpgid(0, process_group)` when `>= 0` (and no new session): `process_group()`.
    pub(crate) process_group: c_int,
    pub(crate) close_fds: bool,
    pub(crate) pass: &'a [FdPass],
    /// Inclusive ranges `[lo, hi]` to mark close-on-exec (everything from 3 but targets).
    pub(crate) cloexec_ranges: &'a [(u32, u32)],
    /// `/proc/self/fd/<n>` of the host's `/dev/null`, opened by the parent: the mask source
    /// when the container's root has no `/dev/null` of its own.
    pub(crate) null_fd_path: Option<&'a CStr>,
    /// The mask and read-only paths are prefixed with the root filesystem's path and are
    /// applied by the mount step before pivot_root (child/fs.rs), while the host's
    /// `/dev/null` is still in our mount namespace to bind from.
    pub(crate) under_root: bool,
}

/// Masks and read-only paths, in the container's mount namespace (after pivot_root, so
/// the paths are the container's). A path that does not exist is skipped.
pub(crate) fn mask_paths(s: &SecuritySpec) -> Step {
    if s.under_root {
        return Ok(()); // done before pivot_root, see `mask_paths_now`
    }
    mask_paths_now(s)
}

/// Applies the masks and read-only paths as prepared (root-prefixed when `under_root`).
///
/// Every masked directory shows the same empty read-only tmpfs: it is mounted once, on the
/// first masked directory, and bind-mounted from there onto the others. A tmpfs per
/// directory cost a superblock each, created here and torn down (`deactivate_super`) when
/// the container's mount namespace goes; a bind costs a mount only. The bind carries the
/// mount's flags (read-only, nosuid, nodev, noexec) and the superblock is read-only.
pub(crate) fn mask_paths_now(s: &SecuritySpec) -> Step {
    // The masked directory holding the tmpfs, to bind from; none until one is mounted.
    let mut tmpfs_dir: Option<&CStr> = None;
    for path in s.masks {
        let is_dir = match sys::is_dir(path) {
            Ok(d) => d,
            Err(libc::ENOENT | libc::ENOTDIR) => continue,
            Err(e) => return Err((Stage::MaskPaths, e)),
        };
        let ret = if is_dir {
            mask_dir(path, &mut tmpfs_dir)
        } else {
            mask_file(s, path)
        };
        check(ret, Stage::MaskPaths)?;
    }
    for path in s.readonly {
        readonly(path)?;
    }
    Ok(())
}

/// Covers the directory `path` with the masks' tmpfs: a bind of the one at `*tmpfs_dir`,
/// or a new one (then remembered in `*tmpfs_dir`). Returns `mount`'s result.
fn mask_dir<'a>(path: &'a CStr, tmpfs_dir: &mut Option<&'a CStr>) -> c_int {
    if let Some(dir) = *tmpfs_dir {
        if sys::mount(Some(dir), path, None, libc::MS_BIND, None) == 0 {
            return 0;
        }
        // The source is gone: a later mask covered an ancestor of it (`/a/b`, then `/a`).
        // Mount a new tmpfs here and bind from this one from now on.
    }
    let ret = sys::mount(
        Some(c"tmpfs"),
        path,
        Some(c"tmpfs"),
        libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
        Some(c"size=0k,mode=000"),
    );
    if ret == 0 {
        *tmpfs_dir = Some(path);
    }
    ret
}

/// Covers the file `path` with `/dev/null`. Returns `mount`'s result.
fn mask_file(s: &SecuritySpec, path: &CStr) -> c_int {
    let ret = sys::mount(Some(c"/dev/null"), path, None, libc::MS_BIND, None);
    match s.null_fd_path {
        // A root filesystem without /dev/null: bind the host's, through the descriptor
        // the parent opened (a magic link in our /proc).
        Some(null) if ret == -1 && errno() == libc::ENOENT => {
            sys::mount(Some(null), path, None, libc::MS_BIND, None)
        }
        _ => ret,
    }
}

/// Bind `path` onto itself and remount the bind read-only.
fn readonly(path: &CStr) -> Step {
    if sys::rbind(path, path) == -1 {
        let e = errno();
        if e == libc::ENOENT || e == libc::ENOTDIR {
            return Ok(());
        }
        return Err((Stage::ReadonlyPaths, e));
    }
    let base = libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY;
    let flags = base | libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
    if sys::mount(None, path, None, flags, None) == 0 {
        return Ok(());
    }
    // In a user namespace the kernel refuses a remount that would clear a locked flag of
    // the mount (atime flags, say): retry keeping exactly the flags it already has.
    let now = sys::statvfs_flags(path).map_err(|e| (Stage::ReadonlyPaths, e))?;
    let keep = [
        (libc::ST_NOSUID, libc::MS_NOSUID),
        (libc::ST_NODEV, libc::MS_NODEV),
        (libc::ST_NOEXEC, libc::MS_NOEXEC),
        (libc::ST_NOATIME, libc::MS_NOATIME),
        (libc::ST_NODIRATIME, libc::MS_NODIRATIME),
        (libc::ST_RELATIME, libc::MS_RELATIME),
    ]
    .iter()
    .fold(
        base,
        |acc, &(st, ms)| if now & st != 0 { acc | ms } else { acc },
    );
    check(
        sys::mount(None, path, None, keep, None),
        Stage::ReadonlyPaths,
    )
}

/// The part of the capability drop that must happen *before* the id changes (the ids
/// step of `child/user.rs`, setgroups/setresgid/setresuid, which sits between this and
/// [`drop_privileges`]):
///
/// * the bounding set is dropped now, because that needs `CAP_SETPCAP`, which a change to
///   a non-root uid clears from the effective set;
/// * `PR_SET_KEEPCAPS` is set, so that such a change keeps the permitted set and the
///   kept capabilities can still be made effective afterwards (execve clears the flag);
/// * with `no_new_privs` off (and `drop_caps` on), the seccomp filter goes in now: without
///   no_new_privs the kernel only takes a filter from a task with `CAP_SYS_ADMIN`, which is
///   about to go.
///   It forbids nothing the remaining steps use (set*id, capset, prctl, rt_sigprocmask,
///   execve; the descriptors are done before).
pub(crate) fn before_id_change(s: &SecuritySpec) -> Step {
    if seccomp_early(s) {
        install_seccomp(s.seccomp)?;
    }
    if !s.drop_caps {
        return Ok(());
    }
    drop_bounding_set(s.keep_caps, s.no_new_privs)?;
    check(sys::prctl(libc::PR_SET_KEEPCAPS, 1, 0), Stage::Capabilities)
}

/// New session, umask, then the remaining capability sets and no_new_privs.
pub(crate) fn drop_privileges(s: &SecuritySpec) -> Step {
    if s.new_session {
        // Leaves the supervisor's session and so its controlling terminal: TIOCSTI on an
        // inherited terminal then fails (CVE-2017-5226). We are never a group leader here
        // (a fresh pid in the supervisor's group), so setsid cannot fail with EPERM.
        check(sys::setsid(), Stage::Setsid)?;
    } else if s.process_group >= 0 {
        check(sys::setpgid(s.process_group), Stage::ProcessGroup)?;
    }
    if s.umask >= 0 {
        sys::umask(s.umask as libc::mode_t);
    }
    if s.drop_caps {
        drop_capabilities(s.keep_caps, s.cap_sets)?;
    }
    if s.no_new_privs {
        check(
            sys::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0),
            Stage::NoNewPrivs,
        )?;
    }
    Ok(())
}

/// Drops every capability not in `keep` from the bounding set.
///
/// The bounding set matters most for a root workload: at execve, uid 0 gets every
/// capability of its bounding set back ("root legacy" rules), so clearing only the
/// effective and permitted sets would last until the first exec.
fn drop_bounding_set(keep: u64, no_new_privs: bool) -> Step {
    for cap in 0..64 {
        if keep & (1u64 << cap) != 0 {
            continue;
        }
        let present = sys::prctl(libc::PR_CAPBSET_READ, cap, 0);
        if present == -1 {
            // EINVAL: past the kernel's last capability.
            break;
        }
        if present == 0 {
            continue;
        }
        if sys::prctl(libc::PR_CAPBSET_DROP, cap, 0) == -1 {
            let e = errno();
            // Without CAP_SETPCAP (an unprivileged supervisor, or a nested container
            // that kept only some capabilities) the bounding set cannot shrink. It only
            // limits what execve may grant, and no_new_privs makes execve grant nothing,
            // so that is safe; without no_new_privs it is not, so fail.
            if e == libc::EPERM && no_new_privs {
                break;
            }
            return Err((Stage::Capabilities, e));
        }
    }
    Ok(())
}

/// Clears the ambient set, sets inheritable and effective to `keep` and permitted to
/// `keep` plus one capability held until execve (see below), and raises the kept
/// capabilities into the ambient set so that they survive execve for a non-root workload
/// too. (The bounding set went in [`before_id_change`].) With `sets`
/// (`capability_sets`), permitted, effective, inheritable and ambient are those instead.
///
/// **The held capability.** This child shares the supervisor's address space
/// (`CLONE_VM`) until execve. A process of the same uid may ptrace it, or open its
/// `/proc/<pid>/mem` (which then stays the supervisor's memory), once the child's
/// permitted set is a subset of its own: with `host_root()`, any capability-less uid-0
/// process that sees this pid (another container without a PID namespace) could read and
/// write the supervisor's memory in the window between this call and execve. Keeping one
/// capability the workload will not have in the permitted set (not effective, and not in
/// the bounding set, so execve drops it: the workload's sets are exactly `keep`) closes
/// that window (tests/escape/escape_init.rs `setup_child_memory_is_not_reachable`).
fn drop_capabilities(keep: u64, sets: Option<CapSets>) -> Step {
    let sets = sets.unwrap_or(CapSets {
        permitted: keep,
        effective: keep,
        inheritable: keep,
        ambient: keep,
    });
    // EINVAL means the kernel has no ambient set (before 4.3).
    let ret = sys::prctl(
        libc::PR_CAP_AMBIENT,
        libc::PR_CAP_AMBIENT_CLEAR_ALL as c_ulong,
        0,
    );
    if ret == -1 && errno() != libc::EINVAL {
        return Err((Stage::Capabilities, errno()));
    }
    let mut now = [CapData::default(); 2];
    check(sys::capget(&mut now), Stage::Capabilities)?;
    let permitted_now = now[0].permitted as u64 | (now[1].permitted as u64) << 32;
    // Not in the bounding, inheritable or ambient set either: execve drops it.
    let spare = permitted_now & !(keep | sets.permitted | sets.inheritable | sets.ambient);
    // The lowest one we have and do not keep (none: nothing to hold, nothing to protect
    // beyond what the caller kept).
    let hold = spare & spare.wrapping_neg();
    let (lo, hi) = (|m: u64| m as u32, |m: u64| (m >> 32) as u32);
    let permitted = sets.permitted | hold;
    let data = [
        CapData {
            effective: lo(sets.effective),
            permitted: lo(permitted),
            inheritable: lo(sets.inheritable),
        },
        CapData {
            effective: hi(sets.effective),
            permitted: hi(permitted),
            inheritable: hi(sets.inheritable),
        },
    ];
    check(sys::capset(&data), Stage::Capabilities)?;
    for cap in 0..64 {
        if sets.ambient & (1u64 << cap) != 0 {
            let ret = sys::prctl(
                libc::PR_CAP_AMBIENT,
                libc::PR_CAP_AMBIENT_RAISE as c_ulong,
                cap,
            );
            if ret == -1 && errno() != libc::EINVAL {
                return Err((Stage::Capabilities, errno()));
            }
        }
    }
    Ok(())
}

/// Passes the allow-listed descriptors onto their numbers and marks every other one from
/// 3 up close-on-exec, so nothing else reaches the workload: a leaked directory descriptor
/// is how runc's CVE-2024-21626 reached the host filesystem. The error pipe is already
/// close-on-exec and sits above every target (the plan arranged it).
pub(crate) fn fds(s: &SecuritySpec) -> Step {
    for p in s.pass {
        // Every source sits above every target, so no dup2 overwrites a pending source;
        // dup2 clears close-on-exec on the target.
        check(sys::dup2(p.src, p.dst), Stage::PassFds)?;
    }
    if !s.close_fds {
        return Ok(());
    }
    for &(lo, hi) in s.cloexec_ranges {
        if lo > hi {
            continue;
        }
        cloexec_range(lo, hi)?;
    }
    Ok(())
}

fn cloexec_range(lo: u32, hi: u32) -> Step {
    if sys::close_range_cloexec(lo, hi) == 0 {
        return Ok(());
    }
    let err = errno();
    if err != libc::EINVAL && err != libc::ENOSYS {
        return Err((Stage::CloseFds, err));
    }
    // Older kernel (CLOSE_RANGE_CLOEXEC is Linux 5.11): walk up to the descriptor limit;
    // marking a number that is not open just fails with EBADF.
    let end = u64::from(hi).min(sys::nofile_limit().saturating_sub(1));
    let mut fd = u64::from(lo);
    while fd <= end {
        sys::set_cloexec(fd as c_int);
        fd += 1;
    }
    Ok(())
}

/// Installs the seccomp filter: the last setup step, so that everything before it may
/// still mount, set the hostname and so on. (With no_new_privs off and capabilities
/// dropped it already happened in [`before_id_change`].)
pub(crate) fn seccomp(s: &SecuritySpec) -> Step {
    if seccomp_early(s) {
        return Ok(());
    }
    install_seccomp(s.seccomp)
}

/// Whether the filter goes in [`before_id_change`] instead of last: without no_new_privs
/// the kernel takes it only from a task with `CAP_SYS_ADMIN`, which dropping the
/// capabilities takes away.
fn seccomp_early(s: &SecuritySpec) -> bool {
    !s.no_new_privs && s.drop_caps
}

/// Installs the filters in order (`add_seccomp`'s after `seccomp`'s), each under the
/// earlier ones.
fn install_seccomp(programs: &[Arc<[libc::sock_filter]>]) -> Step {
    for prog in programs {
        check(sys::install_seccomp(prog), Stage::Seccomp)?;
    }
    Ok(())
}
