/* A byte-budgeted protobuf-c allocator: each block carries its size so frees give it back. */
#include "proto_budget.h"

#include <stdlib.h>

typedef union header {
    size_t size;
    max_align_t align; /* keep the user block maximally aligned */
} header;

static void *budget_alloc(void *data, size_t size)
{
    semd_proto_budget *b = data;
    if (size > b->limit || b->used > b->limit - size) return NULL;
    header *h = malloc(sizeof *h + size);
    if (!h) {
        b->out_of_memory = 1;
        return NULL;
    }
    h->size = size;
    b->used += size;
    if (b->used > b->peak) b->peak = b->used;
    return h + 1;
}

static void budget_free(void *data, void *p)
{
    if (!p) return;
    semd_proto_budget *b = data;
    header *h = (header *)p - 1;
    b->used -= h->size;
    free(h);
}

void semd_proto_budget_init(semd_proto_budget *b, size_t limit)
{
    *b = (semd_proto_budget){.allocator = {budget_alloc, budget_free, b}, .limit = limit};
}

/* One base-128 varint at *p (at most 10 bytes); 0 when it runs past end. */
static int read_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    *v = 0;
    for (int shift = 0; *p < end && shift < 70; shift += 7) {
        const uint8_t byte = *(*p)++;
        *v |= (uint64_t)(byte & 0x7f) << shift;
        if (!(byte & 0x80)) return 1;
    }
    return 0;
}

int semd_proto_peek_varint(const uint8_t *buf, size_t len, uint32_t field, uint64_t *out)
{
    const uint8_t *p = buf, *end = buf + len;
    uint64_t key, v;
    while (p < end && read_varint(&p, end, &key)) {
        switch (key & 7) {
        case 0:
            if (!read_varint(&p, end, &v)) return 0;
            if (key >> 3 == field) return *out = v, 1;
            break;
        case 1:
            if (end - p < 8) return 0;
            p += 8;
            break;
        case 2:
            if (!read_varint(&p, end, &v) || v > (uint64_t)(end - p)) return 0;
            p += v;
            break;
        case 5:
            if (end - p < 4) return 0;
            p += 4;
            break;
        default: return 0; /* groups: not in our messages */
        }
    }
    return 0;
}
