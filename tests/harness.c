/* The test runner behind harness.h: one forked child per test. */
#define _GNU_SOURCE
#include "harness.h"

#include <stdarg.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef SEMD_TEST_DATA
#error "SEMD_TEST_DATA must point at tests/data"
#endif

const char *semd_test_data_dir(void)
{
    const char *env = getenv("SEMD_TEST_DATA");
    return env && *env ? env : SEMD_TEST_DATA;
}

static char tmpdir[256];

static void remove_tmpdir(void)
{
    if (!tmpdir[0]) return;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
}

const char *semd_test_tmpdir(void)
{
    if (!tmpdir[0]) {
        const char *base = getenv("TMPDIR");
        snprintf(tmpdir, sizeof tmpdir, "%s/semd-test-XXXXXX", base && *base ? base : "/tmp");
        if (!mkdtemp(tmpdir)) FAIL("mkdtemp failed");
        atexit(remove_tmpdir);
    }
    return tmpdir;
}

const char *semd_test_path(const char *dir, const char *name)
{
    static char ring[8][1024];
    static int next;
    char *p = ring[next++ & 7];
    snprintf(p, sizeof ring[0], "%s/%s", dir, name);
    return p;
}

static int run_in_child(const struct semd_test *t)
{
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        return 1;
    }
    if (pid == 0) {
        t->fn();
        fflush(stdout);
        exit(0);
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0) {
    }
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    fprintf(stderr, "test %s killed by signal %d\n", t->name, WTERMSIG(status));
    return 1;
}

int semd_test_main(const struct semd_test *tests, int argc, char **argv)
{
    if (argc > 1) {
        for (const struct semd_test *t = tests; t->name; t++) {
            if (strcmp(t->name, argv[1]) == 0) {
                t->fn();
                printf("ok %s\n", t->name);
                return 0;
            }
        }
        fprintf(stderr, "no test named %s\n", argv[1]);
        return 2;
    }
    int passed = 0, skipped = 0, failed = 0;
    for (const struct semd_test *t = tests; t->name; t++) {
        const int status = run_in_child(t);
        if (status == 0) {
            printf("ok     %s\n", t->name);
            passed++;
        } else if (status == SEMD_TEST_SKIPPED) {
            printf("skip   %s\n", t->name);
            skipped++;
        } else {
            printf("FAILED %s\n", t->name);
            failed++;
        }
    }
    if (skipped) printf("%d passed, %d skipped, %d failed\n", passed, skipped, failed);
    else printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
