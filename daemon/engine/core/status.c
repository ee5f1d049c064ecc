/* Status codes and the per-thread error message. */
#include "semd/status.h"

#include <stdarg.h>
#include <stdio.h>

static _Thread_local char last_error[1024];

const char *semd_strerror(int status)
{
    switch (status) {
    case SEMD_OK: return "success";
    case SEMD_EINVAL: return "invalid argument";
    case SEMD_ENOMEM: return "out of memory";
    case SEMD_EIO: return "input/output error";
    case SEMD_EFORMAT: return "malformed file";
    case SEMD_ENOTFOUND: return "not found";
    case SEMD_EUNSUPPORTED: return "not supported";
    case SEMD_ESHAPE: return "wrong tensor shape";
    case SEMD_EBACKEND: return "backend failure";
    default: return "unknown status";
    }
}

int semd_error(int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    return status;
}

const char *semd_last_error(void) { return last_error; }

void semd_clear_error(void) { last_error[0] = '\0'; }
