/*
 * doc.c - the document the user paints: canvas size, seed, background and a
 * stack of layers, each an 8-bit mask at canvas size with its prompts. The
 * document is the source of truth; session.c mirrors it into the daemon.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "paint.h"

/* Overlay colours, one per layer, chosen to stay apart on a white background. */
static const uint8_t palette[][3] = {
    {230, 25, 75},  {60, 180, 75},  {0, 130, 200},  {245, 130, 48}, {145, 30, 180}, {70, 200, 210},
    {240, 50, 230}, {150, 190, 20}, {170, 110, 40}, {0, 128, 128},  {128, 0, 0},    {0, 0, 128},
};
#define N_PALETTE (int)(sizeof palette / sizeof palette[0])

/* How strongly a layer's colour covers the background in the canvas pane. */
#define OVERLAY_ALPHA 0.6f

int doc_init(paint_doc *d, int width, int height, uint64_t seed)
{
    memset(d, 0, sizeof *d);
    d->width = width, d->height = height, d->seed = seed;
    d->bg_color[0] = d->bg_color[1] = d->bg_color[2] = 255;
    snprintf(d->bg_prompt, sizeof d->bg_prompt, "%s", "simple white background");
    d->settings.mask_type = -1;
    d->settings.decoder = -1;
    d->selected = -1;
    return 0;
}

void doc_free(paint_doc *d)
{
    for (int i = 0; i < d->n_layers; i++) {
        free(d->layers[i]->mask);
        free(d->layers[i]);
    }
    free(d->bg_image);
    free(d->settings.suffix);
    memset(d, 0, sizeof *d);
    d->selected = -1;
}

paint_layer *doc_add_layer(paint_doc *d, const char *prompt)
{
    if (d->n_layers == PAINT_MAX_LAYERS) return NULL;
    paint_layer *l = calloc(1, sizeof *l);
    if (!l) return NULL;
    l->mask = calloc((size_t)d->width * d->height, 1);
    if (!l->mask) {
        free(l);
        return NULL;
    }
    snprintf(l->prompt, sizeof l->prompt, "%s", prompt ? prompt : "");
    l->mask_std = 8.0f, l->mask_strength = 1.0f, l->prompt_strength = 0.95f; /* the stream defaults */
    memcpy(l->color, palette[d->next_color++ % N_PALETTE], 3);
    l->uid = ++d->next_uid;
    l->dirty = SEMDRAW_LAYER_PROMPT | SEMDRAW_LAYER_NEGATIVE | SEMDRAW_LAYER_MASK | SEMDRAW_LAYER_MASK_STD |
               SEMDRAW_LAYER_MASK_STRENGTH | SEMDRAW_LAYER_PROMPT_STRENGTH;
    d->layers[d->n_layers++] = l;
    return l;
}

void doc_remove_layer(paint_doc *d, int index)
{
    if (index < 0 || index >= d->n_layers) return;
    free(d->layers[index]->mask);
    free(d->layers[index]);
    memmove(&d->layers[index], &d->layers[index + 1], (size_t)(d->n_layers - index - 1) * sizeof d->layers[0]);
    d->n_layers--;
    if (d->selected >= d->n_layers) d->selected = d->n_layers - 1;
}

static void grow(SDL_Rect *r, int x0, int y0, int x1, int y1) /* x1, y1 exclusive */
{
    if (r->w <= 0 || r->h <= 0) {
        *r = (SDL_Rect){x0, y0, x1 - x0, y1 - y0};
        return;
    }
    int ax = SDL_min(r->x, x0), ay = SDL_min(r->y, y0);
    int bx = SDL_max(r->x + r->w, x1), by = SDL_max(r->y + r->h, y1);
    *r = (SDL_Rect){ax, ay, bx - ax, by - ay};
}

int doc_paint_segment(const paint_doc *d, uint8_t *mask, float x0, float y0, float x1, float y1, float r,
                      uint8_t value, SDL_Rect *dirty)
{
    if (r < 0.5f) r = 0.5f;
    /* Every pixel whose centre lies within r of the segment: a capsule. */
    int bx0 = (int)floorf(fminf(x0, x1) - r), by0 = (int)floorf(fminf(y0, y1) - r);
    int bx1 = (int)ceilf(fmaxf(x0, x1) + r), by1 = (int)ceilf(fmaxf(y0, y1) + r);
    bx0 = SDL_max(bx0, 0), by0 = SDL_max(by0, 0);
    bx1 = SDL_min(bx1, d->width), by1 = SDL_min(by1, d->height);
    if (bx0 >= bx1 || by0 >= by1) return 0;
    float dx = x1 - x0, dy = y1 - y0, len2 = dx * dx + dy * dy, r2 = r * r;
    int changed = 0;
    for (int y = by0; y < by1; y++) {
        uint8_t *row = mask + (size_t)y * d->width;
        for (int x = bx0; x < bx1; x++) {
            float px = x + 0.5f - x0, py = y + 0.5f - y0;
            float t = len2 > 0 ? (px * dx + py * dy) / len2 : 0;
            t = t < 0 ? 0 : t > 1 ? 1 : t;
            float ex = px - t * dx, ey = py - t * dy;
            if (ex * ex + ey * ey <= r2 && row[x] != value) {
                row[x] = value;
                changed = 1;
            }
        }
    }
    if (changed) grow(dirty, bx0, by0, bx1, by1);
    return changed;
}

void doc_composite(const paint_doc *d, uint32_t *argb, SDL_Rect r)
{
    int x0 = SDL_max(r.x, 0), y0 = SDL_max(r.y, 0);
    int x1 = SDL_min(r.x + r.w, d->width), y1 = SDL_min(r.y + r.h, d->height);
    for (int y = y0; y < y1; y++) {
        for (int x = x0; x < x1; x++) {
            size_t i = (size_t)y * d->width + x;
            float c[3];
            for (int k = 0; k < 3; k++) c[k] = d->bg_image ? d->bg_image[i * 3 + k] : d->bg_color[k];
            for (int l = 0; l < d->n_layers; l++) {
                uint8_t m = d->layers[l]->mask[i];
                if (!m) continue;
                float a = OVERLAY_ALPHA * m / 255.0f;
                for (int k = 0; k < 3; k++) c[k] += (d->layers[l]->color[k] - c[k]) * a;
            }
            argb[i] = 0xff000000u | (uint32_t)(c[0] + 0.5f) << 16 | (uint32_t)(c[1] + 0.5f) << 8 |
                      (uint32_t)(c[2] + 0.5f);
        }
    }
}
