/*
 * semd/rng.h - counter-based random numbers.
 *
 * Every value is a pure function of (seed, stream, index): no generator state
 * to carry, any slice computable independently and in parallel, identical on
 * every backend and thread count. That is what per-canvas seeds and
 * reproducible random weights need. The sequence is our own (a SplitMix64
 * finaliser over the counter, Box-Muller for normals); it does not reproduce
 * torch's generators, so parity tests inject noise from files instead.
 */
#ifndef SEMD_RNG_H
#define SEMD_RNG_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* out[i] = the standard normal number at index offset + i of (seed, stream). */
void semd_randn(uint64_t seed, uint64_t stream, uint64_t offset, float *out, size_t n);

/* out[i] = a uniform number in [-1, 1) at index offset + i of (seed, stream). */
void semd_randu(uint64_t seed, uint64_t stream, uint64_t offset, float *out, size_t n);

/* A stream id derived from a string (a tensor name, a purpose): FNV-1a 64. */
uint64_t semd_rng_stream(const char *name);

#ifdef __cplusplus
}
#endif
#endif
