/*
 * semd/status.h - status codes of the semdraw engine.
 *
 * Every engine function that can fail returns an int: SEMD_OK (0) on success or
 * one of the negative SEMD_E* codes below. The code says what kind of failure it
 * was; semd_last_error() says exactly what went wrong (which file, which tensor,
 * which byte), in a message written by the failing call on the calling thread.
 */
#ifndef SEMD_STATUS_H
#define SEMD_STATUS_H

#ifdef __cplusplus
extern "C" {
#endif

enum semd_status {
    SEMD_OK = 0,
    SEMD_EINVAL = -1,       /* an argument or an input value is invalid */
    SEMD_ENOMEM = -2,       /* out of memory (host or device) */
    SEMD_EIO = -3,          /* a file could not be opened, read or written */
    SEMD_EFORMAT = -4,      /* a file's contents are malformed */
    SEMD_ENOTFOUND = -5,    /* a named tensor, file or key is missing */
    SEMD_EUNSUPPORTED = -6, /* valid, but not something the engine implements */
    SEMD_ESHAPE = -7,       /* a tensor has the wrong shape or dtype */
    SEMD_EBACKEND = -8      /* the compute backend failed */
};

/* A short static description of a status code ("malformed file", ...). */
const char *semd_strerror(int status);

/*
 * Record a detailed message for the calling thread and return `status`, so
 * that failure sites read `return semd_error(SEMD_EFORMAT, "%s: ...", path);`.
 */
int semd_error(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The message recorded by the most recent failing call on this thread, or "". */
const char *semd_last_error(void);

/* Forget the recorded message (tests use this between checks). */
void semd_clear_error(void);

#ifdef __cplusplus
}
#endif
#endif
