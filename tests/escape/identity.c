/*
 * The identity suite's probe (tests/escape/escape_identity.rs): what a workload can do with what
 * host uid 0 owns. One attempt per argument pair, each printing exactly one line
 *     RESULT <attempt> <path> OK <detail>
 *     RESULT <attempt> <path> ERR <errno number> <errno text>
 * and the program exits 0, so the test reads what happened.
 *
 * Harmless by construction: `open-w` opens for writing and writes nothing; `write-back`
 * writes a file's current contents back unchanged; `connect` connects to a socket the
 * test itself listens on; `read` reads at most 64 bytes.
 *
 *   identity open-w PATH | open-rw PATH | read PATH | write-back PATH | connect PATH | ids
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static void ok(const char *what, const char *path, const char *detail) {
    printf("RESULT %s %s OK %s\n", what, path, detail);
}

static void err(const char *what, const char *path) {
    int e = errno;
    printf("RESULT %s %s ERR %d %s\n", what, path, e, strerror(e));
}

static void open_flags(const char *what, const char *path, int flags) {
    int fd = open(path, flags | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0) {
        err(what, path);
        return;
    }
    close(fd);
    ok(what, path, "opened");
}

static void read_file(const char *path) {
    char buf[65];
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        err("read", path);
        return;
    }
    ssize_t n = read(fd, buf, 64);
    if (n < 0) {
        err("read", path);
        close(fd);
        return;
    }
    close(fd);
    buf[n] = 0;
    for (ssize_t i = 0; i < n; i++)
        if (buf[i] == '\n' || buf[i] == ' ')
            buf[i] = '_';
    ok("read", path, buf);
}

/* Reads the file and writes the same bytes back in one write. */
static void write_back(const char *path) {
    char buf[4096];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        err("write-back", path);
        return;
    }
    ssize_t n = read(fd, buf, sizeof buf);
    close(fd);
    if (n < 0) {
        err("write-back", path);
        return;
    }
    /* Files like transparent_hugepage/enabled list choices with the selected one in
       brackets; write just the selected one. */
    char *open_br = memchr(buf, '[', n), *close_br = open_br ? memchr(open_br, ']', buf + n - open_br) : NULL;
    const char *data = buf;
    size_t len = n;
    if (open_br && close_br) {
        data = open_br + 1;
        len = close_br - open_br - 1;
    }
    fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) {
        err("write-back", path);
        return;
    }
    ssize_t w = write(fd, data, len);
    if (w < 0) {
        err("write-back", path);
        close(fd);
        return;
    }
    close(fd);
    ok("write-back", path, "written");
}

static void connect_to(const char *path) {
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0) {
        err("connect", path);
        return;
    }
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    strncpy(a.sun_path, path, sizeof a.sun_path - 1);
    if (connect(s, (struct sockaddr *)&a, sizeof a) < 0) {
        err("connect", path);
        close(s);
        return;
    }
    close(s);
    ok("connect", path, "connected");
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (int i = 1; i < argc; i++) {
        const char *cmd = argv[i];
        if (!strcmp(cmd, "ids")) {
            printf("RESULT ids - OK uid=%d,gid=%d\n", getuid(), getgid());
            continue;
        }
        if (i + 1 >= argc) {
            printf("RESULT %s - ERR 22 missing path\n", cmd);
            return 2;
        }
        const char *path = argv[++i];
        if (!strcmp(cmd, "open-w"))
            open_flags(cmd, path, O_WRONLY);
        else if (!strcmp(cmd, "open-rw"))
            open_flags(cmd, path, O_RDWR);
        else if (!strcmp(cmd, "read"))
            read_file(path);
        else if (!strcmp(cmd, "write-back"))
            write_back(path);
        else if (!strcmp(cmd, "connect"))
            connect_to(path);
        else {
            printf("RESULT %s %s ERR 22 unknown attempt\n", cmd, path);
            return 2;
        }
    }
    return 0;
}
