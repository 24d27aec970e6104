/* fuzz_realiad: the Real-IAD index. The input becomes
 * <root>/realiad_jsons/fz.json (file existence checks off, labels deferred, so
 * only the JSON and the file-name parsing are exercised), opened as the train
 * and the test split; the first line of the input is also fed to the
 * file-name parser. */
#include "fuzz/fuzz_util.h"
#include "data/realiad.h"
#include "tensor/error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char root[512], dir[600];
    fz_path("root", root, sizeof root);
    snprintf(dir, sizeof dir, "%s", root);
    mkdir(dir, 0755);
    snprintf(dir, sizeof dir, "%s/realiad_jsons", root);
    mkdir(dir, 0755);
    snprintf(dir, sizeof dir, "%s/realiad_1024", root);
    mkdir(dir, 0755);
    fz_write("root/realiad_jsons/fz.json", data, size);

    mvd_realiad_opts o;
    mvd_realiad_opts_default(&o);
    o.check_files = 0;
    o.labels = MVD_LABELS_DEFER;
    const char *splits[2] = {"train", "test"};
    for (int k = 0; k < 4; k++) {
        o.skip_incomplete = k >= 2;
        mvd_dataset ds;
        memset(&ds, 0, sizeof ds);
        if (mvd_realiad_open_opts(root, "fz", splits[k & 1], &o, &ds)) {
            if (!mv_error_last()[0]) abort();
            continue;
        }
        for (int i = 0; i < ds.n_samples; i++) {
            const mvd_sample *s = &ds.samples[i];
            if (s->n_views != ds.n_views || s->n_views < 1 || s->n_views > MVD_MAX_VIEWS) abort();
            for (int v = 0; v < s->n_views; v++)
                if (s->views[v].camera != v + 1 || !s->views[v].image_path) abort();
        }
        mvd_dataset_count_label(&ds, 1);
        mvd_dataset_free(&ds);
    }

    char name[300];
    size_t n = 0;
    while (n < size && n < sizeof name - 1 && data[n] != '\n') { name[n] = (char)data[n]; n++; }
    name[n] = 0;
    char sid[32], defect[16];
    int is_ok, cam;
    mvd_realiad_parse_name(name, sid, sizeof sid, &is_ok, defect, sizeof defect, &cam);
    return 0;
}
