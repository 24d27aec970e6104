/* fuzz_config: a run's config.json (mvead_config_load_json), then written
 * back; an accepted config must load again from what was written. */
#include "fuzz/fuzz_util.h"
#include "mvead/run/run_config.h"
#include "tensor/error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fz_write("config.json", data, size);
    mvead_config *c = calloc(1, sizeof *c);
    mvead_config_defaults(c);
    if (mvead_config_load_json(c, path)) {
        if (!mv_error_last()[0]) abort();
        free(c);
        return 0;
    }
    char back[512];
    fz_path("config_back.json", back, sizeof back);
    if (mvead_config_write_json(c, back) == 0) {
        mvead_config *d = calloc(1, sizeof *d);
        mvead_config_defaults(d);
        if (mvead_config_load_json(d, back)) {
            fprintf(stderr, "accepted config does not round-trip: %s\n", mv_error_last());
            abort();
        }
        free(d);
    }
    free(c);
    return 0;
}
