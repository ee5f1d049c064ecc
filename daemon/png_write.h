/* png_write.h - images out of the engine as 8-bit RGB PNG files. */
#ifndef SEMDRAWD_PNG_WRITE_H
#define SEMDRAWD_PNG_WRITE_H

/*
 * Write planar float RGB [3][h][w] in [-1, 1] (what the decoders return) as an
 * 8-bit PNG: round(clamp(x / 2 + 0.5, 0, 1) * 255), as diffusers' postprocess.
 */
int png_write_rgb(const char *path, const float *chw, int width, int height);

#endif
