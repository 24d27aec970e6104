/* backbone: the frozen feature extractor a run names (c->backbone). Used by
 * extract (features), predict (one sample's features) and init (--init copy). */
#ifndef MVEAD_RUN_BACKBONE_H
#define MVEAD_RUN_BACKBONE_H

#include "mvead/method/eam.h"
#include "mvead/run/run_config.h"
#include "nn/vit.h"

/* The frozen backbone named by c->backbone (preset with random weights,
 * `tiny`, or a weights file); *hash identifies its weights. */
mvn_vit *mvead_backbone_load(const mvead_config *c, char *hash, size_t hash_n);

/* Backbone block (layer + 1) weights for `copy` init: fills src with borrowed
 * tensors kept alive in *keep (release with mvead_backbone_release). */
int mvead_backbone_copy_weights(const mvead_config *c, int dim_expected, int *heads,
                                mvead_eam_weights *src, void **keep);
void mvead_backbone_release(void *keep);

#endif
