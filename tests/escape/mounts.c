/*
 * The mount-side attacker of tests/escape/escape_mounts.rs (issue 11, rows 1, 2, 4 and 8): one
 * subcommand per attempt, compiled at test time with the system cc.
 *
 * Every attempt prints one line
 *     RESULT <name> OK <detail>      the attempt worked
 *     RESULT <name> ERR <ERRNO>      it failed with that errno
 * and the program exits 0, so the test reads what happened.
 *
 * Harmless by construction, because the controls do succeed on the host:
 *   - device nodes are opened and closed, never read, written or ioctl'ed;
 *   - a sysfs attribute gets its own current value written back;
 *   - a cgroup move is undone at once (the process moves back into its own cgroup), and
 *     a cgroup limit gets its own current value written back;
 *   - POSIX shm objects are the test's own (named by the test).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
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

/* open PATH MODE(w|rw) NAME: open the node and close it again, nothing else. */
static int try_open(const char *path, const char *mode, const char *name) {
    int flags = strcmp(mode, "rw") == 0 ? O_RDWR : O_WRONLY;
    int fd = open(path, flags | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) return err(name, errno);
    close(fd);
    return ok(name, path);
}

/* Reads a small file into buf (NUL-terminated); returns its length or -1 with errno. */
static ssize_t slurp(const char *path, char *buf, size_t size) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    ssize_t n = read(fd, buf, size - 1);
    int e = errno;
    close(fd);
    if (n < 0) { errno = e; return -1; }
    buf[n] = 0;
    return n;
}

/* Writes `value` to `path` in one write; 0 or -1 with errno. */
static int put(const char *path, const char *value) {
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    ssize_t n = write(fd, value, strlen(value));
    int e = errno;
    close(fd);
    if (n < 0) { errno = e; return -1; }
    return 0;
}

/* sysfs PATH: write the attribute's current value back. A `[selected]` value (THP's
 * "always [madvise] never") is the one written. */
static int sysfs(const char *path) {
    char buf[256], val[256];
    if (slurp(path, buf, sizeof buf) < 0) return err("sysfs", errno);
    char *open_b = strchr(buf, '['), *close_b = open_b ? strchr(open_b, ']') : NULL;
    if (open_b && close_b) {
        snprintf(val, sizeof val, "%.*s", (int)(close_b - open_b - 1), open_b + 1);
    } else {
        snprintf(val, sizeof val, "%s", buf);
        val[strcspn(val, "\n")] = 0;
    }
    if (put(path, val) < 0) return err("sysfs", errno);
    return ok("sysfs", val);
}

/* The directory of our memory cgroup: v1's memory hierarchy, else the v2 one. */
static int own_memory_cgroup(char *dir, size_t size, int *v2) {
    FILE *f = fopen("/proc/self/cgroup", "re");
    if (!f) return -1;
    char line[1024], v2path[900] = "";
    int found = 0;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c2) continue;
        *c2 = 0;
        if (strcmp(c1 + 1, "memory") == 0) {
            snprintf(dir, size, "/sys/fs/cgroup/memory%s", c2 + 1);
            found = 1;
        } else if (c1 == line + 1 && line[0] == '0' && c1[1] == 0) {
            snprintf(v2path, sizeof v2path, "%s", c2 + 1);
        }
    }
    fclose(f);
    *v2 = 0;
    if (!found && v2path[0]) {
        snprintf(dir, size, "/sys/fs/cgroup%s", v2path);
        *v2 = 1;
        found = 1;
    }
    if (!found) { errno = ENOENT; return -1; }
    return 0;
}

/* cgroup: (1) move ourselves into the parent of our memory cgroup (undone at once),
 * (2) write our own memory limit back. */
static int cgroup(void) {
    char own[1024], parent[1100], path[1200], buf[256];
    int v2;
    if (own_memory_cgroup(own, sizeof own, &v2) < 0) {
        err("cgmove", errno);
        return err("cglimit", errno);
    }
    printf("CGROUP %s\n", own);
    snprintf(parent, sizeof parent, "%s", own);
    char *slash = strrchr(parent, '/');
    if (slash) *slash = 0;
    snprintf(path, sizeof path, "%s/cgroup.procs", parent);
    if (put(path, "0") < 0) {
        err("cgmove", errno);
    } else {
        /* Back into our own cgroup, so the container ends where it started. */
        snprintf(path, sizeof path, "%s/cgroup.procs", own);
        int back = put(path, "0");
        ok("cgmove", back == 0 ? "moved-and-back" : "moved-NOT-back");
    }
    snprintf(path, sizeof path, "%s/%s", own, v2 ? "memory.max" : "memory.limit_in_bytes");
    if (slurp(path, buf, sizeof buf) < 0) return err("cglimit", errno);
    buf[strcspn(buf, "\n")] = 0;
    if (put(path, buf) < 0) return err("cglimit", errno);
    return ok("cglimit", buf);
}

/* shmread NAME: read the host's POSIX shm object NAME. */
static int shmread(const char *name) {
    int fd = shm_open(name, O_RDONLY, 0);
    if (fd < 0) return err("shmread", errno);
    char buf[256];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n < 0) return err("shmread", errno);
    buf[n] = 0;
    return ok("shmread", buf);
}

/* shmleave NAME: leave a 1 MiB POSIX shm object behind. */
static int shmleave(const char *name) {
    int fd = shm_open(name, O_CREAT | O_RDWR, 0600);
    if (fd < 0) return err("shmleave", errno);
    if (ftruncate(fd, 1 << 20) < 0) { close(fd); return err("shmleave", errno); }
    char *p = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (p == MAP_FAILED) return err("shmleave", errno);
    memset(p, 'x', 1 << 20);
    munmap(p, 1 << 20);
    return ok("shmleave", name);
}

/* devlist: one line per entry of /dev: "DEV <name> <kind> <detail>". */
static int devlist(void) {
    DIR *d = opendir("/dev");
    if (!d) return err("devlist", errno);
    struct dirent *e;
    int n = 0;
    while ((e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        char path[512], target[512];
        struct stat st;
        snprintf(path, sizeof path, "/dev/%s", e->d_name);
        if (lstat(path, &st) < 0) { printf("DEV %s ? %d\n", e->d_name, errno); continue; }
        switch (st.st_mode & S_IFMT) {
        case S_IFCHR:
            printf("DEV %s chr %x,%x\n", e->d_name, major(st.st_rdev), minor(st.st_rdev));
            break;
        case S_IFBLK:
            printf("DEV %s blk %x,%x\n", e->d_name, major(st.st_rdev), minor(st.st_rdev));
            break;
        case S_IFLNK: {
            ssize_t l = readlink(path, target, sizeof target - 1);
            target[l < 0 ? 0 : l] = 0;
            printf("DEV %s lnk %s\n", e->d_name, target);
            break;
        }
        case S_IFDIR:
            printf("DEV %s dir %o\n", e->d_name, st.st_mode & 07777);
            break;
        default:
            printf("DEV %s file %lld\n", e->d_name, (long long)st.st_size);
        }
        n++;
    }
    closedir(d);
    char buf[32];
    snprintf(buf, sizeof buf, "%d", n);
    return ok("devlist", buf);
}

/* devio: the nodes behave as devices: 100 kB into /dev/null, zeros from /dev/zero,
 * bytes from /dev/urandom, ENOSPC from /dev/full. */
static int devio(void) {
    static char buf[100 * 1024];
    memset(buf, 'a', sizeof buf);
    int fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (fd < 0) err("null", errno);
    else {
        ssize_t n = write(fd, buf, sizeof buf);
        if (n < 0) err("null", errno);
        else { char d[32]; snprintf(d, sizeof d, "%zd", n); ok("null", d); }
        close(fd);
    }
    fd = open("/dev/zero", O_RDONLY | O_CLOEXEC);
    if (fd < 0) err("zero", errno);
    else {
        ssize_t n = read(fd, buf, 4096);
        if (n < 0) err("zero", errno);
        else {
            ssize_t nz = 0;
            for (ssize_t i = 0; i < n; i++) nz += buf[i] != 0;
            char d[64]; snprintf(d, sizeof d, "%zd-bytes-%zd-nonzero", n, nz); ok("zero", d);
        }
        close(fd);
    }
    fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd < 0) err("urandom", errno);
    else {
        ssize_t n = read(fd, buf, 64);
        if (n < 0) err("urandom", errno);
        else { char d[32]; snprintf(d, sizeof d, "%zd", n); ok("urandom", d); }
        close(fd);
    }
    fd = open("/dev/full", O_WRONLY | O_CLOEXEC);
    if (fd < 0) err("full", errno);
    else {
        ssize_t n = write(fd, buf, 16);
        if (n < 0) err("full", errno);
        else ok("full", "wrote");
        close(fd);
    }
    return 0;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (int i = 1; i < argc; i++) {
        const char *c = argv[i];
        if (strcmp(c, "open") == 0 && i + 3 < argc) {
            try_open(argv[i + 1], argv[i + 2], argv[i + 3]);
            i += 3;
        } else if (strcmp(c, "sysfs") == 0 && i + 1 < argc) {
            sysfs(argv[++i]);
        } else if (strcmp(c, "cgroup") == 0) {
            cgroup();
        } else if (strcmp(c, "shmread") == 0 && i + 1 < argc) {
            shmread(argv[++i]);
        } else if (strcmp(c, "shmleave") == 0 && i + 1 < argc) {
            shmleave(argv[++i]);
        } else if (strcmp(c, "devlist") == 0) {
            devlist();
        } else if (strcmp(c, "devio") == 0) {
            devio();
        } else {
            fprintf(stderr, "mounts: bad arguments at %s\n", c);
            return 2;
        }
    }
    return 0;
}
