/* Counter-based normal random numbers (see semd/rng.h). */
#include "semd/rng.h"

#include <math.h>

static uint64_t mix(uint64_t z)
{
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* A uniform double in (0, 1] from 53 bits (never 0, so the log is finite). */
static double uniform(uint64_t bits) { return ((bits >> 11) + 1) * (1.0 / 9007199254740992.0); }

uint64_t semd_rng_stream(const char *name)
{
    uint64_t h = 0xCBF29CE484222325ull;
    for (const unsigned char *p = (const unsigned char *)name; *p; p++) h = (h ^ *p) * 0x100000001B3ull;
    return h;
}

void semd_randn(uint64_t seed, uint64_t stream, uint64_t offset, float *out, size_t n)
{
    const uint64_t key = mix(seed ^ mix(stream));
#pragma omp parallel for if (n > 65536)
    for (size_t i = 0; i < n; i++) {
        /* Index k pairs with k^1 in one Box-Muller draw: cos for even, sin for odd. */
        const uint64_t k = offset + i, pair = k >> 1;
        const double u1 = uniform(mix(key ^ (2 * pair))), u2 = uniform(mix(key ^ (2 * pair + 1)));
        const double r = sqrt(-2.0 * log(u1)), theta = 6.283185307179586 * u2;
        out[i] = (float)(k & 1 ? r * sin(theta) : r * cos(theta));
    }
}

void semd_randu(uint64_t seed, uint64_t stream, uint64_t offset, float *out, size_t n)
{
    const uint64_t key = mix(seed ^ mix(stream));
#pragma omp parallel for if (n > 65536)
    for (size_t i = 0; i < n; i++) out[i] = (float)((mix(key ^ (offset + i)) >> 40) * 0x1p-23 - 1.0);
}
