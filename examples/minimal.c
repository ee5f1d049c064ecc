/* minimal.c - connect, paint two regions with two prompts, save 10 frames as PPM. */
#include <semdraw/semdraw.h>
#include <stdio.h>
#include <stdlib.h>

#define SIDE 512

static int check(int rc, const char *what)
{
    if (rc) fprintf(stderr, "%s: %s (%s)\n", what, semdraw_last_error(), semdraw_strerror(rc));
    return rc;
}

int main(int argc, char **argv)
{
    const int side = argc > 1 ? atoi(argv[1]) : SIDE; /* tests pass a small size */
    static uint8_t left[SIDE * SIDE], right[SIDE * SIDE], rgba[SIDE * SIDE * 4];
    if (side < 8 || side > SIDE || side % 8) return 2;
    for (int i = 0; i < side * side; i++) left[i] = (i % side < side / 2) ? 255 : 0, right[i] = 255 - left[i];
    semdraw_client *c;
    semdraw_canvas *cv = NULL;
    if (check(semdraw_connect(NULL, &c), "connect")) return 1;
    semdraw_canvas_desc d = {.struct_size = sizeof d, .width = side, .height = side};
    int rc = check(semdraw_wait_ready(c, 60000), "model") || check(semdraw_canvas_create(c, &d, &cv), "canvas");
    semdraw_layer a = {.struct_size = sizeof a, .fields = SEMDRAW_LAYER_PROMPT | SEMDRAW_LAYER_MASK,
                       .prompt = "a red fox in the snow", .mask = left};
    semdraw_layer b = {.struct_size = sizeof b, .fields = SEMDRAW_LAYER_PROMPT | SEMDRAW_LAYER_MASK,
                       .prompt = "a lighthouse at dusk", .mask = right};
    rc = rc || check(semdraw_layer_add(cv, &a, NULL), "layer") || check(semdraw_layer_add(cv, &b, NULL), "layer") ||
         check(semdraw_canvas_commit(cv, NULL), "commit") || check(semdraw_stream_start(cv, 0), "stream");
    semdraw_frame f = {.struct_size = sizeof f};
    for (int n = 0; !rc && n < 10; n++) {
        rc = check(semdraw_frame_wait(cv, f.seq, 60000), "wait") ||
             check(semdraw_frame_copy(cv, rgba, sizeof rgba, 0, &f), "copy");
        char name[32];
        snprintf(name, sizeof name, "frame_%02d.ppm", n);
        FILE *out = rc ? NULL : fopen(name, "wb");
        if (!out) break;
        fprintf(out, "P6\n%d %d\n255\n", side, side);
        for (int i = 0; i < side * side; i++) fwrite(rgba + 4 * i, 1, 3, out);
        fclose(out);
        printf("%s: frame %llu\n", name, (unsigned long long)f.seq);
    }
    semdraw_canvas_release(cv);
    semdraw_disconnect(c);
    return rc ? 1 : 0;
}
