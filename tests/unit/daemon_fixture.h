/*
 * daemon_fixture.h - a private semdrawd for integration tests (PipeWire's
 * private-daemon fixture): `semdrawd serve` on the CPU backend with the
 * bundled tiny model, in a runtime directory under the test's temporary
 * directory, killed with the test process if the test dies first.
 * Needs SEMDRAWD_BIN (a compile definition) and golden_util.h.
 */
#ifndef SEMD_TEST_DAEMON_FIXTURE_H
#define SEMD_TEST_DAEMON_FIXTURE_H

#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

/*
 * Start the daemon on `dir` and wait for its control socket (not for the
 * model: it loads meanwhile). `extra`: more "--key", "value" arguments, NULL-terminated, or NULL.
 */
static inline pid_t fixture_start_daemon_with(const char *dir, int lease_ms, const char *const *extra)
{
    char lease[32];
    snprintf(lease, sizeof lease, "%d", lease_ms);
    pid_t pid = fork();
    ASSERT(pid >= 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* a failed test leaves no daemon behind */
        if (getenv("WATCHDOG_USEC")) { /* as systemd sets it: for this process only */
            char self[32];
            snprintf(self, sizeof self, "%d", (int)getpid());
            setenv("WATCHDOG_PID", self, 1);
        }
        const char *argv[32] = {"semdrawd", "serve", "--config-file", "/dev/null", "--model",
                                golden_data("models/tiny-sd15"), "--taesd", golden_data("models/taesd"),
                                "--runtime-dir", dir, "--lease-ms", lease};
        for (int i = 0; extra && extra[i] && i < 18; i++) argv[12 + i] = extra[i];
        execv(SEMDRAWD_BIN, (char *const *)argv);
        _exit(127);
    }
    char sock[600];
    snprintf(sock, sizeof sock, "%s/control.sock", dir);
    for (int i = 0; i < 600 && access(sock, F_OK) != 0; i++) usleep(50000);
    ASSERT(access(sock, F_OK) == 0);
    return pid;
}

static inline pid_t fixture_start_daemon(const char *dir, int lease_ms)
{
    return fixture_start_daemon_with(dir, lease_ms, NULL);
}

/* SIGTERM (a clean stop) or SIGKILL; returns the exit status, or 128 + the signal. */
static inline int fixture_stop_daemon(pid_t pid, int sig)
{
    kill(pid, sig);
    int status = 0;
    ASSERT(waitpid(pid, &status, 0) == pid);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

#endif
