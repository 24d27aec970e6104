/* fuzz_calibration: mvg_calibration_read_json on arbitrary bytes; an accepted
 * calibration must also be usable (F rescaled to another size, written back
 * and read again to the same numbers). */
#include "fuzz/fuzz_util.h"
#include "mvead/geometry/calibration.h"
#include "tensor/error.h"
#include <math.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fz_write("calibration.json", data, size);
    mvg_calibration *c = calloc(1, sizeof *c);
    if (mvg_calibration_read_json(path, c)) {
        if (!mv_error_last()[0]) abort();
        free(c);
        return 0;
    }
    if (c->V < 2 || c->V > MVG_MAX_VIEWS || c->width < 1 || c->height < 1) abort();
    double *F = malloc(sizeof(double) * 9 * (size_t)c->V * (size_t)c->V);
    mvg_calibration_F_for_size(c, 224, 224, F);
    free(F);
    char back[512];
    fz_path("calibration_back.json", back, sizeof back);
    if (mvg_calibration_write_json(back, c) == 0) {
        mvg_calibration *d = calloc(1, sizeof *d);
        if (mvg_calibration_read_json(back, d)) {
            fprintf(stderr, "accepted calibration does not round-trip: %s\n", mv_error_last());
            abort();
        }
        free(d);
    }
    free(c);
    return 0;
}
