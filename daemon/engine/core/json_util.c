/* JSON config helpers: whole-file parse and typed, named field access. */
#include "json_util.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "semd/status.h"

#define MAX_CONFIG_BYTES (16 << 20) /* configs are a few KB; refuse anything absurd */

int semd_is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

int semd_is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static int read_file(const char *path, char **buf, long *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return semd_error(SEMD_EIO, "%s: cannot open: %s", path, strerror(errno));
    if (fseek(f, 0, SEEK_END) != 0 || (*len = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
        fclose(f);
        return semd_error(SEMD_EIO, "%s: cannot size the file", path);
    }
    if (*len > MAX_CONFIG_BYTES) {
        fclose(f);
        return semd_error(SEMD_EFORMAT, "%s: %ld bytes is too large for a JSON config", path, *len);
    }
    *buf = malloc((size_t)*len + 1);
    if (!*buf) {
        fclose(f);
        return semd_error(SEMD_ENOMEM, "%s: out of memory", path);
    }
    size_t got = fread(*buf, 1, (size_t)*len, f);
    fclose(f);
    if (got != (size_t)*len) {
        free(*buf);
        return semd_error(SEMD_EIO, "%s: short read", path);
    }
    (*buf)[*len] = '\0';
    return SEMD_OK;
}

int semd_json_load(const char *path, cJSON **out)
{
    char *buf = NULL;
    long len = 0;
    *out = NULL;
    int rc = read_file(path, &buf, &len);
    if (rc) return rc;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(buf, (size_t)len, &end, 0);
    if (!root) {
        long at = end ? (long)(end - buf) : 0;
        free(buf);
        return semd_error(SEMD_EFORMAT, "%s: invalid JSON near byte %ld", path, at);
    }
    free(buf);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return semd_error(SEMD_EFORMAT, "%s: expected a JSON object at the top level", path);
    }
    *out = root;
    return SEMD_OK;
}

static int number_field(const cJSON *obj, const char *path, const char *key, double *out,
                        int optional)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!it || cJSON_IsNull(it)) {
        if (optional) return 1;
        return semd_error(SEMD_EFORMAT, "%s: missing field \"%s\"", path, key);
    }
    if (!cJSON_IsNumber(it))
        return semd_error(SEMD_EFORMAT, "%s: field \"%s\" must be a number", path, key);
    *out = it->valuedouble;
    return SEMD_OK;
}

static int as_int(double v, const char *path, const char *key, int *out)
{
    if (v != floor(v) || v < -2147483648.0 || v > 2147483647.0)
        return semd_error(SEMD_EFORMAT, "%s: field \"%s\" must be an integer (got %g)", path, key, v);
    *out = (int)v;
    return SEMD_OK;
}

int semd_json_int(const cJSON *obj, const char *path, const char *key, int *out)
{
    double v = 0;
    int rc = number_field(obj, path, key, &v, 0);
    return rc ? rc : as_int(v, path, key, out);
}

int semd_json_int_opt(const cJSON *obj, const char *path, const char *key, int *out)
{
    double v = 0;
    int rc = number_field(obj, path, key, &v, 1);
    if (rc == 1) return SEMD_OK;
    return rc ? rc : as_int(v, path, key, out);
}

int semd_json_float(const cJSON *obj, const char *path, const char *key, float *out)
{
    double v = 0;
    int rc = number_field(obj, path, key, &v, 0);
    if (!rc) *out = (float)v;
    return rc;
}

int semd_json_float_opt(const cJSON *obj, const char *path, const char *key, float *out)
{
    double v = 0;
    int rc = number_field(obj, path, key, &v, 1);
    if (rc == 1) return SEMD_OK;
    if (!rc) *out = (float)v;
    return rc;
}

int semd_json_string(const cJSON *obj, const char *path, const char *key, const char **out)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!it) return semd_error(SEMD_EFORMAT, "%s: missing field \"%s\"", path, key);
    if (!cJSON_IsString(it))
        return semd_error(SEMD_EFORMAT, "%s: field \"%s\" must be a string", path, key);
    *out = it->valuestring;
    return SEMD_OK;
}
