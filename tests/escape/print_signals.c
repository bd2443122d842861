/*
 * print_signals: dumb-init's testing/print_signals.py (Yelp/dumb-init) for the ported
 * suites in tests/peers/tini.rs, in C so that it starts in a millisecond inside a
 * container. Prints "ready (pid: N)", then the number of every catchable signal it
 * receives (1..31 but SIGKILL, SIGSTOP and SIGCHLD), one a line, and exits 0 on a second
 * SIGINT in a row, as the Python original does. The signals are blocked and taken with
 * sigwait instead of handlers: the process sleeps the same way and none of them stops or
 * ends it (SIGCONT still continues it when stopped).
 */
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

int main(void)
{
    sigset_t set;
    sigemptyset(&set);
    for (int s = 1; s < 32; s++)
        if (s != SIGKILL && s != SIGSTOP && s != SIGCHLD)
            sigaddset(&set, s);
    sigprocmask(SIG_BLOCK, &set, NULL);
    printf("ready (pid: %d)\n", (int)getpid());
    fflush(stdout);
    int last = 0;
    for (;;) {
        int s;
        if (sigwait(&set, &s) != 0)
            continue;
        printf("%d\n", s);
        fflush(stdout);
        if (s == SIGINT && last == SIGINT) {
            printf("Received SIGINT twice, exiting.\n");
            return 0;
        }
        last = s;
    }
}
