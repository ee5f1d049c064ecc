/* Control-message validation: text, ranges, geometry, masks. */
#include "validate.h"

#include <math.h>
#include <string.h>

#include "semd/status.h"

void semd_limits_default(semd_limits *l)
{
    *l = (semd_limits){.max_side = 2048, .max_text = 4096, .max_ring_slots = 16, .max_fps = 240.0f};
}

/* Length of a well-formed UTF-8 sequence at s (no overlongs, surrogates or > U+10FFFF), else 0. */
static size_t utf8_sequence(const unsigned char *s, size_t left)
{
    if (s[0] < 0x80) return 1;
    size_t n = s[0] >= 0xF0 ? 4 : s[0] >= 0xE0 ? 3 : s[0] >= 0xC2 ? 2 : 0;
    if (!n || n > 4 || s[0] > 0xF4 || left < n) return 0;
    for (size_t i = 1; i < n; i++)
        if ((s[i] & 0xC0) != 0x80) return 0;
    if (n == 3 && ((s[0] == 0xE0 && s[1] < 0xA0) || (s[0] == 0xED && s[1] >= 0xA0))) return 0;
    if (n == 4 && ((s[0] == 0xF0 && s[1] < 0x90) || (s[0] == 0xF4 && s[1] >= 0x90))) return 0;
    return n;
}

int semd_validate_text(const char *field, const char *s, const semd_limits *l)
{
    if (!s) return SEMD_OK;
    const size_t len = strlen(s);
    if (len > l->max_text)
        return semd_error(SEMD_EINVAL, "%s: %zu bytes (at most %zu)", field, len, l->max_text);
    for (size_t i = 0; i < len;) {
        size_t n = utf8_sequence((const unsigned char *)s + i, len - i);
        if (!n) return semd_error(SEMD_EINVAL, "%s: invalid UTF-8 at byte %zu", field, i);
        i += n;
    }
    return SEMD_OK;
}

static int in_range(const char *field, int has, float v, float lo, float hi)
{
    if (has && !(isfinite(v) && v >= lo && v <= hi))
        return semd_error(SEMD_EINVAL, "%s: %g outside [%g, %g]", field, v, lo, hi);
    return SEMD_OK;
}

int semd_validate_create(const Semdraw__V1__CreateCanvas *m, const semd_limits *l)
{
    if (!m->has_width || !m->has_height)
        return semd_error(SEMD_EINVAL, "create_canvas: width and height are required");
    if (m->width < 8 || m->height < 8 || m->width % 8 || m->height % 8 ||
        m->width > (uint32_t)l->max_side || m->height > (uint32_t)l->max_side)
        return semd_error(SEMD_ESHAPE, "create_canvas: %ux%u: sides must be multiples of 8 in 8..%d",
                          m->width, m->height, l->max_side);
    if (m->has_ring_slots && (m->ring_slots < 2 || m->ring_slots > (uint32_t)l->max_ring_slots))
        return semd_error(SEMD_EINVAL, "create_canvas.ring_slots: %u outside 2..%d", m->ring_slots,
                          l->max_ring_slots);
    if (m->n_timesteps > 16)
        return semd_error(SEMD_EINVAL, "create_canvas.timesteps: %zu entries (at most 16)", m->n_timesteps);
    for (size_t k = 0; k < m->n_timesteps; k++)
        if (m->timesteps[k] > 49 || (k && m->timesteps[k] <= m->timesteps[k - 1]))
            return semd_error(SEMD_EINVAL, "create_canvas.timesteps[%zu] = %u: entries must increase "
                              "strictly within 0..49", k, m->timesteps[k]);
    if ((m->has_profile && m->profile != SEMDRAW__V1__PROFILE__PROFILE_DEFAULT &&
         m->profile != SEMDRAW__V1__PROFILE__PROFILE_REFERENCE) ||
        (m->has_decoder && m->decoder != SEMDRAW__V1__DECODER__DECODER_TAESD &&
         m->decoder != SEMDRAW__V1__DECODER__DECODER_VAE))
        return semd_error(SEMD_EINVAL, "create_canvas: unknown profile or decoder");
    return semd_validate_text("create_canvas.model", m->model, l);
}

int semd_mask_decode(const Semdraw__V1__Mask *m, int width, int height, uint8_t *out)
{
    if (!m->has_width || !m->has_height || m->width != (uint32_t)width || m->height != (uint32_t)height)
        return semd_error(SEMD_ESHAPE, "mask: %ux%u, the canvas is %dx%d", m->has_width ? m->width : 0,
                          m->has_height ? m->height : 0, width, height);
    if (m->has_alpha == m->has_rle)
        return semd_error(SEMD_EINVAL, "mask: give exactly one of alpha and rle");
    const size_t want = (size_t)width * height;
    if (m->has_alpha) {
        if (m->alpha.len != want)
            return semd_error(SEMD_ESHAPE, "mask.alpha: %zu bytes, %dx%d needs %zu", m->alpha.len, width,
                              height, want);
        if (out) memcpy(out, m->alpha.data, want);
        return SEMD_OK;
    }
    if (m->rle.len % 2) return semd_error(SEMD_EINVAL, "mask.rle: odd length %zu", m->rle.len);
    size_t at = 0;
    for (size_t i = 0; i < m->rle.len; i += 2) {
        const size_t count = m->rle.data[i];
        if (!count) return semd_error(SEMD_EINVAL, "mask.rle: zero count at byte %zu", i);
        if (count > want - at)
            return semd_error(SEMD_ESHAPE, "mask.rle: expands past %zu bytes", want);
        if (out) memset(out + at, m->rle.data[i + 1], count);
        at += count;
    }
    if (at != want) return semd_error(SEMD_ESHAPE, "mask.rle: expands to %zu bytes, needs %zu", at, want);
    return SEMD_OK;
}

int semd_validate_set_layer(const Semdraw__V1__SetLayer *m, int width, int height, const semd_limits *l)
{
    int rc = semd_validate_text("set_layer.prompt", m->prompt, l);
    if (!rc) rc = semd_validate_text("set_layer.negative", m->negative, l);
    if (!rc) rc = in_range("set_layer.mask_std", m->has_mask_std, m->mask_std, 0.0f, 1024.0f);
    if (!rc) rc = in_range("set_layer.mask_strength", m->has_mask_strength, m->mask_strength, 0.0f, 1.0f);
    if (!rc) rc = in_range("set_layer.prompt_strength", m->has_prompt_strength, m->prompt_strength, 0.0f, 1.0f);
    if (!rc && !m->has_layer_id && !m->prompt)
        rc = semd_error(SEMD_EINVAL, "set_layer: a new layer needs a prompt");
    if (!rc && m->mask) rc = semd_mask_decode(m->mask, width, height, NULL);
    return rc;
}

int semd_validate_background(const Semdraw__V1__SetBackground *m, int width, int height,
                             const semd_limits *l)
{
    int rc = semd_validate_text("set_background.prompt", m->prompt, l);
    if (!rc) rc = semd_validate_text("set_background.negative", m->negative, l);
    if (!rc && m->has_rgb && m->has_color)
        rc = semd_error(SEMD_EINVAL, "set_background: give rgb or color, not both");
    if (!rc && m->has_rgb && m->rgb.len != (size_t)width * height * 3)
        rc = semd_error(SEMD_ESHAPE, "set_background.rgb: %zu bytes, %dx%d RGB needs %zu", m->rgb.len,
                        width, height, (size_t)width * height * 3);
    if (!rc && m->has_color && m->color > 0xFFFFFFu)
        rc = semd_error(SEMD_EINVAL, "set_background.color: 0x%x is not 0xRRGGBB", m->color);
    return rc;
}

int semd_validate_params(const Semdraw__V1__SetCanvasParams *m, int n_slots)
{
    int rc = in_range("set_params.guidance_scale", m->has_guidance_scale, m->guidance_scale, 0.0f, 30.0f);
    if (!rc) rc = in_range("set_params.embedded_guidance_scale", m->has_embedded_guidance_scale,
                           m->embedded_guidance_scale, 0.0f, 30.0f);
    if (!rc) rc = in_range("set_params.bootstrap_mix_steps", m->has_bootstrap_mix_steps,
                           m->bootstrap_mix_steps, 0.0f, 16.0f);
    if (!rc) rc = in_range("set_params.cover_alpha", m->has_cover_alpha, m->cover_alpha, 0.0f, 1.0f);
    if (!rc && m->has_bootstrap_steps && m->bootstrap_steps > (uint32_t)n_slots)
        rc = semd_error(SEMD_EINVAL, "set_params.bootstrap_steps: %u exceeds the canvas's %d timesteps",
                        m->bootstrap_steps, n_slots);
    if (!rc && m->has_mask_type && (m->mask_type < SEMDRAW__V1__MASK_TYPE__MASK_CONTINUOUS ||
                                    m->mask_type > SEMDRAW__V1__MASK_TYPE__MASK_DISCRETE))
        rc = semd_error(SEMD_EINVAL, "set_params.mask_type: unknown value %d", (int)m->mask_type);
    return rc;
}

int semd_validate_start(const Semdraw__V1__StartStream *m, const semd_limits *l)
{
    return in_range("start_stream.target_fps", m->has_target_fps, m->target_fps, 0.0f, l->max_fps);
}
