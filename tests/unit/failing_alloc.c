/* The --wrap'd allocators of failing_alloc.h. */
#include "failing_alloc.h"

#include <execinfo.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
void *__real_aligned_alloc(size_t align, size_t n);

static atomic_long countdown; /* > 0: armed; the allocation that takes it to 0 fails */
static atomic_long counted;
static atomic_int fired;
static _Thread_local int exempt;
static void *site[32]; /* the call stack of the failure, for failing_alloc_print_site */
static int site_depth;

void failing_alloc_arm(long nth)
{
    static int warm;
    if (!warm) { /* backtrace() loads libgcc (and allocates) the first time: not in a failing thread */
        void *frames[2];
        backtrace(frames, 2);
        warm = 1;
    }
    site_depth = 0;
    atomic_store(&fired, 0);
    atomic_store(&counted, 0);
    atomic_store(&countdown, nth);
}

long failing_alloc_disarm(void)
{
    atomic_store(&countdown, 0);
    return atomic_load(&counted);
}

int failing_alloc_fired(void) { return atomic_load(&fired); }

void failing_alloc_exempt(int on) { exempt = on; }

void failing_alloc_print_site(void)
{
    fprintf(stderr, "the failed allocation was made from (addr2line -f -e <test> ADDRESS):\n");
    backtrace_symbols_fd(site, site_depth, STDERR_FILENO);
}

static int fail_now(void)
{
    if (exempt || atomic_load(&countdown) <= 0) return 0;
    atomic_fetch_add(&counted, 1);
    if (atomic_fetch_sub(&countdown, 1) != 1) return 0;
    site_depth = backtrace(site, 32);
    atomic_store(&fired, 1);
    return 1;
}

void *__wrap_malloc(size_t n) { return fail_now() ? NULL : __real_malloc(n); }
void *__wrap_calloc(size_t n, size_t size) { return fail_now() ? NULL : __real_calloc(n, size); }
void *__wrap_realloc(void *p, size_t n) { return fail_now() ? NULL : __real_realloc(p, n); }
void *__wrap_aligned_alloc(size_t align, size_t n) { return fail_now() ? NULL : __real_aligned_alloc(align, n); }

char *__wrap_strdup(const char *s)
{
    const size_t n = strlen(s) + 1;
    char *d = fail_now() ? NULL : __real_malloc(n);
    return d ? memcpy(d, s, n) : NULL;
}
