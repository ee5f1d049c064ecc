/* png_io.h - writing frames and masks as PNG files (the clients' one image format). */
#ifndef SEMDRAW_CLIENTS_PNG_IO_H
#define SEMDRAW_CLIENTS_PNG_IO_H

#include <stdint.h>

/* channels: 1 (grey), 3 (RGB) or 4 (RGBA); rows of `stride` bytes. 0, or -1 with a message on stderr. */
int png_io_write(const char *path, const uint8_t *px, int width, int height, int channels, int stride);

#endif
