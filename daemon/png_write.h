/* png_write.h - images out of the engine as 8-bit RGB PNG files. */
#ifndef SEMDRAWD_PNG_WRITE_H
#define SEMDRAWD_PNG_WRITE_H

/* How floats become 8-bit values. */
typedef enum png_convention {
    PNG_SIGNED_ROUND, /* x in [-1,1]: round(clamp(x/2 + 0.5, 0, 1) 255), diffusers' postprocess */
    PNG_UNIT_TRUNCATE /* x in [0,1]: floor(255 clamp(x, 0, 1)), the stream frames (S9) */
} png_convention;

/* Write planar float RGB [3][h][w] as an 8-bit RGB PNG. */
int png_write_rgb(const char *path, const float *chw, int width, int height, png_convention conv);

#endif
