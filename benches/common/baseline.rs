//! Baselines shared by the benches (included with `#[path]`; not a bench target itself).

use std::ffi::CString;
use std::time::{Duration, Instant};

use cellblock::{ContainerBuilder, Namespaces};

/// Whether this is a measuring run. `cargo bench` passes `--bench`; `cargo test --benches`
/// passes nothing, and `cargo bench -- --test` asks for a test run (criterion's rule).
/// `CELLBLOCK_BENCH_QUICK` in the environment also makes the run small.
pub fn full_run() -> bool {
    let arg = |want: &str| std::env::args().any(|a| a == want);
    arg("--bench") && !arg("--test") && std::env::var_os("CELLBLOCK_BENCH_QUICK").is_none()
}

/// The `CLONE_NEW*` bits for the namespaces clone() can create.
pub fn clone_flags(ns: Namespaces) -> libc::c_int {
    let mut f = 0;
    for (n, c) in [
        (Namespaces::UTS, libc::CLONE_NEWUTS),
        (Namespaces::IPC, libc::CLONE_NEWIPC),
        (Namespaces::PID, libc::CLONE_NEWPID),
        (Namespaces::MOUNT, libc::CLONE_NEWNS),
        (Namespaces::NET, libc::CLONE_NEWNET),
    ] {
        if ns.contains(n) {
            f |= c;
        }
    }
    f
}

struct RawArgs {
    path: CString,
    argv: [*const libc::c_char; 2],
    envp: [*const libc::c_char; 1],
    /// Bring `lo` up before execve (what a runtime must do in a new network namespace).
    lo_up: bool,
    /// Make `/` private and mount a fresh /proc (what a runtime must do with new PID and
    /// mount namespaces, or `ps` shows the host).
    proc: bool,
}

/// `mount --make-rprivate /` and a fresh /proc, the raw equivalent of cellblock's steps.
///
/// # Safety
/// Raw syscalls on the caller's stack only (callable in a vfork child).
unsafe fn raw_fresh_proc() {
    let null = std::ptr::null();
    if libc::mount(
        null,
        c"/".as_ptr(),
        null,
        libc::MS_REC | libc::MS_PRIVATE,
        null.cast(),
    ) == -1
    {
        libc::_exit(125);
    }
    let flags = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
    if libc::mount(
        c"proc".as_ptr(),
        c"/proc".as_ptr(),
        c"proc".as_ptr(),
        flags,
        null.cast(),
    ) == -1
    {
        libc::_exit(125);
    }
}

/// `ioctl(SIOCSIFFLAGS, lo, IFF_UP)`, the raw equivalent of cellblock's loopback step.
///
/// # Safety
/// Raw syscalls on the caller's stack only (callable in a vfork child).
unsafe fn raw_lo_up() {
    let sock = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
    let mut req: libc::ifreq = std::mem::zeroed();
    req.ifr_name[0] = b'l' as libc::c_char;
    req.ifr_name[1] = b'o' as libc::c_char;
    if libc::ioctl(sock, libc::SIOCGIFFLAGS, &mut req) == -1 {
        libc::_exit(126);
    }
    req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
    if libc::ioctl(sock, libc::SIOCSIFFLAGS, &req) == -1 {
        libc::_exit(126);
    }
    libc::close(sock);
}

extern "C" fn raw_child(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: the RawArgs outlives the child's use of it (vfork); execve or _exit only.
    unsafe {
        let a = &*(arg as *const RawArgs);
        if a.proc {
            raw_fresh_proc();
        }
        if a.lo_up {
            raw_lo_up();
        }
        libc::execve(a.path.as_ptr(), a.argv.as_ptr(), a.envp.as_ptr());
        libc::_exit(127)
    }
}

/// The floor for any runtime: `clone(CLONE_VM|CLONE_VFORK|ns)` of `/bin/true` on a fixed
/// stack, `execve`, `waitpid`, `iters` times on the calling thread.
pub fn raw_clone_loop(ns: Namespaces, iters: u64) -> Duration {
    raw_clone_loop_with(ns, iters, false)
}

/// [`raw_clone_loop`], with `required` also doing in the child what the flags require of
/// a runtime (and cellblock's core does): `/` made private and a fresh /proc with PID and
/// MOUNT, `lo` brought up with NET.
pub fn raw_clone_loop_with(ns: Namespaces, iters: u64, required: bool) -> Duration {
    let path = CString::new("/bin/true").unwrap();
    let mut args = RawArgs {
        argv: [path.as_ptr(), std::ptr::null()],
        envp: [std::ptr::null()],
        path,
        lo_up: required && ns.contains(Namespaces::NET),
        proc: required && ns.contains(Namespaces::PID | Namespaces::MOUNT),
    };
    let mut stack = vec![0u8; 256 * 1024];
    let top = (stack.as_mut_ptr() as usize + stack.len()) & !15;
    let flags = libc::CLONE_VM | libc::CLONE_VFORK | clone_flags(ns) | libc::SIGCHLD;
    let start = Instant::now();
    for _ in 0..iters {
        // SAFETY: see raw_child.
        let pid = unsafe {
            libc::clone(
                raw_child,
                top as *mut _,
                flags,
                &mut args as *mut RawArgs as *mut _,
            )
        };
        assert!(pid > 0, "clone: {}", std::io::Error::last_os_error());
        let mut status = 0;
        // SAFETY: waiting for our own child.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        assert_eq!(status, 0);
    }
    start.elapsed()
}

/// Maps `bytes` of anonymous memory in 4 KiB pages (no transparent huge pages) and touches
/// every page, so that the page tables are fully populated: the supervisor of a big service.
pub fn big_heap(bytes: usize) -> &'static mut [u8] {
    // SAFETY: a fresh private anonymous mapping, kept for the life of the process.
    unsafe {
        let p = libc::mmap(
            std::ptr::null_mut(),
            bytes,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        assert_ne!(p, libc::MAP_FAILED);
        libc::madvise(p, bytes, libc::MADV_NOHUGEPAGE);
        let s = std::slice::from_raw_parts_mut(p as *mut u8, bytes);
        for i in (0..bytes).step_by(4096) {
            s[i] = 1;
        }
        s
    }
}

/// The core path alone, doing what the raw loop does: no built-in init (unless the caller
/// turns it back on), no hardening (masks, capability drop, no_new_privs, seccomp, fd
/// closing, new session), no die-with-supervisor (which without an init means
/// PR_SET_PDEATHSIG from a spawner thread: two thread handoffs), and the raw loop's empty
/// environment; and none of the secure-by-default layers of issue 11 (the default identity's
/// user namespace, the fresh /dev, read-only /sys).
pub fn core_only(b: &mut ContainerBuilder) -> &mut ContainerBuilder {
    before_issue_11(b)
        .init(false)
        .masked_paths(false)
        .seccomp(cellblock::Seccomp::disabled())
        .keep_all_capabilities()
        .no_new_privs(false)
        .inherit_fds(true)
        .new_session(false)
        .die_with_supervisor(false)
        .env_clear()
}

/// The defaults as they were before issue 11 (secure by default): no user namespace of the
/// default identity, the host's /dev, writable /sys, no pids budget. The spawn bench runs
/// this next to today's defaults, to show what the new layers cost in the same run.
pub fn before_issue_11(b: &mut ContainerBuilder) -> &mut ContainerBuilder {
    b.host_root()
        .host_dev(true)
        .writable_sys(true)
        .default_budget(false)
}

/// Runs a loop as a task on one of the runtime's workers, where a supervisor's code runs
/// (the thread of `Runtime::block_on` is not a worker: every wakeup of a future awaited
/// there crosses threads). Every tokio-based contender is measured the same way.
pub fn in_task(
    rt: &tokio::runtime::Runtime,
    f: impl std::future::Future<Output = Duration> + Send + 'static,
) -> Duration {
    rt.block_on(rt.spawn(f)).unwrap()
}
