/* synth: the project's built-in multi-view dataset. Procedural 3D objects
 * (signed-distance surfaces with procedural textures) on a textured table are
 * ray cast from V fixed, calibrated pinhole cameras and written in the
 * Real-IAD layout (realiad_1024/<cat>/..., realiad_jsons/<cat>.json) plus
 * calibration.json holding the exact cameras and F, so every stage of the
 * method (calibrate, extract, train, score, evaluate) runs end to end without
 * downloading anything. Defects live on the 3D surface (object coordinates),
 * so they show consistently in every view that sees them, and the masks are
 * exact: a pixel is defective iff its centre ray hits a defect region.
 * Callers: the `mvead synth` command, tests/check_synth.c, benches.
 *
 * Scene: world z is up, the table is the plane z = 0, the object stands on it
 * near the origin. Cameras follow method.md: X_cam = R X_world + t, pixel
 * x = column, y = row, origin at the top-left corner of the top-left pixel
 * (pixel centres at i + 0.5). Default V = 5: C1 looks straight down, C2..C5
 * look from 45 degrees elevation at azimuth 0, 90, 180, 270 degrees. The
 * cameras never move; each sample jitters the OBJECT pose (a few degrees
 * about the vertical axis, a small shift), the light and the colours.
 *
 * Defect kinds and their Real-IAD codes:
 *   pit (shallow spherical dent, darker floor)       -> AK
 *   deformation (outward bulge of the surface)       -> BX
 *   abrasion (scuffed, washed-out patch)             -> CH
 *   scratch (thin bright curve)                      -> HS
 *   damage (groove/crack carved by a capsule)        -> PS
 *   missing chunk (carved by a sphere)               -> QS
 *   foreign object (small sphere/box on the surface) -> YW
 *   spot / contamination (dark irregular blob)       -> ZW
 *
 * Determinism: every random draw comes from a counter-based hash of (seed,
 * category, sample, stream) or (seed, sample, view, pixel), never from state
 * shared across threads, so the output is byte-identical for the same seed
 * whatever OMP_NUM_THREADS is. */
#ifndef MVEAD_DATA_SYNTH_H
#define MVEAD_DATA_SYNTH_H
#include <stdbool.h>
#include <stdint.h>
#include "data/image.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MVD_SYNTH_MAX_VIEWS 8

typedef struct {
    int categories;   /* number of categories, 1..mvd_synth_max_categories() (3) */
    int train;        /* good training samples per category (12) */
    int test_good;    /* good test samples per category (6) */
    int test_bad;     /* defective test samples per category (6) */
    int size;         /* image width = height in pixels, 32..4096 (224) */
    int views;        /* cameras (5): 2..MVD_SYNTH_MAX_VIEWS for generate, 1.. for
                         render; view 0 looks down, 1..4 from 45 degrees at
                         azimuth 0/90/180/270, 5..7 from 30 degrees in between */
    int supersample;  /* 1: one ray per pixel; 2: adaptive 2x2 antialiasing of
                         pixels on edges and fine print (2); the mask, xyz
                         and hit always come from the centre ray */
    uint64_t seed;    /* (1) */
    int jpeg_quality; /* 1..100 (95) */
    void (*progress)(void *ctx, int done, int total); /* per sample, may be NULL */
    void *progress_ctx;
} mvd_synth_opts;

/* Defect kinds (index into the code table). */
enum {
    MVD_SYNTH_NONE = -1,
    MVD_SYNTH_PIT = 0,    /* AK */
    MVD_SYNTH_BULGE,      /* BX */
    MVD_SYNTH_ABRASION,   /* CH */
    MVD_SYNTH_SCRATCH,    /* HS */
    MVD_SYNTH_GROOVE,     /* PS */
    MVD_SYNTH_CHUNK,      /* QS */
    MVD_SYNTH_FOREIGN,    /* YW */
    MVD_SYNTH_SPOT,       /* ZW */
    MVD_SYNTH_N_KINDS
};

void mvd_synth_default_opts(mvd_synth_opts *o);
/* Checks every field; -1 + mv_error naming the option when out of range. */
int mvd_synth_check_opts(const mvd_synth_opts *o);

/* Writes the whole dataset under out_dir (created if needed):
 *   out_dir/realiad_1024/<cat>/OK/S0001/<cat>_0001_OK_C1_<ts>.jpg
 *   out_dir/realiad_1024/<cat>/NG/<DEF>/S0019/<cat>_0019_NG_<DEF>_C1_<ts>.jpg (+ .png mask)
 *   out_dir/realiad_jsons/<cat>.json
 *   out_dir/calibration.json (exact cameras and F at size x size)
 * Sample ids per category: train goods 1..train, then test goods, then the
 * defective samples (kinds cycle through the category's defect list). Every
 * view of a defective sample gets a mask (all zero where the defect is
 * hidden) and anomaly_class = its code. Returns 0, or -1 + mv_error. */
int mvd_synth_generate(const mvd_synth_opts *o, const char *out_dir);

/* Category table. */
int mvd_synth_max_categories(void);
const char *mvd_synth_category_name(int category);      /* NULL if out of range */
/* Defect kinds a category's defective samples cycle through; returns the count. */
int mvd_synth_category_defects(int category, int kinds[MVD_SYNTH_N_KINDS]);
const char *mvd_synth_defect_code(int kind);             /* "AK".."ZW", "OK" for NONE */
/* Kind of the k-th (0-based) defective sample of a category. */
int mvd_synth_bad_kind(int category, int k);

/* Cameras of o->views views at o->size: K, R row-major 3x3 (V*9 each), t (V*3). */
int mvd_synth_cameras(const mvd_synth_opts *o, double *K, double *R, double *t);
/* Projects world point X into view v: p = (x, y) pixel coordinates (method.md
 * convention). Returns 1 if X is in front of the camera, 0 if behind, -1 on a
 * bad view index. */
int mvd_synth_project(const mvd_synth_opts *o, int v, const double X[3], double p[2]);

/* One sample rendered into memory. */
typedef struct {
    int views, width, height;
    mvd_image images[MVD_SYNTH_MAX_VIEWS]; /* RGB, HWC */
    mvd_image masks[MVD_SYNTH_MAX_VIEWS];  /* 1 channel, 0 or 255 */
    double *xyz;   /* views*H*W*3: world point hit by each pixel's centre ray (NULL unless asked) */
    uint8_t *hit;  /* views*H*W: MVD_SYNTH_HIT_* of the centre ray (NULL unless asked) */
} mvd_synth_render;

enum { MVD_SYNTH_HIT_NOTHING = 0, MVD_SYNTH_HIT_TABLE = 1, MVD_SYNTH_HIT_OBJECT = 2 };

/* Renders sample `sample_id` (1-based, as in the file names) of `category`
 * with defect `kind` (MVD_SYNTH_NONE for a good sample). The pose, light and
 * colour jitter depend only on (seed, category, sample_id) and the defect's
 * shape/place on (seed, category, sample_id, kind), so rendering the same
 * sample with MVD_SYNTH_NONE gives the same scene without the defect.
 * want_geometry fills xyz and hit. Free with mvd_synth_render_free. */
int mvd_synth_render_sample(const mvd_synth_opts *o, int category, int sample_id, int kind,
                            bool want_geometry, mvd_synth_render *out);
void mvd_synth_render_free(mvd_synth_render *r);

#ifdef __cplusplus
}
#endif
#endif
