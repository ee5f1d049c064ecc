/* PNG output through libpng; errors come back as engine status codes. */
#include "png_write.h"

#include <errno.h>
#include <math.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "semd/status.h"

static unsigned char to_byte(float v, png_convention conv)
{
    float x = conv == PNG_SIGNED_ROUND ? v * 0.5f + 0.5f : v;
    x = x < 0.0f ? 0.0f : x > 1.0f ? 1.0f : x;
    return conv == PNG_SIGNED_ROUND ? (unsigned char)lrintf(x * 255.0f) : (unsigned char)(x * 255.0f);
}

static int write_rows(FILE *f, const char *path, unsigned char *rgb, int width, int height)
{
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!png || !info) {
        png_destroy_write_struct(&png, &info);
        return semd_error(SEMD_ENOMEM, "%s: cannot start libpng", path);
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        return semd_error(SEMD_EIO, "%s: libpng failed to write the image", path);
    }
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)width, (png_uint_32)height, 8, PNG_COLOR_TYPE_RGB,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (int y = 0; y < height; y++) png_write_row(png, rgb + (size_t)y * width * 3);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    return SEMD_OK;
}

int png_write_rgb(const char *path, const float *chw, int width, int height, png_convention conv)
{
    const size_t plane = (size_t)width * height;
    unsigned char *rgb = malloc(plane * 3);
    if (!rgb) return semd_error(SEMD_ENOMEM, "%s: out of memory", path);
    for (size_t i = 0; i < plane; i++)
        for (int c = 0; c < 3; c++) rgb[i * 3 + c] = to_byte(chw[c * plane + i], conv);
    FILE *f = fopen(path, "wb");
    int rc = f ? write_rows(f, path, rgb, width, height)
               : semd_error(SEMD_EIO, "%s: cannot create: %s", path, strerror(errno));
    if (f && fclose(f) != 0 && !rc) rc = semd_error(SEMD_EIO, "%s: write failed: %s", path, strerror(errno));
    free(rgb);
    return rc;
}
