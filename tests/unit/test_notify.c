/* The hand-written systemd notify protocol, against a datagram socket of the test's own. */
#define _GNU_SOURCE
#include <stddef.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "harness.h"
#include "notify.h"
#include "semd/status.h"

/* A datagram socket at `name` (a path, or "@abstract"), bound and ready to receive. */
static int listen_at(const char *name)
{
    int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
    ASSERT(fd >= 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    size_t n = strlen(name);
    memcpy(sa.sun_path, name, n);
    socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + (name[0] == '/'));
    if (name[0] == '@') sa.sun_path[0] = '\0';
    ASSERT(bind(fd, (struct sockaddr *)&sa, len) == 0);
    return fd;
}

static void expect_datagram(int fd, const char *want)
{
    char buf[512];
    ssize_t n = recv(fd, buf, sizeof buf - 1, MSG_DONTWAIT);
    ASSERT(n >= 0);
    buf[n] = '\0';
    ASSERT_STREQ(buf, want);
}

TEST(path_socket)
{
    const char *path = semd_test_path(semd_test_tmpdir(), "notify.sock");
    int fd = listen_at(path);
    setenv("NOTIFY_SOCKET", path, 1);
    ASSERT_OK(semd_notify("READY=1\nSTATUS=serving 3 canvases"));
    expect_datagram(fd, "READY=1\nSTATUS=serving 3 canvases");
    ASSERT_OK(semd_notify("WATCHDOG=1"));
    expect_datagram(fd, "WATCHDOG=1");
    close(fd);
}

TEST(abstract_socket)
{
    char name[64];
    snprintf(name, sizeof name, "@semd-test-notify-%d", (int)getpid());
    int fd = listen_at(name);
    setenv("NOTIFY_SOCKET", name, 1);
    ASSERT_OK(semd_notify("STOPPING=1"));
    expect_datagram(fd, "STOPPING=1");
    close(fd);
}

TEST(no_socket_is_a_no_op_and_bad_ones_are_errors)
{
    unsetenv("NOTIFY_SOCKET");
    ASSERT_OK(semd_notify("READY=1"));
    setenv("NOTIFY_SOCKET", "relative/path", 1);
    ASSERT_EQ(semd_notify("READY=1"), SEMD_EINVAL);
    ASSERT_CONTAINS(semd_last_error(), "NOTIFY_SOCKET=relative/path");
    setenv("NOTIFY_SOCKET", semd_test_path(semd_test_tmpdir(), "nobody-listens.sock"), 1);
    ASSERT_EQ(semd_notify("READY=1"), SEMD_EIO);
}

TEST(watchdog_interval)
{
    unsetenv("WATCHDOG_USEC"), unsetenv("WATCHDOG_PID");
    ASSERT_EQ(semd_notify_watchdog_usec(), 0);
    setenv("WATCHDOG_USEC", "3000000", 1);
    ASSERT_EQ(semd_notify_watchdog_usec(), 3000000);
    char pid[32];
    snprintf(pid, sizeof pid, "%d", (int)getpid());
    setenv("WATCHDOG_PID", pid, 1);
    ASSERT_EQ(semd_notify_watchdog_usec(), 3000000);
    setenv("WATCHDOG_PID", "1", 1); /* meant for another process */
    ASSERT_EQ(semd_notify_watchdog_usec(), 0);
    unsetenv("WATCHDOG_PID");
    setenv("WATCHDOG_USEC", "soon", 1);
    ASSERT_EQ(semd_notify_watchdog_usec(), 0);
}

static const struct semd_test tests[] = {
    TEST_ENTRY(path_socket),
    TEST_ENTRY(abstract_socket),
    TEST_ENTRY(no_socket_is_a_no_op_and_bad_ones_are_errors),
    TEST_ENTRY(watchdog_interval),
    {0},
};

SEMD_TEST_MAIN(tests)
