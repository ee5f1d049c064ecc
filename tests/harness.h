/*
 * tests/harness.h - a small process-isolated test harness (after libuv's).
 *
 * A suite is one executable: it lists its tests in a NULL-terminated
 * semd_test array and ends with SEMD_TEST_MAIN(array). Run with no argument, it
 * forks one child per test, so a crash or a sanitizer abort fails only that
 * test; run with a test name, it runs that test in-process (for a debugger).
 */
#ifndef SEMD_TEST_HARNESS_H
#define SEMD_TEST_HARNESS_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct semd_test {
    const char *name;
    void (*fn)(void);
};

#define TEST(name) static void test_##name(void)
#define TEST_ENTRY(name) { #name, test_##name }

#define FAIL(...)                                                         \
    do {                                                                  \
        fprintf(stderr, "%s:%d: ", __FILE__, __LINE__);                   \
        fprintf(stderr, __VA_ARGS__);                                     \
        fputc('\n', stderr);                                              \
        exit(1);                                                          \
    } while (0)

#define ASSERT(cond)                                                      \
    do {                                                                  \
        if (!(cond)) FAIL("assertion failed: %s", #cond);                 \
    } while (0)

#define ASSERT_EQ(a, b)                                                   \
    do {                                                                  \
        long long a_ = (long long)(a), b_ = (long long)(b);               \
        if (a_ != b_) FAIL("%s == %s failed: %lld != %lld", #a, #b, a_, b_); \
    } while (0)

#define ASSERT_STREQ(a, b)                                                \
    do {                                                                  \
        const char *a_ = (a), *b_ = (b);                                  \
        if (!a_ || !b_ || strcmp(a_, b_) != 0)                            \
            FAIL("%s == %s failed: \"%s\" != \"%s\"", #a, #b, a_ ? a_ : "(null)", \
                 b_ ? b_ : "(null)");                                     \
    } while (0)

/*
 * The test cannot run here (no root, no device): it ends now and is counted
 * as skipped, not passed. The suite still succeeds; its summary says so.
 */
#define SEMD_TEST_SKIPPED 77
#define SKIP(...)                                                         \
    do {                                                                  \
        fprintf(stderr, "skipped: ");                                     \
        fprintf(stderr, __VA_ARGS__);                                     \
        fputc('\n', stderr);                                              \
        exit(SEMD_TEST_SKIPPED);                                          \
    } while (0)

/* Assert that an engine call succeeded, printing its error message if not. */
#define ASSERT_OK(expr)                                                   \
    do {                                                                  \
        int rc_ = (expr);                                                 \
        if (rc_ != 0) FAIL("%s failed: %d: %s", #expr, rc_, semd_last_error()); \
    } while (0)

/* Assert that a message contains a substring (error messages name problems). */
#define ASSERT_CONTAINS(hay, needle)                                      \
    do {                                                                  \
        const char *h_ = (hay), *n_ = (needle);                           \
        if (!h_ || !strstr(h_, n_)) FAIL("\"%s\" does not contain \"%s\"", h_ ? h_ : "(null)", n_); \
    } while (0)

/* Relative L2 error ||a-b|| / ||b||, accumulated in double. */
static inline double semd_rel_l2(const float *a, const float *b, size_t n)
{
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)a[i] - (double)b[i];
        num += d * d;
        den += (double)b[i] * (double)b[i];
    }
    if (den == 0) return sqrt(num);
    return sqrt(num / den);
}

#define ASSERT_REL_L2(a, b, n, tol)                                       \
    do {                                                                  \
        double e_ = semd_rel_l2((a), (b), (n));                           \
        if (!(e_ <= (tol))) FAIL("relative L2 error %.3g > %.3g (%s vs %s)", e_, (double)(tol), #a, #b); \
    } while (0)

/* Where the committed test data lives (tests/data). */
const char *semd_test_data_dir(void);
/* A fresh temporary directory for this test process. */
const char *semd_test_tmpdir(void);
/* Path joined into a static buffer ring (valid for a few calls). */
const char *semd_test_path(const char *dir, const char *name);

int semd_test_main(const struct semd_test *tests, int argc, char **argv);

#define SEMD_TEST_MAIN(list) \
    int main(int argc, char **argv) { return semd_test_main(list, argc, argv); }

#endif
