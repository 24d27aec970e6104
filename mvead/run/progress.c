#include "mvead/run/progress.h"
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <sys/resource.h>
#include <unistd.h>

static bool g_quiet;

void mvead_progress_set_quiet(bool quiet) { g_quiet = quiet; }

double mvead_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

double mvead_peak_rss_mib(void) {
    struct rusage ru;
    return getrusage(RUSAGE_SELF, &ru) ? 0.0 : (double)ru.ru_maxrss / 1024.0;   /* ru_maxrss is in KiB on Linux */
}

void mvead_log(const char *fmt, ...) {
    if (g_quiet) return;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static void fmt_time(double s, char *buf, size_t n) {
    if (s < 0 || s > 1e7) { snprintf(buf, n, "--:--"); return; }
    int t = (int)(s + 0.5);
    if (t >= 3600) snprintf(buf, n, "%d:%02d:%02d", t / 3600, t / 60 % 60, t % 60);
    else snprintf(buf, n, "%02d:%02d", t / 60, t % 60);
}

static void draw(mvead_progress *p, bool final) {
    double el = mvead_now() - p->t0;
    double rate = el > 0 ? (double)(p->done - p->base) / el : 0;
    double eta = rate > 0 ? (double)(p->total - p->done) / rate : -1;
    char e1[32], e2[32];
    fmt_time(el, e1, sizeof e1);
    fmt_time(final ? 0 : eta, e2, sizeof e2);
    double frac = p->total > 0 ? (double)p->done / (double)p->total : 1;
    if (p->tty) {
        char bar[31];
        int fill = (int)(frac * 30);
        for (int i = 0; i < 30; i++) bar[i] = i < fill ? '#' : '.';
        bar[30] = 0;
        fprintf(stderr, "\r%-14s [%s] %5.1f%% %lld/%lld %.2f it/s %s<%s %s\033[K", p->label, bar, 100 * frac,
                (long long)p->done, (long long)p->total, rate, e1, e2, p->extra);
        if (final) fputc('\n', stderr);
    } else {
        fprintf(stderr, "%s: %lld/%lld (%.0f%%) %.2f it/s elapsed %s eta %s %s\n", p->label, (long long)p->done,
                (long long)p->total, 100 * frac, rate, e1, e2, p->extra);
    }
    fflush(stderr);
}

void mvead_progress_start(mvead_progress *p, const char *label, int64_t total) {
    memset(p, 0, sizeof *p);
    snprintf(p->label, sizeof p->label, "%s", label);
    p->total = total;
    p->t0 = mvead_now();
    p->quiet = g_quiet;
    p->tty = isatty(2);
    p->last_decile = -1;
}

void mvead_progress_resume(mvead_progress *p, int64_t done) {
    p->base = done;
    mvead_progress_update(p, done, NULL);
}

void mvead_progress_update(mvead_progress *p, int64_t done, const char *extra) {
    p->done = done;
    if (extra) snprintf(p->extra, sizeof p->extra, "%s", extra);
    if (p->quiet) return;
    double now = mvead_now();
    if (p->tty) {
        if (now - p->last_draw < 0.1 && done < p->total) return;
        p->last_draw = now;
        draw(p, false);
    } else {
        int dec = p->total > 0 ? (int)(10 * done / p->total) : 10;
        if (dec == p->last_decile || done >= p->total) return;
        p->last_decile = dec;
        draw(p, false);
    }
}

void mvead_progress_finish(mvead_progress *p) {
    p->done = p->total;
    if (!p->quiet) draw(p, true);
}
