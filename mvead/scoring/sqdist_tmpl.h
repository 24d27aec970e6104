/* sqdist_tmpl: ||a - b||^2 for the float/double template bodies of
 * coreset.c and kmeans.c (included where `real` and SFX are defined).
 * Accumulated in double over 8 interleaved partial sums combined in a fixed
 * order: a single running sum is a latency-bound chain (the compiler may not
 * reassociate it), 8 chains keep the FPU busy and the result is still the
 * same for every thread count. */
static inline double SFX(mvs_sqdist)(const real *a, const real *b, int64_t dim) {
    double s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t k = 0;
    for (; k + 8 <= dim; k += 8)
        for (int l = 0; l < 8; l++) {
            double d = (double)a[k + l] - (double)b[k + l];
            s[l] += d * d;
        }
    double tail = 0.0;
    for (; k < dim; k++) {
        double d = (double)a[k] - (double)b[k];
        tail += d * d;
    }
    return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7])) + tail;
}
