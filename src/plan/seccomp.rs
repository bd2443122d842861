//! The seccomp compiler: a [`Seccomp`] policy to a classic BPF program (`seccomp/bpf.rs`
//! builds the decision tree), with a cache, since every spawn of a builder asks for the
//! same few policies.
//!
//! Pure: no system calls, no descriptors. The child only hands the programs to the kernel
//! (`child/security.rs`).

use std::collections::BTreeMap;
use std::sync::Arc;

use libc::sock_filter;

use crate::builder::security::{
    default_denied, Seccomp, SecurityConfig, CLONE_NS_FLAGS, DENIED_IOCTLS, DENIED_SOCKET_FAMILIES,
    NESTING_SYSCALLS, SECCOMP_ALWAYS_ALLOWED,
};
use crate::error::{Error, Result};

mod bpf;

/// The programs to install, in order: the [`seccomp`](crate::ContainerBuilder::seccomp)
/// policy's, then each [`add_seccomp`](crate::ContainerBuilder::add_seccomp)'s. A policy
/// without rules installs nothing.
pub(crate) fn programs(cfg: &SecurityConfig) -> Result<Vec<Arc<[sock_filter]>>> {
    std::iter::once(&cfg.seccomp)
        .chain(&cfg.more_seccomp)
        .filter(|p| p.is_enabled())
        .map(|p| compiled_seccomp(p, cfg.nesting))
        .collect()
}

/// The compiled program for a policy, cached: compiling costs far more than a lookup, and
/// every spawn of a builder asks for the same few policies. The cache is keyed by the
/// whole policy, so a changed policy compiles anew; it holds a handful of entries at most
/// in practice (and is bounded anyway).
fn compiled_seccomp(policy: &Seccomp, nesting: bool) -> Result<Arc<[sock_filter]>> {
    use std::collections::HashMap;
    use std::sync::Mutex;
    type Cache = Mutex<HashMap<(Seccomp, bool), Arc<[sock_filter]>>>;
    static CACHE: std::sync::OnceLock<Cache> = std::sync::OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let key = (policy.clone(), nesting);
    if let Some(p) = cache.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
        return Ok(p.clone());
    }
    let prog: Arc<[sock_filter]> = compile_seccomp(policy, nesting)?.into();
    let mut c = cache.lock().unwrap_or_else(|e| e.into_inner());
    if c.len() >= 64 {
        c.clear();
    }
    c.insert(key, prog.clone());
    Ok(prog)
}

/// A [`Seccomp::from_bpf`] program, checked for what can be checked here.
fn raw_program(policy: &Seccomp, raw: &[u8]) -> Result<Vec<sock_filter>> {
    let bare = Seccomp {
        raw: policy.raw.clone(),
        ..Seccomp::disabled()
    };
    if *policy != bare {
        return Err(Error::Security(
            "seccomp: a program from from_bpf() takes no rules of cellblock's (deny, allow, ...): \
             put them in a filter of their own with add_seccomp()"
                .into(),
        ));
    }
    const BPF_MAXINSNS: usize = 4096;
    let n = raw.len() / 8;
    if !raw.len().is_multiple_of(8) || n == 0 || n > BPF_MAXINSNS {
        return Err(Error::Security(format!(
            "seccomp: a BPF program of {} bytes: it must be 1 to {BPF_MAXINSNS} instructions of 8 bytes each",
            raw.len()
        )));
    }
    Ok(raw
        .chunks_exact(8)
        .map(|i| sock_filter {
            code: u16::from_ne_bytes([i[0], i[1]]),
            jt: i[2],
            jf: i[3],
            k: u32::from_ne_bytes([i[4], i[5], i[6], i[7]]),
        })
        .collect())
}

/// Compiles the policy to a BPF program for the build target.
fn compile_seccomp(policy: &Seccomp, nesting: bool) -> Result<Vec<sock_filter>> {
    if let Some(raw) = &policy.raw {
        return raw_program(policy, raw);
    }
    use bpf::{ArgTest, Verdict};
    let number = |nr: i64| {
        u32::try_from(nr)
            .map_err(|_| Error::Security(format!("seccomp: {nr} is not a system call number")))
    };
    let errno_of = |e: i32, nr: i64| {
        u16::try_from(e)
            .ok()
            .filter(|e| (1..=4095).contains(e))
            .ok_or_else(|| {
                Error::Security(format!(
                    "seccomp: errno {e} for system call {nr} is outside 1..=4095 (0 would fake success; the kernel caps errnos at 4095)"
                ))
            })
    };
    // Denied outright: the default profile's calls (unless nesting lifts them), the
    // caller's, minus what the caller allowed. Without the default profile only the
    // caller's own denials.
    let mut deny: BTreeMap<i64, i32> = if policy.enabled {
        default_denied()
            .into_iter()
            .map(|nr| (nr, libc::EPERM))
            .collect()
    } else {
        BTreeMap::new()
    };
    if nesting {
        for nr in NESTING_SYSCALLS {
            deny.remove(&nr);
        }
    }
    deny.extend(&policy.deny);
    for nr in &policy.allow {
        deny.remove(nr);
    }
    let mut rules = BTreeMap::new();
    for (&nr, &e) in &deny {
        rules.insert(number(nr)?, Verdict::Errno(errno_of(e, nr)?));
    }
    let otherwise = policy
        .otherwise
        .map(|e| {
            errno_of(e, -1).map_err(|_| {
                Error::Security(format!("seccomp: allow_list errno {e} is outside 1..=4095"))
            })
        })
        .transpose()?;
    if otherwise.is_some() {
        for &nr in policy.allow.iter().chain(&SECCOMP_ALWAYS_ALLOWED) {
            rules.entry(number(nr)?).or_insert(Verdict::Allow);
        }
    }
    // Calls allowed for some argument values only (allow_arg): in an allow list, unless
    // allowed for every value.
    if !policy.allow_args.is_empty() {
        let Some(otherwise) = otherwise else {
            return Err(Error::Security(
                "seccomp: allow_arg needs an allow_list (elsewhere every call is allowed already)"
                    .into(),
            ));
        };
        for &(nr, arg, value) in &policy.allow_args {
            if arg > 5 {
                return Err(Error::Security(format!(
                    "seccomp: allow_arg on system call {nr}: argument {arg} does not exist (0 to 5)"
                )));
            }
            let n = number(nr)?;
            // A call allowed for every argument, or denied outright, keeps its verdict.
            if let Verdict::AllowIf { allow, .. } = rules.entry(n).or_insert(Verdict::AllowIf {
                deny: Vec::new(),
                errno: libc::EPERM as u16,
                allow: Vec::new(),
                otherwise,
            }) {
                allow.push(ArgTest::eq(arg, value));
            }
        }
    }
    // allow_if: the same, with 64-bit conditions, all of which must hold.
    if !policy.allow_ifs.is_empty() {
        let Some(otherwise) = otherwise else {
            return Err(Error::Security(
                "seccomp: allow_if needs an allow_list (elsewhere every call is allowed already)"
                    .into(),
            ));
        };
        for (nr, conds) in &policy.allow_ifs {
            if let Some(c) = conds.iter().find(|c| c.arg > 5) {
                return Err(Error::Security(format!(
                    "seccomp: allow_if on system call {nr}: argument {} does not exist (0 to 5)",
                    c.arg
                )));
            }
            if let Verdict::AllowIf { allow, .. } =
                rules.entry(number(*nr)?).or_insert(Verdict::AllowIf {
                    deny: Vec::new(),
                    errno: libc::EPERM as u16,
                    allow: Vec::new(),
                    otherwise,
                })
            {
                allow.push(ArgTest::all(conds));
            }
        }
    }
    // Argument tests join a call's verdict: nothing for a call denied outright, and, in an
    // allow list, nothing for a call not allowed (the list's errno covers every argument).
    let add_tests = |rules: &mut BTreeMap<u32, Verdict>, n: u32, tests: Vec<ArgTest>| {
        if tests.is_empty() {
            return;
        }
        match rules.get_mut(&n) {
            Some(Verdict::Errno(_)) => {}
            Some(Verdict::DenyIf { tests: t, .. }) => t.extend(tests),
            Some(Verdict::AllowIf { deny, .. }) => deny.extend(tests),
            Some(v @ Verdict::Allow) => {
                *v = Verdict::DenyIf {
                    tests,
                    errno: libc::EPERM as u16,
                }
            }
            None if otherwise.is_none() => {
                rules.insert(
                    n,
                    Verdict::DenyIf {
                        tests,
                        errno: libc::EPERM as u16,
                    },
                );
            }
            None => {}
        }
    };
    let mut by_call: BTreeMap<i64, Vec<ArgTest>> = BTreeMap::new();
    for &(nr, arg, value, e) in &policy.arg_rules {
        if arg > 5 {
            return Err(Error::Security(format!(
                "seccomp: deny_arg on system call {nr}: argument {arg} does not exist (0 to 5)"
            )));
        }
        let test = ArgTest::eq(arg, value).with_errno(errno_of(e, nr)?);
        by_call.entry(nr).or_default().push(test);
    }
    for (nr, conds, e) in &policy.deny_ifs {
        if let Some(c) = conds.iter().find(|c| c.arg > 5) {
            return Err(Error::Security(format!(
                "seccomp: deny_if on system call {nr}: argument {} does not exist (0 to 5)",
                c.arg
            )));
        }
        let test = ArgTest::all(conds).with_errno(errno_of(*e, *nr)?);
        by_call.entry(*nr).or_default().push(test);
    }
    for (nr, tests) in by_call {
        add_tests(&mut rules, number(nr)?, tests);
    }
    if !policy.enabled {
        return bpf::compile_list(&rules, otherwise);
    }
    // The default profile's argument rules, each unless the call is allowed.
    let mut deny_if = |nr: i64, tests: Vec<ArgTest>| -> Result<()> {
        if !policy.allow.contains(&nr) {
            add_tests(&mut rules, number(nr)?, tests);
        }
        Ok(())
    };
    // Docker's profile has one more argument rule we do not copy: personality() only
    // with 5 values (refusing ADDR_NO_RANDOMIZE, READ_IMPLIES_EXEC, ...). Those flags
    // weaken the workload's own process and its children (its ASLR, its W^X), which are
    // inside the container anyway; they reach nothing of the host's, and tools such as
    // `setarch -R` and debuggers need them.
    //
    // socket(family, ..), socketpair(family, ..): family is the first argument.
    let families: Vec<ArgTest> = DENIED_SOCKET_FAMILIES
        .iter()
        .filter(|f| !policy.allow_families.contains(f))
        .map(|&f| ArgTest::eq(0, f as u32))
        .collect();
    deny_if(libc::SYS_socket, families.clone())?;
    deny_if(libc::SYS_socketpair, families)?;
    // ioctl(fd, request, ..): the request is the second argument.
    let requests = DENIED_IOCTLS.iter().map(|&r| ArgTest::eq(1, r)).collect();
    deny_if(libc::SYS_ioctl, requests)?;
    if !nesting {
        // clone() itself stays allowed (fork, threads); only namespace flags are refused.
        // x86_64 and aarch64 both pass the flags as the first argument, and every
        // CLONE_NEW* bit is in its low 32 bits.
        let mask = CLONE_NS_FLAGS.iter().fold(0u32, |m, &f| m | f as u32);
        deny_if(libc::SYS_clone, vec![ArgTest::any_bit(0, mask)])?;
    }
    // Unless nesting (or allowed), clone3 fails with ENOSYS: its flags live in memory the
    // filter cannot read, and ENOSYS makes libc fall back to clone(), whose flags the
    // filter does check (what Docker does). Denied explicitly, it fails with that errno.
    if policy.deny.contains_key(&libc::SYS_clone3) {
        // Denied explicitly: already in `rules` with its errno.
    } else if !nesting && !policy.allow.contains(&libc::SYS_clone3) {
        rules.insert(
            number(libc::SYS_clone3)?,
            Verdict::Errno(libc::ENOSYS as u16),
        );
    }
    bpf::compile(&rules)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_filter_compiles_and_starts_with_arch_check() {
        let prog = compile_seccomp(&Seccomp::default_profile(), false).unwrap();
        assert!(prog.len() > 40);
        // First instruction loads seccomp_data.arch (offset 4).
        assert_eq!(prog[0].k, 4);
    }

    #[test]
    fn default_filter_decides_as_documented() {
        let run = |prog: &[libc::sock_filter], nr: i64, arg0: u32| {
            let arch = bpf::tests::run(prog, 0, 0, 0).0;
            assert_eq!(arch, libc::SECCOMP_RET_KILL_PROCESS, "wrong arch is killed");
            let native = bpf::native_arch().unwrap();
            bpf::tests::run(prog, native, nr as u32, arg0).0
        };
        let eperm = libc::SECCOMP_RET_ERRNO | libc::EPERM as u32;
        let enosys = libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32;
        let allow = libc::SECCOMP_RET_ALLOW;
        let default = compile_seccomp(&Seccomp::default_profile(), false).unwrap();
        assert_eq!(run(&default, libc::SYS_mount, 0), eperm);
        assert_eq!(run(&default, libc::SYS_keyctl, 0), eperm);
        assert_eq!(run(&default, libc::SYS_read, 0), allow);
        assert_eq!(run(&default, libc::SYS_clone, 0), allow);
        let newuser = libc::CLONE_NEWUSER as u32;
        assert_eq!(run(&default, libc::SYS_clone, newuser), eperm);
        assert_eq!(run(&default, libc::SYS_clone3, 0), enosys);
        let nesting = compile_seccomp(&Seccomp::default_profile(), true).unwrap();
        assert_eq!(run(&nesting, libc::SYS_mount, 0), allow);
        assert_eq!(run(&nesting, libc::SYS_clone, newuser), allow);
        assert_eq!(run(&nesting, libc::SYS_keyctl, 0), eperm);
    }

    /// The argument rules: AF_VSOCK and AF_ALG refused to socket() and socketpair() (also
    /// with junk in the upper half of the register, which the kernel ignores), TIOCSTI and
    /// TIOCLINUX refused to ioctl(); the other families and requests pass; each rule can be
    /// lifted, and a denial stays a denial.
    #[test]
    // `libc::Ioctl` is `c_ulong` on glibc (the cast is then a no-op) but `c_int` on musl.
    #[allow(clippy::unnecessary_cast)]
    fn argument_rules_socket_families_and_ioctls() {
        let native = bpf::native_arch().unwrap();
        let run = |prog: &[libc::sock_filter], nr: i64, args: [u64; 6]| {
            bpf::tests::run_args(prog, native, nr as u32, args).0
        };
        let a0 = |v: i32| [v as u32 as u64, 1, 0, 0, 0, 0];
        let a1 = |v: u64| [3, v, 0, 0, 0, 0];
        let eperm = libc::SECCOMP_RET_ERRNO | libc::EPERM as u32;
        let allow = libc::SECCOMP_RET_ALLOW;
        let (sock, pair, ioctl) = (libc::SYS_socket, libc::SYS_socketpair, libc::SYS_ioctl);
        let tiocsti = libc::TIOCSTI as u64;
        let tioclinux = libc::TIOCLINUX as u64;

        let default = compile_seccomp(&Seccomp::default_profile(), false).unwrap();
        for nr in [sock, pair] {
            assert_eq!(run(&default, nr, a0(libc::AF_VSOCK)), eperm);
            assert_eq!(run(&default, nr, a0(libc::AF_ALG)), eperm);
            assert_eq!(
                run(&default, nr, [0x7_0000_0000 | 40, 1, 0, 0, 0, 0]),
                eperm
            );
            for f in [
                libc::AF_UNIX,
                libc::AF_INET,
                libc::AF_INET6,
                libc::AF_NETLINK,
                39,
                41,
            ] {
                assert_eq!(run(&default, nr, a0(f)), allow, "family {f}");
            }
        }
        assert_eq!(run(&default, ioctl, a1(tiocsti)), eperm);
        assert_eq!(run(&default, ioctl, a1(tioclinux)), eperm);
        assert_eq!(
            run(&default, ioctl, a1(0xffff_ffff_0000_0000 | tiocsti)),
            eperm
        );
        assert_eq!(run(&default, ioctl, a1(libc::TIOCGWINSZ as u64)), allow);
        assert_eq!(run(&default, ioctl, a1(libc::FIONREAD as u64)), allow);
        // The same under nesting.
        let nesting = compile_seccomp(&Seccomp::default_profile(), true).unwrap();
        assert_eq!(run(&nesting, sock, a0(libc::AF_VSOCK)), eperm);
        assert_eq!(run(&nesting, ioctl, a1(tiocsti)), eperm);

        // One family lifted: the other stays denied.
        let vsock = Seccomp::default_profile().allow_socket_family(libc::AF_VSOCK);
        let p = compile_seccomp(&vsock, false).unwrap();
        assert_eq!(run(&p, sock, a0(libc::AF_VSOCK)), allow);
        assert_eq!(run(&p, sock, a0(libc::AF_ALG)), eperm);
        // Both lifted: no rule left on socket.
        let both = vsock.allow_socket_family(libc::AF_ALG);
        let p = compile_seccomp(&both, false).unwrap();
        assert_eq!(run(&p, sock, a0(libc::AF_ALG)), allow);
        // allow() lifts the whole rule; deny() denies every argument.
        let p = compile_seccomp(&Seccomp::default_profile().allow(sock).allow(ioctl), false);
        let p = p.unwrap();
        assert_eq!(run(&p, sock, a0(libc::AF_VSOCK)), allow);
        assert_eq!(
            run(&p, pair, a0(libc::AF_VSOCK)),
            eperm,
            "socketpair keeps its rule"
        );
        assert_eq!(run(&p, ioctl, a1(tiocsti)), allow);
        let p = compile_seccomp(&Seccomp::default_profile().deny(sock), false).unwrap();
        assert_eq!(run(&p, sock, a0(libc::AF_INET)), eperm);
    }

    /// `disabled().deny(nr)` installs a filter denying exactly `nr` (it used to install
    /// nothing); `disabled()` alone installs none.
    #[test]
    fn disabled_profile_with_denials_filters_exactly_those() {
        assert!(!Seccomp::disabled().is_enabled());
        let p = Seccomp::disabled().deny(libc::SYS_ptrace);
        assert!(p.is_enabled());
        assert!(!p.clone().allow(libc::SYS_ptrace).is_enabled());
        let prog = compile_seccomp(&p, false).unwrap();
        let native = bpf::native_arch().unwrap();
        let run = |nr: i64, arg0: u32| bpf::tests::run(&prog, native, nr as u32, arg0).0;
        let eperm = libc::SECCOMP_RET_ERRNO | libc::EPERM as u32;
        assert_eq!(run(libc::SYS_ptrace, 0), eperm);
        for nr in [
            libc::SYS_mount,
            libc::SYS_keyctl,
            libc::SYS_read,
            libc::SYS_clone3,
        ] {
            assert_eq!(run(nr, 0), libc::SECCOMP_RET_ALLOW, "{nr}");
        }
        assert_eq!(
            run(libc::SYS_clone, libc::CLONE_NEWUSER as u32),
            libc::SECCOMP_RET_ALLOW
        );
        assert_eq!(
            run(libc::SYS_socket, libc::AF_VSOCK as u32),
            libc::SECCOMP_RET_ALLOW
        );
    }

    /// The allow-list base, custom errnos and the caller's argument rules (bubblewrap's
    /// test-seccomp.py needs all three): unlisted calls get the list's errno, the child's
    /// own tail stays allowed, an argument rule matches on the low 32 bits only and keeps
    /// its own errno next to the default profile's rules on the same call; bad values are
    /// refused by name.
    #[test]
    // `libc::Ioctl` is `c_ulong` on glibc (the cast is then a no-op) but `c_int` on musl.
    #[allow(clippy::unnecessary_cast)]
    fn allow_list_errnos_and_argument_rules() {
        let native = bpf::native_arch().unwrap();
        let run = |prog: &[libc::sock_filter], nr: i64, args: [u64; 6]| {
            bpf::tests::run_args(prog, native, nr as u32, args).0
        };
        let ret = |e: i32| libc::SECCOMP_RET_ERRNO | e as u32;
        let allow = libc::SECCOMP_RET_ALLOW;
        let tiocsti = libc::TIOCSTI as u64;
        let a1 = |v: u64| [3, v, 0, 0, 0, 0];
        let list = Seccomp::allow_list(libc::ENOSYS)
            .allow(libc::SYS_read)
            .allow(libc::SYS_ioctl)
            .deny_arg(libc::SYS_ioctl, 1, tiocsti as u32, libc::ECONNREFUSED);
        let p = compile_seccomp(&list, false).unwrap();
        assert_eq!(run(&p, libc::SYS_read, [0; 6]), allow);
        assert_eq!(run(&p, libc::SYS_chroot, [0; 6]), ret(libc::ENOSYS));
        for nr in SECCOMP_ALWAYS_ALLOWED {
            assert_eq!(run(&p, nr, [0; 6]), allow, "{nr}");
        }
        assert_eq!(
            run(&p, libc::SYS_ioctl, a1(tiocsti)),
            ret(libc::ECONNREFUSED)
        );
        assert_eq!(
            run(&p, libc::SYS_ioctl, a1(0x123 << 32 | tiocsti)),
            ret(libc::ECONNREFUSED)
        );
        assert_eq!(run(&p, libc::SYS_ioctl, a1(libc::TIOCNOTTY as u64)), allow);
        // An argument rule on a call the list does not allow: still the list's errno.
        let p = compile_seccomp(
            &Seccomp::allow_list(libc::ENOSYS).deny_arg(libc::SYS_ioctl, 1, 1, libc::EIO),
            false,
        )
        .unwrap();
        assert_eq!(run(&p, libc::SYS_ioctl, a1(1)), ret(libc::ENOSYS));
        assert_eq!(run(&p, libc::SYS_ioctl, a1(2)), ret(libc::ENOSYS));
        // A deny list with custom errnos, on no default profile.
        let p = Seccomp::disabled().deny_errno(libc::SYS_chmod, libc::ECONNREFUSED);
        let p = compile_seccomp(&p, false).unwrap();
        assert_eq!(run(&p, libc::SYS_chmod, [0; 6]), ret(libc::ECONNREFUSED));
        assert_eq!(run(&p, libc::SYS_chroot, [0; 6]), allow);
        // The caller's rule next to the default profile's on ioctl: each its own errno.
        let p = Seccomp::default_profile().deny_arg(
            libc::SYS_ioctl,
            1,
            libc::FIONREAD as u32,
            libc::ECONNREFUSED,
        );
        let p = compile_seccomp(&p, false).unwrap();
        assert_eq!(run(&p, libc::SYS_ioctl, a1(tiocsti)), ret(libc::EPERM));
        assert_eq!(
            run(&p, libc::SYS_ioctl, a1(libc::FIONREAD as u64)),
            ret(libc::ECONNREFUSED)
        );
        assert_eq!(run(&p, libc::SYS_ioctl, a1(libc::TIOCGWINSZ as u64)), allow);
        // Refused by name.
        for (bad, words) in [
            (
                Seccomp::disabled().deny_errno(libc::SYS_chmod, 0),
                "errno 0",
            ),
            (
                Seccomp::disabled().deny_errno(libc::SYS_chmod, 4096),
                "errno 4096",
            ),
            (Seccomp::allow_list(-1), "errno -1"),
            (
                Seccomp::disabled().deny_arg(libc::SYS_ioctl, 6, 0, libc::EPERM),
                "argument 6",
            ),
        ] {
            match compile_seccomp(&bad, false) {
                Err(Error::Security(m)) => assert!(m.contains(words), "{m}"),
                other => panic!("{words}: {other:?}"),
            }
        }
    }

    /// A `from_bpf` program is installed as given (instruction by instruction, native byte
    /// order); a length that is not whole instructions, none, or more than the kernel's 4096
    /// is refused by size, and so is any rule of ours added to it.
    #[test]
    fn from_bpf_programs_checked_and_kept() {
        let insn = |code: u16, jt: u8, jf: u8, k: u32| {
            [&code.to_ne_bytes()[..], &[jt, jf], &k.to_ne_bytes()].concat()
        };
        let bytes = [
            insn(0x20, 0, 0, 0),
            insn(0x15, 0, 1, 7),
            insn(0x06, 0, 0, libc::SECCOMP_RET_ERRNO | 5),
            insn(0x06, 0, 0, libc::SECCOMP_RET_ALLOW),
        ]
        .concat();
        let policy = Seccomp::from_bpf(bytes);
        assert!(policy.is_enabled());
        let prog = compile_seccomp(&policy, false).unwrap();
        let got: Vec<_> = prog.iter().map(|i| (i.code, i.jt, i.jf, i.k)).collect();
        assert_eq!(
            got,
            [
                (0x20, 0, 0, 0),
                (0x15, 0, 1, 7),
                (0x06, 0, 0, libc::SECCOMP_RET_ERRNO | 5),
                (0x06, 0, 0, libc::SECCOMP_RET_ALLOW)
            ]
        );
        // Nesting changes nothing in a program we cannot read.
        assert_eq!(compile_seccomp(&policy, true).unwrap().len(), 4);

        let allow_all = insn(0x06, 0, 0, libc::SECCOMP_RET_ALLOW);
        for len in [0, 7, 9, 4097 * 8] {
            let bytes: Vec<u8> = allow_all.iter().copied().cycle().take(len).collect();
            match compile_seccomp(&Seccomp::from_bpf(bytes), false) {
                Err(Error::Security(m)) => {
                    assert!(m.contains(&format!("{len} bytes")), "{m}")
                }
                other => panic!("{len} bytes: {other:?}"),
            }
        }
        assert_eq!(
            compile_seccomp(&Seccomp::from_bpf(allow_all.repeat(4096)), false)
                .unwrap()
                .len(),
            4096
        );
        for with_rule in [
            Seccomp::from_bpf(allow_all.clone()).deny(libc::SYS_ptrace),
            Seccomp::from_bpf(allow_all.clone()).allow(libc::SYS_mount),
            Seccomp::from_bpf(allow_all.clone()).deny_arg(libc::SYS_ioctl, 1, 1, libc::EIO),
        ] {
            match compile_seccomp(&with_rule, false) {
                Err(Error::Security(m)) => assert!(m.contains("takes no rules"), "{m}"),
                other => panic!("{other:?}"),
            }
        }
    }

    /// The programs installed for a configuration: the main policy's, then each added
    /// one's, in order, skipping those without rules; the cache hands out the same program
    /// for the same policy.
    #[test]
    fn programs_in_order_and_cached() {
        let mut cfg = SecurityConfig::default();
        let main = programs(&cfg).unwrap();
        assert_eq!(main.len(), 1);
        assert!(Arc::ptr_eq(&main[0], &programs(&cfg).unwrap()[0]));
        cfg.seccomp = Seccomp::disabled();
        assert!(programs(&cfg).unwrap().is_empty());
        let list = Seccomp::allow_list(libc::ENOSYS).allow(libc::SYS_read);
        cfg.more_seccomp = vec![
            list.clone(),
            Seccomp::disabled(),
            Seccomp::disabled().deny(libc::SYS_chmod),
        ];
        let progs = programs(&cfg).unwrap();
        assert_eq!(progs.len(), 2);
        assert_eq!(&progs[0][..], &compile_seccomp(&list, false).unwrap()[..]);
        let native = bpf::native_arch().unwrap();
        let run = |p: &[sock_filter], nr: i64| bpf::tests::run(p, native, nr as u32, 0).0;
        assert_eq!(run(&progs[1], libc::SYS_chmod), libc::SECCOMP_RET_ERRNO | 1);
        assert_eq!(run(&progs[1], libc::SYS_read), libc::SECCOMP_RET_ALLOW);
        // A bad policy among them fails the whole configuration.
        cfg.more_seccomp.push(Seccomp::allow_list(0));
        assert!(matches!(programs(&cfg), Err(Error::Security(_))));
    }

    #[test]
    fn allow_and_deny_edit_the_policy() {
        let p = Seccomp::default_profile()
            .deny(7)
            .allow(7)
            .allow(libc::SYS_mount);
        assert!(p.allow.contains(&7) && !p.deny.contains_key(&7));
        let with = compile_seccomp(&Seccomp::default_profile(), false).unwrap();
        let without = compile_seccomp(&p, false).unwrap();
        assert!(without.len() < with.len());
    }

    /// `allow_arg`: an allow list's call allowed for listed argument values only, with
    /// `deny_arg` still first, `allow` covering every value, and refused outside a list.
    #[test]
    fn allow_arg_allows_listed_values_only() {
        let native = bpf::native_arch().unwrap();
        let run = |prog: &[libc::sock_filter], nr: i64, args: [u64; 6]| {
            bpf::tests::run_args(prog, native, nr as u32, args).0
        };
        let enosys = libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32;
        let allow = libc::SECCOMP_RET_ALLOW;
        let p = Seccomp::allow_list(libc::ENOSYS)
            .allow(libc::SYS_read)
            .allow_arg(libc::SYS_personality, 0, 8)
            .allow_arg(libc::SYS_personality, 0, 0xffff_ffff)
            .allow_arg(libc::SYS_read, 0, 3)
            .deny_arg(libc::SYS_personality, 1, 5, libc::EACCES);
        let prog = compile_seccomp(&p, false).unwrap();
        assert_eq!(run(&prog, libc::SYS_personality, [8, 0, 0, 0, 0, 0]), allow);
        assert_eq!(
            run(&prog, libc::SYS_personality, [0xffff_ffff, 0, 0, 0, 0, 0]),
            allow
        );
        assert_eq!(
            run(&prog, libc::SYS_personality, [0, 0, 0, 0, 0, 0]),
            enosys
        );
        assert_eq!(
            run(&prog, libc::SYS_personality, [8, 5, 0, 0, 0, 0]),
            libc::SECCOMP_RET_ERRNO | libc::EACCES as u32
        );
        assert_eq!(run(&prog, libc::SYS_read, [9, 0, 0, 0, 0, 0]), allow);
        assert_eq!(run(&prog, libc::SYS_write, [1, 0, 0, 0, 0, 0]), enosys);
        let outside = Seccomp::disabled().allow_arg(libc::SYS_personality, 0, 8);
        assert!(matches!(
            compile_seccomp(&outside, false),
            Err(Error::Security(_))
        ));
        let arg6 = Seccomp::allow_list(libc::ENOSYS).allow_arg(libc::SYS_personality, 6, 8);
        assert!(matches!(
            compile_seccomp(&arg6, false),
            Err(Error::Security(_))
        ));
    }
}
