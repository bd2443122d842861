//! Seccomp argument conditions on the real kernel (`ArgCmp`, `Seccomp::deny_if` and
//! `Seccomp::allow_if`): the OCI profiles' operators, 64-bit values and several conditions
//! in one rule. The library's BPF tests check the emitted program against a reference
//! evaluation; these check that the kernel, running it, decides the same.
//!
//! Each attack runs under the rule, where it must fail with the rule's errno, and with the
//! rule taken out (the control), where the same call must work (or fail with the
//! kernel's own errno), so every test can fail for real. Containers run with
//! `host_root()` and a filter of the test's own in place of the default profile, so the
//! rule under test is the only layer in the way.
//!
//! The probe is `tests/escape/argcmp.c`: `argcmp NAME clone FLAGS` and
//! `argcmp NAME lseek OFFSET WHENCE`, each printing `RESULT NAME OK ...` or
//! `RESULT NAME ERR ERRNO`.

use crate::common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use cellblock::{ArgCmp, Container, Seccomp};

fn probe() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| common::compile_probe("argcmp"))
}

/// Runs `argcmp` once per line of `cmds` in a host-root container under `policy`.
async fn run(policy: Seccomp, cmds: &[String]) -> (HashMap<String, String>, String) {
    let script = cmds
        .iter()
        .map(|c| format!("{} {c}", probe().display()))
        .collect::<Vec<_>>()
        .join("; ");
    let mut b = Container::builder("/bin/sh");
    b.args(["-c", &script])
        .namespaces(common::default_ns())
        .host_root()
        .seccomp(policy);
    common::probe_results(b).await
}

fn get<'a>(r: &'a HashMap<String, String>, name: &str) -> &'a str {
    common::probe_result(r, name)
}

/// Every `CLONE_NEW*` flag: Docker's and the OCI default profiles' clone mask.
const NS_FLAGS: u64 = (libc::CLONE_NEWNS
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUSER
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWNET
    | libc::CLONE_NEWCGROUP) as u64;

fn clone_cmds() -> Vec<String> {
    vec![
        format!("newuser clone {:#x}", libc::CLONE_NEWUSER),
        // A UTS namespace needs CAP_SYS_ADMIN, which the workload gets in its new user
        // namespace only.
        format!(
            "newuser_uts clone {:#x}",
            libc::CLONE_NEWUSER | libc::CLONE_NEWUTS
        ),
        "fork clone 0".to_string(),
    ]
}

/// Docker's clone rule as an allow list has it (runtime-tools' and moby's default
/// profiles: `clone` allowed when `flags & CLONE_NEW* == 0`, `SCMP_CMP_MASKED_EQ`):
/// a clone into a new user namespace (the first step of most container escapes through
/// unprivileged namespaces), alone or with a new UTS namespace, fails with the list's errno,
/// while a plain fork works (and so does the shell running the probes). The control:
/// the same list with `clone` allowed outright lets both namespace clones through.
#[tokio::test(flavor = "multi_thread")]
async fn masked_eq_allow_rule_refuses_namespace_clones() {
    let _d = common::deadline("masked_eq_allow_rule_refuses_namespace_clones", 60);
    // Every number but clone's (and clone3's, which libc would otherwise use: its flags
    // live in memory no filter reads), so the clone rule is the only one that matters.
    let everything_but_clone = || {
        (0..=462)
            .filter(|&nr| nr != libc::SYS_clone && nr != libc::SYS_clone3)
            .fold(Seccomp::allow_list(libc::EPERM), Seccomp::allow)
    };
    let ruled =
        everything_but_clone().allow_if(libc::SYS_clone, &[ArgCmp::masked_eq(0, NS_FLAGS, 0)]);
    let (r, out) = run(ruled, &clone_cmds()).await;
    assert_eq!(get(&r, "newuser"), "ERR EPERM", "{out}");
    assert_eq!(get(&r, "newuser_uts"), "ERR EPERM", "{out}");
    assert_eq!(get(&r, "fork"), "OK cloned", "{out}");

    let control = everything_but_clone().allow(libc::SYS_clone);
    let (r, out) = run(control, &clone_cmds()).await;
    assert_eq!(get(&r, "newuser"), "OK cloned", "{out}");
    assert_eq!(get(&r, "newuser_uts"), "OK cloned", "{out}");
    assert_eq!(get(&r, "fork"), "OK cloned", "{out}");
}

/// The same protection as a deny rule (`deny_if` with `MASKED_EQ` on the one flag):
/// `clone(CLONE_NEWUSER)`, with or without other flags, fails with the rule's errno, a
/// plain fork works; without the rule (the control, an otherwise identical filter) the
/// namespace clones work.
#[tokio::test(flavor = "multi_thread")]
async fn masked_eq_deny_rule_refuses_new_user_namespace() {
    let _d = common::deadline("masked_eq_deny_rule_refuses_new_user_namespace", 60);
    let newuser = libc::CLONE_NEWUSER as u64;
    let base = || Seccomp::disabled().deny(libc::SYS_clone3);
    let ruled = base().deny_if(
        libc::SYS_clone,
        &[ArgCmp::masked_eq(0, newuser, newuser)],
        libc::EUSERS,
    );
    let (r, out) = run(ruled, &clone_cmds()).await;
    assert_eq!(get(&r, "newuser"), "ERR EUSERS", "{out}");
    assert_eq!(get(&r, "newuser_uts"), "ERR EUSERS", "{out}");
    assert_eq!(get(&r, "fork"), "OK cloned", "{out}");

    let (r, out) = run(base(), &clone_cmds()).await;
    assert_eq!(get(&r, "newuser"), "OK cloned", "{out}");
    assert_eq!(get(&r, "newuser_uts"), "OK cloned", "{out}");
}

/// Each comparison operator on the kernel, with 64-bit values whose words disagree:
/// `lseek(-1, OFFSET, WHENCE)` is refused with `ECONNREFUSED` exactly when the rule's
/// conditions hold (all of them, for the two-condition rule), and otherwise reaches the
/// kernel, which says `EBADF`. The control: with no rule every offset gets `EBADF`, so
/// the `ECONNREFUSED`s are the filter's.
#[tokio::test(flavor = "multi_thread")]
async fn every_operator_decides_on_all_64_bits() {
    let _d = common::deadline("every_operator_decides_on_all_64_bits", 120);
    const OFFSETS: [u64; 8] = [
        0,
        0xffff_ffff,
        0x1_0000_0000,
        0x1_0000_0001,
        0x2_0000_0007,
        0x3_0000_0007,
        0x8000_0000_0000_0000,
        u64::MAX,
    ];
    let v = 0x2_0000_0007;
    let rules: Vec<(&str, Vec<ArgCmp>)> = vec![
        ("ne", vec![ArgCmp::ne(1, v)]),
        ("lt", vec![ArgCmp::lt(1, v)]),
        ("le", vec![ArgCmp::le(1, v)]),
        ("eq", vec![ArgCmp::eq(1, v)]),
        ("ge", vec![ArgCmp::ge(1, v)]),
        ("gt", vec![ArgCmp::gt(1, 0xffff_ffff)]),
        (
            "masked_high",
            vec![ArgCmp::masked_eq(1, 0xf_0000_0000, 0x3_0000_0000)],
        ),
        (
            "two_conditions",
            vec![ArgCmp::ge(1, 0x1_0000_0000), ArgCmp::eq(2, 1)],
        ),
    ];
    let cmds: Vec<String> = OFFSETS
        .iter()
        .flat_map(|o| [0, 1].map(|w| format!("o{o:x}w{w} lseek {o:#x} {w}")))
        .collect();
    let (r, out) = run(Seccomp::disabled().deny(libc::SYS_acct), &cmds).await;
    for o in OFFSETS {
        for w in [0, 1] {
            assert_eq!(
                get(&r, &format!("o{o:x}w{w}")),
                "ERR EBADF",
                "control: {out}"
            );
        }
    }
    for (name, conds) in rules {
        let policy = Seccomp::disabled().deny_if(libc::SYS_lseek, &conds, libc::ECONNREFUSED);
        let (r, out) = run(policy, &cmds).await;
        let mut denied = 0;
        for o in OFFSETS {
            for w in [0u64, 1] {
                let args = [u64::MAX, o, w, 0, 0, 0];
                let holds = conds.iter().all(|c| c.holds(&args));
                let want = if holds {
                    "ERR ECONNREFUSED"
                } else {
                    "ERR EBADF"
                };
                assert_eq!(get(&r, &format!("o{o:x}w{w}")), want, "{name}: {out}");
                denied += usize::from(holds);
            }
        }
        // Every rule splits the offsets: some denied, some not.
        assert!(denied > 0 && denied < 16, "{name}: {denied} denied");
    }
}
