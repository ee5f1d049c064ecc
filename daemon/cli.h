/* cli.h - the semdrawd subcommands and their shared helpers. */
#ifndef SEMDRAWD_CLI_H
#define SEMDRAWD_CLI_H

#include "semd/backend.h"

int cmd_tokenize(int argc, char **argv);
int cmd_probe(int argc, char **argv);
int cmd_encode(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_render(int argc, char **argv);
int cmd_render_scene(int argc, char **argv);
int cmd_serve(int argc, char **argv);

/* Print "semdrawd: <what>: <engine message>" and return exit status 1. */
int cli_fail(const char *what, int status);
/* Print a usage error and return exit status 2. */
int cli_usage(const char *usage, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The value after argv[*i] (advancing *i), or NULL if there is none. */
const char *cli_value(int argc, char **argv, int *i);
/* Parse a decimal int in [lo, hi]; 0 on success. */
int cli_int(const char *s, int lo, int hi, int *out);

/* Is `path` an existing directory? */
int cli_is_dir(const char *path);

#endif
