/*
 * The control protocol's generated code and the budgeted decoder: partial
 * updates keep their presence flags, and truncated, garbage and oversized
 * messages fail to decode without crashing or leaking.
 */
#include <stdlib.h>

#include "harness.h"
#include "proto_budget.h"
#include "semdraw/v1/control.pb-c.h"

typedef Semdraw__V1__Envelope Envelope;

static uint8_t *encode(const Envelope *e, size_t *n)
{
    *n = semdraw__v1__envelope__get_packed_size(e);
    uint8_t *buf = malloc(*n ? *n : 1);
    ASSERT_EQ(semdraw__v1__envelope__pack(e, buf), *n);
    return buf;
}

/* A SetLayer that changes only the std of layer 3: presence survives the round trip. */
TEST(partial_layer_update_round_trip)
{
    Envelope e = SEMDRAW__V1__ENVELOPE__INIT;
    Semdraw__V1__SetLayer set = SEMDRAW__V1__SET_LAYER__INIT;
    set.has_canvas_id = 1, set.canvas_id = 7;
    set.has_layer_id = 1, set.layer_id = 3;
    set.has_mask_std = 1, set.mask_std = 4.5f;
    e.has_request_id = 1, e.request_id = 99;
    e.body_case = SEMDRAW__V1__ENVELOPE__BODY_SET_LAYER;
    e.set_layer = &set;
    size_t n;
    uint8_t *buf = encode(&e, &n);
    semd_proto_budget b;
    semd_proto_budget_init(&b, 1 << 16);
    Envelope *d = semdraw__v1__envelope__unpack(&b.allocator, n, buf);
    ASSERT(d);
    ASSERT_EQ(d->request_id, 99);
    ASSERT_EQ(d->body_case, SEMDRAW__V1__ENVELOPE__BODY_SET_LAYER);
    ASSERT(d->set_layer->has_mask_std && d->set_layer->mask_std == 4.5f);
    ASSERT(!d->set_layer->has_mask_strength && !d->set_layer->prompt && !d->set_layer->mask);
    semdraw__v1__envelope__free_unpacked(d, &b.allocator);
    ASSERT_EQ(b.used, 0); /* every byte given back */
    free(buf);
}

static uint8_t *mask_message(size_t side, size_t *n)
{
    Envelope e = SEMDRAW__V1__ENVELOPE__INIT;
    Semdraw__V1__SetLayer set = SEMDRAW__V1__SET_LAYER__INIT;
    Semdraw__V1__Mask mask = SEMDRAW__V1__MASK__INIT;
    uint8_t *alpha = calloc(side * side, 1);
    mask.has_width = mask.has_height = 1;
    mask.width = mask.height = (uint32_t)side;
    mask.has_alpha = 1;
    mask.alpha.len = side * side, mask.alpha.data = alpha;
    set.prompt = "a red apple";
    set.mask = &mask;
    e.body_case = SEMDRAW__V1__ENVELOPE__BODY_SET_LAYER;
    e.set_layer = &set;
    uint8_t *buf = encode(&e, n);
    free(alpha);
    return buf;
}

TEST(budget_bounds_what_a_message_may_allocate)
{
    size_t n;
    uint8_t *buf = mask_message(512, &n); /* a 256 KiB mask */
    semd_proto_budget small, large;
    semd_proto_budget_init(&small, 64 << 10);
    semd_proto_budget_init(&large, 1 << 20);
    ASSERT(semdraw__v1__envelope__unpack(&small.allocator, n, buf) == NULL);
    ASSERT_EQ(small.used, 0); /* the failed decode freed what it had taken */
    Envelope *d = semdraw__v1__envelope__unpack(&large.allocator, n, buf);
    ASSERT(d && d->set_layer->mask->alpha.len == 512 * 512);
    ASSERT(large.peak >= 512 * 512);
    semdraw__v1__envelope__free_unpacked(d, &large.allocator);
    ASSERT_EQ(large.used, 0);
    free(buf);
}

TEST(truncated_and_garbage_messages_fail_cleanly)
{
    size_t n;
    uint8_t *buf = mask_message(64, &n);
    semd_proto_budget b;
    semd_proto_budget_init(&b, 1 << 20);
    for (size_t cut = 1; cut < n; cut += (cut < 64 ? 1 : 97))
        ASSERT(semdraw__v1__envelope__unpack(&b.allocator, cut, buf) == NULL);
    uint64_t rng = 0x12345;
    uint8_t junk[256];
    int decoded = 0;
    for (int round = 0; round < 2000; round++) {
        for (size_t i = 0; i < sizeof junk; i++) {
            rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
            junk[i] = (uint8_t)rng;
        }
        Envelope *d = semdraw__v1__envelope__unpack(&b.allocator, (size_t)(rng % sizeof junk), junk);
        if (d) decoded++, semdraw__v1__envelope__free_unpacked(d, &b.allocator);
    }
    ASSERT_EQ(b.used, 0);
    printf("%d of 2000 random buffers happened to decode; none leaked\n", decoded);
    free(buf);
}

static const struct semd_test tests[] = {
    TEST_ENTRY(partial_layer_update_round_trip),
    TEST_ENTRY(budget_bounds_what_a_message_may_allocate),
    TEST_ENTRY(truncated_and_garbage_messages_fail_cleanly),
    {0},
};

SEMD_TEST_MAIN(tests)
