/* semdrawd.conf: key = value lines, then command-line overrides. */
#include "config.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "semd/status.h"

static int set_string(char **dst, const char *value)
{
    char *copy = strdup(value);
    if (!copy) return semd_error(SEMD_ENOMEM, "config: out of memory");
    free(*dst);
    *dst = copy;
    return SEMD_OK;
}

int semd_config_init(semd_config *c)
{
    *c = (semd_config){.max_canvases_per_client = 8, .max_layers = 16, .max_side = 2048,
                       .max_prompt_bytes = 4096, .ring_slots = 3, .lease_ms = 10000};
    const char *env = getenv("SEMDRAW_RUNTIME_DIR");
    int rc = set_string(&c->backend, "cpu");
    if (!rc) rc = set_string(&c->runtime_dir, env && *env ? env : "/run/semdraw");
    return rc;
}

void semd_config_free(semd_config *c)
{
    free(c->model), free(c->config), free(c->taesd), free(c->backend), free(c->runtime_dir);
    for (int i = 0; i < c->n_loras; i++) free(c->loras[i]);
    memset(c, 0, sizeof *c);
}

static int set_int(int *dst, const char *key, const char *value, int lo, int hi, const char *where)
{
    char *end;
    errno = 0;
    long v = strtol(value, &end, 10);
    if (errno || end == value || *end || v < lo || v > hi)
        return semd_error(SEMD_EINVAL, "%s: %s = %s is not an integer in %d..%d", where, key, value, lo, hi);
    *dst = (int)v;
    return SEMD_OK;
}

typedef struct int_key {
    const char *name;
    size_t offset;
    int lo, hi;
} int_key;

static const int_key int_keys[] = {
    {"device", offsetof(semd_config, device), 0, 63},
    {"max_canvases_per_client", offsetof(semd_config, max_canvases_per_client), 1, 1024},
    {"max_layers", offsetof(semd_config, max_layers), 1, 64},
    {"max_side", offsetof(semd_config, max_side), 64, 4096},
    {"max_prompt_bytes", offsetof(semd_config, max_prompt_bytes), 77, 1 << 20},
    {"ring_slots", offsetof(semd_config, ring_slots), 2, 16},
    {"lease_ms", offsetof(semd_config, lease_ms), 100, 3600000},
    {"max_device_memory_mib", offsetof(semd_config, max_device_memory_mib), 0, 1 << 24},
};

int semd_config_set(semd_config *c, const char *key, const char *value, const char *where)
{
    if (strcmp(key, "model") == 0) return set_string(&c->model, value);
    if (strcmp(key, "config") == 0) return set_string(&c->config, value);
    if (strcmp(key, "taesd") == 0) return set_string(&c->taesd, value);
    if (strcmp(key, "runtime_dir") == 0) return set_string(&c->runtime_dir, value);
    if (strcmp(key, "backend") == 0) {
        if (strcmp(value, "cpu") != 0 && strcmp(value, "cuda") != 0)
            return semd_error(SEMD_EINVAL, "%s: backend = %s (cpu or cuda)", where, value);
        return set_string(&c->backend, value);
    }
    if (strcmp(key, "lora") == 0) {
        if (c->n_loras == SEMD_CONFIG_MAX_LORAS)
            return semd_error(SEMD_EINVAL, "%s: more than %d loras", where, SEMD_CONFIG_MAX_LORAS);
        c->loras[c->n_loras] = NULL;
        int rc = set_string(&c->loras[c->n_loras], value);
        if (!rc) c->n_loras++;
        return rc;
    }
    for (size_t i = 0; i < sizeof int_keys / sizeof *int_keys; i++)
        if (strcmp(key, int_keys[i].name) == 0)
            return set_int((int *)((char *)c + int_keys[i].offset), key, value, int_keys[i].lo,
                           int_keys[i].hi, where);
    return semd_error(SEMD_EINVAL, "%s: unknown setting '%s'", where, key);
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t') s++;
    char *end = s + strlen(s);
    while (end > s && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\n' || end[-1] == '\r')) *--end = '\0';
    return s;
}

int semd_config_load(semd_config *c, const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) return semd_error(SEMD_EIO, "%s: cannot open: %s", path, strerror(errno));
    char line[4096], where[4200];
    int rc = 0;
    for (int n = 1; !rc && fgets(line, sizeof line, f); n++) {
        snprintf(where, sizeof where, "%s:%d", path, n);
        if (!strchr(line, '\n') && !feof(f)) {
            rc = semd_error(SEMD_EFORMAT, "%s: line longer than %zu bytes", where, sizeof line - 2);
            break;
        }
        char *hash = strchr(line, '#');
        if (hash) *hash = '\0';
        char *text = trim(line);
        if (!*text) continue;
        char *eq = strchr(text, '=');
        if (!eq) {
            rc = semd_error(SEMD_EFORMAT, "%s: expected 'key = value'", where);
            break;
        }
        *eq = '\0';
        char *key = trim(text), *value = trim(eq + 1);
        if (!*key || !*value) rc = semd_error(SEMD_EFORMAT, "%s: empty key or value", where);
        else rc = semd_config_set(c, key, value, where);
    }
    fclose(f);
    return rc;
}

int semd_config_check(const semd_config *c)
{
    if (!c->model) return semd_error(SEMD_EINVAL, "no model: set 'model' in the config file or pass --model");
    if (!c->runtime_dir || c->runtime_dir[0] != '/')
        return semd_error(SEMD_EINVAL, "runtime_dir must be an absolute path");
    return SEMD_OK;
}
