//! The seccomp program: a classic-BPF decision tree over system call numbers.
//!
//! Why not a linear chain (what seccompiler emits, and what we used first): when a filter
//! is installed the kernel fills its per-filter action cache (`seccomp_cache_prepare`) by
//! emulating the program once for *every* system call number of the architecture, with
//! interrupts off. With a chain of a few hundred comparisons and a deny list (every allowed
//! call walks the whole chain), that emulation dominated the container's whole setup:
//! perf put it at about a quarter of the cloned child's CPU time, ~0.3 ms per spawn on the
//! 2-vCPU test VM. In a balanced tree every number reaches its verdict in about log2(n)
//! comparisons, so installing costs a few microseconds, and the program is no longer.
//!
//! Layout:
//!
//! ```text
//!   ld  arch ; jeq NATIVE ? next : kill_process
//!   ld  nr   ; (x86_64) jge X32_BIT ? errno(EPERM)
//!   tree:   jge pivot → right subtree, else left subtree (a `ja` when the left is long)
//!   leaves: jeq nr → action ; … ; ret allow
//! ```
//!
//! An action is `ret errno(e)`, or for `clone()`, a test of its flags argument against a
//! mask (`jset`), which the kernel's cache cannot fold: `clone` is always filtered.

use std::collections::BTreeMap;

use libc::sock_filter;

use crate::error::{Error, Result};

/// What the filter does with one system call number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Fail with this errno.
    Errno(u16),
    /// Fail with `errno` when the first argument has any bit of `mask` set; allow otherwise.
    ArgMask { mask: u32, errno: u16 },
}

/// The kernel's limit on a classic BPF program (`BPF_MAXINSNS`).
const MAX_INSNS: usize = 4096;
/// Numbers of the x32 ABI on x86_64 carry this bit.
const X32_SYSCALL_BIT: u32 = 0x4000_0000;
/// A leaf holds at most this many numbers before the tree splits them.
const LEAF: usize = 3;

const LD_ABS: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
const RET: u16 = (libc::BPF_RET | libc::BPF_K) as u16;
const JEQ: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
const JGE: u16 = (libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K) as u16;
const JSET: u16 = (libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K) as u16;
const JA: u16 = (libc::BPF_JMP | libc::BPF_JA) as u16;

/// Offsets in `struct seccomp_data`: nr (u32), arch (u32), ip (u64), args (6 × u64).
const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;
/// The low 32 bits of `args[0]`.
const OFF_ARG0_LOW: u32 = if cfg!(target_endian = "little") {
    16
} else {
    20
};

/// `AUDIT_ARCH_*` of the build target, for the architecture check.
pub(crate) fn native_arch() -> Result<u32> {
    // linux/audit.h: EM_* | __AUDIT_ARCH_64BIT (0x8000_0000) | __AUDIT_ARCH_LE (0x4000_0000).
    const LE64: u32 = 0xC000_0000;
    match std::env::consts::ARCH {
        "x86_64" => Ok(LE64 | 62),
        "aarch64" => Ok(LE64 | 183),
        "riscv64" => Ok(LE64 | 243),
        other => Err(Error::Security(format!(
            "seccomp filtering is implemented for x86_64, aarch64 and riscv64, not {other}"
        ))),
    }
}

fn stmt(code: u16, k: u32) -> sock_filter {
    sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

fn jump(code: u16, k: u32, jt: u8, jf: u8) -> sock_filter {
    sock_filter { code, jt, jf, k }
}

fn ret_errno(e: u16) -> sock_filter {
    stmt(RET, libc::SECCOMP_RET_ERRNO | u32::from(e))
}

/// Compiles `rules` (numbers not listed are allowed) for the build target.
pub(crate) fn compile(rules: &BTreeMap<u32, Verdict>) -> Result<Vec<sock_filter>> {
    let mut prog = vec![
        stmt(LD_ABS, OFF_ARCH),
        jump(JEQ, native_arch()?, 1, 0),
        stmt(RET, libc::SECCOMP_RET_KILL_PROCESS),
        stmt(LD_ABS, OFF_NR),
    ];
    if cfg!(target_arch = "x86_64") {
        // A deny list keyed on native numbers would be bypassed through the x32 aliases.
        prog.push(jump(JGE, X32_SYSCALL_BIT, 0, 1));
        prog.push(ret_errno(libc::EPERM as u16));
    }
    let sorted: Vec<(u32, Verdict)> = rules.iter().map(|(&nr, &v)| (nr, v)).collect();
    tree(&sorted, &mut prog)?;
    if prog.len() > MAX_INSNS {
        return Err(Error::Security(format!(
            "the seccomp filter has {} instructions; the kernel accepts {MAX_INSNS}",
            prog.len()
        )));
    }
    Ok(prog)
}

/// Appends the subtree deciding the numbers in `rules` (sorted; may be empty).
/// The accumulator holds the system call number on entry; every path ends in a `ret`.
fn tree(rules: &[(u32, Verdict)], out: &mut Vec<sock_filter>) -> Result<()> {
    if rules.len() <= LEAF {
        for &(nr, verdict) in rules {
            let action = action(verdict);
            out.push(jump(JEQ, nr, 0, action.len() as u8));
            out.extend(action);
        }
        out.push(stmt(RET, libc::SECCOMP_RET_ALLOW));
        return Ok(());
    }
    let (left, right) = rules.split_at(rules.len() / 2);
    let pivot = right[0].0;
    let mut left_code = Vec::new();
    tree(left, &mut left_code)?;
    match u8::try_from(left_code.len()) {
        // nr >= pivot: jump over the left subtree.
        Ok(skip) => out.push(jump(JGE, pivot, skip, 0)),
        Err(_) => {
            let skip = u32::try_from(left_code.len())
                .map_err(|_| Error::Security("seccomp filter too large".into()))?;
            out.push(jump(JGE, pivot, 0, 1));
            out.push(stmt(JA, skip));
        }
    }
    out.extend(left_code);
    tree(right, out)
}

/// The instructions after a matching `jeq`; each path ends in a `ret`.
fn action(v: Verdict) -> Vec<sock_filter> {
    match v {
        Verdict::Errno(e) => vec![ret_errno(e)],
        Verdict::ArgMask { mask, errno } => vec![
            stmt(LD_ABS, OFF_ARG0_LOW),
            jump(JSET, mask, 0, 1),
            ret_errno(errno),
            stmt(RET, libc::SECCOMP_RET_ALLOW),
        ],
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Runs `prog` the way the kernel does for a system call `nr` with first argument
    /// `arg0`, returning the action. Panics on anything the compiler never emits.
    pub(crate) fn run(prog: &[sock_filter], arch: u32, nr: u32, arg0: u32) -> (u32, usize) {
        let (mut acc, mut pc, mut steps) = (0u32, 0usize, 0usize);
        loop {
            let i = prog[pc];
            steps += 1;
            pc += 1;
            match i.code {
                LD_ABS => {
                    acc = match i.k {
                        OFF_NR => nr,
                        OFF_ARCH => arch,
                        OFF_ARG0_LOW => arg0,
                        k => panic!("load of offset {k}"),
                    }
                }
                RET => return (i.k, steps),
                JA => pc += i.k as usize,
                JEQ | JGE | JSET => {
                    let taken = match i.code {
                        JEQ => acc == i.k,
                        JGE => acc >= i.k,
                        _ => acc & i.k != 0,
                    };
                    pc += if taken { i.jt } else { i.jf } as usize;
                }
                c => panic!("unexpected opcode {c:#x}"),
            }
        }
    }

    fn rules(n: u32) -> BTreeMap<u32, Verdict> {
        let mut r: BTreeMap<u32, Verdict> =
            (0..n).map(|i| (i * 7 + 3, Verdict::Errno(1))).collect();
        r.insert(
            56,
            Verdict::ArgMask {
                mask: 0x7000_0000,
                errno: 1,
            },
        );
        r
    }

    #[test]
    fn every_number_gets_its_verdict_in_few_steps() {
        let arch = native_arch().unwrap();
        for n in [0, 1, 3, 4, 40, 120, 900] {
            let r = rules(n);
            let prog = compile(&r).unwrap();
            let depth = (usize::BITS - r.len().leading_zeros()) as usize;
            for nr in 0..(n * 7 + 20) {
                let (ret, steps) = run(&prog, arch, nr, 0);
                let want = match r.get(&nr) {
                    Some(Verdict::Errno(e)) => libc::SECCOMP_RET_ERRNO | u32::from(*e),
                    _ => libc::SECCOMP_RET_ALLOW,
                };
                assert_eq!(ret, want, "nr {nr} with {n} rules");
                // A chain would need up to len steps; the tree needs about 2 per level.
                assert!(steps <= 12 + 2 * depth + 2 * LEAF, "nr {nr}: {steps} steps");
            }
        }
    }

    #[test]
    fn argument_mask_and_guards() {
        let arch = native_arch().unwrap();
        let prog = compile(&rules(40)).unwrap();
        let errno1 = libc::SECCOMP_RET_ERRNO | 1;
        assert_eq!(run(&prog, arch, 56, 0x1000_0000).0, errno1);
        assert_eq!(run(&prog, arch, 56, 0x0000_0011).0, libc::SECCOMP_RET_ALLOW);
        assert_eq!(
            run(&prog, arch ^ 1, 56, 0).0,
            libc::SECCOMP_RET_KILL_PROCESS
        );
        if cfg!(target_arch = "x86_64") {
            let eperm = libc::SECCOMP_RET_ERRNO | libc::EPERM as u32;
            assert_eq!(run(&prog, arch, X32_SYSCALL_BIT | 1, 0).0, eperm);
        }
    }
}
