/*
 * An unlimited fork bomb, bounded in time: every process forks as fast as it can, for
 * ever, until the deadline given as argv[1] (seconds, default 10) passes; then each
 * process exits on its own. The deadline is a safety net only: the tests and the bench
 * kill the bomb through its container long before (a process that cannot fork keeps
 * spinning and re-trying, as a real bomb does, so it also burns CPU).
 *
 * Used by tests/escape/escape_budget.rs and benches/forkbomb.rs. It prints
 *     RESULT forkbomb OK started
 * once, from the first process, before forking, so the caller knows it runs.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    double secs = argc > 1 ? atof(argv[1]) : 10.0;
    double deadline = now() + secs;
    /* Children are reaped by the kernel, so only live processes hold pids. */
    signal(SIGCHLD, SIG_IGN);
    printf("RESULT forkbomb OK started\n");
    fflush(stdout);
    /* No stdio below: a forked child must not flush the parent's buffer again. */
    for (;;) {
        if (now() > deadline) _exit(0);
        (void)fork();
    }
}
