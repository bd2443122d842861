/*
 * cellblock-init: the PID 1 of a container with a new PID namespace.
 *
 * Built by build.rs as a small static executable, embedded in the cellblock library and
 * exec'd from a sealed memfd (see src/init.rs for why). It is a separate program on
 * purpose: it must not share the supervisor's address space, and it must not cost more
 * to start when the supervisor's heap is large.
 *
 * What it does (tini-like):
 *   1. blocks every asynchronous signal and reads them from a signalfd;
 *   2. starts the workload with vfork+execve, so that the result of execve is known
 *      before anything is reported; reports "started" or (stage, errno) on the report fd;
 *   3. forwards every signal but SIGCHLD to the workload, reaps every child (orphans
 *      included) with waitpid(-1, WNOHANG) whenever SIGCHLD arrives (they coalesce);
 *   4. when the workload exits: SIGTERM to everything left in the namespace, waits up to
 *      the grace period, then SIGKILL; writes the workload's wait status to the report
 *      fd and exits with its code, or 128+signal;
 *   5. if the lifeline fd hangs up (the supervisor died, even by SIGKILL), kills
 *      everything at once and exits.
 *
 * argv: cellblock-init REPORT_FD LIFELINE_FD GRACE_MS FLAGS PATH ARGV0 [ARGS...]
 * The environment is the workload's. FLAGS bit 0: stdin is a terminal that the workload
 * gets as foreground process group.
 *
 * Report records are 8 bytes: u32 tag, i32 value (native endian). The tags must match
 * src/init.rs.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define STAGE_EXECVE 11u
#define STAGE_INIT_START 41u
#define STAGE_INIT_SETUP 44u
#define MSG_STARTED 0x100u
#define MSG_STATUS 0x101u

extern char **environ;

static int report_fd = -1;
static int lifeline_fd = -1;
static int sig_fd = -1;

static void report(unsigned tag, int value)
{
    unsigned char buf[8];
    if (report_fd < 0)
        return;
    memcpy(buf, &tag, 4);
    memcpy(buf + 4, &value, 4);
    /* One 8-byte write to a pipe is atomic. A failure (the supervisor closed its end)
     * changes nothing for us. */
    while (write(report_fd, buf, sizeof buf) < 0 && errno == EINTR)
        ;
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The supervisor is gone: nobody will ever read or reap us. Take the namespace down. */
static void supervisor_died(void)
{
    kill(-1, SIGKILL);
    _exit(137);
}

/* Waits for a signal or the lifeline for at most timeout_ms (-1: forever). Returns 1 if
 * the signalfd is readable. */
static int wait_events(int timeout_ms)
{
    struct pollfd pfd[2];
    int n = 1;
    pfd[0].fd = sig_fd;
    pfd[0].events = POLLIN;
    if (lifeline_fd >= 0) {
        pfd[1].fd = lifeline_fd;
        pfd[1].events = POLLIN;
        n = 2;
    }
    int r = poll(pfd, n, timeout_ms);
    if (r <= 0)
        return 0;
    if (n == 2 && (pfd[1].revents & (POLLHUP | POLLERR)))
        supervisor_died();
    return (pfd[0].revents & POLLIN) != 0;
}

/* Drains the signalfd; forwards everything but SIGCHLD to `to` (when > 0). */
static void drain_signals(pid_t to)
{
    struct signalfd_siginfo si;
    while (read(sig_fd, &si, sizeof si) == (ssize_t)sizeof si) {
        if (si.ssi_signo != SIGCHLD && to > 0)
            kill(to, (int)si.ssi_signo);
    }
}

/* Reaps every exited child. Records the workload's status. Returns -1 once there are no
 * children left at all. */
static int reap(pid_t workload, int *status, int *done)
{
    for (;;) {
        int st;
        pid_t p = waitpid(-1, &st, WNOHANG);
        if (p == 0)
            return 0;
        if (p < 0)
            return errno == EINTR ? 0 : -1;
        if (p == workload && !*done) {
            *status = st;
            *done = 1;
        }
    }
}

int main(int argc, char **argv)
{
    if (argc < 7)
        return 126;
    report_fd = atoi(argv[1]);
    lifeline_fd = atoi(argv[2]);
    long grace_ms = atol(argv[3]);
    int flags = atoi(argv[4]);
    const char *path = argv[5];
    char **wargv = argv + 6;

    /* The report and lifeline fds were passed to us on purpose; the workload must not
     * inherit them (a workload holding the lifeline would keep nothing alive, but one
     * holding the report fd could forge our messages). */
    if (report_fd >= 0)
        fcntl(report_fd, F_SETFD, FD_CLOEXEC);
    if (lifeline_fd >= 0)
        fcntl(lifeline_fd, F_SETFD, FD_CLOEXEC);

    sigset_t all, empty;
    sigfillset(&all);
    /* Synchronous faults stay deliverable: a crashing init must crash, not spin. */
    sigdelset(&all, SIGSEGV);
    sigdelset(&all, SIGBUS);
    sigdelset(&all, SIGFPE);
    sigdelset(&all, SIGILL);
    sigdelset(&all, SIGTRAP);
    sigdelset(&all, SIGSYS);
    sigdelset(&all, SIGABRT);
    sigemptyset(&empty);
    /* Blocked signals are queued even for a PID 1 (the kernel only drops signals a PID 1
     * leaves at SIG_DFL *unblocked*), and the signalfd reads them. */
    if (sigprocmask(SIG_SETMASK, &all, NULL) < 0) {
        report(STAGE_INIT_SETUP, errno);
        return 127;
    }
    sig_fd = signalfd(-1, &all, SFD_CLOEXEC | SFD_NONBLOCK);
    if (sig_fd < 0) {
        report(STAGE_INIT_SETUP, errno);
        return 127;
    }

    /* vfork: we are tiny, and the parent learns execve's result before it goes on. */
    volatile int exec_errno = 0;
    pid_t child = vfork();
    if (child == 0) {
        if (flags & 1) {
            /* Own process group in the foreground of the terminal, so that ^C reaches
             * the workload once (not the init too). SIGTTOU is still blocked here, which
             * is what lets a background group call tcsetpgrp. */
            setpgid(0, 0);
            tcsetpgrp(0, getpid());
        }
        sigprocmask(SIG_SETMASK, &empty, NULL);
        execve(path, wargv, environ);
        exec_errno = errno;
        _exit(127);
    }
    if (child < 0) {
        report(STAGE_INIT_START, errno);
        return 127;
    }
    if (exec_errno != 0) {
        int st;
        while (waitpid(child, &st, 0) < 0 && errno == EINTR)
            ;
        report(STAGE_EXECVE, exec_errno);
        return 127;
    }
    report(MSG_STARTED, child);
    /* Our stdio belongs to the workload: holding it would delay the supervisor's EOF. */
    close(0);
    close(1);
    close(2);

    int status = 0, done = 0;
    while (!done) {
        if (reap(child, &status, &done) < 0 && !done)
            break; /* cannot happen: the workload is our child until reaped */
        if (done)
            break;
        if (wait_events(-1))
            drain_signals(child);
    }

    /* The workload is gone: end whatever it left behind, politely first. */
    if (kill(-1, SIGTERM) == 0) {
        long long deadline = now_ms() + grace_ms;
        int left = 1;
        while (left) {
            if (reap(child, &status, &done) < 0) {
                left = 0;
                break;
            }
            long long rest = deadline - now_ms();
            if (rest <= 0)
                break;
            if (wait_events((int)rest))
                drain_signals(0);
        }
        if (left) {
            kill(-1, SIGKILL);
            for (;;) {
                int st;
                if (waitpid(-1, &st, 0) < 0 && errno != EINTR)
                    break;
            }
        }
    }

    report(MSG_STATUS, status);
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return 127;
}
