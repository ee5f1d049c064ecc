/* Helpers shared by the semdrawd subcommands. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "cli.h"
#include "semd/status.h"

int cli_fail(const char *what, int status)
{
    const char *msg = semd_last_error();
    fprintf(stderr, "semdrawd: %s: %s\n", what, *msg ? msg : semd_strerror(status));
    return 1;
}

int cli_usage(const char *usage, const char *fmt, ...)
{
    va_list ap;
    fputs("semdrawd: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nusage: %s\n", usage);
    return 2;
}

const char *cli_value(int argc, char **argv, int *i)
{
    if (*i + 1 >= argc) return NULL;
    return argv[++*i];
}

int cli_int(const char *s, int lo, int hi, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) return -1;
    *out = (int)v;
    return 0;
}

int cli_is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}
