//! THE CHILD, security steps. Same rules as `mod.rs`: this runs between clone and execve
//! on a borrowed stack in the supervisor's memory. No allocation, no locks, no panics, no
//! glibc wrappers that touch process-wide state: raw syscalls on data `security.rs`
//! prepared in the parent.
//!
//! Order (see `mod.rs`): [`mask_paths`] right after the mounts; [`before_id_change`]
//! (bounding set, keep-caps) right before the id changes; [`drop_privileges`]
//! (session, umask, capabilities, no_new_privs) after stdio, chdir and the id changes;
//! [`fds`] then; [`seccomp`] last, right before execve, so that setup itself may still use
//! what the filter forbids.

use std::ptr;

use libc::{c_char, c_int, c_ulong};

use super::{check, errno, slice, Step};
use crate::error::Stage;

/// One descriptor to pass: `src` (above every `dst`, close-on-exec) goes to `dst`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FdPass {
    pub(crate) src: c_int,
    pub(crate) dst: c_int,
}

/// The prepared security settings (raw pointers into `security::Prepared`).
#[derive(Clone, Copy)]
pub(crate) struct SecuritySpec {
    /// Paths to cover (`/dev/null` over files, an empty read-only tmpfs over directories).
    pub(crate) masks: (*const *const c_char, usize),
    /// Paths to make read-only (bind onto themselves, remount read-only).
    pub(crate) readonly: (*const *const c_char, usize),
    /// Capabilities kept, as a bit mask; applied only if `drop_caps`.
    pub(crate) keep_caps: u64,
    pub(crate) drop_caps: bool,
    pub(crate) no_new_privs: bool,
    /// The compiled filter; null for none.
    pub(crate) seccomp: (*const libc::sock_fprog, usize),
    /// `-1` keeps the inherited umask.
    pub(crate) umask: c_int,
    pub(crate) new_session: bool,
    /// `setpgid(0, process_group)` when `>= 0` (and no new session): `process_group()`.
    pub(crate) process_group: c_int,
    pub(crate) close_fds: bool,
    pub(crate) pass: (*const FdPass, usize),
    /// Inclusive ranges `[lo, hi]` to mark close-on-exec (everything from 3 but targets).
    pub(crate) cloexec_ranges: (*const (u32, u32), usize),
    /// `/proc/self/fd/<n>` of the host's `/dev/null`, opened by the parent: the mask source
    /// when the container's root has no `/dev/null` of its own. Null when unused.
    pub(crate) null_fd_path: *const c_char,
    /// The mask and read-only paths are prefixed with the root filesystem's path and are
    /// applied by the mount step before pivot_root (child/mounts.rs), while the host's
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
    // The masked directory holding the tmpfs, to bind from; null until one is mounted.
    let mut tmpfs_dir: *const c_char = ptr::null();
    for &path in slice(s.masks) {
        // SAFETY: stat into our own stack buffer; path is a C string from the plan.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        if unsafe { libc::stat(path, &mut st) } == -1 {
            let e = errno();
            if e == libc::ENOENT || e == libc::ENOTDIR {
                continue;
            }
            return Err((Stage::MaskPaths, e));
        }
        let ret = if st.st_mode & libc::S_IFMT == libc::S_IFDIR {
            mask_dir(path, &mut tmpfs_dir)
        } else {
            mask_file(s, path)
        };
        check(ret, Stage::MaskPaths)?;
    }
    for &path in slice(s.readonly) {
        readonly(path)?;
    }
    Ok(())
}

/// Covers the directory `path` with the masks' tmpfs: a bind of the one at `*tmpfs_dir`,
/// or a new one (then remembered in `*tmpfs_dir`). Returns `mount`'s result.
fn mask_dir(path: *const c_char, tmpfs_dir: &mut *const c_char) -> c_int {
    if !tmpfs_dir.is_null() {
        // SAFETY: valid C strings from the plan. man 2 mount.
        let ret = unsafe { libc::mount(*tmpfs_dir, path, ptr::null(), libc::MS_BIND, ptr::null()) };
        if ret == 0 {
            return 0;
        }
        // The source is gone: a later mask covered an ancestor of it (`/a/b`, then `/a`).
        // Mount a new tmpfs here and bind from this one from now on.
    }
    // SAFETY: valid C strings. man 2 mount.
    let ret = unsafe {
        libc::mount(
            c"tmpfs".as_ptr(),
            path,
            c"tmpfs".as_ptr(),
            libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
            c"size=0k,mode=000".as_ptr().cast(),
        )
    };
    if ret == 0 {
        *tmpfs_dir = path;
    }
    ret
}

/// Covers the file `path` with `/dev/null`. Returns `mount`'s result.
fn mask_file(s: &SecuritySpec, path: *const c_char) -> c_int {
    // SAFETY: valid C strings. man 2 mount.
    let ret = unsafe {
        libc::mount(
            c"/dev/null".as_ptr(),
            path,
            ptr::null(),
            libc::MS_BIND,
            ptr::null(),
        )
    };
    if ret == -1 && errno() == libc::ENOENT && !s.null_fd_path.is_null() {
        // A root filesystem without /dev/null: bind the host's, through the descriptor
        // the parent opened (a magic link in our /proc).
        // SAFETY: valid C strings from the plan.
        return unsafe {
            libc::mount(
                s.null_fd_path,
                path,
                ptr::null(),
                libc::MS_BIND,
                ptr::null(),
            )
        };
    }
    ret
}

/// Bind `path` onto itself and remount the bind read-only.
fn readonly(path: *const c_char) -> Step {
    // SAFETY: `path` is a C string from the plan, alive until exec.
    let path_c = unsafe { std::ffi::CStr::from_ptr(path) };
    if super::sys::rbind(path_c, path_c) == -1 {
        let e = errno();
        if e == libc::ENOENT || e == libc::ENOTDIR {
            return Ok(());
        }
        return Err((Stage::ReadonlyPaths, e));
    }
    let base = libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY;
    let flags = base | libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
    // SAFETY: as above.
    if unsafe { libc::mount(ptr::null(), path, ptr::null(), flags, ptr::null()) } == 0 {
        return Ok(());
    }
    // In a user namespace the kernel refuses a remount that would clear a locked flag of
    // the mount (atime flags, say): retry keeping exactly the flags it already has.
    // SAFETY: statvfs into our own stack buffer.
    let mut vfs: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(path, &mut vfs) } == -1 {
        return Err((Stage::ReadonlyPaths, errno()));
    }
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
        |acc, &(st, ms)| if vfs.f_flag & st != 0 { acc | ms } else { acc },
    );
    // SAFETY: as above.
    check(
        unsafe { libc::mount(ptr::null(), path, ptr::null(), keep, ptr::null()) },
        Stage::ReadonlyPaths,
    )
}

/// The part of the capability drop that must happen *before* the id changes (the ids
/// step of `child/ids.rs`, setgroups/setresgid/setresuid, which sits between this and
/// [`drop_privileges`]):
///
/// * the bounding set is dropped now, because that needs `CAP_SETPCAP`, which a change to
///   a non-root uid clears from the effective set;
/// * `PR_SET_KEEPCAPS` is set, so that such a change keeps the permitted set and the
///   kept capabilities can still be made effective afterwards (execve clears the flag);
/// * with `no_new_privs` off (and `drop_caps` on), the seccomp filter goes in now: without
///   no_new_privs the kernel only takes a filter from a task with `CAP_SYS_ADMIN`, which is
///   about to go.
///   It forbids nothing the remaining steps use (set*id, capset, prctl, close_range,
///   rt_sigprocmask, execve).
pub(crate) fn before_id_change(s: &SecuritySpec) -> Step {
    if seccomp_early(s) {
        install_seccomp(s.seccomp)?;
    }
    if !s.drop_caps {
        return Ok(());
    }
    drop_bounding_set(s.keep_caps, s.no_new_privs)?;
    // man 2 prctl (PR_SET_KEEPCAPS).
    check(prctl(libc::PR_SET_KEEPCAPS, 1, 0), Stage::Capabilities)
}

/// New session, umask, then the remaining capability sets and no_new_privs.
pub(crate) fn drop_privileges(s: &SecuritySpec) -> Step {
    if s.new_session {
        // Leaves the supervisor's session and so its controlling terminal: TIOCSTI on an
        // inherited terminal then fails (CVE-2017-5226). We are never a group leader here
        // (a fresh pid in the supervisor's group), so setsid cannot fail with EPERM.
        // SAFETY: plain syscall. man 2 setsid.
        check(unsafe { libc::setsid() }, Stage::Setsid)?;
    } else if s.process_group >= 0 {
        // SAFETY: plain syscall. man 2 setpgid.
        check(
            unsafe { libc::setpgid(0, s.process_group) },
            Stage::ProcessGroup,
        )?;
    }
    if s.umask >= 0 {
        // SAFETY: plain syscall, cannot fail. man 2 umask.
        unsafe { libc::umask(s.umask as libc::mode_t) };
    }
    if s.drop_caps {
        drop_capabilities(s.keep_caps)?;
    }
    if s.no_new_privs {
        // man 2 prctl (PR_SET_NO_NEW_PRIVS).
        check(prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0), Stage::NoNewPrivs)?;
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
        // man 2 prctl (PR_CAPBSET_READ, PR_CAPBSET_DROP).
        let present = prctl(libc::PR_CAPBSET_READ, cap, 0);
        if present == -1 {
            // EINVAL: past the kernel's last capability.
            break;
        }
        if present == 0 {
            continue;
        }
        if prctl(libc::PR_CAPBSET_DROP, cap, 0) == -1 {
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
/// too. (The bounding set went in [`before_id_change`].)
///
/// **The held capability.** This child shares the supervisor's address space
/// (`CLONE_VM`) until execve. A process of the same uid may ptrace it, or open its
/// `/proc/<pid>/mem` (which then stays the supervisor's memory), once the child's
/// permitted set is a subset of its own: with `host_root()`, any capability-less uid-0
/// process that sees this pid (another container without a PID namespace) could read and
/// write the supervisor's memory in the window between this call and execve. Keeping one
/// capability the workload will not have in the permitted set (not effective, and not in
/// the bounding set, so execve drops it: the workload's sets are exactly `keep`) closes
/// that window (tests/escape_init.rs `setup_child_memory_is_not_reachable`).
fn drop_capabilities(keep: u64) -> Step {
    // EINVAL means the kernel has no ambient set (before 4.3).
    let ret = prctl(
        libc::PR_CAP_AMBIENT,
        libc::PR_CAP_AMBIENT_CLEAR_ALL as c_ulong,
        0,
    );
    if ret == -1 && errno() != libc::EINVAL {
        return Err((Stage::Capabilities, errno()));
    }
    let header = libc_cap_header();
    let mut now = [CapData {
        effective: 0,
        permitted: 0,
        inheritable: 0,
    }; 2];
    // SAFETY: header and two data structs, the layout of _LINUX_CAPABILITY_VERSION_3.
    // man 2 capget.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_capget,
            &header as *const CapHeader,
            now.as_mut_ptr(),
        )
    };
    check(ret as c_int, Stage::Capabilities)?;
    let permitted_now = now[0].permitted as u64 | (now[1].permitted as u64) << 32;
    let spare = permitted_now & !keep;
    // The lowest one we have and do not keep (none: nothing to hold, nothing to protect
    // beyond what the caller kept).
    let hold = spare & spare.wrapping_neg();
    let lo = keep as u32;
    let hi = (keep >> 32) as u32;
    let data = [
        CapData {
            effective: lo,
            permitted: lo | hold as u32,
            inheritable: lo,
        },
        CapData {
            effective: hi,
            permitted: hi | (hold >> 32) as u32,
            inheritable: hi,
        },
    ];
    // SAFETY: header and two data structs, the layout of _LINUX_CAPABILITY_VERSION_3.
    // man 2 capset.
    let ret =
        unsafe { libc::syscall(libc::SYS_capset, &header as *const CapHeader, data.as_ptr()) };
    check(ret as c_int, Stage::Capabilities)?;
    for cap in 0..64 {
        if keep & (1u64 << cap) != 0 {
            // man 2 prctl (PR_CAP_AMBIENT_RAISE).
            let ret = prctl(
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

/// `prctl(option, arg2, arg3, 0, 0)`, for options whose arguments are plain integers
/// (every prctl of this file; not for those that take a pointer).
fn prctl(option: c_int, arg2: c_ulong, arg3: c_ulong) -> c_int {
    // SAFETY: plain syscall with integer arguments. man 2 prctl.
    unsafe { libc::prctl(option, arg2, arg3, 0 as c_ulong, 0 as c_ulong) }
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: c_int,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

fn libc_cap_header() -> CapHeader {
    const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;
    CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    }
}

/// Passes the allow-listed descriptors onto their numbers and marks every other one from
/// 3 up close-on-exec, so nothing else reaches the workload: a leaked directory descriptor
/// is how runc's CVE-2024-21626 reached the host filesystem. The error pipe is already
/// close-on-exec and sits above every target (the plan arranged it).
pub(crate) fn fds(s: &SecuritySpec) -> Step {
    for p in slice(s.pass) {
        // Every source sits above every target, so no dup2 overwrites a pending source;
        // dup2 clears close-on-exec on the target.
        // SAFETY: plain syscall. man 2 dup2.
        check(unsafe { libc::dup2(p.src, p.dst) }, Stage::PassFds)?;
    }
    if !s.close_fds {
        return Ok(());
    }
    for &(lo, hi) in slice(s.cloexec_ranges) {
        if lo > hi {
            continue;
        }
        cloexec_range(lo, hi)?;
    }
    Ok(())
}

fn cloexec_range(lo: u32, hi: u32) -> Step {
    // SAFETY: plain syscall. man 2 close_range (CLOSE_RANGE_CLOEXEC since Linux 5.11).
    let ret = unsafe { libc::syscall(libc::SYS_close_range, lo, hi, libc::CLOSE_RANGE_CLOEXEC) };
    if ret == 0 {
        return Ok(());
    }
    let err = errno();
    if err != libc::EINVAL && err != libc::ENOSYS {
        return Err((Stage::CloseFds, err));
    }
    // Older kernel: walk up to the descriptor limit with fcntl.
    // SAFETY: rlimit is plain data; fcntl on a closed fd just fails with EBADF.
    unsafe {
        let mut lim: libc::rlimit = std::mem::zeroed();
        let max = if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0
            && lim.rlim_cur != libc::RLIM_INFINITY
        {
            lim.rlim_cur as u64
        } else {
            65536
        };
        let end = (hi as u64).min(max.saturating_sub(1));
        let mut fd = lo as u64;
        while fd <= end {
            libc::fcntl(fd as c_int, libc::F_SETFD, libc::FD_CLOEXEC);
            fd += 1;
        }
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

/// Installs the filters in order (`add_seccomp`'s after `seccomp`'s). With
/// `prctl(PR_SET_SECCOMP)` rather than `seccomp()`: each filter is installed under the
/// earlier ones, and `prctl` is the call bubblewrap documents (and allow lists allow) for
/// stacking. The same operation as `seccomp(SECCOMP_SET_MODE_FILTER, 0, prog)`.
fn install_seccomp(progs: (*const libc::sock_fprog, usize)) -> Step {
    for prog in slice(progs) {
        // SAFETY: a sock_fprog and BPF program the plan keeps alive; the kernel copies
        // the program. man 2 prctl (PR_SET_SECCOMP), man 2 seccomp.
        let ret = unsafe {
            libc::prctl(
                libc::PR_SET_SECCOMP,
                libc::SECCOMP_MODE_FILTER as c_ulong,
                prog as *const libc::sock_fprog,
                0 as c_ulong,
                0 as c_ulong,
            )
        };
        check(ret, Stage::Seccomp)?;
    }
    Ok(())
}
