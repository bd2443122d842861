/*
 * The probe of bubblewrap's seccomp suite, ported (tests/peers/bubblewrap.rs): it makes
 * the system calls named on its command line, each in a way that cannot change anything
 * (a bad pointer, a bad descriptor), and exits with the errno of the last one that failed
 * (0 if none did). Upstream's helper is bubblewrap's tests/try-syscall.c; this is the same
 * contract, written for cellblock: the test reads a filter's errno from the exit code.
 *
 * Without a filter each call fails on its own:
 *     chmod, chroot, clone3, prctl   EFAULT (the pointer 1 is unreadable; clone3 may be
 *                                    ENOSYS on a kernel without it)
 *     ioctl TIOCNOTTY, ioctl TIOCSTI,
 *     ioctl TIOCSTI CVE-2019-10063,
 *     listen                         EBADF (descriptor -1)
 * The CVE-2019-10063 variant passes TIOCSTI with junk in the upper 32 bits of the request:
 * the kernel reads only the low 32 bits, so a filter comparing all 64 would miss it.
 * An unknown name exits with ENOENT.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SYS_clone3
#define SYS_clone3 435
#endif

/* An address no process has mapped: calls reading through it fail with EFAULT. */
#define BAD_ADDRESS ((void *)1)

/* The size of struct clone_args when clone3 came (Linux 5.3): 88 bytes. */
#define CLONE_ARGS_SIZE 88UL

static int attempt(const char *name)
{
    long r;
    if (strcmp(name, "chmod") == 0)
        r = chmod(BAD_ADDRESS, 0700);
    else if (strcmp(name, "chroot") == 0)
        r = chroot(BAD_ADDRESS);
    else if (strcmp(name, "clone3") == 0)
        r = syscall(SYS_clone3, BAD_ADDRESS, CLONE_ARGS_SIZE);
    else if (strcmp(name, "ioctl TIOCNOTTY") == 0)
        r = ioctl(-1, TIOCNOTTY);
    else if (strcmp(name, "ioctl TIOCSTI") == 0)
        r = ioctl(-1, TIOCSTI, BAD_ADDRESS);
    else if (strcmp(name, "ioctl TIOCSTI CVE-2019-10063") == 0)
        r = syscall(SYS_ioctl, -1, (0x123UL << 32) | (unsigned long)TIOCSTI, BAD_ADDRESS);
    else if (strcmp(name, "listen") == 0)
        r = listen(-1, 42);
    else if (strcmp(name, "prctl") == 0)
        r = prctl(PR_GET_CHILD_SUBREAPER, BAD_ADDRESS, 0, 0, 0);
    else {
        fprintf(stderr, "try_syscall: unknown call \"%s\"\n", name);
        return ENOENT;
    }
    if (r == 0)
        return 0;
    int e = errno;
    fprintf(stderr, "try_syscall: %s: %s\n", name, strerror(e));
    return e;
}

int main(int argc, char **argv)
{
    int last = 0;
    for (int i = 1; i < argc; i++) {
        int e = attempt(argv[i]);
        if (e != 0)
            last = e;
    }
    return last;
}
