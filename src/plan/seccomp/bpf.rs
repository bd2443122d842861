//! The seccomp program: a classic-BPF decision tree over system call numbers.
//!
//! Why a tree and not a linear chain (what seccompiler emits): when a filter is installed
//! the kernel fills its per-filter action cache (`seccomp_cache_prepare`) by emulating the
//! program once for *every* system call number of the architecture, with interrupts off.
//! With a chain of a few hundred comparisons and a deny list (every allowed call walks the
//! whole chain), that emulation costs the setup child more than all its other steps
//! together. In a balanced tree every number reaches its verdict in about log2(n)
//! comparisons, so installing is cheap, and the program is no longer.
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
//! An action is `ret errno(e)`, or a list of [`ArgTest`]s on the call's arguments (the
//! flags of `clone()`, the family of `socket()`, the request of `ioctl()`): the call fails
//! when any of them matches and is allowed otherwise. The kernel's action cache cannot
//! fold a verdict that reads an argument, so such calls always run the filter.
//!
//! Arguments are compared on their **low 32 bits only**. Every argument we test is an
//! `int` or `unsigned int` in the kernel's prototype (`socket(int family, ..)`,
//! `ioctl(unsigned int fd, unsigned int cmd, ..)`), or, for `clone()`'s flags, the bits we
//! test are all in the low word. The kernel truncates the 64-bit register to that type, so
//! a filter comparing all 64 bits could be walked around by setting the upper half
//! (`socket(0x1_0000_0028, ..)` *is* `socket(AF_VSOCK, ..)` to the kernel, yet is
//! greater than 40); comparing the low word is exactly what the kernel will use.

use std::collections::BTreeMap;

use libc::sock_filter;

use crate::builder::security::{ArgCmp, ArgOp};
use crate::error::{Error, Result};

/// What the filter does with one system call number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Fail with this errno.
    Errno(u16),
    /// Allow (in a filter whose other numbers fail, see [`compile_list`]).
    Allow,
    /// Fail with `errno` when any of `tests` matches; allow otherwise. An empty list
    /// allows the call.
    DenyIf { tests: Vec<ArgTest>, errno: u16 },
    /// Fail with `errno` when any of `deny` matches (each test's own errno if it has one);
    /// then allow the call when any of `allow` matches, and fail it with `otherwise`
    /// when none does (an allow list's entry allowed only for some arguments).
    AllowIf {
        deny: Vec<ArgTest>,
        errno: u16,
        allow: Vec<ArgTest>,
        otherwise: u16,
    },
}

/// One rule on a system call's arguments: it matches when **all** its conditions hold
/// (libseccomp's several `arg_cmp`s in one rule).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ArgTest {
    pub(crate) conds: Vec<Cond>,
    /// The errno when this test matches, if not its verdict's.
    pub(crate) errno: Option<u16>,
}

/// One condition: argument number `arg` (0 to 5) compared by `cmp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cond {
    pub(crate) arg: u8,
    pub(crate) cmp: Cmp,
}

/// How a [`Cond`] compares its argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cmp {
    /// The low 32 bits equal the value (`jeq`; see the module documentation).
    Eq(u32),
    /// The low 32 bits have any bit of the mask set (`jset`).
    AnyBit(u32),
    /// All 64 bits compared as the caller's [`ArgCmp`] says: the high word, then the low
    /// word, as libseccomp does on 64-bit architectures.
    Wide(ArgOp),
}

impl ArgTest {
    /// Argument `arg` equals `value` (on its low 32 bits).
    pub(crate) fn eq(arg: u8, value: u32) -> ArgTest {
        ArgTest {
            conds: vec![Cond {
                arg,
                cmp: Cmp::Eq(value),
            }],
            errno: None,
        }
    }

    /// Argument `arg` has any bit of `mask` set (in its low 32 bits).
    pub(crate) fn any_bit(arg: u8, mask: u32) -> ArgTest {
        ArgTest {
            conds: vec![Cond {
                arg,
                cmp: Cmp::AnyBit(mask),
            }],
            errno: None,
        }
    }

    /// Every one of `conds` holds, on all 64 bits of each argument.
    pub(crate) fn all(conds: &[ArgCmp]) -> ArgTest {
        ArgTest {
            conds: conds
                .iter()
                .map(|c| Cond {
                    arg: c.arg,
                    cmp: Cmp::Wide(c.op),
                })
                .collect(),
            errno: None,
        }
    }

    /// The same test, failing the call with `errno` rather than its verdict's.
    pub(crate) fn with_errno(self, errno: u16) -> ArgTest {
        ArgTest {
            errno: Some(errno),
            ..self
        }
    }
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
const JGT: u16 = (libc::BPF_JMP | libc::BPF_JGT | libc::BPF_K) as u16;
const JSET: u16 = (libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K) as u16;
const AND: u16 = (libc::BPF_ALU | libc::BPF_AND | libc::BPF_K) as u16;
const JA: u16 = (libc::BPF_JMP | libc::BPF_JA) as u16;

/// Offsets in `struct seccomp_data`: nr (u32), arch (u32), ip (u64), args (6 × u64).
const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;
const OFF_ARGS: u32 = 16;
/// System calls have at most six arguments.
const MAX_ARGS: u8 = 6;

/// The offset of the low 32 bits of `args[arg]`.
const fn off_arg_low(arg: u8) -> u32 {
    let base = OFF_ARGS + 8 * arg as u32;
    if cfg!(target_endian = "little") {
        base
    } else {
        base + 4
    }
}

/// The offset of the high 32 bits of `args[arg]`.
const fn off_arg_high(arg: u8) -> u32 {
    let base = OFF_ARGS + 8 * arg as u32;
    if cfg!(target_endian = "little") {
        base + 4
    } else {
        base
    }
}

/// `AUDIT_ARCH_*` of the build target, for the architecture check.
pub(crate) fn native_arch() -> Result<u32> {
    // linux/audit.h: EM_* | __AUDIT_ARCH_64BIT (0x8000_0000) | __AUDIT_ARCH_LE (0x4000_0000).
    const LE64: u32 = 0xC000_0000;
    match std::env::consts::ARCH {
        "x86_64" => Ok(LE64 | 62),
        "aarch64" => Ok(LE64 | 183),
        other => Err(Error::Security(format!(
            "seccomp filtering is implemented for x86_64 and aarch64, not {other}"
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
    compile_list(rules, None)
}

/// Compiles `rules` for the build target; numbers not listed are allowed, or, with
/// `otherwise = Some(e)`, fail with errno `e` (an allow list: its entries are
/// [`Verdict::Allow`] or [`Verdict::DenyIf`]).
pub(crate) fn compile_list(
    rules: &BTreeMap<u32, Verdict>,
    otherwise: Option<u16>,
) -> Result<Vec<sock_filter>> {
    let fallback = match otherwise {
        Some(e) => ret_errno(e),
        None => stmt(RET, libc::SECCOMP_RET_ALLOW),
    };
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
    let sorted: Vec<(u32, Verdict)> = rules.iter().map(|(&nr, v)| (nr, v.clone())).collect();
    tree(&sorted, fallback, &mut prog)?;
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
/// `fallback` ends every leaf: the action for numbers that no rule names.
fn tree(rules: &[(u32, Verdict)], fallback: sock_filter, out: &mut Vec<sock_filter>) -> Result<()> {
    if rules.len() <= LEAF {
        for (nr, verdict) in rules {
            let action = action(verdict)?;
            let skip = u8::try_from(action.len())
                .map_err(|_| Error::Security(format!("seccomp: too many tests on call {nr}")))?;
            out.push(jump(JEQ, *nr, 0, skip));
            out.extend(action);
        }
        out.push(fallback);
        return Ok(());
    }
    let (left, right) = rules.split_at(rules.len() / 2);
    let pivot = right[0].0;
    let mut left_code = Vec::new();
    tree(left, fallback, &mut left_code)?;
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
    tree(right, fallback, out)
}

/// The instructions after a matching `jeq`; each path ends in a `ret`.
///
/// For [`Verdict::DenyIf`]: each test's conditions in turn, the first that does not hold
/// jumping to the next test; a test whose conditions all hold jumps to the final
/// `ret errno` (a test with an errno of its own to a `ret` of that errno, one per distinct
/// errno, after the verdict's); falling through every test reaches `ret allow`. A test of
/// one low-word condition is a single jump (and the argument is loaded once for a run of
/// them):
///
/// ```text
///   ld arg[a] ; jeq v1 → deny ; jeq v2 → deny ; ld arg[b] ; jset m → deny ; ret allow ; deny: ret errno
/// ```
///
/// A 64-bit condition compares the high word, then the low word (see [`cond`]).
///
/// For [`Verdict::AllowIf`] the deny tests come first, then the allow tests, each jumping
/// to `ret allow` when it matches, and a `ret otherwise` where they all fall through:
///
/// ```text
///   deny tests… ; allow tests… ; ret otherwise ; allow: ret allow ; deny rets…
/// ```
fn action(v: &Verdict) -> Result<Vec<sock_filter>> {
    let (tests, errno, allow, otherwise): (&[ArgTest], u16, &[ArgTest], Option<u16>) = match v {
        Verdict::Errno(e) => return Ok(vec![ret_errno(*e)]),
        Verdict::Allow => return Ok(vec![stmt(RET, libc::SECCOMP_RET_ALLOW)]),
        Verdict::DenyIf { tests, errno } => (tests, *errno, &[], None),
        Verdict::AllowIf {
            deny,
            errno,
            allow,
            otherwise,
        } => (deny, *errno, allow, Some(*otherwise)),
    };
    let mut a = Asm::default();
    let allow_at = a.label();
    // One `ret errno` per distinct errno, the verdict's first.
    let mut rets: Vec<(u16, Label)> = Vec::new();
    for e in std::iter::once(errno).chain(tests.iter().filter_map(|t| t.errno)) {
        if !rets.iter().any(|&(r, _)| r == e) {
            rets.push((e, a.label()));
        }
    }
    let ret_of = |e: u16| rets.iter().find(|&&(r, _)| r == e).map(|&(_, l)| l);
    let mut loaded = None;
    for t in tests {
        let target = ret_of(t.errno.unwrap_or(errno)).expect("every errno has a ret");
        rule(&mut a, t, target, &mut loaded)?;
    }
    if let Some(otherwise) = otherwise.filter(|_| !allow.is_empty()) {
        for t in allow {
            rule(&mut a, t, allow_at, &mut loaded)?;
        }
        a.push(ret_errno(otherwise));
    }
    a.place(allow_at);
    a.push(stmt(RET, libc::SECCOMP_RET_ALLOW));
    for &(e, l) in &rets {
        a.place(l);
        a.push(ret_errno(e));
    }
    a.finish()
}

/// A jump target in an [`Asm`] program, placed once its position is known.
#[derive(Debug, Clone, Copy)]
struct Label(usize);

/// A program being assembled: instructions whose jumps name [`Label`]s, patched into
/// offsets (forward only, as classic BPF wants) by [`finish`](Asm::finish).
#[derive(Default)]
struct Asm {
    code: Vec<sock_filter>,
    /// (instruction, which field: 0 jt, 1 jf, 2 the `ja` offset, label)
    fixes: Vec<(usize, u8, usize)>,
    at: Vec<Option<usize>>,
}

impl Asm {
    fn label(&mut self) -> Label {
        self.at.push(None);
        Label(self.at.len() - 1)
    }
    fn place(&mut self, l: Label) {
        self.at[l.0] = Some(self.code.len());
    }
    fn push(&mut self, i: sock_filter) {
        self.code.push(i);
    }
    /// A conditional jump; `None` is the next instruction.
    fn jump(&mut self, code: u16, k: u32, jt: Option<Label>, jf: Option<Label>) {
        let at = self.code.len();
        self.code.push(jump(code, k, 0, 0));
        for (field, l) in [(0, jt), (1, jf)] {
            if let Some(l) = l {
                self.fixes.push((at, field, l.0));
            }
        }
    }
    fn ja(&mut self, l: Label) {
        self.fixes.push((self.code.len(), 2, l.0));
        self.code.push(stmt(JA, 0));
    }
    fn finish(mut self) -> Result<Vec<sock_filter>> {
        for (at, field, l) in self.fixes {
            let target = self.at[l].expect("every label is placed");
            let off = target.checked_sub(at + 1).expect("jumps go forward only");
            let short = || {
                u8::try_from(off)
                    .map_err(|_| Error::Security("seccomp: too many argument tests".into()))
            };
            match field {
                0 => self.code[at].jt = short()?,
                1 => self.code[at].jf = short()?,
                _ => self.code[at].k = off as u32,
            }
        }
        Ok(self.code)
    }
}

/// Emits one test: jumps to `matched` when all its conditions hold, falls through
/// otherwise. `loaded` is which low word the accumulator holds on entry, if known, and
/// on exit.
fn rule(a: &mut Asm, t: &ArgTest, matched: Label, loaded: &mut Option<u8>) -> Result<()> {
    for c in &t.conds {
        if c.arg >= MAX_ARGS {
            return Err(Error::Security(format!(
                "seccomp: argument {} does not exist (system calls have {MAX_ARGS})",
                c.arg
            )));
        }
    }
    match t.conds.as_slice() {
        // One low-word condition: a single jump, and the argument stays loaded.
        [c @ Cond {
            cmp: Cmp::Eq(_) | Cmp::AnyBit(_),
            ..
        }] => {
            if *loaded != Some(c.arg) {
                a.push(stmt(LD_ABS, off_arg_low(c.arg)));
                *loaded = Some(c.arg);
            }
            match c.cmp {
                Cmp::Eq(v) => a.jump(JEQ, v, Some(matched), None),
                Cmp::AnyBit(m) => a.jump(JSET, m, Some(matched), None),
                Cmp::Wide(_) => unreachable!(),
            }
        }
        // No condition: always matches.
        [] => a.ja(matched),
        conds => {
            let fail = a.label();
            for c in conds {
                cond(a, c, fail);
            }
            a.ja(matched);
            a.place(fail);
            // Paths from several conditions meet here with different words loaded.
            *loaded = None;
        }
    }
    Ok(())
}

/// Emits one condition: falls through when it holds, jumps to `fail` when not. A 64-bit
/// comparison decides on the high word when the words differ there and on the low word
/// when they are equal (libseccomp's layout on 64-bit architectures):
///
/// ```text
///   EQ v:  ld hi ; jeq v.hi ? : fail ; ld lo ; jeq v.lo ? : fail
///   NE v:  ld hi ; jeq v.hi ? : ok   ; ld lo ; jeq v.lo ? fail :        ok:
///   GT v:  ld hi ; jgt v.hi ? ok :   ; jeq v.hi ? : fail ; ld lo ; jgt v.lo ? : fail    ok:
///   GE v:  the same, jge on the low word
///   LT v:  ld hi ; jgt v.hi ? fail : ; jeq v.hi ? : ok   ; ld lo ; jge v.lo ? fail :    ok:
///   LE v:  the same, jgt on the low word
///   MASKED_EQ m v:  ld hi ; and m.hi ; jeq v.hi ? : fail ; ld lo ; and m.lo ; jeq v.lo ? : fail
/// ```
///
/// (the high-word half of MASKED_EQ is left out when both `m.hi` and `v.hi` are 0: it
/// always holds then).
fn cond(a: &mut Asm, c: &Cond, fail: Label) {
    let (lo_at, hi_at) = (off_arg_low(c.arg), off_arg_high(c.arg));
    let op = match c.cmp {
        Cmp::Eq(v) => {
            a.push(stmt(LD_ABS, lo_at));
            a.jump(JEQ, v, None, Some(fail));
            return;
        }
        Cmp::AnyBit(m) => {
            a.push(stmt(LD_ABS, lo_at));
            a.jump(JSET, m, None, Some(fail));
            return;
        }
        Cmp::Wide(op) => op,
    };
    let words = |v: u64| ((v >> 32) as u32, v as u32);
    let ok = a.label();
    match op {
        ArgOp::Eq(v) => {
            let (hi, lo) = words(v);
            a.push(stmt(LD_ABS, hi_at));
            a.jump(JEQ, hi, None, Some(fail));
            a.push(stmt(LD_ABS, lo_at));
            a.jump(JEQ, lo, None, Some(fail));
        }
        ArgOp::Ne(v) => {
            let (hi, lo) = words(v);
            a.push(stmt(LD_ABS, hi_at));
            a.jump(JEQ, hi, None, Some(ok));
            a.push(stmt(LD_ABS, lo_at));
            a.jump(JEQ, lo, Some(fail), None);
        }
        ArgOp::Gt(v) | ArgOp::Ge(v) => {
            let (hi, lo) = words(v);
            a.push(stmt(LD_ABS, hi_at));
            a.jump(JGT, hi, Some(ok), None);
            a.jump(JEQ, hi, None, Some(fail));
            a.push(stmt(LD_ABS, lo_at));
            let code = if matches!(op, ArgOp::Gt(_)) { JGT } else { JGE };
            a.jump(code, lo, None, Some(fail));
        }
        ArgOp::Lt(v) | ArgOp::Le(v) => {
            let (hi, lo) = words(v);
            a.push(stmt(LD_ABS, hi_at));
            a.jump(JGT, hi, Some(fail), None);
            a.jump(JEQ, hi, None, Some(ok));
            a.push(stmt(LD_ABS, lo_at));
            let code = if matches!(op, ArgOp::Lt(_)) { JGE } else { JGT };
            a.jump(code, lo, Some(fail), None);
        }
        ArgOp::MaskedEq { mask, value } => {
            let ((mhi, mlo), (vhi, vlo)) = (words(mask), words(value));
            if mhi != 0 || vhi != 0 {
                a.push(stmt(LD_ABS, hi_at));
                a.push(stmt(AND, mhi));
                a.jump(JEQ, vhi, None, Some(fail));
            }
            a.push(stmt(LD_ABS, lo_at));
            a.push(stmt(AND, mlo));
            a.jump(JEQ, vlo, None, Some(fail));
        }
    }
    a.place(ok);
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Runs `prog` the way the kernel does for a system call `nr` with first argument
    /// `arg0`, returning the action. Panics on anything the compiler never emits.
    pub(crate) fn run(prog: &[sock_filter], arch: u32, nr: u32, arg0: u32) -> (u32, usize) {
        run_args(prog, arch, nr, [u64::from(arg0), 0, 0, 0, 0, 0])
    }

    /// [`run`] with all six arguments, as the kernel's `seccomp_data` holds them (64 bits
    /// each, whatever the prototype says).
    pub(crate) fn run_args(
        prog: &[sock_filter],
        arch: u32,
        nr: u32,
        args: [u64; 6],
    ) -> (u32, usize) {
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
                        k => {
                            if let Some(a) = (0..MAX_ARGS).find(|&a| off_arg_low(a) == k) {
                                args[a as usize] as u32
                            } else {
                                let a = (0..MAX_ARGS)
                                    .find(|&a| off_arg_high(a) == k)
                                    .unwrap_or_else(|| panic!("load of offset {k}"));
                                (args[a as usize] >> 32) as u32
                            }
                        }
                    }
                }
                RET => return (i.k, steps),
                JA => pc += i.k as usize,
                AND => acc &= i.k,
                JEQ | JGE | JGT | JSET => {
                    let taken = match i.code {
                        JEQ => acc == i.k,
                        JGE => acc >= i.k,
                        JGT => acc > i.k,
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
            Verdict::DenyIf {
                tests: vec![ArgTest::any_bit(0, 0x7000_0000)],
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

    /// Several tests on several arguments: any match denies, the rest is allowed, the
    /// upper 32 bits are ignored (as the kernel ignores them for an `int` argument), and
    /// the numbers around the filtered one are untouched.
    #[test]
    fn argument_tests_any_match_denies() {
        let arch = native_arch().unwrap();
        let mut r = rules(60);
        let tests = vec![
            ArgTest::eq(0, 38),
            ArgTest::eq(0, 40),
            ArgTest::eq(2, 0x5412),
            ArgTest::any_bit(1, 0x8),
        ];
        r.insert(41, Verdict::DenyIf { tests, errno: 97 });
        let prog = compile(&r).unwrap();
        let deny = libc::SECCOMP_RET_ERRNO | 97;
        let allow = libc::SECCOMP_RET_ALLOW;
        let at = |args: [u64; 6]| run_args(&prog, arch, 41, args).0;
        assert_eq!(at([38, 0, 0, 0, 0, 0]), deny);
        assert_eq!(at([40, 0, 0, 0, 0, 0]), deny);
        assert_eq!(
            at([0x1_0000_0028, 0, 0, 0, 0, 0]),
            deny,
            "upper half ignored"
        );
        assert_eq!(at([39, 0, 0, 0, 0, 0]), allow);
        assert_eq!(at([2, 0, 0x5412, 0, 0, 0]), deny);
        assert_eq!(at([2, 0, 0x5413, 0, 0, 0]), allow);
        assert_eq!(at([2, 0x18, 0, 0, 0, 0]), deny);
        assert_eq!(at([2, 0x7, 0x5411, 0, 0, 0]), allow);
        // The neighbours keep their own verdicts.
        assert_eq!(run(&prog, arch, 40, 40).0, allow);
        assert_eq!(run(&prog, arch, 45, 40).0, libc::SECCOMP_RET_ERRNO | 1);
        // An empty list allows; a seventh argument is refused at compile time.
        let mut r = BTreeMap::new();
        r.insert(
            41,
            Verdict::DenyIf {
                tests: vec![],
                errno: 1,
            },
        );
        assert_eq!(run(&compile(&r).unwrap(), arch, 41, 0).0, allow);
        r.insert(
            41,
            Verdict::DenyIf {
                tests: vec![ArgTest::eq(6, 0)],
                errno: 1,
            },
        );
        assert!(matches!(compile(&r), Err(Error::Security(_))));
    }

    /// Edge values for the 64-bit comparisons: the words' limits, values equal in one word
    /// and different in the other, and masks in either word.
    const EDGES: [u64; 14] = [
        0,
        1,
        0x7fff_ffff,
        0x8000_0000,
        0xffff_ffff,
        0x1_0000_0000,
        0x1_0000_0001,
        0x1_ffff_ffff,
        0x2_0000_0000,
        0x5_0000_0007,
        0x4_0000_0007,
        0x5_0000_0008,
        0x8000_0000_0000_0000,
        u64::MAX,
    ];

    fn every_op(arg: u8, v: u64) -> [ArgCmp; 7] {
        [
            ArgCmp::ne(arg, v),
            ArgCmp::lt(arg, v),
            ArgCmp::le(arg, v),
            ArgCmp::eq(arg, v),
            ArgCmp::ge(arg, v),
            ArgCmp::gt(arg, v),
            ArgCmp::masked_eq(arg, v, v & 0xffff_0000_ffff_0001),
        ]
    }

    /// Every operator on every pair of edge values, on two arguments: the program's
    /// verdict is the reference evaluation's ([`ArgCmp::holds`], plain `u64` arithmetic),
    /// for a deny rule (DenyIf) and for an allow-list rule (AllowIf).
    #[test]
    fn wide_conditions_agree_with_the_reference_on_edge_values() {
        let arch = native_arch().unwrap();
        let deny = libc::SECCOMP_RET_ERRNO | 13;
        let enosys = libc::SECCOMP_RET_ERRNO | 38;
        let allow = libc::SECCOMP_RET_ALLOW;
        let mut checked = 0;
        for arg in [0u8, 3] {
            for &v in &EDGES {
                for c in every_op(arg, v) {
                    let mut r = rules(20);
                    r.insert(
                        99,
                        Verdict::DenyIf {
                            tests: vec![ArgTest::all(&[c])],
                            errno: 13,
                        },
                    );
                    let denying = compile(&r).unwrap();
                    r.insert(
                        99,
                        Verdict::AllowIf {
                            deny: vec![],
                            errno: 1,
                            allow: vec![ArgTest::all(&[c])],
                            otherwise: 38,
                        },
                    );
                    let allowing = compile_list(&r, Some(38)).unwrap();
                    for &x in EDGES
                        .iter()
                        .chain(&[v, v.wrapping_add(1), v.wrapping_sub(1)])
                    {
                        let mut args = [0x1234_5678_9abc_def0; 6];
                        args[usize::from(arg)] = x;
                        let holds = c.holds(&args);
                        let d = run_args(&denying, arch, 99, args).0;
                        assert_eq!(d, if holds { deny } else { allow }, "{c:?} on {x:#x}");
                        let a = run_args(&allowing, arch, 99, args).0;
                        assert_eq!(a, if holds { allow } else { enosys }, "{c:?} on {x:#x}");
                        checked += 1;
                    }
                }
            }
        }
        assert!(checked > 3000, "{checked}");
    }

    /// The reference itself on values whose words disagree (so a filter comparing one word
    /// only would be wrong): 2^32 is above 2^32-1 though its low word is 0, and a
    /// difference in the high word alone makes EQ false.
    #[test]
    fn reference_compares_all_64_bits() {
        let a = |x: u64| [x, 0, 0, 0, 0, 0];
        assert!(ArgCmp::gt(0, 0xffff_ffff).holds(&a(0x1_0000_0000)));
        assert!(!ArgCmp::lt(0, 0xffff_ffff).holds(&a(0x1_0000_0000)));
        assert!(!ArgCmp::eq(0, 7).holds(&a(0x5_0000_0007)));
        assert!(ArgCmp::ne(0, 7).holds(&a(0x5_0000_0007)));
        assert!(ArgCmp::masked_eq(0, 0xffff_ffff, 7).holds(&a(0x5_0000_0007)));
        assert!(!ArgCmp::masked_eq(0, u64::MAX, 7).holds(&a(0x5_0000_0007)));
        assert!(
            !ArgCmp::masked_eq(0, 0xf, 0x10).holds(&a(0x10)),
            "value outside the mask"
        );
    }

    /// Several conditions in one rule: the rule matches only when all hold; rules are
    /// alternatives, each with its own errno; a rule that fails half-way does not leave
    /// the next rule reading the wrong word.
    #[test]
    fn conditions_of_a_rule_must_all_hold() {
        let arch = native_arch().unwrap();
        let mut r = rules(10);
        let both = ArgTest::all(&[ArgCmp::gt(0, 0xffff_ffff), ArgCmp::masked_eq(2, 0xf0, 0x30)])
            .with_errno(5);
        let other = ArgTest::all(&[ArgCmp::lt(1, 3), ArgCmp::ne(1, 0)]).with_errno(6);
        r.insert(
            77,
            Verdict::DenyIf {
                tests: vec![both, ArgTest::eq(0, 9), other],
                errno: 1,
            },
        );
        let prog = compile(&r).unwrap();
        let at = |args: [u64; 6]| run_args(&prog, arch, 77, args).0;
        let ret = |e: u32| libc::SECCOMP_RET_ERRNO | e;
        let allow = libc::SECCOMP_RET_ALLOW;
        for a0 in EDGES.iter().copied().chain([9, 0x3_0000_0009]) {
            for a1 in [0, 1, 2, 3, 0x1_0000_0001] {
                for a2 in [0x30, 0x3f, 0x40, 0x1_0000_0035] {
                    let args = [a0, a1, a2, 0, 0, 0];
                    let want = if a0 > 0xffff_ffff && a2 & 0xf0 == 0x30 {
                        ret(5)
                    } else if a0 as u32 == 9 {
                        ret(1)
                    } else if a1 < 3 && a1 != 0 {
                        ret(6)
                    } else {
                        allow
                    };
                    assert_eq!(at(args), want, "{args:x?}");
                }
            }
        }
    }

    /// An allow-list entry allowed only for some argument values (the OCI profiles'
    /// `personality` rules): the listed values run, any other value gets the list's
    /// errno, and a deny test still wins over an allow test.
    #[test]
    fn allow_if_allows_only_matching_arguments() {
        let arch = native_arch().unwrap();
        let mut r = rules(30);
        r.insert(
            135,
            Verdict::AllowIf {
                deny: vec![ArgTest::eq(1, 7)],
                errno: 13,
                allow: vec![
                    ArgTest::eq(0, 0),
                    ArgTest::eq(0, 8),
                    ArgTest::eq(0, u32::MAX),
                ],
                otherwise: 38,
            },
        );
        let prog = compile_list(&r, Some(38)).unwrap();
        let at = |args: [u64; 6]| run_args(&prog, arch, 135, args).0;
        let allow = libc::SECCOMP_RET_ALLOW;
        let enosys = libc::SECCOMP_RET_ERRNO | 38;
        assert_eq!(at([0, 0, 0, 0, 0, 0]), allow);
        assert_eq!(at([8, 0, 0, 0, 0, 0]), allow);
        assert_eq!(at([0xffff_ffff, 0, 0, 0, 0, 0]), allow);
        assert_eq!(at([0x20000, 0, 0, 0, 0, 0]), enosys);
        assert_eq!(at([8, 7, 0, 0, 0, 0]), libc::SECCOMP_RET_ERRNO | 13);
        // Numbers nobody listed get the list's errno.
        assert_eq!(run(&prog, arch, 137, 0).0, enosys);
    }
}
