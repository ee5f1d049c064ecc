/*
 * json_util.h - reading JSON config files with errors that name the file and
 * the field (internal to the engine).
 */
#ifndef SEMD_JSON_UTIL_H
#define SEMD_JSON_UTIL_H

#include <cjson/cJSON.h>

/* Parse a whole file; SEMD_EIO / SEMD_EFORMAT naming `path`. */
int semd_json_load(const char *path, cJSON **out);

/* Required members: a missing or mistyped field is SEMD_EFORMAT naming it. */
int semd_json_int(const cJSON *obj, const char *path, const char *key, int *out);
int semd_json_float(const cJSON *obj, const char *path, const char *key, float *out);
int semd_json_string(const cJSON *obj, const char *path, const char *key, const char **out);

/* Optional members: keep *out when the key is absent, fail when mistyped. */
int semd_json_int_opt(const cJSON *obj, const char *path, const char *key, int *out);
int semd_json_float_opt(const cJSON *obj, const char *path, const char *key, float *out);

/* Does `path` exist as a regular file / directory? */
int semd_is_file(const char *path);
int semd_is_dir(const char *path);

#endif
