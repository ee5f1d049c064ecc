/*
 * safetensors reader: map the file, validate the whole header, and hand out
 * tensors that point into the mapping. Conversions load through memcpy, since
 * nothing in the format promises alignment.
 */
#define _GNU_SOURCE
#include "semd/safetensors.h"
#include "semd/status.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define META_KEY "__metadata__"
#define MAX_JSON_INT 9007199254740992.0 /* 2^53: beyond it doubles skip integers */

struct semd_st_file {
    char *path;
    uint8_t *map;
    size_t map_size;
    semd_st_tensor *tensors; /* sorted by data offset */
    const semd_st_tensor **by_name;
    size_t count;
    char **meta; /* key, value, key, value, ... */
    size_t meta_count;
};

/* ---- dtypes ---- */

static const struct {
    const char *name;
    size_t size;
} dtypes[] = {
    [SEMD_ST_F64] = {"F64", 8}, [SEMD_ST_F32] = {"F32", 4}, [SEMD_ST_F16] = {"F16", 2},
    [SEMD_ST_BF16] = {"BF16", 2}, [SEMD_ST_I64] = {"I64", 8}, [SEMD_ST_I32] = {"I32", 4},
    [SEMD_ST_I16] = {"I16", 2}, [SEMD_ST_I8] = {"I8", 1}, [SEMD_ST_U8] = {"U8", 1},
    [SEMD_ST_BOOL] = {"BOOL", 1},
};
#define NDTYPES (sizeof dtypes / sizeof dtypes[0])

/* Valid safetensors dtypes the engine does not handle (unsupported, not malformed). */
static const char *const foreign_dtypes[] = {"F8_E4M3", "F8_E5M2", "F8_E8M0", "F6_E2M3", "F6_E3M2",
                                             "F4",      "U16",     "U32",     "U64",     "C64"};

const char *semd_st_dtype_name(semd_st_dtype dt)
{
    return (unsigned)dt < NDTYPES ? dtypes[dt].name : "?";
}

size_t semd_st_dtype_size(semd_st_dtype dt)
{
    return (unsigned)dt < NDTYPES ? dtypes[dt].size : 0;
}

/* ---- accessors ---- */

const char *semd_st_path(const semd_st_file *f) { return f ? f->path : NULL; }
size_t semd_st_count(const semd_st_file *f) { return f ? f->count : 0; }

const semd_st_tensor *semd_st_at(const semd_st_file *f, size_t i)
{
    return f && i < f->count ? &f->tensors[i] : NULL;
}

const semd_st_tensor *semd_st_find(const semd_st_file *f, const char *name)
{
    if (!f || !name) return NULL;
    size_t lo = 0, hi = f->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(name, f->by_name[mid]->name);
        if (c == 0) return f->by_name[mid];
        if (c < 0) hi = mid;
        else lo = mid + 1;
    }
    return NULL;
}

const char *semd_st_metadata(const semd_st_file *f, const char *key)
{
    if (!f || !key) return NULL;
    for (size_t i = 0; i < f->meta_count; i++)
        if (strcmp(f->meta[2 * i], key) == 0) return f->meta[2 * i + 1];
    return NULL;
}

void semd_st_close(semd_st_file *f)
{
    if (!f) return;
    if (f->map) munmap(f->map, f->map_size);
    for (size_t i = 0; i < f->count; i++) free((void *)f->tensors[i].name);
    for (size_t i = 0; i < 2 * f->meta_count; i++) free(f->meta[i]);
    free(f->meta);
    free(f->tensors);
    free(f->by_name);
    free(f->path);
    free(f);
}

/* ---- mapping ---- */

static int map_file(semd_st_file *f)
{
    int fd = open(f->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return semd_error(SEMD_EIO, "%s: cannot open: %s", f->path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return semd_error(SEMD_EIO, "%s: cannot stat: %s", f->path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return semd_error(SEMD_EIO, "%s: not a regular file", f->path);
    }
    if (st.st_size < 8) {
        close(fd);
        if (st.st_size == 0) return semd_error(SEMD_EFORMAT, "%s: file is empty", f->path);
        return semd_error(SEMD_EFORMAT, "%s: file is %lld bytes, too short for the 8-byte header length",
                          f->path, (long long)st.st_size);
    }
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd); /* the mapping keeps the file alive */
    if (p == MAP_FAILED) return semd_error(SEMD_EIO, "%s: cannot mmap: %s", f->path, strerror(e));
    f->map = p;
    f->map_size = (size_t)st.st_size;
    return SEMD_OK;
}

/* ---- header validation ---- */

struct parse {
    semd_st_file *f;
    const char *path;
    uint64_t hdr_len;   /* N */
    uint64_t data_size; /* bytes after the header */
    bool seen_meta;
};

/* A JSON number that is an exact non-negative integer a double can represent. */
static bool json_u64(const cJSON *v, uint64_t *out)
{
    if (!cJSON_IsNumber(v)) return false;
    double d = v->valuedouble;
    if (!isfinite(d) || d < 0 || d > MAX_JSON_INT || floor(d) != d) return false;
    *out = (uint64_t)d;
    return true;
}

static void format_shape(const semd_st_tensor *t, char *buf, size_t cap)
{
    size_t n = (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < t->ndim && n < cap; i++)
        n += (size_t)snprintf(buf + n, cap - n, "%s%lld", i ? "," : "", (long long)t->shape[i]);
    if (n < cap) snprintf(buf + n, cap - n, "]");
}

static int parse_dtype(const struct parse *p, const char *name, const cJSON *obj, semd_st_dtype *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, "dtype");
    if (!v) return semd_error(SEMD_EFORMAT, "%s: tensor '%s' has no dtype", p->path, name);
    if (!cJSON_IsString(v))
        return semd_error(SEMD_EFORMAT, "%s: tensor '%s' dtype is not a string", p->path, name);
    for (size_t i = 0; i < NDTYPES; i++) {
        if (strcmp(v->valuestring, dtypes[i].name) == 0) {
            *out = (semd_st_dtype)i;
            return SEMD_OK;
        }
    }
    for (size_t i = 0; i < sizeof foreign_dtypes / sizeof foreign_dtypes[0]; i++)
        if (strcmp(v->valuestring, foreign_dtypes[i]) == 0)
            return semd_error(SEMD_EUNSUPPORTED, "%s: tensor '%s' has dtype %s, which is not supported",
                              p->path, name, v->valuestring);
    return semd_error(SEMD_EFORMAT, "%s: tensor '%s' has unknown dtype '%s'", p->path, name,
                      v->valuestring);
}

static int parse_shape(const struct parse *p, const char *name, const cJSON *obj, semd_st_tensor *t)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, "shape");
    if (!v) return semd_error(SEMD_EFORMAT, "%s: tensor '%s' has no shape", p->path, name);
    if (!cJSON_IsArray(v))
        return semd_error(SEMD_EFORMAT, "%s: tensor '%s' shape is not an array", p->path, name);
    int n = cJSON_GetArraySize(v);
    if (n > SEMD_ST_MAX_DIMS)
        return semd_error(SEMD_EFORMAT, "%s: tensor '%s' shape has %d dims, more than the %d supported",
                          p->path, name, n, SEMD_ST_MAX_DIMS);
    t->ndim = 0;
    const cJSON *d;
    cJSON_ArrayForEach(d, v)
    {
        uint64_t dim;
        if (!json_u64(d, &dim))
            return semd_error(SEMD_EFORMAT, "%s: tensor '%s' shape entry %d is not a non-negative integer",
                              p->path, name, t->ndim);
        t->shape[t->ndim++] = (int64_t)dim;
    }
    return SEMD_OK;
}

static int parse_offsets(const struct parse *p, const char *name, const cJSON *obj, uint64_t off[2])
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, "data_offsets");
    if (!v) return semd_error(SEMD_EFORMAT, "%s: tensor '%s' has no data_offsets", p->path, name);
    if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) != 2)
        return semd_error(SEMD_EFORMAT, "%s: tensor '%s' data_offsets is not an array of 2 integers",
                          p->path, name);
    for (int i = 0; i < 2; i++)
        if (!json_u64(cJSON_GetArrayItem(v, i), &off[i]))
            return semd_error(SEMD_EFORMAT,
                              "%s: tensor '%s' data_offsets entry %d is not a non-negative integer",
                              p->path, name, i);
    if (off[0] > off[1])
        return semd_error(SEMD_EFORMAT, "%s: tensor '%s' data_offsets [%llu, %llu] begin is past end",
                          p->path, name, (unsigned long long)off[0], (unsigned long long)off[1]);
    if (off[1] > p->data_size)
        return semd_error(SEMD_EFORMAT,
                          "%s: tensor '%s' data_offsets [%llu, %llu] run past the data area of %llu bytes "
                          "(file truncated?)",
                          p->path, name, (unsigned long long)off[0], (unsigned long long)off[1],
                          (unsigned long long)p->data_size);
    return SEMD_OK;
}

/* numel and byte size with overflow checks; they must match the offsets. */
static int check_size(const struct parse *p, semd_st_tensor *t, const uint64_t off[2])
{
    char shape[SEMD_ST_MAX_DIMS * 24];
    uint64_t numel = 1;
    bool zero = false, overflow = false;
    for (int i = 0; i < t->ndim; i++) {
        uint64_t d = (uint64_t)t->shape[i];
        if (d == 0) zero = true;
        else if (numel > UINT64_MAX / d) overflow = true;
        else numel *= d;
    }
    size_t es = semd_st_dtype_size(t->dtype);
    if (zero) numel = 0;
    else if (overflow || numel > SIZE_MAX / es) {
        format_shape(t, shape, sizeof shape);
        return semd_error(SEMD_EFORMAT, "%s: tensor '%s' shape %s overflows the element count",
                          p->path, t->name, shape);
    }
    t->numel = numel;
    t->nbytes = (size_t)numel * es;
    if (off[1] - off[0] != t->nbytes) {
        format_shape(t, shape, sizeof shape);
        return semd_error(SEMD_EFORMAT, "%s: tensor '%s' data_offsets [%llu, %llu] give %llu bytes but %s %s needs %zu",
                          p->path, t->name, (unsigned long long)off[0], (unsigned long long)off[1],
                          (unsigned long long)(off[1] - off[0]), dtypes[t->dtype].name, shape, t->nbytes);
    }
    return SEMD_OK;
}

/* Fill f->tensors[f->count] from one header entry; the name is owned at once. */
static int parse_tensor(struct parse *p, const cJSON *item)
{
    semd_st_file *f = p->f;
    semd_st_tensor *t = &f->tensors[f->count];
    memset(t, 0, sizeof *t);
    char *name = strdup(item->string);
    if (!name) return semd_error(SEMD_ENOMEM, "%s: out of memory for tensor names", p->path);
    t->name = name;
    f->count++;
    if (!cJSON_IsObject(item))
        return semd_error(SEMD_EFORMAT, "%s: tensor '%s' entry is not an object", p->path, name);
    uint64_t off[2];
    int rc = parse_dtype(p, name, item, &t->dtype);
    if (rc == SEMD_OK) rc = parse_shape(p, name, item, t);
    if (rc == SEMD_OK) rc = parse_offsets(p, name, item, off);
    if (rc == SEMD_OK) rc = check_size(p, t, off);
    if (rc != SEMD_OK) return rc;
    t->data = f->map + 8 + p->hdr_len + off[0];
    return SEMD_OK;
}

static int parse_metadata(struct parse *p, const cJSON *item)
{
    semd_st_file *f = p->f;
    if (p->seen_meta) return semd_error(SEMD_EFORMAT, "%s: header has more than one %s", p->path, META_KEY);
    p->seen_meta = true;
    if (cJSON_IsNull(item)) return SEMD_OK; /* the reference parser reads null as "none" */
    if (!cJSON_IsObject(item))
        return semd_error(SEMD_EFORMAT, "%s: %s is not an object", p->path, META_KEY);
    size_t n = (size_t)cJSON_GetArraySize(item);
    f->meta = calloc(2 * n + 1, sizeof *f->meta);
    if (!f->meta) return semd_error(SEMD_ENOMEM, "%s: out of memory for metadata", p->path);
    const cJSON *kv;
    cJSON_ArrayForEach(kv, item)
    {
        if (!cJSON_IsString(kv))
            return semd_error(SEMD_EFORMAT, "%s: %s value for key '%s' is not a string", p->path,
                              META_KEY, kv->string);
        char *k = strdup(kv->string), *v = strdup(kv->valuestring);
        f->meta[2 * f->meta_count] = k;
        f->meta[2 * f->meta_count + 1] = v;
        f->meta_count++;
        if (!k || !v) return semd_error(SEMD_ENOMEM, "%s: out of memory for metadata", p->path);
    }
    return SEMD_OK;
}

static int parse_entries(struct parse *p, const cJSON *root)
{
    size_t n = (size_t)cJSON_GetArraySize(root);
    semd_st_file *f = p->f;
    f->tensors = calloc(n + 1, sizeof *f->tensors);
    if (!f->tensors) return semd_error(SEMD_ENOMEM, "%s: out of memory for %zu tensors", p->path, n);
    const cJSON *item;
    cJSON_ArrayForEach(item, root)
    {
        int rc = strcmp(item->string, META_KEY) == 0 ? parse_metadata(p, item) : parse_tensor(p, item);
        if (rc != SEMD_OK) return rc;
    }
    return SEMD_OK;
}

/* Parse exactly the N header bytes; only JSON whitespace may follow the object. */
static int parse_header(struct parse *p)
{
    const char *src = (const char *)p->f->map + 8;
    size_t n = (size_t)p->hdr_len, i = 0;
    while (i < n && src[i] == ' ') i++;
    if (i == n || src[i] != '{')
        return semd_error(SEMD_EFORMAT, "%s: header is not a JSON object (it must start with '{')", p->path);
    /* A NUL-terminated copy, so cJSON can never read past the header. */
    char *buf = malloc(n + 1);
    if (!buf) return semd_error(SEMD_ENOMEM, "%s: out of memory for a %zu-byte header", p->path, n);
    memcpy(buf, src, n);
    buf[n] = '\0';
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(buf, n, &end, false);
    int rc = SEMD_OK;
    if (!root) {
        size_t at = end && end >= buf && end <= buf + n ? (size_t)(end - buf) : n;
        rc = semd_error(SEMD_EFORMAT, "%s: header is not valid JSON (error near byte %zu of %zu)", p->path, at, n);
    } else {
        size_t at = (size_t)(end - buf);
        while (at < n && (buf[at] == ' ' || buf[at] == '\t' || buf[at] == '\r' || buf[at] == '\n')) at++;
        if (at < n)
            rc = semd_error(SEMD_EFORMAT, "%s: header has trailing garbage after the JSON object at byte %zu of %zu",
                            p->path, at, n);
        else rc = parse_entries(p, root);
    }
    cJSON_Delete(root);
    free(buf);
    return rc;
}

static int read_header_length(struct parse *p)
{
    const uint8_t *b = p->f->map;
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = (n << 8) | b[i];
    uint64_t avail = p->f->map_size - 8;
    if (n == 0) return semd_error(SEMD_EFORMAT, "%s: header length is 0", p->path);
    if (n > SEMD_ST_MAX_HEADER)
        return semd_error(SEMD_EFORMAT, "%s: header length %llu exceeds the %u-byte limit", p->path,
                          (unsigned long long)n, SEMD_ST_MAX_HEADER);
    if (n > avail)
        return semd_error(SEMD_EFORMAT, "%s: header length %llu exceeds the %llu bytes after the length field",
                          p->path, (unsigned long long)n, (unsigned long long)avail);
    p->hdr_len = n;
    p->data_size = avail - n;
    return SEMD_OK;
}

/* ---- whole-file checks after every entry is valid on its own ---- */

static int cmp_by_offset(const void *a, const void *b)
{
    const semd_st_tensor *x = a, *y = b;
    /* data pointers order exactly as offsets do; ties broken by size, then name */
    if (x->data != y->data) return x->data < y->data ? -1 : 1;
    if (x->nbytes != y->nbytes) return x->nbytes < y->nbytes ? -1 : 1;
    return strcmp(x->name, y->name);
}

static int cmp_by_name(const void *a, const void *b)
{
    return strcmp((*(const semd_st_tensor *const *)a)->name, (*(const semd_st_tensor *const *)b)->name);
}

static int index_names(struct parse *p)
{
    semd_st_file *f = p->f;
    f->by_name = malloc((f->count + 1) * sizeof *f->by_name);
    if (!f->by_name) return semd_error(SEMD_ENOMEM, "%s: out of memory for the tensor index", p->path);
    for (size_t i = 0; i < f->count; i++) f->by_name[i] = &f->tensors[i];
    qsort(f->by_name, f->count, sizeof *f->by_name, cmp_by_name);
    for (size_t i = 1; i < f->count; i++)
        if (strcmp(f->by_name[i - 1]->name, f->by_name[i]->name) == 0)
            return semd_error(SEMD_EFORMAT, "%s: duplicate tensor name '%s'", p->path, f->by_name[i]->name);
    return SEMD_OK;
}

/* Holes between tensors are tolerated; shared bytes are not. Empty tensors own no bytes. */
static int check_overlaps(struct parse *p)
{
    semd_st_file *f = p->f;
    const uint8_t *base = f->map + 8 + p->hdr_len;
    const semd_st_tensor *last = NULL;
    for (size_t i = 0; i < f->count; i++) {
        const semd_st_tensor *t = &f->tensors[i];
        if (t->nbytes == 0) continue;
        if (last && last->data + last->nbytes > t->data)
            return semd_error(SEMD_EFORMAT, "%s: tensors '%s' [%zu, %zu] and '%s' [%zu, %zu] overlap", p->path,
                              last->name, (size_t)(last->data - base), (size_t)(last->data - base) + last->nbytes,
                              t->name, (size_t)(t->data - base), (size_t)(t->data - base) + t->nbytes);
        last = t;
    }
    return SEMD_OK;
}

int semd_st_open(const char *path, semd_st_file **out)
{
    if (!out) return semd_error(SEMD_EINVAL, "semd_st_open: out is NULL");
    *out = NULL;
    if (!path) return semd_error(SEMD_EINVAL, "semd_st_open: path is NULL");
    semd_st_file *f = calloc(1, sizeof *f);
    if (f) f->path = strdup(path);
    if (!f || !f->path) {
        semd_st_close(f);
        return semd_error(SEMD_ENOMEM, "%s: out of memory", path);
    }
    struct parse p = {.f = f, .path = f->path};
    int rc = map_file(f);
    if (rc == SEMD_OK) rc = read_header_length(&p);
    if (rc == SEMD_OK) rc = parse_header(&p);
    if (rc == SEMD_OK) {
        qsort(f->tensors, f->count, sizeof *f->tensors, cmp_by_offset);
        rc = index_names(&p);
    }
    if (rc == SEMD_OK) rc = check_overlaps(&p);
    if (rc != SEMD_OK) {
        semd_st_close(f);
        return rc;
    }
    *out = f;
    return SEMD_OK;
}

/* ---- element conversions ---- */

float semd_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f, mant = h & 0x3ff, bits;
    if (exp == 0x1f) {
        bits = sign | 0x7f800000u | (mant << 13); /* inf, or NaN with its payload */
    } else if (exp == 0) {
        if (mant == 0) {
            bits = sign;
        } else { /* subnormal: normalise so the float has an implicit 1 */
            uint32_t e = 113;
            while (!(mant & 0x400)) {
                mant <<= 1;
                e--;
            }
            bits = sign | (e << 23) | ((mant & 0x3ff) << 13);
        }
    } else {
        bits = sign | ((exp + 112) << 23) | (mant << 13);
    }
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

uint16_t semd_f32_to_f16(float f)
{
    uint32_t x;
    memcpy(&x, &f, sizeof x);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
    uint32_t ax = x & 0x7fffffffu;
    if (ax > 0x7f800000u) return (uint16_t)(sign | 0x7e00 | ((ax >> 13) & 0x3ff)); /* quiet NaN */
    if (ax >= 0x477ff000u) return sign | 0x7c00; /* >= 65520 rounds to inf */
    if (ax >= 0x38800000u) {                      /* normal half: rebias, round half to even */
        uint32_t m = ax - 0x38000000u;
        m += 0xfff + ((m >> 13) & 1);
        return (uint16_t)(sign | (m >> 13));
    }
    if (ax < 0x33000000u) return sign; /* at most 2^-25: rounds to zero */
    uint32_t shift = 126 - (ax >> 23), mant = (ax & 0x7fffff) | 0x800000;
    uint32_t r = mant >> shift, rem = mant & ((1u << shift) - 1), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (r & 1))) r++;
    return (uint16_t)(sign | r);
}

float semd_bf16_to_f32(uint16_t h)
{
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

uint16_t semd_f32_to_bf16(float f)
{
    uint32_t x;
    memcpy(&x, &f, sizeof x);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40); /* keep it a NaN */
    return (uint16_t)((x + 0x7fffu + ((x >> 16) & 1)) >> 16);
}

/* Little-endian loads; memcpy because the data may be unaligned (x86 is LE). */
static inline uint16_t ld_u16(const uint8_t *p, size_t i)
{
    uint16_t v;
    memcpy(&v, p + i * 2, 2);
    return v;
}

static inline int16_t ld_i16(const uint8_t *p, size_t i) { return (int16_t)ld_u16(p, i); }

static inline int32_t ld_i32(const uint8_t *p, size_t i)
{
    int32_t v;
    memcpy(&v, p + i * 4, 4);
    return v;
}

static inline int64_t ld_i64(const uint8_t *p, size_t i)
{
    int64_t v;
    memcpy(&v, p + i * 8, 8);
    return v;
}

static inline double ld_f64(const uint8_t *p, size_t i)
{
    double v;
    memcpy(&v, p + i * 8, 8);
    return v;
}

static bool is_integer(semd_st_dtype dt)
{
    return dt == SEMD_ST_I64 || dt == SEMD_ST_I32 || dt == SEMD_ST_I16 || dt == SEMD_ST_I8 ||
           dt == SEMD_ST_U8 || dt == SEMD_ST_BOOL;
}

static int64_t load_int(const semd_st_tensor *t, size_t i)
{
    const uint8_t *p = t->data;
    switch (t->dtype) {
    case SEMD_ST_I64: return ld_i64(p, i);
    case SEMD_ST_I32: return ld_i32(p, i);
    case SEMD_ST_I16: return ld_i16(p, i);
    case SEMD_ST_I8: return (int8_t)p[i];
    case SEMD_ST_U8: return p[i];
    default: return p[i] != 0; /* BOOL */
    }
}

int semd_st_read_f32(const semd_st_tensor *t, float *dst)
{
    if (!t || (!dst && t->numel)) return semd_error(SEMD_EINVAL, "semd_st_read_f32: NULL argument");
    size_t n = (size_t)t->numel;
    const uint8_t *p = t->data;
    switch (t->dtype) {
    case SEMD_ST_F32:
        if (n) memcpy(dst, p, n * sizeof *dst);
        break;
    case SEMD_ST_F16:
        for (size_t i = 0; i < n; i++) dst[i] = semd_f16_to_f32(ld_u16(p, i));
        break;
    case SEMD_ST_BF16:
        for (size_t i = 0; i < n; i++) dst[i] = semd_bf16_to_f32(ld_u16(p, i));
        break;
    case SEMD_ST_F64:
        for (size_t i = 0; i < n; i++) dst[i] = (float)ld_f64(p, i);
        break;
    default:
        if (!is_integer(t->dtype))
            return semd_error(SEMD_EINVAL, "tensor '%s': invalid dtype %d", t->name, (int)t->dtype);
        for (size_t i = 0; i < n; i++) dst[i] = (float)load_int(t, i);
    }
    return SEMD_OK;
}

int semd_st_read_i64(const semd_st_tensor *t, int64_t *dst)
{
    if (!t || (!dst && t->numel)) return semd_error(SEMD_EINVAL, "semd_st_read_i64: NULL argument");
    if (!is_integer(t->dtype))
        return semd_error(SEMD_ESHAPE, "tensor '%s' is %s, not an integer type", t->name,
                          semd_st_dtype_name(t->dtype));
    for (size_t i = 0; i < (size_t)t->numel; i++) dst[i] = load_int(t, i);
    return SEMD_OK;
}
