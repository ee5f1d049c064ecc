/*
 * failing_alloc.h for a whole process that the test drives from outside (a
 * semdrawd built with it): sigqueue(pid, SIGUSR2, {.sival_int = n}) arms it
 * (n > 0: the n-th allocation from then on fails; n < 0: count only) and
 * n = 0 disarms it, writing how many allocations were counted and whether
 * the failure happened ("COUNT FIRED\n") to $SEMD_FAILING_ALLOC_REPORT.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "failing_alloc.h"

static char report_path[512];

/* Async-signal-safe: open, write and close, and digits by hand. */
static void write_report(long count, int fired)
{
    char line[48];
    int n = 0;
    char digits[24];
    int d = 0;
    do digits[d++] = (char)('0' + count % 10), count /= 10;
    while (count > 0 && d < 24);
    while (d > 0) line[n++] = digits[--d];
    line[n++] = ' ', line[n++] = fired ? '1' : '0', line[n++] = '\n';
    const int fd = open(report_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return;
    const ssize_t written = write(fd, line, (size_t)n); /* a short report shows as a test failure: it waits for it */
    (void)written;
    close(fd);
}

static void on_signal(int sig, siginfo_t *si, void *uc)
{
    (void)sig, (void)uc;
    const int n = si->si_value.sival_int;
    if (n > 0) failing_alloc_arm(n);
    else if (n < 0) failing_alloc_arm(1L << 40);
    else if (report_path[0]) {
        const int fired = failing_alloc_fired();
        write_report(failing_alloc_disarm(), fired);
    } else {
        failing_alloc_disarm();
    }
}

__attribute__((constructor)) static void install(void)
{
    const char *p = getenv("SEMD_FAILING_ALLOC_REPORT");
    if (p && strlen(p) < sizeof report_path) strcpy(report_path, p);
    failing_alloc_arm(0); /* backtrace()'s first call, now rather than in the handler */
    failing_alloc_disarm();
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_signal;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR2, &sa, NULL);
}
