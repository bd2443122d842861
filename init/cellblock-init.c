/*
 * cellblock-init: the PID 1 of a container with a new PID namespace.
 *
 * Built by build.rs as a small static, freestanding executable (no libc), embedded in the
 * cellblock library and exec'd from a sealed memfd (see src/init.rs for why). It is a
 * separate program on purpose: it must not share the supervisor's address space, and it
 * must not cost more to start when the supervisor's heap is large.
 *
 * Why no libc: a static glibc spends most of its start-up in CPU feature detection
 * (dozens of CPUID instructions, each a VM exit costing ~10 us on a virtual machine), which
 * measured here as most of the init's whole cost. Raw system calls keep an init that only
 * starts the workload, waits and forwards signals at a few syscalls of start-up. Supported: x86_64 and
 * aarch64.
 *
 * What it does (tini-like):
 *   0. makes itself non-dumpable (see "Out of the workload's reach" below);
 *   1. blocks every signal and reads them from a signalfd;
 *   2. moves its own cwd to "/" and starts the workload in the container's working
 *      directory, in a process group of its own (unless it shares the caller's
 *      terminal, see start_child), with a vfork-style clone (see
 *      vfork_start) and, once that returns, knows whether its execve worked: reports
 *      "started" or (stage, errno) on the report fd;
 *   3. forwards every signal but SIGCHLD to the workload, reaps every child (orphans
 *      included) with wait4(-1, WNOHANG) whenever SIGCHLD arrives (they coalesce);
 *   4. when the workload exits: SIGTERM to everything left in the namespace, waits up to
 *      the grace period, then SIGKILL; writes the workload's wait status to the report fd
 *      and exits with its code, or 128+signal;
 *   5. if the lifeline (a pidfd of the supervisor process) becomes readable, the
 *      supervisor died (even by SIGKILL): kills everything at once and exits (with
 *      PDEATHSIG, first forwards it and gives the workload the grace period).
 * Without a PID namespace of its own (FLAGS bit 3) "everything" is its descendants, as a
 * subreaper: see signal_leftovers.
 *
 * argv: cellblock-init REPORT_FD LIFELINE_FD GRACE_MS FLAGS PDEATHSIG SUCCESS REWRITES
 *                      PATH ARGV0 [ARGS...]
 * The environment is the workload's. FLAGS bit 0: fd 0 is a terminal whose foreground
 * process group the workload gets. FLAGS bit 1: stay dumpable (ContainerBuilder::
 * init_dumpable, a debugging opt-out that gives the workload all of the below back).
 * FLAGS bit 2: forward signals to the workload's process group, not the workload alone
 * (tini -g, dumb-init's setsid mode). FLAGS bit 3: no PID namespace of our own: run as a
 * child subreaper (tini -s) and end leftovers by walking our descendants, never with
 * kill(-1), which would reach the host's processes. FLAGS bit 4: the workload gets a
 * process group of its own even on a terminal shared with the caller (process_group(0)).
 * PDEATHSIG: 0, or the signal forwarded to the workload when the supervisor dies (tini
 * -p); the workload then has the grace period to exit before everything is killed.
 * SUCCESS: exit codes reported as 0 (tini -e), comma-separated, may be empty.
 * REWRITES: "from:to" pairs, comma-separated, may be empty: a received `from` is
 * forwarded as `to`, or dropped when `to` is 0 (dumb-init -r).
 * The supervisor validates all of these (src/plan/session.rs); we only parse them.
 *
 * Out of the workload's reach. The init runs with the workload's credentials, so by the
 * ordinary ptrace access rules the workload could reopen our descriptors through
 * /proc/1/fd/N (close-on-exec is no protection against a reopen), copy them with
 * pidfd_getfd, read and write /proc/1/mem, or ptrace us, and through any of these forge
 * the status we report or make us exit 0. A non-dumpable process (PR_SET_DUMPABLE 0)
 * fails that access check for every caller without CAP_SYS_PTRACE over our user
 * namespace, which the workload does not have unless the caller kept it on purpose (runc
 * does the same for its init). Dumpability belongs to the memory map: execve resets it
 * (which is why we set it first thing after ours), a credential change may reset it (we
 * make none), and the workload's own execve gives the workload a fresh, dumpable map of
 * its own, so its /proc/self, `ps` and debuggers work as usual. Between our execve and the
 * prctl no process of the workload exists yet; and since our image is execute-only
 * (src/init.rs), the kernel usually starts us non-dumpable anyway, which also closes that
 * window to processes outside the container that share the workload's uid.
 *
 * Report records are 8 bytes: u32 tag, i32 value (native endian). The tags and stage
 * numbers must match src/init.rs and src/error.rs.
 */
#include <asm/unistd.h>
#include <linux/poll.h>
#include <linux/sched.h>
#include <linux/signal.h>
#include <linux/time.h>

typedef unsigned long size_t;

/* The protocol's numbers (stages, message tags, FLAGS bits) are Rust's, passed by build.rs. */
#ifndef STAGE_CHDIR
#error "STAGE_CHDIR: build.rs passes the protocol (src/protocol.rs C_DEFINES) as -D flags"
#endif
#ifndef STAGE_EXECVE
#error "STAGE_EXECVE: build.rs passes the protocol (src/protocol.rs C_DEFINES) as -D flags"
#endif
#ifndef STAGE_INIT_START
#error "STAGE_INIT_START: build.rs passes the protocol (src/protocol.rs C_DEFINES) as -D flags"
#endif
#ifndef STAGE_INIT_SETUP
#error "STAGE_INIT_SETUP: build.rs passes the protocol (src/protocol.rs C_DEFINES) as -D flags"
#endif
#ifndef MSG_STARTED
#error "MSG_STARTED: build.rs passes the protocol (src/protocol.rs C_DEFINES) as -D flags"
#endif
#ifndef MSG_STATUS
#error "MSG_STATUS: build.rs passes the protocol (src/protocol.rs C_DEFINES) as -D flags"
#endif
#ifndef FLAG_TTY
#error "FLAG_TTY: build.rs passes the protocol (src/protocol.rs C_DEFINES) as -D flags"
#endif
#ifndef FLAG_DUMPABLE
#error "FLAG_DUMPABLE: build.rs passes the protocol (src/protocol.rs C_DEFINES) as -D flags"
#endif
#ifndef FLAG_GROUP
#error "FLAG_GROUP: build.rs passes the protocol (src/protocol.rs C_DEFINES) as -D flags"
#endif
#ifndef FLAG_SUBREAPER
#error "FLAG_SUBREAPER: build.rs passes the protocol (src/protocol.rs C_DEFINES) as -D flags"
#endif
#ifndef FLAG_OWN_GROUP
#error "FLAG_OWN_GROUP: build.rs passes the protocol (src/protocol.rs C_DEFINES) as -D flags"
#endif

#define EINTR 4
#define EAGAIN 11
#define ECHILD 10
#define F_SETFD 2
#define FD_CLOEXEC 1
#define O_CLOEXEC 02000000
#define O_NONBLOCK 04000
#define WNOHANG 1
#define TIOCSPGRP 0x5410
#define TIOCGPGRP 0x540F
#define PR_SET_DUMPABLE 4
#define PR_SET_CHILD_SUBREAPER 36
#define AT_FDCWD_ (-100)
#define O_RDONLY_ 0
#define O_PATH_ 010000000
#define MAXSIG 64
#define SIG_SETMASK_ 2
#define CLOCK_MONOTONIC_ 1

/* ---- raw system calls --------------------------------------------------------------- */

#if defined(__x86_64__)
static inline long sc6(long n, long a, long b, long c, long d, long e, long f)
{
    register long r10 __asm__("r10") = d;
    register long r8 __asm__("r8") = e;
    register long r9 __asm__("r9") = f;
    long ret;
    __asm__ volatile("syscall"
                     : "=a"(ret)
                     : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                     : "rcx", "r11", "memory");
    return ret;
}
__asm__(".text\n.global _start\n_start:\n"
        "  xor %rbp, %rbp\n"
        "  mov %rsp, %rdi\n"
        "  and $-16, %rsp\n"
        "  call cmain\n"
        "  hlt\n");
#elif defined(__aarch64__)
static inline long sc6(long n, long a, long b, long c, long d, long e, long f)
{
    register long x8 __asm__("x8") = n;
    register long x0 __asm__("x0") = a;
    register long x1 __asm__("x1") = b;
    register long x2 __asm__("x2") = c;
    register long x3 __asm__("x3") = d;
    register long x4 __asm__("x4") = e;
    register long x5 __asm__("x5") = f;
    __asm__ volatile("svc 0"
                     : "+r"(x0)
                     : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4), "r"(x5)
                     : "memory");
    return x0;
}
__asm__(".text\n.global _start\n_start:\n"
        "  mov x29, #0\n"
        "  mov x30, #0\n"
        "  mov x0, sp\n"
        "  and sp, x0, #-16\n"
        "  bl cmain\n"
        "  brk #0\n");
#else
#error "cellblock-init supports x86_64 and aarch64"
#endif

#define sc0(n) sc6(n, 0, 0, 0, 0, 0, 0)
#define sc1(n, a) sc6(n, (long)(a), 0, 0, 0, 0, 0)
#define sc2(n, a, b) sc6(n, (long)(a), (long)(b), 0, 0, 0, 0)
#define sc3(n, a, b, c) sc6(n, (long)(a), (long)(b), (long)(c), 0, 0, 0)
#define sc4(n, a, b, c, d) sc6(n, (long)(a), (long)(b), (long)(c), (long)(d), 0, 0)
#define sc5(n, a, b, c, d, e) sc6(n, (long)(a), (long)(b), (long)(c), (long)(d), (long)(e), 0)

/* The compiler may emit calls to these for struct copies. */
void *memset(void *d, int c, size_t n)
{
    unsigned char *p = d;
    while (n--)
        *p++ = (unsigned char)c;
    return d;
}
void *memcpy(void *d, const void *s, size_t n)
{
    unsigned char *p = d;
    const unsigned char *q = s;
    while (n--)
        *p++ = *q++;
    return d;
}

static __attribute__((noreturn)) void exit_now(int code)
{
    for (;;)
        sc1(__NR_exit_group, code);
}

static long parse(const char *s)
{
    long v = 0, neg = 0;
    if (*s == '-') {
        neg = 1;
        s++;
    }
    while (*s >= '0' && *s <= '9')
        v = v * 10 + (*s++ - '0');
    return neg ? -v : v;
}

/* Parses a decimal number at *s and moves *s past it. */
static long parse_next(const char **s)
{
    long v = 0;
    while (**s >= '0' && **s <= '9')
        v = v * 10 + (*(*s)++ - '0');
    return v;
}

/* ---- the init ------------------------------------------------------------------------- */

static int report_fd = -1;
static int lifeline_fd = -1;
static int sig_fd = -1;
static long flags;
static long grace_ms;
static int workload = -1;
/* rewrite[s]: -1 forward s as it is, 0 drop it, else forward that signal instead. */
static signed char rewrite[MAXSIG + 1];
/* Bit c: exit code c is reported as 0. */
static unsigned char success[32];
static int pdeath_sig;
/* When the supervisor died and the workload got PDEATHSIG: the time (ms) at which
 * everything is killed anyway; -1 otherwise. */
static long long orphaned_until = -1;

static void report(unsigned tag, int value)
{
    unsigned char buf[8];
    if (report_fd < 0)
        return;
    memcpy(buf, &tag, 4);
    memcpy(buf + 4, &value, 4);
    /* One 8-byte write to a pipe is atomic. A failure (the supervisor closed its end)
     * changes nothing for us. */
    while (sc3(__NR_write, report_fd, buf, 8) == -EINTR)
        ;
}

static long long now_ms(void)
{
    struct timespec ts;
    sc2(__NR_clock_gettime, CLOCK_MONOTONIC_, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Writes pid in decimal at p; returns the end. */
static char *put_num(char *p, long v)
{
    char tmp[20];
    int n = 0;
    do
        tmp[n++] = (char)('0' + v % 10);
    while ((v /= 10) > 0);
    while (n > 0)
        *p++ = tmp[--n];
    return p;
}

/* Sends sig to every descendant of pid, parents before their children, from
 * /proc/PID/task/PID/children (the init has one thread). Returns 0 if that file cannot be
 * read (no /proc here). A process that forks between our read and its signal can leave a
 * child unsignalled: the callers repeat until no child is left. Depth-limited: the list
 * of a deeper level is reached again once the levels above it are gone (their orphans
 * are reparented to us, the subreaper). */
static int signal_tree(long pid, int sig, int depth)
{
    char path[64], *p = path;
    const char *a = "/proc/", *b = "/task/", *c = "/children";
    while (*a)
        *p++ = *a++;
    p = put_num(p, pid);
    while (*b)
        *p++ = *b++;
    p = put_num(p, pid);
    while (*c)
        *p++ = *c++;
    *p = 0;
    long fd = sc4(__NR_openat, AT_FDCWD_, path, O_RDONLY_ | O_CLOEXEC, 0);
    if (fd < 0)
        return 0;
    char buf[256];
    long cur = 0;
    int in = 0;
    for (;;) {
        long n = sc3(__NR_read, fd, buf, sizeof buf);
        if (n == -EINTR)
            continue;
        if (n <= 0)
            break;
        for (long i = 0; i < n; i++) {
            if (buf[i] >= '0' && buf[i] <= '9') {
                cur = cur * 10 + (buf[i] - '0');
                in = 1;
            } else if (in) {
                sc2(__NR_kill, cur, sig);
                if (depth < 16)
                    signal_tree(cur, sig, depth + 1);
                cur = 0;
                in = 0;
            }
        }
    }
    if (in) {
        sc2(__NR_kill, cur, sig);
        if (depth < 16)
            signal_tree(cur, sig, depth + 1);
    }
    sc1(__NR_close, fd);
    return 1;
}

/* Sends sig to everything the workload left: with our own PID namespace every process in
 * it but us (kill(-1)); as a subreaper without one, our descendants only (kill(-1) would
 * reach every process of the host our credentials may signal), or, without a /proc to
 * list them, the workload's process group. */
static void signal_leftovers(int sig)
{
    if (!(flags & FLAG_SUBREAPER)) {
        sc2(__NR_kill, -1, sig);
        return;
    }
    if (!signal_tree(sc0(__NR_getpid), sig, 0) && workload > 0)
        sc2(__NR_kill, -workload, sig);
}

/* The supervisor is gone: nobody will ever read or reap us. Take the container down.
 * With a PID namespace, the kernel kills whatever is left when we exit. As a subreaper,
 * nothing would: repeat the walk until no child is left (a process forked between a
 * walk and its signal, or whose parent died before we read its list, is reparented to
 * us), for at most ~2 s. */
static __attribute__((noreturn)) void supervisor_died(void)
{
    for (int round = 0; round < 100; round++) {
        signal_leftovers(SIGKILL);
        if (!(flags & FLAG_SUBREAPER))
            break;
        long p;
        int st;
        while ((p = sc4(__NR_wait4, -1, &st, WNOHANG, 0)) > 0 || p == -EINTR)
            ;
        if (p < 0)
            break; /* ECHILD: none left */
        struct timespec ts = {0, 20 * 1000000};
        sc5(__NR_ppoll, 0, 0, &ts, 0, 8);
    }
    exit_now(137);
}

/* The supervisor is gone. With a parent-death signal, the workload gets it and the grace
 * period to exit on its own (tini -p); otherwise, or if it was sent already, everything
 * dies now. */
static void lifeline_fired(void);

/* Waits for a signal or the lifeline for at most timeout_ms (-1: forever). Returns 1 if
 * the signalfd is readable. */
static int wait_events(long timeout_ms)
{
    struct pollfd pfd[2];
    struct timespec ts, *tsp = 0;
    int n = 1;
    pfd[0].fd = sig_fd;
    pfd[0].events = POLLIN;
    pfd[0].revents = 0;
    if (lifeline_fd >= 0) {
        pfd[1].fd = lifeline_fd;
        pfd[1].events = POLLIN;
        pfd[1].revents = 0;
        n = 2;
    }
    if (timeout_ms >= 0) {
        ts.tv_sec = timeout_ms / 1000;
        ts.tv_nsec = (timeout_ms % 1000) * 1000000;
        tsp = &ts;
    }
    long r = sc5(__NR_ppoll, pfd, n, tsp, 0, 8);
    if (r <= 0)
        return 0;
    if (n == 2) {
        /* A pidfd is readable once its process has exited, and nothing else makes it so:
         * nobody can write into a pidfd (write() fails with EINVAL), so no process can
         * make us spin on data, and holding a copy keeps nobody alive. POLLHUP/POLLERR
         * too: the process is gone (reaped). POLLNVAL cannot happen (we never close the
         * descriptor); were it to, we stop watching rather than spin. */
        if (pfd[1].revents & (POLLIN | POLLHUP | POLLERR))
            lifeline_fired();
        if (pfd[1].revents & POLLNVAL)
            lifeline_fd = -1;
    }
    return (pfd[0].revents & POLLIN) != 0;
}

/* Forwards sig, as rewritten, to the workload `to`, or to its process group in group
 * mode. The group may not exist (the workload shares the caller's terminal group, see
 * start_child, or moved itself out): then to the workload alone. */
static void forward(int to, int sig)
{
    if (sig >= 1 && sig <= MAXSIG && rewrite[sig] >= 0)
        sig = rewrite[sig];
    if (sig == 0 || to <= 0)
        return;
    if ((flags & FLAG_GROUP) && sc2(__NR_kill, -to, sig) == 0)
        return;
    sc2(__NR_kill, to, sig);
}

static void lifeline_fired(void)
{
    if (pdeath_sig == 0 || orphaned_until >= 0)
        supervisor_died();
    /* Stop watching: the pidfd stays readable. */
    lifeline_fd = -1;
    orphaned_until = now_ms() + grace_ms;
    forward(workload, pdeath_sig);
}

/* Drains the signalfd; forwards everything but SIGCHLD to `to` (when > 0). */
static void drain_signals(int to)
{
    unsigned int si[32]; /* struct signalfd_siginfo: 128 bytes, ssi_signo first */
    while (sc3(__NR_read, sig_fd, si, sizeof si) == (long)sizeof si) {
        if (si[0] != SIGCHLD && to > 0)
            forward(to, (int)si[0]);
    }
}

/* Reaps every exited child, recording the workload's status. Returns -1 once there are
 * no children left at all. */
static int reap(int workload, int *status, int *done)
{
    for (;;) {
        int st = 0;
        long p = sc4(__NR_wait4, -1, &st, WNOHANG, 0);
        if (p == 0)
            return 0;
        if (p == -EINTR)
            continue;
        if (p < 0)
            return -1;
        if (p == workload && !*done) {
            *status = st;
            *done = 1;
        }
    }
}

/* ---- starting the workload: a vfork on a stack of its own ------------------------------
 *
 * The workload is started with clone(CLONE_VM | CLONE_VFORK | SIGCHLD), as posix_spawn
 * does, instead of a fork: no copy of our page tables and memory map (a fork cost about as
 * much kernel time as the workload's whole execve), and we sleep until the child has exec'd
 * or exited, so its result is known when the clone returns.
 *
 * The child shares our memory, so it must not run on our stack: C code after a
 * clone that "returns twice" on one stack may reuse stack slots the parent still needs
 * (the compiler cannot know), which is why vfork needs special care. It runs instead on
 * `child_stack` (see vfork_start), entering `start_child` through
 * the few instructions below, which are part of the same asm statement as the syscall so
 * that no compiled C code runs between the clone and the switch to the new stack: the
 * kernel returns 0 in the child with the stack pointer already at the top of
 * `child_stack`, and the child calls fn(arg) there, which never returns (it execs or
 * exits). The parent only continues after the syscall, on its own stack.
 *
 * No signal handler of ours can run in the child: we install none (every signal is
 * blocked and read from a signalfd), and the child keeps them blocked until just before
 * execve, when every disposition is still SIG_DFL.
 */

struct start {
    const char *path;
    char **argv;
    char **envp;
    long flags;
    /* The workload's working directory (O_PATH), or -1: see cmain. */
    int cwd_fd;
    /* Written by the child (shared memory) when its fchdir or execve fails; read by the
     * parent once the clone returned, which is after the child exec'd or exited. */
    volatile int exec_errno;
    volatile unsigned fail_stage;
};

/* Not static: called by name from the asm in vfork_start. */
__attribute__((noreturn, used)) void start_child(struct start *s);
__attribute__((noreturn, used)) void start_child(struct start *s)
{
    /* A process group of its own (as tini and dumb-init do): the workload's job control
     * and its `kill 0` then cover the workload's processes, not the init. Cannot fail:
     * we are not a session leader, and the group is our own new one.
     * One exception: a controlling terminal that is not ours to manage (the caller's, with
     * new_session(false)) whose foreground group is the supervisor's: a new group would
     * be a background job there and stop on its first terminal read (SIGTTIN), so the
     * workload stays in the group it shares with the supervisor, as it did before the
     * init, unless process_group(0) asked for a group of its own anyway (FLAG_OWN_GROUP).
 * TIOCGPGRP succeeds only on the caller's controlling terminal. */
    int pg;
    int shared_tty = 0;
    for (int fd = 0; fd < 3 && !(s->flags & (FLAG_TTY | FLAG_OWN_GROUP)); fd++)
        if (sc3(__NR_ioctl, fd, TIOCGPGRP, &pg) == 0)
            shared_tty = 1;
    if (!shared_tty)
        sc2(__NR_setpgid, 0, 0);
    if (s->flags & FLAG_TTY) {
        /* In the foreground of the terminal, so that ^C reaches the workload once (not the
         * init too). SIGTTOU is still blocked here, which is what lets a background group
         * take the foreground. */
        int me = (int)sc0(__NR_getpid);
        sc3(__NR_ioctl, 0, TIOCSPGRP, &me);
    }
    if (s->cwd_fd >= 0) {
        long c = sc1(__NR_fchdir, s->cwd_fd);
        if (c < 0) {
            s->fail_stage = STAGE_CHDIR;
            s->exec_errno = (int)-c;
            exit_now(127);
        }
    }
    unsigned long none = 0;
    sc4(__NR_rt_sigprocmask, SIG_SETMASK_, &none, 0, 8);
    long e = sc3(__NR_execve, s->path, s->argv, s->envp);
    s->fail_stage = STAGE_EXECVE;
    s->exec_errno = (int)-e;
    /* exit_group ends this task only: it shares our memory, not our thread group. */
    exit_now(127);
}

/* Returns the child's pid, or -errno. */
static long vfork_start(struct start *s)
{
    /* The child's stack: a part of our own frame, which we do not touch while the child
     * runs (we sleep in the syscall until it exec'd or exited). Here rather than in .bss,
     * it usually lies in a stack page that is already mapped: no page fault, and no
     * anonymous mapping for a large .bss at exec. The child needs a few hundred bytes. */
    unsigned char child_stack[4096] __attribute__((aligned(16)));
    unsigned long flags = CLONE_VM | CLONE_VFORK | SIGCHLD;
    void *top = child_stack + sizeof child_stack; /* 16-byte aligned */
#if defined(__x86_64__)
    /* clone(flags, stack, parent_tid, child_tid, tls): rdi, rsi, rdx, r10, r8. The
     * syscall preserves every register but rax, rcx and r11, so in the child r12 still
     * holds the argument. rsp is 16-byte aligned before the call, as the ABI wants. */
    register long r10 __asm__("r10") = 0;
    register long r8 __asm__("r8") = 0;
    register struct start *r12 __asm__("r12") = s;
    long ret;
    __asm__ volatile("syscall\n"
                     "  test %%rax, %%rax\n"
                     "  jnz 1f\n"
                     "  xor %%ebp, %%ebp\n"
                     "  mov %%r12, %%rdi\n"
                     "  call start_child\n"
                     "  hlt\n"
                     "1:\n"
                     : "=a"(ret)
                     : "a"((long)__NR_clone), "D"(flags), "S"(top), "d"(0L), "r"(r10), "r"(r8),
                       "r"(r12)
                     : "rcx", "r11", "memory", "cc");
    return ret;
#elif defined(__aarch64__)
    /* clone(flags, stack, parent_tid, tls, child_tid): x0..x4. The svc preserves every
     * register but x0, so in the child x19 still holds the argument; sp is the new stack
     * (16-byte aligned, as the architecture requires). */
    register long x8 __asm__("x8") = __NR_clone;
    register long x0 __asm__("x0") = (long)flags;
    register long x1 __asm__("x1") = (long)top;
    register long x2 __asm__("x2") = 0;
    register long x3 __asm__("x3") = 0;
    register long x4 __asm__("x4") = 0;
    register struct start *x19 __asm__("x19") = s;
    __asm__ volatile("svc 0\n"
                     "  cbnz x0, 1f\n"
                     "  mov x29, #0\n"
                     "  mov x30, #0\n"
                     "  mov x0, x19\n"
                     "  bl start_child\n"
                     "  brk #0\n"
                     "1:\n"
                     : "+r"(x0)
                     : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4), "r"(x19)
                     : "memory", "cc");
    return x0;
#endif
}

int cmain(long *sp)
{
    long argc = sp[0];
    char **argv = (char **)(sp + 1);
    char **envp = argv + argc + 1;
    if (argc < 10)
        exit_now(126);
    report_fd = (int)parse(argv[1]);
    lifeline_fd = (int)parse(argv[2]);
    grace_ms = parse(argv[3]);
    flags = parse(argv[4]);
    pdeath_sig = (int)parse(argv[5]);
    for (const char *s = argv[6]; *s;) {
        long code = parse_next(&s);
        if (code >= 0 && code <= 255)
            success[code >> 3] |= (unsigned char)(1u << (code & 7));
        if (*s)
            s++;
    }
    for (int i = 0; i <= MAXSIG; i++)
        rewrite[i] = -1;
    for (const char *s = argv[7]; *s;) {
        long from = parse_next(&s);
        long to = *s == ':' ? (s++, parse_next(&s)) : from;
        if (from >= 1 && from <= MAXSIG && to >= 0 && to <= MAXSIG)
            rewrite[from] = (signed char)to;
        if (*s)
            s++;
    }
    const char *path = argv[8];
    char **wargv = argv + 9;

    /* First of all, before any process of the workload exists: out of its reach (see
     * the header). Only the caller's explicit debugging opt-out skips it. A failure
     * (impossible for these arguments) is reported like any setup failure. */
    {
        /* Usually the kernel made us non-dumpable already (our image is execute-only, see
         * src/init.rs); this also covers fs.suid_dumpable != 0 and a caller whose kept
         * capabilities can read the image. The opt-out sets it back to dumpable. */
        long d = sc2(__NR_prctl, PR_SET_DUMPABLE, (flags & FLAG_DUMPABLE) ? 1 : 0);
        if (d < 0) {
            report(STAGE_INIT_SETUP, (int)-d);
            exit_now(127);
        }
    }

    /* The report and lifeline fds were passed to us on purpose; the workload must not
     * inherit them (one holding the report fd could forge our messages). */
    if (report_fd >= 0)
        sc3(__NR_fcntl, report_fd, F_SETFD, FD_CLOEXEC);
    if (lifeline_fd >= 0)
        sc3(__NR_fcntl, lifeline_fd, F_SETFD, FD_CLOEXEC);

    /* Every signal, the synchronous fault signals included. The kernel drops a signal
     * sent to a namespace's PID 1 that it leaves at SIG_DFL *unblocked*; blocked ones are
     * queued, and the signalfd reads them, so that a SIGSEGV, SIGBUS, SIGILL, SIGFPE,
     * SIGABRT, SIGTRAP or SIGSYS sent with kill() is forwarded to the workload like any
     * other. Blocking them does not make a crashing init spin: a real fault is forced
     * (force_sig_info_to_task unblocks the signal, resets it to SIG_DFL and clears PID 1's
     * immunity), so a faulting init still dies. SIGKILL and SIGSTOP cannot be blocked (the
     * kernel silently leaves them out of the mask). */
    unsigned long all = ~0UL;
    long r = sc4(__NR_rt_sigprocmask, SIG_SETMASK_, &all, 0, 8);
    if (r < 0) {
        report(STAGE_INIT_SETUP, (int)-r);
        exit_now(127);
    }
    sig_fd = (int)sc4(__NR_signalfd4, -1, &all, 8, O_CLOEXEC | O_NONBLOCK);
    if (sig_fd < 0) {
        report(STAGE_INIT_SETUP, -sig_fd);
        exit_now(127);
    }
    /* Without a PID namespace of our own, orphans would go past us to the host's init (or
     * the caller's subreaper): as a subreaper they come to us, and we reap them. */
    if (flags & FLAG_SUBREAPER) {
        long e = sc2(__NR_prctl, PR_SET_CHILD_SUBREAPER, 1);
        if (e < 0) {
            report(STAGE_INIT_SETUP, (int)-e);
            exit_now(127);
        }
    }
    /* The init keeps no working directory of its own (it must not hold one busy for the
     * container's whole life; "/" is the container's root, which it holds anyway), and
     * moves there before the workload exists, so that no process of the workload ever
     * sees it elsewhere. The workload gets the container's working directory back from
     * this descriptor (close-on-exec) in start_child. */
    int cwd_fd = (int)sc4(__NR_openat, AT_FDCWD_, ".", O_PATH_ | O_CLOEXEC, 0);
    if (cwd_fd >= 0)
        sc1(__NR_chdir, "/");
    struct start start = {path, wargv, envp, flags, cwd_fd, 0, 0};
    long child = vfork_start(&start);
    if (cwd_fd >= 0)
        sc1(__NR_close, cwd_fd);
    if (child < 0) {
        report(STAGE_INIT_START, (int)-child);
        exit_now(127);
    }
    if (start.exec_errno != 0) {
        int st;
        while (sc4(__NR_wait4, child, &st, 0, 0) == -EINTR)
            ;
        report(start.fail_stage, start.exec_errno);
        exit_now(127);
    }
    workload = (int)child;
    report(MSG_STARTED, (int)child);
    /* Without the descriptor (cannot happen: O_PATH needs no permission) the workload
     * inherited our directory at the clone (CLONE_VM without CLONE_FS gives it a copy),
     * and we leave it only now. */
    if (cwd_fd < 0)
        sc1(__NR_chdir, "/");
    /* Our stdio belongs to the workload: holding it would delay the supervisor's EOF. */
    for (int fd = 0; fd < 3; fd++)
        if (fd != report_fd && fd != lifeline_fd)
            sc1(__NR_close, fd);

    int status = 0, done = 0;
    while (!done) {
        if (reap(child, &status, &done) < 0 || done)
            break;
        long timeout = -1;
        if (orphaned_until >= 0) {
            long long rest = orphaned_until - now_ms();
            if (rest <= 0)
                supervisor_died();
            timeout = (long)rest;
        }
        if (wait_events(timeout))
            drain_signals(child);
    }

    /* The workload is gone: end whatever it left behind, politely first. Every process
     * the workload started descends from us (orphans are reparented to us), so "no child
     * left" means none is left, and kill(-1) (a walk over every process of the host) is
     * skipped in the common case. Processes that entered the namespace with setns are not
     * our children; the kernel SIGKILLs them when we exit. As a subreaper (no namespace of
     * our own) the same holds for our descendants, which we signal one by one. */
    if (reap(child, &status, &done) == 0) {
        signal_leftovers(SIGTERM);
        long long deadline = now_ms() + grace_ms;
        int left = 1;
        for (;;) {
            if (reap(child, &status, &done) < 0) {
                left = 0;
                break;
            }
            long long rest = deadline - now_ms();
            if (rest <= 0)
                break;
            if (wait_events((long)rest))
                drain_signals(0);
        }
        if (left && !(flags & FLAG_SUBREAPER)) {
            sc2(__NR_kill, -1, SIGKILL);
            for (;;) {
                int st;
                long p = sc4(__NR_wait4, -1, &st, 0, 0);
                if (p < 0 && p != -EINTR)
                    break;
            }
        }
        /* One walk over our descendants can miss a process forked meanwhile: repeat
         * until none is left. */
        while (left && reap(child, &status, &done) == 0) {
            signal_leftovers(SIGKILL);
            if (wait_events(20))
                drain_signals(0);
        }
    }

    /* tini -e: the listed exit codes count as success. A death by signal stays one. */
    if ((status & 0x7f) == 0 && (success[(status >> 11) & 31] >> ((status >> 8) & 7)) & 1)
        status = 0;
    report(MSG_STATUS, status);
    if ((status & 0x7f) == 0)
        exit_now((status >> 8) & 0xff);
    exit_now(128 + (status & 0x7f));
}
