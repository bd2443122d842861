//! The built-in PID-1 init and the lifeline that ties containers to their supervisor.
//!
//! # Design
//!
//! A container with a new PID namespace gets `cellblock-init` as its PID 1 (unless
//! [`init(false)`](crate::ContainerBuilder::init)): a tini-like program that forwards
//! signals to the workload, reaps orphans, ends whatever remains when the workload exits
//! (SIGTERM, a grace period, SIGKILL) and exits with the workload's status. With
//! [`init(true)`](crate::ContainerBuilder::init) and no PID namespace it runs instead as
//! the workload's parent and a child subreaper (tini's `-s`). Its source is
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
//!   heap (measured here).
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
//! # Out of the workload's reach
//!
//! The init runs with the workload's credentials. By the ordinary ptrace access rules
//! the workload could then reopen the init's descriptors through `/proc/1/fd/N` (a
//! reopen ignores close-on-exec), copy them with `pidfd_getfd`, read and write
//! `/proc/1/mem`, or ptrace the init, and so forge the status the init reports or make it
//! exit 0. So the init makes itself non-dumpable (`PR_SET_DUMPABLE 0`) first thing after
//! its execve, before any process of the workload exists, as runc does for its init: every
//! such access then needs `CAP_SYS_PTRACE` over the init's user namespace, which the
//! workload lacks unless the caller kept it on purpose. The workload's own execve gives it
//! a fresh, dumpable memory map, so its `/proc/self`, `ps` and debuggers inside work.
//! [`init_dumpable(true)`](crate::ContainerBuilder::init_dumpable) turns this off for
//! debugging the init.
//!
//! # The report pipe across the init
//!
//! The spawn's error pipe (close-on-exec; EOF = execve succeeded) cannot tell whether the
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
//! **The record is never trusted beyond what the kernel says.** Only the init should hold
//! the write end, and a non-dumpable init keeps the workload from reopening it; but a
//! record is a claim, and the kernel's report of the init's own exit is a fact. The init
//! exits with the workload's code, or 128+signal when the workload was killed, so the
//! supervisor takes the kernel's status of the init and lets the record do one thing only:
//! tell "killed by signal N" (and whether it dumped core) from "exited with 128+N", and
//! only when it agrees with the init's real exit code ([`workload_status`]). A forged
//! record can therefore claim nothing the workload could not have produced itself by
//! exiting or dying: "exit 0" for a workload that exited 3 is rejected even by an init
//! made dumpable. (Making the channel unreachable by construction, say an exit code alone,
//! would lose the signal/code distinction; a signed record would need a secret the init
//! keeps in memory, which is exactly what a dumpable init would expose.)
//!
//! # The lifeline: a pidfd of the supervisor, one per container
//!
//! Each spawn opens a fresh pidfd of the supervisor *process* (`pidfd_open(getpid())`,
//! close-on-exec) and hands it to the init, which polls it: a pidfd becomes readable when
//! its process has exited (every thread of it, by SIGKILL too), and then the init kills its
//! namespace and exits at once. This follows the *process*, unlike `PR_SET_PDEATHSIG`,
//! which follows the cloning *thread* (tokio's blocking threads retire after ~10 s idle,
//! which would kill healthy containers), and works across PID namespaces (poll needs no
//! visibility of the pid; the supervisor's pid is invisible inside).
//!
//! Why a pidfd rather than a pipe: an earlier version shared one lifeline pipe among all
//! containers of a supervisor. A workload that reached its init's read end could write a
//! byte into it (every other init then spun on a readable pipe), and one that reached a
//! write end could keep every container alive after the supervisor's death. A pidfd has no
//! data and no write end: `write()` fails, readability means only "exited", and holding a
//! copy keeps nobody alive. From inside the container it cannot even signal the
//! supervisor (`pidfd_send_signal` needs the target to be visible in the caller's PID
//! namespace). Each container gets its own open file, so no state (file flags) is shared
//! between containers either, and a supervisor that forked gets pidfds of itself, not of
//! its parent. Cost: one `pidfd_open` and one `close` per spawn. Containers without an
//! init use `PR_SET_PDEATHSIG` from a long-lived spawner thread instead (`handle/spawner.rs`);
//! their child polls the same kind of pidfd once to close the race with a supervisor that
//! died before the signal was armed.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::process::ExitStatus;
use std::sync::OnceLock;

use std::os::unix::process::ExitStatusExt;

use crate::sys;

/// The init's executable image, built by build.rs.
static INIT_ELF: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/cellblock-init"));

pub(crate) use crate::protocol::MSG_STATUS;
use crate::protocol::{FLAG_DUMPABLE, FLAG_GROUP, FLAG_OWN_GROUP, FLAG_SUBREAPER, FLAG_TTY};

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
    let fd = match sys::memfd_create(c"cellblock-init", base | MFD_EXEC) {
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
            sys::memfd_create(c"cellblock-init", base)?
        }
        r => r?,
    };
    let fd = sys::above_stdio(fd)?;
    let mut file = std::fs::File::from(fd);
    io::Write::write_all(&mut file, INIT_ELF)?;
    let fd = OwnedFd::from(file);
    let seals = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
    sys::add_seals(fd.as_fd(), seals)?;
    // Execute-only. The kernel starts a process non-dumpable when it execs an image its
    // credentials may not read (with the default fs.suid_dumpable = 0), so the init is
    // out of reach from its very first instruction, not only from its prctl on (the
    // prctl stays, for hosts where suid_dumpable is set and for capabilities that can
    // read anything). Our descriptor stays open read-write; exec needs only `x`.
    sys::fchmod(fd.as_fd(), 0o111)?;
    Ok(fd)
}

/// A new pidfd of this (the supervisor) process, close-on-exec, at `min` or above: one
/// container's lifeline (see the module docs).
pub(crate) fn lifeline(min: RawFd) -> io::Result<OwnedFd> {
    // getpid() is the thread group's id whichever thread runs this, and pidfd_open of it
    // follows the whole process, not this thread.
    let me = std::process::id() as libc::pid_t;
    sys::move_above(sys::pidfd_open(me)?, min.max(3))
}

/// Settings the init needs, turned into its argv.
pub(crate) struct InitArgs<'a> {
    pub(crate) report_fd: RawFd,
    pub(crate) lifeline_fd: RawFd,
    pub(crate) grace_ms: u64,
    pub(crate) foreground_tty: bool,
    /// `process_group(0)`: a group of its own even on a terminal shared with the caller.
    pub(crate) own_group: bool,
    /// `init_dumpable(true)`: the init skips `PR_SET_DUMPABLE 0`.
    pub(crate) dumpable: bool,
    /// `signal_process_group(true)`: signals go to the workload's process group.
    pub(crate) signal_group: bool,
    /// No PID namespace: the init is a child subreaper and never uses `kill(-1)`.
    pub(crate) subreaper: bool,
    /// `parent_death_signal`: forwarded to the workload when the supervisor dies; 0 = none.
    pub(crate) parent_death_signal: i32,
    /// `success_exit_code`: exit codes the init reports as 0 (validated: 0..=255).
    pub(crate) success_codes: &'a [u8],
    /// `rewrite_signal`: `(from, to)` pairs, validated; `to == 0` drops `from`.
    pub(crate) rewrites: &'a [(i32, i32)],
    pub(crate) path: &'a CString,
    pub(crate) args: &'a [CString],
}

impl InitArgs<'_> {
    /// `cellblock-init REPORT_FD LIFELINE_FD GRACE_MS FLAGS PDEATHSIG SUCCESS REWRITES PATH
    /// ARGV0 [ARGS...]` (the C file's header describes each).
    pub(crate) fn to_argv(&self) -> Vec<CString> {
        let text = |v: String| CString::new(v).expect("digits, ',' and ':' hold no NUL");
        let num = |v: i64| text(v.to_string());
        let flag = |on: bool, bit: u32| if on { bit as i64 } else { 0 };
        let flags = flag(self.foreground_tty, FLAG_TTY)
            | flag(self.dumpable, FLAG_DUMPABLE)
            | flag(self.signal_group, FLAG_GROUP)
            | flag(self.subreaper, FLAG_SUBREAPER)
            | flag(self.own_group, FLAG_OWN_GROUP);
        let success: Vec<String> = self.success_codes.iter().map(|c| c.to_string()).collect();
        let rewrites: Vec<String> = self
            .rewrites
            .iter()
            .map(|(from, to)| format!("{from}:{to}"))
            .collect();
        let mut v = vec![
            c"cellblock-init".to_owned(),
            num(self.report_fd as i64),
            num(self.lifeline_fd as i64),
            num(self.grace_ms.min(i32::MAX as u64) as i64),
            num(flags),
            num(self.parent_death_signal as i64),
            text(success.join(",")),
            text(rewrites.join(",")),
            self.path.clone(),
        ];
        v.extend(self.args.iter().cloned());
        v
    }
}

/// The workload's own status, if the init left it in the report pipe (`status_fd`, our
/// non-blocking duplicate of the read end) before exiting and it agrees with what the
/// kernel says of the init (`init_status`, see [`accept_record`]); otherwise `init_status`.
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
    let ready = sys::poll(std::slice::from_mut(&mut pfd), 0);
    if !matches!(ready, Ok(1)) || pfd.revents & libc::POLLIN == 0 {
        return init_status;
    }
    if matches!(sys::read(status_fd.as_fd(), &mut buf), Ok(8)) {
        let (tag, value) = crate::protocol::decode(&buf);
        if tag == MSG_STATUS {
            return accept_record(value, init_status);
        }
    }
    init_status
}

/// The status to report for a `MSG_STATUS` record `value`, given the kernel's status of
/// the init: the record when it is a well-formed wait status the init's real exit agrees
/// with (the init exits with the workload's code, or 128+signal), else the kernel's.
///
/// So a record can only turn "exited with 128+N" into "killed by signal N" (with or
/// without a core dump); whoever wrote it, it cannot change the code or invent a success.
/// The init killed by a signal (SIGKILL to the container) wrote no record of its own:
/// anything in the pipe then is not the init's, and the kernel's status stands.
pub(crate) fn accept_record(value: i32, init_status: ExitStatus) -> ExitStatus {
    let Some(init_code) = init_status.code() else {
        return init_status;
    };
    let expected = if value & !0xff00 == 0 {
        // Exited (WIFEXITED): the code in bits 8..16.
        (value >> 8) & 0xff
    } else if value & !0xff == 0 && (1..=64).contains(&(value & 0x7f)) {
        // Killed (WIFSIGNALED), maybe with the core-dump bit 0x80.
        128 + (value & 0x7f)
    } else {
        // Stopped/continued or garbage: no status the init would report.
        return init_status;
    };
    if expected == init_code {
        ExitStatus::from_raw(value)
    } else {
        init_status
    }
}

#[cfg(test)]
mod tests {
    /// The C init holds no number of the protocol of its own: it uses exactly the names
    /// build.rs passes from `protocol::C_DEFINES`, and refuses to build without each.
    #[test]
    fn the_c_init_takes_the_protocol_from_rust() {
        let c = include_str!("../init/cellblock-init.c");
        let names: Vec<&str> = crate::protocol::C_DEFINES.iter().map(|d| d.0).collect();
        for name in &names {
            assert!(
                !c.lines()
                    .any(|l| l.split_whitespace().take(2).eq(["#define", name])),
                "cellblock-init.c defines {name} itself"
            );
            assert!(
                c.contains(&format!("#ifndef {name}\n#error")),
                "cellblock-init.c has no #ifndef/#error guard for {name}"
            );
        }
        // Every protocol-looking identifier the C file uses comes from Rust.
        let used = c
            .split(|ch: char| !(ch.is_ascii_alphanumeric() || ch == '_'))
            .filter(|w| ["STAGE_", "MSG_", "FLAG_"].iter().any(|p| w.starts_with(p)));
        for w in used {
            assert!(
                names.contains(&w),
                "{w} is used by the C init but not in C_DEFINES"
            );
        }
    }

    /// The built init speaks the protocol: run outside a container (as a subreaper), it
    /// reports a workload that cannot be executed as `(Stage::Execve, ENOENT)`, and a
    /// workload that runs as `(MSG_STARTED, pid)` then `(MSG_STATUS, its wait status)`,
    /// decoded here with `protocol::decode`. Needs no privilege.
    #[test]
    fn the_built_init_reports_what_rust_decodes() {
        use crate::protocol::{decode, FLAG_SUBREAPER, RECORD_LEN};
        use std::io::Read;
        use std::os::unix::process::CommandExt;
        let run = |program: &str, args: &[&str]| -> Vec<(u32, i32)> {
            let (r, w) = sys::pipe_cloexec().unwrap();
            let image = format!("/proc/self/fd/{}", memfd().unwrap());
            let wfd = w.as_raw_fd();
            let mut cmd = std::process::Command::new(image);
            cmd.arg0("cellblock-init")
                .args(["3", "-1", "0", &FLAG_SUBREAPER.to_string(), "0", "", ""])
                .arg(program)
                .args(args);
            // SAFETY: dup2 is async-signal-safe; it puts our pipe's write end on fd 3
            // (without close-on-exec) in the forked child only.
            unsafe {
                cmd.pre_exec(move || match libc::dup2(wfd, 3) {
                    -1 => Err(io::Error::last_os_error()),
                    _ => Ok(()),
                })
            };
            let status = cmd.status().unwrap();
            drop(w);
            let mut bytes = Vec::new();
            std::fs::File::from(r).read_to_end(&mut bytes).unwrap();
            assert_eq!(bytes.len() % RECORD_LEN, 0, "{bytes:?}; init {status}");
            bytes
                .chunks_exact(RECORD_LEN)
                .map(|c| decode(c.try_into().unwrap()))
                .collect()
        };
        let failed = run("/nonexistent/program", &["x"]);
        assert_eq!(
            failed,
            [(crate::Stage::Execve as u32, libc::ENOENT)],
            "a missing program"
        );
        let ran = run("/bin/sh", &["sh", "-c", "exit 3"]);
        assert_eq!(ran.len(), 2, "{ran:?}");
        assert_eq!(ran[0].0, MSG_STARTED);
        assert!(ran[0].1 > 0, "{ran:?}");
        assert_eq!(ran[1], (MSG_STATUS, 3 << 8));
    }

    use super::*;
    use crate::protocol::MSG_STARTED;

    fn exited(code: i32) -> ExitStatus {
        ExitStatus::from_raw(code << 8)
    }

    /// A record that agrees with the init's real exit is taken (a signal stays a signal,
    /// with its core-dump bit); one that disagrees is not, so a forged "exit 0" for a
    /// workload that exited 3 changes nothing. Both directions run, so the check can fail.
    #[test]
    fn a_status_record_must_agree_with_the_inits_exit() {
        // Genuine records.
        assert_eq!(accept_record(3 << 8, exited(3)).code(), Some(3));
        assert_eq!(accept_record(libc::SIGTERM, exited(143)).signal(), Some(15));
        let core = accept_record(libc::SIGSEGV | 0x80, exited(128 + 11));
        assert_eq!((core.signal(), core.core_dumped()), (Some(11), true));
        assert_eq!(accept_record(0, exited(0)).code(), Some(0));
        // Forged: a success for a failure, another code, a signal that does not match.
        assert_eq!(accept_record(0, exited(3)).code(), Some(3));
        assert_eq!(accept_record(7 << 8, exited(3)).code(), Some(3));
        assert_eq!(accept_record(libc::SIGKILL, exited(3)).code(), Some(3));
        // Malformed: stopped (0x7f), high bits, signal 0 with core bit, out of range.
        for v in [0x137f, 0x10000 | (3 << 8), 0x80, 0x7e, -1] {
            assert_eq!(accept_record(v, exited(3)).code(), Some(3), "{v:#x}");
        }
        // The init itself was killed: the kernel's word stands, whatever the record says.
        let killed = ExitStatus::from_raw(libc::SIGKILL);
        assert_eq!(accept_record(0, killed).signal(), Some(9));
    }

    /// The same through the pipe, as `Container::wait` reads it.
    #[test]
    fn forged_record_in_the_pipe_is_rejected() {
        let (r, w) = sys::pipe_cloexec().unwrap();
        let write = |tag: u32, value: i32| {
            let rec = crate::protocol::encode(tag, value);
            assert_eq!(sys::write(w.as_fd(), &rec).unwrap(), 8);
        };
        write(MSG_STATUS, 0);
        assert_eq!(workload_status(&r, exited(3)).code(), Some(3));
        write(MSG_STATUS, libc::SIGINT);
        assert_eq!(
            workload_status(&r, exited(130)).signal(),
            Some(libc::SIGINT)
        );
        // Empty pipe: the init's status.
        assert_eq!(workload_status(&r, exited(5)).code(), Some(5));
    }
}
