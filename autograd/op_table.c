/* op_table: one row per op (name, forward, backward), built from MVA_OP_LIST. */
#include "autograd/op.h"

const mva_op_info mva_op_table[MVA_OP_COUNT] = {
#define MVA_X_ROW(E, f) [MVA_OP_##E] = {#f, mva_fwd_##f, mva_bwd_##f},
    MVA_OP_LIST(MVA_X_ROW)
#undef MVA_X_ROW
};
