/* checkpoint: a run's trained state and the file that holds it
 * (checkpoint.h5: the EAM, the centres, the training log, the optimiser
 * moments and the options). Written by train every epoch, read by every
 * later stage and command. */
#ifndef MVEAD_RUN_CHECKPOINT_H
#define MVEAD_RUN_CHECKPOINT_H

#include "mvead/method/eam.h"
#include "mvead/run/run_config.h"
#include "nn/adamw.h"

#define MVEAD_CHECKPOINT_FORMAT 1

/* The trained (or initial) state of a run. */
typedef struct {
    bool has_eam;              /* false for fusion none */
    mvead_eam eam;
    mvt_tensor *centers;       /* [V, K, D] f64, NULL for objective none */
    int epochs_done;
    int64_t steps;
    double *log_pos, *log_neg, *log_total;   /* per step */
    double *log_grad_norm;                   /* per step: L2 norm of the whole gradient */
    int64_t *log_epoch;
} mvead_state;

void mvead_state_free(mvead_state *s);
/* Appends one step to the training log. */
int mvead_state_log_append(mvead_state *s, double pos, double neg, double total, double grad_norm, int64_t epoch);
/* The training log as loss.csv (atomically). */
int mvead_state_write_loss_csv(const char *path, const mvead_state *s);

int mvead_checkpoint_save(const char *path, const mvead_config *c, const mvead_state *s, const mvn_adamw *opt);
/* Loads the state (and the optimiser moments when opt is non-NULL). */
int mvead_checkpoint_load(const char *path, mvead_state *s, mvn_adamw *opt);
/* The options copy stored in a checkpoint (what its state was trained with). */
int mvead_checkpoint_read_config(const char *path, mvead_config *c);

#endif
