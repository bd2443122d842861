/*
 * The seccomp suite's probe (tests/escape/escape_seccomp.rs): socket families, socketpair and
 * ioctl requests the default filter refuses by argument. Compiled at test time with the
 * system cc and run inside containers.
 *
 * Every attempt prints exactly one line
 *     RESULT <name> OK <detail>      the call worked
 *     RESULT <name> ERR <ERRNO>      it failed with that errno (EPERM from the filter;
 *                                    the kernel's own answer otherwise)
 * and the program exits 0, so the test reads what happened rather than guessing.
 *
 * Numbers are parsed with strtoull and passed through syscall(2) as full 64-bit values, so
 * the tests can put junk in the upper half of an `int` argument (which the kernel
 * ignores) and check that the filter is not fooled by it.
 *
 * Harmless by construction: sockets are created and closed, a vsock bind uses a port the
 * test itself holds on the host (so it can only fail), ioctls go to /dev/null (where the
 * kernel answers ENOTTY) except `tiocsti`, which types into the probe's own stdin terminal
 * (the harness's pty).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/vm_sockets.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
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

static unsigned long long num(const char *s) { return strtoull(s, NULL, 0); }

/* socket NAME FAMILY TYPE [PROTOCOL] */
static int do_socket(const char *name, const char *fam, const char *type, const char *proto) {
    long fd = syscall(SYS_socket, num(fam), num(type), proto ? num(proto) : 0);
    if (fd < 0) return err(name, errno);
    close(fd);
    return ok(name, "created");
}

/* socketpair NAME FAMILY TYPE */
static int do_socketpair(const char *name, const char *fam, const char *type) {
    int sv[2];
    if (syscall(SYS_socketpair, num(fam), num(type), 0, sv) < 0) return err(name, errno);
    close(sv[0]);
    close(sv[1]);
    return ok(name, "created");
}

/* vsock_bind NAME PORT: an AF_VSOCK stream socket bound to PORT on any local CID. */
static int vsock_bind(const char *name, const char *port) {
    int fd = socket(AF_VSOCK, SOCK_STREAM, 0);
    if (fd < 0) return err(name, errno);
    struct sockaddr_vm a;
    memset(&a, 0, sizeof a);
    a.svm_family = AF_VSOCK;
    a.svm_cid = VMADDR_CID_ANY;
    a.svm_port = (unsigned)num(port);
    int r = bind(fd, (struct sockaddr *)&a, sizeof a);
    int e = errno;
    close(fd);
    if (r < 0) return err(name, e);
    return ok(name, "bound");
}

/* ioctl NAME REQUEST: the request on /dev/null, with a one-byte argument. */
static int do_ioctl(const char *name, const char *req) {
    int fd = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (fd < 0) return err(name, errno);
    char c = 'x';
    long r = syscall(SYS_ioctl, fd, num(req), &c);
    int e = errno;
    close(fd);
    if (r < 0) return err(name, e);
    return ok(name, "done");
}

/* tiocsti TEXT: types TEXT and a newline into the terminal on stdin. */
static int tiocsti(const char *text) {
    for (const char *p = text; *p; p++)
        if (ioctl(0, TIOCSTI, p) < 0) return err("tiocsti", errno);
    if (ioctl(0, TIOCSTI, "\n") < 0) return err("tiocsti", errno);
    return ok("tiocsti", "injected");
}

int main(int argc, char **argv) {
    const char *c = argc > 1 ? argv[1] : "";
    const char *a2 = argc > 2 ? argv[2] : "";
    const char *a3 = argc > 3 ? argv[3] : "0";
    const char *a4 = argc > 4 ? argv[4] : "0";
    const char *a5 = argc > 5 ? argv[5] : NULL;
    if (!strcmp(c, "socket")) return do_socket(a2, a3, a4, a5);
    if (!strcmp(c, "socketpair")) return do_socketpair(a2, a3, a4);
    if (!strcmp(c, "vsock_bind")) return vsock_bind(a2, a3);
    if (!strcmp(c, "ioctl")) return do_ioctl(a2, a3);
    if (!strcmp(c, "tiocsti")) return tiocsti(a2);
    fprintf(stderr, "usage: sockets socket|socketpair|vsock_bind|ioctl|tiocsti ...\n");
    return 2;
}
