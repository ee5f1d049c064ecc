/*
 * validate.h - checks on decoded control messages before anything acts on
 * them (service.md section 3.5). Every failure is SEMD_EINVAL (or
 * SEMD_ESHAPE for geometry) with a message naming the field and the
 * problem, which the daemon returns in an Error reply while it keeps
 * serving everyone else.
 */
#ifndef SEMDRAWD_VALIDATE_H
#define SEMDRAWD_VALIDATE_H

#include <stddef.h>
#include <stdint.h>

#include "semdraw/v1/control.pb-c.h"

typedef struct semd_limits {
    int max_side;          /* canvas width/height, pixels */
    size_t max_text;       /* bytes in a prompt or negative prompt */
    int max_ring_slots;
    float max_fps;
} semd_limits;

/* The daemon's defaults: 2048 px, 4096-byte prompts, 16 ring slots, 240 fps. */
void semd_limits_default(semd_limits *l);

/* NULL is valid (absent); otherwise valid UTF-8 of at most max_text bytes. */
int semd_validate_text(const char *field, const char *s, const semd_limits *l);

int semd_validate_create(const Semdraw__V1__CreateCanvas *m, const semd_limits *l);
/* width, height: the canvas's size; masks must match it. */
int semd_validate_set_layer(const Semdraw__V1__SetLayer *m, int width, int height, const semd_limits *l);
int semd_validate_background(const Semdraw__V1__SetBackground *m, int width, int height,
                             const semd_limits *l);
/* n_slots: the canvas's T (bootstrap_steps may not exceed it). */
int semd_validate_params(const Semdraw__V1__SetCanvasParams *m, int n_slots);
int semd_validate_start(const Semdraw__V1__StartStream *m, const semd_limits *l);

/*
 * A mask as 8-bit alpha [height][width] in `out`: raw `alpha` bytes, or `rle`
 * (count, value) pairs with counts 1..255 expanding to exactly width x height
 * bytes. Exactly one of the two must be present.
 */
int semd_mask_decode(const Semdraw__V1__Mask *m, int width, int height, uint8_t *out);

#endif
