/* fuzz_checkpoint: mvead_checkpoint_load on mutated bytes of a small valid
 * checkpoint, as `bank`/`eval` (state only) and `train --resume` (state, then
 * the AdamW moments into an optimiser made for the loaded EAM) do. */
#include "fuzz/fuzz_util.h"
#include "mvead/run/checkpoint.h"
#include "nn/adamw.h"
#include "autograd/autograd.h"
#include "mvead/method/eam.h"
#include "tensor/error.h"
#include <hdf5.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fz_write("checkpoint.h5", data, size);
    mvead_state s;
    memset(&s, 0, sizeof s);
    if (mvead_checkpoint_load(path, &s, NULL)) {
        if (!mv_error_last()[0]) abort();
        FZ_CHECK_HDF5_CLOSED();
        return 0;
    }
    if (s.has_eam) {
        mva_var *p[MVEAD_EAM_NPARAMS];
        mvead_eam_params(&s.eam, p);
        mvn_adamw *opt = mvn_adamw_new(p, MVEAD_EAM_NPARAMS);
        mvead_state s2;
        memset(&s2, 0, sizeof s2);
        if (mvead_checkpoint_load(path, &s2, opt) == 0) mvead_state_free(&s2);
        mvn_adamw_free(opt);
    }
    mvead_state_free(&s);
    FZ_CHECK_HDF5_CLOSED();
    return 0;
}
