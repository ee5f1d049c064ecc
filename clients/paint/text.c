/*
 * text.c - UTF-8 text through SDL2_ttf. Rendering a string to a texture is
 * the slow part, and the UI draws the same few dozen strings every frame, so
 * textures are cached by (string, colour) and dropped when unused for a few
 * frames.
 */
#include <SDL_ttf.h>
#include <stdlib.h>
#include <string.h>

#include "paint.h"

#define CACHE_SIZE 256
#define KEEP_FRAMES 30

typedef struct entry {
    char *s;
    uint32_t hash, color;
    SDL_Texture *tex;
    int w, h;
    unsigned last_used;
} entry;

struct paint_text {
    SDL_Renderer *ren;
    TTF_Font *font;
    int line_h;
    unsigned frame;
    entry cache[CACHE_SIZE];
};

static uint32_t hash_str(const char *s, uint32_t color)
{
    uint32_t h = 2166136261u ^ color;
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 16777619u;
    return h;
}

int text_open(SDL_Renderer *ren, const char *font_path, int point_size, paint_text **out)
{
    *out = NULL;
    if (!TTF_WasInit() && TTF_Init() != 0) return -1;
    paint_text *t = calloc(1, sizeof *t);
    if (!t) {
        TTF_Quit();
        return -1;
    }
    t->ren = ren;
    t->font = TTF_OpenFont(font_path, point_size);
    if (!t->font) {
        free(t);
        TTF_Quit();
        return -1;
    }
    t->line_h = TTF_FontLineSkip(t->font);
    *out = t;
    return 0;
}

static void drop(entry *e)
{
    if (e->tex) SDL_DestroyTexture(e->tex);
    free(e->s);
    memset(e, 0, sizeof *e);
}

void text_close(paint_text *t)
{
    if (!t) return;
    for (int i = 0; i < CACHE_SIZE; i++) drop(&t->cache[i]);
    TTF_CloseFont(t->font);
    free(t);
    TTF_Quit();
}

static entry *lookup(paint_text *t, const char *s, SDL_Color c)
{
    uint32_t color = (uint32_t)c.r << 24 | (uint32_t)c.g << 16 | (uint32_t)c.b << 8 | c.a;
    uint32_t h = hash_str(s, color);
    entry *slot = NULL;
    for (int i = 0; i < CACHE_SIZE; i++) {
        entry *e = &t->cache[i];
        if (e->s && e->hash == h && e->color == color && strcmp(e->s, s) == 0) {
            e->last_used = t->frame;
            return e;
        }
        if (!e->s && !slot) slot = e;
    }
    if (!slot) { /* full: take the least recently used */
        slot = &t->cache[0];
        for (int i = 1; i < CACHE_SIZE; i++)
            if (t->cache[i].last_used < slot->last_used) slot = &t->cache[i];
        drop(slot);
    }
    SDL_Surface *surf = TTF_RenderUTF8_Blended(t->font, s, c);
    if (!surf) return NULL;
    SDL_Texture *tex = SDL_CreateTextureFromSurface(t->ren, surf);
    int w = surf->w, hgt = surf->h;
    SDL_FreeSurface(surf);
    if (!tex) return NULL;
    slot->s = strdup(s);
    if (!slot->s) {
        SDL_DestroyTexture(tex);
        return NULL;
    }
    slot->hash = h, slot->color = color, slot->tex = tex, slot->w = w, slot->h = hgt;
    slot->last_used = t->frame;
    return slot;
}

int text_draw(paint_text *t, const char *s, int x, int y, SDL_Color color)
{
    if (!s || !*s) return 0;
    entry *e = lookup(t, s, color);
    if (!e) return 0;
    SDL_Rect dst = {x, y, e->w, e->h};
    SDL_RenderCopy(t->ren, e->tex, NULL, &dst);
    return e->w;
}

int text_width(paint_text *t, const char *s)
{
    int w = 0, h = 0;
    if (!s || !*s || TTF_SizeUTF8(t->font, s, &w, &h) != 0) return 0;
    return w;
}

int text_line_height(paint_text *t) { return t->line_h; }

void text_frame_done(paint_text *t)
{
    t->frame++;
    for (int i = 0; i < CACHE_SIZE; i++) {
        entry *e = &t->cache[i];
        if (e->s && t->frame - e->last_used > KEEP_FRAMES) drop(e);
    }
}
