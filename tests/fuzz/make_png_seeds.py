#!/usr/bin/env python3
"""Write the synthetic PNG seeds of fuzz_png: the PNG layouts the test data lacks.

usage: python3 tests/fuzz/make_png_seeds.py tests/fuzz/corpus/fuzz_png

tests/data holds 8-bit PNGs of each colour type; these add what the reader
also handles or refuses: sub-byte grey and palettes, tRNS on every colour
type, Adam7 interlacing, ancillary chunks, filtered rows, a 1x1 image and
16-bit RGBA. Pure standard library (zlib for the streams and CRCs).
"""
import struct
import sys
import zlib


def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def pack_row(values, depth):
    """Samples of one row at `depth` bits, packed big-endian as PNG does."""
    if depth == 8:
        return bytes(values)
    if depth == 16:
        return b"".join(struct.pack(">H", v) for v in values)
    out, acc, bits = bytearray(), 0, 0
    for v in values:
        acc = acc << depth | v
        bits += depth
        if bits == 8:
            out.append(acc)
            acc, bits = 0, 0
    if bits:
        out.append(acc << (8 - bits))
    return bytes(out)


ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]


def png(width, height, depth, ctype, pixel, extra=(), interlace=0, filt=0):
    """pixel(x, y) -> tuple of samples; filt is the filter byte of every row (0 none, 1 sub)."""
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[ctype]
    bpp = max(1, channels * depth // 8)

    def rows(xs, ys):
        raw = bytearray()
        for y in ys:
            line = pack_row([s for x in xs for s in pixel(x, y)], depth)
            if filt == 1:  # Sub: each byte less the byte bpp to its left
                line = bytes((line[i] - (line[i - bpp] if i >= bpp else 0)) & 255 for i in range(len(line)))
            raw += bytes([filt]) + line
        return raw

    if interlace:
        raw = bytearray()
        for x0, y0, dx, dy in ADAM7:
            xs, ys = list(range(x0, width, dx)), list(range(y0, height, dy))
            if xs and ys:
                raw += rows(xs, ys)
    else:
        raw = rows(range(width), range(height))
    ihdr = struct.pack(">IIBBBBB", width, height, depth, ctype, 0, 0, interlace)
    body = chunk(b"IHDR", ihdr) + b"".join(chunk(k, d) for k, d in extra)
    return b"\x89PNG\r\n\x1a\n" + body + chunk(b"IDAT", zlib.compress(bytes(raw), 9)) + chunk(b"IEND", b"")


def main(out):
    w, h = 16, 8
    grey = lambda x, y: ((x * 16 + y * 8) & 255,)
    seeds = {
        "grey1.png": png(w, h, 1, 0, lambda x, y: ((x + y) & 1,)),
        "grey2_interlaced.png": png(w, h, 2, 0, lambda x, y: ((x + y) & 3,), interlace=1),
        "grey4_trns.png": png(w, h, 4, 0, lambda x, y: (x & 15,), extra=[(b"tRNS", b"\x00\x03")]),
        "grey8_interlaced_sub.png": png(w, h, 8, 0, grey, interlace=1, filt=1),
        "rgb_trns_text.png": png(w, h, 8, 2, lambda x, y: (x * 16, y * 32, 128),
                                 extra=[(b"tRNS", b"\x00\x00\x00\x00\x00\x80"), (b"gAMA", struct.pack(">I", 45455)),
                                        (b"tEXt", b"Comment\x00fuzz seed"),
                                        (b"zTXt", b"Title\x00\x00" + zlib.compress(b"a mask"))]),
        "palette2_trns.png": png(w, h, 2, 3, lambda x, y: ((x // 4) & 3,),
                                 extra=[(b"PLTE", bytes([0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255])),
                                        (b"tRNS", bytes([0, 85, 170]))]),
        "palette8_interlaced.png": png(w, h, 8, 3, lambda x, y: (x & 3,), interlace=1,
                                       extra=[(b"PLTE", bytes(range(12))), (b"bKGD", b"\x01")]),
        "grey_alpha_sub.png": png(w, h, 8, 4, lambda x, y: (x * 8, y * 32), filt=1),
        "rgba16.png": png(w, h, 16, 6, lambda x, y: (x * 4096, y * 8192, 0, 65535)),
        "one_pixel.png": png(1, 1, 8, 0, lambda x, y: (200,)),
    }
    for name, data in seeds.items():
        with open(f"{out}/{name}", "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main(sys.argv[1])
