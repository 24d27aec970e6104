/* faultfs: an LD_PRELOAD shim for tests/faultfs_test.sh that makes a disk
 * "fill up" or fail. Once MVEAD_FAULT_BYTES bytes have been written to
 * regular files whose path contains MVEAD_FAULT_PATH (every regular file when
 * unset), every further write, pwrite, writev and fsync to such a file fails
 * with MVEAD_FAULT_ERRNO (ENOSPC, the default, or EIO); the write that crosses
 * the limit is cut short, as on a real full disk. MVEAD_FAULT_FSYNC=1 instead
 * fails every fsync (a disk that loses writes on flush).
 * stdio writes through glibc's internal write, which LD_PRELOAD cannot reach,
 * so fopen of a matching file for writing returns a stream whose writes come
 * here (fopencookie); fileno on it returns the real descriptor. HDF5's sec2
 * driver calls pwrite (and write) directly. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

static long long budget = -2;   /* -2: not read yet; -1: no limit */
static int fail_errno = ENOSPC, fail_fsync;
static const char *filter, *count_path;
static long long counted;   /* bytes written to matching files (MVEAD_FAULT_COUNT) */

static void init(void) {
    if (budget != -2) return;
    const char *b = getenv("MVEAD_FAULT_BYTES");
    budget = b && *b ? atoll(b) : -1;
    const char *e = getenv("MVEAD_FAULT_ERRNO");
    if (e && !strcmp(e, "EIO")) fail_errno = EIO;
    const char *f = getenv("MVEAD_FAULT_FSYNC");
    fail_fsync = f && !strcmp(f, "1");
    filter = getenv("MVEAD_FAULT_PATH");
    if (filter && !*filter) filter = NULL;
    count_path = getenv("MVEAD_FAULT_COUNT");
    if (count_path && !*count_path) count_path = NULL;
}

static int active(void) { return budget >= 0 || fail_fsync || count_path; }

/* MVEAD_FAULT_COUNT=FILE: at exit, how many bytes went to matching files (the
 * test sizes its limits from a clean run's count) */
__attribute__((destructor)) static void report_count(void) {
    if (!count_path) return;
    char line[64];
    int n = snprintf(line, sizeof line, "%lld\n", counted);
    static __typeof__(open) *real_open;
    if (!real_open) real_open = dlsym(RTLD_NEXT, "open");
    int fd = real_open(count_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return;
    static __typeof__(write) *rw;
    if (!rw) rw = dlsym(RTLD_NEXT, "write");
    if (rw(fd, line, (size_t)n) < 0) { /* the test notices a missing count */ }
    close(fd);
}

static int matches_fd(int fd) {
    struct stat st;
    if (fd < 0 || fstat(fd, &st) || !S_ISREG(st.st_mode)) return 0;
    if (!filter) return 1;
    char link[64], path[4096];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof path - 1);
    if (n < 0) return 0;
    path[n] = 0;
    return strstr(path, filter) != NULL;
}

/* How many of n bytes may be written to fd: n, fewer, or -1 (errno set). */
static ssize_t allow(int fd, size_t n) {
    init();
    if (!active() || !matches_fd(fd)) return (ssize_t)n;
    counted += (long long)n;
    if (budget < 0) return (ssize_t)n;
    if (budget == 0) { errno = fail_errno; return -1; }
    size_t k = (unsigned long long)budget < n ? (size_t)budget : n;
    budget -= (long long)k;
    return (ssize_t)k;
}

#define REAL(name) static __typeof__(name) *real_##name; if (!real_##name) real_##name = dlsym(RTLD_NEXT, #name)

ssize_t write(int fd, const void *buf, size_t n) {
    REAL(write);
    ssize_t k = allow(fd, n);
    if (k < 0) return -1;
    return real_write(fd, buf, (size_t)k);
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off) {
    REAL(pwrite);
    ssize_t k = allow(fd, n);
    if (k < 0) return -1;
    return real_pwrite(fd, buf, (size_t)k, off);
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off) {
    REAL(pwrite64);
    ssize_t k = allow(fd, n);
    if (k < 0) return -1;
    return real_pwrite64(fd, buf, (size_t)k, off);
}

ssize_t writev(int fd, const struct iovec *iov, int cnt) {
    REAL(writev);
    size_t n = 0;
    for (int i = 0; i < cnt; i++) n += iov[i].iov_len;
    ssize_t k = allow(fd, n);
    if (k < 0) return -1;
    if ((size_t)k == n) return real_writev(fd, iov, cnt);
    /* cut short: the first k bytes, one buffer at a time */
    ssize_t done = 0;
    for (int i = 0; i < cnt && done < k; i++) {
        size_t m = iov[i].iov_len < (size_t)(k - done) ? iov[i].iov_len : (size_t)(k - done);
        ssize_t w = write(fd, iov[i].iov_base, m);
        if (w < 0) return done ? done : -1;
        done += w;
    }
    return done;
}

static int sync_fails(int fd) {
    init();
    if (!(fail_fsync || budget == 0) || !matches_fd(fd)) return 0;
    return 1;
}

int fsync(int fd) {
    REAL(fsync);
    if (sync_fails(fd)) { errno = fail_fsync ? EIO : fail_errno; return -1; }
    return real_fsync(fd);
}

int fdatasync(int fd) {
    REAL(fdatasync);
    if (sync_fails(fd)) { errno = fail_fsync ? EIO : fail_errno; return -1; }
    return real_fdatasync(fd);
}

/* ---- stdio: streams opened for writing go through write() above ---- */

static ssize_t ck_read(void *c, char *buf, size_t n) { return read((int)(intptr_t)c, buf, n); }
static ssize_t ck_write(void *c, const char *buf, size_t n) {
    /* loop like glibc's own file writes: a short count from a cookie is an
     * error to glibc, without errno; the next write() says why */
    size_t done = 0;
    while (done < n) {
        ssize_t w = write((int)(intptr_t)c, buf + done, n - done);
        if (w < 0) return -1;
        done += (size_t)w;
    }
    return (ssize_t)done;
}
static int ck_seek(void *c, off64_t *pos, int whence) {
    off_t r = lseek((int)(intptr_t)c, (off_t)*pos, whence);
    if (r < 0) return -1;
    *pos = r;
    return 0;
}
static int ck_close(void *c) { return close((int)(intptr_t)c); }

#define MAX_FD 4096
static FILE *cookie_of[MAX_FD];

static FILE *wrap(const char *path, const char *mode, FILE *(*real)(const char *, const char *)) {
    init();
    int writing = strpbrk(mode, "wa+") != NULL;
    if (!writing || !active()) return real(path, mode);
    FILE *f = real(path, mode);
    if (!f) return NULL;
    int fd = dup(fileno(f));
    fclose(f);
    if (fd < 0 || fd >= MAX_FD || !matches_fd(fd)) {
        if (fd >= 0) close(fd);
        return real(path, mode);
    }
    cookie_io_functions_t io = {ck_read, ck_write, ck_seek, ck_close};
    FILE *c = fopencookie((void *)(intptr_t)fd, mode[0] == 'w' ? (strchr(mode, '+') ? "w+" : "w") : mode, io);
    if (c) cookie_of[fd] = c;
    return c;
}

FILE *fopen(const char *path, const char *mode) {
    REAL(fopen);
    return wrap(path, mode, real_fopen);
}

FILE *fopen64(const char *path, const char *mode) {
    REAL(fopen64);
    return wrap(path, mode, real_fopen64);
}

int fileno(FILE *f) {
    REAL(fileno);
    for (int fd = 0; fd < MAX_FD; fd++)
        if (cookie_of[fd] == f) return fd;
    return real_fileno(f);
}

int fclose(FILE *f) {
    REAL(fclose);
    for (int fd = 0; fd < MAX_FD; fd++)
        if (cookie_of[fd] == f) cookie_of[fd] = NULL;
    return real_fclose(f);
}
