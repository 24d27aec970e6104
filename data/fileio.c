#include "data/fileio.h"
#include "tensor/error.h"
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void mvd_file_sync_dir(const char *path) {
    char d[4096];
    snprintf(d, sizeof d, "%s", path);
    int dfd = open(dirname(d), O_RDONLY | O_DIRECTORY);
    if (dfd >= 0) { fsync(dfd); close(dfd); }
}

int mvd_file_commit(FILE *f, const char *tmp, const char *path) {
    /* the first failure's errno is the one worth reporting: later calls on a
     * stream in error may overwrite it with something unrelated */
    int e = 0, before = errno;
    bool write_errno = before == ENOSPC || before == EIO || before == EDQUOT || before == EFBIG || before == EROFS;
    errno = 0;
    bool failed = fflush(f) != 0;
    if (failed) e = errno;
    if (!e && (failed || ferror(f))) {
        /* stdio keeps only an error flag, and errno has moved on since: ask
         * the file system again with one byte past the end (the file is
         * removed below anyway) */
        char z = 0;
        off_t end = lseek(fileno(f), 0, SEEK_END);
        if (end >= 0 && pwrite(fileno(f), &z, 1, end) < 0) e = errno;
        else e = write_errno ? before : EIO;
    }
    if (!e && fsync(fileno(f)) != 0) e = errno;
    if (fclose(f) != 0 && !e) e = errno ? errno : EIO;
    if (e) {
        unlink(tmp);
        return mv_error("%s: write failed: %s", path, strerror(e));
    }
    if (rename(tmp, path) != 0) {
        e = errno;
        unlink(tmp);
        return mv_error("%s: cannot rename into place: %s", path, strerror(e));
    }
    mvd_file_sync_dir(path);
    return 0;
}

int mvd_file_write_atomic(const char *path, const void *data, size_t n) {
    char tmp[4200];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp) return mv_error("%s: path too long", path);
    FILE *f = fopen(tmp, "wb");
    if (!f) return mv_error("%s: cannot create: %s", tmp, strerror(errno));
    if (n && fwrite(data, 1, n, f) != n) {
        int e = errno ? errno : EIO;
        fclose(f);
        unlink(tmp);
        return mv_error("%s: write failed: %s", path, strerror(e));
    }
    return mvd_file_commit(f, tmp, path);
}

int mvd_file_append_line(const char *path, const char *line) {
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return mv_error("%s: cannot open for appending: %s", path, strerror(errno));
    struct stat st;
    off_t start = fstat(fd, &st) == 0 ? st.st_size : -1;
    size_t n = strlen(line);
    char *buf = malloc(n + 1);
    memcpy(buf, line, n);
    buf[n] = '\n';
    size_t off = 0;
    int e = 0;
    while (off < n + 1) {
        ssize_t w = write(fd, buf + off, n + 1 - off);
        if (w < 0) { if (errno == EINTR) continue; e = errno; break; }
        off += (size_t)w;
    }
    free(buf);
    if (!e && fsync(fd) != 0) e = errno;
    if (e && start >= 0 && ftruncate(fd, start) != 0) { /* the line stays partial; readers skip it */ }
    close(fd);
    if (e) return mv_error("%s: write failed: %s", path, strerror(e));
    return 0;
}

/* ---- SHA-256 (FIPS 180-4), for provenance: weights and calibration files ---- */

static const uint32_t K256[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

typedef struct { uint32_t h[8]; uint64_t len; unsigned char buf[64]; size_t nbuf; } sha256_ctx;

#define ROR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))
static void sha256_block(sha256_ctx *c, const unsigned char *p) {
    uint32_t w[64], a[8];
    for (int i = 0; i < 16; i++) w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = ROR(w[i - 15], 7) ^ ROR(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = ROR(w[i - 2], 17) ^ ROR(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    memcpy(a, c->h, sizeof a);
    for (int i = 0; i < 64; i++) {
        uint32_t S1 = ROR(a[4], 6) ^ ROR(a[4], 11) ^ ROR(a[4], 25), ch = (a[4] & a[5]) ^ (~a[4] & a[6]);
        uint32_t t1 = a[7] + S1 + ch + K256[i] + w[i];
        uint32_t S0 = ROR(a[0], 2) ^ ROR(a[0], 13) ^ ROR(a[0], 22), mj = (a[0] & a[1]) ^ (a[0] & a[2]) ^ (a[1] & a[2]);
        memmove(a + 1, a, 7 * sizeof *a);
        a[4] += t1;
        a[0] = t1 + S0 + mj;
    }
    for (int i = 0; i < 8; i++) c->h[i] += a[i];
}
#undef ROR

static void sha256_init(sha256_ctx *c) {
    static const uint32_t h0[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    memcpy(c->h, h0, sizeof h0);
    c->len = 0;
    c->nbuf = 0;
}

static void sha256_update(sha256_ctx *c, const unsigned char *p, size_t n) {
    c->len += n;
    while (n) {
        size_t k = 64 - c->nbuf < n ? 64 - c->nbuf : n;
        memcpy(c->buf + c->nbuf, p, k);
        c->nbuf += k; p += k; n -= k;
        if (c->nbuf == 64) { sha256_block(c, c->buf); c->nbuf = 0; }
    }
}

static void sha256_final(sha256_ctx *c, unsigned char out[32]) {
    uint64_t bits = c->len * 8;
    unsigned char pad = 0x80, z = 0;
    sha256_update(c, &pad, 1);
    while (c->nbuf != 56) sha256_update(c, &z, 1);
    unsigned char L[8];
    for (int i = 0; i < 8; i++) L[i] = (unsigned char)(bits >> (56 - 8 * i));
    sha256_update(c, L, 8);
    for (int i = 0; i < 8; i++) for (int j = 0; j < 4; j++) out[4 * i + j] = (unsigned char)(c->h[i] >> (24 - 8 * j));
}

void mvd_sha256(const void *data, size_t n, unsigned char out[32]) {
    sha256_ctx c;
    sha256_init(&c);
    sha256_update(&c, data, n);
    sha256_final(&c, out);
}

int mvd_file_sha256(const char *path, char *hex) {
    FILE *f = fopen(path, "rb");
    if (!f) return mv_error("%s: cannot read: %s", path, strerror(errno));
    sha256_ctx c;
    sha256_init(&c);
    unsigned char buf[1 << 16];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) sha256_update(&c, buf, n);
    int bad = ferror(f);
    fclose(f);
    if (bad) return mv_error("%s: read failed", path);
    unsigned char d[32];
    sha256_final(&c, d);
    for (int i = 0; i < 32; i++) snprintf(hex + 2 * i, 3, "%02x", d[i]);
    return 0;
}
