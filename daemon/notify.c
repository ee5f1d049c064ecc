/* The systemd notify protocol over an AF_UNIX datagram socket. */
#define _GNU_SOURCE
#include "notify.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "semd/status.h"

/* $NOTIFY_SOCKET as a sockaddr; '@' names the abstract namespace (a leading NUL). */
static int notify_address(const char *name, struct sockaddr_un *sa, socklen_t *len)
{
    const size_t n = strlen(name);
    if ((name[0] != '/' && name[0] != '@') || n < 2 || n >= sizeof sa->sun_path)
        return semd_error(SEMD_EINVAL, "NOTIFY_SOCKET=%s is not a socket path or @name", name);
    memset(sa, 0, sizeof *sa);
    sa->sun_family = AF_UNIX;
    memcpy(sa->sun_path, name, n);
    if (name[0] == '@') sa->sun_path[0] = '\0';
    *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + (name[0] == '/'));
    return SEMD_OK;
}

int semd_notify(const char *state)
{
    const char *name = getenv("NOTIFY_SOCKET");
    if (!name || !*name) return SEMD_OK;
    struct sockaddr_un sa;
    socklen_t len = 0;
    int rc = notify_address(name, &sa, &len);
    if (rc) return rc;
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return semd_error(SEMD_EIO, "notify: socket: %s", strerror(errno));
    const size_t n = strlen(state);
    ssize_t sent = sendto(fd, state, n, MSG_NOSIGNAL, (struct sockaddr *)&sa, len);
    if (sent != (ssize_t)n) rc = semd_error(SEMD_EIO, "notify: %s: %s", name, strerror(errno));
    close(fd);
    return rc;
}

uint64_t semd_notify_watchdog_usec(void)
{
    const char *usec = getenv("WATCHDOG_USEC"), *pid = getenv("WATCHDOG_PID");
    if (!usec) return 0;
    char *end;
    unsigned long long v = strtoull(usec, &end, 10);
    if (*end || end == usec || v == 0) return 0;
    if (pid) { /* the watchdog may be meant for another process of the service */
        unsigned long long p = strtoull(pid, &end, 10);
        if (*end || p != (unsigned long long)getpid()) return 0;
    }
    return (uint64_t)v;
}
