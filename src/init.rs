//! The built-in PID-1 init and the lifeline that ties containers to their supervisor.
//!
//! # Design
//!
//! A container with a new PID namespace gets `cellblock-init` as its PID 1 (unless
//! [`init(false)`](crate::ContainerBuilder::init)): a tini-like program that forwards
//! signals to the workload, reaps orphans, ends whatever remains when the workload exits
//! (SIGTERM, a grace period, SIGKILL) and exits with the workload's status. Its source is
//! `init/cellblock-init.c`; `build.rs` compiles it into a ~9 KiB *static, freestanding*
//! executable (raw syscalls, no libc) that this module embeds.
//!
//! Why a separate program, exec'd from a sealed memfd:
//!
//! * **Not the supervisor's address space.** An init written as Rust code inside the
//!   library would have to run in a fork of the supervisor; every process of the container
//!   able to `ptrace` PID 1 (same uid, same user namespace) could then read the
//!   supervisor's memory: keys, other tenants' data. An exec'd program holds nothing but
//!   itself.
//! * **Spawn cost independent of the supervisor's memory.** The child is still created
//!   with `CLONE_VM | CLONE_VFORK` (no page-table copy), and then execs the init, which
//!   starts the workload the same way (a vfork-style clone on a stack of its own): the
//!   only extra cost is one tiny exec, whatever the size of the supervisor's heap. (The init has no libc because a static glibc's
//!   start-up alone, CPUID-heavy feature detection, cost more than all the rest.) A fork-style clone would cost ~117 ms with a 4 GiB
//!   heap (NOTES.md).
//! * **No file on disk, no `/proc/self/exe`.** The image lives in an anonymous memfd,
//!   created once per supervisor process and sealed (`F_SEAL_WRITE | SHRINK | GROW |
//!   SEAL`) so that nobody, not even a process that gets hold of the descriptor, can
//!   change what later containers execute (cf. runc's CVE-2019-5736, where a container
//!   overwrote the runtime binary). The child execs it with `execveat(fd, "",
//!   AT_EMPTY_PATH)`, which works inside any mount namespace or root filesystem, and
//!   because the image is static it needs no loader or libc in there either. The memfd is
//!   close-on-exec, which `execveat` of an ELF image tolerates (only a script would need
//!   the descriptor after exec).
//!
//! # The report pipe across the init
//!
//! The core's error pipe (close-on-exec; EOF = execve succeeded) cannot tell whether the
//! *workload* started, because the exec that closes it is the init's. So the child clears
//! close-on-exec on the pipe's write end right before exec'ing the init, and the init
//! speaks the same 8-byte `(u32 tag, i32 value)` record protocol on it:
//!
//! * `(Stage::Execve, errno)` when the workload's execve failed (the init learns this
//!   from its vfork-style child, which leaves the errno in their shared memory before it
//!   exits), or `(Stage::InitStart | InitSetup, errno)` for its own
//!   failures: the spawn returns [`Error::Setup`](crate::Error::Setup) naming the stage,
//!   exactly as without an init;
//! * `(MSG_STARTED, pid)` once the workload's execve succeeded: the spawn returns;
//! * `(MSG_STATUS, wait status)` just before the init exits:
//!   [`Container::wait`](crate::Container::wait) reports the *workload's* status (a signal as a signal,
//!   where the init itself can only exit with 128+signal). If the init was killed
//!   (SIGKILL to the container) the record is missing and the init's own status stands.
//!
//! # The lifeline
//!
//! One pipe per supervisor process, both ends close-on-exec. The supervisor alone keeps
//! the write end (every child closes its copy: explicitly in our clone child, by
//! close-on-exec in any other child); each init gets the read end and polls it. When the
//! supervisor dies, by SIGKILL too, the kernel closes the write end, the read end hangs
//! up, and every init kills its namespace and exits at once. This follows the *process*,
//! unlike `PR_SET_PDEATHSIG`, which follows the cloning *thread* (tokio's blocking threads
//! retire after ~10 s idle, which would kill healthy containers). Containers without an
//! init use `PR_SET_PDEATHSIG` from a long-lived spawner thread instead (`spawner.rs`).

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::process::ExitStatus;
use std::sync::OnceLock;

use std::os::unix::process::ExitStatusExt;

use crate::sys;

/// The init's executable image, built by build.rs.
static INIT_ELF: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/cellblock-init"));

/// Report tag: the workload's execve succeeded (value: its pid inside).
pub(crate) const MSG_STARTED: u32 = 0x100;
/// Report tag: the workload's wait status, written as the init exits.
pub(crate) const MSG_STATUS: u32 = 0x101;

/// The sealed memfd holding the init, created on first use and kept for the life of the
/// process.
pub(crate) fn memfd() -> io::Result<RawFd> {
    static FD: OnceLock<Result<OwnedFd, i32>> = OnceLock::new();
    match FD.get_or_init(|| create_memfd().map_err(|e| e.raw_os_error().unwrap_or(libc::EIO))) {
        Ok(fd) => Ok(fd.as_raw_fd()),
        Err(e) => Err(io::Error::from_raw_os_error(*e)),
    }
}

fn create_memfd() -> io::Result<OwnedFd> {
    // MFD_EXEC (Linux 6.3+) keeps the memfd executable where vm.memfd_noexec would make
    // new memfds non-executable by default; older kernels reject the flag with EINVAL.
    const MFD_EXEC: libc::c_uint = 0x10;
    let base = libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING;
    // SAFETY: valid C string, plain syscall. man 2 memfd_create.
    let mut raw = unsafe { libc::memfd_create(c"cellblock-init".as_ptr(), base | MFD_EXEC) };
    if raw == -1 && io::Error::last_os_error().raw_os_error() == Some(libc::EINVAL) {
        // SAFETY: as above.
        raw = unsafe { libc::memfd_create(c"cellblock-init".as_ptr(), base) };
    }
    if raw == -1 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor nobody else owns.
    let fd = sys::above_stdio(unsafe { OwnedFd::from_raw_fd(raw) })?;
    let mut file = std::fs::File::from(fd);
    io::Write::write_all(&mut file, INIT_ELF)?;
    let fd = OwnedFd::from(file);
    let seals = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
    // SAFETY: fcntl on our own memfd. man 2 fcntl (File Sealing).
    if unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_ADD_SEALS, seals) } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(fd)
}

/// The process-wide lifeline pipe `(read end, write end)`, created on first use.
pub(crate) fn lifeline() -> io::Result<(RawFd, RawFd)> {
    static PIPE: OnceLock<Result<(OwnedFd, OwnedFd), i32>> = OnceLock::new();
    match PIPE
        .get_or_init(|| sys::pipe_cloexec().map_err(|e| e.raw_os_error().unwrap_or(libc::EIO)))
    {
        Ok((r, w)) => Ok((r.as_raw_fd(), w.as_raw_fd())),
        Err(e) => Err(io::Error::from_raw_os_error(*e)),
    }
}

/// Settings the init needs, turned into its argv.
pub(crate) struct InitArgs<'a> {
    pub(crate) report_fd: RawFd,
    pub(crate) lifeline_fd: RawFd,
    pub(crate) grace_ms: u64,
    pub(crate) foreground_tty: bool,
    pub(crate) path: &'a CString,
    pub(crate) args: &'a [CString],
}

impl InitArgs<'_> {
    /// `cellblock-init REPORT_FD LIFELINE_FD GRACE_MS FLAGS PATH ARGV0 [ARGS...]`.
    pub(crate) fn to_argv(&self) -> Vec<CString> {
        let num = |v: i64| CString::new(v.to_string()).expect("digits hold no NUL");
        let mut v = vec![
            c"cellblock-init".to_owned(),
            num(self.report_fd as i64),
            num(self.lifeline_fd as i64),
            num(self.grace_ms.min(i32::MAX as u64) as i64),
            num(self.foreground_tty as i64),
            self.path.clone(),
        ];
        v.extend(self.args.iter().cloned());
        v
    }
}

/// The workload's own status, if the init left it in the report pipe (`status_fd`, our
/// non-blocking duplicate of the read end) before exiting; otherwise `init_status`.
pub(crate) fn workload_status(status_fd: &OwnedFd, init_status: ExitStatus) -> ExitStatus {
    let mut buf = [0u8; 8];
    // The pipe holds at most this one record by now (the startup record was consumed by
    // the spawn). The init has exited, so whatever it wrote is there; poll first anyway so
    // that this never blocks the runtime thread it runs on (were some process inside
    // still holding the write end, a plain read without data would wait for it).
    let mut pfd = libc::pollfd {
        fd: status_fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd, zero timeout. man 2 poll.
    if unsafe { libc::poll(&mut pfd, 1, 0) } != 1 || pfd.revents & libc::POLLIN == 0 {
        return init_status;
    }
    // SAFETY: valid buffer and fd. man 2 read.
    let n = unsafe { libc::read(status_fd.as_raw_fd(), buf.as_mut_ptr().cast(), 8) };
    if n == 8 {
        let tag = u32::from_ne_bytes([buf[0], buf[1], buf[2], buf[3]]);
        let value = i32::from_ne_bytes([buf[4], buf[5], buf[6], buf[7]]);
        if tag == MSG_STATUS {
            return ExitStatus::from_raw(value);
        }
    }
    init_status
}
