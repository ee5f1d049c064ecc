/*
 * Canvas handles: create and attach, the edit requests, and a cache of
 * everything sent, which AUTO_RESTORE replays into a restarted daemon. Layer
 * ids given to the application stay the same across a restore; the cache maps
 * them to the daemon's ids.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define BODY(env, field, CASE, value) ((env).body_case = SEMDRAW__V1__ENVELOPE__BODY_##CASE, (env).field = (value))

semdraw_canvas *sdk_find_canvas(semdraw_client *c, uint64_t id)
{
    for (semdraw_canvas *cv = c->canvases; cv; cv = cv->next)
        if (cv->id == id && !(cv->dead && cv->dead_status == SEMDRAW_E_DAEMON_RESTARTED)) return cv;
    return NULL;
}

void sdk_canvas_mark_dead(semdraw_canvas *cv, int status)
{
    cv->dead = 1, cv->dead_status = status;
    cv->streaming = 0;
}

/* Usable for a request: open client, live canvas, and (edit) this client may change it. */
static int usable(semdraw_canvas *cv, int edit, const char *what)
{
    if (!cv) return sdk_fail(SEMDRAW_E_INVAL, "%s: canvas is NULL", what);
    semdraw_client *c = cv->client;
    if (!c->connected) return sdk_fail(SEMDRAW_E_CLOSED, "%s: the client is disconnected", what);
    sdk_handle_restart(c);
    if (cv->dead)
        return sdk_fail(cv->dead_status, "%s: canvas %llu %s", what, (unsigned long long)cv->id,
                        cv->dead_status == SEMDRAW_E_DAEMON_RESTARTED ? "did not survive a daemon restart"
                                                                      : "is closed");
    if (edit && !cv->editable)
        return sdk_fail(SEMDRAW_E_PERM, "%s: canvas %llu is attached as a viewer", what, (unsigned long long)cv->id);
    return SEMDRAW_OK;
}

/* A request about this canvas whose reply carries nothing but success. */
static int call_done(semdraw_canvas *cv, Envelope *e)
{
    Envelope *r;
    int rc = sdk_call(cv->client, e, &r);
    sdk_envelope_free(r);
    return rc;
}

int sdk_canvas_map_ring(semdraw_canvas *cv, const char *path)
{
    semdraw_ring_reader *ring = NULL;
    if (!path || semdraw_ring_open(path, &ring) != SEMDRAW_RING_OK)
        return sdk_fail(SEMDRAW_E_IO, "%s: cannot map the canvas's frame ring", path ? path : "(no path)");
    /* a reader thread may still use the old ring: it stays mapped until the handle goes */
    sdk_retired_ring *keep = atomic_load(&cv->ring) ? malloc(sizeof *keep) : NULL;
    if (atomic_load(&cv->ring) && !keep) {
        semdraw_ring_close(ring);
        return sdk_fail(SEMDRAW_E_NOMEM, "out of memory");
    }
    semdraw_ring_reader *old = atomic_exchange(&cv->ring, ring);
    if (keep) keep->ring = old, keep->next = cv->old_rings, cv->old_rings = keep;
    atomic_store(&cv->last_read_seq, 0);
    return SEMDRAW_OK;
}

/* Fill the handle from the daemon's CanvasInfo (create, attach, restore). */
static int adopt_info(semdraw_canvas *cv, const Semdraw__V1__CanvasInfo *ci)
{
    if (!ci || !ci->has_canvas_id || !ci->ring_path)
        return sdk_fail(SEMDRAW_E_PROTO, "semdrawd's canvas reply lacks the canvas id or ring");
    cv->id = ci->canvas_id;
    cv->width = ci->width, cv->height = ci->height, cv->seed = ci->seed;
    cv->editable = ci->has_editable ? ci->editable : cv->created;
    cv->detached = ci->detached;
    if (ci->has_key && ci->key.len == SEMDRAW_KEY_SIZE) memcpy(cv->key, ci->key.data, SEMDRAW_KEY_SIZE);
    return sdk_canvas_map_ring(cv, ci->ring_path);
}

static int canvas_request(semdraw_client *c, Envelope *e, semdraw_canvas *cv)
{
    Envelope *r;
    int rc = sdk_call(c, e, &r);
    if (rc) return rc;
    rc = r->reply->result_case == SEMDRAW__V1__REPLY__RESULT_CANVAS ? adopt_info(cv, r->reply->canvas)
                                                                   : sdk_fail(SEMDRAW_E_PROTO, "unexpected reply");
    sdk_envelope_free(r);
    if (!rc) sdk_subscribe(c, cv->id, 1);
    return rc;
}

static int send_create(semdraw_client *c, const semdraw_canvas_desc *d, semdraw_canvas *cv)
{
    Envelope e = SEMDRAW__V1__ENVELOPE__INIT;
    Semdraw__V1__CreateCanvas m = SEMDRAW__V1__CREATE_CANVAS__INIT;
    m.has_width = m.has_height = 1, m.width = d->width, m.height = d->height;
    m.has_seed = (d->flags & SEMDRAW_CANVAS_SEED) != 0, m.seed = d->seed;
    m.has_profile = 1, m.profile = d->profile == SEMDRAW_PROFILE_REFERENCE ? SEMDRAW__V1__PROFILE__PROFILE_REFERENCE
                                                                         : SEMDRAW__V1__PROFILE__PROFILE_DEFAULT;
    m.has_ring_slots = d->ring_slots != 0, m.ring_slots = d->ring_slots;
    m.n_timesteps = d->n_timesteps, m.timesteps = (uint32_t *)d->timesteps;
    m.has_detached = 1, m.detached = (d->flags & SEMDRAW_CANVAS_DETACHED) != 0;
    BODY(e, create_canvas, CREATE_CANVAS, &m);
    return canvas_request(c, &e, cv);
}

static semdraw_canvas *new_handle(semdraw_client *c)
{
    semdraw_canvas *cv = calloc(1, sizeof *cv);
    if (!cv) return NULL;
    cv->client = c;
    cv->next = c->canvases, c->canvases = cv;
    c->n_handles++;
    return cv;
}

static void free_cache(semdraw_canvas *cv)
{
    for (int i = 0; i < cv->n_layers; i++) {
        sdk_layer *l = &cv->layers[i];
        free(l->prompt), free(l->negative), free(l->mask);
    }
    free(cv->layers), free(cv->bg_prompt), free(cv->bg_negative), free(cv->bg_rgb);
}

static void free_handle(semdraw_canvas *cv)
{
    semdraw_client *c = cv->client;
    for (semdraw_canvas **p = &c->canvases; *p; p = &(*p)->next)
        if (*p == cv) {
            *p = cv->next;
            break;
        }
    semdraw_ring_close(atomic_load(&cv->ring));
    while (cv->old_rings) {
        sdk_retired_ring *r = cv->old_rings;
        cv->old_rings = r->next;
        semdraw_ring_close(r->ring);
        free(r);
    }
    for (int i = 0; i < c->n_events; i++) /* queued events must not point at freed handles */
        if (c->events[i].ev.canvas == cv) c->events[i].ev.canvas = NULL;
    free_cache(cv);
    free(cv->frame_failure);
    free(cv);
    c->n_handles--;
    sdk_client_unref(c);
}

SEMDRAW_API int semdraw_canvas_create(semdraw_client *c, const semdraw_canvas_desc *d, semdraw_canvas **out)
{
    if (!c || !d || !out) return sdk_fail(SEMDRAW_E_INVAL, "semdraw_canvas_create: NULL argument");
    *out = NULL;
    if (d->struct_size < offsetof(semdraw_canvas_desc, timesteps) || d->n_timesteps > SEMDRAW_MAX_TIMESTEPS)
        return sdk_fail(SEMDRAW_E_INVAL, "semdraw_canvas_create: struct_size too small or n_timesteps > %d",
                        SEMDRAW_MAX_TIMESTEPS);
    if (!c->connected) return sdk_fail(SEMDRAW_E_CLOSED, "the client is disconnected");
    sdk_handle_restart(c);
    semdraw_canvas *cv = new_handle(c);
    if (!cv) return sdk_fail(SEMDRAW_E_NOMEM, "out of memory");
    memcpy(&cv->desc, d, d->struct_size < sizeof cv->desc ? d->struct_size : sizeof cv->desc);
    cv->desc.struct_size = sizeof cv->desc;
    cv->created = 1;
    int rc = send_create(c, &cv->desc, cv);
    if (rc) {
        free_handle(cv);
        return rc;
    }
    cv->desc.flags |= SEMDRAW_CANVAS_SEED, cv->desc.seed = cv->seed; /* a restore keeps the picture's seed */
    *out = cv;
    return SEMDRAW_OK;
}

SEMDRAW_API int semdraw_canvas_attach(semdraw_client *c, uint64_t canvas_id, const uint8_t key[SEMDRAW_KEY_SIZE],
                                      semdraw_canvas **out)
{
    if (!c || !out) return sdk_fail(SEMDRAW_E_INVAL, "semdraw_canvas_attach: NULL argument");
    *out = NULL;
    if (!c->connected) return sdk_fail(SEMDRAW_E_CLOSED, "the client is disconnected");
    sdk_handle_restart(c);
    semdraw_canvas *cv = new_handle(c);
    if (!cv) return sdk_fail(SEMDRAW_E_NOMEM, "out of memory");
    Envelope e = SEMDRAW__V1__ENVELOPE__INIT;
    Semdraw__V1__AttachCanvas m = SEMDRAW__V1__ATTACH_CANVAS__INIT;
    m.has_canvas_id = 1, m.canvas_id = canvas_id;
    if (key) m.has_key = 1, m.key.data = (uint8_t *)key, m.key.len = SEMDRAW_KEY_SIZE;
    BODY(e, attach_canvas, ATTACH_CANVAS, &m);
    int rc = canvas_request(c, &e, cv);
    if (rc) {
        free_handle(cv);
        return rc;
    }
    *out = cv;
    return SEMDRAW_OK;
}

SEMDRAW_API int semdraw_canvas_close(semdraw_canvas *cv)
{
    int rc = usable(cv, 1, "semdraw_canvas_close");
    if (rc) return rc;
    Envelope e = SEMDRAW__V1__ENVELOPE__INIT;
    Semdraw__V1__CloseCanvas m = SEMDRAW__V1__CLOSE_CANVAS__INIT;
    m.has_canvas_id = 1, m.canvas_id = cv->id;
    BODY(e, close_canvas, CLOSE_CANVAS, &m);
    rc = call_done(cv, &e);
    if (rc == SEMDRAW_OK || rc == SEMDRAW_E_NOTFOUND) {
        sdk_canvas_mark_dead(cv, SEMDRAW_E_CLOSED);
        sdk_subscribe(cv->client, cv->id, 0);
    }
    return rc;
}

SEMDRAW_API void semdraw_canvas_release(semdraw_canvas *cv)
{
    if (!cv) return;
    semdraw_client *c = cv->client;
    if (c->connected && cv->created && !cv->detached && !cv->dead) semdraw_canvas_close(cv);
    if (c->connected) sdk_subscribe(c, cv->id, 0);
    free_handle(cv);
}

SEMDRAW_API int semdraw_canvas_info_get(semdraw_canvas *cv, semdraw_canvas_info *info)
{
    const size_t first = offsetof(semdraw_canvas_info, last_error); /* the struct's first release ended there */
    if (!cv || !info || info->struct_size < first)
        return sdk_fail(SEMDRAW_E_INVAL, "semdraw_canvas_info_get: NULL argument or struct_size too small");
    semdraw_canvas_info full = {info->struct_size, cv->id, cv->width, cv->height, cv->seed, cv->editable,
                                cv->streaming, cv->fps, cv->latency_ms, ""};
    memcpy(full.last_error, cv->last_error, sizeof full.last_error);
    memcpy(info, &full, info->struct_size < sizeof full ? info->struct_size : sizeof full);
    return cv->dead ? sdk_fail(cv->dead_status, "the canvas is closed") : SEMDRAW_OK;
}

SEMDRAW_API int semdraw_canvas_key(semdraw_canvas *cv, uint8_t key[SEMDRAW_KEY_SIZE])
{
    if (!cv || !key) return sdk_fail(SEMDRAW_E_INVAL, "semdraw_canvas_key: NULL argument");
    if (!cv->editable) return sdk_fail(SEMDRAW_E_PERM, "viewers do not get the canvas's key");
    memcpy(key, cv->key, SEMDRAW_KEY_SIZE);
    return SEMDRAW_OK;
}

/* ---- background ---- */

static int replace_str(char **slot, const char *v)
{
    if (!v) return 0;
    char *d = strdup(v);
    if (!d) return -1;
    free(*slot);
    *slot = d;
    return 0;
}

static int send_background(semdraw_canvas *cv, const char *prompt, const char *negative, const uint8_t *rgb,
                           int has_color, uint32_t color)
{
    Envelope e = SEMDRAW__V1__ENVELOPE__INIT;
    Semdraw__V1__SetBackground m = SEMDRAW__V1__SET_BACKGROUND__INIT;
    m.has_canvas_id = 1, m.canvas_id = cv->id;
    m.prompt = (char *)prompt, m.negative = (char *)negative;
    if (rgb) m.has_rgb = 1, m.rgb.data = (uint8_t *)rgb, m.rgb.len = (size_t)cv->width * cv->height * 3;
    if (has_color) m.has_color = 1, m.color = color;
    BODY(e, set_background, SET_BACKGROUND, &m);
    return call_done(cv, &e);
}

SEMDRAW_API int semdraw_canvas_set_background(semdraw_canvas *cv, const char *prompt, const char *negative,
                                              const uint8_t *rgb, uint32_t stride)
{
    int rc = usable(cv, 1, "semdraw_canvas_set_background");
    if (rc) return rc;
    const size_t row = (size_t)cv->width * 3;
    if (rgb && stride && stride < row) return sdk_fail(SEMDRAW_E_INVAL, "background stride %u < 3 x width", stride);
    uint8_t *packed = rgb ? malloc(row * cv->height) : NULL;
    if (rgb && !packed) return sdk_fail(SEMDRAW_E_NOMEM, "out of memory");
    for (uint32_t y = 0; rgb && y < cv->height; y++) memcpy(packed + y * row, rgb + y * (stride ? stride : row), row);
    rc = send_background(cv, prompt, negative, packed, 0, 0);
    if (rc || replace_str(&cv->bg_prompt, prompt) || replace_str(&cv->bg_negative, negative)) {
        free(packed);
        return rc ? rc : sdk_fail(SEMDRAW_E_NOMEM, "out of memory");
    }
    if (packed) free(cv->bg_rgb), cv->bg_rgb = packed, cv->has_bg_color = 0;
    return SEMDRAW_OK;
}

SEMDRAW_API int semdraw_canvas_set_background_color(semdraw_canvas *cv, uint32_t rgb)
{
    int rc = usable(cv, 1, "semdraw_canvas_set_background_color");
    if (!rc) rc = send_background(cv, NULL, NULL, NULL, 1, rgb & 0xffffffu);
    if (rc) return rc;
    free(cv->bg_rgb), cv->bg_rgb = NULL;
    cv->has_bg_color = 1, cv->bg_color = rgb & 0xffffffu;
    return SEMDRAW_OK;
}

/* ---- parameters ---- */

static int send_params(semdraw_canvas *cv, const semdraw_canvas_params *p, int reset)
{
    Envelope e = SEMDRAW__V1__ENVELOPE__INIT;
    Semdraw__V1__SetCanvasParams m = SEMDRAW__V1__SET_CANVAS_PARAMS__INIT;
    m.has_canvas_id = 1, m.canvas_id = cv->id;
    const uint32_t f = p ? p->fields : 0;
    if (f & SEMDRAW_PARAM_GUIDANCE) m.has_guidance_scale = 1, m.guidance_scale = p->guidance_scale;
    if (f & SEMDRAW_PARAM_BOOTSTRAP_STEPS) m.has_bootstrap_steps = 1, m.bootstrap_steps = p->bootstrap_steps;
    if (f & SEMDRAW_PARAM_BOOTSTRAP_MIX) m.has_bootstrap_mix_steps = 1, m.bootstrap_mix_steps = p->bootstrap_mix_steps;
    if (f & SEMDRAW_PARAM_MASK_TYPE) m.has_mask_type = 1, m.mask_type = (Semdraw__V1__MaskType)p->mask_type;
    if (f & SEMDRAW_PARAM_COVER_ALPHA) m.has_cover_alpha = 1, m.cover_alpha = p->cover_alpha;
    if (f & SEMDRAW_PARAM_SEED) m.has_seed = 1, m.seed = p->seed;
    if (f & SEMDRAW_PARAM_EMBEDDED_GUIDANCE)
        m.has_embedded_guidance_scale = 1, m.embedded_guidance_scale = p->embedded_guidance_scale;
    if (f & SEMDRAW_PARAM_AUTOFLUSH) m.has_autoflush = 1, m.autoflush = p->autoflush != 0;
    if (reset) m.has_reset_latent = 1, m.reset_latent = 1;
    BODY(e, set_params, SET_PARAMS, &m);
    return call_done(cv, &e);
}

SEMDRAW_API int semdraw_canvas_set_params(semdraw_canvas *cv, const semdraw_canvas_params *p)
{
    int rc = usable(cv, 1, "semdraw_canvas_set_params");
    if (rc) return rc;
    /* rule 5: a struct from before embedded_guidance_scale and autoflush were added reads as zeros there */
    if (!p || p->struct_size < offsetof(semdraw_canvas_params, embedded_guidance_scale) ||
        (p->fields & ~((SEMDRAW_PARAM_AUTOFLUSH << 1) - 1u)))
        return sdk_fail(SEMDRAW_E_INVAL, "semdraw_canvas_set_params: bad params struct or unknown fields");
    semdraw_canvas_params in = {0};
    memcpy(&in, p, p->struct_size < sizeof in ? p->struct_size : sizeof in);
    if (p->struct_size < sizeof in && (in.fields & (SEMDRAW_PARAM_EMBEDDED_GUIDANCE | SEMDRAW_PARAM_AUTOFLUSH)))
        return sdk_fail(SEMDRAW_E_INVAL, "semdraw_canvas_set_params: fields beyond this struct's size");
    p = &in;
    if ((rc = send_params(cv, p, 0))) return rc;
    semdraw_canvas_params *c = &cv->params;
    const uint32_t f = p->fields;
    if (f & SEMDRAW_PARAM_GUIDANCE) c->guidance_scale = p->guidance_scale;
    if (f & SEMDRAW_PARAM_BOOTSTRAP_STEPS) c->bootstrap_steps = p->bootstrap_steps;
    if (f & SEMDRAW_PARAM_BOOTSTRAP_MIX) c->bootstrap_mix_steps = p->bootstrap_mix_steps;
    if (f & SEMDRAW_PARAM_MASK_TYPE) c->mask_type = p->mask_type;
    if (f & SEMDRAW_PARAM_COVER_ALPHA) c->cover_alpha = p->cover_alpha;
    if (f & SEMDRAW_PARAM_SEED) c->seed = p->seed, cv->seed = p->seed, cv->desc.seed = p->seed;
    if (f & SEMDRAW_PARAM_EMBEDDED_GUIDANCE) c->embedded_guidance_scale = p->embedded_guidance_scale;
    if (f & SEMDRAW_PARAM_AUTOFLUSH) c->autoflush = p->autoflush;
    c->fields |= f & ~(uint32_t)SEMDRAW_PARAM_SEED; /* the seed is restored through the create */
    c->struct_size = sizeof *c;
    return SEMDRAW_OK;
}

SEMDRAW_API int semdraw_canvas_reset_latent(semdraw_canvas *cv)
{
    int rc = usable(cv, 1, "semdraw_canvas_reset_latent");
    return rc ? rc : send_params(cv, NULL, 1);
}

/* ---- layers ---- */

/* (count, value) pairs when they are shorter than the raw bytes. */
static uint8_t *rle_encode(const uint8_t *a, size_t n, size_t *out_len)
{
    size_t runs = 0;
    for (size_t i = 0; i < n;) {
        size_t j = i + 1;
        while (j < n && a[j] == a[i] && j - i < 255) j++;
        runs++, i = j;
    }
    if (2 * runs >= n) return NULL;
    uint8_t *out = malloc(2 * runs), *p = out;
    if (!out) return NULL;
    for (size_t i = 0; i < n;) {
        size_t j = i + 1;
        while (j < n && a[j] == a[i] && j - i < 255) j++;
        *p++ = (uint8_t)(j - i), *p++ = a[i];
        i = j;
    }
    *out_len = 2 * runs;
    return out;
}

/* One SetLayer; daemon_id < 0 adds (and *added gets the daemon's id). mask: packed, canvas size. */
static int send_layer(semdraw_canvas *cv, int64_t daemon_id, const semdraw_layer *l, const uint8_t *mask,
                      uint32_t *added)
{
    Envelope e = SEMDRAW__V1__ENVELOPE__INIT, *r;
    Semdraw__V1__SetLayer m = SEMDRAW__V1__SET_LAYER__INIT;
    Semdraw__V1__Mask mk = SEMDRAW__V1__MASK__INIT;
    m.has_canvas_id = 1, m.canvas_id = cv->id;
    if (daemon_id >= 0) m.has_layer_id = 1, m.layer_id = (uint32_t)daemon_id;
    const uint32_t f = l->fields;
    if (f & SEMDRAW_LAYER_PROMPT) m.prompt = (char *)(l->prompt ? l->prompt : "");
    if (f & SEMDRAW_LAYER_NEGATIVE) m.negative = (char *)(l->negative ? l->negative : "");
    if (f & SEMDRAW_LAYER_MASK_STD) m.has_mask_std = 1, m.mask_std = l->mask_std;
    if (f & SEMDRAW_LAYER_MASK_STRENGTH) m.has_mask_strength = 1, m.mask_strength = l->mask_strength;
    if (f & SEMDRAW_LAYER_PROMPT_STRENGTH) m.has_prompt_strength = 1, m.prompt_strength = l->prompt_strength;
    uint8_t *rle = NULL;
    if (mask) {
        const size_t n = (size_t)cv->width * cv->height;
        size_t rle_len = 0;
        mk.has_width = mk.has_height = 1, mk.width = cv->width, mk.height = cv->height;
        if ((rle = rle_encode(mask, n, &rle_len))) mk.has_rle = 1, mk.rle.data = rle, mk.rle.len = rle_len;
        else mk.has_alpha = 1, mk.alpha.data = (uint8_t *)mask, mk.alpha.len = n;
        m.mask = &mk;
    }
    BODY(e, set_layer, SET_LAYER, &m);
    int rc = sdk_call(cv->client, &e, &r);
    free(rle);
    if (!rc && added) {
        if (r->reply->result_case == SEMDRAW__V1__REPLY__RESULT_LAYER_ADDED && r->reply->layer_added->has_layer_id)
            *added = r->reply->layer_added->layer_id;
        else
            rc = sdk_fail(SEMDRAW_E_PROTO, "semdrawd did not name the new layer");
    }
    sdk_envelope_free(r);
    return rc;
}

static sdk_layer *grow_layers(semdraw_canvas *cv)
{
    if (cv->n_layers == cv->cap_layers) {
        const int cap = cv->cap_layers ? 2 * cv->cap_layers : 8;
        sdk_layer *p = realloc(cv->layers, (size_t)cap * sizeof *p);
        if (!p) return NULL;
        cv->layers = p, cv->cap_layers = cap;
    }
    return &cv->layers[cv->n_layers];
}

/*
 * The cache entry of a layer. A canvas this client attached to has layers
 * made by others: their ids are the daemon's, passed through (the daemon
 * says when one does not exist).
 */
static sdk_layer *find_layer(semdraw_canvas *cv, uint32_t app_id)
{
    for (int i = 0; i < cv->n_layers; i++)
        if (cv->layers[i].live && cv->layers[i].app_id == app_id) return &cv->layers[i];
    if (cv->created || !grow_layers(cv)) return NULL;
    sdk_layer *l = &cv->layers[cv->n_layers++];
    *l = (sdk_layer){.app_id = app_id, .daemon_id = app_id, .live = 1};
    return l;
}

/* The layer's mask packed at canvas size (a copy when the stride differs). */
static int pack_mask(semdraw_canvas *cv, const semdraw_layer *l, uint8_t **out)
{
    *out = NULL;
    if (!(l->fields & SEMDRAW_LAYER_MASK)) return SEMDRAW_OK;
    if (!l->mask) return sdk_fail(SEMDRAW_E_INVAL, "SEMDRAW_LAYER_MASK is set but mask is NULL");
    const uint32_t stride = l->mask_stride ? l->mask_stride : cv->width;
    if (stride < cv->width) return sdk_fail(SEMDRAW_E_INVAL, "mask_stride %u < canvas width %u", stride, cv->width);
    uint8_t *m = malloc((size_t)cv->width * cv->height);
    if (!m) return sdk_fail(SEMDRAW_E_NOMEM, "out of memory");
    for (uint32_t y = 0; y < cv->height; y++) memcpy(m + (size_t)y * cv->width, l->mask + (size_t)y * stride, cv->width);
    *out = m;
    return SEMDRAW_OK;
}

/* Keep what was sent for a restore; takes the mask. */
static int cache_layer(sdk_layer *c, const semdraw_layer *l, uint8_t *mask)
{
    const uint32_t f = l->fields;
    if (((f & SEMDRAW_LAYER_PROMPT) && replace_str(&c->prompt, l->prompt ? l->prompt : "")) ||
        ((f & SEMDRAW_LAYER_NEGATIVE) && replace_str(&c->negative, l->negative ? l->negative : ""))) {
        free(mask);
        return sdk_fail(SEMDRAW_E_NOMEM, "out of memory");
    }
    if (mask) free(c->mask), c->mask = mask;
    if (f & SEMDRAW_LAYER_MASK_STD) c->has_std = 1, c->mask_std = l->mask_std;
    if (f & SEMDRAW_LAYER_MASK_STRENGTH) c->has_strength = 1, c->mask_strength = l->mask_strength;
    if (f & SEMDRAW_LAYER_PROMPT_STRENGTH) c->has_pstrength = 1, c->prompt_strength = l->prompt_strength;
    return SEMDRAW_OK;
}

SEMDRAW_API int semdraw_layer_add(semdraw_canvas *cv, const semdraw_layer *l, uint32_t *layer_id)
{
    int rc = usable(cv, 1, "semdraw_layer_add");
    if (rc) return rc;
    if (!l || l->struct_size < sizeof *l) return sdk_fail(SEMDRAW_E_INVAL, "semdraw_layer_add: bad layer struct");
    if (!grow_layers(cv)) return sdk_fail(SEMDRAW_E_NOMEM, "out of memory");
    uint8_t *mask;
    if ((rc = pack_mask(cv, l, &mask))) return rc;
    uint32_t daemon_id = 0;
    if ((rc = send_layer(cv, -1, l, mask, &daemon_id))) {
        free(mask);
        return rc;
    }
    sdk_layer *c = &cv->layers[cv->n_layers++];
    /* the application's ids: ours on a canvas we made (stable across restores), else the daemon's */
    *c = (sdk_layer){.app_id = cv->created ? cv->next_app_layer++ : daemon_id, .daemon_id = daemon_id, .live = 1};
    if (layer_id) *layer_id = c->app_id;
    return cache_layer(c, l, mask);
}

SEMDRAW_API int semdraw_layer_set(semdraw_canvas *cv, uint32_t layer_id, const semdraw_layer *l)
{
    int rc = usable(cv, 1, "semdraw_layer_set");
    if (rc) return rc;
    if (!l || l->struct_size < sizeof *l) return sdk_fail(SEMDRAW_E_INVAL, "semdraw_layer_set: bad layer struct");
    sdk_layer *c = find_layer(cv, layer_id);
    if (!c) return sdk_fail(SEMDRAW_E_NOTFOUND, "canvas %llu has no layer %u", (unsigned long long)cv->id, layer_id);
    uint8_t *mask;
    if ((rc = pack_mask(cv, l, &mask))) return rc;
    if ((rc = send_layer(cv, c->daemon_id, l, mask, NULL))) {
        free(mask);
        return rc;
    }
    return cache_layer(c, l, mask);
}

SEMDRAW_API int semdraw_layer_remove(semdraw_canvas *cv, uint32_t layer_id)
{
    int rc = usable(cv, 1, "semdraw_layer_remove");
    if (rc) return rc;
    sdk_layer *c = find_layer(cv, layer_id);
    if (!c) return sdk_fail(SEMDRAW_E_NOTFOUND, "canvas %llu has no layer %u", (unsigned long long)cv->id, layer_id);
    Envelope e = SEMDRAW__V1__ENVELOPE__INIT;
    Semdraw__V1__RemoveLayer m = SEMDRAW__V1__REMOVE_LAYER__INIT;
    m.has_canvas_id = 1, m.canvas_id = cv->id;
    m.has_layer_id = 1, m.layer_id = c->daemon_id;
    BODY(e, remove_layer, REMOVE_LAYER, &m);
    if ((rc = call_done(cv, &e))) return rc;
    c->live = 0;
    free(c->prompt), free(c->negative), free(c->mask);
    c->prompt = c->negative = NULL, c->mask = NULL;
    return SEMDRAW_OK;
}

static int send_commit(semdraw_canvas *cv, uint64_t *input_seq)
{
    Envelope e = SEMDRAW__V1__ENVELOPE__INIT, *r;
    Semdraw__V1__Commit m = SEMDRAW__V1__COMMIT__INIT;
    m.has_canvas_id = 1, m.canvas_id = cv->id;
    BODY(e, commit, COMMIT, &m);
    int rc = sdk_call(cv->client, &e, &r);
    if (!rc && input_seq)
        *input_seq = r->reply->result_case == SEMDRAW__V1__REPLY__RESULT_COMMITTED ? r->reply->committed->input_seq : 0;
    sdk_envelope_free(r);
    return rc;
}

SEMDRAW_API int semdraw_canvas_commit(semdraw_canvas *cv, uint64_t *input_seq)
{
    int rc = usable(cv, 1, "semdraw_canvas_commit");
    return rc ? rc : send_commit(cv, input_seq);
}

/* ---- streaming ---- */

static int send_stream(semdraw_canvas *cv, int start, float fps)
{
    Envelope e = SEMDRAW__V1__ENVELOPE__INIT;
    Semdraw__V1__StartStream on = SEMDRAW__V1__START_STREAM__INIT;
    Semdraw__V1__StopStream off = SEMDRAW__V1__STOP_STREAM__INIT;
    if (start) {
        on.has_canvas_id = 1, on.canvas_id = cv->id;
        on.has_target_fps = 1, on.target_fps = fps;
        BODY(e, start_stream, START_STREAM, &on);
    } else {
        off.has_canvas_id = 1, off.canvas_id = cv->id;
        BODY(e, stop_stream, STOP_STREAM, &off);
    }
    return call_done(cv, &e);
}

SEMDRAW_API int semdraw_stream_start(semdraw_canvas *cv, float target_fps)
{
    int rc = usable(cv, 1, "semdraw_stream_start");
    if (!rc) rc = send_stream(cv, 1, target_fps);
    if (!rc) cv->streaming = 1, cv->target_fps = target_fps;
    return rc;
}

SEMDRAW_API int semdraw_stream_stop(semdraw_canvas *cv)
{
    int rc = usable(cv, 1, "semdraw_stream_stop");
    if (!rc) rc = send_stream(cv, 0, 0);
    if (!rc) cv->streaming = 0;
    return rc;
}

SEMDRAW_API int semdraw_canvas_snapshot(semdraw_canvas *cv, int timeout_ms)
{
    int rc = usable(cv, 1, "semdraw_canvas_snapshot");
    if (rc) return rc;
    semdraw_ring_reader *ring = atomic_load(&cv->ring);
    const uint64_t before = semdraw_ring_latest(ring);
    Envelope e = SEMDRAW__V1__ENVELOPE__INIT, *r;
    Semdraw__V1__Snapshot m = SEMDRAW__V1__SNAPSHOT__INIT;
    m.has_canvas_id = 1, m.canvas_id = cv->id;
    BODY(e, snapshot, SNAPSHOT, &m);
    if ((rc = sdk_call(cv->client, &e, &r))) return rc;
    const uint32_t frames = r->reply->result_case == SEMDRAW__V1__REPLY__RESULT_SNAPSHOT ? r->reply->snapshot->frames : 1;
    sdk_envelope_free(r);
    /* In slices, reading events between them: a frame that fails ends the wait with its reason. */
    const uint64_t failures = cv->frame_failures;
    const double deadline = sdk_now_ms() + (timeout_ms < 0 ? 0 : timeout_ms);
    for (;;) {
        const double left = deadline - sdk_now_ms();
        const int slice = timeout_ms >= 0 && left < 100 ? (left > 0 ? (int)left : 0) : 100;
        rc = semdraw_frame_wait(cv, before + frames - 1, slice);
        if (rc != SEMDRAW_E_TIMEDOUT) return rc;
        sdk_drain(cv->client);
        if (cv->frame_failures != failures)
            return sdk_fail(cv->frame_failure_status, "the snapshot's frame failed: %s",
                            cv->frame_failure ? cv->frame_failure : "");
        if (timeout_ms >= 0 && left <= 0)
            return sdk_fail(SEMDRAW_E_TIMEDOUT, "no snapshot frame within %d ms", timeout_ms);
    }
}

/* ---- restore after a daemon restart ---- */

int sdk_canvas_restore(semdraw_canvas *cv)
{
    semdraw_client *c = cv->client;
    const uint64_t old_id = cv->id;
    int rc = send_create(c, &cv->desc, cv);
    if (rc) return rc;
    sdk_subscribe(c, old_id, 0);
    if (cv->bg_prompt || cv->bg_negative || cv->bg_rgb)
        rc = send_background(cv, cv->bg_prompt, cv->bg_negative, cv->bg_rgb, 0, 0);
    if (!rc && cv->has_bg_color) rc = send_background(cv, NULL, NULL, NULL, 1, cv->bg_color);
    for (int i = 0; !rc && i < cv->n_layers; i++) {
        sdk_layer *l = &cv->layers[i];
        if (!l->live) continue;
        semdraw_layer d = {.struct_size = sizeof d};
        d.fields = (l->prompt ? SEMDRAW_LAYER_PROMPT : 0) | (l->negative ? SEMDRAW_LAYER_NEGATIVE : 0) |
                   (l->has_std ? SEMDRAW_LAYER_MASK_STD : 0) | (l->has_strength ? SEMDRAW_LAYER_MASK_STRENGTH : 0) |
                   (l->has_pstrength ? SEMDRAW_LAYER_PROMPT_STRENGTH : 0);
        d.prompt = l->prompt, d.negative = l->negative;
        d.mask_std = l->mask_std, d.mask_strength = l->mask_strength, d.prompt_strength = l->prompt_strength;
        rc = send_layer(cv, -1, &d, l->mask, &l->daemon_id);
    }
    if (!rc && cv->params.fields) rc = send_params(cv, &cv->params, 0);
    if (!rc) rc = send_commit(cv, NULL);
    if (!rc && cv->streaming) rc = send_stream(cv, 1, cv->target_fps);
    if (rc) { /* not half a canvas: close what was recreated */
        const int failed = rc;
        Envelope e = SEMDRAW__V1__ENVELOPE__INIT;
        Semdraw__V1__CloseCanvas m = SEMDRAW__V1__CLOSE_CANVAS__INIT;
        m.has_canvas_id = 1, m.canvas_id = cv->id;
        BODY(e, close_canvas, CLOSE_CANVAS, &m);
        call_done(cv, &e);
        return sdk_fail(failed, "restoring canvas %llu: %s", (unsigned long long)old_id, semdraw_last_error());
    }
    cv->dead = 0;
    return SEMDRAW_OK;
}
