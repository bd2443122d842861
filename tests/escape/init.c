/*
 * The workload that attacks its own container's init (tests/escape/escape_init.rs): issue 11,
 * rows 5 (reach the init: forge the status it reports) and 6 (reach the lifeline).
 *
 * Every attempt prints one line
 *     RESULT <name> OK <detail>      the attempt worked
 *     RESULT <name> ERR <ERRNO>      it failed with that errno (e.g. EPERM)
 * so the test reads what happened. The init's descriptor numbers are public: its argv
 * (/proc/1/cmdline) is `cellblock-init REPORT_FD LIFELINE_FD ...`.
 *
 *   init status CODE ATTACKS   ATTACKS: comma-separated of
 *       forge   reopen /proc/1/fd/REPORT_FD and write a status record "exited 0";
 *       getfd   pidfd_open(1) + pidfd_getfd(REPORT_FD) and write the same record;
 *       mem     open /proc/1/mem read-write and read the init's code at its start_code;
 *       ptrace  a helper process PTRACE_SEIZEs the init; once this workload has exited
 *               with CODE (the init has reaped it and waits out its grace period), the
 *               helper stops the init and makes it call exit_group(0) (x86_64 only);
 *     then exits with CODE. Harmless to the host: it only touches its container's init.
 *   init lifeline TAG           reach the lifeline (reopen, pidfd_getfd), write a byte
 *       into whatever it got, try to signal through it, keep it open, sleep forever.
 *   init self                   what the workload itself can do: its own dumpability,
 *       its /proc/self/fd, its process group and the init's.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

#define MSG_STATUS 0x101u

static void ok(const char *name, const char *detail) {
    printf("RESULT %s OK %s\n", name, detail);
    fflush(stdout);
}

static void err(const char *name, int e) {
    const char *n = strerrorname_np(e);
    printf("RESULT %s ERR %s\n", name, n ? n : "UNKNOWN");
    fflush(stdout);
}

/* The init's argv[1] (report fd) and argv[2] (lifeline fd). */
static void init_fds(int *report, int *lifeline) {
    char buf[4096];
    int fd = open("/proc/1/cmdline", O_RDONLY);
    ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof buf - 1);
    *report = *lifeline = -1;
    if (n <= 0) return;
    buf[n] = 0;
    char *a1 = buf + strlen(buf) + 1;
    if (a1 >= buf + n) return;
    char *a2 = a1 + strlen(a1) + 1;
    *report = atoi(a1);
    if (a2 < buf + n) *lifeline = atoi(a2);
}

static int write_record(int fd) {
    uint32_t rec[2] = {MSG_STATUS, 0}; /* wait status 0: "exited 0" */
    return write(fd, rec, sizeof rec) == (ssize_t)sizeof rec ? 0 : -1;
}

static int pidfd_getfd_of_init(int target) {
    int pfd = (int)syscall(SYS_pidfd_open, 1, 0);
    if (pfd < 0) return -1;
    int fd = (int)syscall(SYS_pidfd_getfd, pfd, target, 0);
    int e = errno;
    close(pfd);
    errno = e;
    return fd;
}

static void attack_forge(int report) {
    char path[64];
    snprintf(path, sizeof path, "/proc/1/fd/%d", report);
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return err("forge", errno);
    if (write_record(fd) < 0) return err("forge", errno);
    ok("forge", "wrote a status record 'exited 0'");
}

static void attack_getfd(int report) {
    int fd = pidfd_getfd_of_init(report);
    if (fd < 0) return err("getfd", errno);
    if (write_record(fd) < 0) return err("getfd", errno);
    ok("getfd", "wrote a status record 'exited 0'");
}

static void attack_mem(void) {
    int fd = open("/proc/1/mem", O_RDWR | O_CLOEXEC);
    if (fd < 0) return err("mem", errno);
    /* start_code is field 26 of /proc/1/stat (shown as 1 to those who may not read). */
    char st[1024];
    int sfd = open("/proc/1/stat", O_RDONLY);
    ssize_t n = sfd < 0 ? -1 : read(sfd, st, sizeof st - 1);
    unsigned long start = 0;
    if (n > 0) {
        st[n] = 0;
        char *p = strrchr(st, ')');
        for (int field = 2; p && field < 26; field++) p = strchr(p + 1, ' ');
        if (p) start = strtoul(p + 1, 0, 10);
    }
    unsigned char code[4];
    if (pread(fd, code, sizeof code, (off_t)start) != (ssize_t)sizeof code)
        return err("mem", errno);
    char detail[64];
    snprintf(detail, sizeof detail, "read the init's code at %#lx", start);
    ok("mem", detail);
}

/* The helper: seizes the init now, reports, waits for the workload to exit (EOF on
 * `gone`), then turns the init's current system call into exit_group(0). */
static void tracer(int ready, int gone) {
    signal(SIGTERM, SIG_IGN); /* the init's SIGTERM to leftovers */
    if (ptrace(PTRACE_SEIZE, 1, 0, 0) < 0) {
        err("ptrace", errno);
        write(ready, "x", 1);
        _exit(0);
    }
    write(ready, "x", 1);
    close(ready);
    char c;
    while (read(gone, &c, 1) > 0)
        ;
#if defined(__x86_64__)
    /* The init now waits in ppoll for its grace period. */
    if (ptrace(PTRACE_INTERRUPT, 1, 0, 0) < 0) return err("ptrace", errno), _exit(0);
    int st;
    if (waitpid(1, &st, __WALL) < 0) return err("ptrace", errno), _exit(0);
    struct user_regs_struct r;
    if (ptrace(PTRACE_GETREGS, 1, 0, &r) < 0) return err("ptrace", errno), _exit(0);
    errno = 0;
    long text = ptrace(PTRACE_PEEKTEXT, 1, (void *)(r.rip - 2), 0);
    if (errno || (text & 0xffff) != 0x050f) {
        printf("RESULT ptrace ERR NOT_IN_SYSCALL\n");
        fflush(stdout);
        _exit(0);
    }
    r.orig_rax = (unsigned long)-1; /* no syscall restart */
    r.rax = SYS_exit_group;
    r.rdi = 0;
    r.rip -= 2; /* back onto the `syscall` instruction */
    if (ptrace(PTRACE_SETREGS, 1, 0, &r) < 0) return err("ptrace", errno), _exit(0);
    ok("ptrace", "made the init call exit_group(0)");
    ptrace(PTRACE_DETACH, 1, 0, 0);
#else
    printf("RESULT ptrace OK seized (no exit injection on this architecture)\n");
    fflush(stdout);
#endif
    pause();
    _exit(0);
}

static int cmd_status(int code, const char *attacks) {
    int report, lifeline;
    /* Let the spawn read the init's "started" record first: a forged record ahead of it
     * would only make the spawn fail, which is not the forgery we are after. */
    usleep(200000);
    init_fds(&report, &lifeline);
    if (report < 0) {
        printf("RESULT cmdline ERR NO_FDS\n");
        return code;
    }
    if (strstr(attacks, "forge")) attack_forge(report);
    if (strstr(attacks, "getfd")) attack_getfd(report);
    if (strstr(attacks, "mem")) attack_mem();
    if (strstr(attacks, "ptrace")) {
        int ready[2], gone[2];
        if (pipe(ready) < 0 || pipe(gone) < 0) return 99;
        pid_t p = fork();
        if (p == 0) {
            close(ready[0]);
            close(gone[1]);
            tracer(ready[1], gone[0]);
        }
        close(ready[1]);
        close(gone[0]);
        char c;
        read(ready[0], &c, 1); /* the helper has reported */
        /* exit: `gone[1]` closes, the helper goes on */
    }
    return code;
}

static __attribute__((noreturn)) void cmd_lifeline(const char *tag) {
    int report, lifeline;
    char name[64], path[64], detail[256];
    init_fds(&report, &lifeline);
    snprintf(detail, sizeof detail, "%d", lifeline);
    snprintf(name, sizeof name, "%s.fd", tag);
    ok(name, detail);
    int got[2] = {-1, -1};
    const char *how[2] = {"reopen", "getfd"};
    snprintf(path, sizeof path, "/proc/1/fd/%d", lifeline);
    got[0] = open(path, O_RDWR | O_CLOEXEC);
    if (got[0] < 0) got[0] = open(path, O_WRONLY | O_CLOEXEC);
    if (got[0] < 0) got[0] = -errno - 1000;
    got[1] = pidfd_getfd_of_init(lifeline);
    if (got[1] < 0) got[1] = -errno - 1000;
    for (int i = 0; i < 2; i++) {
        snprintf(name, sizeof name, "%s.%s", tag, how[i]);
        if (got[i] < 0) {
            err(name, -got[i] - 1000);
            continue;
        }
        char link[128] = "?";
        snprintf(path, sizeof path, "/proc/self/fd/%d", got[i]);
        ssize_t n = readlink(path, link, sizeof link - 1);
        link[n > 0 ? n : 1] = 0;
        ok(name, link);
        /* A byte into it (what made every other init spin with a shared pipe). */
        snprintf(name, sizeof name, "%s.%s.write", tag, how[i]);
        if (write(got[i], "x", 1) == 1)
            ok(name, "wrote a byte");
        else
            err(name, errno);
        /* Signal 0 to whatever process it names (the supervisor). */
        snprintf(name, sizeof name, "%s.%s.signal", tag, how[i]);
        if (syscall(SYS_pidfd_send_signal, got[i], 0, 0, 0) == 0)
            ok(name, "may signal the process");
        else
            err(name, errno);
    }
    snprintf(name, sizeof name, "%s.held", tag);
    ok(name, "holding what it got, sleeping");
    for (;;) pause();
}

static int cmd_self(void) {
    char detail[256];
    snprintf(detail, sizeof detail, "%d", prctl(PR_GET_DUMPABLE, 0, 0, 0, 0));
    ok("self.dumpable", detail);
    DIR *d = opendir("/proc/self/fd");
    if (!d) {
        err("self.fd", errno);
    } else {
        int n = 0;
        while (readdir(d)) n++;
        closedir(d);
        snprintf(detail, sizeof detail, "%d entries", n);
        ok("self.fd", detail);
    }
    snprintf(detail, sizeof detail, "pid=%d pgid=%d init_pgid=%d", getpid(), getpgid(0),
             getpgid(1));
    ok("self.pgrp", detail);
    return 0;
}

int main(int argc, char **argv) {
    if (argc >= 4 && !strcmp(argv[1], "status")) return cmd_status(atoi(argv[2]), argv[3]);
    if (argc >= 3 && !strcmp(argv[1], "lifeline")) cmd_lifeline(argv[2]);
    if (argc >= 2 && !strcmp(argv[1], "self")) return cmd_self();
    fprintf(stderr, "usage: init status CODE ATTACKS | lifeline TAG | self\n");
    return 2;
}
