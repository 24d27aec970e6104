/* checkpoint: a run's trained state (EAM, centres, training log, optimiser
 * moments) in checkpoint.h5, and its loss.csv. */
#include "mvead/run/checkpoint.h"
#include "data/fileio.h"
#include "data/h5io.h"
#include "tensor/error.h"
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void mvead_state_free(mvead_state *s) {
    if (s->has_eam) mvead_eam_free(&s->eam);
    mvt_release(s->centers);
    free(s->log_pos);
    free(s->log_neg);
    free(s->log_total);
    free(s->log_grad_norm);
    free(s->log_epoch);
    memset(s, 0, sizeof *s);
}

int mvead_state_log_append(mvead_state *s, double pos, double neg, double total, double grad_norm, int64_t epoch) {
    int64_t n = s->steps + 1;
    double *a = realloc(s->log_pos, sizeof(double) * n), *b = a ? realloc(s->log_neg, sizeof(double) * n) : NULL;
    if (a) s->log_pos = a;
    if (b) s->log_neg = b;
    double *t = b ? realloc(s->log_total, sizeof(double) * n) : NULL;
    if (t) s->log_total = t;
    double *g = t ? realloc(s->log_grad_norm, sizeof(double) * n) : NULL;
    if (g) s->log_grad_norm = g;
    int64_t *e = g ? realloc(s->log_epoch, sizeof(int64_t) * n) : NULL;
    if (!e) return mv_error("out of memory for the loss log");
    s->log_epoch = e;
    s->log_pos[s->steps] = pos;
    s->log_neg[s->steps] = neg;
    s->log_total[s->steps] = total;
    s->log_grad_norm[s->steps] = grad_norm;
    s->log_epoch[s->steps] = epoch;
    s->steps = n;
    return 0;
}

int mvead_checkpoint_save(const char *path, const mvead_config *c, const mvead_state *s, const mvn_adamw *opt) {
    mvd_h5_writer w;
    if (mvd_h5_create(&w, path, "checkpoint", MVEAD_CHECKPOINT_FORMAT)) return -1;
    hid_t f = w.file;
    int rc = 0;
    rc |= mvd_h5_attr_set_int(f, ".", "epochs_done", s->epochs_done);
    rc |= mvd_h5_attr_set_int(f, ".", "steps", s->steps);
    rc |= mvd_h5_attr_set_int(f, ".", "has_eam", s->has_eam);
    rc |= mvd_h5_attr_set_str(f, ".", "fusion", c->fusion);
    rc |= mvd_h5_attr_set_str(f, ".", "attention", c->attention);
    rc |= mvd_h5_attr_set_str(f, ".", "objective", c->objective);
    rc |= mvd_h5_attr_set_str(f, ".", "init", c->init);
    rc |= mvd_h5_attr_set_int(f, ".", "seed", (int64_t)c->seed);
    {   /* the options the state was trained with (train --resume holds a resumed run to them) */
        char *buf = mvead_config_to_json(c);
        rc |= mvd_h5_attr_set_str(f, ".", "config", buf);
        free(buf);
    }
    if (s->has_eam) {
        mva_var *p[MVEAD_EAM_NPARAMS];
        mvead_eam_params(&s->eam, p);
        rc |= mvd_h5_attr_set_int(f, ".", "dim", s->eam.dim);
        rc |= mvd_h5_attr_set_int(f, ".", "heads", s->eam.heads);
        for (int i = 0; i < MVEAD_EAM_NPARAMS && !rc; i++) {
            char name[128];
            snprintf(name, sizeof name, "eam/%s", mvead_eam_param_names[i]);
            rc |= mvd_h5_write_tensor(f, name, p[i]->value);
            if (opt && i < opt->n) {
                snprintf(name, sizeof name, "adamw/m/%s", mvead_eam_param_names[i]);
                rc |= mvd_h5_write_tensor(f, name, opt->m[i]);
                snprintf(name, sizeof name, "adamw/v/%s", mvead_eam_param_names[i]);
                rc |= mvd_h5_write_tensor(f, name, opt->v[i]);
            }
        }
        if (opt && !rc) {
            int64_t sh[1] = {opt->n};
            rc |= mvd_h5_write_i64(f, "adamw/step", 1, sh, opt->step);
        }
    }
    if (s->centers && !rc) rc |= mvd_h5_write_tensor(f, "centers", s->centers);
    if (!rc) {
        int64_t sh[1] = {s->steps};
        double zero = 0;
        int64_t zi = 0;
        rc |= mvd_h5_write_f64(f, "log/pos", 1, sh, s->steps ? s->log_pos : &zero);
        rc |= mvd_h5_write_f64(f, "log/neg", 1, sh, s->steps ? s->log_neg : &zero);
        rc |= mvd_h5_write_f64(f, "log/total", 1, sh, s->steps ? s->log_total : &zero);
        rc |= mvd_h5_write_f64(f, "log/grad_norm", 1, sh, s->steps ? s->log_grad_norm : &zero);
        rc |= mvd_h5_write_i64(f, "log/epoch", 1, sh, s->steps ? s->log_epoch : &zi);
    }
    if (rc) {
        mvd_h5_abort(&w);
        return mv_error_prefix("%s: writing checkpoint", path);
    }
    return mvd_h5_commit(&w);
}

int mvead_checkpoint_load(const char *path, mvead_state *s, mvn_adamw *opt) {
    int fmt;
    hid_t f = mvd_h5_open_read(path, "checkpoint", MVEAD_CHECKPOINT_FORMAT, &fmt);
    if (f < 0) return -1;
    memset(s, 0, sizeof *s);
    int64_t epochs, steps, has_eam, dim = 0, heads = 0;
    int rc = -1;
    mvt_tensor *lp = NULL, *ln = NULL, *lt = NULL, *le = NULL, *lg = NULL;
    if (mvd_h5_attr_get_int(f, ".", "epochs_done", &epochs, path) || mvd_h5_attr_get_int(f, ".", "steps", &steps, path) ||
        mvd_h5_attr_get_int(f, ".", "has_eam", &has_eam, path)) goto done;
    if (epochs < 0 || steps < 0) { mv_error("%s: negative epoch/step counters", path); goto done; }
    s->epochs_done = (int)epochs;
    if (has_eam) {
        if (mvd_h5_attr_get_int(f, ".", "dim", &dim, path) || mvd_h5_attr_get_int(f, ".", "heads", &heads, path)) goto done;
        if (dim < 1 || heads < 1 || dim % heads) { mv_error("%s: bad EAM dim %lld / heads %lld", path, (long long)dim, (long long)heads); goto done; }
        mvt_tensor *t[MVEAD_EAM_NPARAMS] = {0};
        bool ok = true;
        for (int i = 0; i < MVEAD_EAM_NPARAMS && ok; i++) {
            char name[128];
            snprintf(name, sizeof name, "eam/%s", mvead_eam_param_names[i]);
            bool is_w = mvead_eam_param_names[i][0] == 'w';
            int64_t shp[2] = {dim, dim};
            t[i] = mvd_h5_read_tensor(f, name, MVT_F32, is_w ? 2 : 1, shp, path);
            ok = t[i] != NULL;
        }
        if (ok) {
            mvead_eam_weights src = {t[0], t[1], t[2], t[3], t[4], t[5], t[6], t[7], t[8], t[9]};
            ok = mvead_eam_init_copy(&s->eam, (int)heads, MVT_F32, &src, NULL) == 0;
            if (ok) s->has_eam = true;
        }
        for (int i = 0; i < MVEAD_EAM_NPARAMS; i++) mvt_release(t[i]);
        if (!ok) goto done;
        if (opt) {
            mva_var *p[MVEAD_EAM_NPARAMS];
            mvead_eam_params(&s->eam, p);
            int64_t sh[1] = {MVEAD_EAM_NPARAMS};
            mvt_tensor *st = mvd_h5_read_tensor(f, "adamw/step", MVT_I64, 1, sh, path);
            if (!st) goto done;
            for (int i = 0; i < opt->n; i++) opt->step[i] = mvt_i64(st)[i];
            mvt_release(st);
            for (int i = 0; i < MVEAD_EAM_NPARAMS; i++) {
                char name[128];
                snprintf(name, sizeof name, "adamw/m/%s", mvead_eam_param_names[i]);
                mvt_tensor *m = mvd_h5_read_tensor(f, name, MVT_F32, p[i]->value->ndim, p[i]->value->shape, path);
                snprintf(name, sizeof name, "adamw/v/%s", mvead_eam_param_names[i]);
                mvt_tensor *v = m ? mvd_h5_read_tensor(f, name, MVT_F32, p[i]->value->ndim, p[i]->value->shape, path) : NULL;
                if (!v) { mvt_release(m); goto done; }
                mvt_copy_(opt->m[i], m);
                mvt_copy_(opt->v[i], v);
                mvt_release(m);
                mvt_release(v);
            }
        }
    }
    if (mvd_h5_exists(f, "centers")) {
        s->centers = mvd_h5_read_tensor(f, "centers", MVT_F64, 3, NULL, path);
        if (!s->centers) goto done;
    }
    int64_t sh[1] = {steps};
    lp = mvd_h5_read_tensor(f, "log/pos", MVT_F64, 1, sh, path);
    ln = lp ? mvd_h5_read_tensor(f, "log/neg", MVT_F64, 1, sh, path) : NULL;
    lt = ln ? mvd_h5_read_tensor(f, "log/total", MVT_F64, 1, sh, path) : NULL;
    le = lt ? mvd_h5_read_tensor(f, "log/epoch", MVT_I64, 1, sh, path) : NULL;
    if (!le) goto done;
    lg = mvd_h5_read_tensor(f, "log/grad_norm", MVT_F64, 1, sh, path);
    if (!lg) goto done;
    for (int64_t i = 0; i < steps; i++)
        if (mvead_state_log_append(s, mvt_f64(lp)[i], mvt_f64(ln)[i], mvt_f64(lt)[i], mvt_f64(lg)[i], mvt_i64(le)[i])) goto done;
    rc = 0;
done:
    mvt_release(lp);
    mvt_release(ln);
    mvt_release(lt);
    mvt_release(le);
    mvt_release(lg);
    H5Fclose(f);
    if (rc) mvead_state_free(s);
    return rc;
}

int mvead_checkpoint_read_config(const char *path, mvead_config *c) {
    hid_t f = mvd_h5_open_read(path, "checkpoint", MVEAD_CHECKPOINT_FORMAT, NULL);
    if (f < 0) return -1;
    char *buf = calloc(1, 1 << 16);
    int rc = mvd_h5_attr_get_str(f, ".", "config", buf, 1 << 16, path);
    H5Fclose(f);
    if (!rc) rc = mvead_config_load_json_text(c, buf, path);
    free(buf);
    return rc;
}

int mvead_state_write_loss_csv(const char *path, const mvead_state *s) {
    char tmp[1200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *fp = fopen(tmp, "w");
    if (!fp) return mv_error("%s: cannot write: %s", tmp, strerror(errno));
    fprintf(fp, "step,epoch,pos,neg,total,grad_norm\n");
    for (int64_t i = 0; i < s->steps; i++)
        fprintf(fp, "%lld,%lld,%.9g,%.9g,%.9g,%.9g\n", (long long)i, (long long)s->log_epoch[i], s->log_pos[i], s->log_neg[i],
                s->log_total[i], s->log_grad_norm[i]);
    return mvd_file_commit(fp, tmp, path);
}
