//! `bwrap`: a bubblewrap-compatible command line over cellblock's public API.
//!
//! ```text
//! bwrap [OPTIONS...] [--] COMMAND [ARGS...]
//! ```
//!
//! Options are bubblewrap's, with its semantics, read in order (the mount options apply in
//! the order given, and `--args FD` splices NUL-separated arguments in where it stands):
//! `--help`, `--args FD`, `--unshare-{user,user-try,ipc,pid,net,uts,cgroup,cgroup-try,all}`,
//! `--share-net`, `--uid N`, `--gid N`, `--hostname NAME`, `--chdir DIR`,
//! `--setenv VAR VALUE`, `--unsetenv VAR`, `--clearenv`, `--bind[-try] SRC DEST`,
//! `--dev-bind[-try] SRC DEST`, `--ro-bind[-try] SRC DEST`, `--remount-ro DEST`,
//! `--dev DEST`, `--proc DEST`, `--tmpfs DEST`, `--dir DEST`, `--symlink SRC DEST`,
//! `--chmod OCTAL PATH`, `--perms OCTAL` (for the next `--dir` or `--tmpfs`),
//! `--info-fd FD`, `--json-status-fd FD`, `--lock-file DEST`, `--die-with-parent`,
//! `--as-pid-1`, `--new-session`, `--cap-add CAP`, `--cap-drop CAP`.
//!
//! Exits with the workload's exit code (128 + signal if it was killed), or 1 with a
//! `bwrap: ` message when the sandbox could not be set up, as bubblewrap does.
//!
//! `--info-fd` receives `{"child-pid": N, "<ns>-namespace": ID, ...}` once the sandbox
//! runs (ids of the cgroup, ipc, mnt, net, pid and uts namespaces it created);
//! `--json-status-fd` receives the same record on one line and, when the command ran,
//! `{ "exit-code": N }` once it ended. Neither descriptor reaches the sandbox.
//!
//! Differences from bubblewrap, on purpose (cellblock's defaults stand unless asked):
//! - the command runs under cellblock's default identity and security (a user namespace
//!   mapping its root to an unprivileged host id, no capabilities, the default seccomp
//!   filter, masked `/proc` paths, a fresh `/dev`), where bubblewrap run by root keeps
//!   root's identity and capabilities. `--cap-add CAP` keeps a capability;
//!   `--cap-add ALL` keeps all of them *and* turns on
//!   [`nesting`](cellblock::ContainerBuilder::nesting) with masked paths off, which is
//!   what bubblewrap's `--cap-add ALL` is used for: running a sandbox inside the sandbox.
//!   **Risk:** the command then reaches the kernel's namespace and mount code.
//! - the root: with `--bind / /` (bubblewrap's idiom for "the host's tree", anywhere in
//!   the options) the sandbox sees the host's tree under its other mounts, as cellblock
//!   does without a root filesystem; without it the root is an empty tmpfs, as in
//!   bubblewrap, laid over an empty directory `$TMPDIR/bwrap-root.<pid>` that is removed
//!   when the sandbox ends (left behind if this process is killed). A bare command name
//!   is then looked up before the start in the caller's `PATH` through the bind mounts
//!   given (bubblewrap runs `execvp` inside); only `/` can be bound on `/`;
//! - `--lock-file DEST` locks DEST as the caller sees it (an open-file-description lock,
//!   which conflicts with `fcntl` locks as bubblewrap's does) on a descriptor the sandbox
//!   inherits, so the lock is held until the last process of the sandbox is gone;
//! - descriptors the caller passes without close-on-exec reach the command, as in
//!   bubblewrap (cellblock closes them by default). **Risk:** a leaked directory or
//!   socket descriptor reaches around the namespaces;
//! - the caller's environment reaches the command, as in bubblewrap (cellblock starts
//!   from a clean one by default). **Risk:** secrets in it reach the command.

use cellblock::{Capability, Container, ContainerBuilder, Namespaces, Seccomp};
use std::collections::VecDeque;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::str::FromStr;

/// bubblewrap's own failures exit with 1.
fn die(msg: impl std::fmt::Display) -> ! {
    eprintln!("bwrap: {msg}");
    std::process::exit(1);
}

fn usage(argv0: &str) -> String {
    format!(
        "usage: {argv0} [OPTIONS...] [--] COMMAND [ARGS...]\n\n\
         \x20   --help                       Print this help\n\
         \x20   --args FD                    Parse NUL-separated args from FD\n\
         \x20   --unshare-all                Unshare every namespace we support by default\n\
         \x20   --share-net                  Retain the network namespace (with --unshare-all)\n\
         \x20   --unshare-user               Create new user namespace\n\
         \x20   --unshare-user-try           Create new user namespace if possible\n\
         \x20   --unshare-ipc                Create new ipc namespace\n\
         \x20   --unshare-pid                Create new pid namespace\n\
         \x20   --unshare-net                Create new network namespace\n\
         \x20   --unshare-uts                Create new uts namespace\n\
         \x20   --unshare-cgroup             Create new cgroup namespace\n\
         \x20   --unshare-cgroup-try         Create new cgroup namespace if possible\n\
         \x20   --uid UID                    Custom uid in the sandbox\n\
         \x20   --gid GID                    Custom gid in the sandbox\n\
         \x20   --hostname NAME              Custom hostname in the sandbox (needs --unshare-uts)\n\
         \x20   --chdir DIR                  Change directory to DIR\n\
         \x20   --clearenv                   Unset all environment variables\n\
         \x20   --setenv VAR VALUE           Set an environment variable\n\
         \x20   --unsetenv VAR               Unset an environment variable\n\
         \x20   --lock-file DEST             Take a lock on DEST while the sandbox is running\n\
         \x20   --bind SRC DEST              Bind mount the host path SRC on DEST\n\
         \x20   --bind-try SRC DEST          Equal to --bind but ignores a missing SRC\n\
         \x20   --dev-bind SRC DEST          Bind mount the host path SRC on DEST\n\
         \x20   --dev-bind-try SRC DEST      Equal to --dev-bind but ignores a missing SRC\n\
         \x20   --ro-bind SRC DEST           Bind mount the host path SRC readonly on DEST\n\
         \x20   --ro-bind-try SRC DEST       Equal to --ro-bind but ignores a missing SRC\n\
         \x20   --remount-ro DEST            Remount DEST as readonly\n\
         \x20   --proc DEST                  Mount new procfs on DEST (only /proc)\n\
         \x20   --dev DEST                   Mount new dev on DEST (only /dev)\n\
         \x20   --tmpfs DEST                 Mount new tmpfs on DEST\n\
         \x20   --dir DEST                   Create dir at DEST\n\
         \x20   --symlink SRC DEST           Create symlink at DEST with target SRC\n\
         \x20   --chmod OCTAL PATH           Change permissions of PATH\n\
         \x20   --perms OCTAL                Set permissions of the next --dir or --tmpfs\n\
         \x20   --info-fd FD                 Write information about the running container to FD\n\
         \x20   --json-status-fd FD          Write container status to FD as multiple JSON documents\n\
         \x20   --new-session                Create a new terminal session (always on)\n\
         \x20   --die-with-parent            Kills with SIGKILL child process when its parent dies\n\
         \x20   --as-pid-1                   Do not install a reaper process with PID=1\n\
         \x20   --cap-add CAP                Add cap CAP when running (ALL: every one, and nesting)\n\
         \x20   --cap-drop CAP               Drop cap CAP when running\n\
         \x20   --seccomp FD                 Load and use seccomp rules from FD (not repeatable)\n\
         \x20   --add-seccomp-fd FD          Load and use seccomp rules from FD (repeatable)\n"
    )
}

/// Takes ownership of descriptor `fd` given on the command line, after checking it is
/// open; marks it close-on-exec so that it does not reach the sandbox.
fn take_fd(fd: &str, option: &str) -> OwnedFd {
    let n: RawFd = fd
        .parse()
        .ok()
        .filter(|n| *n >= 0)
        .unwrap_or_else(|| die(format!("Invalid fd: {fd}")));
    // SAFETY: F_GETFD/F_SETFD on any number only reads or sets its flags.
    let flags = unsafe { libc::fcntl(n, libc::F_GETFD) };
    if flags < 0 || unsafe { libc::fcntl(n, libc::F_SETFD, flags | libc::FD_CLOEXEC) } < 0 {
        die(format!(
            "{option} {fd}: {}",
            std::io::Error::last_os_error()
        ));
    }
    // SAFETY: the caller handed this open descriptor to us on the command line; nothing
    // else in this process owns it.
    unsafe { OwnedFd::from_raw_fd(n) }
}

/// The BPF program on descriptor `fd` (bwrap's `--seccomp`/`--add-seccomp-fd`): read to
/// its end, then closed; whole 8-byte instructions only.
fn read_program(fd: &str, option: &str) -> Vec<u8> {
    use std::io::Read;
    // Not through `take_fd`: a descriptor used twice is read once and then closed, which
    // bwrap reports as unreadable data, not as an invalid fd.
    let n: RawFd = fd
        .parse()
        .ok()
        .filter(|n| *n >= 0)
        .unwrap_or_else(|| die(format!("Invalid fd: {fd}")));
    let _ = option;
    // SAFETY: a descriptor handed to us on the command line; closed when `file` drops. A
    // number that is not open fails the read with EBADF below, before any close.
    let mut file = std::mem::ManuallyDrop::new(unsafe { File::from_raw_fd(n) });
    let mut data = Vec::new();
    if let Err(e) = file.read_to_end(&mut data) {
        die(format!("Can't read seccomp data: {e}"));
    }
    drop(std::mem::ManuallyDrop::into_inner(file));
    if data.len() % 8 != 0 {
        die("Invalid seccomp data, must be multiple of 8");
    }
    data
}

fn octal(s: &str) -> u32 {
    u32::from_str_radix(s, 8)
        .ok()
        .filter(|m| *m <= 0o7777)
        .unwrap_or_else(|| die(format!("Permissions {s} are not a valid octal number")))
}

fn id(s: &str, what: &str) -> u32 {
    s.parse()
        .unwrap_or_else(|_| die(format!("Invalid {what}: {s}")))
}

fn capability(s: &str) -> Capability {
    let name = s.to_ascii_uppercase();
    let name = if name.starts_with("CAP_") {
        name
    } else {
        format!("CAP_{name}")
    };
    Capability::from_str(&name).unwrap_or_else(|_| die(format!("{s} is not a valid capability")))
}

/// Takes an open-file-description write lock on `path` (a `fcntl` lock that follows the
/// descriptor, so the sandbox, which inherits it, holds it until its last process is
/// gone). Fails, as bubblewrap does, if someone else holds a lock on it.
fn lock_file(path: &str) -> OwnedFd {
    use std::os::unix::fs::OpenOptionsExt;
    // No O_CLOEXEC: the descriptor is meant to reach the sandbox.
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .custom_flags(0)
        .open(path)
        .unwrap_or_else(|e| die(format!("Unable to open lock file {path}: {e}")));
    let fd: OwnedFd = f.into();
    let raw = std::os::fd::AsRawFd::as_raw_fd(&fd);
    // std opens with O_CLOEXEC whatever the flags: clear it.
    // SAFETY: flag changes and a lock request on a descriptor we own.
    unsafe {
        libc::fcntl(raw, libc::F_SETFD, 0);
        let mut l: libc::flock = std::mem::zeroed();
        l.l_type = libc::F_WRLCK as libc::c_short;
        l.l_whence = libc::SEEK_SET as libc::c_short;
        if libc::fcntl(raw, libc::F_OFD_SETLK, &l) < 0 {
            die(format!(
                "Unable to lock file {path}: {}",
                std::io::Error::last_os_error()
            ));
        }
    }
    fd
}

/// `--die-with-parent`: this process gets SIGKILL when its parent dies; the sandbox
/// follows, since it dies with its supervisor (cellblock's default).
fn die_with_parent() {
    // SAFETY: plain prctl and getppid calls.
    unsafe {
        let parent = libc::getppid();
        if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) != 0 {
            die(format!("prctl: {}", std::io::Error::last_os_error()));
        }
        // The parent may have died before the prctl: then nobody will signal us.
        if libc::getppid() != parent {
            libc::raise(libc::SIGKILL);
        }
    }
}

/// One option's effect on the builder, applied in command-line order once the command
/// (which comes last) has made the builder.
type Op = Box<dyn FnOnce(&mut ContainerBuilder)>;

/// Everything parsed from the command line.
struct Options {
    builder: ContainerBuilder,
    namespaces: Namespaces,
    info_fd: Option<File>,
    json_fd: Option<File>,
    locks: Vec<OwnedFd>,
    /// The empty directory under the root tmpfs, removed once the sandbox is gone.
    empty_root: Option<std::path::PathBuf>,
}

/// Where bubblewrap's `execvp` inside an empty root would find a bare command name: the
/// first directory of `PATH` whose entry, seen through the bind mounts (DEST, SRC) given,
/// is an executable file on the host. Other names are returned as they are.
fn lookup(name: &str, visible: &[(String, String)]) -> String {
    use std::os::unix::fs::PermissionsExt;
    if name.contains('/') {
        return name.to_string();
    }
    let path = std::env::var_os("PATH").unwrap_or_else(|| cellblock::DEFAULT_PATH.into());
    for dir in std::env::split_paths(&path).filter(|d| d.is_absolute()) {
        let inside = dir.join(name);
        let host = visible
            .iter()
            .rev() // the last mount on a path is the one seen
            .find_map(|(dst, src)| Some(Path::new(src).join(inside.strip_prefix(dst).ok()?)));
        if host
            .and_then(|h| std::fs::metadata(h).ok())
            .is_some_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        {
            return inside.to_string_lossy().into_owned();
        }
    }
    name.to_string()
}

fn parse(argv0: &str, mut args: VecDeque<String>) -> Options {
    let mut ns = Namespaces::MOUNT; // bubblewrap always makes a mount namespace
    let mut ops: Vec<Op> = Vec::new();
    let (mut info_fd, mut json_fd, mut locks) = (None, None, Vec::new());
    let (mut as_pid_1, mut perms) = (false, None::<u32>);
    // The capabilities kept: every one (`--cap-add ALL`, which also means nesting), or a
    // list.
    let (mut all_caps, mut nest, mut caps) = (false, false, Vec::<Capability>::new());
    let (mut main_program, mut added_programs) = (None::<Vec<u8>>, Vec::<Vec<u8>>::new());
    let mut command = Vec::new();
    // Whether `--bind / /` came first; otherwise the root is an empty tmpfs, on which the
    // bind mounts (DEST, SRC) are all that is visible of the host.
    let (mut host_root, mut visible) = (false, Vec::<(String, String)>::new());
    let value = |args: &mut VecDeque<String>, opt: &str| {
        args.pop_front()
            .unwrap_or_else(|| die(format!("{opt} takes an argument")))
    };
    while let Some(a) = args.pop_front() {
        let opt = a.as_str();
        match opt {
            "--help" => {
                print!("{}", usage(argv0));
                std::process::exit(0);
            }
            "--args" => {
                let mut f = File::from(take_fd(&value(&mut args, opt), opt));
                let mut data = Vec::new();
                f.read_to_end(&mut data)
                    .unwrap_or_else(|e| die(format!("Can't read --args data: {e}")));
                let spliced: Vec<String> = data
                    .split(|b| *b == 0)
                    .filter(|s| !s.is_empty())
                    .map(|s| String::from_utf8_lossy(s).into_owned())
                    .collect();
                for s in spliced.into_iter().rev() {
                    args.push_front(s);
                }
            }
            "--unshare-user" | "--unshare-user-try" => ns |= Namespaces::USER,
            "--unshare-ipc" => ns |= Namespaces::IPC,
            "--unshare-pid" => ns |= Namespaces::PID,
            "--unshare-net" => ns |= Namespaces::NET,
            "--unshare-uts" => ns |= Namespaces::UTS,
            "--unshare-cgroup" | "--unshare-cgroup-try" => ns |= Namespaces::CGROUP,
            "--unshare-all" => {
                ns |= Namespaces::USER
                    | Namespaces::IPC
                    | Namespaces::PID
                    | Namespaces::NET
                    | Namespaces::UTS
                    | Namespaces::CGROUP
            }
            "--share-net" => ns -= Namespaces::NET,
            "--uid" => {
                let uid = id(&value(&mut args, opt), "uid");
                ops.push(Box::new(move |b| {
                    b.uid(uid);
                }));
            }
            "--gid" => {
                let gid = id(&value(&mut args, opt), "gid");
                ops.push(Box::new(move |b| {
                    b.gid(gid);
                }));
            }
            "--hostname" => {
                let h = value(&mut args, opt);
                ops.push(Box::new(move |b| {
                    b.hostname(h);
                }));
            }
            "--chdir" => {
                let d = value(&mut args, opt);
                ops.push(Box::new(move |b| {
                    b.current_dir(d);
                }));
            }
            "--clearenv" => ops.push(Box::new(|b| {
                b.env_clear();
            })),
            "--setenv" => {
                let (k, v) = (value(&mut args, opt), value(&mut args, opt));
                ops.push(Box::new(move |b| {
                    b.env(k, v);
                }));
            }
            "--unsetenv" => {
                let k = value(&mut args, opt);
                ops.push(Box::new(move |b| {
                    b.env_remove(k);
                }));
            }
            "--lock-file" => locks.push(lock_file(&value(&mut args, opt))),
            "--bind" | "--dev-bind" | "--ro-bind" | "--bind-try" | "--dev-bind-try"
            | "--ro-bind-try" => {
                let (src, dst) = (value(&mut args, opt), value(&mut args, opt));
                if opt.ends_with("-try") && std::fs::symlink_metadata(&src).is_err() {
                    continue;
                }
                // The host's tree as the sandbox's: no root filesystem of our own.
                if dst.trim_end_matches('/').is_empty() {
                    if src != "/" {
                        die(format!("Only the host's / can be bound on /, not {src}"));
                    }
                    host_root = true;
                    continue;
                }
                visible.push((dst.clone(), src.clone()));
                let ro = opt.starts_with("--ro-");
                ops.push(Box::new(move |b| {
                    if ro {
                        b.bind_ro(src, dst);
                    } else {
                        b.bind(src, dst);
                    }
                }));
            }
            "--remount-ro" => {
                let d = value(&mut args, opt);
                ops.push(Box::new(move |b| {
                    b.remount_ro(d);
                }));
            }
            "--proc" | "--dev" => {
                let d = value(&mut args, opt);
                let want = if opt == "--proc" { "/proc" } else { "/dev" };
                if d.trim_end_matches('/') != want {
                    die(format!("{opt} can only be mounted on {want}, not {d}"));
                }
                let proc = opt == "--proc";
                ops.push(Box::new(move |b| {
                    if proc {
                        b.mount_proc();
                    } else {
                        b.mount_dev();
                    }
                }));
            }
            "--tmpfs" => {
                let d = value(&mut args, opt);
                let mode = perms.take();
                ops.push(Box::new(move |b| {
                    b.tmpfs(&d);
                    if let Some(m) = mode {
                        b.chmod(&d, m);
                    }
                }));
            }
            "--dir" => {
                let d = value(&mut args, opt);
                let mode = perms.take().unwrap_or(0o755);
                ops.push(Box::new(move |b| {
                    b.dir(d, mode);
                }));
            }
            "--symlink" => {
                let (src, dst) = (value(&mut args, opt), value(&mut args, opt));
                ops.push(Box::new(move |b| {
                    b.symlink(src, dst);
                }));
            }
            "--chmod" => {
                let (m, p) = (octal(&value(&mut args, opt)), value(&mut args, opt));
                ops.push(Box::new(move |b| {
                    b.chmod(p, m);
                }));
            }
            "--perms" => perms = Some(octal(&value(&mut args, opt))),
            // A raw BPF program read from a descriptor (read now, then closed, as bwrap
            // does): `--seccomp` replaces the default filter, `--add-seccomp-fd` adds one.
            "--seccomp" | "--add-seccomp-fd" => {
                let fd = value(&mut args, opt);
                let adding = opt == "--add-seccomp-fd";
                match (&main_program, adding, added_programs.is_empty()) {
                    (_, false, false) => die("--seccomp cannot be combined with --add-seccomp-fd"),
                    (Some(_), true, _) => die("--add-seccomp-fd cannot be combined with --seccomp"),
                    _ => {}
                }
                let program = read_program(&fd, opt);
                if adding {
                    added_programs.push(program);
                } else {
                    main_program = Some(program);
                }
            }
            "--info-fd" => info_fd = Some(File::from(take_fd(&value(&mut args, opt), opt))),
            "--json-status-fd" => json_fd = Some(File::from(take_fd(&value(&mut args, opt), opt))),
            "--die-with-parent" => die_with_parent(),
            "--as-pid-1" => as_pid_1 = true,
            // cellblock always starts the command in a new session.
            "--new-session" => {}
            "--cap-add" => match value(&mut args, opt).as_str() {
                "ALL" | "all" => (all_caps, nest) = (true, true),
                c => caps.push(capability(c)),
            },
            "--cap-drop" => match value(&mut args, opt).as_str() {
                "ALL" | "all" => {
                    (all_caps, nest) = (false, false);
                    caps.clear();
                }
                c => {
                    let c = capability(c);
                    if all_caps {
                        all_caps = false;
                        caps = caps::all().into_iter().collect();
                    }
                    caps.retain(|k| *k != c);
                }
            },
            "--" => {
                command.extend(args.drain(..));
                break;
            }
            o if o.starts_with("--") => die(format!("Unknown option {o}")),
            _ => {
                command.push(a);
                command.extend(args.drain(..));
                break;
            }
        }
    }
    if command.is_empty() {
        eprint!("{}", usage(argv0));
        std::process::exit(1);
    }
    if as_pid_1 && !ns.contains(Namespaces::PID) {
        die("Specifying --as-pid-1 requires --unshare-pid");
    }
    if as_pid_1 && !locks.is_empty() {
        die("Specifying --as-pid-1 and --lock-file is not permitted");
    }
    let program = if host_root {
        command[0].clone()
    } else {
        lookup(&command[0], &visible)
    };
    let mut b = Container::builder(&program);
    let empty_root = if host_root {
        None
    } else {
        // bubblewrap's root is an empty tmpfs: a root filesystem on an empty directory of
        // ours, covered by a tmpfs, with the mounts asked for on it.
        let dir = std::env::temp_dir().join(format!("bwrap-root.{}", std::process::id()));
        std::fs::create_dir(&dir)
            .unwrap_or_else(|e| die(format!("Creating {}: {e}", dir.display())));
        b.rootfs(&dir).tmpfs("/");
        Some(dir)
    };
    // As bubblewrap: the caller's environment and inherited descriptors reach the command.
    b.args(&command[1..])
        .namespaces(ns)
        .env_inherit()
        .inherit_fds(true);
    if ns.contains(Namespaces::PID) {
        b.init(!as_pid_1);
    }
    if let Some(p) = main_program {
        b.seccomp(Seccomp::from_bpf(p));
    }
    for p in added_programs {
        b.add_seccomp(Seccomp::from_bpf(p));
    }
    if all_caps {
        b.keep_all_capabilities();
    } else if !caps.is_empty() {
        b.capabilities(caps);
    }
    if nest {
        // Risk: the command reaches the kernel's namespace and mount code.
        b.nesting(true).masked_paths(false);
    }
    for op in ops {
        op(&mut b);
    }
    Options {
        builder: b,
        namespaces: ns,
        info_fd,
        json_fd,
        locks,
        empty_root,
    }
}

/// `"<ns>-namespace": ID` pairs, in bubblewrap's order, for the namespaces the sandbox
/// created (bubblewrap leaves the user namespace out).
fn namespace_fields(c: &Container, ns: Namespaces) -> Vec<(&'static str, u64)> {
    // A command that already exited has no namespaces left to read: bubblewrap too
    // leaves out what it cannot read.
    let Ok(ids) = c.namespace_ids() else {
        return Vec::new();
    };
    [
        ("cgroup", Namespaces::CGROUP),
        ("ipc", Namespaces::IPC),
        ("mnt", Namespaces::MOUNT),
        ("net", Namespaces::NET),
        ("pid", Namespaces::PID),
        ("uts", Namespaces::UTS),
    ]
    .into_iter()
    .filter(|(_, k)| ns.contains(*k))
    .filter_map(|(name, k)| Some((name, ids.get(k)?)))
    .collect()
}

fn write_or_die(f: &mut File, text: &str) {
    f.write_all(text.as_bytes())
        .unwrap_or_else(|e| die(format!("Write to info_fd: {e}")));
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut argv = std::env::args();
    let argv0 = argv.next().unwrap_or_else(|| "bwrap".into());
    let mut o = parse(&argv0, argv.collect());
    let spawned = o.builder.spawn().await;
    let remove_root = |o: &Options| {
        if let Some(d) = &o.empty_root {
            let _ = std::fs::remove_dir(d);
        }
    };
    let mut c = spawned.unwrap_or_else(|e| {
        remove_root(&o);
        die(e)
    });
    // The sandbox holds the locks now (it inherited the descriptors).
    o.locks.clear();
    let fields = if o.info_fd.is_some() || o.json_fd.is_some() {
        namespace_fields(&c, o.namespaces)
    } else {
        Vec::new()
    };
    if let Some(mut f) = o.info_fd.take() {
        let mut s = format!("{{\n    \"child-pid\": {}", c.pid());
        for (name, id) in &fields {
            s += &format!(",\n    \"{name}-namespace\": {id}");
        }
        write_or_die(&mut f, &(s + "\n}\n"));
    }
    if let Some(f) = o.json_fd.as_mut() {
        let mut s = format!("{{ \"child-pid\": {}", c.pid());
        for (name, id) in &fields {
            s += &format!(", \"{name}-namespace\": {id}");
        }
        write_or_die(f, &(s + " }\n"));
    }
    let status = c.wait().await;
    remove_root(&o);
    let status = status.unwrap_or_else(|e| die(e));
    let code = status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
    if let Some(f) = o.json_fd.as_mut() {
        // Best effort, as bubblewrap: the exit status matters more than the record.
        let _ = f.write_all(format!("{{ \"exit-code\": {code} }}\n").as_bytes());
    }
    std::process::exit(code);
}
