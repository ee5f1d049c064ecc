/*
 * tests/unit/failing_alloc.h - allocation failures on purpose (after sqlite's
 * malloc fault tests).
 *
 * A test executable linked with
 *   -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=strdup,--wrap=aligned_alloc
 * sends every such call of the code linked into it (the engine, the engine
 * thread; not shared libraries) through failing_alloc.c. Armed with n, the
 * n-th allocation counted from then on returns NULL, once: a transient out
 * of memory, after which allocations succeed again. The CPU backend's
 * tensors come from aligned_alloc, so device memory fails the same way.
 * Threads that call failing_alloc_exempt(1) are neither counted nor failed
 * (the test's own bookkeeping).
 */
#ifndef SEMD_TEST_FAILING_ALLOC_H
#define SEMD_TEST_FAILING_ALLOC_H

void failing_alloc_arm(long nth);
/* Stop failing; returns how many allocations were counted since arming. */
long failing_alloc_disarm(void);
/* Whether the armed failure happened. */
int failing_alloc_fired(void);
void failing_alloc_exempt(int on);
/* The call stack of the allocation that failed, on stderr. */
void failing_alloc_print_site(void);

#endif
