/* fixtures: read reference arrays written by PyTorch/HF (HDF5) and compare
 * them with named tolerances, reporting the worst element. Tests only.
 * The directory is $MVEAD_FIXTURES (default ../shared/fixtures relative to
 * the source tree). Missing fixtures: fx_open returns -1 after printing a
 * loud SKIP line, and the test returns without failing. */
#ifndef MVEAD_TEST_FIXTURES_H
#define MVEAD_TEST_FIXTURES_H
#include <hdf5.h>
#include <stdbool.h>
#include <stdint.h>
#include "tensor/tensor.h"

const char *fx_dir(void);
/* MVEAD_TEST_REDUCED=1 (set by scripts/check-valgrind.sh): the slowest cases
 * make the same checks on fewer inputs, so that the suite fits under
 * valgrind's 30-100x slowdown. Prints a note the first time it says yes. */
bool fx_reduced(void);
/* Full path of rel inside the fixture dir (static buffer). */
const char *fx_path(const char *rel);
bool fx_exists(const char *rel);
/* Opens rel read-only; prints "SKIP: fixture ... missing" and returns -1 if absent. */
hid_t fx_open(const char *rel);
void fx_close(hid_t f);

/* Reads dataset `path` (relative to loc) as float64; returns malloc'd data,
 * sets *ndim and shape[] (up to 8 dims). NULL if missing. */
double *fx_read(hid_t loc, const char *path, int *ndim, int64_t *shape);
int64_t *fx_read_i64(hid_t loc, const char *path, int *ndim, int64_t *shape);
bool fx_has(hid_t loc, const char *path);
int64_t fx_numel(int ndim, const int64_t *shape);
/* Attribute of object `obj` (relative to loc; "." for loc itself). */
double fx_attr_f64(hid_t loc, const char *obj, const char *name);
bool fx_has_attr(hid_t loc, const char *obj, const char *name);
/* String attribute into buf; returns false if absent. */
bool fx_attr_str(hid_t loc, const char *obj, const char *name, char *buf, size_t n);
/* Names of the members of group `path` (malloc'd array of malloc'd strings). */
int fx_list(hid_t loc, const char *path, char ***names);
void fx_free_list(char **names, int n);

/* Compares got[i] with ref[i]: ok when |got - ref| <= atol + rtol * scale,
 * where scale = |ref[i]| (scale_mode 0) or max|ref| (scale_mode 1).
 * Prints the worst element with its index under `what`. Returns true if ok. */
bool fx_compare(const char *what, const double *got, const double *ref, int64_t n,
                double rtol, double atol, int scale_mode);
bool fx_compare_f32(const char *what, const float *got, const double *ref, int64_t n,
                    double rtol, double atol, int scale_mode);

/* Dataset `path` as a tensor of dtype dt (NULL, with a message, if missing). */
mvt_tensor *fx_read_tensor(hid_t loc, const char *path, mvt_dtype dt);
/* Compares t (any dtype) with dataset `path`, |err| <= atol + rtol * max|ref|;
 * false (with the worst element printed) on a mismatch or a missing dataset. */
bool fx_compare_tensor(const char *what, hid_t loc, const char *path, const mvt_tensor *t, double rtol, double atol);
/* Largest |element| over the datasets of group `path` (e.g. a case's gradient scale). */
double fx_group_max_abs(hid_t loc, const char *path);
#endif
