/*
 * proto_budget.h - a protobuf-c allocator with a byte budget. Decoding an
 * untrusted message through it fails cleanly (protobuf_c_message_unpack
 * returns NULL) once the message's objects would exceed the budget, so one
 * hostile message cannot make the daemon allocate without bound.
 */
#ifndef SEMDRAWD_PROTO_BUDGET_H
#define SEMDRAWD_PROTO_BUDGET_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>

typedef struct semd_proto_budget {
    ProtobufCAllocator allocator; /* pass &budget.allocator to unpack and free_unpacked */
    size_t used, limit, peak;
    int out_of_memory; /* an allocation failed for want of memory, not of budget */
} semd_proto_budget;

void semd_proto_budget_init(semd_proto_budget *b, size_t limit);

/*
 * The top-level varint field `field` of a serialized message, found without
 * decoding it (nor allocating): lets a request that could not be decoded for
 * want of memory still be answered under its request id. 1 if found.
 */
int semd_proto_peek_varint(const uint8_t *buf, size_t len, uint32_t field, uint64_t *out);

#endif
