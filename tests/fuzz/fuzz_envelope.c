/*
 * fuzz_envelope: a control message as the daemon receives it (daemon/serve.c,
 * handle_message and the on_* handlers): peek at its request id, decode the
 * Envelope through the budgeted allocator, then run each body through the validation its handler
 * runs, and decode a valid SetLayer's mask and copy a valid SetBackground's
 * image as the handlers do. Nothing past validation (the engine) is reached.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "proto_budget.h"
#include "semdraw/v1/control.pb-c.h"
#include "validate.h"

/*
 * The daemon decodes with 96 MiB for messages of up to 64 MiB. The harness's
 * inputs are at most 64 KiB (scripts/fuzz.sh), so its budget is small enough
 * for them to run out of it: a repeated empty submessage costs 2 bytes on the
 * wire and some 150 bytes decoded, so a few KiB of them exceed 1 MiB, and the
 * decoder's unwinding after a refused allocation gets fuzzed too.
 */
#define FUZZ_DECODE_BUDGET (1u << 20)
/* Canvas sides the harness accepts from a message; the validators take any, this keeps runs fast. */
#define MAX_FUZZ_SIDE 256
#define DEFAULT_SIDE 64
#define DEFAULT_SLOTS 5 /* a canvas with the default timesteps [0, 4, 12, 25, 37] */

typedef struct canvas_size {
    int width, height;
} canvas_size;

/*
 * The canvas a SetLayer is checked against: its mask's own size when that is
 * small, so that well-formed masks get decoded rather than all failing the
 * size check; otherwise a fixed canvas, which still exercises the mismatch.
 */
static canvas_size layer_canvas(const Semdraw__V1__SetLayer *m)
{
    const Semdraw__V1__Mask *k = m->mask;
    if (k && k->has_width && k->has_height && k->width >= 1 && k->width <= MAX_FUZZ_SIDE &&
        k->height >= 1 && k->height <= MAX_FUZZ_SIDE)
        return (canvas_size){(int)k->width, (int)k->height};
    return (canvas_size){DEFAULT_SIDE, DEFAULT_SIDE};
}

/* For a SetBackground: 8 pixels wide and as tall as the rgb bytes make it, when that fits. */
static canvas_size background_canvas(const Semdraw__V1__SetBackground *m)
{
    if (m->has_rgb && m->rgb.len && m->rgb.len % 24 == 0 && m->rgb.len / 24 <= MAX_FUZZ_SIDE)
        return (canvas_size){8, (int)(m->rgb.len / 24)};
    return (canvas_size){DEFAULT_SIDE, DEFAULT_SIDE};
}

static void check(const char *what, int rc)
{
    fuzz_check_status(what, rc);
}

/* on_set_layer: validate (the mask without output), then decode the mask into the canvas buffer. */
static void set_layer(const Semdraw__V1__SetLayer *m, const semd_limits *lim)
{
    canvas_size c = layer_canvas(m);
    semd_clear_error();
    int rc = semd_validate_set_layer(m, c.width, c.height, lim);
    check("semd_validate_set_layer", rc);
    if (rc || !m->mask) return;
    uint8_t *mask = malloc((size_t)c.width * (size_t)c.height);
    if (!mask) abort();
    semd_clear_error();
    rc = semd_mask_decode(m->mask, c.width, c.height, mask);
    check("semd_mask_decode", rc);
    /* Validation passed, so the decode must too: the handler ignores its result. */
    if (rc) abort();
    free(mask);
}

/* on_background: validate, then build the RGB image from rgb or color as the handler does. */
static void set_background(const Semdraw__V1__SetBackground *m, const semd_limits *lim)
{
    canvas_size c = background_canvas(m);
    semd_clear_error();
    int rc = semd_validate_background(m, c.width, c.height, lim);
    check("semd_validate_background", rc);
    if (rc || !(m->has_rgb || m->has_color)) return;
    const size_t px = (size_t)c.width * (size_t)c.height;
    uint8_t *rgb = malloc(px * 3);
    if (!rgb) abort();
    if (m->has_rgb) memcpy(rgb, m->rgb.data, px * 3);
    for (size_t i = 0; m->has_color && i < px * 3; i++) rgb[i] = (uint8_t)(m->color >> (16 - 8 * (i % 3)));
    free(rgb);
}

static void dispatch(const Semdraw__V1__Envelope *e, const semd_limits *lim)
{
    semd_clear_error();
    switch (e->body_case) {
    case SEMDRAW__V1__ENVELOPE__BODY_CREATE_CANVAS:
        check("semd_validate_create", semd_validate_create(e->create_canvas, lim));
        break;
    case SEMDRAW__V1__ENVELOPE__BODY_SET_LAYER: set_layer(e->set_layer, lim); break;
    case SEMDRAW__V1__ENVELOPE__BODY_SET_BACKGROUND: set_background(e->set_background, lim); break;
    case SEMDRAW__V1__ENVELOPE__BODY_SET_PARAMS:
        check("semd_validate_params", semd_validate_params(e->set_params, DEFAULT_SLOTS));
        break;
    case SEMDRAW__V1__ENVELOPE__BODY_START_STREAM:
        check("semd_validate_start", semd_validate_start(e->start_stream, lim));
        break;
    case SEMDRAW__V1__ENVELOPE__BODY_ATTACH_CANVAS:
        /* on_attach compares the key only when it has the right length. */
        if (e->attach_canvas->has_key && e->attach_canvas->key.len == 16) {
            volatile uint8_t sum = 0;
            for (size_t i = 0; i < 16; i++) sum ^= e->attach_canvas->key.data[i];
            (void)sum;
        }
        break;
    default: break; /* the others carry ids only (on_hello reads just its version numbers), or are not requests */
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    semd_limits lim;
    semd_limits_default(&lim);
    semd_proto_budget budget;
    semd_proto_budget_init(&budget, FUZZ_DECODE_BUDGET);
    Semdraw__V1__Envelope *e = semdraw__v1__envelope__unpack(&budget.allocator, size, data);
    if (budget.peak > budget.limit) abort(); /* the budget is the daemon's bound on one message */
    uint64_t peeked = 0; /* handle_message's look at a message it could not decode: memory safety is the check */
    (void)semd_proto_peek_varint(data, size, 2, &peeked);
    if (!e) {
        if (budget.used != 0) abort(); /* a failed decode gives back everything it took */
        return 0;
    }
    dispatch(e, &lim);
    semdraw__v1__envelope__free_unpacked(e, &budget.allocator);
    if (budget.used != 0) abort(); /* every block the decode took comes back */
    return 0;
}
