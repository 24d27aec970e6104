#include "mvead/run/paths.h"
#include "tensor/error.h"
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

int mvead_paths_of_dir(const char *dir, mvead_paths *p) {
    memset(p, 0, sizeof *p);
    if (snprintf(p->run, sizeof p->run, "%s", dir) >= (int)sizeof p->run) return mv_error("%s: run folder path too long", dir);
#define MVEAD_RUN_FILE_PATH(field, file) snprintf(p->field, sizeof p->field, "%s/" file, p->run);
    MVEAD_RUN_FILES(MVEAD_RUN_FILE_PATH)
#undef MVEAD_RUN_FILE_PATH
    return 0;
}

int mvead_paths_init(const mvead_config *c, mvead_paths *p, bool mkdirs) {
    char dir[1024];
    if (mvead_run_dir(c, dir, sizeof dir, mkdirs) || mvead_paths_of_dir(dir, p)) return -1;
    int n = c->cache[0] ? snprintf(p->cache, sizeof p->cache, "%s", c->cache)
                        : snprintf(p->cache, sizeof p->cache, "%.1000s/features", p->run);
    if (n >= (int)sizeof p->cache) return mv_error("cache path too long");
    if (mkdirs && mvead_mkdirs(p->cache)) return -1;
    snprintf(p->train_cache, sizeof p->train_cache, "%s/train.h5", p->cache);
    snprintf(p->test_cache, sizeof p->test_cache, "%s/test.h5", p->cache);
    if (c->calib[0]) snprintf(p->calib, sizeof p->calib, "%s", c->calib);
    else snprintf(p->calib, sizeof p->calib, "%s/calibration.json", c->data);
    return 0;
}

int mvead_paths_heatmap(const mvead_paths *p, const char *category, const char *sample_id, const char *anomaly_class,
                        int v, char *buf, size_t n) {
    if (snprintf(buf, n, "%s/%s_%s_%s_C%d.png", p->heatmaps, category, sample_id, anomaly_class, v + 1) >= (int)n)
        return mv_error("%s: heatmap path too long", p->heatmaps);
    return 0;
}

int mvead_mkdirs(const char *path) {
    char buf[1024];
    if (strlen(path) >= sizeof buf) return mv_error("%s: path too long", path);
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; ; p++) {
        if (*p == '/' || *p == 0) {
            char ch = *p;
            *p = 0;
            if (mkdir(buf, 0777) && errno != EEXIST) return mv_error("%s: cannot create directory: %s", buf, strerror(errno));
            struct stat st;
            if (stat(buf, &st) || !S_ISDIR(st.st_mode)) return mv_error("%s: exists and is not a directory", buf);
            if (!ch) break;
            *p = ch;
        }
    }
    return 0;
}

int mvead_run_dir(const mvead_config *c, char *buf, int n, bool mk) {
    if (snprintf(buf, n, "%s/%s", c->runs, c->name) >= n) return mv_error("run directory path too long");
    return mk ? mvead_mkdirs(buf) : 0;
}
