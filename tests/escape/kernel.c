/*
 * The kernel-interface suite's probe (tests/escape/escape_kernel.rs): one attempt per system call
 * the default seccomp profile denies, and reads/opens of the masked and read-only /proc and
 * /sys paths. Compiled at test time with the system cc and run inside containers.
 *
 *   kernel WORD...
 *
 * Each WORD is one attempt, run in a forked child of its own (so that an attempt which
 * changes the process, such as unshare, cannot change the next one), printing one line
 *     RESULT <name> OK <detail>        the call worked
 *     RESULT <name> ERR <ERRNO>        it failed with that errno (EPERM from the filter;
 *                                      the kernel's own answer otherwise)
 *     RESULT <name> KILLED <signal>    the attempt was killed (SIGSYS from a filter)
 * and the program exits 0, so the test reads what happened rather than guessing.
 *
 * A WORD is either the name of a system call attempt (`unshare_user`, `add_key`, ...: see
 * ATTEMPTS below) or a path attempt `OP:NAME:PATH[:NEEDLE]` with OP one of
 *     stat    type (chr, reg, dir), size, filesystem magic and read-only flag of PATH
 *     read    reads up to 4 MiB of PATH: type, bytes read, found=1 if NEEDLE occurs
 *     list    number of entries of the directory PATH
 *     openw   opens PATH O_WRONLY (never writes)
 *     chmod   chmods PATH to the mode it already has (a write to its inode, no change)
 *
 * Harmless by construction, whether or not the call reaches the kernel: invalid
 * descriptors, an invalid clock id or an out-of-range time, NULL pointers, a bad reboot
 * magic, keys only in the attempt's own process keyring, an io_uring of one entry, modules
 * and kexec images that do not exist, namespaces created in a child that exits at once.
 * Nothing is ever written to a file.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/keyctl.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/timex.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Numbers older libc headers may lack (x86_64 and the generic table agree on these). */
#ifndef SYS_open_tree
#define SYS_open_tree 428
#define SYS_move_mount 429
#define SYS_fsopen 430
#define SYS_fsconfig 431
#define SYS_fsmount 432
#define SYS_fspick 433
#endif
#ifndef SYS_clone3
#define SYS_clone3 435
#endif
#ifndef SYS_mount_setattr
#define SYS_mount_setattr 442
#endif

static char detail[256];

/* clone() in a fork-like way with FLAGS; the child exits at once. 0 if it ran. */
static long clone_with(unsigned long flags) {
    long pid = syscall(SYS_clone, flags | SIGCHLD, 0, 0, 0, 0);
    if (pid == 0) _exit(0);
    if (pid < 0) return -1;
    int st;
    if (waitpid(pid, &st, 0) < 0) return -1;
    snprintf(detail, sizeof detail, "child_status=%d", st);
    return 0;
}

static long a_unshare_user(void) {
    long r = syscall(SYS_unshare, CLONE_NEWUSER);
    if (r == 0) {
        /* Show that it is real: our own user namespace now differs from the parent's. */
        char me[64] = "", parent[64] = "", path[64];
        readlink("/proc/self/ns/user", me, sizeof me - 1);
        snprintf(path, sizeof path, "/proc/%d/ns/user", getppid());
        readlink(path, parent, sizeof parent - 1);
        snprintf(detail, sizeof detail, "new_userns=%d", strcmp(me, parent) != 0);
    }
    return r;
}
static long a_setns(void) { return syscall(SYS_setns, -1, 0); }
static long a_clone_newuser(void) { return clone_with(CLONE_NEWUSER); }
static long a_clone_newns(void) { return clone_with(CLONE_NEWUSER | CLONE_NEWNS); }
static long a_clone_newuts(void) { return clone_with(CLONE_NEWUSER | CLONE_NEWUTS); }
static long a_clone_newipc(void) { return clone_with(CLONE_NEWUSER | CLONE_NEWIPC); }
static long a_clone_newpid(void) { return clone_with(CLONE_NEWUSER | CLONE_NEWPID); }
static long a_clone_newnet(void) { return clone_with(CLONE_NEWUSER | CLONE_NEWNET); }
static long a_clone_newcgroup(void) { return clone_with(CLONE_NEWUSER | CLONE_NEWCGROUP); }
static long a_clone_plain(void) { return clone_with(0); }
static long a_clone3_newuser(void) {
    uint64_t args[8] = {0}; /* struct clone_args, version 0: flags .. tls */
    args[0] = CLONE_NEWUSER;
    args[4] = SIGCHLD;      /* exit_signal */
    long pid = syscall(SYS_clone3, args, sizeof args);
    if (pid == 0) _exit(0);
    if (pid < 0) return -1;
    int st;
    waitpid(pid, &st, 0);
    snprintf(detail, sizeof detail, "child_status=%d", st);
    return 0;
}
/* The new mount API. */
static long a_open_tree(void) { return syscall(SYS_open_tree, AT_FDCWD, "/", O_CLOEXEC); }
static long a_move_mount(void) { return syscall(SYS_move_mount, -1, "", -1, "", 0); }
static long a_fsopen(void) { return syscall(SYS_fsopen, "cellblock-no-such-fs", 0); }
static long a_fsconfig(void) { return syscall(SYS_fsconfig, -1, 0, "ro", NULL, 0); }
static long a_fsmount(void) { return syscall(SYS_fsmount, -1, 0, 0); }
static long a_fspick(void) { return syscall(SYS_fspick, -1, "", 0); }
static long a_mount_setattr(void) { return syscall(SYS_mount_setattr, -1, "", 0, NULL, 0); }
/* The old one. */
static long a_mount(void) { return syscall(SYS_mount, NULL, NULL, NULL, 0, NULL); }
static long a_umount2(void) { return syscall(SYS_umount2, "/cellblock-no-such-dir", 0); }
static long a_pivot_root(void) {
    return syscall(SYS_pivot_root, "/cellblock-no-such-dir", "/cellblock-no-such-dir");
}
/* Keyrings: only the attempt's own process keyring, which dies with it. */
static long a_add_key(void) {
    return syscall(SYS_add_key, "user", "cellblock-probe", "x", 1, KEY_SPEC_PROCESS_KEYRING);
}
static long a_request_key(void) {
    return syscall(SYS_request_key, "user", "cellblock-no-such-key", NULL,
                   KEY_SPEC_PROCESS_KEYRING);
}
static long a_keyctl(void) {
    return syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_PROCESS_KEYRING, 1);
}
/* Modules and kexec: no image at all. */
static long a_init_module(void) { return syscall(SYS_init_module, NULL, 0, ""); }
static long a_finit_module(void) { return syscall(SYS_finit_module, -1, "", 0); }
static long a_delete_module(void) {
    return syscall(SYS_delete_module, "cellblock_no_such_module", O_NONBLOCK);
}
static long a_kexec_load(void) { return syscall(SYS_kexec_load, 0, 0, NULL, 0); }
static long a_kexec_file_load(void) { return syscall(SYS_kexec_file_load, -1, -1, 0, "", 0); }
/* io_uring: one entry; enter and register on no ring. */
static long a_io_uring_setup(void) {
    char params[120]; /* struct io_uring_params, zeroed */
    memset(params, 0, sizeof params);
    return syscall(SYS_io_uring_setup, 1, params);
}
static long a_io_uring_enter(void) { return syscall(SYS_io_uring_enter, -1, 0, 0, 0, NULL, 0); }
static long a_io_uring_register(void) { return syscall(SYS_io_uring_register, -1, 0, NULL, 0); }
/* Clocks: an invalid time, an invalid clock, and a read-only adjtimex query. */
static long a_settimeofday(void) {
    struct timeval tv = {.tv_sec = 0, .tv_usec = 2000000}; /* out of range: EINVAL */
    return syscall(SYS_settimeofday, &tv, NULL);
}
static long a_clock_settime(void) {
    struct timespec ts = {0, 0};
    return syscall(SYS_clock_settime, 1000, &ts); /* no clock 1000: EINVAL */
}
static long a_clock_adjtime(void) {
    struct timex tx;
    memset(&tx, 0, sizeof tx); /* modes 0: only reads the clock's state */
    return syscall(SYS_clock_adjtime, CLOCK_REALTIME, &tx);
}
/* The rest of the list. */
/* BPF_MAP_CREATE with an attribute larger than a page: E2BIG before any privilege check. */
static long a_bpf(void) { return syscall(SYS_bpf, 0, NULL, 1 << 20); }
static long a_perf_event_open(void) { return syscall(SYS_perf_event_open, NULL, 0, -1, -1, 0); }
static long a_userfaultfd(void) {
    return syscall(SYS_userfaultfd, O_CLOEXEC | 1 /* UFFD_USER_MODE_ONLY */);
}
static long a_open_by_handle_at(void) { return syscall(SYS_open_by_handle_at, -1, NULL, 0); }
static long a_reboot(void) { return syscall(SYS_reboot, 0, 0, 0, NULL); /* bad magic */ }
static long a_swapon(void) { return syscall(SYS_swapon, NULL, 0); }
static long a_swapoff(void) { return syscall(SYS_swapoff, NULL); }
static long a_acct(void) { return syscall(SYS_acct, NULL); }
static long a_quotactl(void) {
    return syscall(SYS_quotactl, (0x800005 << 8) /* QCMD(Q_GETINFO, USRQUOTA) */, NULL, 0, NULL);
}
/* A notification group reporting file ids: what an unprivileged caller may create. */
static long a_fanotify_init(void) {
    return syscall(SYS_fanotify_init, 0x200 /* FAN_REPORT_FID */, O_RDONLY);
}
static long a_syslog(void) { return syscall(SYS_syslog, 10 /* SIZE_BUFFER */, NULL, 0); }
static long a_vhangup(void) { return syscall(SYS_vhangup); }
static long a_lookup_dcookie(void) { return syscall(SYS_lookup_dcookie, 0, NULL, 0); }
static long a_nfsservctl(void) { return syscall(SYS_nfsservctl, 0, NULL, NULL); }
#ifdef __x86_64__
static long a_uselib(void) { return syscall(SYS_uselib, NULL); }
static long a_ustat(void) { return syscall(SYS_ustat, 0, NULL); }
static long a_sysfs(void) { return syscall(SYS_sysfs, 3); /* number of filesystem types */ }
static long a__sysctl(void) { return syscall(SYS__sysctl, NULL); }
static long a_iopl(void) { return syscall(SYS_iopl, 0); }
static long a_ioperm(void) { return syscall(SYS_ioperm, 0, 0, 0); }
/* getpid through its x32 alias: the filter refuses every x32 number. */
static long a_x32_getpid(void) { return syscall(0x40000000 | SYS_getpid); }
#endif

static const struct {
    const char *name;
    long (*fn)(void);
} ATTEMPTS[] = {
    {"unshare_user", a_unshare_user},
    {"setns", a_setns},
    {"clone_newuser", a_clone_newuser},
    {"clone_newns", a_clone_newns},
    {"clone_newuts", a_clone_newuts},
    {"clone_newipc", a_clone_newipc},
    {"clone_newpid", a_clone_newpid},
    {"clone_newnet", a_clone_newnet},
    {"clone_newcgroup", a_clone_newcgroup},
    {"clone_plain", a_clone_plain},
    {"clone3_newuser", a_clone3_newuser},
    {"open_tree", a_open_tree},
    {"move_mount", a_move_mount},
    {"fsopen", a_fsopen},
    {"fsconfig", a_fsconfig},
    {"fsmount", a_fsmount},
    {"fspick", a_fspick},
    {"mount_setattr", a_mount_setattr},
    {"mount", a_mount},
    {"umount2", a_umount2},
    {"pivot_root", a_pivot_root},
    {"add_key", a_add_key},
    {"request_key", a_request_key},
    {"keyctl", a_keyctl},
    {"init_module", a_init_module},
    {"finit_module", a_finit_module},
    {"delete_module", a_delete_module},
    {"kexec_load", a_kexec_load},
    {"kexec_file_load", a_kexec_file_load},
    {"io_uring_setup", a_io_uring_setup},
    {"io_uring_enter", a_io_uring_enter},
    {"io_uring_register", a_io_uring_register},
    {"settimeofday", a_settimeofday},
    {"clock_settime", a_clock_settime},
    {"clock_adjtime", a_clock_adjtime},
    {"bpf", a_bpf},
    {"perf_event_open", a_perf_event_open},
    {"userfaultfd", a_userfaultfd},
    {"open_by_handle_at", a_open_by_handle_at},
    {"reboot", a_reboot},
    {"swapon", a_swapon},
    {"swapoff", a_swapoff},
    {"acct", a_acct},
    {"quotactl", a_quotactl},
    {"fanotify_init", a_fanotify_init},
    {"syslog", a_syslog},
    {"vhangup", a_vhangup},
    {"lookup_dcookie", a_lookup_dcookie},
    {"nfsservctl", a_nfsservctl},
#ifdef __x86_64__
    {"uselib", a_uselib},
    {"ustat", a_ustat},
    {"sysfs", a_sysfs},
    {"_sysctl", a__sysctl},
    {"iopl", a_iopl},
    {"ioperm", a_ioperm},
    {"x32_getpid", a_x32_getpid},
#endif
};

static const char *type_of(mode_t m) {
    switch (m & S_IFMT) {
    case S_IFCHR: return "chr";
    case S_IFREG: return "reg";
    case S_IFDIR: return "dir";
    default: return "other";
    }
}

/* OP:NAME:PATH[:NEEDLE]; prints the result itself. */
static int path_attempt(char *word) {
    char *op = strtok(word, ":"), *name = strtok(NULL, ":"), *path = strtok(NULL, ":");
    char *needle = strtok(NULL, ":");
    struct stat st;
    struct statfs sf;
    if (!op || !name || !path) return -1;
    if (!strcmp(op, "stat")) {
        if (stat(path, &st) < 0 || statfs(path, &sf) < 0) goto fail;
        snprintf(detail, sizeof detail, "type=%s size=%lld fs=%#lx ro=%d", type_of(st.st_mode),
                 (long long)st.st_size, (unsigned long)sf.f_type, (sf.f_flags & ST_RDONLY) != 0);
    } else if (!strcmp(op, "read")) {
        int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
        if (fd < 0 || fstat(fd, &st) < 0) goto fail;
        size_t cap = 4 << 20, n = 0;
        char *buf = malloc(cap + 1);
        ssize_t r;
        while (buf && n < cap && (r = read(fd, buf + n, cap - n)) > 0) n += r;
        if (!buf) goto fail;
        buf[n] = 0;
        int found = needle && memmem(buf, n, needle, strlen(needle)) != NULL;
        snprintf(detail, sizeof detail, "type=%s bytes=%zu found=%d", type_of(st.st_mode), n,
                 found);
        close(fd);
    } else if (!strcmp(op, "list")) {
        DIR *d = opendir(path);
        if (!d) goto fail;
        int count = 0;
        struct dirent *e;
        while ((e = readdir(d)))
            if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) count++;
        closedir(d);
        snprintf(detail, sizeof detail, "entries=%d", count);
    } else if (!strcmp(op, "openw")) {
        int fd = open(path, O_WRONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
        if (fd < 0) goto fail;
        close(fd);
        snprintf(detail, sizeof detail, "opened");
    } else if (!strcmp(op, "chmod")) {
        if (stat(path, &st) < 0 || chmod(path, st.st_mode & 07777) < 0) goto fail;
        snprintf(detail, sizeof detail, "mode=%o", st.st_mode & 07777);
    } else {
        return -1;
    }
    printf("RESULT %s OK %s\n", name, detail);
    return 0;
fail:;
    const char *n = strerrorname_np(errno);
    printf("RESULT %s ERR %s\n", name, n ? n : "UNKNOWN");
    return 0;
}

static int run(char *word) {
    if (strchr(word, ':')) return path_attempt(word);
    for (size_t i = 0; i < sizeof ATTEMPTS / sizeof ATTEMPTS[0]; i++) {
        if (strcmp(word, ATTEMPTS[i].name)) continue;
        errno = 0;
        long r = ATTEMPTS[i].fn();
        if (r < 0) {
            const char *n = strerrorname_np(errno);
            printf("RESULT %s ERR %s\n", word, n ? n : "UNKNOWN");
        } else {
            printf("RESULT %s OK %s\n", word, detail[0] ? detail : "done");
        }
        return 0;
    }
    return -1;
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        fflush(stdout);
        pid_t pid = fork();
        if (pid < 0) {
            perror("fork");
            return 1;
        }
        if (pid == 0) {
            if (run(argv[i]) < 0) {
                fprintf(stderr, "kernel: unknown attempt %s\n", argv[i]);
                _exit(2);
            }
            fflush(stdout);
            _exit(0);
        }
        int st;
        if (waitpid(pid, &st, 0) < 0) {
            perror("waitpid");
            return 1;
        }
        if (WIFSIGNALED(st)) {
            const char *s = sigabbrev_np(WTERMSIG(st));
            printf("RESULT %s KILLED SIG%s\n", argv[i], s ? s : "UNKNOWN");
        } else if (WEXITSTATUS(st) != 0) {
            return 2;
        }
    }
    return 0;
}
