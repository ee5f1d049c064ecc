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
} semd_proto_budget;

void semd_proto_budget_init(semd_proto_budget *b, size_t limit);

#endif
