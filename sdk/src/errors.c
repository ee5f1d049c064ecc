/* Status strings, the per-thread error message, versions. */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#include "internal.h"
#include "semdraw/v1/wire_status.h"

/* The wire codes and ours are the same numbers (semdraw.h, wire_status.h). */
_Static_assert((int)SEMDRAW_E_INVAL == (int)SEMDRAW_WIRE_EINVAL && (int)SEMDRAW_E_BACKEND == (int)SEMDRAW_WIRE_EBACKEND &&
                   (int)SEMDRAW_E_NOMODEL == (int)SEMDRAW_WIRE_ENOMODEL && (int)SEMDRAW_E_PERM == (int)SEMDRAW_WIRE_EPERM,
               "SEMDRAW_E_* and the wire codes agree");

static _Thread_local char last_message[1024];

int sdk_fail(int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_message, sizeof last_message, fmt, ap);
    va_end(ap);
    return status;
}

SEMDRAW_API const char *semdraw_last_error(void) { return last_message; }

double sdk_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

SEMDRAW_API const char *semdraw_strerror(int status)
{
    switch (status) {
    case SEMDRAW_OK: return "success";
    case SEMDRAW_E_INVAL: return "invalid argument";
    case SEMDRAW_E_NOMEM: return "out of memory";
    case SEMDRAW_E_IO: return "input/output error";
    case SEMDRAW_E_FORMAT: return "malformed message or file";
    case SEMDRAW_E_NOTFOUND: return "no such canvas or layer";
    case SEMDRAW_E_UNSUPPORTED: return "not supported by this daemon";
    case SEMDRAW_E_SHAPE: return "wrong size";
    case SEMDRAW_E_BACKEND: return "the daemon's compute backend failed";
    case SEMDRAW_E_NOMODEL: return "the model is not loaded";
    case SEMDRAW_E_PERM: return "not allowed";
    case SEMDRAW_E_BUSY: return "too much is waiting; retry after a frame";
    case SEMDRAW_E_AGAIN: return "nothing new yet";
    case SEMDRAW_E_TIMEDOUT: return "timed out";
    case SEMDRAW_E_CLOSED: return "closed";
    case SEMDRAW_E_STALE: return "the frame was overwritten while held";
    case SEMDRAW_E_DAEMON_RESTARTED: return "the daemon restarted";
    case SEMDRAW_E_PROTO: return "unexpected answer from the daemon";
    case SEMDRAW_E_VERSION: return "no protocol version in common with the daemon";
    case SEMDRAW_E_NOSPC: return "buffer too small";
    default: return "unknown status";
    }
}

#define STR2(x) #x
#define STR(x) STR2(x)

SEMDRAW_API unsigned semdraw_version(void) { return SEMDRAW_VERSION_HEX; }

SEMDRAW_API const char *semdraw_version_string(void)
{
    return STR(SEMDRAW_VERSION_MAJOR) "." STR(SEMDRAW_VERSION_MINOR) "." STR(SEMDRAW_VERSION_PATCH);
}
