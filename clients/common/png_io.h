/* png_io.h - writing frames, masks and screenshots as PNG files (the clients' one image format). */
#ifndef SEMDRAW_CLIENTS_PNG_IO_H
#define SEMDRAW_CLIENTS_PNG_IO_H

#include <stddef.h>
#include <stdint.h>

/*
 * channels: 1 (grey), 3 (RGB) or 4 (RGBA); rows of `stride` bytes. 0, or -1
 * with the reason (naming the file) in err.
 */
int png_save(const char *path, const uint8_t *px, int width, int height, int stride, int channels, char *err,
             size_t err_size);

#endif
