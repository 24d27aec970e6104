/* synth_render: the scene and the ray caster behind data/synth.h.
 * Objects are signed distance functions (SDF) in object coordinates (z up,
 * standing on z = 0), sphere traced inside a bounding sphere; the table is
 * the analytic plane z = 0. Defects are extra SDF terms (carves, bulge,
 * foreign body) or colour regions, all defined around a point on the object
 * surface, so every camera sees the same defect. */
#include "data/synth.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tensor/error.h"

/* ---------------------------------------------------------------- vectors */

typedef struct { double x, y, z; } v3;

static inline v3 v3_make(double x, double y, double z) { v3 r = {x, y, z}; return r; }
static inline v3 v3_add(v3 a, v3 b) { return v3_make(a.x + b.x, a.y + b.y, a.z + b.z); }
static inline v3 v3_sub(v3 a, v3 b) { return v3_make(a.x - b.x, a.y - b.y, a.z - b.z); }
static inline v3 v3_scale(v3 a, double s) { return v3_make(a.x * s, a.y * s, a.z * s); }
static inline double v3_dot(v3 a, v3 b) { return a.x * b.x + a.y * b.y + a.z * b.z; }
static inline double v3_len(v3 a) { return sqrt(v3_dot(a, a)); }
static inline v3 v3_cross(v3 a, v3 b) {
    return v3_make(a.y * b.z - a.z * b.y, a.z * b.x - a.x * b.z, a.x * b.y - a.y * b.x);
}
static inline v3 v3_norm(v3 a) {
    double l = v3_len(a);
    return l > 0 ? v3_scale(a, 1.0 / l) : a;
}
/* Plain comparisons: libm's fmin/fmax/hypot are calls with NaN/overflow care
 * that the hot SDF loop does not need. */
static inline double maxd(double a, double b) { return a > b ? a : b; }
static inline double mind(double a, double b) { return a < b ? a : b; }
static inline double len2(double a, double b) { return sqrt(a * a + b * b); }
static inline double clampd(double x, double lo, double hi) { return x < lo ? lo : (x > hi ? hi : x); }
static inline double mixd(double a, double b, double w) { return a + (b - a) * w; }
static inline double smoothstep(double e0, double e1, double x) {
    double t = clampd((x - e0) / (e1 - e0), 0.0, 1.0);
    return t * t * (3.0 - 2.0 * t);
}
static inline double fracd(double x) { return x - floor(x); }

/* --------------------------------------------------------------- hashing */

/* splitmix64 finaliser: a strong 64-bit mixer, the base of every draw. */
static inline uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}
static uint64_t hash4(uint64_t a, uint64_t b, uint64_t c, uint64_t d) {
    uint64_t h = mix64(a + 0x9e3779b97f4a7c15ULL);
    h = mix64(h ^ (b + 0x632be59bd9b4e019ULL));
    h = mix64(h ^ (c + 0x85ebca77c2b2ae63ULL));
    return mix64(h ^ (d + 0x27d4eb2f165667c5ULL));
}
static inline double u01(uint64_t h) { return (double)(h >> 11) * (1.0 / 9007199254740992.0); }

/* A counter-based stream: draws depend only on the key and the draw index. */
typedef struct { uint64_t key, n; } rng_t;
static double rng_uniform(rng_t *r, double lo, double hi) {
    return lo + (hi - lo) * u01(mix64(r->key ^ mix64(++r->n)));
}
static int rng_int(rng_t *r, int n) {
    int k = (int)(rng_uniform(r, 0.0, 1.0) * n);
    return k < n ? k : n - 1;
}

/* Value noise on the integer lattice, trilinear with smoothstep weights. */
static inline double lattice(int64_t x, int64_t y, int64_t z, uint64_t salt) {
    /* One mixing round per lattice point: noise is the hot path of shading. */
    return u01(mix64(((uint64_t)x * 0x9e3779b97f4a7c15ULL) ^ ((uint64_t)y * 0xc2b2ae3d27d4eb4fULL) ^
                     ((uint64_t)z * 0x165667b19e3779f9ULL) ^ salt));
}
static double vnoise(v3 p, uint64_t salt) {
    double fx = floor(p.x), fy = floor(p.y), fz = floor(p.z);
    int64_t ix = (int64_t)fx, iy = (int64_t)fy, iz = (int64_t)fz;
    double tx = p.x - fx, ty = p.y - fy, tz = p.z - fz;
    tx = tx * tx * (3 - 2 * tx); ty = ty * ty * (3 - 2 * ty); tz = tz * tz * (3 - 2 * tz);
    double c000 = lattice(ix, iy, iz, salt), c100 = lattice(ix + 1, iy, iz, salt);
    double c010 = lattice(ix, iy + 1, iz, salt), c110 = lattice(ix + 1, iy + 1, iz, salt);
    double c001 = lattice(ix, iy, iz + 1, salt), c101 = lattice(ix + 1, iy, iz + 1, salt);
    double c011 = lattice(ix, iy + 1, iz + 1, salt), c111 = lattice(ix + 1, iy + 1, iz + 1, salt);
    double a = mixd(mixd(c000, c100, tx), mixd(c010, c110, tx), ty);
    double b = mixd(mixd(c001, c101, tx), mixd(c011, c111, tx), ty);
    return mixd(a, b, tz);
}
static double fbm(v3 p, int octaves, uint64_t salt) {
    double s = 0, amp = 0.5, norm = 0;
    for (int o = 0; o < octaves; o++) {
        s += amp * vnoise(p, salt + (uint64_t)o);
        norm += amp;
        p = v3_scale(p, 2.03);
        amp *= 0.5;
    }
    return s / norm;
}

/* ------------------------------------------------------------ categories */

enum { CAT_BRICK, CAT_CAP, CAT_TAPE, CAT_PILL, CAT_BEADS, CAT_ERASER, CAT_BATTERY, CAT_NUT, N_CATS };

typedef struct {
    const char *name;
    v3 bound_c;       /* bounding sphere of the defect-free object (object coords) */
    double bound_r;
    int n_defects;
    int defects[4];
} category_info;

/* Names borrowed from Real-IAD categories of a similar shape, so the synthetic
 * set reads like a Real-IAD subset. Each defect kind appears in at least two
 * categories; the first three (the default) cover all eight codes. */
static const category_info CATS[N_CATS] = {
    {"toy_brick", {0, 0, 0.33}, 0.93, 4, {MVD_SYNTH_PIT, MVD_SYNTH_SCRATCH, MVD_SYNTH_CHUNK, MVD_SYNTH_FOREIGN}},
    {"bottle_cap", {0, 0, 0.24}, 0.77, 4, {MVD_SYNTH_SPOT, MVD_SYNTH_ABRASION, MVD_SYNTH_GROOVE, MVD_SYNTH_BULGE}},
    {"tape", {0, 0, 0.21}, 0.79, 4, {MVD_SYNTH_SCRATCH, MVD_SYNTH_CHUNK, MVD_SYNTH_FOREIGN, MVD_SYNTH_SPOT}},
    {"vcpill", {0, 0, 0.30}, 0.81, 4, {MVD_SYNTH_PIT, MVD_SYNTH_SPOT, MVD_SYNTH_GROOVE, MVD_SYNTH_ABRASION}},
    {"wooden_beads", {0, 0, 0.30}, 0.93, 4, {MVD_SYNTH_PIT, MVD_SYNTH_BULGE, MVD_SYNTH_SCRATCH, MVD_SYNTH_FOREIGN}},
    {"eraser", {0, 0, 0.18}, 0.82, 4, {MVD_SYNTH_ABRASION, MVD_SYNTH_SCRATCH, MVD_SYNTH_CHUNK, MVD_SYNTH_SPOT}},
    {"button_battery", {0, 0, 0.13}, 0.73, 4, {MVD_SYNTH_PIT, MVD_SYNTH_SCRATCH, MVD_SYNTH_SPOT, MVD_SYNTH_BULGE}},
    {"plastic_nut", {0, 0, 0.20}, 0.67, 4, {MVD_SYNTH_CHUNK, MVD_SYNTH_GROOVE, MVD_SYNTH_FOREIGN, MVD_SYNTH_SCRATCH}},
};

static const char *DEFECT_CODES[MVD_SYNTH_N_KINDS] = {"AK", "BX", "CH", "HS", "PS", "QS", "YW", "ZW"};

int mvd_synth_max_categories(void) { return N_CATS; }

const char *mvd_synth_category_name(int category) {
    return category >= 0 && category < N_CATS ? CATS[category].name : NULL;
}

int mvd_synth_category_defects(int category, int kinds[MVD_SYNTH_N_KINDS]) {
    if (category < 0 || category >= N_CATS) return 0;
    for (int i = 0; i < CATS[category].n_defects; i++) kinds[i] = CATS[category].defects[i];
    return CATS[category].n_defects;
}

const char *mvd_synth_defect_code(int kind) {
    if (kind == MVD_SYNTH_NONE) return "OK";
    return kind >= 0 && kind < MVD_SYNTH_N_KINDS ? DEFECT_CODES[kind] : NULL;
}

int mvd_synth_bad_kind(int category, int k) {
    if (category < 0 || category >= N_CATS || k < 0) return MVD_SYNTH_NONE;
    return CATS[category].defects[k % CATS[category].n_defects];
}

/* ------------------------------------------------------ SDF primitives */

static inline double sd_round_box(v3 p, v3 half, double r) {
    double qx = fabs(p.x) - half.x + r, qy = fabs(p.y) - half.y + r, qz = fabs(p.z) - half.z + r;
    double ox = maxd(qx, 0), oy = maxd(qy, 0), oz = maxd(qz, 0);
    return sqrt(ox * ox + oy * oy + oz * oz) + mind(maxd(qx, maxd(qy, qz)), 0.0) - r;
}
/* 2D rounded box in a (radial, height) half-plane: the profile of solids of revolution. */
static inline double sd_round_rect(double qx, double qy, double hx, double hy, double r) {
    qx = fabs(qx) - hx + r;
    qy = fabs(qy) - hy + r;
    double ox = maxd(qx, 0), oy = maxd(qy, 0);
    return sqrt(ox * ox + oy * oy) + mind(maxd(qx, qy), 0.0) - r;
}
static inline double sd_capsule(v3 p, v3 a, v3 b, double r) {
    v3 pa = v3_sub(p, a), ba = v3_sub(b, a);
    double h = clampd(v3_dot(pa, ba) / v3_dot(ba, ba), 0.0, 1.0);
    return v3_len(v3_sub(pa, v3_scale(ba, h))) - r;
}
static inline double sd_sphere(v3 p, v3 c, double r) { return v3_len(v3_sub(p, c)) - r; }
/* Hexagonal prism, apothem ha, half height hh, axis z (after Inigo Quilez). */
static double sd_hex_prism(v3 p, double ha, double hh) {
    const double kx = -0.8660254037844386, ky = 0.5, kz = 0.5773502691896258;
    double px = fabs(p.x), py = fabs(p.y), pz = fabs(p.z);
    double dk = mind(kx * px + ky * py, 0.0);
    px -= 2.0 * dk * kx;
    py -= 2.0 * dk * ky;
    double cx = clampd(px, -kz * ha, kz * ha);
    double dx = sqrt((px - cx) * (px - cx) + (py - ha) * (py - ha)) * (py - ha < 0 ? -1.0 : 1.0);
    double dz = pz - hh;
    double ox = maxd(dx, 0), oz = maxd(dz, 0);
    return mind(maxd(dx, dz), 0.0) + sqrt(ox * ox + oz * oz);
}

/* Stud layout of the toy brick: 2 x 3 studs on the top face. */
static const double BRICK_STUD_X[3] = {-0.46, 0.0, 0.46};
static const double BRICK_STUD_Y[2] = {-0.2, 0.2};

/* The defect-free object. Objects stand on z = 0 and are centred on the z axis. */
static double sdf_base(int cat, v3 p) {
    switch (cat) {
    case CAT_BRICK: {
        double d = sd_round_box(v3_sub(p, v3_make(0, 0, 0.28)), v3_make(0.72, 0.44, 0.28), 0.035);
        /* Studs: nearest stud column/row only (the grid is regular). */
        double sx = p.x < -0.23 ? BRICK_STUD_X[0] : (p.x > 0.23 ? BRICK_STUD_X[2] : BRICK_STUD_X[1]);
        double sy = p.y < 0 ? BRICK_STUD_Y[0] : BRICK_STUD_Y[1];
        double rho = len2(p.x - sx, p.y - sy);
        double stud = sd_round_rect(rho, p.z - 0.58, 0.13, 0.07, 0.015);
        /* sd_round_rect takes |qx|: rho >= 0, so the profile is a solid disc. */
        return mind(d, stud);
    }
    case CAT_CAP: {
        double rho = len2(p.x, p.y);
        /* Knurled rim: 40 ridges; a small radial modulation keeps the SDF near Lipschitz 1. */
        double ridge = rho > 0.5 ? 0.012 * cos(40.0 * atan2(p.y, p.x)) * smoothstep(0.5, 0.62, rho) : 0.0;
        return sd_round_rect(rho - ridge, p.z - 0.24, 0.68, 0.24, 0.05);
    }
    case CAT_TAPE: {
        double rho = len2(p.x, p.y);
        return sd_round_rect(rho - 0.57, p.z - 0.21, 0.18, 0.21, 0.02);
    }
    case CAT_PILL:
        return sd_capsule(p, v3_make(-0.5, 0, 0.3), v3_make(0.5, 0, 0.3), 0.3);
    case CAT_BEADS: {
        double d = sd_capsule(p, v3_make(-0.88, 0, 0.3), v3_make(0.88, 0, 0.3), 0.035);
        for (int i = -1; i <= 1; i++) d = mind(d, sd_sphere(p, v3_make(0.6 * i, 0, 0.3), 0.3));
        return d;
    }
    case CAT_ERASER: {
        double d = sd_round_box(v3_sub(p, v3_make(0, 0, 0.17)), v3_make(0.7, 0.34, 0.17), 0.05);
        double sleeve = sd_round_box(v3_sub(p, v3_make(0.05, 0, 0.175)), v3_make(0.32, 0.35, 0.175), 0.012);
        return mind(d, sleeve);
    }
    case CAT_BATTERY: {
        double rho = len2(p.x, p.y);
        double d = sd_round_rect(rho, p.z - 0.11, 0.7, 0.11, 0.04);
        double top = sd_round_rect(rho, p.z - 0.125, 0.52, 0.125, 0.015);
        return mind(d, top);
    }
    case CAT_NUT: {
        double hex = sd_hex_prism(v3_sub(p, v3_make(0, 0, 0.2)), 0.5, 0.18) - 0.02;
        double hole = 0.27 - len2(p.x, p.y);
        return maxd(hex, hole);
    }
    }
    return 1e9;
}

/* --------------------------------------------------------------- scenes */

typedef struct {
    double K[9], R[9], t[3];
    v3 centre;   /* camera centre in world coordinates, = -R^T t */
    double f, cx, cy;
    double gain; /* fixed per-camera exposure difference, as in a real rig */
} camera;

typedef struct {
    int cat, kind;
    uint64_t salt; /* texture salt of the category */
    /* object pose: p_obj = Rz(-yaw) (p_world - shift) */
    double cy, sy, shx, shy;
    v3 light;      /* unit, towards the light (world) */
    double ambient, diffuse;
    double tint[3];
    v3 bound_c;    /* object coords */
    double bound_r;
    double hit_eps_per_t; /* surface hit tolerance per unit distance: a fraction of a pixel */
    double step;          /* sphere-tracing step factor: 1 for exact distance bounds */
    /* defect frame, object coordinates */
    v3 dc, dn, dt1, dt2;
    double r, len, width, amp, curve;
    v3 ca, cb; double cr;  /* carve capsule (ca == cb for a sphere) */
    v3 fc; double fr; int fbox; double fcol[3];
    double dcol[3];        /* spot colour */
    uint64_t dsalt;
} scene;

static v3 world_to_obj(const scene *s, v3 p) {
    double x = p.x - s->shx, y = p.y - s->shy;
    return v3_make(s->cy * x + s->sy * y, -s->sy * x + s->cy * y, p.z);
}
static v3 dir_world_to_obj(const scene *s, v3 d) {
    return v3_make(s->cy * d.x + s->sy * d.y, -s->sy * d.x + s->cy * d.y, d.z);
}
static v3 dir_obj_to_world(const scene *s, v3 d) {
    return v3_make(s->cy * d.x - s->sy * d.y, s->sy * d.x + s->cy * d.y, d.z);
}

static bool kind_is_carve(int k) { return k == MVD_SYNTH_PIT || k == MVD_SYNTH_GROOVE || k == MVD_SYNTH_CHUNK; }

/* Tangent-plane coordinates of p around the defect centre: (u, w) along
 * dt1/dt2, h along the normal. */
static void defect_local(const scene *s, v3 p, double *u, double *w, double *h) {
    v3 q = v3_sub(p, s->dc);
    *u = v3_dot(q, s->dt1);
    *w = v3_dot(q, s->dt2);
    *h = v3_dot(q, s->dn);
}

static double bulge_height(const scene *s, v3 p) {
    double u, w, h;
    defect_local(s, p, &u, &w, &h);
    double rr = (u * u + w * w) / (s->r * s->r);
    if (rr >= 1.0) return 0.0;
    double fall = 1.0 - rr;
    /* Fade out away from the surface so the bulge cannot reach the far side. */
    return s->amp * fall * fall * (1.0 - smoothstep(0.2, 0.3, fabs(h)));
}

static double sdf_carve(const scene *s, v3 p) {
    if (s->kind != MVD_SYNTH_GROOVE) return sd_sphere(p, s->ca, s->cr); /* pit, chunk */
    return sd_capsule(p, s->ca, s->cb, s->cr);
}

static double sdf_foreign(const scene *s, v3 p) {
    if (!s->fbox) return sd_sphere(p, s->fc, s->fr);
    /* Box aligned with the defect frame. */
    v3 q = v3_sub(p, s->fc);
    v3 l = v3_make(v3_dot(q, s->dt1), v3_dot(q, s->dt2), v3_dot(q, s->dn));
    return sd_round_box(l, v3_make(s->fr, s->fr * 0.7, s->fr * 0.6), 0.01);
}

enum { PART_BASE = 0, PART_CARVE = 1, PART_FOREIGN = 2 };

/* The object with its defect (with_defect) or without. part: which term is nearest. */
static double sdf_scene(const scene *s, v3 p, bool with_defect, int *part) {
    double d = sdf_base(s->cat, p);
    int pt = PART_BASE;
    if (with_defect) {
        if (s->kind == MVD_SYNTH_BULGE) d -= bulge_height(s, p);
        if (kind_is_carve(s->kind)) {
            double c = -sdf_carve(s, p);
            if (c > d) { d = c; pt = PART_CARVE; }
        }
        if (s->kind == MVD_SYNTH_FOREIGN) {
            double f = sdf_foreign(s, p);
            if (f < d) { d = f; pt = PART_FOREIGN; }
        }
    }
    if (part) *part = pt;
    return d;
}

static v3 sdf_normal(const scene *s, v3 p, bool with_defect) {
    /* Tetrahedron differences: 4 evaluations. */
    const double e = 4e-4;
    double a = sdf_scene(s, v3_make(p.x + e, p.y - e, p.z - e), with_defect, NULL);
    double b = sdf_scene(s, v3_make(p.x - e, p.y - e, p.z + e), with_defect, NULL);
    double c = sdf_scene(s, v3_make(p.x - e, p.y + e, p.z - e), with_defect, NULL);
    double d = sdf_scene(s, v3_make(p.x + e, p.y + e, p.z + e), with_defect, NULL);
    return v3_norm(v3_make(a - b - c + d, -a - b + c + d, -a + b - c + d));
}

/* Ray (object coords, unit rd) against a sphere: entry/exit parameters. */
static bool ray_sphere(v3 ro, v3 rd, v3 c, double r, double *t0, double *t1) {
    v3 oc = v3_sub(ro, c);
    double b = v3_dot(oc, rd), cc = v3_dot(oc, oc) - r * r;
    double disc = b * b - cc;
    if (disc < 0) return false;
    double sq = sqrt(disc);
    *t0 = -b - sq;
    *t1 = -b + sq;
    return *t1 > 0;
}

/* Sphere tracing inside the bounding sphere, up to t_max (the table). The
 * step factor < 1 covers the terms that are not exact distances (ridges, bulge). */
static bool march(const scene *s, v3 ro, v3 rd, bool with_defect, double t_max, double *t_hit) {
    double t0, t1;
    if (!ray_sphere(ro, rd, s->bound_c, s->bound_r, &t0, &t1)) return false;
    double t = maxd(t0, 0.0), tp = t, dp = -1.0;
    t1 = mind(t1, t_max);
    for (int i = 0; i < 200 && t < t1; i++) {
        double d = sdf_scene(s, v3_add(ro, v3_scale(rd, t)), with_defect, NULL);
        if (d < maxd(2e-5, s->hit_eps_per_t * t)) {
            /* Secant refinement to the root itself, so the hit (and so its
             * colour) does not depend on the step history: a render with a
             * defect matches the one without it away from the defect. */
            double ta = tp, da = dp, tb = t, db = d;
            for (int k = 0; k < 8 && da > 0.0 && fabs(db) > 1e-12 && da != db; k++) {
                double tn = tb - db * (tb - ta) / (db - da);
                if (!(tn >= tp - 1e-6 && tn <= t + 0.05)) break;
                ta = tb; da = db;
                tb = tn;
                db = sdf_scene(s, v3_add(ro, v3_scale(rd, tb)), with_defect, NULL);
            }
            *t_hit = tb;
            return true;
        }
        tp = t;
        dp = d;
        t += s->step * d;
    }
    return false;
}

/* ------------------------------------------------------------- textures */

static void rgb_set(double c[3], double r, double g, double b) { c[0] = r; c[1] = g; c[2] = b; }
static void rgb_mix(double c[3], const double d[3], double w) {
    for (int k = 0; k < 3; k++) c[k] = mixd(c[k], d[k], w);
}
static void rgb_mul(double c[3], double s) { for (int k = 0; k < 3; k++) c[k] *= s; }

/* Printed bar code along u in [0, 1): 1 on a dark bar. Bars are hashed cells. */
static int barcode(double u, uint64_t salt) {
    if (u < 0 || u >= 1) return 0;
    int cell = (int)(u * 40.0);
    uint64_t h = hash4((uint64_t)cell, salt, 7, 7);
    return (cell & 1) == 0 ? (h & 3) != 0 : (h & 7) == 0;
}

/* Albedo (and specular strength) of the defect-free object at p with normal n, object coords. */
static void albedo_base(const scene *s, v3 p, v3 n, double c[3], double *spec) {
    uint64_t salt = s->salt;
    double grain = fbm(v3_scale(p, 9.0), 3, salt) - 0.5;
    *spec = 0.25;
    switch (s->cat) {
    case CAT_BRICK: {
        rgb_set(c, 0.80, 0.13, 0.10);
        rgb_mul(c, 1.0 + 0.10 * grain);
        if (n.y < -0.8 && fabs(p.x) < 0.48 && p.z > 0.08 && p.z < 0.46) {
            /* White label with a bar code on the -y face. */
            rgb_set(c, 0.92, 0.91, 0.86);
            if (p.z > 0.14 && p.z < 0.30 && barcode((p.x + 0.40) / 0.80, salt)) rgb_set(c, 0.08, 0.08, 0.09);
            if (p.z > 0.34 && p.z < 0.41 && fabs(p.x) < 0.3) rgb_set(c, 0.15, 0.25, 0.70);
        } else if (n.y > 0.8 && p.z > 0.22 && p.z < 0.34) {
            rgb_set(c, 0.95, 0.80, 0.10); /* yellow stripe on the +y face */
        }
        if (n.z > 0.8 && p.z > 0.64) {
            /* Embossed ring on each stud top. */
            double sx = p.x < -0.23 ? BRICK_STUD_X[0] : (p.x > 0.23 ? BRICK_STUD_X[2] : BRICK_STUD_X[1]);
            double sy = p.y < 0 ? BRICK_STUD_Y[0] : BRICK_STUD_Y[1];
            double rho = len2(p.x - sx, p.y - sy);
            if (rho > 0.055 && rho < 0.08) rgb_mul(c, 0.7);
        }
        *spec = 0.45;
        break;
    }
    case CAT_CAP: {
        double rho = len2(p.x, p.y), theta = atan2(p.y, p.x);
        rgb_set(c, 0.12, 0.32, 0.78);
        rgb_mul(c, 1.0 + 0.08 * grain);
        if (n.z > 0.7) {
            if (rho > 0.36 && rho < 0.52) {
                rgb_set(c, 0.93, 0.93, 0.90);
                double a = (theta + M_PI) / (2 * M_PI);
                if (rho > 0.40 && rho < 0.48 && barcode(fracd(a * 2.0), salt + 1)) rgb_set(c, 0.10, 0.12, 0.2);
            } else if (rho < 0.24) {
                int chk = ((int)floor((p.x + 1.0) / 0.11) + (int)floor((p.y + 1.0) / 0.11)) & 1;
                if (chk) rgb_set(c, 0.96, 0.78, 0.12);
                else rgb_set(c, 0.95, 0.95, 0.93);
            }
        } else if (n.z > -0.3 && p.z > 0.06) {
            /* Side: alternate ridge shading is geometric; add a printed band. */
            if (p.z > 0.18 && p.z < 0.26) rgb_set(c, 0.90, 0.90, 0.92);
        }
        *spec = 0.5;
        break;
    }
    case CAT_TAPE: {
        double rho = len2(p.x, p.y), theta = atan2(p.y, p.x);
        if (rho < 0.41) {
            rgb_set(c, 0.55, 0.40, 0.25); /* cardboard core */
            rgb_mul(c, 1.0 + 0.25 * grain);
            *spec = 0.05;
        } else if (n.z > 0.7 || n.z < -0.7) {
            /* Layers of tape seen edge-on: rings. */
            double ring = 0.5 + 0.5 * cos(2 * M_PI * rho / 0.045);
            rgb_set(c, 0.86, 0.70, 0.30);
            rgb_mul(c, 0.85 + 0.15 * ring);
            *spec = 0.2;
        } else {
            /* Outer wrap: printed diagonal stripes and a logo band. */
            double u = theta * 0.74 + p.z;
            rgb_set(c, 0.93, 0.76, 0.32);
            if (fracd(u / 0.16) < 0.35) rgb_set(c, 0.80, 0.35, 0.12);
            if (p.z > 0.15 && p.z < 0.27 && fabs(theta - 0.8) < 0.5) {
                rgb_set(c, 0.95, 0.95, 0.95);
                if (barcode((theta - 0.3) / 1.0, salt + 2)) rgb_set(c, 0.1, 0.1, 0.1);
            }
            rgb_mul(c, 1.0 + 0.06 * grain);
            *spec = 0.35;
        }
        break;
    }
    case CAT_PILL: {
        if (p.x < 0) rgb_set(c, 0.93, 0.92, 0.88);
        else rgb_set(c, 0.10, 0.55, 0.55);
        if (fabs(p.x) < 0.015) rgb_set(c, 0.5, 0.6, 0.6); /* seam */
        if (p.x < -0.12 && p.x > -0.52 && fabs(p.y) < 0.09 && p.z > 0.4 &&
            barcode((p.x + 0.52) / 0.40, salt + 3))
            rgb_set(c, 0.15, 0.15, 0.18); /* imprint */
        if (p.x > 0.15 && p.x < 0.45 && fabs(p.y) < 0.07 && p.z > 0.45) rgb_set(c, 0.95, 0.95, 0.9);
        rgb_mul(c, 1.0 + 0.05 * grain);
        *spec = 0.6;
        break;
    }
    case CAT_BEADS: {
        int bead = (int)floor((p.x + 0.9) / 0.6);
        double bx = -0.6 + 0.6 * (bead < 0 ? 0 : (bead > 2 ? 2 : bead));
        double rho = len2(p.y, p.z - 0.3);
        if (rho < 0.05 && fabs(p.x - bx) > 0.26) {
            rgb_set(c, 0.70, 0.10, 0.12); /* string */
            *spec = 0.1;
            break;
        }
        /* Wood: rings around the bead's drill axis (x), warped by noise. */
        double warp = fbm(v3_scale(p, 3.0), 3, salt + 5);
        double rings = fracd(rho * 14.0 + 3.0 * warp + 0.3 * bead);
        double tone = 0.5 + 0.5 * sin(2 * M_PI * rings);
        static const double wood[3][3] = {{0.72, 0.50, 0.28}, {0.62, 0.40, 0.22}, {0.78, 0.58, 0.36}};
        int b = bead < 0 ? 0 : (bead > 2 ? 2 : bead);
        rgb_set(c, wood[b][0], wood[b][1], wood[b][2]);
        rgb_mul(c, 0.8 + 0.25 * tone);
        *spec = 0.15;
        break;
    }
    case CAT_ERASER: {
        bool sleeve = p.x > -0.275 && p.x < 0.375 && (fabs(p.y) > 0.338 || p.z > 0.338 || p.z < 0.012);
        if (sleeve) {
            rgb_set(c, 0.15, 0.35, 0.80);
            if (fracd((p.x + p.y * 0.7 + p.z) / 0.12) < 0.3) rgb_set(c, 0.92, 0.93, 0.96);
            if (n.z > 0.8 && fabs(p.y) < 0.22 && p.x > -0.2 && p.x < 0.3) {
                rgb_set(c, 0.95, 0.95, 0.95);
                if (fabs(p.y) < 0.16 && barcode((p.x + 0.18) / 0.46, salt + 6)) rgb_set(c, 0.05, 0.05, 0.08);
            }
            *spec = 0.3;
        } else {
            rgb_set(c, 0.93, 0.91, 0.86);
            rgb_mul(c, 1.0 + 0.12 * grain);
            *spec = 0.08;
        }
        break;
    }
    case CAT_BATTERY: {
        double rho = len2(p.x, p.y), theta = atan2(p.y, p.x);
        double brushed = vnoise(v3_make(rho * 60.0, 0.3, 0.7), salt + 8) - 0.5;
        rgb_set(c, 0.70, 0.72, 0.74);
        rgb_mul(c, 1.0 + 0.10 * brushed + 0.04 * grain);
        if (n.z > 0.8 && rho < 0.5) {
            /* "+" sign and a printed code line. */
            if ((fabs(p.x + 0.18) < 0.11 && fabs(p.y) < 0.03) || (fabs(p.y) < 0.11 && fabs(p.x + 0.18) < 0.03))
                rgb_set(c, 0.2, 0.2, 0.22);
            if (p.x > 0.02 && p.x < 0.38 && fabs(p.y - 0.05) < 0.04 && barcode((p.x - 0.02) / 0.36, salt + 9))
                rgb_set(c, 0.25, 0.25, 0.28);
            if (rho > 0.44) rgb_mul(c, 0.85);
        }
        if (n.z < 0.5 && fabs(sin(theta * 3)) < 0.05) rgb_mul(c, 0.8);
        *spec = 0.9;
        break;
    }
    case CAT_NUT: {
        rgb_set(c, 0.90, 0.87, 0.78);
        rgb_mul(c, 1.0 + 0.10 * grain);
        if (len2(p.x, p.y) < 0.285) rgb_mul(c, 0.8); /* thread inside the hole */
        if (n.z < 0.5 && n.z > -0.5) {
            /* Moulding marks differ per face; one face carries a stamped code. */
            double face = atan2(n.y, n.x);
            rgb_mul(c, 0.95 + 0.05 * cos(3.0 * face));
            if (n.x > 0.95 && fabs(p.y) < 0.18 && p.z > 0.12 && p.z < 0.28 && barcode((p.y + 0.18) / 0.36, salt + 10))
                rgb_mul(c, 0.45);
        }
        if (n.z > 0.8) {
            double rho = len2(p.x, p.y);
            if (rho > 0.34 && rho < 0.37) rgb_mul(c, 0.85);
        }
        *spec = 0.3;
        break;
    }
    }
    for (int k = 0; k < 3; k++) c[k] *= s->tint[k];
}

/* Table cloth: grey-green mat with a faint grid (as on a cutting mat) and noise. */
static void albedo_table(double x, double y, double c[3]) {
    double n = fbm(v3_make(x * 4.0, y * 4.0, 0.5), 3, 0x7ab1e);
    rgb_set(c, 0.38, 0.44, 0.40);
    rgb_mul(c, 0.85 + 0.3 * n);
    double gx = fabs(fracd(x / 0.5 + 0.5) - 0.5) * 0.5, gy = fabs(fracd(y / 0.5 + 0.5) - 0.5) * 0.5;
    if (gx < 0.012 || gy < 0.012) rgb_mul(c, 1.35);
    double gx2 = fabs(fracd(x / 0.1 + 0.5) - 0.5) * 0.1, gy2 = fabs(fracd(y / 0.1 + 0.5) - 0.5) * 0.1;
    if (gx2 < 0.003 || gy2 < 0.003) rgb_mul(c, 1.12);
}

/* ----------------------------------------------------- defect colouring */

/* Colour defects: true when p (object coords, normal n) lies in the region. */
static bool colour_region(const scene *s, v3 p, v3 n) {
    if (v3_dot(n, s->dn) < 0.3) return false;
    double u, w, h;
    defect_local(s, p, &u, &w, &h);
    if (fabs(h) > 0.15) return false;
    switch (s->kind) {
    case MVD_SYNTH_SPOT: {
        double rho = len2(u, w);
        if (rho > s->r * 1.3) return false;
        double edge = s->r * (0.72 + 0.55 * vnoise(v3_make(u * 14.0, w * 14.0, 0.5), s->dsalt));
        return rho < edge;
    }
    case MVD_SYNTH_ABRASION: {
        double e = (u / s->r) * (u / s->r) + (w / (0.6 * s->r)) * (w / (0.6 * s->r));
        return e < 0.75 + 0.5 * vnoise(v3_make(u * 12.0, w * 12.0, 1.5), s->dsalt);
    }
    case MVD_SYNTH_SCRATCH: {
        double half = 0.5 * s->len;
        if (fabs(u) > half) return false;
        double wc = s->curve * (u * u - half * half) / s->len;
        double slope = 2.0 * s->curve * u / s->len;
        double dist = fabs(w - wc) / sqrt(1.0 + slope * slope);
        double taper = 1.0 - pow(fabs(u) / half, 4.0);
        return dist < s->width * (0.35 + 0.65 * taper);
    }
    }
    return false;
}

/* Whether the hit at p (object coords, normal n, part) is part of the defect. */
static bool defect_hit(const scene *s, v3 p, v3 n, int part) {
    switch (s->kind) {
    case MVD_SYNTH_SPOT:
    case MVD_SYNTH_ABRASION:
    case MVD_SYNTH_SCRATCH:
        return part == PART_BASE && colour_region(s, p, n);
    case MVD_SYNTH_PIT:
    case MVD_SYNTH_GROOVE:
    case MVD_SYNTH_CHUNK:
        return part == PART_CARVE;
    case MVD_SYNTH_FOREIGN:
        return part == PART_FOREIGN;
    case MVD_SYNTH_BULGE: {
        double u, w, h;
        defect_local(s, p, &u, &w, &h);
        /* The whole footprint: even its rim tilts the normals. */
        return part == PART_BASE && bulge_height(s, p) > 0.0;
    }
    }
    return false;
}

/* Albedo at an object hit, defect applied. */
static void albedo_object(const scene *s, v3 p, v3 n, int part, bool with_defect, double c[3], double *spec) {
    if (with_defect && part == PART_FOREIGN) {
        for (int k = 0; k < 3; k++) c[k] = s->fcol[k];
        *spec = 0.5;
        return;
    }
    albedo_base(s, p, n, c, spec);
    if (!with_defect) return;
    if (part == PART_CARVE) {
        double g = fbm(v3_scale(p, 25.0), 2, s->dsalt);
        if (s->kind == MVD_SYNTH_CHUNK) {
            /* Fracture surface: raw material, lighter and rough. */
            double raw[3] = {0.62, 0.60, 0.56};
            rgb_mix(c, raw, 0.4);
            rgb_mul(c, 0.8 + 0.4 * g);
        } else {
            rgb_mul(c, (s->kind == MVD_SYNTH_PIT ? 0.55 : 0.4) * (0.8 + 0.4 * g));
        }
        *spec *= 0.3;
        return;
    }
    if (part == PART_BASE && colour_region(s, p, n)) {
        switch (s->kind) {
        case MVD_SYNTH_SPOT: {
            double a = 0.75 + 0.2 * vnoise(v3_scale(p, 30.0), s->dsalt + 1);
            rgb_mix(c, s->dcol, a);
            *spec *= 0.5;
            break;
        }
        case MVD_SYNTH_ABRASION: {
            double g = vnoise(v3_scale(p, 90.0), s->dsalt + 2);
            double scuff[3] = {0.80, 0.80, 0.78};
            rgb_mix(c, scuff, 0.55);
            rgb_mul(c, 0.85 + 0.35 * g);
            *spec *= 0.2;
            break;
        }
        case MVD_SYNTH_SCRATCH: {
            double lum = 0.3 * c[0] + 0.59 * c[1] + 0.11 * c[2];
            double mark[3];
            if (lum > 0.55) rgb_set(mark, 0.22, 0.22, 0.24);
            else rgb_set(mark, 0.96, 0.96, 0.93);
            rgb_mix(c, mark, 0.85);
            break;
        }
        }
    }
}

/* ------------------------------------------------------------- cameras */

#define SYNTH_CAM_DIST 5.0
#define SYNTH_ELEVATION_DEG 45.0
#define SYNTH_HALF_FOV_DEG 13.0
static const v3 SYNTH_TARGET = {0.0, 0.0, 0.3};

static void make_camera(int v, int size, camera *c) {
    double f = 0.5 * size / tan(SYNTH_HALF_FOV_DEG * M_PI / 180.0);
    v3 x_c, y_c, z_c, centre;
    if (v == 0) {
        /* Top view: image right = world +x, image down = world -y. */
        centre = v3_add(SYNTH_TARGET, v3_make(0, 0, SYNTH_CAM_DIST));
        z_c = v3_make(0, 0, -1);
        y_c = v3_make(0, -1, 0);
        x_c = v3_cross(y_c, z_c);
    } else {
        /* Side views at 45 degrees elevation; azimuths 0, 90, 180, 270 for
         * C2..C5, and evenly between them for more than 5 views. */
        int n_side = 4;
        double az = 2.0 * M_PI * (double)(v - 1) / n_side;
        double el = SYNTH_ELEVATION_DEG * M_PI / 180.0;
        if (v > 4) { az = 2.0 * M_PI * ((double)(v - 5) + 0.5) / n_side; el = 30.0 * M_PI / 180.0; }
        centre = v3_add(SYNTH_TARGET, v3_scale(v3_make(cos(el) * cos(az), cos(el) * sin(az), sin(el)),
                                               SYNTH_CAM_DIST));
        z_c = v3_norm(v3_sub(SYNTH_TARGET, centre));
        x_c = v3_norm(v3_cross(z_c, v3_make(0, 0, 1)));
        y_c = v3_cross(z_c, x_c);
    }
    double R[9] = {x_c.x, x_c.y, x_c.z, y_c.x, y_c.y, y_c.z, z_c.x, z_c.y, z_c.z};
    memcpy(c->R, R, sizeof R);
    for (int i = 0; i < 3; i++)
        c->t[i] = -(R[3 * i] * centre.x + R[3 * i + 1] * centre.y + R[3 * i + 2] * centre.z);
    c->centre = centre;
    c->f = f;
    c->cx = 0.5 * size;
    c->cy = 0.5 * size;
    double K[9] = {f, 0, c->cx, 0, f, c->cy, 0, 0, 1};
    memcpy(c->K, K, sizeof K);
    static const double gains[MVD_SYNTH_MAX_VIEWS] = {1.0, 0.97, 1.03, 0.99, 1.01, 0.98, 1.02, 1.0};
    c->gain = gains[v];
}

static int check_view_opts(const mvd_synth_opts *o) {
    if (!o) return mv_error("synth: options are NULL");
    if (o->views < 1 || o->views > MVD_SYNTH_MAX_VIEWS)
        return mv_error("synth: option 'views' = %d: expected 1..%d", o->views, MVD_SYNTH_MAX_VIEWS);
    if (o->size < 32 || o->size > 4096)
        return mv_error("synth: option 'size' = %d: expected 32..4096 pixels", o->size);
    return 0;
}

int mvd_synth_cameras(const mvd_synth_opts *o, double *K, double *R, double *t) {
    if (check_view_opts(o)) return -1;
    for (int v = 0; v < o->views; v++) {
        camera c;
        make_camera(v, o->size, &c);
        if (K) memcpy(K + 9 * v, c.K, sizeof c.K);
        if (R) memcpy(R + 9 * v, c.R, sizeof c.R);
        if (t) memcpy(t + 3 * v, c.t, sizeof c.t);
    }
    return 0;
}

int mvd_synth_project(const mvd_synth_opts *o, int v, const double X[3], double p[2]) {
    if (!o || v < 0 || v >= o->views || v >= MVD_SYNTH_MAX_VIEWS) return -1;
    camera c;
    make_camera(v, o->size, &c);
    double xc[3];
    for (int i = 0; i < 3; i++) xc[i] = c.R[3 * i] * X[0] + c.R[3 * i + 1] * X[1] + c.R[3 * i + 2] * X[2] + c.t[i];
    p[0] = c.f * xc[0] / xc[2] + c.cx;
    p[1] = c.f * xc[1] / xc[2] + c.cy;
    return xc[2] > 0 ? 1 : 0;
}

/* ------------------------------------------------------- scene set-up */

enum { STREAM_POSE = 1, STREAM_DEFECT = 2, STREAM_PIXEL = 3 };

/* Moves p onto the surface of the defect-free object (a few Newton steps). */
static v3 project_to_surface(const scene *s, v3 p) {
    for (int i = 0; i < 40; i++) {
        double d = sdf_base(s->cat, p);
        if (fabs(d) < 1e-7) break;
        v3 n = sdf_normal(s, p, false);
        p = v3_sub(p, v3_scale(n, d));
    }
    return p;
}

static void build_scene(const mvd_synth_opts *o, int cat, int sample_id, int kind, scene *s) {
    memset(s, 0, sizeof *s);
    s->cat = cat;
    s->kind = kind;
    s->salt = hash4(0x5eed, (uint64_t)cat, 0, 0);
    s->bound_c = CATS[cat].bound_c;
    /* Room for a bulge or a foreign body. The bound and the step are the same
     * with and without a defect, so rays that miss the defect march the same. */
    s->bound_r = CATS[cat].bound_r + 0.2;
    s->step = cat == CAT_CAP ? 0.85 : 0.92;
    s->hit_eps_per_t = 0.05 * tan(SYNTH_HALF_FOV_DEG * M_PI / 180.0) / (0.5 * o->size);

    /* Pose, light and colour jitter: only (seed, category, sample). */
    rng_t r = {hash4(o->seed, (uint64_t)cat, (uint64_t)sample_id, STREAM_POSE), 0};
    double yaw = rng_uniform(&r, -5.0, 5.0) * M_PI / 180.0;
    s->cy = cos(yaw);
    s->sy = sin(yaw);
    s->shx = rng_uniform(&r, -0.05, 0.05);
    s->shy = rng_uniform(&r, -0.05, 0.05);
    double laz = (235.0 + rng_uniform(&r, -10.0, 10.0)) * M_PI / 180.0;
    double lel = (62.0 + rng_uniform(&r, -6.0, 6.0)) * M_PI / 180.0;
    s->light = v3_make(cos(lel) * cos(laz), cos(lel) * sin(laz), sin(lel));
    s->ambient = rng_uniform(&r, 0.33, 0.39);
    s->diffuse = rng_uniform(&r, 0.66, 0.74);
    for (int k = 0; k < 3; k++) s->tint[k] = rng_uniform(&r, 0.97, 1.03);

    if (kind == MVD_SYNTH_NONE) return;

    /* Defect: (seed, category, sample, kind). */
    rng_t d = {hash4(o->seed ^ 0xdefec7ULL, (uint64_t)cat, (uint64_t)sample_id, STREAM_DEFECT + 16 * (uint64_t)kind), 0};
    s->dsalt = hash4(o->seed, (uint64_t)cat, (uint64_t)sample_id, 99);
    v3 pc = CATS[cat].bound_c;
    v3 best = pc, best_n = v3_make(0, 0, 1);
    for (int tries = 0; tries < 64; tries++) {
        /* Upper directions only, so most defects are seen by C1 and some side views. */
        double z = rng_uniform(&d, 0.1, 1.0);
        double phi = rng_uniform(&d, 0.0, 2 * M_PI);
        double rxy = sqrt(1.0 - z * z);
        v3 dir = v3_make(rxy * cos(phi), rxy * sin(phi), z);
        v3 p = project_to_surface(s, v3_add(pc, v3_scale(dir, CATS[cat].bound_r)));
        v3 n = sdf_normal(s, p, false);
        best = p;
        best_n = n;
        if (fabs(sdf_base(cat, p)) < 1e-4 && p.z > 0.07 && n.z > -0.2) break;
    }
    s->dc = best;
    s->dn = best_n;
    v3 a = fabs(s->dn.z) < 0.9 ? v3_make(0, 0, 1) : v3_make(1, 0, 0);
    v3 t1 = v3_norm(v3_cross(s->dn, a));
    v3 t2 = v3_cross(s->dn, t1);
    double ang = rng_uniform(&d, 0.0, M_PI);
    s->dt1 = v3_add(v3_scale(t1, cos(ang)), v3_scale(t2, sin(ang)));
    s->dt2 = v3_cross(s->dn, s->dt1);

    switch (kind) {
    case MVD_SYNTH_SPOT: {
        s->r = rng_uniform(&d, 0.07, 0.16);
        static const double cols[3][3] = {{0.10, 0.08, 0.06}, {0.30, 0.22, 0.08}, {0.05, 0.05, 0.05}};
        int k = rng_int(&d, 3);
        rgb_set(s->dcol, cols[k][0], cols[k][1], cols[k][2]);
        break;
    }
    case MVD_SYNTH_ABRASION:
        s->r = rng_uniform(&d, 0.12, 0.22);
        break;
    case MVD_SYNTH_SCRATCH:
        s->len = rng_uniform(&d, 0.28, 0.55);
        s->width = rng_uniform(&d, 0.012, 0.024);
        s->curve = rng_uniform(&d, -0.35, 0.35);
        break;
    case MVD_SYNTH_PIT: {
        s->cr = rng_uniform(&d, 0.07, 0.12);
        s->ca = s->cb = v3_add(s->dc, v3_scale(s->dn, 0.5 * s->cr));
        break;
    }
    case MVD_SYNTH_GROOVE: {
        double len = rng_uniform(&d, 0.22, 0.42);
        s->cr = rng_uniform(&d, 0.028, 0.045);
        v3 mid = v3_add(s->dc, v3_scale(s->dn, 0.25 * s->cr));
        s->ca = v3_sub(mid, v3_scale(s->dt1, 0.5 * len));
        s->cb = v3_add(mid, v3_scale(s->dt1, 0.5 * len));
        break;
    }
    case MVD_SYNTH_CHUNK: {
        s->cr = rng_uniform(&d, 0.14, 0.22);
        s->ca = s->cb = v3_add(s->dc, v3_scale(s->dn, 0.3 * s->cr));
        break;
    }
    case MVD_SYNTH_FOREIGN: {
        s->fbox = rng_int(&d, 2);
        s->fr = rng_uniform(&d, 0.05, 0.085);
        s->fc = v3_add(s->dc, v3_scale(s->dn, 0.45 * s->fr));
        static const double cols[4][3] = {{0.06, 0.06, 0.07}, {0.62, 0.63, 0.68}, {0.20, 0.62, 0.22}, {0.95, 0.55, 0.05}};
        int k = rng_int(&d, 4);
        rgb_set(s->fcol, cols[k][0], cols[k][1], cols[k][2]);
        break;
    }
    case MVD_SYNTH_BULGE:
        s->r = rng_uniform(&d, 0.15, 0.24);
        s->amp = rng_uniform(&d, 0.06, 0.10);
        break;
    }
}

/* --------------------------------------------------------------- shading */

typedef struct {
    int what;      /* MVD_SYNTH_HIT_* */
    double t;
    v3 p_world;
    bool defect;   /* the hit belongs to the defect */
    double rgb[3]; /* shaded colour, 0..1 */
} ray_result;

/* Soft shadow of the (defect-free) object on the table: the light is a disc,
 * so the penumbra comes from how close the shadow ray passes to the object. */
static double table_shadow(const scene *s, v3 p_world) {
    v3 ro = world_to_obj(s, p_world), rd = dir_world_to_obj(s, s->light);
    double t0, t1;
    if (!ray_sphere(ro, rd, s->bound_c, s->bound_r, &t0, &t1)) return 1.0;
    double res = 1.0, t = maxd(t0, 0.01);
    for (int i = 0; i < 48 && t < t1; i++) {
        double d = sdf_base(s->cat, v3_add(ro, v3_scale(rd, t)));
        res = mind(res, 8.0 * d / t);
        if (res < 0.0) break;
        t += maxd(d, 0.015);
    }
    return clampd(res, 0.0, 1.0);
}

static void trace(const scene *s, v3 ro_w, v3 rd_w, bool with_defect, ray_result *out) {
    v3 ro = world_to_obj(s, ro_w), rd = dir_world_to_obj(s, rd_w);
    double t_obj;
    double t_table = rd_w.z < 0 ? -ro_w.z / rd_w.z : INFINITY;
    bool obj = march(s, ro, rd, with_defect, t_table, &t_obj);
    out->defect = false;
    if (obj && t_obj < t_table) {
        v3 p = v3_add(ro, v3_scale(rd, t_obj));
        int part;
        sdf_scene(s, p, with_defect, &part);
        v3 n = sdf_normal(s, p, with_defect);
        double alb[3], spec;
        albedo_object(s, p, n, part, with_defect, alb, &spec);
        if (with_defect && s->kind != MVD_SYNTH_NONE) out->defect = defect_hit(s, p, n, part);
        v3 nw = dir_obj_to_world(s, n);
        double ndl = maxd(0.0, v3_dot(nw, s->light));
        v3 h = v3_norm(v3_sub(s->light, rd_w));
        double sp = spec * pow(maxd(0.0, v3_dot(nw, h)), 40.0);
        double amb = s->ambient * (0.75 + 0.25 * nw.z);
        for (int k = 0; k < 3; k++) out->rgb[k] = alb[k] * (amb + s->diffuse * ndl) + 0.6 * sp;
        out->what = MVD_SYNTH_HIT_OBJECT;
        out->t = t_obj;
        out->p_world = v3_add(ro_w, v3_scale(rd_w, t_obj));
        return;
    }
    if (isfinite(t_table)) {
        v3 p = v3_add(ro_w, v3_scale(rd_w, t_table));
        double alb[3];
        albedo_table(p.x, p.y, alb);
        double vis = table_shadow(s, p);
        /* Ambient is partly occluded near the object too (contact shadow). */
        double lit = s->ambient * (0.7 + 0.3 * vis) + s->diffuse * s->light.z * vis;
        for (int k = 0; k < 3; k++) out->rgb[k] = alb[k] * lit;
        out->what = MVD_SYNTH_HIT_TABLE;
        out->t = t_table;
        out->p_world = p;
        return;
    }
    out->what = MVD_SYNTH_HIT_NOTHING;
    out->t = INFINITY;
    out->p_world = v3_make(NAN, NAN, NAN);
    rgb_set(out->rgb, 0.2, 0.2, 0.2);
}

/* Whether removed material was visible along this ray: the defect-free
 * object's hit lies inside the carve (for a chunk at an edge, the ray may now
 * pass through the gap). */
static bool carve_removed_visible(const scene *s, v3 ro_w, v3 rd_w) {
    v3 ro = world_to_obj(s, ro_w), rd = dir_world_to_obj(s, rd_w);
    v3 mid = v3_scale(v3_add(s->ca, s->cb), 0.5);
    double t0, t1;
    if (!ray_sphere(ro, rd, mid, 0.5 * v3_len(v3_sub(s->cb, s->ca)) + s->cr, &t0, &t1)) return false;
    double t;
    double t_table = rd_w.z < 0 ? -ro_w.z / rd_w.z : INFINITY;
    if (!march(s, ro, rd, false, t_table, &t)) return false;
    return sdf_carve(s, v3_add(ro, v3_scale(rd, t))) < 0.0;
}

static v3 pixel_ray(const camera *c, double x, double y) {
    /* d_cam = ((x - cx)/f, (y - cy)/f, 1), world d = R^T d_cam. */
    double a = (x - c->cx) / c->f, b = (y - c->cy) / c->f;
    const double *R = c->R;
    return v3_norm(v3_make(R[0] * a + R[3] * b + R[6], R[1] * a + R[4] * b + R[7], R[2] * a + R[5] * b + R[8]));
}

static uint8_t to_byte(double v) {
    double q = floor(v * 255.0 + 0.5);
    return (uint8_t)(q < 0 ? 0 : (q > 255 ? 255 : q));
}

/* Contrast between neighbouring centre samples above which a pixel gets 2x2
 * supersampling (about 12 grey levels), so edges and fine print are
 * antialiased while flat regions cost one ray. */
#define SYNTH_AA_CONTRAST (12.0 / 255.0)

/* Renders one view. Pass 1 traces every pixel's centre ray (colour, mask,
 * geometry); pass 2 (supersample == 2) replaces the colour of pixels that
 * differ from a 4-neighbour, or sit on a hit-type boundary, by the mean of a
 * 2x2 grid of rays. Both passes depend only on pass-1 values and per-pixel
 * hashes, so the static row partition never changes the result.
 * rgb: scratch of W*H*3 doubles, kind: W*H bytes. Returns nothing: cannot fail. */
static void render_view(const mvd_synth_opts *o, const scene *s, int view, int sample_key, double *rgb,
                        uint8_t *kind, mvd_image *img, mvd_image *mask, double *xyz, uint8_t *hit) {
    camera cam;
    make_camera(view, o->size, &cam);
    const int W = o->size, H = o->size;
    const bool with_defect = s->kind != MVD_SYNTH_NONE;
    const bool carve = kind_is_carve(s->kind);
    const uint64_t pix_key = hash4(o->seed, (uint64_t)s->cat, (uint64_t)sample_key, STREAM_PIXEL + 16 * (uint64_t)view);
#pragma omp parallel for schedule(static)
    for (int y = 0; y < H; y++) {
        for (int x = 0; x < W; x++) {
            ray_result centre;
            v3 rd = pixel_ray(&cam, x + 0.5, y + 0.5);
            trace(s, cam.centre, rd, with_defect, &centre);
            size_t pix = (size_t)y * W + x;
            for (int k = 0; k < 3; k++) rgb[pix * 3 + k] = centre.rgb[k];
            kind[pix] = (uint8_t)centre.what;
            bool defect = centre.defect;
            if (!defect && carve) defect = carve_removed_visible(s, cam.centre, rd);
            if (mask) mask->data[pix] = defect ? 255 : 0;
            if (xyz) {
                xyz[pix * 3 + 0] = centre.p_world.x;
                xyz[pix * 3 + 1] = centre.p_world.y;
                xyz[pix * 3 + 2] = centre.p_world.z;
            }
            if (hit) hit[pix] = (uint8_t)centre.what;
        }
    }
#pragma omp parallel for schedule(static)
    for (int y = 0; y < H; y++) {
        for (int x = 0; x < W; x++) {
            size_t pix = (size_t)y * W + x;
            double out[3] = {rgb[pix * 3], rgb[pix * 3 + 1], rgb[pix * 3 + 2]};
            if (o->supersample == 2) {
                bool edge = false;
                static const int dx[4] = {-1, 1, 0, 0}, dy[4] = {0, 0, -1, 1};
                for (int e = 0; e < 4 && !edge; e++) {
                    int xx = x + dx[e], yy = y + dy[e];
                    if (xx < 0 || yy < 0 || xx >= W || yy >= H) continue;
                    size_t q = (size_t)yy * W + xx;
                    if (kind[q] != kind[pix]) edge = true;
                    for (int k = 0; k < 3; k++)
                        if (fabs(rgb[q * 3 + k] - rgb[pix * 3 + k]) > SYNTH_AA_CONTRAST) edge = true;
                }
                if (edge) {
                    ray_result sub;
                    out[0] = out[1] = out[2] = 0.0;
                    for (int j = 0; j < 2; j++)
                        for (int i = 0; i < 2; i++) {
                            v3 d = pixel_ray(&cam, x + 0.25 + 0.5 * i, y + 0.25 + 0.5 * j);
                            trace(s, cam.centre, d, with_defect, &sub);
                            for (int k = 0; k < 3; k++) out[k] += 0.25 * sub.rgb[k];
                        }
                }
            }
            uint64_t h = hash4(pix_key, pix, 0, 0);
            for (int k = 0; k < 3; k++) {
                /* Sensor noise: triangular, about +-1.5 grey levels. */
                uint64_t hk = mix64(h + (uint64_t)k);
                double nz = (u01(hk) + u01(mix64(hk ^ 0xabcdefULL)) - 1.0) * 1.5 / 255.0;
                img->data[pix * 3 + k] = to_byte(out[k] * cam.gain + nz);
            }
        }
    }
}

void mvd_synth_render_free(mvd_synth_render *r) {
    if (!r) return;
    for (int v = 0; v < MVD_SYNTH_MAX_VIEWS; v++) {
        mvd_image_free(&r->images[v]);
        mvd_image_free(&r->masks[v]);
    }
    free(r->xyz);
    free(r->hit);
    memset(r, 0, sizeof *r);
}

int mvd_synth_render_sample(const mvd_synth_opts *o, int category, int sample_id, int kind,
                            bool want_geometry, mvd_synth_render *out) {
    if (!out) return mv_error("synth: render output is NULL");
    memset(out, 0, sizeof *out);
    if (check_view_opts(o)) return -1;
    if (o->supersample != 1 && o->supersample != 2)
        return mv_error("synth: option 'supersample' = %d: expected 1 or 2", o->supersample);
    if (category < 0 || category >= N_CATS)
        return mv_error("synth: category %d: expected 0..%d", category, N_CATS - 1);
    if (kind < MVD_SYNTH_NONE || kind >= MVD_SYNTH_N_KINDS)
        return mv_error("synth: defect kind %d: expected -1..%d", kind, MVD_SYNTH_N_KINDS - 1);
    if (sample_id < 1) return mv_error("synth: sample id %d: expected >= 1", sample_id);
    scene s;
    build_scene(o, category, sample_id, kind, &s);
    const int V = o->views, S = o->size;
    out->views = V;
    out->width = S;
    out->height = S;
    if (want_geometry) {
        out->xyz = malloc(sizeof(double) * 3 * (size_t)V * S * S);
        out->hit = malloc((size_t)V * S * S);
        if (!out->xyz || !out->hit) {
            mvd_synth_render_free(out);
            return mv_error("synth: out of memory for %d views of %dx%d geometry", V, S, S);
        }
    }
    double *rgb = malloc(sizeof(double) * 3 * (size_t)S * S);
    uint8_t *kind_buf = malloc((size_t)S * S);
    if (!rgb || !kind_buf) {
        free(rgb);
        free(kind_buf);
        mvd_synth_render_free(out);
        return mv_error("synth: out of memory for a %dx%d view", S, S);
    }
    for (int v = 0; v < V; v++) {
        if (mvd_image_alloc(&out->images[v], S, S, 3) || mvd_image_alloc(&out->masks[v], S, S, 1)) {
            free(rgb);
            free(kind_buf);
            mvd_synth_render_free(out);
            return mv_error_prefix("synth: rendering view %d", v + 1);
        }
        render_view(o, &s, v, sample_id, rgb, kind_buf, &out->images[v], &out->masks[v],
                    out->xyz ? out->xyz + (size_t)v * S * S * 3 : NULL,
                    out->hit ? out->hit + (size_t)v * S * S : NULL);
    }
    free(rgb);
    free(kind_buf);
    return 0;
}
