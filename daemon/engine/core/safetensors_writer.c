/*
 * safetensors writer. The header lists tensors in insertion order; the data
 * area holds them by element size, largest first (insertion order within a
 * size). Every size is a power of two and every tensor a whole number of
 * elements, so each start is aligned to its element size with no gaps: the
 * reference reader rejects gaps between tensors, so padding is not an option.
 */
#define _GNU_SOURCE
#include "semd/safetensors.h"
#include "semd/status.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct entry {
    char *name;
    semd_st_dtype dtype;
    int ndim;
    int64_t shape[SEMD_ST_MAX_DIMS];
    uint8_t *data;
    size_t nbytes;
};

struct semd_st_writer {
    struct entry *e;
    size_t n, cap;
    char **meta; /* key, value, ... */
    size_t meta_n, meta_cap;
};

semd_st_writer *semd_st_writer_new(void) { return calloc(1, sizeof(semd_st_writer)); }

void semd_st_writer_free(semd_st_writer *w)
{
    if (!w) return;
    for (size_t i = 0; i < w->n; i++) {
        free(w->e[i].name);
        free(w->e[i].data);
    }
    for (size_t i = 0; i < 2 * w->meta_n; i++) free(w->meta[i]);
    free(w->e);
    free(w->meta);
    free(w);
}

/* The reference reader insists on UTF-8 headers. */
static bool valid_utf8(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        int len = *p < 0x80 ? 1 : (*p & 0xe0) == 0xc0 ? 2 : (*p & 0xf0) == 0xe0 ? 3 : (*p & 0xf8) == 0xf0 ? 4 : 0;
        if (len == 0 || (len == 2 && *p < 0xc2) || (len == 4 && *p > 0xf4)) return false;
        for (int i = 1; i < len; i++)
            if ((p[i] & 0xc0) != 0x80) return false;
        p += len;
    }
    return true;
}

static int check_entry(const semd_st_writer *w, const char *name, semd_st_dtype dtype, int ndim,
                       const int64_t *shape)
{
    if (!name || !*name) return semd_error(SEMD_EINVAL, "safetensors writer: tensor name is empty");
    if (strcmp(name, "__metadata__") == 0)
        return semd_error(SEMD_EINVAL, "safetensors writer: '__metadata__' is reserved, not a tensor name");
    if (!valid_utf8(name)) return semd_error(SEMD_EINVAL, "safetensors writer: tensor name '%s' is not UTF-8", name);
    if (semd_st_dtype_size(dtype) == 0)
        return semd_error(SEMD_EINVAL, "safetensors writer: tensor '%s' has invalid dtype %d", name, (int)dtype);
    if (ndim < 0 || ndim > SEMD_ST_MAX_DIMS)
        return semd_error(SEMD_EINVAL, "safetensors writer: tensor '%s' has %d dims (0..%d allowed)", name, ndim,
                          SEMD_ST_MAX_DIMS);
    if (ndim > 0 && !shape) return semd_error(SEMD_EINVAL, "safetensors writer: tensor '%s' shape is NULL", name);
    for (int i = 0; i < ndim; i++)
        if (shape[i] < 0)
            return semd_error(SEMD_EINVAL, "safetensors writer: tensor '%s' shape dim %d is negative (%lld)", name,
                              i, (long long)shape[i]);
    for (size_t i = 0; i < w->n; i++)
        if (strcmp(w->e[i].name, name) == 0)
            return semd_error(SEMD_EINVAL, "safetensors writer: duplicate tensor name '%s'", name);
    return SEMD_OK;
}

/* Byte size of a tensor, or an error when it cannot exist in memory. */
static int entry_bytes(const char *name, semd_st_dtype dtype, int ndim, const int64_t *shape, size_t *out)
{
    size_t n = semd_st_dtype_size(dtype);
    for (int i = 0; i < ndim; i++) {
        if (shape[i] == 0) n = 0;
        else if ((uint64_t)shape[i] > SIZE_MAX / (n ? n : 1))
            return semd_error(SEMD_EINVAL, "safetensors writer: tensor '%s' is too large", name);
        else n *= (size_t)shape[i];
    }
    *out = n;
    return SEMD_OK;
}

static bool grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap) return true;
    size_t c = *cap ? *cap * 2 : 16;
    while (c < need) c *= 2;
    void *q = realloc(*p, c * elem);
    if (!q) return false;
    *p = q;
    *cap = c;
    return true;
}

int semd_st_writer_add(semd_st_writer *w, const char *name, semd_st_dtype dtype, int ndim, const int64_t *shape,
                       const void *data)
{
    if (!w) return semd_error(SEMD_EINVAL, "safetensors writer: writer is NULL");
    size_t nbytes = 0;
    int rc = check_entry(w, name, dtype, ndim, shape);
    if (rc == SEMD_OK) rc = entry_bytes(name, dtype, ndim, shape, &nbytes);
    if (rc != SEMD_OK) return rc;
    if (nbytes && !data) return semd_error(SEMD_EINVAL, "safetensors writer: tensor '%s' data is NULL", name);
    if (!grow((void **)&w->e, &w->cap, w->n + 1, sizeof *w->e))
        return semd_error(SEMD_ENOMEM, "safetensors writer: out of memory adding '%s'", name);
    struct entry *e = &w->e[w->n];
    memset(e, 0, sizeof *e);
    e->name = strdup(name);
    e->data = malloc(nbytes ? nbytes : 1);
    if (!e->name || !e->data) {
        free(e->name);
        free(e->data);
        return semd_error(SEMD_ENOMEM, "safetensors writer: out of memory copying '%s' (%zu bytes)", name, nbytes);
    }
    if (nbytes) memcpy(e->data, data, nbytes);
    e->dtype = dtype;
    e->ndim = ndim;
    for (int i = 0; i < ndim; i++) e->shape[i] = shape[i];
    e->nbytes = nbytes;
    w->n++;
    return SEMD_OK;
}

/* A later value for the same key replaces the earlier one. */
int semd_st_writer_metadata(semd_st_writer *w, const char *key, const char *value)
{
    if (!w || !key || !value) return semd_error(SEMD_EINVAL, "safetensors writer: NULL metadata argument");
    if (!valid_utf8(key) || !valid_utf8(value))
        return semd_error(SEMD_EINVAL, "safetensors writer: metadata '%s' is not UTF-8", key);
    char *v = strdup(value);
    if (!v) return semd_error(SEMD_ENOMEM, "safetensors writer: out of memory for metadata '%s'", key);
    for (size_t i = 0; i < w->meta_n; i++) {
        if (strcmp(w->meta[2 * i], key) == 0) {
            free(w->meta[2 * i + 1]);
            w->meta[2 * i + 1] = v;
            return SEMD_OK;
        }
    }
    char *k = strdup(key);
    if (!k || !grow((void **)&w->meta, &w->meta_cap, 2 * (w->meta_n + 1), sizeof *w->meta)) {
        free(k);
        free(v);
        return semd_error(SEMD_ENOMEM, "safetensors writer: out of memory for metadata '%s'", key);
    }
    w->meta[2 * w->meta_n] = k;
    w->meta[2 * w->meta_n + 1] = v;
    w->meta_n++;
    return SEMD_OK;
}

/* ---- header text ---- */

struct buf {
    char *p;
    size_t len, cap;
    bool oom;
};

static void put(struct buf *b, const char *s, size_t n)
{
    if (b->oom) return;
    if (!grow((void **)&b->p, &b->cap, b->len + n + 1, 1)) {
        b->oom = true;
        return;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void puts_(struct buf *b, const char *s) { put(b, s, strlen(s)); }

static void put_u64(struct buf *b, uint64_t v)
{
    char tmp[24];
    put(b, tmp, (size_t)snprintf(tmp, sizeof tmp, "%llu", (unsigned long long)v));
}

/* A JSON string literal; bytes >= 0x80 pass through as UTF-8. */
static void put_json_string(struct buf *b, const char *s)
{
    put(b, "\"", 1);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            char esc[2] = {'\\', (char)c};
            put(b, esc, 2);
        } else if (c < 0x20) {
            char esc[8];
            put(b, esc, (size_t)snprintf(esc, sizeof esc, "\\u%04x", c));
        } else {
            put(b, (const char *)&c, 1);
        }
    }
    put(b, "\"", 1);
}

static void put_entry(struct buf *b, const struct entry *e, uint64_t offset)
{
    put_json_string(b, e->name);
    puts_(b, ":{\"dtype\":\"");
    puts_(b, semd_st_dtype_name(e->dtype));
    puts_(b, "\",\"shape\":[");
    for (int i = 0; i < e->ndim; i++) {
        if (i) puts_(b, ",");
        put_u64(b, (uint64_t)e->shape[i]);
    }
    puts_(b, "],\"data_offsets\":[");
    put_u64(b, offset);
    puts_(b, ",");
    put_u64(b, offset + e->nbytes);
    puts_(b, "]}");
}

static void build_header(const semd_st_writer *w, const uint64_t *offsets, struct buf *b)
{
    puts_(b, "{");
    if (w->meta_n) {
        puts_(b, "\"__metadata__\":{");
        for (size_t i = 0; i < w->meta_n; i++) {
            if (i) puts_(b, ",");
            put_json_string(b, w->meta[2 * i]);
            puts_(b, ":");
            put_json_string(b, w->meta[2 * i + 1]);
        }
        puts_(b, w->n ? "}," : "}");
    }
    for (size_t i = 0; i < w->n; i++) {
        if (i) puts_(b, ",");
        put_entry(b, &w->e[i], offsets[i]);
    }
    puts_(b, "}");
    while (!b->oom && (8 + b->len) % 8) puts_(b, " "); /* data area starts 8-aligned */
}

/* Data order: element size descending, stable; order[] lists entries as written. */
static void assign_offsets(const semd_st_writer *w, uint64_t *offsets, size_t *order)
{
    size_t k = 0;
    uint64_t off = 0;
    for (size_t size = 8; size >= 1; size /= 2) {
        for (size_t i = 0; i < w->n; i++) {
            if (semd_st_dtype_size(w->e[i].dtype) != size) continue;
            offsets[i] = off;
            off += w->e[i].nbytes;
            order[k++] = i;
        }
    }
}

/* ---- file output ---- */

static bool write_all(FILE *fp, const void *p, size_t n) { return n == 0 || fwrite(p, 1, n, fp) == n; }

static bool write_file(FILE *fp, const semd_st_writer *w, const struct buf *hdr, const size_t *order)
{
    uint8_t len[8];
    for (int i = 0; i < 8; i++) len[i] = (uint8_t)((uint64_t)hdr->len >> (8 * i));
    if (!write_all(fp, len, 8) || !write_all(fp, hdr->p, hdr->len)) return false;
    for (size_t i = 0; i < w->n; i++)
        if (!write_all(fp, w->e[order[i]].data, w->e[order[i]].nbytes)) return false;
    return fflush(fp) == 0 && fsync(fileno(fp)) == 0;
}

/* Write to a temporary file beside `path`, then rename it into place. */
static int save_to(const semd_st_writer *w, const char *path, const struct buf *hdr, const size_t *order)
{
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 16);
    if (!tmp) return semd_error(SEMD_ENOMEM, "%s: out of memory", path);
    snprintf(tmp, plen + 16, "%s.tmp.XXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        int e = errno;
        free(tmp);
        return semd_error(SEMD_EIO, "%s: cannot create a temporary file: %s", path, strerror(e));
    }
    (void)fchmod(fd, 0644); /* mkstemp makes 0600; a model file is meant to be shared */
    FILE *fp = fdopen(fd, "wb");
    int e = errno;
    bool ok = false;
    if (!fp) {
        close(fd);
    } else {
        ok = write_file(fp, w, hdr, order);
        e = errno;
        if (fclose(fp) != 0 && ok) {
            ok = false;
            e = errno;
        }
    }
    if (ok && rename(tmp, path) != 0) {
        ok = false;
        e = errno;
    }
    if (!ok) unlink(tmp);
    free(tmp);
    return ok ? SEMD_OK : semd_error(SEMD_EIO, "%s: cannot write: %s", path, strerror(e));
}

int semd_st_writer_save(const semd_st_writer *w, const char *path)
{
    if (!w || !path) return semd_error(SEMD_EINVAL, "safetensors writer: NULL writer or path");
    size_t *order = malloc((w->n + 1) * sizeof *order);
    uint64_t *offsets = malloc((w->n + 1) * sizeof *offsets);
    struct buf hdr = {0};
    int rc;
    if (order && offsets) {
        assign_offsets(w, offsets, order);
        build_header(w, offsets, &hdr);
    }
    if (!order || !offsets || hdr.oom)
        rc = semd_error(SEMD_ENOMEM, "%s: out of memory building the header", path);
    else if (hdr.len > SEMD_ST_MAX_HEADER)
        rc = semd_error(SEMD_EINVAL, "%s: header of %zu bytes exceeds the %u-byte limit", path, hdr.len,
                        SEMD_ST_MAX_HEADER);
    else
        rc = save_to(w, path, &hdr, order);
    free(hdr.p);
    free(offsets);
    free(order);
    return rc;
}
