/*
 * st_compare A.safetensors B.safetensors TOL NAME[=NAME_IN_B]...
 * Exit 0 when every named tensor of A matches B's in shape and within the
 * relative L2 tolerance; prints each error. Used by the command-line tests.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "semd/safetensors.h"
#include "semd/status.h"

static int compare(const semd_st_file *a, const semd_st_file *b, const char *spec, double tol)
{
    char name_a[256];
    snprintf(name_a, sizeof name_a, "%s", spec);
    char *eq = strchr(name_a, '=');
    const char *name_b = eq ? eq + 1 : name_a;
    if (eq) *eq = '\0';
    const semd_st_tensor *ta = semd_st_find(a, name_a), *tb = semd_st_find(b, name_b);
    if (!ta || !tb) {
        printf("%s: missing in %s\n", spec, ta ? "second file" : "first file");
        return 1;
    }
    if (ta->ndim != tb->ndim || memcmp(ta->shape, tb->shape, sizeof(int64_t) * (size_t)ta->ndim)) {
        printf("%s: shapes differ\n", spec);
        return 1;
    }
    float *fa = malloc(ta->numel * sizeof(float) + 4), *fb = malloc(tb->numel * sizeof(float) + 4);
    int bad = semd_st_read_f32(ta, fa) || semd_st_read_f32(tb, fb);
    double e = bad ? 1e30 : semd_rel_l2(fa, fb, ta->numel);
    printf("%s: relative L2 error %.3g (tolerance %g)\n", spec, e, tol);
    free(fa);
    free(fb);
    return !(e <= tol);
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: st_compare A B TOL NAME[=NAME_IN_B]...\n");
        return 2;
    }
    semd_st_file *a, *b;
    if (semd_st_open(argv[1], &a) || semd_st_open(argv[2], &b)) {
        fprintf(stderr, "st_compare: %s\n", semd_last_error());
        return 2;
    }
    int failed = 0;
    for (int i = 4; i < argc; i++) failed |= compare(a, b, argv[i], atof(argv[3]));
    semd_st_close(a);
    semd_st_close(b);
    return failed;
}
