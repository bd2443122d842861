/*
 * The probe of the seccomp argument-condition tests (escape_argcmp.rs): makes one system
 * call with the exact 64-bit argument values given on its command line and prints
 * `RESULT <name> OK <detail>` or `RESULT <name> ERR <ERRNO>`.
 *
 *     argcmp NAME clone FLAGS          raw clone(FLAGS | SIGCHLD); the child _exits at once
 *     argcmp NAME lseek OFFSET WHENCE  raw lseek(-1, OFFSET, WHENCE): EBADF without a filter
 *
 * Numbers are read with strtoull (0x... for hex), so every bit of the register is set as
 * given, the upper half included.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *name_of(int e)
{
    static char buf[32];
    switch (e) {
    case EPERM: return "EPERM";
    case EBADF: return "EBADF";
    case EINVAL: return "EINVAL";
    case ENOSYS: return "ENOSYS";
    case ECONNREFUSED: return "ECONNREFUSED";
    case ESPIPE: return "ESPIPE";
    case ENOSPC: return "ENOSPC";
    case EUSERS: return "EUSERS";
    default:
        snprintf(buf, sizeof buf, "%d", e);
        return buf;
    }
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: argcmp NAME clone FLAGS | argcmp NAME lseek OFFSET WHENCE\n");
        return 2;
    }
    const char *name = argv[1];
    long r;
    if (strcmp(argv[2], "clone") == 0) {
        unsigned long flags = strtoull(argv[3], NULL, 0);
        r = syscall(SYS_clone, flags | SIGCHLD, 0UL, 0UL, 0UL, 0UL);
        if (r == 0)
            _exit(0);
        if (r > 0) {
            int st;
            waitpid((pid_t)r, &st, 0);
            printf("RESULT %s OK cloned\n", name);
            return 0;
        }
    } else if (strcmp(argv[2], "lseek") == 0 && argc >= 5) {
        unsigned long off = strtoull(argv[3], NULL, 0);
        unsigned long whence = strtoull(argv[4], NULL, 0);
        r = syscall(SYS_lseek, -1L, off, whence);
        if (r >= 0) {
            printf("RESULT %s OK %ld\n", name, r);
            return 0;
        }
    } else {
        fprintf(stderr, "argcmp: unknown call \"%s\"\n", argv[2]);
        return 2;
    }
    printf("RESULT %s ERR %s\n", name, name_of(errno));
    return 0;
}
