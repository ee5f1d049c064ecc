/*
 * config.h - semdrawd's configuration: /etc/semdraw/semdrawd.conf, then the
 * command line on top.
 *
 * The file holds `key = value` lines; `#` starts a comment; blank lines are
 * ignored; `lora` may repeat (PATH or PATH:SCALE). Keys:
 *
 *   model                 diffusers folder or single-file checkpoint (required somewhere)
 *   config                diffusers folder with the configs of a single file
 *   taesd                 TAESD folder or decoder file for the stream
 *   lora                  a LoRA to merge at load (repeatable)
 *   backend               cpu | cuda                        (default cpu)
 *   device                GPU index                         (default 0)
 *   runtime_dir           sockets and frame rings           (default $SEMDRAW_RUNTIME_DIR, else /run/semdraw)
 *   max_canvases_per_client, max_layers, max_side, max_prompt_bytes, ring_slots
 *   lease_ms              a client that sends nothing for this long loses its canvases
 *   max_device_memory_mib memory the backend may hold for weights and canvases (0: no limit);
 *                         a canvas that would take it over the limit is refused, and the
 *                         backend never passes it: a frame whose working memory does not
 *                         fit fails (CanvasError) instead of growing the daemon
 *
 * An unknown key, a malformed line or a value out of range is an error naming
 * the file and the line.
 */
#ifndef SEMDRAWD_CONFIG_H
#define SEMDRAWD_CONFIG_H

#define SEMD_CONFIG_DEFAULT_PATH "/etc/semdraw/semdrawd.conf"
#define SEMD_CONFIG_MAX_LORAS 16

typedef struct semd_config {
    char *model, *config, *taesd, *backend, *runtime_dir;
    char *loras[SEMD_CONFIG_MAX_LORAS];
    int n_loras;
    int device;
    int max_canvases_per_client, max_layers, max_side, max_prompt_bytes, ring_slots;
    int lease_ms;
    int max_device_memory_mib;
} semd_config;

/* Defaults, with runtime_dir from $SEMDRAW_RUNTIME_DIR when set. */
int semd_config_init(semd_config *c);
/* Read a file on top of what c holds. A missing file is SEMD_EIO; callers skip the default path if absent. */
int semd_config_load(semd_config *c, const char *path);
/* One `key = value` (the command line's --key value uses the same names, '-' for '_'). */
int semd_config_set(semd_config *c, const char *key, const char *value, const char *where);
/* After all sources: the required settings are there. */
int semd_config_check(const semd_config *c);
void semd_config_free(semd_config *c);

#endif
