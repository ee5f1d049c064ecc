/*
 * notify.h - the systemd notify protocol, written by hand (no libsystemd).
 *
 * Each message is one datagram of newline-separated assignments ("READY=1",
 * "STATUS=loading the UNet", "WATCHDOG=1", "STOPPING=1", "EXTEND_TIMEOUT_USEC=...")
 * sent to the AF_UNIX socket named by $NOTIFY_SOCKET: a path, or with a
 * leading '@' a name in the abstract namespace. Without $NOTIFY_SOCKET (not
 * started by systemd) every call is a successful no-op.
 */
#ifndef SEMDRAWD_NOTIFY_H
#define SEMDRAWD_NOTIFY_H

#include <stdint.h>

/* Send `state` (e.g. "READY=1\nSTATUS=serving"). 0, or a negative semd status. */
int semd_notify(const char *state);

/* $WATCHDOG_USEC when it is set, valid and meant for this process ($WATCHDOG_PID); else 0. */
uint64_t semd_notify_watchdog_usec(void);

#endif
