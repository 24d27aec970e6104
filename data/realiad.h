/* realiad: the Real-IAD dataset index. Reads realiad_jsons/<cat>.json
 * (layout in docs/method.md, "Real-IAD layout"), groups the per-view entries
 * into multi-view samples and labels them. The loader, the feature cache and
 * the train/eval commands call it.
 *
 * Rules:
 *  - every entry has exactly the keys category, anomaly_class, image_path,
 *    mask_path (null for OK); anything else is an error naming the json file
 *    and the entry index.
 *  - a sample is (category, sample id, OK/NG, defect code) parsed from the
 *    file name <cat>_<id>_OK_C<v>_<ts>.<ext> or <cat>_<id>_NG_<DEF>_C<v>_<ts>.<ext>
 *    (parsed from the end, so categories with underscores work); views are
 *    ordered by camera C1..Cn; samples keep the order of their first entry;
 *    categories are taken in the order given (or sorted, for "all").
 *  - a sample must have cameras 1..n_views (default 5) exactly once; otherwise
 *    an error naming the sample (or, with skip_incomplete, a warning on stderr
 *    and the sample is dropped).
 *  - image and mask files must exist (checked at open; error names the path).
 *  - labels as Real-IAD's official tool: a view is anomalous iff its mask has a
 *    nonzero pixel; the sample label is the max over its views. */
#ifndef MVEAD_DATA_REALIAD_H
#define MVEAD_DATA_REALIAD_H
#ifdef __cplusplus
extern "C" {
#endif

#define MVD_MAX_VIEWS 8

typedef struct {
    char *image_path; /* full path: <root>/realiad_1024/<cat>/<json image_path> */
    char *mask_path;  /* full path, or NULL (OK views) */
    int camera;       /* 1-based camera number from the file name */
    int label;        /* 1 if the mask has a nonzero pixel, 0 if not or no mask;
                         -1 if not computed (labels = MVD_LABELS_DEFER) */
} mvd_view;

typedef struct {
    char category[64];
    char sample_id[32];     /* digits from the file name, e.g. "0016" */
    char anomaly_class[16]; /* "OK" or the defect code */
    int n_views;
    mvd_view views[MVD_MAX_VIEWS]; /* views[i].camera == i + 1 */
    int label;                     /* max over views (-1 if any view is -1 and none is 1) */
} mvd_sample;

typedef struct {
    int n_samples;
    mvd_sample *samples;
    int n_categories;
    char (*categories)[64]; /* in load order */
    int n_views;            /* views per sample */
    char split[8];          /* "train" or "test" */
} mvd_dataset;

typedef enum {
    MVD_LABELS_FROM_MASKS = 0, /* read every mask at open (parallel with OpenMP) */
    MVD_LABELS_DEFER = 1       /* views with a mask get label -1; the loader reports labels */
} mvd_label_mode;

typedef struct {
    int n_views;         /* expected cameras per sample (default 5) */
    int skip_incomplete; /* 1: drop samples with missing/duplicate views with a warning */
    int check_files;     /* 1 (default): every image/mask file must exist */
    mvd_label_mode labels;
    const char *json_dir;  /* NULL: <root>/realiad_jsons, or realiad_jsons/realiad_jsons when
                              only that holds json files (the official archive); relative
                              to root unless absolute (e.g. "realiad_jsons_sv") */
    const char *image_dir; /* NULL: "realiad_1024" (or realiad_256/realiad_512); relative to
                              root unless absolute */
} mvd_realiad_opts;

void mvd_realiad_opts_default(mvd_realiad_opts *o);

/* root: the directory containing realiad_1024/ and realiad_jsons/.
 * categories: NULL or "all" (every realiad_jsons/<cat>.json, sorted by name) or a
 * comma-separated list ("audiojack,pcb"). split: "train" or "test".
 * Returns 0, or -1 + mv_error (out is then empty and need not be freed). */
int mvd_realiad_open(const char *root, const char *categories, const char *split, mvd_dataset *out);
int mvd_realiad_open_opts(const char *root, const char *categories, const char *split,
                          const mvd_realiad_opts *opts, mvd_dataset *out);
void mvd_dataset_free(mvd_dataset *ds);

/* Parses a Real-IAD file name (base name or path). Returns 0 and fills the
 * fields (is_ok 1 for OK, defect "" then), or -1 + mv_error. */
int mvd_realiad_parse_name(const char *name, char *sample_id, int id_size, int *is_ok,
                           char *defect, int defect_size, int *camera);

/* Number of samples with label 1 / 0 (for summaries). */
int mvd_dataset_count_label(const mvd_dataset *ds, int label);

#ifdef __cplusplus
}
#endif
#endif
