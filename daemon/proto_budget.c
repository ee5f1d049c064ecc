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
    if (!h) return NULL;
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
